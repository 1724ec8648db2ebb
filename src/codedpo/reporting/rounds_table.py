"""The round table of iterative on-policy DPO: greedy pass@1 per benchmark, round and arm.

One row per ``(model, arm, recipe, round)`` of on-policy DPO present in the scores (the models'
union: every model gets every row, filled or NaN), beneath each model's base row (round 0, the
policy every arm starts from). Per benchmark ``b``: ``b`` (greedy pass@1), ``b pass@k (sampled)``
(where scored), and on rounds after the first ``b diff``, ``b diff low``, ``b diff high``
and ``b p``: round k minus round 1 of the same model, arm and recipe on the same problems, with
its paired bootstrap interval and McNemar's exact p (:mod:`codedpo.reporting.significance`), where
both scores have per-problem verdicts.

Written by ``codedpo tables ... --rounds-table`` as ``rounds.md`` and ``rounds.csv`` beside
Table 1 and Table 2; :func:`codedpo.reporting.plots.plot_rounds` draws the same numbers against the
round.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import pandas as pd

from codedpo.evaluation.score_files import DEFAULT_RUN, Run, collect
from codedpo.io import atomic_write
from codedpo.reporting.table_format import MARK, to_markdown
from codedpo.reporting.tables import Bootstrap, Row, comparison_frame, write_csv

INDEX_NAMES = ["model", "arm", "recipe", "round"]
BASE_ARM = "base"  # the arm column of a model's base row (round 0)
DIFF_HEADER = "vs r1 [95% CI]"


def build_rounds_table(
    scores: list[dict],
    models: Sequence[str],
    benchmarks: Sequence[str],
    bootstrap: Bootstrap | None = None,
) -> pd.DataFrame:
    """The round table (see the module docstring) as a DataFrame indexed by
    ``(model, arm, recipe, round)``; a base row is ``(model, "base", "", 0)``."""
    collected = collect(scores, list(models), list(benchmarks))
    lines: dict[tuple[str, str], list[int]] = {}
    for run in collected.runs("dpo"):
        lines.setdefault((run.arm, run.recipe), []).append(run.round)
    rows: list[Row] = []
    for model in models:
        rows.append(((model, BASE_ARM, "", 0), (model, "base", None, DEFAULT_RUN), None))
        for (arm, recipe), rounds in lines.items():
            first = (model, "dpo", model, Run(arm, recipe, 1))
            for round_ in rounds:
                cell = (model, "dpo", model, Run(arm, recipe, round_))
                rows.append(((model, arm, recipe, round_), cell, first))
    return comparison_frame(rows, collected, benchmarks, INDEX_NAMES, settings=bootstrap)


def _labels(model: str, arm: str, recipe: str, round_: int, first: bool) -> list[str]:
    return [model if first else "", arm, recipe, str(round_)]


def rounds_note(settings: Bootstrap, provenance: str = "") -> str:
    return (
        "Greedy pass@1 of on-policy DPO per round; round 0 is the base model. vs r1: round k "
        "minus round 1 of the same arm and recipe on the same problems, with its "
        f"{settings.confidence:.0%} paired bootstrap interval over problems (percentile, "
        f"{settings.resamples} resamples, seed {settings.seed}); p: McNemar's exact test; "
        f"{MARK}: the interval excludes 0." + (f" {provenance}" if provenance else "")
    )


def write_rounds_table(
    table: pd.DataFrame, outdir: str | os.PathLike, *, note: str | None = None
) -> list[Path]:
    """``rounds.csv`` (every column a number) and ``rounds.md`` (``note`` beneath it)."""
    outdir = Path(outdir)
    outdir.mkdir(parents=True, exist_ok=True)
    csv_path = write_csv(table, outdir / "rounds.csv")
    md_path = outdir / "rounds.md"
    with atomic_write(md_path) as fh:
        fh.write(to_markdown(table, _labels, ["Model", "Arm", "Recipe", "Round"], DIFF_HEADER))
        if note:
            fh.write(f"\n{note}\n")
    return [csv_path, md_path]
