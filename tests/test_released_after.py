"""A benchmark of problems released after a date (``released_after``): the date filter of
``codedpo prepare`` on our files and on the real LeetCodeDataset test split, its error on a
source without dates, the flags the config gives, and the tables' note."""

from __future__ import annotations

import copy
import datetime
import gzip
import json
from collections import Counter
from pathlib import Path

import pandas as pd
import pytest
import yaml
from workflow_helpers import REPO, merge

from codedpo.io import InputError
from codedpo.problems.prepare import main as prepare_main
from codedpo.problems.prepare import prepare
from codedpo.problems.released import iso_date, released_after
from codedpo.reporting.make_tables import main as tables_main
from codedpo.workflow import flags
from codedpo.workflow.config import ConfigError, Layer, check, load_schema

LEETCODE = REPO.parent / "shared" / "datasets" / "LeetCodeDataset"
TEST_SPLIT = LEETCODE / "LeetCodeDataset-v0.3.1-test.jsonl.gz"
FIXTURES = Path(__file__).parent / "fixtures" / "sources"
SCHEMA = load_schema(REPO / "schemas/config.schema.yaml")


def _problem(n: int, released: str | None) -> dict:
    rec = {"task_id": f"t/{n}", "prompt": "p", "entry_point": "f",
           "tests": {"kind": "call", "cases": [{"input": [n], "output": n}]}}  # fmt: skip
    if released is not None:
        rec["released"] = released
    return rec


def _write(path: Path, records: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in records))
    return path


# -- the filter ----------------------------------------------------------------------------------
def test_keeps_problems_released_strictly_after_the_date(tmp_path, capsys):
    dates = ["2024-04-29", "2024-04-30", "2024-05-01", "2025-01-01"]
    src = _write(tmp_path / "p.jsonl", [_problem(i, d) for i, d in enumerate(dates)])
    kept = prepare(src, "problems", None, after="2024-04-30")
    assert [p["task_id"] for p in kept] == ["t/2", "t/3"]  # the day itself is not after it
    assert "released after 2024-04-30: 2 of 4 problems kept" in capsys.readouterr().err
    assert len(prepare(src, "problems", None)) == 4  # no date: every problem
    with pytest.raises(InputError, match=r"no problem is released after it \(the latest: 2025"):
        prepare(src, "problems", None, after="2025-01-01")


def test_max_problems_draws_from_the_problems_kept(tmp_path):
    dates = ["2020-01-01"] * 6 + ["2025-01-01"] * 6
    src = _write(tmp_path / "p.jsonl", [_problem(i, d) for i, d in enumerate(dates)])
    for seed in range(5):
        picked = prepare(src, "problems", None, max_problems=3, seed=seed, after="2024-01-01")
        assert len(picked) == 3 and all(p["released"] == "2025-01-01" for p in picked)


def test_a_source_without_dates_is_an_error_naming_the_file(tmp_path):
    src = _write(tmp_path / "undated.jsonl", [_problem(0, None), _problem(1, None)])
    message = (r"undated\.jsonl: --released-after 2024-04-30: 2 of 2 problems "
               r"\(format problems\) carry no release date, first 't/0'")  # fmt: skip
    with pytest.raises(InputError, match=message):
        prepare(src, "problems", None, after="2024-04-30")
    # One undated problem among dated ones is an error too, never silently kept or dropped.
    mixed = _write(tmp_path / "mixed.jsonl", [_problem(0, "2025-01-01"), _problem(1, None)])
    with pytest.raises(InputError, match=r"mixed\.jsonl: .*1 of 2 problems .* first 't/1'"):
        prepare(mixed, "problems", None, after="2024-04-30")
    # A benchmark format that has no dates at all (HumanEval's records carry none).
    record = {"task_id": "HumanEval/0", "prompt": "def f():\n", "entry_point": "f",
              "canonical_solution": "    return 1\n",
              "test": "def check(candidate):\n    assert candidate() == 1\n"}  # fmt: skip
    humaneval = _write(tmp_path / "he.jsonl", [record])
    with pytest.raises(InputError, match=r"he\.jsonl: .*\(format humaneval\) carry no release"):
        prepare(humaneval, "humaneval", None, after="2024-04-30")


def test_dates_are_checked_where_they_enter(tmp_path):
    assert iso_date("2024-08-04 00:00:00", "x") == iso_date(datetime.date(2024, 8, 4), "x")
    with pytest.raises(InputError, match="x: expected a date YYYY-MM-DD, got '2024-02-30'"):
        iso_date("2024-02-30", "x")
    bad = _write(tmp_path / "bad.jsonl", [_problem(0, "2024-13-01")])
    with pytest.raises(InputError, match=r"bad\.jsonl:1: field 'released'"):
        prepare(bad, "problems", None)
    with pytest.raises(SystemExit):  # argparse: a bad --released-after is a usage error
        prepare_main(["--source", str(bad), "--released-after", "2024-4-1",
                      "--out", str(tmp_path / "o.jsonl")])  # fmt: skip


def test_leetcode_estimated_date_becomes_released(tmp_path):
    src = FIXTURES / "leetcode-train.jsonl"
    raw = [json.loads(line) for line in src.read_text().splitlines()]
    problems = prepare(src, "leetcode", None)
    assert [p["released"] for p in problems] == [r["estimated_date"] for r in raw]
    assert all("estimated_date" not in p["meta"] for p in problems)  # one home: `released`
    # The older nested layout (LeetCodeDataset v0.1/v0.2) has no date: no `released`.
    assert "released" not in prepare(FIXTURES / "leetcode-v1-layout.jsonl", "leetcode", None)[0]


# -- the real LeetCodeDataset --------------------------------------------------------------------
@pytest.mark.real_data
def test_real_test_split_by_date():
    """228 problems, 2024-08-04 to 2025-03-30 (3 on the first day, 4 on the last): each date
    keeps exactly the records whose estimated_date is after it."""
    with gzip.open(TEST_SPLIT, "rt") as fh:
        raw = [json.loads(line) for line in fh]
    every = prepare(TEST_SPLIT, "leetcode", None)  # loading takes seconds: once
    by_month = Counter(p["released"][:7] for p in every)
    assert sorted(by_month.items()) == [("2024-08", 25), ("2024-09", 31), ("2024-10", 28),
                                        ("2024-11", 26), ("2024-12", 34), ("2025-01", 26),
                                        ("2025-02", 27), ("2025-03", 31)]  # fmt: skip
    counts = {"2024-04-30": 228, "2024-08-03": 228, "2024-08-04": 225, "2024-12-31": 84,
              "2025-03-29": 4}  # fmt: skip
    for after, kept in counts.items():
        expected = [f"leetcode/{r['task_id']}" for r in raw if r["estimated_date"] > after]
        got = released_after(every, after, str(TEST_SPLIT), "leetcode")
        assert [p["task_id"] for p in got] == expected and len(expected) == kept, after


@pytest.mark.real_data
def test_real_benchmark_as_the_rehearsal_prepares_it(tmp_path):
    """The paper config's date, then the rehearsal's seeded slice of 4 of the problems kept."""
    out = tmp_path / "leetcode_new.jsonl"
    argv = ["--source", str(TEST_SPLIT), "--format", "leetcode", "--released-after",
            "2024-04-30", "--max-problems", "4", "--seed", "1", "--out", str(out)]  # fmt: skip
    assert prepare_main(argv) == 0
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert len(rows) == 4 and all(r["released"] > "2024-04-30" for r in rows)


@pytest.mark.real_data
def test_real_files_without_dates_are_an_error():
    """LeetCodeDataset v0.2.0 (the rehearsal's training file) carries no dates."""
    with pytest.raises(InputError, match=r"v0\.2\.0-test\.jsonl\.gz: --released-after "
                       r"2024-04-30: 200 of 200 problems \(format leetcode\)"):  # fmt: skip
        prepare(LEETCODE / "LeetCodeDataset-v0.2.0-test.jsonl.gz", "leetcode", None,
                after="2024-04-30")  # fmt: skip


# -- the config's flags --------------------------------------------------------------------------
def _checked(*layers: dict) -> dict:
    config = yaml.safe_load((REPO / "config.yaml").read_text())
    for layer in layers:
        config = merge(config, layer)
    config = copy.deepcopy(config)
    check(config, SCHEMA, [Layer("mine.yaml", config)], root=REPO)
    return config


PAPER = yaml.safe_load((REPO / "configs/paper.yaml").read_text())


def test_the_paper_config_evaluates_problems_after_the_models():
    config = _checked(PAPER)
    bench = config["benchmarks"]["leetcode_new"]
    assert bench["path"] == "resources/benchmarks/LeetCodeDataset-v0.3.1-test.jsonl.gz"
    assert flags.source_flags(bench) == "--format leetcode --released-after 2024-04-30"
    # The paper's benchmarks keep every problem; their flags are as before.
    assert "--released-after" not in flags.source_flags(config["benchmarks"]["mbpp"])
    assert config["tables"]["benchmarks"][-1] == "leetcode_new"
    paper = flags.paper_flags(config)
    # A paper column for the paper's four benchmarks only; the date for the tables' note.
    assert "--benchmark-ids humaneval=humaneval humaneval_plus=humaneval_plus mbpp=mbpp " \
        "mbpp_plus=mbpp_plus --released-after leetcode_new=2024-04-30" in paper


def test_released_after_on_a_training_source_and_before_the_subset():
    source = {"path": "src/codedpo/data/demo/problems.jsonl", "format": "problems",
              "split": "train", "released_after": "2024-01-31", "max_problems": 5,
              "seed": 2}  # fmt: skip
    config = _checked({"train_problems": {"sources": {"new": source}}})
    assert flags.source_flags(config["train_problems"]["sources"]["new"]) == (
        "--format problems --split train --released-after 2024-01-31 --max-problems 5 --seed 2"
    )


def test_paper_flags_without_paper_numbers_still_name_the_date():
    config = _checked(PAPER, {"tables": {"paper_results": None}})
    assert flags.paper_flags(config) == "--released-after leetcode_new=2024-04-30"
    assert flags.paper_flags(_checked({"tables": {"paper_results": None}})) == ""


@pytest.mark.parametrize(
    ("value", "message"),
    [(datetime.date(2024, 4, 30), r"released_after: datetime\.date\(2024, 4, 30\) is not a "
      "string"), ("30/04/2024", "released_after")],  # fmt: skip
)
def test_the_schema_wants_a_quoted_iso_date(value, message):
    with pytest.raises(ConfigError, match=message):
        _checked(PAPER, {"benchmarks": {"leetcode_new": {"released_after": value}}})


# -- the tables ----------------------------------------------------------------------------------
def test_tables_note_the_date_and_print_no_paper_column(tmp_path):
    scores = tmp_path / "scores"
    scores.mkdir()
    paths = []
    for i, bench in enumerate(["humaneval", "leetcode_new"]):
        path = scores / f"{i}.json"
        path.write_text(json.dumps({"policy": "codeqwen", "variant": "base", "benchmark": bench,
                                    "pass_at_1": 0.5, "passed": 2, "total": 4}))  # fmt: skip
        paths.append(str(path))
    out = tmp_path / "tables"
    argv = ["--scores", *paths, "--models", "codeqwen", "--benchmarks", "humaneval",
            "leetcode_new", "--paper", str(REPO / "configs/paper_results.yaml"),
            "--model-ids", "codeqwen=Qwen/CodeQwen1.5-7B-Chat", "--benchmark-ids",
            "humaneval=humaneval", "--released-after", "leetcode_new=2024-04-30",
            "--outdir", str(out)]  # fmt: skip
    assert tables_main(argv) == 0
    t1 = pd.read_csv(out / "table1.csv")
    assert "humaneval (paper)" in t1.columns and "leetcode_new (paper)" not in t1.columns
    assert t1["leetcode_new"].iloc[0] == 0.5
    note = "leetcode_new: problems released after 2024-04-30 (not in the paper)."
    for name in ("table1.md", "table2.md", "table1.tex"):
        assert note in (out / name).read_text(), name
    with pytest.raises(InputError, match=r"--released-after: \['mbpp'\] are not among"):
        tables_main([*argv[:-3], "mbpp=2024-04-30", "--outdir", str(out)])
