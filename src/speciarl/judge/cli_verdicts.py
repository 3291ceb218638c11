"""`speciarl verdicts ...`: export, import, merge, inspect and compact a verdict store.

Exit status: 0 done; 1 done, but something needs a look (conflicting verdicts were merged, the
store has damaged bytes, or compaction quarantined damaged segments), as printed; 2 bad input or
a store that cannot be read, with one line naming the file, and nothing changed.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from speciarl.config import DEFAULT_PARAMS
from speciarl.judge.store import MergeReport, VerdictStore, merge_stores, merge_verdicts
from speciarl.judge.store_exchange import read_verdict_file
from speciarl.judge.store_format import QUARANTINE


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
    _judge_options(import_)
    import_.set_defaults(func=_import)

    merge = commands.add_parser("merge", help="merge other stores into one; exit 1 if verdicts conflict")
    merge.add_argument("--into", required=True, type=Path, help="target store directory (created if missing)")
    merge.add_argument("sources", nargs="+", type=Path, metavar="SRC", help="source store directories")
    _judge_options(merge)
    merge.set_defaults(func=_merge)

    stats = commands.add_parser("stats", help="counts by category and judge, files, size, conflicts")
    stats.add_argument("--store", required=True, type=Path, help="verdict store directory")
    stats.add_argument("--json", action="store_true", help="print the statistics as JSON")
    stats.set_defaults(func=_stats)

    compact = commands.add_parser("compact", help="fold finished segments into one sorted parquet file")
    compact.add_argument("--store", required=True, type=Path, help="verdict store directory")
    compact.set_defaults(func=_compact)


def _judge_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--params",
        type=Path,
        help=f"params file whose judges are accepted (default: {DEFAULT_PARAMS} if present, else only 'exact')",
    )
    parser.add_argument(
        "--allow-unknown-judges",
        action="store_true",
        help="also take verdicts of other judges (humans, other taxonomies or LLMs), unchecked",
    )


def _known_judges(args: argparse.Namespace):
    # imported here: it imports the cascade and the OpenAI client, seconds that other commands need not pay
    from speciarl.judge.store_checks import KnownJudges

    if args.params is None and not DEFAULT_PARAMS.exists():
        return KnownJudges(
            allow_unknown=args.allow_unknown_judges, described_as=f"no judges ({DEFAULT_PARAMS} not found)"
        )
    return KnownJudges.from_params(args.params or DEFAULT_PARAMS, allow_unknown=args.allow_unknown_judges)


def _export(args: argparse.Namespace) -> int:
    count = VerdictStore(args.store, create=False).export(args.out)
    print(f"exported {count} verdicts to {args.out}")
    return 0


def _import(args: argparse.Namespace) -> int:
    # read and check every file before adding anything: a bad row leaves the store unchanged
    check = _known_judges(args).check
    files = [(path, read_verdict_file(path, check)) for path in args.files]
    with VerdictStore(args.store) as store:
        reports = [(path, merge_verdicts(store, verdicts)) for path, verdicts in files]
        for path, report in reports:
            print(f"{path}: {_summary(report)}")
            _print_conflicts(store, report)
    return 1 if any(report.conflicts for _, report in reports) else 0


def _merge(args: argparse.Namespace) -> int:
    report = merge_stores(args.into, args.sources, _known_judges(args).check)
    print(f"merged {len(args.sources)} stores into {args.into}: {_summary(report)}")
    _print_conflicts(VerdictStore(args.into, create=False), report)
    return 1 if report.conflicts else 0


def _summary(report: MergeReport) -> str:
    return f"{report.new} new, {report.duplicates} duplicates, {len(report.conflicts)} conflicts"


def _print_conflicts(store: VerdictStore, report: MergeReport) -> None:
    stored = store.get_many([key for key, _, _ in report.conflicts])
    for key, verdict_category, other in report.conflicts:
        verdict = stored[key]
        print(
            f"conflict {key}: truth {verdict.ground_truth!r}, prediction {verdict.prediction!r}: "
            f"{verdict_category.value!r} (the verdict: the earliest) vs {other.value!r}, both kept"
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
    for damage in stats["damaged"]:
        print(
            f"corruption: {damage['file']}: {damage['bytes']} unreadable bytes at offset {damage['offset']} "
            f"({damage['blocks_skipped']} blocks skipped; the blocks before and after are read)"
        )
    if stats["quarantined_files"]:
        print(
            f"quarantine: {stats['quarantined_files']} files in {args.store / QUARANTINE} "
            "(bytes compaction could not read)"
        )
    return 1 if stats["damaged"] else 0


def _compact(args: argparse.Namespace) -> int:
    store = VerdictStore(args.store, create=False)
    before = store.stats()
    report = store.compact()
    after = store.stats()
    print(
        f"compacted {args.store}: {before['base_files'] + before['segments']} files "
        f"({before['bytes_on_disk'] / 2**20:.2f} MiB) -> {after['base_files'] + after['segments']} files "
        f"({after['bytes_on_disk'] / 2**20:.2f} MiB), {after['verdicts']} verdicts"
    )
    quarantine = args.store / QUARANTINE
    for name, size in sorted(report.torn.items()):
        print(f"torn tail: {name}: {size} bytes a writer left unfinished; segment kept in {quarantine}")
    for _segment, damages in sorted(report.damaged.items()):
        for damage in damages:
            print(f"corruption: {damage}; segment kept in {quarantine}")
    return 1 if report.damaged else 0
