"""Greedy pass@1 of one policy on one benchmark, from execution records.

With one greedy response per problem, pass@1 is the fraction of the benchmark's problems whose
response passed. The denominator is the problems file, not the records: a problem without a
record counts as failed and is listed under ``missing``. A ``sandbox_error`` is an
infrastructure fault, so by default it stops scoring instead of lowering the model's score.

``groups`` scores a subset of the test groups. EvalPlus semantics: HumanEval is group ``base``
only; HumanEval+ (``groups=None``) needs every group, base and plus, to pass.

Command line::

    python -m codedpo.scoring --problems humaneval.jsonl --executions exec/0.jsonl exec/1.jsonl \\
        --benchmark humaneval --policy deepseek --variant base --groups base --out scores.json
"""

from __future__ import annotations

import argparse
import datetime as dt
import sys
from collections import Counter
from pathlib import Path

from codedpo.io import InputError, require, sha256_file, write_json
from codedpo.pairs import STATUSES, load_problems, load_records, where_of


class SandboxErrorsFound(InputError):
    """Execution records with ``sandbox_error``: rerun those samples rather than score them."""


def _verdict(record: dict, groups: list[str] | None, where: str) -> str:
    """The status that decides the problem: ``passed`` or the first failing status."""
    status = require(record, "status", str, where)
    if status not in STATUSES:
        raise InputError(f"{where}: field 'status': {status!r} is not one of {', '.join(STATUSES)}")
    if groups is None or status == "sandbox_error":
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
    allow_sandbox_errors: bool = False,
) -> dict:
    """Greedy pass@1 over ``problems``; see the module docstring for the rules."""
    if not problems:
        raise InputError("no problems to score: the problems file is empty")
    if groups is not None and not groups:
        raise ValueError("groups must be None (all groups) or a non-empty list")
    statuses: dict[str, str] = {}
    seen_at: dict[str, str] = {}
    sandbox: list[tuple[str, str]] = []
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
        if statuses[task_id] == "sandbox_error":
            sandbox.append((task_id, where))

    if sandbox and not allow_sandbox_errors:
        task_id, where = sandbox[0]
        raise SandboxErrorsFound(
            f"{where}: field 'status': sandbox_error for {task_id!r} ({len(sandbox)} record(s) "
            "in all): an infrastructure fault, not the model's; rerun those samples or pass "
            "allow_sandbox_errors (--allow-sandbox-errors) to count them as failures"
        )

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
        "sandbox_errors": [t for t, _ in sandbox],
        "groups": groups,
        "status_counts": dict(Counter(v["status"] for v in verdicts.values())),
        "verdicts": verdicts,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--problems", required=True, help="benchmark problems JSONL")
    parser.add_argument("--executions", required=True, nargs="+", help="execution JSONL shard(s)")
    parser.add_argument("--benchmark", required=True, help="benchmark name, e.g. humaneval_plus")
    parser.add_argument("--policy", required=True, help="model trained/evaluated")
    parser.add_argument("--variant", required=True, help="base, rft or dpo")
    parser.add_argument("--pairs-from", default=None, help="dpo: model whose samples built pairs")
    parser.add_argument("--groups", nargs="+", default=None, help="test groups (default: all)")
    parser.add_argument(
        "--allow-sandbox-errors", action="store_true", help="count sandbox errors as failures"
    )
    parser.add_argument("--out", required=True, help="scores JSON")
    args = parser.parse_args(argv)

    problems = load_problems(args.problems)
    executions = load_records(args.executions)
    result = score(
        problems, executions, groups=args.groups, allow_sandbox_errors=args.allow_sandbox_errors
    )
    out = {
        "benchmark": args.benchmark,
        "policy": args.policy,
        "variant": args.variant,
        **({"pairs_from": args.pairs_from} if args.pairs_from else {}),
        **result,
        "problems_sha256": sha256_file(args.problems),
        "executions_sha256": [sha256_file(p) for p in args.executions],
        "config": {"groups": args.groups, "allow_sandbox_errors": args.allow_sandbox_errors},
        "date": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
    }
    write_json(Path(args.out), out)
    print(
        f"{args.benchmark} {args.policy}/{args.variant}: pass@1 {result['pass_at_1']:.3f} "
        f"({result['passed']}/{result['total']}, {len(result['missing'])} missing)",
        file=sys.stderr,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
