"""report.md and its PNG plots: the paper's comparison table, readable without DVC.

Rows follow the runs that exist: base zero-shot (base-general), base + `specific` prompt, base +
each other prompt variant, RFT (binary-general), SpeciaRL (speciarl-general), other trained runs,
and the base best-of-N upper bound. Images are linked relatively, so the folder can be moved.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import polars as pl
from matplotlib import colormaps
from matplotlib.figure import Figure  # figures without pyplot: no global state, no display backend

from speciarl.evaluate.per_sample import is_best_of_n
from speciarl.evaluate.summary import BEST_OF_N, GREEDY
from speciarl.labels import FORMAT_ERROR
from speciarl.metrics import OUTCOMES, UTILITY
from speciarl.policy.prompts import PROMPTS

REPORT_FILE = "report.md"
SCATTER_FILE = "specificity_vs_correctness.png"
# Rows of base-policy prompts follow the order of the prompt registry; unknown prompts come last.
PROMPT_ORDER = tuple(PROMPTS)
OUTCOME_COLORS = {
    "more specific": "#1b7837",
    "specific": "#5aae61",
    "less specific": "#d9f0a3",
    "generic": "#fee08b",
    "abstain": "#bdbdbd",
    "wrong": "#d73027",
    FORMAT_ERROR: "#67001f",
}
OUTCOME_NAMES = {value: value.replace("_", " ") for value in OUTCOMES}
OUTCOME_SHORT = {
    "more specific": "MS",
    "specific": "S",
    "less specific": "LS",
    "generic": "G",
    "abstain": "A",
    "wrong": "W",
    FORMAT_ERROR: "FE",
}
_METRIC_COLUMNS = (("specificity", "Spec."), ("correctness", "Corr."), ("hm", "HM"), ("score", "Score"))
_JUDGE_FREE_COLUMNS = (("text_inclusion", "Incl."), ("similarity", "Sim."))
# A single-pass run with at least this share of unparseable answers is flagged: its verdict metrics
# then say more about the output format than about what the prompt or training asked for.
FORMAT_WARNING_SHARE = 0.1


@dataclass(frozen=True)
class Method:
    """One row of the comparison: a run, how it is evaluated and what the paper calls it."""

    run: str
    mode: str
    label: str
    order: tuple


def method_of(run: str) -> Method:
    policy, _, prompt = run.rpartition("-")
    if is_best_of_n(run):
        return Method(run, BEST_OF_N, "Base best-of-N (upper bound)" if policy == "base" else f"`{policy}` best-of-N", (9, policy))
    prompt_rank = PROMPT_ORDER.index(prompt) if prompt in PROMPT_ORDER else len(PROMPT_ORDER)
    if policy == "base":
        label = {"general": "Base, zero-shot", "specific": "Base + `specific` prompt"}.get(prompt, f"Base + `{prompt}` prompt")
        return Method(run, GREEDY, label, (0, prompt_rank, prompt))
    trained = {"binary": ("RFT (binary reward)", 1), "speciarl": ("SpeciaRL", 2)}
    label, rank = trained.get(policy, (f"Trained `{policy}`", 3))
    if prompt != "general":
        label += f" + `{prompt}` prompt"
    return Method(run, GREEDY, label, (rank, policy, prompt_rank, prompt))


def methods(metrics: dict) -> list[Method]:
    """The runs present in metrics.json, in the paper's row order."""
    return sorted((method_of(run) for run in metrics if method_of(run).mode in metrics[run]), key=lambda m: m.order)


def _fmt(value: float) -> str:
    return f"{value:.3f}"


def _pct(value: float) -> str:
    return f"{100 * value:.1f}"


def comparison_table(rows: list[tuple[Method, dict]], best_of_n_note: dict[str, int], group_size: int | None = None) -> list[str]:
    """Markdown table lines; the best single-pass value of each verdict metric is bold.

    `group_size`: the number of datasets of the group; a row averaged over fewer says so.
    """
    single = [entry for method, entry in rows if method.mode == GREEDY]
    best = {name: max(entry[name] for entry in single) for name, _ in _METRIC_COLUMNS} if single else {}
    header = ["Method", "Run", *(title for _, title in _METRIC_COLUMNS), *(title for _, title in _JUDGE_FREE_COLUMNS)]
    header += [f"{OUTCOME_SHORT[value]} %" for value in OUTCOMES]
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join(["---"] * 2 + ["---:"] * (len(header) - 2)) + "|"]
    for method, entry in rows:
        label = method.label
        if method.mode == BEST_OF_N and method.run in best_of_n_note:
            label += f", N = {best_of_n_note[method.run]}"
        if group_size is not None and entry["n_datasets"] < group_size:
            label += f" ({entry['n_datasets']} of {group_size} datasets)"
        cells = [label, f"`{method.run}`"]
        for name, _ in _METRIC_COLUMNS:
            text = _fmt(entry[name])
            bold = method.mode == GREEDY and len(single) > 1 and entry[name] == best[name]
            cells.append(f"**{text}**" if bold else text)
        cells += [_fmt(entry[name]) for name, _ in _JUDGE_FREE_COLUMNS]
        cells += [_pct(entry["distribution"][value]) for value in OUTCOMES]
        lines.append("| " + " | ".join(cells) + " |")
    return lines


def _entries(metrics: dict, rows: list[Method], level: str, name: str, split: str) -> list[tuple[Method, dict]]:
    found = []
    for method in rows:
        entry = metrics[method.run][method.mode][level].get(name, {}).get(split)
        if entry is not None:
            found.append((method, entry))
    return found


def _names_and_splits(metrics: dict, level: str) -> list[tuple[str, str]]:
    """Every (name, split) of a level ("groups" or "datasets") present in any run, sorted."""
    return sorted({(name, split) for modes in metrics.values() for mode in modes.values() for name, splits in mode[level].items() for split in splits})


def _samples_per_image(metrics: dict) -> dict[str, int]:
    return {
        run: max(entry["samples_per_image"] for splits in modes[BEST_OF_N]["datasets"].values() for entry in splits.values())
        for run, modes in metrics.items()
        if BEST_OF_N in modes
    }


def scatter_plot(metrics: dict, rows: list[Method], panels: list[tuple[str, str]], path: Path) -> None:
    """Specificity (y) against correctness (x) of every method, one panel per group and split, HM contours."""
    fig = Figure(figsize=(4.2 * len(panels), 5.2))
    axes = fig.subplots(1, len(panels), squeeze=False)
    grid = np.linspace(0.001, 1, 200)
    correctness, specificity = np.meshgrid(grid, grid)
    hm = 2 * correctness * specificity / (correctness + specificity)
    # one colour and marker per method, the same in every panel
    style = {method.run: (colormaps["tab10"](index % 10), "osD^v<>ph*"[index % 10]) for index, method in enumerate(rows)}
    for axis, (group, split) in zip(axes[0], panels):
        contours = axis.contour(correctness, specificity, hm, levels=[0.2, 0.4, 0.6, 0.8, 0.9], colors="#cccccc", linewidths=0.8)
        axis.clabel(contours, fmt="HM %.1f", fontsize=7)
        for method, entry in _entries(metrics, rows, "groups", group, split):
            color, marker = style[method.run]
            hollow = method.mode == BEST_OF_N  # an upper bound, not a policy
            axis.scatter(
                entry["correctness"],
                entry["specificity"],
                label=method.label.replace("`", ""),
                marker=marker,
                s=70,
                facecolors="none" if hollow else color,
                edgecolors=color if hollow else "black",
                linewidths=1.5 if hollow else 0.5,
            )
        axis.set(xlim=(-0.02, 1.04), ylim=(-0.02, 1.04), xlabel="correctness", ylabel="specificity", title=f"{group} ({split})")
        axis.set_aspect("equal")
    legend = {}
    for axis in axes[0]:
        for handle, label in zip(*axis.get_legend_handles_labels()):
            legend.setdefault(label, handle)
    fig.legend(legend.values(), legend.keys(), loc="lower center", ncols=min(3, len(legend)), fontsize=8, frameon=False)
    fig.tight_layout(rect=(0, 0.06 * ((len(legend) + 2) // 3), 1, 1))
    fig.savefig(path, dpi=110)


def category_bars(entries: list[tuple[Method, dict]], title: str, path: Path) -> None:
    """Stacked horizontal bars of the outcome shares, one bar per method."""
    labels = [method.label.replace("`", "") for method, _ in entries]
    fig = Figure(figsize=(9, 0.45 * len(entries) + 2.0))
    axis = fig.subplots()
    left = np.zeros(len(entries))
    for value in OUTCOMES:
        shares = np.array([entry["distribution"][value] for _, entry in entries])
        axis.barh(labels, shares, left=left, color=OUTCOME_COLORS[value], label=OUTCOME_NAMES[value], edgecolor="white", linewidth=0.5)
        left += shares
    axis.invert_yaxis()  # first method on top, as in the table
    axis.set(xlim=(0, 1), xlabel="share of predictions", title=title)
    fig.legend(loc="lower center", ncols=len(OUTCOMES), fontsize=7.5, frameon=False)
    fig.tight_layout(rect=(0, 0.3 / fig.get_figheight(), 1, 1))  # room for the legend below
    fig.savefig(path, dpi=110)


def _judges(per_sample: pl.DataFrame) -> str:
    judged = per_sample.filter(pl.col("judge").is_not_null())
    counts = judged.group_by("judge").len().sort("len", descending=True)
    total = judged.height
    return ", ".join(f"`{row['judge']}` {row['len']} ({_pct(row['len'] / total)} %)" for row in counts.iter_rows(named=True))


def _deltas(metrics: dict, rows: list[Method], panels: list[tuple[str, str]]) -> list[str]:
    """SpeciaRL minus base zero-shot and minus RFT, per group: the paper's two claims."""
    runs = {method.run: method for method in rows}
    pairs = [(a, b) for a, b in (("speciarl-general", "base-general"), ("speciarl-general", "binary-general")) if a in runs and b in runs]
    if not pairs:
        return []
    lines = [
        "## SpeciaRL against its baselines",
        "",
        "Differences of group metrics (positive: SpeciaRL is higher).",
        "",
        "| Group | Split | Compared with | Δ Spec. | Δ Corr. | Δ HM | Δ Score |",
        "|---|---|---|---:|---:|---:|---:|",
    ]
    for group, split in panels:
        for ours, theirs in pairs:
            a = metrics[ours][GREEDY]["groups"].get(group, {}).get(split)
            b = metrics[theirs][GREEDY]["groups"].get(group, {}).get(split)
            if a is None or b is None:
                continue
            cells = [f"{a[name] - b[name]:+.3f}" for name, _ in _METRIC_COLUMNS]
            lines.append(f"| {group} | {split} | {runs[theirs].label} | " + " | ".join(cells) + " |")
    return lines + [""]


def _format_warnings(rows: list[Method], per_dataset: dict[tuple[str, str], list[tuple[Method, dict]]]) -> list[str]:
    """One line per single-pass run and dataset whose format-error share reaches FORMAT_WARNING_SHARE.

    `per_dataset` maps (dataset, split) to the `_entries` of that dataset; lines follow the order of `rows`.
    """
    flagged = [
        (method, dataset, split, entry["distribution"][FORMAT_ERROR])
        for method in rows
        if method.mode == GREEDY
        for (dataset, split), entries in per_dataset.items()
        if (entry := dict(entries).get(method)) is not None and entry["distribution"][FORMAT_ERROR] >= FORMAT_WARNING_SHARE
    ]
    if not flagged:
        return []
    lines = [
        "## Format errors",
        "",
        f"Single-pass runs with {_pct(FORMAT_WARNING_SHARE)} % or more answers without a parseable `<answer>`. "
        "A format error counts as wrong in every metric, so these rows measure whether the policy follows the "
        "prompt's output format more than what the prompt asks for.",
        "",
    ]
    lines += [f"- {method.label} (`{method.run}`): {_pct(share)} % on {dataset} ({split})" for method, dataset, split, share in flagged]
    return lines + [""]


def _definitions() -> list[str]:
    utility = ", ".join(f"{value} {UTILITY[value]:g}" for value in OUTCOMES)
    return [
        "## Definitions",
        "",
        "Every prediction has one outcome: a verdict category (more specific, specific, less specific, "
        "generic, abstain, wrong) or a format error (no parseable `<answer>`).",
        "",
        "- **Correctness** = (more specific + specific + less specific + generic) / all predictions; "
        "abstentions and format errors count in \"all\".",
        "- **Specificity** = (more specific + specific) / correct predictions; 0 when none is correct.",
        "- **HM** = 2 · Spec. · Corr. / (Spec. + Corr.); 0 when both are 0.",
        f"- **Score** = mean utility over all predictions: {utility}.",
        "- A **group** averages the per-dataset metrics of its datasets (HM too: computed per dataset, then averaged).",
        "- **Single pass**: the greedy prediction (sample 0) per image. **Best-of-N**: per image, the best "
        "verdict among the base policy's N samples (more specific first, format error last).",
        "- **Incl.** (text inclusion, judge-free): the normalised truth's words appear consecutively and whole in "
        "the normalised prediction, or the prediction's in the truth (\"warbler\" / \"golden-winged warbler\" "
        "counts, \"cat\" / \"catbird\" does not); share of predictions, format errors count 0.",
        "- **Sim.** (judge-free): mean cosine similarity of the all-MiniLM-L6-v2 sentence embeddings of the "
        "normalised prediction and truth; format errors count 0.",
        "- Category columns: share of predictions (%) per outcome: "
        + ", ".join(f"{short} = {value}" for value, short in OUTCOME_SHORT.items())
        + ". The full counts are in `metrics.json`.",
        "",
    ]


def write_report(metrics: dict, per_sample: pl.DataFrame, groups: dict[str, list[str]], out_dir: str | Path) -> Path:
    """Writes report.md and its PNGs into `out_dir` (an existing, empty folder); returns report.md's path."""
    out_dir = Path(out_dir)
    rows = methods(metrics)
    if not rows:
        raise ValueError("metrics.json: no runs to report")
    best_of_n = _samples_per_image(metrics)
    lines = [
        "# SpeciaRL evaluation report",
        "",
        "Written by the `report` stage from `metrics.json` and `per_sample.parquet` (the `evaluate` stage).",
        f"Verdicts by judge (the verdict table's `judge` column, all runs): {_judges(per_sample) or 'none (only format errors)'}.",
        "",
        "## Comparison by group",
        "",
        "Best single-pass value of each verdict metric in bold. Spec., Corr., HM, Score: verdict metrics; "
        "Incl., Sim.: judge-free metrics; then the outcome distribution (%). Definitions at the end.",
        "",
    ]
    present = _names_and_splits(metrics, "groups")
    group_panels = [(group, split) for group in groups for name, split in present if name == group]
    for group, split in group_panels:
        entries = _entries(metrics, rows, "groups", group, split)
        members = groups[group]
        lines += [f"### {group} ({split}; {', '.join(members)})", "", *comparison_table(entries, best_of_n, len(members)), ""]
    if group_panels:
        scatter_plot(metrics, rows, group_panels, out_dir / SCATTER_FILE)
        lines += [f"![Specificity against correctness per method and group]({SCATTER_FILE})", ""]
    lines += _deltas(metrics, rows, group_panels)
    per_dataset = {
        (dataset, split): _entries(metrics, rows, "datasets", dataset, split)
        for dataset, split in _names_and_splits(metrics, "datasets")
    }
    lines += _format_warnings(rows, per_dataset)
    lines += ["## Per dataset", ""]
    for (dataset, split), entries in per_dataset.items():
        image = f"categories_{dataset}_{split}.png"
        category_bars(entries, f"{dataset} ({split}): outcome shares", out_dir / image)
        n = max(entry["n"] for _, entry in entries)
        lines += [f"### {dataset} ({split}, {n} images)", "", *comparison_table(entries, best_of_n), ""]
        lines += [f"![Outcome shares per method on {dataset} {split}]({image})", ""]
    lines += _definitions()
    report = out_dir / REPORT_FILE
    report.write_text("\n".join(lines))
    return report
