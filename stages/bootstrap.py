"""Stage `bootstrap`: build the mini world's tiny base policy and warm-start it on both domains.

Reads params `bootstrap` and `data.prepared_dir`; writes the policy folder `bootstrap.out_dir`
(safetensors) and the measured targets to `bootstrap.metrics`.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

from speciarl.config import ParamsError, load_params
from speciarl.policy.sft import warm_start


def main() -> int:
    try:
        params = load_params("bootstrap", "data")
        bootstrap, data = params["bootstrap"], params["data"]
        metrics = warm_start(bootstrap, data.prepared_dir)
    except (ParamsError, ValueError, FileNotFoundError, KeyError) as exc:
        print(f"bootstrap: error: {exc}", file=sys.stderr)
        return 1
    path = Path(bootstrap.metrics)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps({"params": bootstrap.model_dump(), **metrics}, indent=1) + "\n")
    os.replace(tmp, path)
    missed = [name for name, met in metrics["targets_met"].items() if not met]
    print(f"bootstrap: policy in {bootstrap.out_dir}, metrics in {path}" + (f"; targets missed: {', '.join(missed)}" if missed else ""))
    return 0


if __name__ == "__main__":
    sys.exit(main())
