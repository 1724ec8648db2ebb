"""Preference pairs and the RFT set from executed samples."""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest

from codedpo.io import InputError
from codedpo.pairs import build_pairs, load_problems, load_records, main

PROBLEMS = {
    "t/mixed": {"task_id": "t/mixed", "prompt": "Write mixed()."},
    "t/all": {"task_id": "t/all", "prompt": "Write all_pass()."},
    "t/none": {"task_id": "t/none", "prompt": "Write none_pass()."},
    "t/unsampled": {"task_id": "t/unsampled", "prompt": "Nobody sampled this."},
    "t/wide": {"task_id": "t/wide", "prompt": "Write wide()."},
}

# (task_id, index, status); raw text is unique per sample unless said otherwise.
PLAN = [
    ("t/mixed", 0, "passed"),
    ("t/mixed", 1, "failed"),
    ("t/mixed", 2, "passed"),
    ("t/mixed", 3, "timeout"),
    ("t/mixed", 4, "sandbox_error"),
    ("t/all", 0, "passed"),
    ("t/all", 1, "passed"),
    ("t/all", 2, "passed"),
    ("t/none", 0, "syntax_error"),
    ("t/none", 1, "runtime_error"),
    ("t/none", 2, "sandbox_error"),
    *[("t/wide", i, "passed") for i in range(4)],
    *[("t/wide", i, "memory_exceeded" if i % 2 else "output_exceeded") for i in range(4, 8)],
]


def make(plan=PLAN, dup_raw: dict[str, str] | None = None) -> tuple[list[dict], list[dict]]:
    samples, executions = [], []
    for task_id, index, status in plan:
        sid = f"{task_id}/{index}"
        raw = (dup_raw or {}).get(sid, f"```python\n# {sid} {status}\n```")
        samples.append(
            {
                "task_id": task_id,
                "sample_id": sid,
                "index": index,
                "raw": raw,
                "solution": raw.strip("`python\n"),
                "policy": "demo-a",
            }
        )
        executions.append({"task_id": task_id, "sample_id": sid, "status": status})
    return samples, executions


def status_map(executions: list[dict]) -> dict[str, str]:
    return {e["sample_id"]: e["status"] for e in executions}


def test_chosen_passed_rejected_failed_and_format() -> None:
    samples, executions = make()
    pairs, rft, stats = build_pairs(PROBLEMS, samples, executions, seed=1)
    statuses = status_map(executions)
    raw_of = {s["sample_id"]: s["raw"] for s in samples}
    assert [p["task_id"] for p in pairs] == ["t/mixed", "t/wide"]
    for p in pairs:
        assert statuses[p["chosen_id"]] == "passed"
        assert statuses[p["rejected_id"]] not in ("passed", "sandbox_error")
        assert p["rejected_status"] == statuses[p["rejected_id"]]
        assert p["prompt"] == [{"role": "user", "content": PROBLEMS[p["task_id"]]["prompt"]}]
        assert p["chosen"] == [{"role": "assistant", "content": raw_of[p["chosen_id"]]}]
        assert p["rejected"] == [{"role": "assistant", "content": raw_of[p["rejected_id"]]}]
        assert set(p) == {
            "prompt",
            "chosen",
            "rejected",
            "task_id",
            "chosen_id",
            "rejected_id",
            "rejected_status",
        }
    assert stats["pairs"] == 2 and stats["problems_with_pairs"] == 2


def test_rft_is_every_distinct_passing_response() -> None:
    samples, executions = make(dup_raw={"t/all/1": "same", "t/all/2": "same"})
    _, rft, stats = build_pairs(PROBLEMS, samples, executions, seed=1)
    statuses = status_map(executions)
    assert all(statuses[r["sample_id"]] == "passed" for r in rft)
    by_task = {}
    for r in rft:
        by_task.setdefault(r["task_id"], []).append(r["sample_id"])
    # t/all has three passes but two identical texts.
    assert by_task == {
        "t/mixed": ["t/mixed/0", "t/mixed/2"],
        "t/all": ["t/all/0", "t/all/1"],
        "t/wide": [f"t/wide/{i}" for i in range(4)],
    }
    assert stats["rft_examples"] == len(rft) == 8
    r = rft[0]
    assert r["prompt"] == [{"role": "user", "content": "Write mixed()."}]
    assert r["completion"][0]["role"] == "assistant"
    assert set(r) == {"prompt", "completion", "task_id", "sample_id"}


def test_stats_and_histogram() -> None:
    samples, executions = make()
    _, _, stats = build_pairs(PROBLEMS, samples, executions, seed=1)
    assert stats["problems"] == 5 and stats["problems_sampled"] == 4
    assert stats["samples"] == len(PLAN) == 19
    assert stats["sandbox_errors"] == 2
    assert stats["status_counts"] == {
        "passed": 9,
        "failed": 1,
        "runtime_error": 1,
        "syntax_error": 1,
        "timeout": 1,
        "memory_exceeded": 2,
        "output_exceeded": 2,
        "sandbox_error": 2,
        "problem_error": 0,
    }
    assert sum(stats["status_counts"].values()) == stats["samples"]
    assert stats["pass_histogram"] == {"0/3": 1, "2/5": 1, "3/3": 1, "4/8": 1}
    assert stats["problems_all_passed"] == 1 and stats["problems_none_passed"] == 1


def test_sandbox_errors_are_never_paired() -> None:
    # Only sandbox errors beside the passes: no pair, the errors are counted.
    plan = [("t/mixed", 0, "passed"), ("t/mixed", 1, "sandbox_error"), ("t/mixed", 2, "passed")]
    samples, executions = make(plan)
    for seed in range(20):
        pairs, rft, stats = build_pairs(PROBLEMS, samples, executions, seed=seed)
        assert pairs == [] and len(rft) == 2 and stats["sandbox_errors"] == 1


def test_deterministic_and_independent_of_order() -> None:
    samples, executions = make()
    first = build_pairs(PROBLEMS, samples, executions, seed=7)
    assert build_pairs(PROBLEMS, samples, executions, seed=7) == first
    rng = random.Random(0)
    for _ in range(5):
        s2, e2 = samples[:], executions[:]
        rng.shuffle(s2)
        rng.shuffle(e2)
        assert build_pairs(PROBLEMS, s2, e2, seed=7) == first


def test_seed_changes_the_draw() -> None:
    samples, executions = make()
    draws = {
        tuple(
            (p["chosen_id"], p["rejected_id"])
            for p in build_pairs(PROBLEMS, samples, executions, seed=seed)[0]
        )
        for seed in range(30)
    }
    # t/wide alone has 16 possible pairs: 30 seeds giving one draw would mean the seed is unused.
    assert len(draws) > 5


def test_max_pairs_per_problem_gives_distinct_pairs() -> None:
    samples, executions = make()
    pairs, _, stats = build_pairs(PROBLEMS, samples, executions, seed=3, max_pairs_per_problem=5)
    wide = [(p["chosen_id"], p["rejected_id"]) for p in pairs if p["task_id"] == "t/wide"]
    mixed = [p for p in pairs if p["task_id"] == "t/mixed"]
    assert len(wide) == len(set(wide)) == 5
    assert len(mixed) == 4  # only 2 passed x 2 failed exist
    assert stats["pairs"] == 9 and stats["problems_with_pairs"] == 2
    with pytest.raises(ValueError, match="max_pairs_per_problem"):
        build_pairs(PROBLEMS, samples, executions, seed=3, max_pairs_per_problem=0)


def test_identical_text_that_passed_and_failed_is_not_rejected() -> None:
    plan = [("t/mixed", 0, "passed"), ("t/mixed", 1, "timeout")]
    samples, executions = make(plan, dup_raw={"t/mixed/0": "x", "t/mixed/1": "x"})
    pairs, _, stats = build_pairs(PROBLEMS, samples, executions, seed=1)
    assert pairs == [] and stats["flaky_failures_skipped"] == 1


# --- errors, through the file loaders so messages carry file:line: field -----------------------


def write(path: Path, records: list[dict]) -> str:
    path.write_text("".join(json.dumps(r) + "\n" for r in records))
    return str(path)


def load(tmp_path: Path, samples: list[dict], executions: list[dict]):
    return (
        load_records([write(tmp_path / "samples.jsonl", samples)]),
        load_records([write(tmp_path / "executions.jsonl", executions)]),
    )


def test_sample_without_execution_record(tmp_path: Path) -> None:
    samples, executions = make()
    s, e = load(tmp_path, samples, executions[:3] + executions[4:])
    with pytest.raises(
        InputError,
        match=r"samples\.jsonl:4: field 'sample_id': no execution "
        r"record for 't/mixed/3'",
    ):
        build_pairs(PROBLEMS, s, e, seed=1)


def test_duplicate_sample_id(tmp_path: Path) -> None:
    samples, executions = make()
    s, e = load(tmp_path, samples + [samples[1]], executions)
    n = len(samples) + 1
    with pytest.raises(
        InputError,
        match=rf"samples\.jsonl:{n}: field 'sample_id': duplicate "
        r"'t/mixed/1' \(first at .*samples\.jsonl:2\)",
    ):
        build_pairs(PROBLEMS, s, e, seed=1)


def test_duplicate_execution_record(tmp_path: Path) -> None:
    samples, executions = make()
    s, e = load(tmp_path, samples, executions + [executions[0]])
    with pytest.raises(InputError, match=r"executions\.jsonl:20: field 'sample_id': duplicate"):
        build_pairs(PROBLEMS, s, e, seed=1)


def test_execution_record_without_sample(tmp_path: Path) -> None:
    samples, executions = make()
    orphan = {"task_id": "t/mixed", "sample_id": "t/mixed/99", "status": "passed"}
    s, e = load(tmp_path, samples, [orphan] + executions)
    with pytest.raises(
        InputError,
        match=r"executions\.jsonl:1: field 'sample_id': 't/mixed/99' "
        r"matches no sample",
    ):
        build_pairs(PROBLEMS, s, e, seed=1)


@pytest.mark.parametrize(
    ("where", "change", "message"),
    [
        ("executions", {"status": "crashed"}, r"executions\.jsonl:1: field 'status': 'crashed'"),
        ("executions", {"task_id": "t/all"}, r"executions\.jsonl:1: field 'task_id': 't/all'"),
        (
            "samples",
            {"task_id": "t/ghost"},
            r"samples\.jsonl:1: field 'task_id': 't/ghost' is "
            r"not in the problems file",
        ),
        ("samples", {"raw": None}, r"samples\.jsonl:1: field 'raw' must be str"),
    ],
)
def test_bad_fields(tmp_path: Path, where: str, change: dict, message: str) -> None:
    samples, executions = make()
    target = samples if where == "samples" else executions
    target[0] = {**target[0], **change}
    s, e = load(tmp_path, samples, executions)
    with pytest.raises(InputError, match=message):
        build_pairs(PROBLEMS, s, e, seed=1)


def test_missing_prompt_names_problem_line(tmp_path: Path) -> None:
    path = write(tmp_path / "problems.jsonl", [{"task_id": "t/mixed"}])
    samples, executions = make(PLAN[:2])
    with pytest.raises(InputError, match=r"problems\.jsonl:1: missing field 'prompt'"):
        build_pairs(load_problems(path), samples, executions, seed=1)


def test_duplicate_problem(tmp_path: Path) -> None:
    path = write(tmp_path / "problems.jsonl", [PROBLEMS["t/all"], PROBLEMS["t/all"]])
    with pytest.raises(InputError, match=r"problems\.jsonl:2: field 'task_id': duplicate"):
        load_problems(path)


def test_cli_with_shards(tmp_path: Path) -> None:
    samples, executions = make()
    problems = write(tmp_path / "problems.jsonl", list(PROBLEMS.values()))
    # Shards split differently for samples and executions: the join is by id, not position.
    s = [write(tmp_path / "s0.jsonl", samples[:7]), write(tmp_path / "s1.jsonl", samples[7:])]
    e = [
        write(tmp_path / "e0.jsonl", executions[:12]),
        write(tmp_path / "e1.jsonl", executions[12:]),
    ]
    out = tmp_path / "out"
    argv = [
        "--problems",
        problems,
        "--samples",
        *s,
        "--executions",
        *e,
        "--out-pairs",
        str(out / "pairs.jsonl"),
        "--out-rft",
        str(out / "rft.jsonl"),
        "--out-stats",
        str(out / "stats.json"),
        "--seed",
        "1",
    ]
    assert main(argv) == 0
    pairs = [json.loads(line) for line in (out / "pairs.jsonl").read_text().splitlines()]
    expected, rft, _ = build_pairs(PROBLEMS, samples, executions, seed=1)
    assert pairs == expected
    assert len((out / "rft.jsonl").read_text().splitlines()) == len(rft)
    stats = json.loads((out / "stats.json").read_text())
    assert stats["pairs"] == 2 and stats["config"] == {"seed": 1, "max_pairs_per_problem": 1}
    assert len(stats["inputs"]["samples"]) == 2 and len(stats["inputs"]["problems"]["sha256"]) == 64
    assert stats["date"]
