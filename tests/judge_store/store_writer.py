"""Writer subprocess for the store tests: store PATH FIRST COUNT BATCH DELAY.

Puts verdicts FIRST..FIRST+COUNT-1 (store_world.make_verdict) in batches of BATCH and, after each
put_many has returned, prints 'stored A B' (the batch's first and last index) and flushes.
"""

import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

from store_world import make_verdict  # noqa: E402

from speciarl.judge.store import VerdictStore  # noqa: E402

root, first, count, batch, delay = sys.argv[1], *map(int, sys.argv[2:5]), float(sys.argv[5])
store = VerdictStore(root)
for start in range(first, first + count, batch):
    stop = min(start + batch, first + count)
    store.put_many([make_verdict(index) for index in range(start, stop)])
    print(f"stored {start} {stop - 1}", flush=True)
    # a reader too: what other writers stored becomes visible
    store.get_many([make_verdict(index).key for index in range(start, stop)])
    time.sleep(delay)
store.close()
