"""`speciarl verdicts ...`: export, import, merge, inspect and compact a verdict store."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from speciarl.judge.store import MergeReport, VerdictStore, merge_stores, merge_verdicts
from speciarl.judge.store_exchange import read_verdict_file


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "verdicts",
        help="export, import, merge, inspect and compact a verdict store",
        description="Maintain and share a verdict store (a directory that `dvc add` can track).",
    )
    commands = parser.add_subparsers(dest="verdicts_command", required=True, metavar="COMMAND")

    export = commands.add_parser("export", help="write every verdict to a .jsonl or .parquet file")
    export.add_argument("--store", required=True, type=Path, help="verdict store directory")
    export.add_argument("--out", required=True, type=Path, help="output file, .jsonl or .parquet")
    export.set_defaults(func=_export)

    import_ = commands.add_parser("import", help="add the verdicts of .jsonl or .parquet files")
    import_.add_argument("--store", required=True, type=Path, help="verdict store directory (created if missing)")
    import_.add_argument("files", nargs="+", type=Path, metavar="FILE", help="files as written by export")
    import_.set_defaults(func=_import)

    merge = commands.add_parser("merge", help="merge other stores into one; exit 1 if verdicts conflict")
    merge.add_argument("--into", required=True, type=Path, help="target store directory (created if missing)")
    merge.add_argument("sources", nargs="+", type=Path, metavar="SRC", help="source store directories")
    merge.set_defaults(func=_merge)

    stats = commands.add_parser("stats", help="counts by category and judge, files, size, conflicts")
    stats.add_argument("--store", required=True, type=Path, help="verdict store directory")
    stats.add_argument("--json", action="store_true", help="print the statistics as JSON")
    stats.set_defaults(func=_stats)

    compact = commands.add_parser("compact", help="fold finished segments into one sorted parquet file")
    compact.add_argument("--store", required=True, type=Path, help="verdict store directory")
    compact.set_defaults(func=_compact)


def _export(args: argparse.Namespace) -> int:
    count = VerdictStore(args.store, create=False).export(args.out)
    print(f"exported {count} verdicts to {args.out}")
    return 0


def _import(args: argparse.Namespace) -> int:
    # read and check every file before adding anything: a bad row leaves the store unchanged
    files = [(path, read_verdict_file(path)) for path in args.files]
    with VerdictStore(args.store) as store:
        reports = [(path, merge_verdicts(store, verdicts)) for path, verdicts in files]
        for path, report in reports:
            print(f"{path}: {_summary(report)}")
            _print_conflicts(store, report, source=str(path))
    return 1 if any(report.conflicts for _, report in reports) else 0


def _merge(args: argparse.Namespace) -> int:
    report = merge_stores(args.into, args.sources)
    print(f"merged {len(args.sources)} stores into {args.into}: {_summary(report)}")
    _print_conflicts(VerdictStore(args.into, create=False), report, source="source")
    return 1 if report.conflicts else 0


def _summary(report: MergeReport) -> str:
    return f"{report.new} new, {report.duplicates} duplicates, {len(report.conflicts)} conflicts"


def _print_conflicts(store: VerdictStore, report: MergeReport, source: str) -> None:
    stored = store.get_many([key for key, _, _ in report.conflicts])
    for key, kept, refused in report.conflicts:
        verdict = stored[key]
        print(
            f"conflict {key}: truth {verdict.ground_truth!r}, prediction {verdict.prediction!r}: "
            f"store has {kept.value!r}, {source} has {refused.value!r} (kept {kept.value!r})"
        )


def _stats(args: argparse.Namespace) -> int:
    store = VerdictStore(args.store, create=False)
    stats = store.stats()
    if args.json:
        print(json.dumps(stats, indent=2))
        return 0
    print(f"{args.store}: {stats['verdicts']} verdicts")
    print("by category:")
    for category, count in stats["by_category"].items():
        print(f"  {category:<14} {count}")
    print("by judge:")
    for judge, count in stats["by_judge"].items():
        print(f"  {judge:<14} {count}")
    print(
        f"files: {stats['base_files']} compacted, {stats['segments']} segments, "
        f"{stats['bytes_on_disk'] / 2**20:.2f} MiB on disk ({stats['torn_bytes']} bytes of torn tails)"
    )
    print(f"conflicts: {stats['conflicts']} keys")
    for key, verdict_category, other in store.conflicts():
        print(f"  {key}: {verdict_category.value!r} (the verdict) vs {other.value!r}")
    return 0


def _compact(args: argparse.Namespace) -> int:
    store = VerdictStore(args.store, create=False)
    before = store.stats()
    store.compact()
    after = store.stats()
    print(
        f"compacted {args.store}: {before['base_files'] + before['segments']} files "
        f"({before['bytes_on_disk'] / 2**20:.2f} MiB) -> {after['base_files'] + after['segments']} files "
        f"({after['bytes_on_disk'] / 2**20:.2f} MiB), {after['verdicts']} verdicts"
    )
    return 0
