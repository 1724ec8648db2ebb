"""The paper's Table 1 (base vs + RFT vs + DPO) and Table 2 (on- vs off-policy DPO).

Both tables are DataFrames indexed by ``(model, method)`` with one column per benchmark (greedy
pass@1, 3 decimals); a missing score is NaN, written empty in CSV, "-" in Markdown and "--" in
LaTeX. The LaTeX table (a booktabs ``tabular`` to ``\\input``) sets the best value of each column
within each model's block in bold, as the paper does. Table 2 holds, as the paper's does, the base
model, on-policy DPO and DPO on the pairs of the models ``off_policy`` names.

Every row other than a base row also carries its **difference to the base model** on each
benchmark, with a seeded 95% paired bootstrap interval over the problems and McNemar's exact
p-value (:mod:`codedpo.significance`), from the per-problem verdicts in the score files; the
Markdown and LaTeX tables mark a difference whose interval excludes 0 (:mod:`codedpo.table_format`).

The paper's reported numbers (``configs/paper_results.yaml``, keyed by Hugging Face model id and
benchmark) sit beside ours: a ``<benchmark> (paper)`` column follows a benchmark's column wherever
the paper reports a value for one of the table's rows. Policies are matched to the paper's models
by hub id (``--model-ids``) and benchmarks by the paper's benchmark name (``--benchmark-ids``),
so the demo's models, which have no hub id, get no paper columns.

Score files carry ``policy`` (the model trained and evaluated), ``variant`` (``base``, ``rft``,
``dpo``) and, for DPO, ``pairs_from`` (the model whose samples built the pairs). A variant
``dpo-<model>`` without ``pairs_from`` (the form of docs/formats.md) means pairs from <model>.

Command line::

    python -m codedpo.tables --scores results/scores/*.json --models deepseek codeqwen \\
        --benchmarks humaneval humaneval_plus mbpp mbpp_plus --outdir results/tables \\
        [--off-policy codeqwen=deepseek deepseek=codeqwen] [--bootstrap-seed 0] \\
        [--paper configs/paper_results.yaml --model-ids codeqwen=Qwen/CodeQwen1.5-7B-Chat ...
         --benchmark-ids humaneval=humaneval ...]

writes ``table1.{csv,md,tex}`` and ``table2.{csv,md,tex}``.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import math
import os
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import jsonschema
import pandas as pd
import yaml

from codedpo import significance
from codedpo.io import InputError, atomic_write, read_json

# Rendering lives in table_format; these names stay importable from here.
from codedpo.table_format import (  # noqa: F401
    DIFF,
    HIGH,
    LOW,
    MARK_NOTE,
    MISSING,
    P,
    best_in_block,
    latex_escape,
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
PAPER_BENCHMARKS = ("humaneval", "humaneval_plus", "mbpp", "mbpp_plus")
_SCORES = {
    "type": "object",
    "propertyNames": {"enum": list(PAPER_BENCHMARKS)},
    "additionalProperties": {"type": "number", "minimum": 0, "maximum": 1},
}
PAPER_SCHEMA = {
    "type": "object",
    "required": ["models"],
    "properties": {
        "reference": {"type": "string"},
        "models": {
            "type": "object",
            "additionalProperties": {
                "type": "object",
                "additionalProperties": False,
                "properties": {
                    "name": {"type": "string"},
                    "base": _SCORES,
                    "rft": _SCORES,
                    "dpo": _SCORES,
                    "dpo_pairs_from": {"type": "object", "additionalProperties": _SCORES},
                },
            },
        },
    },
}


def off_policy_label(other: str) -> str:
    return f"DPO off-policy (pairs from {other})"


def _cell_key(score: dict, models: Sequence[str], where: str) -> tuple[str, str, str | None]:
    """``(policy, kind, pairs_from)`` with kind in base/rft/dpo; an unknown variant is an error."""
    for field in ("policy", "variant", "benchmark", "pass_at_1"):
        if field not in score:
            raise InputError(f"{where}: missing field '{field}'")
    policy, variant = str(score["policy"]), str(score["variant"]).lower()
    if variant == "base":
        return policy, "base", None
    if variant == "rft":
        return policy, "rft", None
    if variant == "dpo" or variant.startswith(("dpo-", "dpo_")):
        suffix = str(score["variant"])[4:]
        if score.get("pairs_from"):
            pairs_from = str(score["pairs_from"])
        elif suffix in models:
            pairs_from = suffix
        elif suffix:
            raise InputError(
                f"{where}: field 'variant': {score['variant']!r} names no model in "
                f"{list(models)}; give 'pairs_from'"
            )
        else:
            pairs_from = policy
        return policy, "dpo", pairs_from
    raise InputError(f"{where}: field 'variant': {score['variant']!r} is not base, rft or dpo")


def _verdicts(score: dict, where: str) -> dict[str, bool] | None:
    """``task_id -> passed`` from a score file's ``verdicts`` (None when it has none)."""
    verdicts = score.get("verdicts")
    if verdicts is None:
        return None
    if not isinstance(verdicts, dict) or not all(
        isinstance(v, dict) and isinstance(v.get("passed"), bool) for v in verdicts.values()
    ):
        raise InputError(f"{where}: field 'verdicts' must map task ids to {{'passed': bool}}")
    return {task: v["passed"] for task, v in verdicts.items()}


Key = tuple[str, str, "str | None", str]


def _collect(
    scores: list[dict], models: Sequence[str], benchmarks: Sequence[str]
) -> tuple[dict[Key, float], dict[Key, dict[str, bool]]]:
    """``(cells, verdicts)`` keyed by ``(policy, kind, pairs_from, benchmark)``."""
    cells: dict[Key, tuple[float, str]] = {}
    verdicts: dict[Key, dict[str, bool]] = {}
    for i, score in enumerate(scores):
        where = score.get("_path") or f"scores[{i}]"
        policy, kind, pairs_from = _cell_key(score, models, where)
        benchmark = str(score["benchmark"])
        if policy not in models or benchmark not in benchmarks:
            continue
        value = score["pass_at_1"]
        if not isinstance(value, (int, float)) or not 0.0 <= value <= 1.0:
            raise InputError(f"{where}: field 'pass_at_1': {value!r} is not a number in [0, 1]")
        key = (policy, kind, pairs_from, benchmark)
        if key in cells:
            raise InputError(
                f"{where}: two scores for {policy} {kind} (pairs from {pairs_from}) on "
                f"{benchmark}; the other is {cells[key][1]}"
            )
        cells[key] = (float(value), where)
        per_problem = _verdicts(score, where)
        if per_problem is not None:
            if len(per_problem) != score.get("total", len(per_problem)) or sum(
                per_problem.values()
            ) != score.get("passed", sum(per_problem.values())):
                raise InputError(f"{where}: field 'verdicts' disagrees with 'passed'/'total'")
            verdicts[key] = per_problem
    return {k: v for k, (v, _) in cells.items()}, verdicts


Cells = dict[tuple[str, str, "str | None", str], float]


def load_paper(
    path: str | os.PathLike, model_ids: dict[str, str], benchmark_ids: dict[str, str]
) -> Cells:
    """The paper's numbers as cells keyed like ours: ``(policy, kind, pairs_from, benchmark)``.

    ``model_ids``: policy -> hub id; ``benchmark_ids``: our benchmark -> the paper's benchmark.
    """
    try:
        data = yaml.safe_load(Path(path).read_text())
    except (OSError, yaml.YAMLError) as exc:
        raise InputError(f"{path}: cannot read the paper's results: {exc}") from None
    error = jsonschema.exceptions.best_match(
        jsonschema.Draft202012Validator(PAPER_SCHEMA).iter_errors(data)
    )
    if error is not None:
        field = ".".join(str(p) for p in error.absolute_path) or "(file)"
        raise InputError(f"{path}: field '{field}': {error.message}")
    policy_of = {hub: policy for policy, hub in model_ids.items()}
    cells: Cells = {}

    def put(policy: str, kind: str, pairs_from: str | None, scores: dict) -> None:
        for ours, theirs in benchmark_ids.items():
            if theirs in scores:
                cells[(policy, kind, pairs_from, ours)] = float(scores[theirs])

    for hub, entry in data["models"].items():
        policy = policy_of.get(hub)
        if policy is None:
            continue
        for kind in ("base", "rft"):
            put(policy, kind, None, entry.get(kind) or {})
        put(policy, "dpo", policy, entry.get("dpo") or {})
        for source_hub, scores in (entry.get("dpo_pairs_from") or {}).items():
            if source_hub in policy_of:
                put(policy, "dpo", policy_of[source_hub], scores)
    return cells


@dataclass(frozen=True)
class Bootstrap:
    """Settings of the paired bootstrap (codedpo.significance), recorded in the tables' note."""

    resamples: int = significance.RESAMPLES
    confidence: float = significance.CONFIDENCE
    seed: int = significance.SEED


def _difference(
    verdicts: dict[Key, dict[str, bool]], key: Key, base: Key, settings: Bootstrap, where: str
) -> significance.Difference | None:
    if key not in verdicts or base not in verdicts or key == base:
        return None
    try:
        a, b = significance.paired_verdicts(verdicts[base], verdicts[key])
    except ValueError as exc:
        raise InputError(f"{where}: {exc}") from None
    return significance.paired_difference(
        a, b, resamples=settings.resamples, confidence=settings.confidence, seed=settings.seed
    )


def _frame(
    rows: list[tuple[str, str, str | None, str | None]],
    cells: Cells,
    paper: Cells,
    benchmarks: Sequence[str],
    verdicts: dict[Key, dict[str, bool]] | None = None,
    settings: Bootstrap | None = None,
) -> pd.DataFrame:
    """Rows ``(model, method, kind, pairs_from)``; a paper column follows each benchmark the
    paper reports for any of these rows, and difference columns each benchmark where a row
    other than the base has per-problem verdicts to compare with the base's."""
    verdicts = verdicts or {}
    settings = settings or Bootstrap()
    index = pd.MultiIndex.from_tuples([r[:2] for r in rows], names=INDEX_NAMES)
    columns: dict[str, list[float]] = {}
    for b in benchmarks:
        columns[b] = [cells.get((m, kind, src, b), math.nan) for m, _, kind, src in rows]
        reported = [paper.get((m, kind, src, b), math.nan) for m, _, kind, src in rows]
        if not all(math.isnan(v) for v in reported):
            columns[f"{b} {PAPER}"] = reported
        diffs = [
            _difference(
                verdicts, (m, kind, src, b), (m, "base", None, b), settings,
                f"{m} {method} on {b}",
            )
            for m, method, kind, src in rows
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

    ``paper`` (from :func:`load_paper`) adds ``<benchmark> (paper)`` columns where it has values.
    ``off_policy``: the ``(policy, pairs_from)`` DPO runs of Table 2 (None: every model on
    every other model's pairs); Table 2 holds the models that have one, in ``models`` order
    (``pairs_from`` may be a model the tables do not show).
    ``bootstrap`` sets the paired bootstrap of the differences to the base model.
    """
    cells, verdicts = _collect(scores, models, benchmarks)
    paper = paper or {}
    if off_policy is None:
        off_policy = [(m, o) for m in models for o in models if o != m]
    for policy, source in off_policy:
        if policy not in models:
            raise InputError(f"off_policy: {policy!r} is not one of the models {list(models)}")
        if policy == source:
            raise InputError(f"off_policy: {policy!r} on its own pairs is on-policy DPO")
    rows1 = [
        (model, method, kind, pairs_from)
        for model in models
        for method, kind, pairs_from in (
            ("base", "base", None),
            (RFT, "rft", None),
            (DPO, "dpo", model),
        )
    ]
    rows2 = []
    for model in models:
        sources = [src for policy, src in off_policy if policy == model]
        if not sources:
            continue
        rows2.append((model, "base", "base", None))
        rows2.append((model, ON_POLICY, "dpo", model))
        rows2 += [(model, off_policy_label(src), "dpo", src) for src in sources]
    return (
        _frame(rows1, cells, paper, benchmarks, verdicts, bootstrap),
        _frame(rows2, cells, paper, benchmarks, verdicts, bootstrap),
    )


def _table1_labels(model: str, method: str, first: bool) -> list[str]:
    # The paper's layout: the base model's name, then "+ RFT" and "+ DPO" beneath it.
    return [model if method == "base" else method]


def _table2_labels(model: str, method: str, first: bool) -> list[str]:
    return [model if first else "", "base" if method == "base" else method]


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
        csv_path = outdir / f"{name}.csv"
        out = df.reset_index()
        for column in [c for c in df.columns if c.endswith(P)]:
            # p-values keep three significant digits (a p of 2e-5 is not 0.000).
            out[column] = ["" if math.isnan(v) else f"{v:.3g}" for v in out[column].astype(float)]
        with atomic_write(csv_path) as fh:
            out.to_csv(fh, index=False, float_format=f"%.{DECIMALS}f", na_rep="")
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


# What a score file says about the model (not when or how fast it was computed): the footer's
# digest, so that an interrupted and resumed run writes the same tables as an uninterrupted one.
RESULT_FIELDS = ("benchmark", "policy", "variant", "pairs_from", "pass_at_1", "passed", "total",
                 "groups", "missing", "sandbox_errors", "status_counts", "verdicts",
                 "problems_sha256")  # fmt: skip


def results_digest(scores: Sequence[dict]) -> str:
    """sha256 of the scores' results, in a canonical order and spelling."""
    results = sorted(
        json.dumps({k: s[k] for k in RESULT_FIELDS if k in s}, sort_keys=True) for s in scores
    )
    return hashlib.sha256("\n".join(results).encode()).hexdigest()


def load_scores(paths: Sequence[str | os.PathLike]) -> list[dict]:
    scores = []
    for path in paths:
        score = read_json(path)
        if not isinstance(score, dict):
            raise InputError(f"{path}: expected a JSON object, got {type(score).__name__}")
        scores.append({**score, "_path": str(path)})
    return scores


def _mapping(items: list[str], flag: str) -> dict[str, str]:
    out = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key or not value:
            raise InputError(f"{flag}: expected KEY=VALUE, got {item!r}")
        out[key] = value
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--scores",
        required=True,
        nargs="*",
        help="scores JSON files (none: an empty table, beside the paper's numbers if given)",
    )
    parser.add_argument("--models", required=True, nargs="+", help="models, in table order")
    parser.add_argument("--benchmarks", required=True, nargs="+", help="benchmarks, column order")
    parser.add_argument("--outdir", required=True, help="directory for table{1,2}.{csv,md,tex}")
    parser.add_argument("--paper", default=None, help="the paper's numbers (YAML)")
    parser.add_argument(
        "--model-ids", nargs="*", default=[], metavar="POLICY=HUB_ID", help="policies' hub ids"
    )
    parser.add_argument(
        "--benchmark-ids",
        nargs="*",
        default=[],
        metavar="OURS=PAPERS",
        help="which of the paper's benchmarks each benchmark is (humaneval, mbpp_plus, ...)",
    )
    parser.add_argument(
        "--off-policy",
        nargs="*",
        default=None,
        metavar="POLICY=PAIRS_FROM",
        help="Table 2's off-policy DPO runs (default: every model on every other model's pairs)",
    )
    parser.add_argument(
        "--bootstrap-resamples", type=int, default=significance.RESAMPLES, help="resamples"
    )
    parser.add_argument(
        "--bootstrap-seed", type=int, default=significance.SEED, help="seed of the resampling"
    )
    parser.add_argument(
        "--confidence", type=float, default=significance.CONFIDENCE, help="interval level"
    )
    args = parser.parse_args(argv)

    paper = None
    if args.paper:
        paper = load_paper(
            args.paper,
            _mapping(args.model_ids, "--model-ids"),
            _mapping(args.benchmark_ids, "--benchmark-ids"),
        )
    off = None
    if args.off_policy is not None:
        off = []
        for item in args.off_policy:
            policy, sep, source = item.partition("=")
            if not sep or not policy or not source:
                raise InputError(f"--off-policy: expected POLICY=PAIRS_FROM, got {item!r}")
            off.append((policy, source))
    settings = Bootstrap(args.bootstrap_resamples, args.confidence, args.bootstrap_seed)
    scores = load_scores(args.scores)
    table1, table2 = build_tables(scores, args.models, args.benchmarks, paper, off, settings)
    note = (
        f"Greedy pass@1; '{MISSING}' = not run. From {len(scores)} score files "
        f"(sha256 of their results {results_digest(scores)[:16]})."
    )
    note += (
        f" diff: pass@1 minus the base model's on the same problems, with its "
        f"{settings.confidence:.0%} paired bootstrap interval over problems (percentile, "
        f"{settings.resamples} resamples, seed {settings.seed}); p: McNemar's exact test; "
        f"{MARK_NOTE}."
    )
    if paper:
        note += f" Columns marked {PAPER}: the paper's reported numbers ({args.paper})."
    for path in write_tables(table1, table2, args.outdir, note=note):
        print(f"wrote {path}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
