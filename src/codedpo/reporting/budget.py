"""``codedpo budget``: what one evaluated variant cost to make, for Table 3
(:mod:`codedpo.reporting.table3`).

A budget file names its variant with the fields a score file has (``policy``, ``variant``,
``pairs_from`` for DPO, ``arm``, ``recipe``, ``round``: :mod:`codedpo.evaluation.score_files`),
so that Table 3 matches it to the variant's scores, and counts:

- ``responses`` and ``completion_tokens``: the responses generated to train it and their tokens
  (the stop token included): one line and its ``num_tokens`` per line of the sampling records
  (``--samples``), plus a GRPO summary's ``budget.responses`` and ``budget.completion_tokens`` (its
  rollouts);
- ``executor_seconds``: the sandbox seconds of those responses' verdicts: ``duration_s`` of each
  execution record (``--executions``), plus a GRPO summary's ``budget.executor_seconds``;
- ``train_seconds``: the trainers' ``wall_time_s`` (``--train-summaries``: ``train_summary.json``
  of each checkpoint); a GRPO trainer's includes its generation and its rewards, DPO's and RFT's
  exclude their sampling, which the counts above measure;
- ``gpu_hours``: ``wall_time_s * gpus / 3600`` summed over the summaries; null where no summary
  says it trained on a GPU (``gpus`` 0, or absent in summaries written before it existed);
- ``attempts``: the GRPO runs' training attempts (a resumed run counts each start), null where
  no summary says;
- ``inputs``: each file read (``kind``, ``path``, ``sha256``); ``date``.

The command sums what it is given and nothing else: the workflow passes a DPO run of round k the
samples, executions and train summaries of rounds 1..k (its cumulative cost), an RFT run the
round-1 samples and executions and its own summary, a GRPO run its own summary only (its rollouts
are in it), and the base model nothing (every count 0). Malformed input (a line that is not JSON,
a missing field, a negative count, a summary of another training method) is an error naming the
file, the line and the field. :func:`read_budgets` reads budget files back for Table 3.

Command line::

    codedpo budget --policy demo-codeqwen --variant dpo --round 2 \\
        --samples results/iterative/samples/demo-codeqwen/shard*.jsonl \\
            results/iterative/samples/demo-codeqwen/paper/dpo/r2/shard*.jsonl \\
        --executions results/iterative/executions/demo-codeqwen/shard*.jsonl \\
            results/iterative/executions/demo-codeqwen/paper/dpo/r2/shard*.jsonl \\
        --train-summaries C/dpo-demo-codeqwen/train_summary.json \\
            C/paper/dpo/r2/dpo-demo-codeqwen/train_summary.json \\
        --out budget.json        # C: results/iterative/checkpoints/demo-codeqwen
"""

from __future__ import annotations

import datetime as dt
import math
import os
import sys
from collections.abc import Sequence
from pathlib import Path

from codedpo.evaluation.score_files import (
    DEFAULT_ARM,
    DEFAULT_RECIPE,
    DEFAULT_ROUND,
    DEFAULT_RUN,
    Run,
    cell_key,
    run_of,
    run_suffix,
)
from codedpo.io import InputError, read_json, read_jsonl, sha256_file, write_json
from codedpo.verbs import command_parser

VARIANTS = ("base", "rft", "dpo", "grpo")
# The training method (train_summary.json's ``method``) that makes each trained variant.
METHOD_OF = {"rft": "rft", "dpo": "dpo", "grpo": "grpo"}
COUNTS = ("responses", "completion_tokens")
SECONDS = ("executor_seconds", "train_seconds")
# ``(policy, kind, pairs_from, run)``: a score's key (score_files.Key) without the benchmark.
BudgetKey = tuple[str, str, "str | None", Run]


def _count(value, where: str, field: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise InputError(f"{where}: field '{field}': {value!r} is not a count (0, 1, ...)")
    return value


def _seconds(value, where: str, field: str) -> float:
    if (
        isinstance(value, bool)
        or not isinstance(value, (int, float))
        or not math.isfinite(value)
        or value < 0
    ):
        raise InputError(f"{where}: field '{field}': {value!r} is not a non-negative number")
    return float(value)


def _field(record: dict, field: str, where: str, prefix: str = ""):
    if field not in record:
        raise InputError(f"{where}: missing field '{prefix}{field}'")
    return record[field]


def count_samples(path: str | os.PathLike) -> tuple[int, int]:
    """``(responses, completion_tokens)`` of one sampling records file: its lines and the sum of
    their ``num_tokens``."""
    responses = tokens = 0
    for lineno, record in read_jsonl(path):
        where = f"{path}:{lineno}"
        tokens += _count(_field(record, "num_tokens", where), where, "num_tokens")
        responses += 1
    return responses, tokens


def count_executions(path: str | os.PathLike) -> float:
    """The sandbox seconds of one execution records file: the sum of its ``duration_s``."""
    seconds = 0.0
    for lineno, record in read_jsonl(path):
        where = f"{path}:{lineno}"
        seconds += _seconds(_field(record, "duration_s", where), where, "duration_s")
    return seconds


def read_summary(path: str | os.PathLike, variant: str) -> dict:
    """What a ``train_summary.json`` adds to a budget: ``train_seconds``, ``gpu_seconds``
    (None: no GPU said), and a GRPO run's ``responses``, ``completion_tokens``,
    ``executor_seconds`` and ``attempts`` (its ``budget``)."""
    where = str(path)
    summary = read_json(path)
    if not isinstance(summary, dict):
        raise InputError(f"{where}: expected a JSON object, got {type(summary).__name__}")
    method = _field(summary, "method", where)
    if method != METHOD_OF[variant]:
        raise InputError(
            f"{where}: field 'method': {method!r} is not the training of a {variant} variant "
            f"({METHOD_OF[variant]!r})"
        )
    wall = _seconds(_field(summary, "wall_time_s", where), where, "wall_time_s")
    gpus = summary.get("gpus")
    gpus = 0 if gpus is None else _count(gpus, where, "gpus")
    out = {"train_seconds": wall, "gpu_seconds": wall * gpus if gpus else None}
    if method == "grpo":
        budget = _field(summary, "budget", where)
        if not isinstance(budget, dict):
            raise InputError(f"{where}: field 'budget' must be an object")
        for field in COUNTS:
            out[field] = _count(_field(budget, field, where, "budget."), where, f"budget.{field}")
        seconds = _field(budget, "executor_seconds", where, "budget.")
        out["executor_seconds"] = _seconds(seconds, where, "budget.executor_seconds")
        if budget.get("attempts") is not None:
            out["attempts"] = _count(budget["attempts"], where, "budget.attempts")
    return out


def count_budget(
    variant: str,
    samples: Sequence[str | os.PathLike] = (),
    executions: Sequence[str | os.PathLike] = (),
    train_summaries: Sequence[str | os.PathLike] = (),
) -> dict:
    """The budget fields (``responses`` .. ``inputs``; see the module docstring) of the files
    given: their sum, nothing more."""
    if variant not in VARIANTS:
        raise InputError(f"--variant: {variant!r} is not one of {', '.join(VARIANTS)}")
    if variant == "base" and (samples or executions or train_summaries):
        raise InputError("--variant base: the base model was not trained; give it no inputs")
    if variant == "grpo" and (samples or executions):
        raise InputError(
            "--variant grpo: its rollouts are counted in its train summary's 'budget'; "
            "give it no --samples or --executions"
        )
    totals = {"responses": 0, "completion_tokens": 0, "executor_seconds": 0.0}
    train_seconds, gpu_seconds, attempts = 0.0, None, None
    inputs = []
    for path in samples:
        responses, tokens = count_samples(path)
        totals["responses"] += responses
        totals["completion_tokens"] += tokens
        inputs.append({"kind": "samples", "path": str(path), "sha256": sha256_file(path)})
    for path in executions:
        totals["executor_seconds"] += count_executions(path)
        inputs.append({"kind": "executions", "path": str(path), "sha256": sha256_file(path)})
    for path in train_summaries:
        summary = read_summary(path, variant)
        train_seconds += summary["train_seconds"]
        if summary["gpu_seconds"] is not None:
            gpu_seconds = (gpu_seconds or 0.0) + summary["gpu_seconds"]
        for field in totals:
            totals[field] += summary.get(field, 0)
        if "attempts" in summary:
            attempts = (attempts or 0) + summary["attempts"]
        inputs.append({"kind": "train_summary", "path": str(path), "sha256": sha256_file(path)})
    return {
        "responses": totals["responses"],
        "completion_tokens": totals["completion_tokens"],
        # Rounded to the millisecond: the records' durations carry no more.
        "executor_seconds": round(totals["executor_seconds"], 3),
        "train_seconds": round(train_seconds, 3),
        "gpu_hours": None if gpu_seconds is None else round(gpu_seconds / 3600, 6),
        "attempts": attempts,
        "inputs": inputs,
    }


def budget_key(budget: dict, where: str) -> BudgetKey:
    """``(policy, kind, pairs_from, run)`` of a budget, read as :func:`score_files.collect` reads a
    score's (a budget has no benchmark)."""
    # cell_key also checks the fields only a score has; a budget belongs to every benchmark.
    policy, kind, pairs_from = cell_key({"benchmark": "", "pass_at_1": 0.0, **budget}, (), where)
    return policy, kind, pairs_from, run_of(budget, kind, where)


def describe(key: BudgetKey) -> str:
    """``demo-codeqwen dpo r2 (pairs from demo-codeqwen)``: a budget key in an error message."""
    policy, kind, pairs_from, run = key
    named = f" {run_suffix(run)}" if run != DEFAULT_RUN and run_suffix(run) else ""
    source = f" (pairs from {pairs_from})" if pairs_from else ""
    return f"{policy} {kind}{named}{source}"


def read_budgets(paths: Sequence[str | os.PathLike]) -> dict[BudgetKey, dict]:
    """Budget files by :data:`BudgetKey` (each with ``_path``); two for one key are an error."""
    out: dict[BudgetKey, dict] = {}
    for path in paths:
        where = str(path)
        budget = read_json(path)
        if not isinstance(budget, dict):
            raise InputError(f"{where}: expected a JSON object, got {type(budget).__name__}")
        key = budget_key(budget, where)
        for field in COUNTS:
            _count(_field(budget, field, where), where, field)
        for field in SECONDS:
            _seconds(_field(budget, field, where), where, field)
        if _field(budget, "gpu_hours", where) is not None:
            _seconds(budget["gpu_hours"], where, "gpu_hours")
        if key in out:
            raise InputError(
                f"{where}: two budgets for {describe(key)}; the other is {out[key]['_path']}"
            )
        out[key] = {**budget, "_path": where}
    return out


def main(argv: list[str] | None = None) -> int:
    parser = command_parser("budget", __doc__)
    parser.add_argument("--policy", required=True, help="model trained/evaluated")
    parser.add_argument("--variant", required=True, choices=VARIANTS, help="what was trained")
    parser.add_argument("--pairs-from", default=None, help="dpo: model whose samples built pairs")
    parser.add_argument("--arm", default=DEFAULT_ARM, help="experiment arm (paper: the config's)")
    parser.add_argument(
        "--recipe", default=DEFAULT_RECIPE, help="training recipe (dpo: the paper's)"
    )
    parser.add_argument(
        "--round", type=int, default=DEFAULT_ROUND, help="DPO round of an iterative run (1: paper)"
    )
    parser.add_argument(
        "--samples", nargs="*", default=[], metavar="FILE", help="sampling records JSONL"
    )
    parser.add_argument(
        "--executions", nargs="*", default=[], metavar="FILE", help="execution records JSONL"
    )
    parser.add_argument(
        "--train-summaries", nargs="*", default=[], metavar="FILE", help="train_summary.json"
    )
    parser.add_argument("--out", required=True, help="budget JSON")
    args = parser.parse_args(argv)
    if args.pairs_from is not None and args.variant != "dpo":
        raise InputError(f"--pairs-from: a {args.variant} variant is trained on no pairs")
    identity = {
        "policy": args.policy,
        "variant": args.variant,
        **({"pairs_from": args.pairs_from or args.policy} if args.variant == "dpo" else {}),
        "arm": args.arm,
        "recipe": args.recipe,
        "round": args.round,
    }
    if args.round < 1:
        raise InputError(f"--round: {args.round} is not a round (rounds count from 1)")
    for flag, value in (("--policy", args.policy), ("--arm", args.arm), ("--recipe", args.recipe)):
        if not value.strip():
            raise InputError(f"{flag}: empty name")
    budget = count_budget(args.variant, args.samples, args.executions, args.train_summaries)
    date = dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")
    write_json(Path(args.out), {**identity, **budget, "date": date})
    print(
        f"{describe(budget_key(identity, args.out))}: {budget['responses']} responses, "
        f"{budget['completion_tokens']} tokens, {budget['executor_seconds']:.1f} executor s, "
        f"{budget['train_seconds']:.1f} training s",
        file=sys.stderr,
    )
    return 0
