"""Figures of the report: pass@1, the samples' pass rates and verdicts, DPO's implicit reward,
GRPO's training curves (drawn from the frame of :mod:`codedpo.reporting.grpo_curves`) and every
trained checkpoint's loss, reward and learning rate (:mod:`codedpo.reporting.training_curves`).

Every figure is drawn with matplotlib's Agg backend (no display) and written atomically; the
format follows the file's suffix (``.png``, ``.pdf``, ``.svg``).

Command line::

    codedpo plot pass-at-1 --scores results/eval/*/*/*/scores.json --models demo-a demo-b \\
        --benchmarks demo_eval --out results/plots/pass_at_1.png
    codedpo plot rounds --scores results/eval/*/*/*/scores.json --models demo-a \\
        --benchmarks demo_eval --out results/plots/rounds.png
    codedpo plot pass-histogram --stats results/pairs/*/stats.json --out pass_histogram.png
    codedpo plot verdicts --stats results/pairs/*/stats.json --out verdicts.png
    codedpo plot grpo-curves --rollouts results/models/*/rollouts.jsonl --labels a b \\
        --rewards a=pass_all --rewards b=rule --out grpo_curves.png --out-csv grpo_curves.csv
    codedpo plot training-curves --summaries results/checkpoints/*/*/train_summary.json \\
        --labels a-rft a-dpo --out training_curves.png --out-csv training_curves.csv

The policy of a ``stats.json`` is the name of its directory (``results/pairs/{policy}/``) unless
``--policies`` names them. The implicit-reward figure is drawn by ``codedpo analyze-rewards``.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence
from pathlib import Path

import matplotlib

from codedpo.verbs import command_parser

matplotlib.use("Agg")  # before pyplot: batch jobs have no display

import matplotlib.pyplot as plt  # noqa: E402
import pandas as pd  # noqa: E402

from codedpo.evaluation.score_files import (  # noqa: E402
    DEFAULT_RECIPE,
    DEFAULT_RUN,
    Run,
    collect,
    load_scores,
    recipe_label,
    run_of,
    run_order,
    run_suffix,
)
from codedpo.io import InputError, atomic_write, read_json  # noqa: E402
from codedpo.reporting import grpo_curves, training_curves  # noqa: E402

# The paper's order of methods; on-policy DPO first, then pairs from other models; then GRPO.
VARIANT_ORDER = {"base": 0, "rft": 1, "dpo": 2, "grpo": 3}
# One colour per verdict, failures from mild (orange) to severe (dark red), infrastructure grey.
STATUS_COLORS = {
    "passed": "#2ca02c",
    "failed": "#ff7f0e",
    "runtime_error": "#d62728",
    "timeout": "#9467bd",
    "memory_exceeded": "#8c564b",
    "output_exceeded": "#e377c2",
    "syntax_error": "#7f0000",
    "no_code": "#7f7f7f",
    "sandbox_error": "#7f7f7f",
    "problem_error": "#bcbd22",
}
KIND_COLORS = {
    "pass-fail": "#1f77b4",
    "fail-fail (same error)": "#ff7f0e",
    "fail-fail (different errors)": "#d62728",
}


def _save(fig, out: str | os.PathLike) -> Path:
    out = Path(out)
    fmt = out.suffix.lstrip(".") or "png"
    with atomic_write(out, "wb") as fh:
        # No timestamp in the file, so an unchanged figure is byte-identical on a rerun.
        metadata = {"png": {"Software": None}, "pdf": {"CreationDate": None}, "svg": {"Date": None}}
        with plt.rc_context({"svg.hashsalt": "codedpo"}):
            fig.savefig(fh, format=fmt, dpi=150, bbox_inches="tight", metadata=metadata.get(fmt))
    plt.close(fig)
    return out


def variant_label(policy: str, variant: str, pairs_from: str | None, run: Run = DEFAULT_RUN) -> str:
    """``base``, ``+ RFT``, ``+ DPO`` (on-policy), ``+ DPO (pairs from X)`` or ``+ GRPO <arm>``;
    a run other than the paper's adds its arm, recipe and round (``+ DPO max_min r2``)."""
    kind = variant.split("-")[0].lower()
    suffix = f" {run_suffix(run)}" if run_suffix(run) else ""
    if kind == "base":
        return "base"
    if kind == "grpo":
        return f"+ GRPO {run.arm}"
    if kind == "rft":
        return "+ RFT" + suffix
    source = pairs_from or (variant.split("-", 1)[1] if "-" in variant else policy)
    return "+ DPO" + suffix if source == policy else f"+ DPO{suffix} (pairs from {source})"


def pass_at_1_frame(scores: Sequence[dict]) -> pd.DataFrame:
    """``policy, benchmark, label, order, pass_at_1`` from score records (docs/formats.md)."""
    rows = []
    for i, score in enumerate(scores):
        where = score.get("_path") or f"scores[{i}]"
        for field in ("policy", "variant", "benchmark", "pass_at_1"):
            if field not in score:
                raise InputError(f"{where}: missing field '{field}'")
        policy, variant = str(score["policy"]), str(score["variant"])
        kind = variant.split("-")[0].lower()
        if kind not in VARIANT_ORDER:
            raise InputError(f"{where}: field 'variant': {variant!r} is not base, rft, dpo or grpo")
        run = run_of(score, kind, where)
        label = variant_label(policy, variant, score.get("pairs_from"), run)
        # Off-policy after on-policy; the paper's run first, then the others in run order.
        order = (VARIANT_ORDER[kind], label.endswith(")"), run_order(run))
        rows.append(
            {
                "policy": policy,
                "benchmark": str(score["benchmark"]),
                "label": label,
                "order": order,
                "pass_at_1": float(score["pass_at_1"]),
            }
        )
    # A plain integer rank (pandas sorts numbers, not tuples).
    ranks = {o: i for i, o in enumerate(sorted({r["order"] for r in rows}))}
    for r in rows:
        r["order"] = ranks[r["order"]]
    return pd.DataFrame(rows, columns=["policy", "benchmark", "label", "order", "pass_at_1"])


GREEDY = "greedy pass@1"


def run_line(run: Run) -> str:
    """A line of the rounds plot: the arm, and the recipe where it is not the paper's."""
    return run.arm if run.recipe == DEFAULT_RECIPE else f"{run.arm} {recipe_label(run.recipe)}"


def rounds_frame(
    scores: Sequence[dict], models: Sequence[str], benchmarks: Sequence[str]
) -> pd.DataFrame:
    """``policy, benchmark, line, round, metric, value``: on-policy DPO per round (round 0: the
    base model, where every line starts); ``metric`` is ``greedy pass@1`` or ``pass@k (sampled)``.
    ``line`` names the arm (and the recipe, where it is not the paper's)."""
    collected = collect(list(scores), list(models), list(benchmarks))
    runs = collected.runs("dpo")
    rows = []

    def add(policy: str, benchmark: str, line: str, round_: int, key: tuple) -> None:
        values = {GREEDY: collected.cells.get(key)}
        values |= {f"pass@{k} (sampled)": v for k, v in collected.pass_k.get(key, {}).items()}
        rows.extend(
            {"policy": policy, "benchmark": benchmark, "line": line, "round": round_,
             "metric": metric, "value": value}
            for metric, value in values.items() if value is not None
        )  # fmt: skip

    for policy in models:
        for benchmark in benchmarks:
            base = (policy, "base", None, DEFAULT_RUN, benchmark)
            for run in runs:
                line = run_line(run)
                if run.round == min(r.round for r in runs if r[:2] == run[:2]):
                    add(policy, benchmark, line, 0, base)  # every line starts at the base model
                add(policy, benchmark, line, run.round, (policy, "dpo", policy, run, benchmark))
    return pd.DataFrame(rows, columns=["policy", "benchmark", "line", "round", "metric", "value"])


def plot_rounds(
    scores: Sequence[dict],
    out: str | os.PathLike,
    models: Sequence[str],
    benchmarks: Sequence[str],
) -> Path:
    """pass@1 against the round: one panel per model (rows) and benchmark (columns), one line per
    arm (colour), greedy pass@1 solid and sampled pass@k, where scored, dashed."""
    df = rounds_frame(scores, models, benchmarks)
    if df.empty:
        raise InputError(f"no scores of {list(models)} on {list(benchmarks)} to plot rounds from")
    cmap = plt.get_cmap("tab10")
    colors = {line: cmap(i % 10) for i, line in enumerate(dict.fromkeys(df["line"]))}
    metrics = sorted(dict.fromkeys(df["metric"]), key=lambda m: (m != GREEDY, len(m), m))
    # Greedy solid; each sampled k its own dash and marker (cycling past three k's).
    sampled_styles = [("--", "x"), (":", "^"), ("-.", "s")]
    styles = {m: ("-", "o") if m == GREEDY else sampled_styles[(i - 1) % 3]
              for i, m in enumerate(metrics)}  # fmt: skip
    last = int(df["round"].max())
    size = (1.0 + 3.2 * len(benchmarks), 0.4 + 2.8 * len(models))
    fig, axes = plt.subplots(len(models), len(benchmarks), figsize=size, squeeze=False)
    for i, policy in enumerate(models):
        for j, benchmark in enumerate(benchmarks):
            ax = axes[i][j]
            sub = df[(df["policy"] == policy) & (df["benchmark"] == benchmark)]
            for (line, metric), points in sub.groupby(["line", "metric"], sort=False):
                points = points.sort_values("round")
                linestyle, marker = styles[metric]
                ax.plot(points["round"], points["value"], linestyle=linestyle, marker=marker,
                        color=colors[line], label=f"{line}: {metric}", markersize=4)  # fmt: skip
            ax.set_xticks(range(last + 1), ["base", *map(str, range(1, last + 1))])
            ax.set_ylim(0, 1.05)
            ax.set_title(f"{policy}: {benchmark}", fontsize=9)
            ax.grid(alpha=0.3)
            if j == 0:
                ax.set_ylabel("pass@1 / pass@k")
            if i == len(models) - 1:
                ax.set_xlabel("DPO round")
    legend_beside(axes)
    return _save(fig, out)


def legend_beside(axes) -> None:
    """One legend for a grid of panels, right of its top-right panel: each label once, in the
    order the panels first drew it."""
    handles: dict = {}
    for ax in axes.flat:
        for handle, label in zip(*ax.get_legend_handles_labels(), strict=True):
            handles.setdefault(label, handle)
    axes[0][-1].legend(list(handles.values()), list(handles), fontsize=7, loc="upper left",
                       bbox_to_anchor=(1.0, 1.0), frameon=False)  # fmt: skip


def plot_pass_at_1(
    scores: Sequence[dict],
    out: str | os.PathLike,
    models: Sequence[str] | None = None,
    benchmarks: Sequence[str] | None = None,
) -> Path:
    """Grouped bars: one panel per benchmark, one group per model, one bar per variant."""
    df = pass_at_1_frame(scores)
    models = list(models or dict.fromkeys(df["policy"]))
    benchmarks = list(benchmarks or dict.fromkeys(df["benchmark"]))
    df = df[df["policy"].isin(models) & df["benchmark"].isin(benchmarks)]
    labels = list(df.sort_values("order", kind="stable")["label"].drop_duplicates())
    cmap = plt.get_cmap("tab10")
    colors = {label: cmap(i % 10) for i, label in enumerate(labels)}
    width = 0.8 / max(len(labels), 1)
    fig, axes = plt.subplots(
        1, len(benchmarks), figsize=(1.2 + 1.6 * len(models) * len(benchmarks), 3.6), squeeze=False
    )
    for ax, benchmark in zip(axes[0], benchmarks, strict=True):
        sub = df[df["benchmark"] == benchmark]
        for j, label in enumerate(labels):
            xs, ys = [], []
            for i, model in enumerate(models):
                cell = sub[(sub["policy"] == model) & (sub["label"] == label)]
                if len(cell):
                    xs.append(i - 0.4 + width * (j + 0.5))
                    ys.append(float(cell["pass_at_1"].iloc[0]))
            bars = ax.bar(xs, ys, width, color=colors[label], label=label)
            ax.bar_label(bars, fmt="%.2f", fontsize=6, padding=1)
        ax.set_xticks(range(len(models)), models)
        ax.set_ylim(0, 1.05)
        ax.set_title(benchmark)
        ax.set_ylabel("greedy pass@1")
        ax.grid(axis="y", alpha=0.3)
    axes[0][-1].legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.0, 1.0), frameon=False)
    return _save(fig, out)


def plot_curves(
    frame: pd.DataFrame, out: str | os.PathLike, trained: dict[str, list[str]] | None = None
) -> Path:
    """GRPO's training curves (:func:`codedpo.reporting.grpo_curves.curves_figure`)."""
    return _save(grpo_curves.curves_figure(frame, trained), out)


def plot_training_curves(frame: pd.DataFrame, out: str | os.PathLike) -> Path:
    """Every checkpoint's training curves
    (:func:`codedpo.reporting.training_curves.curves_figure`)."""
    return _save(training_curves.curves_figure(frame), out)


def parse_histogram(histogram: dict[str, int]) -> list[tuple[int, int, int]]:
    """``[(k, n, problems)]`` from ``{"k/n": problems}`` (stats.json's ``pass_histogram``)."""
    out = []
    for key, count in histogram.items():
        try:
            k, n = (int(part) for part in str(key).split("/"))
        except ValueError:
            raise InputError(f"pass_histogram: key {key!r} is not 'k/n'") from None
        out.append((k, n, int(count)))
    return out


def pass_histogram_table(stats: dict[str, dict]) -> pd.DataFrame:
    """Problems per pass-rate bin (rows) and policy (columns), from stats.json files.

    When every problem has the same number of samples ``n`` the rows are ``0/n .. n/n`` (absent
    counts are zero); otherwise the pass rates ``k/n`` are binned in tenths.
    """
    hists = {p: parse_histogram(s.get("pass_histogram", {})) for p, s in stats.items()}
    sizes = {n for h in hists.values() for _, n, _ in h}
    if len(sizes) <= 1:
        n = next(iter(sizes), 0)
        index = [f"{k}/{n}" for k in range(n + 1)]

        def row(k: int, _n: int) -> int:
            return k

    else:
        index = [f"{i / 10:.1f}-{(i + 1) / 10:.1f}" for i in range(10)]

        def row(k: int, n: int) -> int:
            return min(int(k / n * 10), 9)

    table = pd.DataFrame(0, index=index, columns=list(hists), dtype=int)
    for policy, hist in hists.items():
        for k, n, count in hist:
            table.iloc[row(k, n), table.columns.get_loc(policy)] += count
    return table


def plot_pass_histogram(stats: dict[str, dict], out: str | os.PathLike) -> Path:
    """Problems by how many of their samples passed, one bar per policy in each bin."""
    table = pass_histogram_table(stats)
    fig, ax = plt.subplots(figsize=(6.4, 3.4))
    width = 0.8 / max(len(table.columns), 1)
    for j, policy in enumerate(table.columns):
        xs = [i - 0.4 + width * (j + 0.5) for i in range(len(table))]
        ax.bar(xs, table[policy], width, label=policy)
    ax.set_xticks(range(len(table)), table.index)
    if len(table) and "/" in str(table.index[0]):
        ax.set_xlabel("samples that pass every test")
    else:
        ax.tick_params(axis="x", labelsize=7)
        ax.set_xlabel("fraction of samples that pass every test")
    ax.set_ylabel("problems")
    ax.grid(axis="y", alpha=0.3)
    ax.legend(frameon=False)
    ax.set_title("Per-problem pass rate of the on-policy samples")
    return _save(fig, out)


def verdict_table(stats: dict[str, dict]) -> pd.DataFrame:
    """Sample counts per verdict (rows, mild to severe; verdicts no policy had are left out) and
    policy (columns), from stats.json's ``status_counts``."""
    counts = pd.DataFrame(
        {p: s.get("status_counts", {}) for p, s in stats.items()}, dtype=float
    ).fillna(0.0)
    order = [s for s in STATUS_COLORS if s in counts.index]
    order += [s for s in counts.index if s not in STATUS_COLORS]
    counts = counts.reindex(order)
    return counts[counts.sum(axis=1) > 0].astype(int)


def plot_verdicts(stats: dict[str, dict], out: str | os.PathLike) -> Path:
    """Stacked horizontal bars: each policy's samples by verdict (share, with counts)."""
    counts = verdict_table(stats)
    policies = list(counts.columns)
    totals = [max(int(counts[p].sum()), 1) for p in policies]
    fig, ax = plt.subplots(figsize=(7.0, 0.9 + 0.5 * len(policies)))
    left = [0.0] * len(policies)
    for status, values in counts.iterrows():
        shares = [v / t for v, t in zip(values, totals, strict=True)]
        bars = ax.barh(
            policies, shares, left=left, color=STATUS_COLORS.get(status), label=status, height=0.6
        )
        # Counts on the bars wide enough to hold them (4% of the axis).
        ax.bar_label(
            bars,
            labels=[f"{v}" if s > 0.04 else "" for v, s in zip(values, shares, strict=True)],
            label_type="center",
            fontsize=7,
            color="white",
        )
        left = [a + b for a, b in zip(left, shares, strict=True)]
    ax.set_xlim(0, 1)
    ax.invert_yaxis()
    ax.set_xlabel("share of samples (counts on the bars)")
    ax.legend(fontsize=7, ncol=4, loc="upper center", bbox_to_anchor=(0.5, -0.35), frameon=False)
    ax.set_title("Verdicts of the on-policy samples")
    return _save(fig, out)


def plot_reward_differences(
    responses: pd.DataFrame, pairs: pd.DataFrame, out: str | os.PathLike, title: str | None = None
) -> Path:
    """The paper's Figure 1, measured: implicit vs rule-based reward differences of pairs.

    Left: each pair of responses to one problem, the better one (by the tests) first; points
    below zero are pairs the implicit reward orders the other way. Right: each distinct response's
    implicit reward against the fraction of tests it passed.
    """
    fig, (left, right) = plt.subplots(1, 2, figsize=(10.0, 4.0))
    for kind, color in KIND_COLORS.items():
        sub = pairs[pairs["kind"] == kind]
        if sub.empty:
            continue
        # A deterministic spread along x: many pairs share a rule-reward difference.
        jitter = [((hash_index(i) % 1000) / 1000 - 0.5) * 0.12 for i in range(len(sub))]
        xs = [x + j for x, j in zip(sub["rule_diff"], jitter, strict=True)]
        left.scatter(xs, sub["implicit_diff"], s=12, alpha=0.6, color=color, label=kind)
    left.axhline(0, color="black", lw=0.8)
    left.set_xlabel("rule-based reward difference (better - worse)")
    left.set_ylabel("implicit reward difference (better - worse)")
    left.set_title("Pairs of responses to the same problem")
    left.grid(alpha=0.3)
    if len(pairs):
        left.legend(fontsize=7, frameon=False)

    distinct = responses.drop_duplicates(["task_id", "raw"]) if "raw" in responses else responses
    for status, color in STATUS_COLORS.items():
        sub = distinct[distinct["status"] == status]
        if not sub.empty:
            right.scatter(
                sub["frac_passed"], sub["implicit_reward"], s=12, alpha=0.6, color=color,
                label=status,
            )  # fmt: skip
    right.axhline(0, color="black", lw=0.8)
    right.set_xlabel("fraction of tests passed")
    right.set_ylabel(r"implicit reward $\beta \log \pi_\theta(y|x) / \pi_{ref}(y|x)$")
    right.set_title("Responses")
    right.grid(alpha=0.3)
    right.legend(fontsize=7, frameon=False)
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return _save(fig, out)


def hash_index(i: int) -> int:
    """A fixed pseudo-random integer for ``i`` (Knuth's multiplicative hash)."""
    return (i * 2654435761) % 2**32


def _policy_stats(paths: Sequence[str], policies: Sequence[str] | None) -> dict[str, dict]:
    if policies and len(policies) != len(paths):
        raise InputError(f"{len(policies)} --policies for {len(paths)} --stats files")
    names = list(policies) if policies else [Path(p).parent.name for p in paths]
    out = {}
    for name, path in zip(names, paths, strict=True):
        stats = read_json(path)
        if not isinstance(stats, dict):
            raise InputError(f"{path}: expected a JSON object")
        out[name] = stats
    return out


def main(argv: list[str] | None = None) -> int:
    parser = command_parser("plot", __doc__)
    sub = parser.add_subparsers(dest="figure", required=True)
    p = sub.add_parser(
        "pass-at-1", formatter_class=parser.formatter_class,
        help="greedy pass@1 per model, variant and benchmark",
    )  # fmt: skip
    p.add_argument("--scores", required=True, nargs="+", help="scores.json files")
    p.add_argument("--models", nargs="+", default=None, help="models, in order (default: all)")
    p.add_argument("--benchmarks", nargs="+", default=None, help="benchmarks (default: all)")
    p.add_argument("--out", required=True, help="PNG to write")
    p = sub.add_parser(
        "rounds", formatter_class=parser.formatter_class,
        help="pass@1 against the DPO round, one line per arm",
    )  # fmt: skip
    p.add_argument("--scores", required=True, nargs="+", help="scores.json files")
    p.add_argument("--models", required=True, nargs="+", help="models, one row of panels each")
    p.add_argument("--benchmarks", required=True, nargs="+", help="benchmarks, one column each")
    p.add_argument("--out", required=True, help="PNG to write")
    for name, help_ in (
        ("pass-histogram", "problems by the number of samples that pass"),
        ("verdicts", "samples by verdict, per policy"),
    ):
        p = sub.add_parser(name, formatter_class=parser.formatter_class, help=help_)
        p.add_argument("--stats", required=True, nargs="+", help="results/pairs/*/stats.json")
        p.add_argument("--policies", nargs="+", default=None, help="names (default: directory)")
        p.add_argument("--out", required=True, help="PNG to write")
    p = sub.add_parser(
        "grpo-curves", formatter_class=parser.formatter_class,
        help="GRPO's pass rate, mean reward and hack rate per optimizer step",
    )  # fmt: skip
    p.add_argument("--rollouts", required=True, nargs="+", help="rollouts.jsonl of GRPO runs")
    p.add_argument("--labels", nargs="+", default=None, help="one per file (default: directory)")
    p.add_argument("--rewards", action="extend", nargs="+", default=None,
                   help="kinds drawn per run: LABEL=KIND[,KIND] ... (repeatable) or a JSON "
                        "object (default: every kind with values)")  # fmt: skip
    p.add_argument("--out", required=True, help="PNG to write")
    p.add_argument("--out-csv", default=None, help="the curves' table")
    p = sub.add_parser(
        "training-curves", formatter_class=parser.formatter_class,
        help="loss, DPO reward margin or GRPO mean reward, learning rate per step of each run",
    )  # fmt: skip
    p.add_argument("--summaries", required=True, nargs="+",
                   help="train_summary.json of trained checkpoints (DPO, RFT, GRPO)")  # fmt: skip
    p.add_argument(
        "--labels",
        nargs="+",
        default=None,
        help="one per file, for the legend (default: each file's directory)",
    )
    p.add_argument("--out", required=True, help="PNG to write")
    p.add_argument(
        "--out-csv",
        default=None,
        help="the curves' table, a row per run and step (none unless given)",
    )
    args = parser.parse_args(argv)

    if args.figure == "grpo-curves":
        frame = grpo_curves.curves_frame(args.rollouts, args.labels)
        out = plot_curves(frame, args.out, grpo_curves.parse_trained(args.rewards))
        if args.out_csv:
            print(f"wrote {grpo_curves.write_csv(frame, args.out_csv)}", file=sys.stderr)
    elif args.figure == "training-curves":
        frame = training_curves.curves_frame(args.summaries, args.labels)
        out = plot_training_curves(frame, args.out)
        if args.out_csv:  # the curves' one CSV writer (atomic)
            print(f"wrote {grpo_curves.write_csv(frame, args.out_csv)}", file=sys.stderr)
    elif args.figure == "pass-at-1":
        scores = []
        for path in args.scores:
            score = read_json(path)
            if not isinstance(score, dict):
                raise InputError(f"{path}: expected a JSON object")
            scores.append({**score, "_path": path})
        out = plot_pass_at_1(scores, args.out, args.models, args.benchmarks)
    elif args.figure == "rounds":
        out = plot_rounds(load_scores(args.scores), args.out, args.models, args.benchmarks)
    elif args.figure == "pass-histogram":
        out = plot_pass_histogram(_policy_stats(args.stats, args.policies), args.out)
    else:
        out = plot_verdicts(_policy_stats(args.stats, args.policies), args.out)
    print(f"wrote {out}", file=sys.stderr)
    return 0
