"""Table 3: DPO against online RL (GRPO) on the same execution feedback, and what each cost.

Per model, the rows are the base model, ``+ RFT``, ``+ DPO`` (the paper's run), every other run
of RFT and on-policy DPO present (Table 1's labels: ``+ DPO r2``, ``+ DPO max_min``, ...) and one
row per GRPO run, ``+ GRPO <arm>`` (its recipe added where two runs share an arm). Per benchmark
``b``:

- ``b``: greedy pass@1;
- ``b diff``, ``b diff low``, ``b diff high``, ``b p``: minus the base model's on the same
  problems, with its paired bootstrap interval and McNemar's exact p, as in Table 1
  (:mod:`codedpo.reporting.significance`);
- ``b vs DPO diff``, ``b vs DPO diff low``, ``b vs DPO diff high``, ``b vs DPO p``: the same
  against the paper's DPO run (``+ DPO``, round 1); not on the base and ``+ DPO`` rows.

Then, once per row, its budget (``codedpo budget``: :mod:`codedpo.reporting.budget`):
``responses`` and ``tokens`` generated to train it, ``executor s`` (the sandbox seconds of their
verdicts), ``training s`` and ``GPU h``, cumulative over rounds. A missing score or budget is NaN:
empty in the CSV, "-" in Markdown, "--" in LaTeX. The budgets are counts, not scores: they are
neither bold in LaTeX nor cut to pass@1's three decimals.

``--plot`` draws pass@1 against the responses generated (:func:`budget_frame`): every line starts
at the base model (0 responses); DPO goes through its rounds, one line per arm and recipe; RFT
and each GRPO run are one step from the base model.

Command line::

    codedpo table3 --scores results/eval/*/*/*/scores.json --budgets results/budget/*/*.json \\
        --models demo-codeqwen --benchmarks demo_eval --outdir results/tables \\
        [--plot results/plots/budget.png] [--bootstrap-resamples 10000 --bootstrap-seed 0] \\
        [--budget-note "GRPO budget: 344 responses, matched to DPO with 1 round(s)"] \\
        [--released-after leetcode_new=2024-04-30]

writes ``table3.{csv,md,tex}``.
"""

from __future__ import annotations

import math
import os
import sys
from collections.abc import Sequence
from pathlib import Path

import pandas as pd

from codedpo.evaluation.score_files import (
    DEFAULT_ROUND,
    DEFAULT_RUN,
    Collected,
    Run,
    collect,
    load_scores,
    results_digest,
    run_order,
    run_suffix,
)
from codedpo.io import InputError, atomic_write
from codedpo.reporting.budget import BudgetKey, read_budgets
from codedpo.reporting.table_format import (
    DIFF,
    HIGH,
    LATEX_MISSING,
    LOW,
    MARK,
    MISSING,
    P,
    latex_escape,
    to_latex,
    to_markdown,
)
from codedpo.reporting.tables import (
    DPO,
    INDEX_NAMES,
    RFT,
    Bootstrap,
    Row,
    add_released_argument,
    comparison_frame,
    method_label,
    released_dates,
    released_note,
    write_csv,
)
from codedpo.verbs import command_parser

GRPO = "+ GRPO"
VS_DPO = " vs DPO"
# Table 3's budget columns and the budget file's field each shows.
BUDGET_COLUMNS = {
    "responses": "responses",
    "tokens": "completion_tokens",
    "executor s": "executor_seconds",
    "training s": "train_seconds",
    "GPU h": "gpu_hours",
}
WHOLE = ("responses", "tokens")  # counts, shown as integers
TITLE = "pass@1 against responses generated"


def grpo_label(run: Run, runs: Sequence[Run]) -> str:
    """``+ GRPO pass_all``; ``+ GRPO pass_all (grpo-rule)`` where two runs share the arm."""
    label = f"{GRPO} {run.arm}"
    if len({r.recipe for r in runs if r.arm == run.arm}) > 1:
        label += f" ({run.recipe})"
    return label + (f" r{run.round}" if run.round != DEFAULT_ROUND else "")


def _runs(
    collected: Collected, budgets: dict[BudgetKey, dict], models: Sequence[str], kind: str
) -> list[Run]:
    """The on-policy runs of ``kind`` that a score or a budget of these models holds."""
    found = set(collected.runs(kind))
    found |= {key[3] for key in budgets
              if key[1] == kind and key[0] in models and key[2] in (None, key[0])}  # fmt: skip
    return sorted(found, key=run_order)


def table3_rows(
    collected: Collected, budgets: dict[BudgetKey, dict], models: Sequence[str]
) -> list[tuple[tuple[str, str], BudgetKey]]:
    """``((model, method), (policy, kind, pairs_from, run))`` of each row, in table order; every
    model gets every row (the base, RFT and the paper's DPO run even where nothing is scored)."""
    runs = {kind: _runs(collected, budgets, models, kind) for kind in ("rft", "dpo", "grpo")}
    rows = []
    for model in models:
        rows.append(((model, "base"), (model, "base", None, DEFAULT_RUN)))
        for kind, label, pairs_from in (("rft", RFT, None), ("dpo", DPO, model)):
            for run in [DEFAULT_RUN, *(r for r in runs[kind] if r != DEFAULT_RUN)]:
                rows.append(((model, method_label(label, run)), (model, kind, pairs_from, run)))
        for run in runs["grpo"]:
            rows.append(((model, grpo_label(run, runs["grpo"])), (model, "grpo", None, run)))
    return rows


def _budget_value(budget: dict | None, field: str) -> float:
    value = None if budget is None else budget.get(field)
    return math.nan if value is None else float(value)


def build_table3(
    scores: list[dict],
    budgets: dict[BudgetKey, dict],
    models: Sequence[str],
    benchmarks: Sequence[str],
    bootstrap: Bootstrap | None = None,
) -> pd.DataFrame:
    """Table 3 (see the module docstring) as a DataFrame indexed by ``(model, method)``;
    ``budgets`` as :func:`codedpo.reporting.budget.read_budgets` reads them."""
    models, benchmarks = list(models), list(benchmarks)
    collected = collect(scores, models, benchmarks)
    rows = table3_rows(collected, budgets, models)
    to_base: list[Row] = []
    to_dpo: list[Row] = []
    for label, cell in rows:
        model, kind = cell[0], cell[1]
        trained = kind != "base"
        to_base.append((label, cell, (model, "base", None, DEFAULT_RUN) if trained else None))
        # comparison_frame leaves out a row compared with itself (the paper's DPO run).
        to_dpo.append((label, cell, (model, "dpo", model, DEFAULT_RUN) if trained else None))
    by_base = comparison_frame(to_base, collected, benchmarks, INDEX_NAMES, settings=bootstrap)
    by_dpo = comparison_frame(to_dpo, collected, benchmarks, INDEX_NAMES, settings=bootstrap)
    missing = [math.nan] * len(rows)
    columns: dict[str, list[float]] = {}
    for b in benchmarks:
        columns[b] = by_base[b].tolist()
        for frame, prefix in ((by_base, b), (by_dpo, b + VS_DPO)):
            for suffix in (DIFF, LOW, HIGH, P):
                column = b + suffix
                columns[prefix + suffix] = frame[column].tolist() if column in frame else missing
    for column, field in BUDGET_COLUMNS.items():
        columns[column] = [_budget_value(budgets.get(cell), field) for _, cell in rows]
    return pd.DataFrame(columns, index=by_base.index, dtype=float)


def table3_note(settings: Bootstrap, provenance: str = "", budget_note: str = "") -> str:
    """What the intervals and the budgets are (under the Markdown table, atop the LaTeX one)."""
    note = (
        f"Greedy pass@1; '{MISSING}' = not run. diff: pass@1 minus the base model's on the same "
        "problems; vs DPO: minus the paper's DPO run's (+ DPO, round 1); each with its "
        f"{settings.confidence:.0%} paired bootstrap interval over problems (percentile, "
        f"{settings.resamples} resamples, seed {settings.seed}); p: McNemar's exact test; "
        f"{MARK}: the interval excludes 0. Budgets (codedpo budget), cumulative over rounds (a "
        "round-k DPO row counts rounds 1..k): responses and tokens generated to train the row, "
        "executor s: the sandbox seconds of their verdicts, training s: the trainer's wall time, "
        "GPU h: training seconds times GPUs ('-': trained on no GPU). DPO's and RFT's responses "
        "are their on-policy samples (sampling.n per training problem per round), GRPO's its "
        "rollouts; GRPO's training seconds include its generation and rewards, DPO's exclude "
        "sampling (its executor seconds are counted separately)."
    )
    for extra in (provenance, budget_note):
        if extra:
            note += f" {extra}"
    return " ".join(note.split())  # one line: the LaTeX note is one comment line


def _amount(value: float, whole: bool) -> str:
    if math.isnan(value):
        return MISSING
    if whole or value == 0 or value >= 100:
        return f"{value:.0f}"
    return f"{value:.3g}"  # 3 significant digits: 12.5 s, 0.0556 GPU h


def budget_cells(table: pd.DataFrame) -> list[list[str]]:
    """The budget columns of each row as text ('-' where missing)."""
    return [
        [_amount(float(row[c]), c in WHOLE) for c in BUDGET_COLUMNS] for _, row in table.iterrows()
    ]


def _append_markdown(text: str, headers: list[str], cells: list[list[str]]) -> str:
    lines = text.rstrip("\n").split("\n")
    widths = [max(len(r[i]) for r in [headers, *cells]) for i in range(len(headers))]

    def tail(row: list[str]) -> str:
        return " " + " | ".join(c.rjust(w) for c, w in zip(row, widths, strict=True)) + " |"

    out = [lines[0] + tail(headers), lines[1] + "".join("-" * (w + 1) + ":|" for w in widths)]
    out += [line + tail(row) for line, row in zip(lines[2:], cells, strict=True)]
    return "\n".join(out) + "\n"


def _append_latex(text: str, headers: list[str], cells: list[list[str]]) -> str:
    rows = [[latex_escape(h) for h in headers]]
    rows += [[LATEX_MISSING if c == MISSING else latex_escape(c) for c in row] for row in cells]
    end = " \\\\"
    out, used = [], 0
    for line in text.rstrip("\n").split("\n"):
        if line.startswith("\\begin{tabular}{"):
            line = line[:-1] + "r" * len(headers) + "}"
        elif line.endswith(end) and not line.startswith("%"):
            line = line[: -len(end)] + " & " + " & ".join(rows[used]) + end
            used += 1
        out.append(line)
    if used != len(rows):
        raise ValueError(f"the LaTeX table has {used} rows, the budgets {len(rows)}")
    return "\n".join(out) + "\n"


def _labels(model: str, method: str, first: bool) -> list[str]:
    return [model if method == "base" else method]  # Table 1's layout


def write_table3(
    table: pd.DataFrame, outdir: str | os.PathLike, *, note: str | None = None
) -> list[Path]:
    """``table3.csv`` (every column a number), ``table3.md`` (``note`` beneath it) and
    ``table3.tex`` (``note`` atop it, a comment); the budget columns follow the benchmarks'."""
    outdir = Path(outdir)
    outdir.mkdir(parents=True, exist_ok=True)
    scores = table.drop(columns=list(BUDGET_COLUMNS))
    headers = list(BUDGET_COLUMNS)
    cells = budget_cells(table)
    csv = table.copy()
    for column in BUDGET_COLUMNS:
        # Counts as integers; seconds to the millisecond; GPU hours to the second (1/3600).
        digits = 0 if column in WHOLE else 6 if column == "GPU h" else 3
        csv[column] = ["" if math.isnan(v) else f"{v:.{digits}f}" for v in table[column]]
    csv_path = write_csv(csv, outdir / "table3.csv")
    md_path = outdir / "table3.md"
    with atomic_write(md_path) as fh:
        fh.write(_append_markdown(to_markdown(scores, _labels, ["Model"]), headers, cells))
        if note:
            fh.write(f"\n{note}\n")
    tex_path = outdir / "table3.tex"
    with atomic_write(tex_path) as fh:
        fh.write(_append_latex(to_latex(scores, _labels, ["Model"], note), headers, cells))
    return [csv_path, md_path, tex_path]


def budget_frame(
    scores: list[dict],
    budgets: dict[BudgetKey, dict],
    models: Sequence[str],
    benchmarks: Sequence[str],
) -> pd.DataFrame:
    """``policy, benchmark, line, point, responses, pass_at_1``: the points of the plot.

    Every line starts at the base model (point 0, 0 responses); ``DPO`` (``DPO max_min``, ``DPO
    ipo``: one line per arm and recipe) then goes through its rounds in order, ``RFT`` and each
    ``GRPO <arm>`` take one step. A run is a point where it has both a score and a budget; a line
    with no point but the base model's is left out."""
    models, benchmarks = list(models), list(benchmarks)
    collected = collect(scores, models, benchmarks)
    lines: dict[str, list[tuple[str, Run]]] = {}
    for kind, name in (("rft", "RFT"), ("dpo", "DPO")):
        for run in _runs(collected, budgets, models, kind):
            suffix = run_suffix(run._replace(round=DEFAULT_ROUND))
            line = f"{name} {suffix}" if suffix else name
            lines.setdefault(line, []).append((kind, run))  # rounds in order
    grpo = _runs(collected, budgets, models, "grpo")
    for run in grpo:
        lines.setdefault(grpo_label(run, grpo)[2:], []).append(("grpo", run))
    rows = []
    for model in models:
        for benchmark in benchmarks:
            base = collected.cells.get((model, "base", None, DEFAULT_RUN, benchmark))
            if base is None:
                continue
            for line, runs in lines.items():
                points = [(0.0, base)]
                for kind, run in runs:
                    cell = (model, kind, model if kind == "dpo" else None, run)
                    score = collected.cells.get((*cell, benchmark))
                    if score is not None and cell in budgets:
                        points.append((float(budgets[cell]["responses"]), score))
                if len(points) > 1:
                    rows += [{"policy": model, "benchmark": benchmark, "line": line, "point": i,
                              "responses": x, "pass_at_1": y}
                             for i, (x, y) in enumerate(points)]  # fmt: skip
    columns = ["policy", "benchmark", "line", "point", "responses", "pass_at_1"]
    return pd.DataFrame(rows, columns=columns)


def plot_table3(
    frame: pd.DataFrame, out: str | os.PathLike, models: Sequence[str], benchmarks: Sequence[str]
) -> Path:
    """pass@1 against responses generated: one panel per model (rows) and benchmark (columns),
    one line per method (:func:`budget_frame`)."""
    import matplotlib

    matplotlib.use("Agg")  # batch jobs have no display
    import matplotlib.pyplot as plt

    from codedpo.reporting.plots import _save, legend_beside

    if frame.empty:
        raise InputError(
            f"no scored and budgeted runs of {list(models)} on {list(benchmarks)} to plot"
        )
    cmap = plt.get_cmap("tab10")
    colors = {line: cmap(i % 10) for i, line in enumerate(dict.fromkeys(frame["line"]))}
    size = (1.0 + 3.2 * len(benchmarks), 0.6 + 2.8 * len(models))
    fig, axes = plt.subplots(len(models), len(benchmarks), figsize=size, squeeze=False)
    for i, policy in enumerate(models):
        for j, benchmark in enumerate(benchmarks):
            ax = axes[i][j]
            sub = frame[(frame["policy"] == policy) & (frame["benchmark"] == benchmark)]
            for line, points in sub.groupby("line", sort=False):
                points = points.sort_values("point")
                ax.plot(points["responses"], points["pass_at_1"], marker="o", markersize=4,
                        color=colors[line], label=line)  # fmt: skip
            ax.set_ylim(0, 1.05)
            ax.set_title(f"{policy}: {benchmark}", fontsize=9)
            ax.grid(alpha=0.3)
            if j == 0:
                ax.set_ylabel("greedy pass@1")
            if i == len(models) - 1:
                ax.set_xlabel("responses generated")
    legend_beside(axes)
    fig.suptitle(TITLE, fontsize=10)
    return _save(fig, out)


def main(argv: list[str] | None = None) -> int:
    parser = command_parser("table3", __doc__)
    parser.add_argument("--scores", required=True, nargs="*", help="scores JSON files")
    parser.add_argument("--budgets", required=True, nargs="*", help="budget JSON files")
    parser.add_argument("--models", required=True, nargs="+", help="models, in table order")
    parser.add_argument("--benchmarks", required=True, nargs="+", help="benchmarks, column order")
    parser.add_argument("--outdir", required=True, help="directory for table3.{csv,md,tex}")
    parser.add_argument("--plot", default=None, help="also draw pass@1 against responses here")
    Bootstrap.add_arguments(parser)
    parser.add_argument("--budget-note", default="", help="a sentence added to the note")
    add_released_argument(parser)
    args = parser.parse_args(argv)
    dated = released_dates(args.released_after, args.benchmarks)

    settings = Bootstrap.from_args(args)
    scores = load_scores(args.scores)
    budgets = read_budgets(args.budgets)
    table = build_table3(scores, budgets, args.models, args.benchmarks, settings)
    provenance = (
        f"From {len(scores)} score files (sha256 of their results {results_digest(scores)[:16]}) "
        f"and {len(budgets)} budget files."
    )
    note = table3_note(settings, provenance, " ".join(
        n for n in (args.budget_note, released_note(dated)) if n))  # fmt: skip
    written = write_table3(table, args.outdir, note=note)
    if args.plot:
        frame = budget_frame(scores, budgets, args.models, args.benchmarks)
        written.append(plot_table3(frame, args.plot, args.models, args.benchmarks))
    for path in written:
        print(f"wrote {path}", file=sys.stderr)
    return 0
