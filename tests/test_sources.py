"""Training sources: LeetCodeDataset and CodeContests records (fixtures in the real layouts)."""

from __future__ import annotations

import json
import shutil
import sys
import types
from pathlib import Path

import pytest

from codedpo.execution.backends import SandboxConfig
from codedpo.execution.executor import ExecConfig
from codedpo.execution.filter import verify_references
from codedpo.io import InputError
from codedpo.problems import train_sources as sources
from codedpo.problems.load import load_problems, validate_problem
from codedpo.problems.prepare import main as prepare_main

FIXTURES = Path(__file__).parent / "fixtures" / "sources"
BACKEND = "bwrap" if shutil.which("bwrap") else "process"


def _records(name: str) -> list[dict]:
    return [json.loads(line) for line in (FIXTURES / name).read_text().splitlines()]


# -- LeetCodeDataset ----------------------------------------------------------------------------
def test_leetcode_records_become_assert_problems():
    problems = sources.load_leetcode(FIXTURES / "leetcode-train.jsonl")
    raw = _records("leetcode-train.jsonl")
    assert [p["task_id"] for p in problems] == [f"leetcode/{r['task_id']}" for r in raw]
    for p, r in zip(problems, raw, strict=True):
        validate_problem(p, "test")
        assert p["split"] == "train" and p["source"] == "leetcode"
        assert p["entry_point"] == r["entry_point"] and p["entry_point"].startswith("Solution().")
        assert p["prompt"] == r["query"]
        # The dataset's evaluator order: its prompt (the prelude) runs before the completion.
        assert p["canonical_solution"] == r["completion"]
        assert p["tests"]["prelude"] == r["prompt"]
        assert p["tests"]["helpers"] == r["test"]
        assert p["meta"]["question_id"] == r["question_id"]
        assert p["meta"]["difficulty"] == r["difficulty"]
        assert p["meta"]["original_task_id"] == r["task_id"]
    first, tree, linked, looped = problems
    # One test per assertion, after the dataset's prelude (imports, ListNode/TreeNode helpers).
    assert first["tests"]["asserts"] == [
        "assert candidate(nums=[12, 345, 2, 6, 7896]) == 2",
        "assert candidate(nums=[555, 901, 482, 1771]) == 1",
        "assert candidate(nums=[1]) == 0",
    ]
    assert "tree_node(" in tree["tests"]["asserts"][0]
    assert linked["tests"]["asserts"][0].startswith("assert is_same_list(")
    # A check() with a loop cannot be split: the judge runs it whole.
    assert looped["tests"]["asserts"] == ["check(candidate)"]


def test_leetcode_older_nested_layout_loads_the_same_problem():
    old = sources.load_leetcode(FIXTURES / "leetcode-v1-layout.jsonl")[0]
    new = sources.load_leetcode(FIXTURES / "leetcode-train.jsonl")[0]
    for key in ("task_id", "prompt", "entry_point", "canonical_solution", "tests"):
        assert old[key] == new[key]
    assert old["meta"]["difficulty"] == "Easy" and old["meta"]["question_id"] == 9001


def test_leetcode_prompt_is_built_when_query_is_absent(tmp_path):
    rec = _records("leetcode-train.jsonl")[0]
    del rec["query"]
    path = tmp_path / "noquery.jsonl"
    path.write_text(json.dumps(rec) + "\n")
    prompt = sources.load_leetcode(path)[0]["prompt"]
    assert prompt.startswith(rec["problem_description"].rstrip())
    assert rec["starter_code"] in prompt and sources.LEETCODE_INSTRUCTION in prompt


def test_leetcode_malformed_record_names_file_line_and_field():
    with pytest.raises(InputError, match=r"leetcode-malformed\.jsonl:2: field 'test'"):
        sources.load_leetcode(FIXTURES / "leetcode-malformed.jsonl")


def test_leetcode_test_that_does_not_parse_is_an_error(tmp_path):
    rec = _records("leetcode-train.jsonl")[0]
    rec["test"] = "def check(candidate):\n    assert candidate(nums = [1] == 0\n"
    path = tmp_path / "bad.jsonl"
    path.write_text(json.dumps(rec) + "\n")
    with pytest.raises(InputError, match=r"bad\.jsonl:1: field 'test' is not valid Python"):
        sources.load_leetcode(path)


def test_parquet_source_loads_like_jsonl(tmp_path):
    pa = pytest.importorskip("pyarrow")
    pq = pytest.importorskip("pyarrow.parquet")
    for name, load in (
        ("leetcode-train.jsonl", sources.load_leetcode),
        ("codecontests-train.jsonl", sources.load_codecontests),
    ):
        path = tmp_path / name.replace(".jsonl", ".parquet")
        pq.write_table(pa.Table.from_pylist(_records(name)), path)
        assert load(path) == load(FIXTURES / name)


# -- CodeContests -------------------------------------------------------------------------------
def test_codecontests_records_become_stdio_problems(capsys):
    problems = sources.load_codecontests(FIXTURES / "codecontests-train.jsonl")
    # 9999_C has only C++ and Python 2 solutions: skipped, and said so.
    assert [p["task_id"] for p in problems] == [
        "codecontests/9999_A. Two Piles",
        "codecontests/9999_B. Fair Share",
        "codecontests/9999_D. Largest Of Three",
    ]
    assert "1 records skipped (no Python 3 solution: 1)" in capsys.readouterr().err
    a, b, _ = problems
    for p in problems:
        validate_problem(p, "test")
        assert p["split"] == "train" and p["source"] == "codecontests"
        assert p["entry_point"] is None and p["tests"]["kind"] == "stdio"
        assert p["prompt"].endswith(sources.STDIO_INSTRUCTION)
    # The PYTHON3 (language 3) solution, not the C++ or Python 2 ones.
    assert a["canonical_solution"] == "a, b = map(int, input().split())\nprint(a + b)\n"
    assert [c["group"] for c in a["tests"]["cases"]] == ["public", "private", "private"]
    assert a["tests"]["cases"][0] == {"input": "2 3\n", "output": "5\n", "group": "public"}
    assert a["tests"]["float_tol"] is None
    assert b["tests"]["float_tol"] == sources.FLOAT_TOL  # "absolute or relative error"
    assert a["meta"] == {
        "name": "9999_A. Two Piles",
        "source": "CODEFORCES",
        "difficulty": "A",
        "cf_contest_id": 9999,
        "cf_index": "A",
        "cf_rating": 800,
        "cf_tags": ["math"],
        "time_limit_s": 1.0,
        "memory_limit_bytes": 256000000,
        "python3_solutions": 1,
    }


def test_codecontests_generated_tests_on_request():
    problems = sources.load_codecontests(
        FIXTURES / "codecontests-train.jsonl", test_sets=("public", "private", "generated")
    )
    assert [c["group"] for c in problems[0]["tests"]["cases"]][-1] == "generated"
    with pytest.raises(InputError, match="unknown CodeContests test set 'hidden'"):
        sources.load_codecontests(FIXTURES / "codecontests-train.jsonl", test_sets=("hidden",))


def test_codecontests_proto_json_layout_loads_the_same_problem(tmp_path):
    rec = _records("codecontests-train.jsonl")[0]
    for field in ("public_tests", "private_tests", "generated_tests"):
        rec[field] = [
            {"input": i, "output": o}
            for i, o in zip(rec[field]["input"], rec[field]["output"], strict=True)
        ]
    sols = rec["solutions"]
    rec["solutions"] = [
        {"language": sources.CC_LANGUAGES[lang], "solution": code}
        for lang, code in zip(sols["language"], sols["solution"], strict=True)
    ]
    path = tmp_path / "proto.jsonl"
    path.write_text(json.dumps(rec) + "\n")
    assert (
        sources.load_codecontests(path)[0]
        == sources.load_codecontests(FIXTURES / "codecontests-train.jsonl")[0]
    )


def test_codecontests_skips_file_io_and_suffixes_repeated_names(tmp_path, capsys):
    first = _records("codecontests-train.jsonl")[0]
    file_io = dict(first, name="other", input_file="input.txt")
    path = tmp_path / "cc.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in (first, first, file_io)))
    ids = [p["task_id"] for p in sources.load_codecontests(path)]
    assert ids == ["codecontests/9999_A. Two Piles", "codecontests/9999_A. Two Piles#2"]
    assert "reads or writes files" in capsys.readouterr().err


def test_codeforces_format_keeps_codeforces_problems_only(tmp_path, capsys):
    records = _records("codecontests-train.jsonl")
    atcoder = dict(records[0], name="abc001_a", source=6)  # the proto's enum: 6 is ATCODER
    named = dict(records[1], name="named_source", source="CODEFORCES")  # proto JSON: by name
    path = tmp_path / "cc.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in (*records, atcoder, named)))
    out = tmp_path / "cf.jsonl"
    assert prepare_main(["--source", str(path), "--format", "codeforces", "--out", str(out)]) == 0
    ids = list(load_problems(out))
    everything = [p["task_id"] for p in sources.load_codecontests(path)]
    assert "codecontests/abc001_a" in everything
    assert ids == [t for t in everything if t != "codecontests/abc001_a"]
    assert "not from CODEFORCES: 1" in capsys.readouterr().err


def test_max_problems_keeps_a_seeded_subset_in_source_order(tmp_path):
    src = FIXTURES / "leetcode-train.jsonl"
    every = [p["task_id"] for p in sources.load_leetcode(src)]

    def subset(seed: int) -> list[str]:
        out = tmp_path / f"s{seed}.jsonl"
        argv = ["--source", str(src), "--format", "leetcode", "--max-problems", "2",
                "--seed", str(seed), "--out", str(out)]  # fmt: skip
        assert prepare_main(argv) == 0
        return list(load_problems(out))

    picks = {seed: subset(seed) for seed in range(6)}
    for ids in picks.values():
        assert len(ids) == 2 and ids == [t for t in every if t in ids]
    assert subset(3) == picks[3]  # the same seed draws the same subset
    assert len({tuple(ids) for ids in picks.values()}) > 1  # and seeds differ
    with pytest.raises(InputError, match="--max-problems must be at least 1"):
        prepare_main(["--source", str(src), "--format", "leetcode", "--max-problems", "0",
                      "--out", str(tmp_path / "z.jsonl")])  # fmt: skip


def test_codecontests_malformed_record_names_file_line_and_field():
    with pytest.raises(
        InputError, match=r"codecontests-malformed\.jsonl:1: field 'public_tests': 2 inputs"
    ):
        sources.load_codecontests(FIXTURES / "codecontests-malformed.jsonl")


# -- reading from the Hub (no network: datasets.load_dataset is replaced) -----------------------
def test_hub_ids_go_through_datasets_load_dataset(monkeypatch, tmp_path):
    calls = []

    def load_dataset(name, split, streaming, revision=None):
        calls.append((name, split, streaming, revision))
        return iter(_records("leetcode-train.jsonl"))

    monkeypatch.setitem(sys.modules, "datasets", types.SimpleNamespace(load_dataset=load_dataset))
    assert sources.is_hub_id(sources.LEETCODE_HUB)
    assert not sources.is_hub_id(FIXTURES / "leetcode-train.jsonl")
    problems = sources.load_leetcode(sources.LEETCODE_HUB, split="train", limit=2)
    assert calls == [(sources.LEETCODE_HUB, "train", True, None)]
    assert len(problems) == 2
    out = tmp_path / "export.jsonl"
    argv = ["--hub", sources.LEETCODE_HUB, "--revision", "v0.3.1", "--limit", "3"]
    assert sources.main([*argv, "--out", str(out)]) == 0
    assert calls[-1] == (sources.LEETCODE_HUB, "train", True, "v0.3.1")
    assert len(out.read_text().splitlines()) == 3
    assert sources.load_leetcode(out)[:2] == problems


def test_missing_local_file_is_an_error_not_a_hub_lookup(tmp_path):
    with pytest.raises(InputError, match="file not found"):
        sources.load_leetcode(tmp_path / "nope.jsonl")


# -- through prepare and the real executor ------------------------------------------------------
@pytest.mark.parametrize(
    ("name", "fmt", "count"),
    [("leetcode-train.jsonl", "leetcode", 4), ("codecontests-train.jsonl", "codecontests", 3)],
)
def test_prepare_knows_the_formats(tmp_path, name, fmt, count):
    out = tmp_path / "train.jsonl"
    argv = ["--source", str(FIXTURES / name), "--format", fmt, "--split", "train"]
    assert prepare_main([*argv, "--out", str(out)]) == 0
    assert len(load_problems(out, split="train")) == count


def test_fixture_reference_solutions_pass_the_real_executor():
    problems = sources.load_leetcode(FIXTURES / "leetcode-train.jsonl")
    problems += sources.load_codecontests(FIXTURES / "codecontests-train.jsonl")
    by_id = {p["task_id"]: p for p in problems}
    config = ExecConfig(SandboxConfig(backend=BACKEND), workers=2)
    kept, dropped = verify_references(by_id, list(by_id), config)
    # Every reference passes but 9999_D's, which is wrong on its private tests.
    assert kept == [t for t in by_id if t != "codecontests/9999_D. Largest Of Three"]
    assert [(d["task_id"], d["reason"], d["status"]) for d in dropped] == [
        ("codecontests/9999_D. Largest Of Three", "reference_fails", "failed")
    ]
