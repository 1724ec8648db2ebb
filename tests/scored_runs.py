"""Score files of an iterative experiment, made the way the workflow makes them: candidate answers
executed in the sandbox (codedpo.execution), then ``codedpo score`` on the execution records.

A toy benchmark of ``N_PROBLEMS`` one-line functions; each problem has ``CANDIDATES`` correct and
as many wrong answers, all executed once (about a second). A run is then which problems its
greedy answer solves (its greedy record is a correct or a wrong one) and, for pass@k, how many of
its ``n`` sampled answers per problem are correct.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path

from codedpo.evaluation.score import main as score_main
from codedpo.execution.backends import SandboxConfig
from codedpo.execution.executor import ExecConfig, Limits, execute_files
from codedpo.problems.load import load_problems

N_PROBLEMS = 12
CANDIDATES = 5  # correct answers per problem, and as many wrong ones
BENCHMARK = "toy"
TASKS = [f"toy/{i}" for i in range(N_PROBLEMS)]


def _write_jsonl(path: Path, records) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in records))
    return path


def execute_candidates(directory: Path) -> tuple[Path, dict[str, dict]]:
    """``(problems.jsonl, sample_id -> execution record)``; sample ids ``toy/i/ok{j}`` pass and
    ``toy/i/wrong{j}`` fail."""
    directory.mkdir(parents=True, exist_ok=True)
    problems, samples = [], []
    for i, task in enumerate(TASKS):
        name = f"f{i}"
        problems.append({
            "task_id": task, "prompt": f"def {name}(x): x times {i}", "entry_point": name,
            "canonical_solution": f"def {name}(x):\n    return x * {i}\n",
            "tests": {"kind": "call", "cases": [{"input": [1]}, {"input": [3]}, {"input": [-2]}]},
        })  # fmt: skip
        for j in range(CANDIDATES):
            samples.append({"task_id": task, "sample_id": f"{task}/ok{j}",
                            "solution": f"def {name}(x):\n    return x * {i} + 0 * {j}\n"})
            samples.append({"task_id": task, "sample_id": f"{task}/wrong{j}",
                            "solution": f"def {name}(x):\n    return x * {i} + {j + 1}\n"})
    problems_path = _write_jsonl(directory / "problems.jsonl", problems)
    samples_path = _write_jsonl(directory / "samples.jsonl", samples)
    out = directory / "executions.jsonl"
    config = ExecConfig(sandbox=SandboxConfig(backend="process"),
                        limits=Limits(test_seconds=2.0, memory_mb=512), workers=2)  # fmt: skip
    execute_files(load_problems(problems_path), [samples_path], out, config,
                  expected_path=directory / "expected.json", progress=False)  # fmt: skip
    records = {r["sample_id"]: r for r in map(json.loads, out.read_text().splitlines())}
    assert sum(r["status"] == "passed" for r in records.values()) == N_PROBLEMS * CANDIDATES
    return problems_path, records


def score_run(
    directory: Path,
    problems: Path,
    records: Mapping[str, dict],
    *,
    policy: str,
    variant: str,
    solved: set[int],
    sampled: Mapping[int, int] | None = None,
    ks: tuple[int, ...] = (1, 5),
    extra: tuple[str, ...] = (),
) -> Path:
    """Run ``codedpo score`` on the greedy records of the problems ``solved`` (indices) and, with
    ``sampled`` (problem index -> correct answers of ``CANDIDATES``), on sampled records."""
    directory.mkdir(parents=True, exist_ok=True)
    greedy = [records[f"{t}/{'ok' if i in solved else 'wrong'}0"] for i, t in enumerate(TASKS)]
    argv = ["--problems", str(problems),
            "--executions", str(_write_jsonl(directory / "executions.jsonl", greedy)),
            "--benchmark", BENCHMARK, "--policy", policy, "--variant", variant, *extra,
            "--out", str(directory / "scores.json")]  # fmt: skip
    if sampled is not None:
        chosen = [
            records[f"{t}/{'ok' if j < sampled.get(i, 0) else 'wrong'}{j}"]
            for i, t in enumerate(TASKS)
            for j in range(CANDIDATES)
        ]
        path = _write_jsonl(directory / "sampled.jsonl", chosen)
        argv += ["--sampled-executions", str(path), "--pass-at-k", *map(str, ks)]
    assert score_main(argv) == 0
    return directory / "scores.json"
