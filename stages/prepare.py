"""Stage `prepare`: every dataset of params `data.datasets` into `data.prepared_dir`.

The mini world is rendered; the real datasets are read from their official archives or folders
(or a Hugging Face dataset for Stanford Cars). Reads params `data`; writes data/prepared.
A split already prepared with the same settings is kept (use --force to redo it).
"""

from __future__ import annotations

import argparse
import sys

from speciarl.config import ParamsError, load_section


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--params", default="params.yaml", help="params file (default: params.yaml)")
    parser.add_argument("--force", action="store_true", help="redo splits that are already prepared")
    args = parser.parse_args(argv)
    try:
        from speciarl.data.prepare import prepare_datasets

        params = load_section("data", args.params)
        results = prepare_datasets(params, force=args.force)
    except (ParamsError, ValueError, OSError) as exc:
        print(f"prepare: error: {exc}", file=sys.stderr)
        return 2
    for dataset, manifests in results.items():
        for split, manifest in manifests.items():
            classes = len(manifest.get("classes", ()))
            skipped = f", {manifest['num_corrupt']} corrupt skipped" if manifest.get("num_corrupt") else ""
            print(f"prepare: {dataset}/{split}: {manifest['num_samples']} samples, {classes} classes{skipped}")
    print(f"prepare: done -> {params.prepared_dir}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
