"""Greedy pass@1 from execution records."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from codedpo.io import InputError
from codedpo.pairs import load_records
from codedpo.scoring import main, score

PROBLEMS = {f"HE/{i}": {"task_id": f"HE/{i}", "prompt": f"p{i}"} for i in range(6)}


def rec(task_id: str, base: str, plus: str | None = None, status: str | None = None) -> dict:
    groups = {"base": {"passed": 1, "total": 1, "status": base}}
    if plus is not None:
        groups["plus"] = {"passed": 1, "total": 1, "status": plus}
    overall = status or next((s for s in (base, plus) if s not in (None, "passed")), "passed")
    return {"task_id": task_id, "sample_id": f"{task_id}/0", "status": overall, "groups": groups}


RECORDS = [
    rec("HE/0", "passed", "passed"),
    rec("HE/1", "passed", "failed"),  # passes HumanEval, fails HumanEval+
    rec("HE/2", "failed", "passed"),
    rec("HE/3", "passed", "timeout"),
    rec("HE/4", "runtime_error", "runtime_error"),
    # HE/5 has no record: missing, counted as failed.
]


def test_all_groups_is_evalplus_plus() -> None:
    result = score(PROBLEMS, RECORDS)
    assert result["passed"] == 1 and result["total"] == 6
    assert result["pass_at_1"] == pytest.approx(1 / 6)
    assert result["missing"] == ["HE/5"]
    assert result["verdicts"]["HE/5"] == {"passed": False, "status": "missing"}
    assert result["verdicts"]["HE/3"] == {"passed": False, "status": "timeout"}


def test_base_group_only() -> None:
    result = score(PROBLEMS, RECORDS, groups=["base"])
    assert result["passed"] == 3 and result["pass_at_1"] == pytest.approx(0.5)
    assert [t for t, v in result["verdicts"].items() if v["passed"]] == ["HE/0", "HE/1", "HE/3"]
    assert result["groups"] == ["base"]


@pytest.mark.parametrize("groups", [None, ["base"], ["plus"], ["base", "plus"]])
def test_score_matches_recount(groups) -> None:
    result = score(PROBLEMS, RECORDS, groups=groups)
    recount = 0
    for r in RECORDS:
        wanted = groups or ["base", "plus"]
        recount += all(r["groups"][g]["status"] == "passed" for g in wanted)
    assert result["passed"] == recount == sum(v["passed"] for v in result["verdicts"].values())
    assert 0.0 <= result["pass_at_1"] <= 1.0
    assert result["pass_at_1"] == recount / len(PROBLEMS)
    assert sum(result["status_counts"].values()) == len(PROBLEMS)


def test_syntax_error_without_groups_is_a_failure() -> None:
    record = {"task_id": "HE/0", "status": "syntax_error", "groups": {}}
    result = score(PROBLEMS, [record], groups=["base"])
    assert result["verdicts"]["HE/0"] == {"passed": False, "status": "syntax_error"}


def test_passed_record_without_the_group_is_an_error(tmp_path: Path) -> None:
    path = tmp_path / "exec.jsonl"
    path.write_text(json.dumps(rec("HE/0", "passed")) + "\n")
    with pytest.raises(InputError, match=r"exec\.jsonl:1: field 'groups\.plus': missing"):
        score(PROBLEMS, load_records([path]), groups=["plus"])


def test_faults_not_the_models_are_listed_per_sample(tmp_path: Path) -> None:
    records = RECORDS + [{"task_id": "HE/5", "status": "sandbox_error"}]
    path = tmp_path / "exec.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in records))
    result = score(PROBLEMS, load_records([path]))  # reported, never a refusal to score
    assert result["sandbox_errors"] == ["HE/5"] and result["missing"] == []
    assert result["verdicts"]["HE/5"] == {"passed": False, "status": "sandbox_error"}
    assert result["passed"] == 1 and result["total"] == 6
    # A group's fault decides the problem's status, as any other.
    grouped = score(PROBLEMS, [rec("HE/0", "passed", "problem_error")])
    assert grouped["problem_errors"] == ["HE/0"] and grouped["passed"] == 0


def test_rescues_and_bad_cases_are_counted() -> None:
    records = [
        {**rec("HE/0", "passed"), "rescued": ["prompt_imports"]},
        {**rec("HE/1", "failed"), "rescued": ["prompt_helpers", "prompt_imports"]},
        {**rec("HE/2", "passed"), "bad_cases": [88]},
    ]
    result = score(PROBLEMS, records)
    assert result["rescued"] == {"prompt_helpers": {"problems": 1, "passed": 0},
                                 "prompt_imports": {"problems": 2, "passed": 1}}  # fmt: skip
    assert result["bad_cases"] == {"HE/2": [88]}


@pytest.mark.parametrize(
    ("record", "message"),
    [
        ({"task_id": "HE/9", "status": "passed"}, r"x\.jsonl:1: field 'task_id': 'HE/9' is not"),
        ({"task_id": "HE/0", "status": "great"}, r"x\.jsonl:1: field 'status': 'great'"),
        ({"task_id": "HE/0"}, r"x\.jsonl:1: missing field 'status'"),
        ({"status": "passed"}, r"x\.jsonl:1: missing field 'task_id'"),
    ],
)
def test_bad_records(tmp_path: Path, record: dict, message: str) -> None:
    path = tmp_path / "x.jsonl"
    path.write_text(json.dumps(record) + "\n")
    with pytest.raises(InputError, match=message):
        score(PROBLEMS, load_records([path]))


def test_bad_group_status(tmp_path: Path) -> None:
    path = tmp_path / "x.jsonl"
    path.write_text(json.dumps(rec("HE/0", "ok", status="failed")) + "\n")
    with pytest.raises(InputError, match=r"x\.jsonl:1: field 'groups\.base\.status': 'ok'"):
        score(PROBLEMS, load_records([path]), groups=["base"])


def test_two_records_for_one_problem(tmp_path: Path) -> None:
    path = tmp_path / "x.jsonl"
    path.write_text(json.dumps(RECORDS[0]) + "\n" + json.dumps(RECORDS[0]) + "\n")
    with pytest.raises(InputError, match=r"x\.jsonl:2: field 'task_id': second record"):
        score(PROBLEMS, load_records([path]))


def test_empty_problems() -> None:
    with pytest.raises(InputError, match="no problems"):
        score({}, [])


def test_cli_writes_scores_format(tmp_path: Path) -> None:
    problems = tmp_path / "problems.jsonl"
    problems.write_text("".join(json.dumps(p) + "\n" for p in PROBLEMS.values()))
    shards = []
    for i, chunk in enumerate((RECORDS[:2], RECORDS[2:])):
        shard = tmp_path / f"exec{i}.jsonl"
        shard.write_text("".join(json.dumps(r) + "\n" for r in chunk))
        shards.append(str(shard))
    out = tmp_path / "scores" / "he.json"
    argv = [
        "--problems",
        str(problems),
        "--executions",
        *shards,
        "--benchmark",
        "humaneval",
        "--policy",
        "demo-a",
        "--variant",
        "dpo",
        "--pairs-from",
        "demo-b",
        "--groups",
        "base",
        "--out",
        str(out),
    ]
    assert main(argv) == 0
    s = json.loads(out.read_text())
    assert (s["benchmark"], s["policy"], s["variant"], s["pairs_from"]) == (
        "humaneval",
        "demo-a",
        "dpo",
        "demo-b",
    )
    assert s["pass_at_1"] == 0.5 and s["passed"] == 3 and s["total"] == 6
    assert len(s["problems_sha256"]) == 64 and len(s["executions_sha256"]) == 2
    assert s["config"] == {"groups": ["base"]}
    assert s["date"] and s["missing"] == ["HE/5"]
