"""Greedy pass@1 from execution records."""

from __future__ import annotations

import json
import math
import sys
from pathlib import Path

import pytest

from codedpo.evaluation.score import main, score, score_sampled
from codedpo.io import InputError
from codedpo.pairs.build import load_records

sys.path.insert(0, str(Path(__file__).parent))

# Valid problems (the problems file's schema); scoring reads only their ids.
PROBLEMS = {
    f"HE/{i}": {"task_id": f"HE/{i}", "prompt": f"p{i}", "entry_point": "f",
                "tests": {"kind": "call", "cases": [{"input": [i], "output": i}]}}
    for i in range(6)
}  # fmt: skip


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


# -- runs of an experiment and sampled pass@k, on records the sandbox wrote ----------------------
@pytest.fixture(scope="module")
def executed(tmp_path_factory):
    from scored_runs import execute_candidates  # noqa: PLC0415

    return execute_candidates(tmp_path_factory.mktemp("executed"))


def test_defaults_add_only_the_run_fields(tmp_path: Path, executed) -> None:
    from scored_runs import score_run  # noqa: PLC0415

    problems, records = executed
    s = json.loads(score_run(tmp_path, problems, records, policy="a", variant="base",
                             solved={0, 1, 2}).read_text())  # fmt: skip
    assert (s["round"], s["arm"], s["recipe"]) == (1, "paper", "dpo")
    assert "pass_at_k" not in s and "pass_at_k_samples" not in s
    assert s["config"] == {"groups": None}
    # The fields of scores written before runs existed, in their order, and the three new ones.
    assert list(s) == ["benchmark", "policy", "variant", "round", "arm", "recipe", "pass_at_1",
                       "passed", "total", "missing", "sandbox_errors", "problem_errors",
                       "rescued", "bad_cases", "groups", "status_counts", "verdicts", "excluded",
                       "problems_sha256", "executions_sha256", "config", "date"]  # fmt: skip
    assert s["pass_at_1"] == 3 / 12 and s["passed"] == 3


def test_run_flags_and_sampled_pass_at_k(tmp_path: Path, executed) -> None:
    from scored_runs import CANDIDATES, TASKS, score_run  # noqa: PLC0415

    problems, records = executed
    sampled = {0: 5, 1: 2, 2: 1, 3: 0}  # correct of 5 per problem; the others none
    path = score_run(tmp_path, problems, records, policy="a", variant="dpo", solved={0, 1},
                     sampled=sampled, ks=(5, 1, 2),
                     extra=("--round", "3", "--arm", "max_min", "--recipe", "dpo-ipo"))  # fmt: skip
    s = json.loads(path.read_text())
    assert (s["round"], s["arm"], s["recipe"]) == (3, "max_min", "dpo-ipo")
    assert s["pass_at_1"] == 2 / 12  # greedy stays the headline
    n = CANDIDATES
    for k in (1, 2, 5):
        want = sum(1 - math.comb(n - c, k) / math.comb(n, k) for c in
                   [sampled.get(i, 0) for i in range(len(TASKS))]) / len(TASKS)  # fmt: skip
        assert s["pass_at_k"][str(k)] == pytest.approx(want, abs=1e-12)
    assert list(s["pass_at_k"]) == ["1", "2", "5"]
    assert s["pass_at_k"]["1"] == pytest.approx((5 + 2 + 1) / 5 / 12)
    samples = s["pass_at_k_samples"]
    assert samples["samples_per_problem"] == {"min": 5, "max": 5}
    assert samples["per_problem"]["toy/1"] == {"n": 5, "c": 2}
    assert samples["status_counts"] == {"passed": 8, "failed": 52}
    assert len(samples["executions_sha256"]) == 1 and s["config"]["pass_at_k"] == [1, 2, 5]


def test_sampled_scoring_uses_the_groups(tmp_path: Path) -> None:
    # HumanEval+: an answer that fails the plus group is not a pass, sampled or greedy.
    records = [rec("HE/0", "passed", "passed"), rec("HE/0", "passed", "failed"),
               rec("HE/0", "failed", "failed")]  # fmt: skip
    for i, r in enumerate(records):
        r["sample_id"] = f"HE/0/{i}"
    problems = {"HE/0": PROBLEMS["HE/0"]}
    assert score_sampled(problems, records, [1])["pass_at_k"] == {"1": pytest.approx(1 / 3)}
    assert score_sampled(problems, records, [1], groups=["base"])["pass_at_k"] == {
        "1": pytest.approx(2 / 3)
    }


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--pass-at-k", "1"], "--pass-at-k needs --sampled-executions"),
        (["--round", "0"], "--round: 0 is not a round"),
        (["--arm", " "], "--arm: empty name"),
    ],
)
def test_bad_run_flags(tmp_path: Path, executed, extra, message) -> None:
    from scored_runs import score_run  # noqa: PLC0415

    problems, records = executed
    with pytest.raises(InputError, match=message):
        score_run(tmp_path, problems, records, policy="a", variant="dpo", solved=set(),
                  extra=tuple(extra))  # fmt: skip


def test_k_above_the_samples_is_an_error_naming_the_flag(tmp_path: Path, executed) -> None:
    from scored_runs import score_run  # noqa: PLC0415

    problems, records = executed
    with pytest.raises(InputError, match=r"--pass-at-k: k=10 exceeds the 5 sampled response\(s\) "
                       r"of 'toy/0' in --sampled-executions .*sampled\.jsonl"):  # fmt: skip
        score_run(tmp_path, problems, records, policy="a", variant="dpo", solved=set(),
                  sampled={0: 1}, ks=(1, 10))  # fmt: skip
    assert not (tmp_path / "scores.json").exists()


def test_sampled_records_twice_are_an_error(tmp_path: Path) -> None:
    path = tmp_path / "s.jsonl"
    path.write_text(json.dumps(RECORDS[0]) + "\n" + json.dumps(RECORDS[0]) + "\n")
    with pytest.raises(InputError, match=r"s\.jsonl:2: field 'sample_id': second record"):
        score_sampled(PROBLEMS, load_records([path]), [1])
