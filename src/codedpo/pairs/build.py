"""Build DPO preference pairs and the RFT set from executed on-policy samples.

For every problem with at least one response that passed all its tests and one that failed,
one (chosen, rejected) pair is drawn at random (the paper's recipe); the RFT baseline fine-tunes
on every passing response. Both are written in TRL's conversational formats with the model's
*raw* response as the assistant turn, i.e. the text exactly as the policy produced it.
Other pair strategies (best against worst score, rejected from one verdict class, ``k`` pairs
per problem) are in :mod:`codedpo.pairs.strategies`; each pair records both scores and their
margin. A response :mod:`codedpo.execution.hacks` flags as a reward hack is never chosen and
never an RFT example (it may be rejected).

The draw uses a ``random.Random`` seeded from ``(seed, task_id)``, so the pairs depend neither
on the order of the shard files nor on the order of lines inside them.

Command line::

    codedpo build-pairs --problems problems.jsonl \\
        --samples samples/0.jsonl samples/1.jsonl \\
        --executions executions/0.jsonl executions/1.jsonl \\
        --out-pairs pairs.jsonl --out-rft rft.jsonl --out-stats stats.json --seed 1 \\
        [--strategy max_min --score rule] [--strategy by_error --rejected-verdict syntax_error]
"""

from __future__ import annotations

import datetime as dt
import sys
from collections import Counter
from collections.abc import Sequence
from pathlib import Path

from codedpo.execution import hacks
from codedpo.io import require, sha256_file, write_json, write_jsonl
from codedpo.pairs.strategies import (
    DIGITS,
    SCORED,
    SCORES,
    STRATEGIES,
    Response,
    combinations,
    draw,
    margin_summary,
    score_of,
)
from codedpo.problems.load import load_problems
from codedpo.records import (
    FAILING,
    NOT_THE_MODELS,
    STATUSES,
    WHERE,
    Executed,
    join_executions,
    load_records,
)
from codedpo.verbs import command_parser


def _prompt(problem: dict, task_id: str) -> list[dict]:
    content = require(problem, "prompt", str, f"problems[{task_id!r}]")
    return [{"role": "user", "content": content}]


def _by_task(executed: list[Executed]) -> dict[str, list[Executed]]:
    """The joined samples of each problem, sorted by sample id: the draw is then independent of
    the order of files and lines."""
    grouped: dict[str, list[Executed]] = {}
    for entry in executed:
        grouped.setdefault(entry.sample["task_id"], []).append(entry)
    for entries in grouped.values():
        entries.sort(key=lambda e: e.sample_id)
    return grouped


def _kind(problem: dict) -> str | None:
    tests = problem.get("tests")
    return tests.get("kind") if isinstance(tests, dict) else None


def _check_options(strategy: str, score: str, rejected_verdicts, k: int) -> frozenset | None:
    if k < 1:
        raise ValueError(f"max_pairs_per_problem must be >= 1, got {k}")
    if strategy not in STRATEGIES:
        raise ValueError(f"strategy must be one of {', '.join(STRATEGIES)}, got {strategy!r}")
    if score not in SCORES:
        raise ValueError(f"score must be one of {', '.join(SCORES)}, got {score!r}")
    if strategy != "by_error":
        if rejected_verdicts:
            raise ValueError("rejected verdicts are only for the by_error strategy")
        return None
    if not rejected_verdicts:
        raise ValueError("the by_error strategy needs at least one rejected verdict status")
    unknown = sorted(set(rejected_verdicts) - FAILING)
    if unknown:
        raise ValueError(
            f"rejected verdicts {unknown} are not failures of the model's code "
            f"(one of {', '.join(sorted(FAILING))})"
        )
    return frozenset(rejected_verdicts)


def build_pairs(
    problems: dict[str, dict],
    samples: list[dict],
    executions: list[dict],
    *,
    seed: int,
    max_pairs_per_problem: int = 1,
    strategy: str = "random",
    score: str = "fraction",
    rejected_verdicts: list[str] | None = None,
) -> tuple[list[dict], list[dict], dict]:
    """Return ``(pairs, rft_records, stats)``; outputs follow the problems' order."""
    allowed = _check_options(strategy, score, rejected_verdicts, max_pairs_per_problem)
    grouped = _by_task(join_executions(problems, samples, executions))

    pairs: list[dict] = []
    rft: list[dict] = []
    status_counts = Counter({s: 0 for s in STATUSES})
    histogram: Counter[tuple[int, int]] = Counter()
    flaky = 0
    fast_checked = 0
    flags: dict[str, list[str]] = {}
    signals: dict[str, list[str]] = {}
    passed_ids: list[str] = []
    for task_id, problem in problems.items():
        entries = grouped.get(task_id)
        if not entries:
            continue
        status_counts.update(status for _, _, status, _ in entries)
        kind = _kind(problem)
        responses: dict[str, Response] = {}
        for sid, s, status, record in entries:
            flags[sid] = hacks.classify(record, kind)
            signals[sid] = hacks.text_signals(s.get("solution") or s["raw"])
            if isinstance(record.get("tests_run"), int) and isinstance(record.get("total"), int):
                fast_checked += record["tests_run"] < record["total"]
            if status in NOT_THE_MODELS:
                continue
            where = record.get(WHERE) or f"executions[sample_id={sid!r}]"
            value = score_of(record, score, where, required=strategy in SCORED)
            responses[sid] = Response(sid, s["raw"], status, value, bool(flags[sid]))
        passing = [r for r in responses.values() if r.status == "passed"]
        passed_ids += [r.sample_id for r in passing]
        histogram[(len(passing), len(entries))] += 1
        passing_raw = {r.raw for r in passing}
        failing = []
        for r in responses.values():
            if r.status == "passed":
                continue
            # The same text both passed and failed (a flaky timeout): no preference to learn.
            if r.raw in passing_raw:
                flaky += 1
                continue
            failing.append(r)
        prompt = _prompt(problem, task_id) if passing or strategy in SCORED else None

        seen: set[str] = set()
        for r in passing:
            if r.raw in seen or r.hack:
                continue
            seen.add(r.raw)
            rft.append(
                {
                    "prompt": prompt,
                    "completion": [{"role": "assistant", "content": r.raw}],
                    "task_id": task_id,
                    "sample_id": r.sample_id,
                }
            )

        combos = combinations(strategy, passing, failing, allowed)
        for chosen, rejected in draw(combos, max_pairs_per_problem, seed, task_id):
            both = chosen.score is not None and rejected.score is not None
            pairs.append(
                {
                    "prompt": prompt,
                    "chosen": [{"role": "assistant", "content": chosen.raw}],
                    "rejected": [{"role": "assistant", "content": rejected.raw}],
                    "task_id": task_id,
                    "chosen_id": chosen.sample_id,
                    "rejected_id": rejected.sample_id,
                    "rejected_status": rejected.status,
                    "strategy": strategy,
                    "chosen_score": chosen.score,
                    "rejected_score": rejected.score,
                    "margin": round(chosen.score - rejected.score, DIGITS) if both else None,
                }
            )

    rejected_statuses = Counter({s: 0 for s in sorted(FAILING)})
    rejected_statuses.update(p["rejected_status"] for p in pairs)
    chosen_status = {sid: status for e in grouped.values() for sid, _, status, _ in e}
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
        "strategy": strategy,
        "score": score,
        "rejected_verdicts": sorted(allowed) if allowed else None,
        # Records whose tests stopped at the first failing range (--fast-check): their fraction
        # of tests passed is a lower bound.
        "fast_checked_records": fast_checked,
        "margins": margin_summary([p["margin"] for p in pairs if p["margin"] is not None], score),
        "rejected_statuses": dict(rejected_statuses),
        "chosen_statuses": dict(Counter(chosen_status[p["chosen_id"]] for p in pairs)),
        "hacks": hacks.summarize(flags, signals, len(samples), passed_ids),
    }
    return pairs, rft, stats


def _inputs(paths: Sequence[str | Path]) -> list[dict]:
    return [{"path": str(p), "sha256": sha256_file(p)} for p in paths]


def main(argv: list[str] | None = None) -> int:
    parser = command_parser("build-pairs", __doc__)
    parser.add_argument("--problems", required=True, help="problems JSONL")
    parser.add_argument("--samples", required=True, nargs="+", help="samples JSONL shard(s)")
    parser.add_argument("--executions", required=True, nargs="+", help="execution JSONL shard(s)")
    parser.add_argument("--out-pairs", required=True, help="preference pairs JSONL (TRL)")
    parser.add_argument("--out-rft", required=True, help="RFT prompt-completion JSONL (TRL)")
    parser.add_argument("--out-stats", required=True, help="statistics JSON")
    parser.add_argument("--seed", type=int, required=True, help="seed of the pair draw")
    parser.add_argument("--max-pairs-per-problem", type=int, default=1, help="paper: 1")
    parser.add_argument(
        "--strategy",
        choices=STRATEGIES,
        default="random",
        help="random: passing vs failing (the paper); max_min / max_random: best score vs "
        "worst / a lower one; by_error: rejected only from --rejected-verdict",
    )
    parser.add_argument(
        "--score",
        choices=SCORES,
        default="fraction",
        help="fraction of tests passed, or the CodeRL rule reward (1, -0.3, -0.6, -1)",
    )
    parser.add_argument(
        "--rejected-verdict",
        nargs="+",
        choices=sorted(FAILING),
        metavar="STATUS",
        help=f"by_error: the rejected response's verdict, one of {', '.join(sorted(FAILING))}",
    )
    args = parser.parse_args(argv)
    if args.max_pairs_per_problem < 1:
        parser.error("--max-pairs-per-problem must be >= 1")
    if args.strategy == "by_error" and not args.rejected_verdict:
        parser.error("--strategy by_error needs --rejected-verdict STATUS ...")
    if args.strategy != "by_error" and args.rejected_verdict:
        parser.error("--rejected-verdict is only for --strategy by_error")

    problems = load_problems(args.problems)
    samples = load_records(args.samples)
    executions = load_records(args.executions)
    pairs, rft, stats = build_pairs(
        problems,
        samples,
        executions,
        seed=args.seed,
        max_pairs_per_problem=args.max_pairs_per_problem,
        strategy=args.strategy,
        score=args.score,
        rejected_verdicts=args.rejected_verdict,
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
        f"{stats['pairs']} {args.strategy} pairs from {stats['problems_with_pairs']}/"
        f"{stats['problems_sampled']} problems, {stats['rft_examples']} RFT examples, "
        f"{stats['sandbox_errors']} sandbox errors, {stats['hacks']['flagged']} responses "
        "flagged as reward hacks",
        file=sys.stderr,
    )
    if args.strategy in SCORED and args.score == "fraction" and stats["fast_checked_records"]:
        print(
            f"warning: {stats['fast_checked_records']} records stopped at their first failing "
            "tests (--fast-check): their fraction of tests passed is a lower bound",
            file=sys.stderr,
        )
    return 0
