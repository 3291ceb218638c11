"""`speciarl judge`: judge every unique normalised pair of a file that the store lacks."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import polars as pl

from speciarl.data.taxonomy import Taxonomy
from speciarl.judge.params import LLMParams, ServeParams

_DEFAULTS = LLMParams()


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "judge",
        help="judge (ground_truth, prediction) pairs into the verdict store",
        description="Judge every unique normalised (ground_truth, prediction) pair of FILE that the store "
        "lacks: exact match, taxonomy, then the LLM judge. Exit 0 only when every pair has a verdict; "
        "verdicts obtained are stored either way, so a rerun asks only for the rest.",
    )
    parser.add_argument(
        "--pairs",
        required=True,
        type=Path,
        help="parquet or jsonl with columns ground_truth, prediction (optional: dataset)",
    )
    parser.add_argument("--store", required=True, type=Path, help="verdict store directory")
    parser.add_argument("--taxonomy", type=Path, action="append", default=[], help="taxonomy.json (repeatable)")
    parser.add_argument(
        "--dataset", help="dataset of every pair (default: the file's dataset column, else the only taxonomy's)"
    )
    parser.add_argument("--close-levels", type=int, default=1, help="levels above the truth that are 'less specific'")
    parser.add_argument(
        "--closed-world",
        action="store_true",
        help="each --taxonomy lists every name a correct answer can use (a world built from it, as the mini world): "
        "an answer that names no node is wrong, so no LLM is needed (params: judge.taxonomy.closed_world)",
    )
    llm = parser.add_argument_group("LLM judge (used only for pairs the taxonomy cannot decide)")
    llm.add_argument(
        "--llm-endpoint", help="base URL of a running OpenAI-compatible server, e.g. http://127.0.0.1:8000/v1"
    )
    llm.add_argument(
        "--llm-serve", choices=["vllm", "transformers"], help="start a managed server for --llm-model on 127.0.0.1"
    )
    llm.add_argument("--llm-model", help="served model name (with --llm-serve: the model path or id)")
    llm.add_argument("--llm-revision", help="model revision (part of the judge id)")
    llm.add_argument("--api-key-env", default=_DEFAULTS.api_key_env, help="environment variable holding the API key")
    llm.add_argument("--concurrency", type=int, default=_DEFAULTS.concurrency)
    llm.add_argument("--timeout-s", type=float, default=_DEFAULTS.timeout_s, help="per request")
    llm.add_argument("--max-attempts", type=int, default=_DEFAULTS.max_attempts, help="per pair")
    llm.add_argument("--backoff-s", type=float, default=_DEFAULTS.backoff_s, help="first retry delay, doubling")
    llm.add_argument("--max-tokens", type=int, default=_DEFAULTS.max_tokens)
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    # imported here: the openai client takes seconds to import, and every `speciarl` command builds this parser
    from speciarl.judge.cascade import JudgeService, VerdictStoreError, describe_undecided, open_store
    from speciarl.judge.llm import LLMJudge, LLMJudgeError
    from speciarl.judge.server import ServerError

    if args.llm_endpoint and args.llm_serve:
        raise ValueError("give --llm-endpoint (a running server) or --llm-serve (a managed one), not both")
    if (args.llm_endpoint or args.llm_serve) and not args.llm_model:
        raise ValueError("--llm-model is required with --llm-endpoint or --llm-serve")
    if args.closed_world and not args.taxonomy:
        raise ValueError("--closed-world needs the world's taxonomy (--taxonomy FILE)")
    table = read_pairs(args.pairs)
    taxonomies = {t.dataset: t for t in (Taxonomy.load(path) for path in args.taxonomy)}
    datasets = _datasets(table, args.dataset, taxonomies, args.pairs)
    pairs = [
        (dataset, truth, prediction)
        for dataset, truth, prediction in zip(datasets, table["ground_truth"], table["prediction"], strict=True)
        if prediction is not None  # a format error needs no verdict
    ]
    llm_params = LLMParams(
        endpoint=args.llm_endpoint,
        serve=ServeParams(backend=args.llm_serve) if args.llm_serve else None,
        model=args.llm_model,
        revision=args.llm_revision,
        api_key_env=args.api_key_env,
        concurrency=args.concurrency,
        timeout_s=args.timeout_s,
        max_attempts=args.max_attempts,
        backoff_s=args.backoff_s,
        max_tokens=args.max_tokens,
    )
    try:
        with JudgeService(
            open_store(args.store),
            taxonomies,
            LLMJudge.from_params(llm_params, "--api-key-env"),
            close_levels=args.close_levels,
            closed_world=list(taxonomies) if args.closed_world else (),
        ) as service:
            service.judge(pairs, progress=True)
            stats = service.stats
    except (LLMJudgeError, ServerError, VerdictStoreError) as exc:  # the verdicts that did arrive are stored
        print(f"speciarl judge: error: {exc}", file=sys.stderr)
        return 2
    print(json.dumps(stats, indent=1))
    if stats["undecided"]:
        print(
            f"speciarl judge: {stats['undecided']} of {stats['unique']} unique pairs have no verdict "
            f"({stats['failures']} LLM failures), {describe_undecided(stats)}; "
            f"the {stats['unique'] - stats['undecided']} others are stored, "
            "rerun to judge the rest",
            file=sys.stderr,
        )
        return 1
    return 0


def read_pairs(path: Path) -> pl.DataFrame:
    """The pairs file as a frame with ground_truth, prediction and (if present) dataset columns."""
    if not path.exists():
        raise FileNotFoundError(f"pairs file not found: {path}")
    suffix = path.suffix.lower()
    try:
        if suffix == ".parquet":
            table = pl.read_parquet(path)
        elif suffix in (".jsonl", ".ndjson"):
            table = pl.read_ndjson(path)
        else:
            raise ValueError(f"{path}: unknown pairs format {suffix!r} (use .parquet or .jsonl)")
    except pl.exceptions.PolarsError as exc:
        raise ValueError(f"{path}: cannot read pairs ({str(exc).splitlines()[0]})") from None
    missing = [name for name in ("ground_truth", "prediction") if name not in table.columns]
    if missing:
        raise ValueError(f"{path}: missing column(s) {', '.join(missing)} (has: {', '.join(table.columns)})")
    columns = [name for name in ("dataset", "ground_truth", "prediction") if name in table.columns]
    for name in columns:
        if table.schema[name] not in (pl.String, pl.Null):
            raise ValueError(f"{path}: column {name} must hold text, not {table.schema[name]}")
    table = table.select(pl.col(name).cast(pl.String) for name in columns)
    null_truth = table["ground_truth"].is_null().arg_true()
    if len(null_truth):
        raise ValueError(f"{path}: record {null_truth[0]} has no ground_truth")
    return table


def _datasets(table: pl.DataFrame, dataset: str | None, taxonomies: dict[str, Taxonomy], path: Path) -> list[str]:
    if dataset is not None:
        return [dataset] * table.height
    if "dataset" in table.columns:
        nulls = table["dataset"].is_null().arg_true()
        if len(nulls):
            raise ValueError(f"{path}: record {nulls[0]} has no dataset")
        return table["dataset"].to_list()
    if len(taxonomies) > 1:
        raise ValueError(
            f"{path}: no dataset column; name the dataset with --dataset (taxonomies: {', '.join(taxonomies)})"
        )
    return [next(iter(taxonomies), "")] * table.height
