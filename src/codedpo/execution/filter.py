"""``codedpo filter``: clean a training problem set before sampling on it.

    codedpo filter --problems results/problems/train.jsonl \
        --benchmarks results/problems/humaneval.jsonl results/problems/mbpp.jsonl \
        --out results/problems/train.filtered.jsonl --report results/problems/train.filter.json \
        --ngram 13 --threshold 0.5 --backend bwrap --workers 2

Three filters, cheapest first, each recorded per dropped problem in the report:

1. ``duplicate``: the same normalized problem text (lower case, words only) as an earlier problem.
2. ``contaminated``: word n-grams shared with an evaluation problem, in the problem text or in the
   reference solution. The overlap is ``|A & B| / min(|A|, |B|)`` over the two n-gram sets, so a
   training problem that contains a benchmark problem (or is contained in one) scores 1. A problem
   is dropped when its overlap with any benchmark problem reaches ``--threshold``.
3. ``reference_fails`` / ``no_reference``: the reference solution is run through the sandboxed
   executor (``codedpo execute``'s flags); only problems whose reference passes every test stay,
   and gives an output for every case (``bad_cases``). A sandbox fault is the infrastructure's,
   not the problem's: it stops the run instead.
4. ``needs_checker``: problems that accept any valid answer (or are interactive) cannot be judged
   by comparing outputs; without a checker (``tests.checker``) a correct answer would be rejected
   and become a DPO pair's rejected response. Told by the statement (Codeforces' "print any of
   them"), or by accepted solutions that disagree on a test (``meta.other_solutions``).
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

from codedpo.execution.backends import SandboxUnavailable
from codedpo.execution.command import add_executor_arguments, config_from_args
from codedpo.execution.executor import ExecConfig, execute_files
from codedpo.io import InputError, read_jsonl, sha256_file, write_json, write_jsonl
from codedpo.problems.load import load_problems
from codedpo.verbs import command_parser

_WORD = re.compile(r"\w+")


# -- text ---------------------------------------------------------------------------------------
def problem_text(problem: dict) -> str:
    """The problem statement as the source gave it (before any prompt template)."""
    meta = problem.get("meta") or {}
    return meta.get("original_prompt") or problem["prompt"]


def solution_text(problem: dict) -> str:
    """The reference solution without the shared prelude that ``setup`` already holds."""
    code = problem.get("canonical_solution") or ""
    for shared in (problem["tests"].get("prelude"), problem["tests"].get("setup")):
        if shared and code.startswith(shared):
            code = code[len(shared) :]
    return code


def words(text: str) -> list[str]:
    return _WORD.findall(text.lower())


def normalize(text: str) -> str:
    return " ".join(words(text))


def ngrams(text: str, n: int) -> set[str]:
    """Word n-grams of ``text``; a text shorter than ``n`` words is one gram (so equal short
    texts still match)."""
    toks = words(text)
    if not toks:
        return set()
    if len(toks) < n:
        return {" ".join(toks)}
    return {" ".join(toks[i : i + n]) for i in range(len(toks) - n + 1)}


# -- decontamination index ----------------------------------------------------------------------
class NgramIndex:
    """Benchmark problems' n-grams, for prompt text and reference solutions separately."""

    FIELDS = ("prompt", "solution")

    def __init__(self, n: int) -> None:
        self.n = n
        self._index: dict[str, dict[str, set[str]]] = {f: {} for f in self.FIELDS}
        self._sizes: dict[str, dict[str, int]] = {f: {} for f in self.FIELDS}

    def add(self, key: str, problem: dict) -> None:
        texts = {"prompt": problem_text(problem), "solution": solution_text(problem)}
        for field, text in texts.items():
            grams = ngrams(text, self.n)
            self._sizes[field][key] = len(grams)
            for g in grams:
                self._index[field].setdefault(g, set()).add(key)

    def best_match(self, problem: dict) -> dict | None:
        """The benchmark problem with the largest overlap, over both fields."""
        best = None
        texts = {"prompt": problem_text(problem), "solution": solution_text(problem)}
        for field, text in texts.items():
            grams = ngrams(text, self.n)
            if not grams:
                continue
            hits: Counter = Counter()
            for g in grams:
                hits.update(self._index[field].get(g, ()))
            for key, shared in hits.items():
                overlap = shared / min(len(grams), self._sizes[field][key])
                if best is None or overlap > best["overlap"]:
                    best = {
                        "field": field,
                        "benchmark_task": key,
                        "overlap": round(overlap, 4),
                        "shared_ngrams": shared,
                    }
        return best


# -- the filters --------------------------------------------------------------------------------
def drop_duplicates(problems: dict[str, dict]) -> tuple[list[str], list[dict]]:
    """Task ids kept (first of each normalized text) and the drop records of the others."""
    first: dict[str, str] = {}
    kept, dropped = [], []
    for task_id, problem in problems.items():
        key = normalize(problem_text(problem))
        if key in first:
            dropped.append({"task_id": task_id, "reason": "duplicate", "duplicate_of": first[key]})
            _keep_as_other_solution(problems[first[key]], problem)
        else:
            first[key] = task_id
            kept.append(task_id)
    return kept, dropped


def _keep_as_other_solution(kept: dict, twin: dict) -> None:
    """A duplicate's accepted solution is another accepted solution of the kept problem (Div. 1
    and Div. 2 rounds share problems): where the two disagree on a test, the problem accepts
    more than one answer."""
    code = twin.get("canonical_solution")
    if kept["tests"]["kind"] != "stdio" or not code or code == kept.get("canonical_solution"):
        return
    meta = kept.setdefault("meta", {})
    others = meta.setdefault("other_solutions", [])
    if code not in others:
        others.append(code)


def decontaminate(
    problems: dict[str, dict], task_ids: list[str], index: NgramIndex, threshold: float
) -> tuple[list[str], list[dict]]:
    kept, dropped = [], []
    for task_id in task_ids:
        match = index.best_match(problems[task_id])
        if match is not None and match["overlap"] >= threshold:
            benchmark, bench_task = match.pop("benchmark_task").split("::", 1)
            dropped.append(
                {
                    "task_id": task_id,
                    "reason": "contaminated",
                    "benchmark": benchmark,
                    "benchmark_task_id": bench_task,
                    **match,
                }
            )
        else:
            kept.append(task_id)
    return kept, dropped


def verify_references(
    problems: dict[str, dict],
    task_ids: list[str],
    config: ExecConfig,
    executions: Path | None = None,
    progress: bool = False,
) -> tuple[list[str], list[dict]]:
    """Run each reference solution against its own tests; keep those that pass."""
    dropped = [
        {"task_id": t, "reason": "no_reference"}
        for t in task_ids
        if not problems[t].get("canonical_solution")
    ]
    runnable = [t for t in task_ids if problems[t].get("canonical_solution")]
    if not runnable:
        return [], dropped
    subset = {t: problems[t] for t in runnable}
    references = [{"task_id": t, "sample_id": t, "solution": subset[t]["canonical_solution"]}
                  for t in runnable]  # fmt: skip
    others = [{"task_id": t, "sample_id": f"{t}#other{k}", "solution": code}
              for t in runnable
              for k, code in enumerate((subset[t].get("meta") or {}).get("other_solutions") or [])
              if not subset[t]["tests"].get("checker")]  # fmt: skip
    with tempfile.TemporaryDirectory(prefix="codedpo-filter-") as tmp:
        samples = Path(tmp) / "references.jsonl"
        write_jsonl(samples, references + others)
        out = executions or Path(tmp) / "executions.jsonl"
        # The references are what would be timed: their tests keep the fixed limit here.
        execute_files(subset, [samples], out, config, reference_times=False,
                      progress=progress)  # fmt: skip
        records = {rec["sample_id"]: rec for _, rec in read_jsonl(out)}
    faults = [t for t in runnable if records[t]["status"] == "sandbox_error"]
    if faults:
        why = records[faults[0]]["first_failure"]["message"]
        raise RuntimeError(
            f"sandbox errors on {len(faults)} reference solutions ({faults[:5]}): {why}"
        )
    kept = []
    for t in runnable:
        rec = records[t]
        if rec["status"] == "passed" and rec.get("bad_cases"):
            dropped.append({"task_id": t, "reason": "reference_fails", "status": "passed",
                            "passed": rec["passed"], "total": rec["total"],
                            "message": "the reference gives no output for cases "
                                       f"{rec['bad_cases']}"})  # fmt: skip
            continue
        if rec["status"] == "passed":
            disagree = [o for o in others if o["task_id"] == t
                        and records[o["sample_id"]]["status"] == "failed"]  # fmt: skip
            if disagree:
                first = records[disagree[0]["sample_id"]]["first_failure"] or {}
                dropped.append({"task_id": t, "reason": "needs_checker",
                                "evidence": "another accepted solution gives another output on "
                                            f"test {first.get('index')}"})  # fmt: skip
                continue
            kept.append(t)
            continue
        first = rec.get("first_failure") or {}
        dropped.append(
            {
                "task_id": t,
                "reason": "reference_fails",
                "status": rec["status"],
                "passed": rec["passed"],
                "total": rec["total"],
                "message": str(first.get("message") or "")[:300],
            }
        )
    return kept, dropped


def load_benchmarks(paths: list[Path], n: int) -> tuple[NgramIndex, list[dict]]:
    index = NgramIndex(n)
    described = []
    for path in paths:
        bench = load_problems(path)
        for task_id, problem in bench.items():
            index.add(f"{path.name}::{task_id}", problem)
        described.append({"path": str(path), "sha256": sha256_file(path), "problems": len(bench)})
    return index, described


def needs_checker(problems: dict[str, dict], task_ids: list[str]) -> tuple[list[str], list[dict]]:
    """Drop problems whose statement says any valid answer is accepted, unless a checker is set."""
    kept, dropped = [], []
    for task_id in task_ids:
        problem = problems[task_id]
        evidence = (problem.get("meta") or {}).get("needs_checker")
        if evidence and not problem["tests"].get("checker"):
            dropped.append({"task_id": task_id, "reason": "needs_checker", "evidence": evidence})
        else:
            kept.append(task_id)
    return kept, dropped


def filter_problems(
    problems: dict[str, dict],
    index: NgramIndex,
    threshold: float,
    config: ExecConfig | None,
    executions: Path | None = None,
    progress: bool = False,
) -> tuple[list[dict], list[dict]]:
    """``(kept problems in input order, drop records)``; ``config=None`` skips execution."""
    if not 0 < threshold <= 1:
        raise InputError(f"--threshold must be in (0, 1], got {threshold}")
    ids, dropped = drop_duplicates(problems)
    ids, more = decontaminate(problems, ids, index, threshold)
    dropped += more
    ids, more = needs_checker(problems, ids)
    dropped += more
    if config is not None:
        ids, more = verify_references(problems, ids, config, executions, progress)
        dropped += more
    keep = set(ids)
    order = {t: i for i, t in enumerate(problems)}
    dropped.sort(key=lambda d: order[d["task_id"]])
    return [p for t, p in problems.items() if t in keep], dropped


# -- the command --------------------------------------------------------------------------------
def pool_sources(paths: list[Path]) -> tuple[dict[str, dict], dict[str, str]]:
    """The problems of every source file, in order, and each id's source (the file's stem).

    An id in two files is an error naming both.
    """
    pooled: dict[str, dict] = {}
    origin: dict[str, Path] = {}
    for path in paths:
        for task_id, problem in load_problems(path).items():
            if task_id in pooled:
                raise InputError(
                    f"{path}: field 'task_id': {task_id!r} is also in {origin[task_id]}; "
                    "problem ids must be unique across training sources"
                )
            pooled[task_id] = problem
            origin[task_id] = path
    return pooled, {t: p.stem for t, p in origin.items()}


def source_counts(origin: dict[str, str], kept: list[dict]) -> dict[str, dict[str, int]]:
    """Per source: problems read and kept."""
    counts: dict[str, dict[str, int]] = {}
    for source in origin.values():
        counts.setdefault(source, {"input": 0, "kept": 0})["input"] += 1
    for p in kept:
        counts[origin[p["task_id"]]]["kept"] += 1
    return counts


def build_parser() -> argparse.ArgumentParser:
    p = command_parser("filter", __doc__.split("\n")[0])
    p.add_argument(
        "--problems",
        type=Path,
        nargs="+",
        required=True,
        help="training problems JSONL, one file per source (pooled; ids must be unique)",
    )
    p.add_argument(
        "--benchmarks",
        type=Path,
        nargs="*",
        default=[],
        help="evaluation problems JSONL files to decontaminate against",
    )
    p.add_argument("--out", type=Path, required=True, help="kept problems JSONL")
    p.add_argument("--report", type=Path, required=True, help="JSON: what was dropped and why")
    p.add_argument("--ngram", type=int, default=13, help="words per n-gram (GPT-3 used 13)")
    p.add_argument(
        "--threshold",
        type=float,
        default=0.5,
        help="drop at this n-gram overlap with any benchmark problem",
    )
    p.add_argument(
        "--executions",
        type=Path,
        default=None,
        help="also keep the reference solutions' execution records here",
    )
    p.add_argument(
        "--skip-execution",
        action="store_true",
        help="do not run the reference solutions (no 'reference_fails' filter)",
    )
    # The executor's own flags, so the workflow can pass execution_flags(config['execution']).
    add_executor_arguments(p)
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        if args.ngram < 1:
            raise InputError(f"--ngram must be at least 1, got {args.ngram}")
        problems, origin = pool_sources(args.problems)
        index, benchmarks = load_benchmarks(args.benchmarks, args.ngram)
        if not benchmarks:
            print("codedpo filter: WARNING: no --benchmarks, no decontamination", file=sys.stderr)
        config = None if args.skip_execution else config_from_args(args)
        kept, dropped = filter_problems(
            problems, index, args.threshold, config, args.executions, not args.no_progress
        )
    except (InputError, SandboxUnavailable) as exc:
        print(f"codedpo filter: error: {exc}", file=sys.stderr)
        return 2
    except RuntimeError as exc:  # sandbox faults: the infrastructure's, never the data's
        print(f"codedpo filter: error: {exc}", file=sys.stderr)
        return 3
    reasons = Counter(d["reason"] for d in dropped)
    report = {
        "date": time.strftime("%Y-%m-%dT%H:%M:%S"),
        "problems": [{"path": str(p), "sha256": sha256_file(p)} for p in args.problems],
        "benchmarks": benchmarks,
        "config": {
            "ngram": args.ngram,
            "threshold": args.threshold,
            "execution": None if config is None else config.describe(),
        },
        "counts": {
            "input": len(problems),
            "kept": len(kept),
            "dropped": dict(reasons),
            "by_source": source_counts(origin, kept),
        },
        "dropped": dropped,
    }
    write_json(args.report, report)
    if not kept:
        print(
            f"codedpo filter: error: every problem was dropped (see {args.report})", file=sys.stderr
        )
        return 2
    write_jsonl(args.out, kept)
    print(json.dumps(report["counts"]))
    return 0
