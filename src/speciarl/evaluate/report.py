"""report.md and its PNG plots: the paper's comparison table, readable without DVC.

Rows (methods) follow the runs that exist: base zero-shot (base-general), RFT (binary-general),
SpeciaRL (speciarl-general), SpeciaRL with min_support 2 (speciarl_ms2-general), other trained
runs, the null control (null_control-general: a reward drawn at random, which separates what a
reward does from what the optimiser does), the base best-of-N upper bound; then, in a table of
their own, the base policy's other prompts whose answers are at least FORMAT_FAIL_SHARE format
errors on that group or dataset (such rows measure the output format, not the prompt).

Seeds: a training run named <method>_s<k> (speciarl_s1, speciarl_s2) is seed k of the training run
<method>; its prediction runs join the method's row, which shows the mean over the seeds and
[min, max] of each verdict metric, and error bars (min to max) in the scatter plot. metrics.json
and the headline keep every run apart.

Judges are named by what they are (judge stats' `judges`), not by their id hash. The training
section draws every run's GRPO reward per step from <runs_dir>/<run>/curves.csv and writes the
curves, long format, to reward_curves.csv (the DVC plot of all runs). The luck section shows the
judge stats' `luck` figures (speciarl.judge.luck). Every adapter gets its model card with the
evaluation results in model_cards/<run>/README.md (speciarl.model_card). Images are linked
relatively, so the folder can be moved. A missing or unreadable input is a ValueError or
FileNotFoundError naming the file.
"""

from __future__ import annotations

import csv
import json
import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import polars as pl
from matplotlib import colormaps
from matplotlib.figure import Figure  # figures without pyplot: no global state, no display backend

from speciarl.evaluate.per_sample import is_best_of_n
from speciarl.evaluate.summary import BEST_OF_N, GREEDY
from speciarl.labels import FORMAT_ERROR
from speciarl.metrics import OUTCOMES, UTILITY
from speciarl.model_card import MODEL_CARDS_DIR, with_evaluation
from speciarl.policy.prompts import PROMPTS

REPORT_FILE = "report.md"
SCATTER_FILE = "specificity_vs_correctness.png"
TRAINING_FILE = "training_reward.png"
CURVES_FILE = "reward_curves.csv"  # long format: run, step, reward_mean (the DVC plot of every run)
ADAPTER_DIR = "adapter"  # <runs_dir>/<run>/adapter holds the train-time model card README.md
TRAIN_CURVES = "curves.csv"
# Rows of base-policy prompts follow the order of the prompt registry; unknown prompts come last.
PROMPT_ORDER = tuple(PROMPTS)
SEED_RUN = re.compile(r"^(?P<method>.+)_s(?P<seed>\d+)$")
# Trained runs with a name of their own, and their row rank: the paper's, then the min_support
# ablation (configs/seed_study.yaml) right after SpeciaRL; other trained runs come next, by name,
# and the null control last.
TRAINED = {
    "binary": ("RFT (binary reward)", 1),
    "speciarl": ("SpeciaRL", 2),
    "speciarl_ms2": ("SpeciaRL, min_support 2", 3),
    "null_control": ("Null control (random reward)", 5),
}
OTHER_TRAINED_RANK = 4
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
_SCALARS = tuple(name for name, _ in _METRIC_COLUMNS + _JUDGE_FREE_COLUMNS)
# A single-pass run with at least this share of unparseable answers is listed under "Format errors":
# its verdict metrics then say more about the output format than about what was asked.
FORMAT_WARNING_SHARE = 0.1
# A base prompt row with at least this share of format errors leaves the main table for its own.
FORMAT_FAIL_SHARE = 0.25
# Training curves: the reward mean over the first and the last this many steps.
CURVE_WINDOW = 5


@dataclass(frozen=True)
class Method:
    """One row of the comparison: one run, or the seeds of one training run; how it is evaluated and its name."""

    key: str  # the run, with a training run's seed suffix dropped: speciarl_s1-general -> speciarl-general
    mode: str
    label: str
    order: tuple
    prompt_baseline: bool = False  # the base policy with a prompt other than general
    runs: tuple[str, ...] = field(default=(), compare=False)


def trained_method(policy: str) -> str:
    """The training run a policy is a seed of: speciarl_s1 -> speciarl; speciarl -> speciarl."""
    match = SEED_RUN.match(policy)
    return match["method"] if match else policy


def method_of(run: str) -> Method:
    policy, _, prompt = run.rpartition("-")
    if is_best_of_n(run):
        label = "Base best-of-N (upper bound)" if policy == "base" else f"`{policy}` best-of-N"
        return Method(run, BEST_OF_N, label, (9, policy), runs=(run,))
    prompt_rank = PROMPT_ORDER.index(prompt) if prompt in PROMPT_ORDER else len(PROMPT_ORDER)
    if policy == "base":
        label = "Base, zero-shot" if prompt == "general" else f"Base + `{prompt}` prompt"
        return Method(run, GREEDY, label, (0, prompt_rank, prompt), prompt_baseline=prompt != "general", runs=(run,))
    name = trained_method(policy)
    label, rank = TRAINED.get(name, (f"Trained `{name}`", OTHER_TRAINED_RANK))
    if prompt != "general":
        label += f" + `{prompt}` prompt"
    return Method(f"{name}-{prompt}", GREEDY, label, (rank, name, prompt_rank, prompt), runs=(run,))


def methods(metrics: dict) -> list[Method]:
    """The rows of the runs in metrics.json, seeds of one training run merged, in the paper's order."""
    merged: dict[str, Method] = {}
    for run in sorted(metrics):
        method = method_of(run)
        if method.mode not in metrics[run]:
            continue
        known = merged.get(method.key)
        runs = (known.runs if known else ()) + method.runs
        merged[method.key] = Method(method.key, method.mode, method.label, method.order, method.prompt_baseline, runs)
    return sorted(merged.values(), key=lambda method: method.order)


def _fmt(value: float) -> str:
    return f"{value:.3f}"


def _pct(value: float) -> str:
    return f"{100 * value:.1f}"


def combined(entries: list[dict]) -> dict:
    """One entry for a row: the mean over its runs (seeds); `spread` = {metric: (min, max)} when several."""
    mean = {name: float(np.mean([entry[name] for entry in entries])) for name in _SCALARS}
    mean["distribution"] = {
        value: float(np.mean([entry["distribution"][value] for entry in entries])) for value in OUTCOMES
    }
    mean["n"] = entries[0]["n"]
    if "n_datasets" in entries[0]:
        mean["n_datasets"] = min(entry["n_datasets"] for entry in entries)
    mean["seeds"] = len(entries)
    if len(entries) > 1:
        mean["spread"] = {
            name: (min(part[name] for part in entries), max(part[name] for part in entries))
            for name, _ in _METRIC_COLUMNS
        }
    return mean


def _entries(metrics: dict, rows: list[Method], level: str, name: str, split: str) -> list[tuple[Method, dict]]:
    """The combined entry of each row that has `name` (a group or dataset) on `split`."""
    found = []
    for method in rows:
        parts = [
            entry
            for run in method.runs
            if (entry := metrics[run][method.mode][level].get(name, {}).get(split)) is not None
        ]
        if parts:
            found.append((method, combined(parts)))
    return found


def split_failing(entries: list[tuple[Method, dict]]) -> tuple[list[tuple[Method, dict]], list[tuple[Method, dict]]]:
    """(main rows, base prompt rows with at least FORMAT_FAIL_SHARE format errors)."""
    failing = [
        (method, entry)
        for method, entry in entries
        if method.prompt_baseline and entry["distribution"][FORMAT_ERROR] >= FORMAT_FAIL_SHARE
    ]
    return [item for item in entries if item not in failing], failing


def comparison_table(
    rows: list[tuple[Method, dict]], best_of_n_note: dict[str, int], group_size: int | None = None, bold: bool = True
) -> list[str]:
    """Markdown table lines; with `bold`, the best single-pass value of each verdict metric is bold.

    `group_size`: the number of datasets of the group; a row averaged over fewer says so. A row of
    several seeds shows the mean and [min, max] of each verdict metric.
    """
    single = [entry for method, entry in rows if method.mode == GREEDY]
    best = {name: max(entry[name] for entry in single) for name, _ in _METRIC_COLUMNS} if single else {}
    header = ["Method", "Run", *(title for _, title in _METRIC_COLUMNS), *(title for _, title in _JUDGE_FREE_COLUMNS)]
    header += [f"{OUTCOME_SHORT[value]} %" for value in OUTCOMES]
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join(["---"] * 2 + ["---:"] * (len(header) - 2)) + "|"]
    for method, entry in rows:
        label = method.label
        if method.mode == BEST_OF_N and method.key in best_of_n_note:
            label += f", N = {best_of_n_note[method.key]}"
        if entry["seeds"] > 1:
            label += f", {entry['seeds']} seeds"
        if group_size is not None and entry["n_datasets"] < group_size:
            label += f" ({entry['n_datasets']} of {group_size} datasets)"
        cells = [label, ", ".join(f"`{run}`" for run in method.runs)]
        for name, _ in _METRIC_COLUMNS:
            text = _fmt(entry[name])
            if bold and method.mode == GREEDY and len(single) > 1 and entry[name] == best[name]:
                text = f"**{text}**"
            if "spread" in entry:
                low, high = entry["spread"][name]
                text += f" [{_fmt(low)}, {_fmt(high)}]"
            cells.append(text)
        cells += [_fmt(entry[name]) for name, _ in _JUDGE_FREE_COLUMNS]
        cells += [_pct(entry["distribution"][value]) for value in OUTCOMES]
        lines.append("| " + " | ".join(cells) + " |")
    return lines


def _tables(entries: list[tuple[Method, dict]], best_of_n: dict[str, int], group_size: int | None = None) -> list[str]:
    """The main table, then the format-failing prompts' table (if any)."""
    main, failing = split_failing(entries)
    lines = [*comparison_table(main, best_of_n, group_size), ""]
    if failing:
        lines += [
            f"Format-failing prompts ({_pct(FORMAT_FAIL_SHARE)} % or more format errors here; not compared):",
            "",
            *comparison_table(failing, best_of_n, group_size, bold=False),
            "",
        ]
    return lines


def _names_and_splits(metrics: dict, level: str) -> list[tuple[str, str]]:
    """Every (name, split) of a level ("groups" or "datasets") present in any run, sorted."""
    return sorted(
        {
            (name, split)
            for modes in metrics.values()
            for mode in modes.values()
            for name, splits in mode[level].items()
            for split in splits
        }
    )


def _samples_per_image(metrics: dict) -> dict[str, int]:
    return {
        run: max(
            entry["samples_per_image"] for splits in modes[BEST_OF_N]["datasets"].values() for entry in splits.values()
        )
        for run, modes in metrics.items()
        if BEST_OF_N in modes
    }


def _style(rows: list[Method]) -> dict[str, tuple]:
    """One colour and marker per row, the same in every plot."""
    return {method.key: (colormaps["tab10"](index % 10), "osD^v<>ph*"[index % 10]) for index, method in enumerate(rows)}


def scatter_plot(panels: dict[tuple[str, str], list[tuple[Method, dict]]], style: dict[str, tuple], path: Path) -> None:
    """Specificity (y) against correctness (x) of every row, one panel per group and split, HM contours;
    rows of several seeds at their mean, with bars from the lowest to the highest seed."""
    fig = Figure(figsize=(4.2 * len(panels), 5.2))
    axes = fig.subplots(1, len(panels), squeeze=False)
    grid = np.linspace(0.001, 1, 200)
    correctness, specificity = np.meshgrid(grid, grid)
    hm = 2 * correctness * specificity / (correctness + specificity)
    for axis, ((group, split), entries) in zip(axes[0], panels.items(), strict=True):
        contours = axis.contour(
            correctness, specificity, hm, levels=[0.2, 0.4, 0.6, 0.8, 0.9], colors="#cccccc", linewidths=0.8
        )
        axis.clabel(contours, fmt="HM %.1f", fontsize=7)
        for method, entry in entries:
            color, marker = style[method.key]
            if "spread" in entry:
                (c_low, c_high), (s_low, s_high) = entry["spread"]["correctness"], entry["spread"]["specificity"]
                axis.errorbar(
                    entry["correctness"],
                    entry["specificity"],
                    xerr=[[entry["correctness"] - c_low], [c_high - entry["correctness"]]],
                    yerr=[[entry["specificity"] - s_low], [s_high - entry["specificity"]]],
                    fmt="none",
                    ecolor=color,
                    elinewidth=1,
                    capsize=2,
                )
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
                zorder=3,
            )
        axis.set(
            xlim=(-0.02, 1.04),
            ylim=(-0.02, 1.04),
            xlabel="correctness",
            ylabel="specificity",
            title=f"{group} ({split})",
        )
        axis.set_aspect("equal")
    legend = {}
    for axis in axes[0]:
        for handle, label in zip(*axis.get_legend_handles_labels(), strict=True):
            legend.setdefault(label, handle)
    fig.legend(legend.values(), legend.keys(), loc="lower center", ncols=min(3, len(legend)), fontsize=8, frameon=False)
    fig.tight_layout(rect=(0, 0.06 * ((len(legend) + 2) // 3), 1, 1))
    fig.savefig(path, dpi=110)


def category_bars(entries: list[tuple[Method, dict]], title: str, path: Path) -> None:
    """Stacked horizontal bars of the outcome shares, one bar per row (the mean of its seeds)."""
    labels = [method.label.replace("`", "") for method, _ in entries]
    fig = Figure(figsize=(9, 0.45 * len(entries) + 2.0))
    axis = fig.subplots()
    left = np.zeros(len(entries))
    for value in OUTCOMES:
        shares = np.array([entry["distribution"][value] for _, entry in entries])
        axis.barh(
            labels,
            shares,
            left=left,
            color=OUTCOME_COLORS[value],
            label=OUTCOME_NAMES[value],
            edgecolor="white",
            linewidth=0.5,
        )
        left += shares
    axis.invert_yaxis()  # first method on top, as in the table
    axis.set(xlim=(0, 1), xlabel="share of predictions", title=title)
    fig.legend(loc="lower center", ncols=len(OUTCOMES), fontsize=7.5, frameon=False)
    fig.tight_layout(rect=(0, 0.3 / fig.get_figheight(), 1, 1))  # room for the legend below
    fig.savefig(path, dpi=110)


def _judges(per_sample: pl.DataFrame, names: dict[str, str]) -> str:
    judged = per_sample.filter(pl.col("judge").is_not_null())
    counts = judged.group_by("judge").len().sort("len", "judge", descending=[True, False])
    total = judged.height
    return ", ".join(
        f"{names.get(judge, f'`{judge}`')} {count} ({_pct(count / total)} %)" for judge, count in counts.iter_rows()
    )


def _deltas(panels: dict[tuple[str, str], list[tuple[Method, dict]]]) -> list[str]:
    """SpeciaRL minus base zero-shot, RFT and the null control, per group: the paper's claims."""
    theirs_keys = ("base-general", "binary-general", "null_control-general")
    lines = []
    for (group, split), entries in panels.items():
        by_key = {method.key: (method, entry) for method, entry in entries}
        if "speciarl-general" not in by_key:
            continue
        ours = by_key["speciarl-general"][1]
        for key in theirs_keys:
            if key in by_key:
                method, theirs = by_key[key]
                cells = [f"{ours[name] - theirs[name]:+.3f}" for name, _ in _METRIC_COLUMNS]
                lines.append(f"| {group} | {split} | {method.label} | " + " | ".join(cells) + " |")
    if not lines:
        return []
    return [
        "## SpeciaRL against its baselines",
        "",
        "Differences of group metrics, means over seeds where a method has several (positive: SpeciaRL is higher).",
        "",
        "| Group | Split | Compared with | Δ Spec. | Δ Corr. | Δ HM | Δ Score |",
        "|---|---|---|---:|---:|---:|---:|",
        *lines,
        "",
    ]


def _format_warnings(metrics: dict, rows: list[Method]) -> list[str]:
    """One line per single-pass run and dataset whose format-error share reaches FORMAT_WARNING_SHARE."""
    flagged = [
        (method, run, dataset, split, entry["distribution"][FORMAT_ERROR])
        for method in rows
        if method.mode == GREEDY
        for run in method.runs
        for dataset, splits in sorted(metrics[run][GREEDY]["datasets"].items())
        for split, entry in sorted(splits.items())
        if entry["distribution"][FORMAT_ERROR] >= FORMAT_WARNING_SHARE
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
    lines += [
        f"- {method.label} (`{run}`): {_pct(share)} % on {dataset} ({split})"
        for method, run, dataset, split, share in flagged
    ]
    return lines + [""]


def read_curves(runs_dir: str | Path, runs: list[str]) -> dict[str, pl.DataFrame]:
    """{training run: its curves.csv (step, reward_mean, zero_std_group_share, ...)}; a missing one is an error."""
    curves = {}
    for run in runs:
        path = Path(runs_dir) / run / TRAIN_CURVES
        if not path.is_file():
            raise FileNotFoundError(f"{path}: not found (the train stage of run {run} writes it)")
        try:
            frame = pl.read_csv(path)
        except (pl.exceptions.PolarsError, OSError) as exc:
            raise ValueError(f"{path}: not a readable CSV ({exc})") from None
        missing = [name for name in ("step", "reward_mean") if name not in frame.columns]
        if missing:
            raise ValueError(f"{path}: missing column(s) {', '.join(missing)}")
        curves[run] = frame
    return curves


def training_plot(curves: dict[str, pl.DataFrame], style: dict[str, tuple], path: Path) -> None:
    """GRPO reward mean per step, every run on one chart; the seeds of a method share its colour."""
    fig = Figure(figsize=(8, 4.5))
    axis = fig.subplots()
    seen: dict[str, int] = {}
    for run, frame in curves.items():
        key = f"{trained_method(run)}-general"
        color = style.get(key, (colormaps["tab10"](len(style) % 10),))[0]
        dash = ("-", "--", ":", "-.")[seen.get(key, 0) % 4]
        seen[key] = seen.get(key, 0) + 1
        steps, rewards = frame["step"].to_numpy(), frame["reward_mean"].to_numpy()
        axis.plot(steps, rewards, dash, color=color, label=run, linewidth=1.2)
    axis.set(xlabel="step", ylabel="reward mean over the step's rollouts", title="GRPO reward per step")
    axis.legend(fontsize=8, frameon=False)
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def write_curves_csv(curves: dict[str, pl.DataFrame], path: Path) -> None:
    """Every run's reward curve in one long table (run, step, reward_mean): the DVC plot of all runs."""
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["run", "step", "reward_mean"])
        for run, frame in curves.items():
            pairs = zip(frame["step"], frame["reward_mean"], strict=True)
            writer.writerows((run, step, reward) for step, reward in pairs)


def _training(curves: dict[str, pl.DataFrame], style: dict[str, tuple], out_dir: Path) -> list[str]:
    if not curves:
        return []
    training_plot(curves, style, out_dir / TRAINING_FILE)
    write_curves_csv(curves, out_dir / CURVES_FILE)
    lines = [
        "## Training",
        "",
        f"GRPO reward per step of every training run (`{CURVES_FILE}` holds the curves; each run's `curves.csv` "
        f"every other one). First and last: the reward mean over the first and the last {CURVE_WINDOW} steps. "
        "Zero-spread groups: the share of GRPO groups whose rollouts all got the same reward (no learning "
        "signal), mean over steps.",
        "",
        "| Run | Method | Steps | Reward, first | Reward, last | Zero-spread groups % |",
        "|---|---|---:|---:|---:|---:|",
    ]
    for run, frame in curves.items():
        label = TRAINED.get(trained_method(run), (f"Trained `{trained_method(run)}`",))[0]
        rewards = frame["reward_mean"]
        zero = _pct(frame["zero_std_group_share"].mean()) if "zero_std_group_share" in frame.columns else "–"
        lines.append(
            f"| `{run}` | {label} | {frame.height} | {_fmt(rewards.head(CURVE_WINDOW).mean())} | "
            f"{_fmt(rewards.tail(CURVE_WINDOW).mean())} | {zero} |"
        )
    return lines + ["", f"![GRPO reward per step, every run]({TRAINING_FILE})", ""]


def _luck(luck: dict[str, dict]) -> list[str]:
    """Tables of the judge stats' luck figures (speciarl.judge.luck), one per table, dataset and split."""
    if not luck:
        return []
    lines = [
        "## Luck: how often the best level rests on one rollout",
        "",
        "Per image, each rollout reaches a taxonomy level of the truth's lineage (or none); the image's best "
        "level is the finest one some rollout reached: SpeciaRL's anchor. Reached: images where some rollout "
        "reached the level. Chance: what a policy naming a uniformly random node of the level in each of its "
        "N rollouts reaches, 1 − (1 − 1/k)^N. Best: images whose best level is this one; by one rollout: of "
        "all images, those whose best level is this one and was reached by exactly one rollout. Reached "
        "close to chance means the anchor at that level is mostly luck.",
        "",
    ]
    for source, datasets in luck.items():
        for dataset, splits in datasets.items():
            for split, figures in splits.items():
                lines += [
                    f"### `{source}`: {dataset} ({split}), {figures['images']} images, "
                    f"N = {figures['rollouts_per_image']:g} rollouts per image",
                    "",
                    "| Level | Nodes k | Reached % | Chance % | Best % | Best by one rollout % |",
                    "|---|---:|---:|---:|---:|---:|",
                ]
                for level, entry in figures["levels"].items():
                    lines.append(
                        f"| {level} | {entry['nodes']} | {_pct(entry['reached'])} | {_pct(entry['chance'])} | "
                        f"{_pct(entry['best'])} | {_pct(entry['best_single'])} |"
                    )
                lines.append("")
    return lines


def write_model_cards(
    metrics: dict, runs_dir: str | Path, runs: list[str], metrics_path: str, out_dir: Path
) -> list[str]:
    """<out_dir>/model_cards/<run>/README.md for each training run: its adapter's card with evaluation results."""
    written = []
    for run in runs:
        source = Path(runs_dir) / run / ADAPTER_DIR / "README.md"
        if not source.is_file():
            raise FileNotFoundError(f"{source}: not found (the train stage of run {run} writes the adapter's card)")
        results = {
            prediction_run: modes[GREEDY]["datasets"]
            for prediction_run, modes in metrics.items()
            if GREEDY in modes and prediction_run.rpartition("-")[0] == run
        }
        path = out_dir / MODEL_CARDS_DIR / run / "README.md"
        path.parent.mkdir(parents=True)
        path.write_text(with_evaluation(source.read_text(), run, results, metrics_path))
        written.append(f"`{MODEL_CARDS_DIR}/{run}/README.md`")
    if not written:
        return []
    return [
        "## Model cards",
        "",
        "Each adapter's model card with these evaluation results (publish it with the adapter, in place of the "
        "train-time card): " + ", ".join(written) + ".",
        "",
    ]


def _definitions() -> list[str]:
    utility = ", ".join(f"{value} {UTILITY[value]:g}" for value in OUTCOMES)
    return [
        "## Definitions",
        "",
        "Every prediction has one outcome: a verdict category (more specific, specific, less specific, "
        "generic, abstain, wrong) or a format error (no parseable `<answer>`).",
        "",
        "- **Correctness** = (more specific + specific + less specific + generic) / all predictions; "
        'abstentions and format errors count in "all".',
        "- **Specificity** = (more specific + specific) / correct predictions; 0 when none is correct.",
        "- **HM** = 2 · Spec. · Corr. / (Spec. + Corr.); 0 when both are 0.",
        f"- **Score** = mean utility over all predictions: {utility}.",
        "- A **group** averages the per-dataset metrics of its datasets (HM too: computed per dataset, then averaged).",
        "- **Single pass**: the greedy prediction (sample 0) per image. **Best-of-N**: per image, the best "
        "verdict among the base policy's N samples (more specific first, format error last).",
        "- **Seeds**: the training runs `<method>_s<k>` are seeds of `<method>`; their row shows the mean and "
        "[min, max] over the seeds (every other column: the mean).",
        "- **Null control**: a training run whose reward is drawn at random, with the same knobs as the others; "
        "what it changes is the optimiser's doing, not the reward's.",
        "- **Incl.** (text inclusion, judge-free): the normalised truth's words appear consecutively and whole in "
        'the normalised prediction, or the prediction\'s in the truth ("warbler" / "golden-winged warbler" '
        'counts, "cat" / "catbird" does not); share of predictions, format errors count 0.',
        "- **Sim.** (judge-free): mean cosine similarity of the all-MiniLM-L6-v2 sentence embeddings of the "
        "normalised prediction and truth; format errors count 0.",
        "- Category columns: share of predictions (%) per outcome: "
        + ", ".join(f"{short} = {value}" for value, short in OUTCOME_SHORT.items())
        + ". The full counts are in `metrics.json`.",
        "",
    ]


@dataclass
class ReportInputs:
    """What the report is written from (read_inputs reads them from the evaluate params' paths)."""

    metrics: dict
    per_sample: pl.DataFrame  # its `judge` column
    groups: dict[str, list[str]]
    metrics_path: str = "metrics.json"
    judge_names: dict[str, str] = field(default_factory=dict)
    luck: dict[str, dict] = field(default_factory=dict)  # judge stats' luck: {table: {dataset: {split: ...}}}
    runs_dir: str | None = None  # None: no training section and no model cards
    training_runs: list[str] = field(default_factory=list)


def _read_json(path: Path) -> dict:
    if not path.is_file():
        raise FileNotFoundError(f"{path}: not found")
    try:
        return json.loads(path.read_text())
    except json.JSONDecodeError as exc:
        raise ValueError(f"{path}: not valid JSON ({exc})") from None


def training_runs(metrics: dict) -> list[str]:
    """The training runs behind the prediction runs of metrics.json (every policy but the base)."""
    return sorted({run.rpartition("-")[0] for run in metrics} - {"base"})


def read_inputs(params, metrics_path: Path, per_sample_path: Path) -> ReportInputs:
    """The report's inputs from the evaluate params (EvaluateParams) and the evaluate stage's outputs."""
    metrics = _read_json(metrics_path)
    if not per_sample_path.is_file():
        raise FileNotFoundError(f"{per_sample_path}: not found (run the evaluate stage first)")
    eval_stats = _read_json(Path(params.judge_stats))
    harvest_stats = _read_json(Path(params.harvest_judge_stats)) if params.harvest_judge_stats else {}
    return ReportInputs(
        metrics=metrics,
        per_sample=pl.read_parquet(per_sample_path, columns=["judge"]),
        groups=params.groups,
        metrics_path=str(metrics_path),
        judge_names={**harvest_stats.get("judges", {}), **eval_stats.get("judges", {})},
        luck={**harvest_stats.get("luck", {}), **eval_stats.get("luck", {})},
        runs_dir=params.runs_dir,
        training_runs=training_runs(metrics),
    )


def write_report(inputs: ReportInputs, out_dir: str | Path) -> Path:
    """Writes report.md, its PNGs, reward_curves.csv and model_cards/ into `out_dir` (an existing, empty
    folder); returns report.md's path. A missing key of metrics.json is a KeyError."""
    out_dir = Path(out_dir)
    metrics, groups = inputs.metrics, inputs.groups
    rows = methods(metrics)
    if not rows:
        raise ValueError("metrics.json: no runs to report")
    best_of_n = _samples_per_image(metrics)
    style = _style(rows)
    judges = _judges(inputs.per_sample, inputs.judge_names) or "none (only format errors)"
    lines = [
        "# SpeciaRL evaluation report",
        "",
        "Written by the `report` stage from `metrics.json` and `per_sample.parquet` (the `evaluate` stage), the "
        "judge stats and the training runs' curves.",
        f"Verdicts by judge (all runs): {judges}.",
        "",
        "## Comparison by group",
        "",
        "Best single-pass value of each verdict metric in bold. Spec., Corr., HM, Score: verdict metrics; "
        "Incl., Sim.: judge-free metrics; then the outcome distribution (%). Definitions at the end.",
        "",
    ]
    present = _names_and_splits(metrics, "groups")
    panels = {
        (group, split): _entries(metrics, rows, "groups", group, split)
        for group in groups
        for name, split in present
        if name == group
    }
    for (group, split), entries in panels.items():
        members = groups[group]
        lines += [f"### {group} ({split}; {', '.join(members)})", "", *_tables(entries, best_of_n, len(members))]
    if panels:
        compared = {panel: split_failing(entries)[0] for panel, entries in panels.items()}
        scatter_plot(compared, style, out_dir / SCATTER_FILE)
        lines += [f"![Specificity against correctness per method and group]({SCATTER_FILE})", ""]
    lines += _deltas(panels)
    curves = read_curves(inputs.runs_dir, inputs.training_runs) if inputs.runs_dir else {}
    lines += _training(curves, style, out_dir)
    lines += _luck(inputs.luck)
    lines += _format_warnings(metrics, rows)
    lines += ["## Per dataset", ""]
    for dataset, split in _names_and_splits(metrics, "datasets"):
        entries = _entries(metrics, rows, "datasets", dataset, split)
        image = f"categories_{dataset}_{split}.png"
        category_bars(entries, f"{dataset} ({split}): outcome shares", out_dir / image)
        n = max(entry["n"] for _, entry in entries)
        lines += [f"### {dataset} ({split}, {n} images)", "", *_tables(entries, best_of_n)]
        lines += [f"![Outcome shares per method on {dataset} {split}]({image})", ""]
    if inputs.runs_dir:
        lines += write_model_cards(metrics, inputs.runs_dir, inputs.training_runs, inputs.metrics_path, out_dir)
    lines += _definitions()
    report = out_dir / REPORT_FILE
    report.write_text("\n".join(lines))
    return report
