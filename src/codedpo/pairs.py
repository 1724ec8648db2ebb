"""Build DPO preference pairs and the RFT set from executed on-policy samples.

For every problem with at least one response that passed all its tests and one that failed,
one (chosen, rejected) pair is drawn at random (the paper's recipe); the RFT baseline fine-tunes
on every passing response. Both are written in TRL's conversational formats with the model's
*raw* response as the assistant turn, i.e. the text exactly as the policy produced it.

The draw uses a ``random.Random`` seeded from ``(seed, task_id)``, so the pairs depend neither
on the order of the shard files nor on the order of lines inside them.

Command line::

    python -m codedpo.pairs --problems problems.jsonl \\
        --samples samples/0.jsonl samples/1.jsonl \\
        --executions executions/0.jsonl executions/1.jsonl \\
        --out-pairs pairs.jsonl --out-rft rft.jsonl --out-stats stats.json --seed 1
"""

from __future__ import annotations

import argparse
import datetime as dt
import random
import sys
from collections import Counter
from collections.abc import Iterable, Sequence
from pathlib import Path

from codedpo.execute.executor import NOT_THE_MODELS, STATUSES
from codedpo.io import InputError, read_jsonl, require, sha256_file, write_json, write_jsonl

# Failures of the model's code. A sandbox_error (the infrastructure's fault) or problem_error (the
# problem's own code fails) says nothing about the response: neither chosen nor rejected.
FAILING = frozenset(STATUSES) - {"passed"} - NOT_THE_MODELS

# Key under which the loaders below remember "file:line" of a record, for error messages.
WHERE = "_where"


def where_of(record: dict, kind: str, index: int) -> str:
    """``file:line`` of a loaded record, or ``kind[index]`` for records built in memory."""
    return record.get(WHERE) or f"{kind}[{index}]"


def load_problems(path: str | Path) -> dict[str, dict]:
    """Problems keyed by ``task_id`` in file order; a duplicate id is an :class:`InputError`."""
    problems: dict[str, dict] = {}
    for lineno, record in read_jsonl(path):
        where = f"{path}:{lineno}"
        task_id = require(record, "task_id", str, where)
        if task_id in problems:
            first = problems[task_id][WHERE]
            raise InputError(f"{where}: field 'task_id': duplicate {task_id!r} (first at {first})")
        problems[task_id] = {**record, WHERE: where}
    return problems


def load_records(paths: Iterable[str | Path]) -> list[dict]:
    """Records of several JSONL shards, each tagged with its ``file:line``.

    A missing ``sample_id`` defaults to the line number (docs/formats.md); across several shards
    such ids collide and the join reports the duplicate rather than guessing.
    """
    records = []
    for path in paths:
        for lineno, record in read_jsonl(path):
            record = {**record, WHERE: f"{path}:{lineno}"}
            record.setdefault("sample_id", str(lineno))
            records.append(record)
    return records


def _sample_id(record: dict, where: str) -> str:
    # Ids are compared as strings so an executor that wrote 3 and a sampler that wrote "3" agree.
    return str(require(record, "sample_id", (str, int), where))


def _prompt(problem: dict, task_id: str) -> list[dict]:
    content = require(problem, "prompt", str, problem.get(WHERE) or f"problems[{task_id!r}]")
    return [{"role": "user", "content": content}]


def join_executions(
    problems: dict[str, dict], samples: list[dict], executions: list[dict]
) -> dict[str, list[tuple[str, dict, str]]]:
    """``task_id -> [(sample_id, sample, status)]``, every sample matched to one record."""
    by_id: dict[str, tuple[dict, str]] = {}
    for i, sample in enumerate(samples):
        where = where_of(sample, "samples", i)
        task_id = require(sample, "task_id", str, where)
        sample_id = _sample_id(sample, where)
        require(sample, "raw", str, where)
        if task_id not in problems:
            raise InputError(f"{where}: field 'task_id': {task_id!r} is not in the problems file")
        if sample_id in by_id:
            first = by_id[sample_id][1]
            raise InputError(
                f"{where}: field 'sample_id': duplicate {sample_id!r} (first at {first})"
            )
        by_id[sample_id] = (sample, where)

    status_of: dict[str, tuple[str, str]] = {}
    for i, record in enumerate(executions):
        where = where_of(record, "executions", i)
        sample_id = _sample_id(record, where)
        status = require(record, "status", str, where)
        if status not in STATUSES:
            raise InputError(
                f"{where}: field 'status': {status!r} is not one of {', '.join(STATUSES)}"
            )
        if sample_id in status_of:
            first = status_of[sample_id][1]
            raise InputError(
                f"{where}: field 'sample_id': duplicate execution record for {sample_id!r} "
                f"(first at {first})"
            )
        if sample_id not in by_id:
            raise InputError(f"{where}: field 'sample_id': {sample_id!r} matches no sample")
        sample_task = by_id[sample_id][0]["task_id"]
        if record.get("task_id", sample_task) != sample_task:
            raise InputError(
                f"{where}: field 'task_id': {record['task_id']!r} but sample {sample_id!r} "
                f"({by_id[sample_id][1]}) is for {sample_task!r}"
            )
        status_of[sample_id] = (status, where)

    lacking = [sid for sid in by_id if sid not in status_of]
    if lacking:
        raise InputError(
            f"{by_id[lacking[0]][1]}: field 'sample_id': no execution record for {lacking[0]!r} "
            f"({len(lacking)} sample(s) lack one)"
        )

    grouped: dict[str, list[tuple[str, dict, str]]] = {}
    for sample_id, (sample, _) in by_id.items():
        grouped.setdefault(sample["task_id"], []).append(
            (sample_id, sample, status_of[sample_id][0])
        )
    for entries in grouped.values():
        # Sorting makes the draw independent of the order of files and lines.
        entries.sort(key=lambda e: e[0])
    return grouped


def build_pairs(
    problems: dict[str, dict],
    samples: list[dict],
    executions: list[dict],
    *,
    seed: int,
    max_pairs_per_problem: int = 1,
) -> tuple[list[dict], list[dict], dict]:
    """Return ``(pairs, rft_records, stats)``; outputs follow the problems' order."""
    if max_pairs_per_problem < 1:
        raise ValueError(f"max_pairs_per_problem must be >= 1, got {max_pairs_per_problem}")
    grouped = join_executions(problems, samples, executions)

    pairs: list[dict] = []
    rft: list[dict] = []
    status_counts = Counter({s: 0 for s in STATUSES})
    histogram: Counter[tuple[int, int]] = Counter()
    flaky = 0
    for task_id, problem in problems.items():
        entries = grouped.get(task_id)
        if not entries:
            continue
        status_counts.update(status for _, _, status in entries)
        passing = [(sid, s) for sid, s, status in entries if status == "passed"]
        histogram[(len(passing), len(entries))] += 1
        passing_raw = {s["raw"] for _, s in passing}
        failing = []
        for sid, s, status in entries:
            if status not in FAILING:
                continue
            # The same text both passed and failed (a flaky timeout): no preference to learn.
            if s["raw"] in passing_raw:
                flaky += 1
                continue
            failing.append((sid, s, status))
        if not passing:
            continue
        prompt = _prompt(problem, task_id)

        seen: set[str] = set()
        for sid, s in passing:
            if s["raw"] in seen:
                continue
            seen.add(s["raw"])
            rft.append(
                {
                    "prompt": prompt,
                    "completion": [{"role": "assistant", "content": s["raw"]}],
                    "task_id": task_id,
                    "sample_id": sid,
                }
            )

        if not failing:
            continue
        # A string seed is hashed with SHA-512 by random.Random: stable across processes and
        # Python runs (unlike hash()), and distinct per problem.
        rng = random.Random(f"{seed}/{task_id}")
        combos = [(c, r) for c in passing for r in failing]
        for (c_id, chosen), (r_id, rejected, r_status) in rng.sample(
            combos, min(max_pairs_per_problem, len(combos))
        ):
            pairs.append(
                {
                    "prompt": prompt,
                    "chosen": [{"role": "assistant", "content": chosen["raw"]}],
                    "rejected": [{"role": "assistant", "content": rejected["raw"]}],
                    "task_id": task_id,
                    "chosen_id": c_id,
                    "rejected_id": r_id,
                    "rejected_status": r_status,
                }
            )

    stats = {
        "problems": len(problems),
        "problems_sampled": len(grouped),
        "samples": len(samples),
        "problems_with_pairs": len({p["task_id"] for p in pairs}),
        "pairs": len(pairs),
        "rft_examples": len(rft),
        "status_counts": dict(status_counts),
        "sandbox_errors": status_counts["sandbox_error"],
        "flaky_failures_skipped": flaky,
        "problems_all_passed": sum(v for (k, n), v in histogram.items() if k == n),
        "problems_none_passed": sum(v for (k, _), v in histogram.items() if k == 0),
        # "k/n": problems where k of their n responses passed (n counts every sample).
        "pass_histogram": {f"{k}/{n}": histogram[(k, n)] for k, n in sorted(histogram)},
    }
    return pairs, rft, stats


def _inputs(paths: Sequence[str | Path]) -> list[dict]:
    return [{"path": str(p), "sha256": sha256_file(p)} for p in paths]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--problems", required=True, help="problems JSONL")
    parser.add_argument("--samples", required=True, nargs="+", help="samples JSONL shard(s)")
    parser.add_argument("--executions", required=True, nargs="+", help="execution JSONL shard(s)")
    parser.add_argument("--out-pairs", required=True, help="preference pairs JSONL (TRL)")
    parser.add_argument("--out-rft", required=True, help="RFT prompt-completion JSONL (TRL)")
    parser.add_argument("--out-stats", required=True, help="statistics JSON")
    parser.add_argument("--seed", type=int, required=True, help="seed of the pair draw")
    parser.add_argument("--max-pairs-per-problem", type=int, default=1, help="paper: 1")
    args = parser.parse_args(argv)

    problems = load_problems(args.problems)
    samples = load_records(args.samples)
    executions = load_records(args.executions)
    pairs, rft, stats = build_pairs(
        problems,
        samples,
        executions,
        seed=args.seed,
        max_pairs_per_problem=args.max_pairs_per_problem,
    )
    write_jsonl(args.out_pairs, pairs)
    write_jsonl(args.out_rft, rft)
    stats = {
        **stats,
        "inputs": {
            "problems": _inputs([args.problems])[0],
            "samples": _inputs(args.samples),
            "executions": _inputs(args.executions),
        },
        "config": {"seed": args.seed, "max_pairs_per_problem": args.max_pairs_per_problem},
        "date": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
    }
    write_json(args.out_stats, stats)
    print(
        f"{stats['pairs']} pairs from {stats['problems_with_pairs']}/{stats['problems_sampled']} "
        f"problems, {stats['rft_examples']} RFT examples, {stats['sandbox_errors']} sandbox errors",
        file=sys.stderr,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
