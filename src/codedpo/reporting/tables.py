"""The paper's Table 1 (base vs + RFT vs + DPO) and Table 2 (on- vs off-policy DPO).

Both tables are DataFrames indexed by ``(model, method)`` with one column per benchmark (greedy
pass@1, 3 decimals); a missing score is NaN, written empty in CSV, "-" in Markdown and "--" in
LaTeX. The LaTeX table (a booktabs ``tabular`` to ``\\input``) sets the best value of each column
within each model's block in bold, as the paper does. Table 2 holds, as the paper's does, the base
model, on-policy DPO and DPO on the pairs of the models ``off_policy`` names.

Every row other than a base row also carries its **difference to the base model** on each
benchmark, with a seeded 95% paired bootstrap interval over the problems and McNemar's exact
p-value (:mod:`codedpo.reporting.significance`), from the per-problem verdicts in the score files;
the Markdown and LaTeX tables mark a difference whose interval excludes 0
(:mod:`codedpo.reporting.table_format`).

The paper's reported numbers (``configs/paper_results.yaml``, keyed by Hugging Face model id and
benchmark) sit beside ours: a ``<benchmark> (paper)`` column follows a benchmark's column wherever
the paper reports a value for one of the table's rows. Policies are matched to the paper's models
by hub id (``--model-ids``) and benchmarks by the paper's benchmark name (``--benchmark-ids``),
so the demo's models, which have no hub id, get no paper columns. A benchmark that keeps only
problems released after a date (``released_after``: problems no model can have seen, which the
paper did not evaluate) gets no paper column and a note naming its date (:func:`released_note`).

Score files carry ``policy`` (the model trained and evaluated), ``variant`` (``base``, ``rft``,
``dpo``) and, for DPO, ``pairs_from`` (the model whose samples built the pairs). A variant
``dpo-<model>`` without ``pairs_from`` (the form of docs/formats.md) means pairs from <model>.
They also say which run of an experiment they are (``arm``, ``recipe``, ``round``;
:mod:`codedpo.evaluation.score_files`): Table 1 shows the paper's run as ``+ RFT`` / ``+ DPO`` and
one more row per other run present, e.g. ``+ DPO r2``, ``+ DPO max_min r3``, ``+ DPO ipo``; Table 2
is the paper's run. Scores with sampled ``pass_at_k`` add ``<benchmark> pass@k (sampled)`` columns.
``--rounds-table`` also writes ``rounds.{md,csv}`` (:mod:`codedpo.reporting.rounds_table`).

The command (``codedpo tables``) is :mod:`codedpo.reporting.make_tables`.
"""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from codedpo.evaluation.score_files import (
    DEFAULT_RUN,
    Collected,
    Key,
    Run,
    collect,
    run_suffix,
)
from codedpo.io import InputError, atomic_write
from codedpo.reporting import significance
from codedpo.reporting.paper_results import Cells
from codedpo.reporting.table_format import (
    DIFF,
    HIGH,
    LOW,
    P,
    to_latex,
    to_markdown,
)

# pass@1 as a fraction: 3 decimals resolve one problem of HumanEval's 164 (0.006).
DECIMALS = 3
RFT = "+ RFT"
DPO = "+ DPO"
ON_POLICY = "DPO on-policy"
INDEX_NAMES = ["model", "method"]
PAPER = "(paper)"


def off_policy_label(other: str) -> str:
    return f"DPO off-policy (pairs from {other})"


def method_label(kind_label: str, run: Run) -> str:
    """``+ DPO`` for the paper's run; ``+ DPO r2``, ``+ DPO max_min r3``, ``+ DPO ipo`` else."""
    suffix = run_suffix(run)
    return f"{kind_label} {suffix}" if suffix else kind_label


def pass_k_column(benchmark: str, k: int) -> str:
    return f"{benchmark} pass@{k} (sampled)"


def pass_k_note(samples: set[int]) -> str:
    n = f"{min(samples)}" if len(samples) == 1 else f"{min(samples)}-{max(samples)}"
    return (
        f"pass@k: the unbiased estimator of Chen et al. (2021), 1 - C(n-c,k)/C(n,k) per problem "
        f"averaged, from n = {n} temperature samples per problem (c of them passed)."
    )


def add_released_argument(parser) -> None:
    """``--released-after BENCHMARK=YYYY-MM-DD ...`` of ``codedpo tables`` and ``table3``."""
    parser.add_argument(
        "--released-after",
        nargs="*",
        default=[],
        metavar="BENCHMARK=YYYY-MM-DD",
        help="benchmarks that keep only problems released after a date (named in the note)",
    )


def key_values(items: Sequence[str], flag: str) -> dict[str, str]:
    """A ``KEY=VALUE ...`` option's items as a mapping (``--model-ids``, ``--released-after``)."""
    out = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key or not value:
            raise InputError(f"{flag}: expected KEY=VALUE, got {item!r}")
        out[key] = value
    return out


def released_dates(items: Sequence[str], benchmarks: Sequence[str]) -> dict[str, str]:
    """``--released-after``'s items as benchmark -> date, each a valid date of a benchmark the
    table shows."""
    from codedpo.problems.released import iso_date

    dated = {name: iso_date(date, f"--released-after {name}")
             for name, date in key_values(items, "--released-after").items()}  # fmt: skip
    unknown = sorted(set(dated) - set(benchmarks))
    if unknown:
        raise InputError(f"--released-after: {unknown} are not among --benchmarks")
    return dated


def released_note(dated: dict[str, str]) -> str:
    """The note on benchmarks that keep only problems released after a date (benchmark ->
    ``YYYY-MM-DD``): ``leetcode_new: problems released after 2024-04-30 (not in the paper).``"""
    return " ".join(
        f"{name}: problems released after {date} (not in the paper)."
        for name, date in dated.items()
    )


@dataclass(frozen=True)
class Bootstrap:
    """Settings of the paired bootstrap (codedpo.reporting.significance), recorded in the tables'
    note."""

    resamples: int = significance.RESAMPLES
    confidence: float = significance.CONFIDENCE
    seed: int = significance.SEED

    @staticmethod
    def add_arguments(parser) -> None:
        """The commands' bootstrap flags (``codedpo tables``, ``codedpo table3``)."""
        parser.add_argument("--bootstrap-resamples", type=int, default=significance.RESAMPLES,
                            help="resamples")  # fmt: skip
        parser.add_argument("--bootstrap-seed", type=int, default=significance.SEED,
                            help="seed of the resampling")  # fmt: skip
        parser.add_argument("--confidence", type=float, default=significance.CONFIDENCE,
                            help="interval level")  # fmt: skip

    @classmethod
    def from_args(cls, args) -> Bootstrap:
        return cls(args.bootstrap_resamples, args.confidence, args.bootstrap_seed)


def _difference(
    verdicts: dict[Key, dict[str, bool]],
    key: Key,
    reference: Key | None,
    settings: Bootstrap,
    where: str,
) -> significance.Difference | None:
    if reference is None or key not in verdicts or reference not in verdicts or key == reference:
        return None
    try:
        a, b = significance.paired_verdicts(verdicts[reference], verdicts[key])
    except ValueError as exc:
        raise InputError(f"{where}: {exc}") from None
    return significance.paired_difference(
        a, b, resamples=settings.resamples, confidence=settings.confidence, seed=settings.seed
    )


# A row: its index labels, the cell it shows ``(policy, kind, pairs_from, run)`` and the cell its
# difference is taken to (None: no difference); each completed by a benchmark.
Row = tuple[tuple, tuple, "tuple | None"]


def comparison_frame(
    rows: list[Row],
    collected: Collected,
    benchmarks: Sequence[str],
    index_names: Sequence[str],
    paper: Cells | None = None,
    settings: Bootstrap | None = None,
) -> pd.DataFrame:
    """Per benchmark: our greedy pass@1; the paper's where it reports one of these rows; sampled
    pass@k where a row has it; the difference to each row's reference cell, with its paired
    bootstrap interval and McNemar's p, where both have per-problem verdicts."""
    paper = paper or {}
    settings = settings or Bootstrap()
    index = pd.MultiIndex.from_tuples([r[0] for r in rows], names=list(index_names))
    columns: dict[str, list[float]] = {}
    for b in benchmarks:
        keys = [(*cell, b) for _, cell, _ in rows]
        columns[b] = [collected.cells.get(key, math.nan) for key in keys]
        reported = [paper.get(key, math.nan) for key in keys]
        if not all(math.isnan(v) for v in reported):
            columns[f"{b} {PAPER}"] = reported
        for k in collected.ks(keys):
            columns[pass_k_column(b, k)] = [
                collected.pass_k.get(key, {}).get(k, math.nan) for key in keys
            ]
        diffs = [
            _difference(
                collected.verdicts, key, None if ref is None else (*ref, b), settings,
                f"{' '.join(str(x) for x in label if x != '')} on {b}",
            )
            for key, (label, _, ref) in zip(keys, rows, strict=True)
        ]  # fmt: skip
        if any(d is not None for d in diffs):
            columns[b + DIFF] = [d.delta if d else math.nan for d in diffs]
            columns[b + LOW] = [d.low if d else math.nan for d in diffs]
            columns[b + HIGH] = [d.high if d else math.nan for d in diffs]
            columns[b + P] = [d.p_value if d else math.nan for d in diffs]
    frame = pd.DataFrame(columns, index=index, dtype=float)
    # p-values keep their precision (a p of 2e-5 must not print as 0); the rest 3 decimals.
    rounded = [c for c in frame.columns if not c.endswith(P)]
    frame[rounded] = frame[rounded].round(DECIMALS)
    return frame


def build_tables(
    scores: list[dict],
    models: list[str],
    benchmarks: list[str],
    paper: Cells | None = None,
    off_policy: Sequence[tuple[str, str]] | None = None,
    bootstrap: Bootstrap | None = None,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Return ``(table1, table2)``; every model gets all its rows, filled or NaN.

    Table 1: each model's base, ``+ RFT`` and ``+ DPO`` rows, then one row per further run
    (arm, recipe, round) of on-policy RFT or DPO that any score of these models holds, labelled by
    :func:`method_label`. Table 2 is the paper's run only.
    ``paper`` (from :func:`load_paper`) adds ``<benchmark> (paper)`` columns where it has values.
    ``off_policy``: the ``(policy, pairs_from)`` DPO runs of Table 2 (None: every model on
    every other model's pairs); Table 2 holds the models that have one, in ``models`` order
    (``pairs_from`` may be a model the tables do not show).
    ``bootstrap`` sets the paired bootstrap of the differences to the base model.
    """
    collected = collect(scores, models, benchmarks)
    if off_policy is None:
        off_policy = [(m, o) for m in models for o in models if o != m]
    for policy, source in off_policy:
        if policy not in models:
            raise InputError(f"off_policy: {policy!r} is not one of the models {list(models)}")
        if policy == source:
            raise InputError(f"off_policy: {policy!r} on its own pairs is on-policy DPO")
    extra = {
        kind: [run for run in collected.runs(kind) if run != DEFAULT_RUN] for kind in ("rft", "dpo")
    }
    rows1: list[Row] = []
    for model in models:
        base = (model, "base", None, DEFAULT_RUN)
        rows1.append(((model, "base"), base, None))
        for kind, label, pairs_from in (("rft", RFT, None), ("dpo", DPO, model)):
            for run in [DEFAULT_RUN, *extra[kind]]:
                cell = (model, kind, pairs_from, run)
                rows1.append(((model, method_label(label, run)), cell, base))
    rows2: list[Row] = []
    for model in models:
        sources = [src for policy, src in off_policy if policy == model]
        if not sources:
            continue
        base = (model, "base", None, DEFAULT_RUN)
        rows2.append(((model, "base"), base, None))
        rows2.append(((model, ON_POLICY), (model, "dpo", model, DEFAULT_RUN), base))
        rows2 += [((model, off_policy_label(src)), (model, "dpo", src, DEFAULT_RUN), base)
                  for src in sources]  # fmt: skip
    return (
        comparison_frame(rows1, collected, benchmarks, INDEX_NAMES, paper, bootstrap),
        comparison_frame(rows2, collected, benchmarks, INDEX_NAMES, paper, bootstrap),
    )


def _table1_labels(model: str, method: str, first: bool) -> list[str]:
    # The paper's layout: the base model's name, then "+ RFT" and "+ DPO" beneath it.
    return [model if method == "base" else method]


def _table2_labels(model: str, method: str, first: bool) -> list[str]:
    return [model if first else "", "base" if method == "base" else method]


def write_csv(df: pd.DataFrame, path: Path) -> Path:
    """Every column as a number (3 decimals), the index as leading columns, empty where missing."""
    out = df.reset_index()
    for column in [c for c in df.columns if c.endswith(P)]:
        # p-values keep three significant digits (a p of 2e-5 is not 0.000).
        out[column] = ["" if math.isnan(v) else f"{v:.3g}" for v in out[column].astype(float)]
    with atomic_write(path) as fh:
        out.to_csv(fh, index=False, float_format=f"%.{DECIMALS}f", na_rep="")
    return path


def write_tables(
    table1: pd.DataFrame,
    table2: pd.DataFrame,
    outdir: str | os.PathLike,
    *,
    note: str | None = None,
) -> list[Path]:
    """Write table1/table2 as CSV, Markdown and LaTeX (``note`` goes under each Markdown table
    and atop each LaTeX one, as a comment)."""
    outdir = Path(outdir)
    outdir.mkdir(parents=True, exist_ok=True)
    written = []
    for name, df, labels, headers in (
        ("table1", table1, _table1_labels, ["Model"]),
        ("table2", table2, _table2_labels, ["Model", "DPO data"]),
    ):
        csv_path = write_csv(df, outdir / f"{name}.csv")
        md_path = outdir / f"{name}.md"
        with atomic_write(md_path) as fh:
            fh.write(to_markdown(df, labels, headers))
            if note:
                fh.write(f"\n{note}\n")
        tex_path = outdir / f"{name}.tex"
        with atomic_write(tex_path) as fh:
            fh.write(to_latex(df, labels, headers, note))
        written += [csv_path, md_path, tex_path]
    return written
