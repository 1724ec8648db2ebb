"""Filters on training problems: duplicates, benchmark contamination, failing references."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from codedpo.execution import filter as filters
from codedpo.io import InputError, read_json, write_jsonl
from codedpo.problems import train_sources as sources
from codedpo.problems.load import load_problems
from codedpo.problems.prepare import prepare

FIXTURES = Path(__file__).parent / "fixtures" / "sources"
BENCH = FIXTURES / "humaneval-like.jsonl"
BACKEND = "bwrap" if shutil.which("bwrap") else "process"
SHARED = Path(__file__).resolve().parents[2] / "shared" / "benchmarks"
needs_shared = pytest.mark.skipif(not SHARED.exists(), reason="../shared/benchmarks not present")

COPIED = "leetcode/no-negative-running-balance"  # HumanEvalLike/1, restated as a LeetCode record
REPEATED = "leetcode/count-even-length-numbers"  # the first problem, re-cased and re-spaced
BROKEN = "codecontests/9999_D. Largest Of Three"  # its Python 3 reference is wrong


def _train_problems() -> dict[str, dict]:
    problems = sources.load_leetcode(FIXTURES / "leetcode-train.jsonl")
    problems += sources.load_codecontests(FIXTURES / "codecontests-train.jsonl")
    problems += sources.load_leetcode(FIXTURES / "leetcode-extra.jsonl")
    return {p["task_id"]: p for p in problems}


def _index(n: int = 13) -> filters.NgramIndex:
    return filters.load_benchmarks([BENCH], n)[0]


# -- pieces -------------------------------------------------------------------------------------
def test_ngrams_are_lowercased_words_and_short_texts_are_one_gram():
    assert filters.ngrams("A b, C!  d", 2) == {"a b", "b c", "c d"}
    assert filters.ngrams("Return x.", 13) == {"return x"}
    assert filters.ngrams("  ", 13) == set()
    assert filters.normalize("Two  Sum:\n\tFIND it") == "two sum find it"


def test_solution_text_leaves_out_the_shared_prelude():
    problem = sources.load_leetcode(FIXTURES / "leetcode-train.jsonl")[0]
    assert filters.solution_text(problem).startswith("class Solution:")


def test_duplicates_keep_the_first_problem():
    problems = _train_problems()
    kept, dropped = filters.drop_duplicates(problems)
    assert dropped == [
        {
            "task_id": REPEATED,
            "reason": "duplicate",
            "duplicate_of": "leetcode/count-digits-that-are-even",
        }
    ]
    assert kept == [t for t in problems if t != REPEATED]


def test_duplicates_compare_the_statement_before_any_prompt_template():
    problems = _train_problems()
    first = problems["leetcode/count-digits-that-are-even"]
    other = dict(problems["leetcode/sum-of-a-range"])
    other["meta"] = {"original_prompt": first["prompt"]}
    kept, dropped = filters.drop_duplicates({first["task_id"]: first, "x": other})
    assert [d["task_id"] for d in dropped] == ["x"]


def test_overlap_is_shared_over_the_smaller_gram_set():
    index = filters.NgramIndex(3)
    bench = {"prompt": "one two three four five", "tests": {}, "canonical_solution": None}
    index.add("b::B/1", bench)
    # Contains the whole benchmark text: 3 of its 3 grams are shared.
    longer = {"prompt": "zero one two three four five six seven", "tests": {}}
    assert index.best_match(longer) == {
        "field": "prompt",
        "benchmark_task": "b::B/1",
        "overlap": 1.0,
        "shared_ngrams": 3,
    }
    half = {"prompt": "one two three nine eight seven", "tests": {}}
    assert index.best_match(half)["overlap"] == pytest.approx(1 / 3, abs=1e-4)
    assert index.best_match({"prompt": "unrelated words only here", "tests": {}}) is None


# -- decontamination ----------------------------------------------------------------------------
def test_a_problem_copied_from_a_benchmark_is_dropped():
    problems = _train_problems()
    kept, dropped = filters.decontaminate(problems, list(problems), _index(), threshold=0.5)
    assert [d["task_id"] for d in dropped] == [COPIED]
    (record,) = dropped
    assert record["reason"] == "contaminated"
    assert record["benchmark"] == "humaneval-like.jsonl"
    assert record["benchmark_task_id"] == "HumanEvalLike/1"
    assert 0.5 <= record["overlap"] <= 1 and record["shared_ngrams"] > 0
    # The threshold is what decides.
    kept, dropped = filters.decontaminate(problems, list(problems), _index(), threshold=0.99)
    assert dropped == []


def test_a_copied_solution_is_caught_even_under_a_new_statement():
    problems = _train_problems()
    bench = load_problems(BENCH)["HumanEvalLike/1"]
    disguised = dict(problems["leetcode/sum-of-a-range"], task_id="leetcode/disguised")
    disguised["canonical_solution"] = disguised["tests"]["prelude"] + bench["canonical_solution"]
    kept, dropped = filters.decontaminate({"d": disguised}, ["d"], _index(), threshold=0.5)
    assert dropped[0]["field"] == "solution" and dropped[0]["overlap"] == 1.0


@pytest.mark.real_data
@needs_shared
def test_real_humaneval_prompt_restated_is_caught(tmp_path):
    humaneval = prepare(SHARED / "HumanEval.jsonl.gz", "humaneval", None)
    bench = tmp_path / "humaneval.jsonl"
    write_jsonl(bench, humaneval)
    index = filters.load_benchmarks([bench], 13)[0]
    he0 = humaneval[0]
    train = sources.load_leetcode(FIXTURES / "leetcode-train.jsonl")[0]
    copied = dict(train, task_id="leetcode/copied", prompt="Solve this:\n" + he0["prompt"])
    kept, dropped = filters.decontaminate(
        {"leetcode/copied": copied, train["task_id"]: train},
        ["leetcode/copied", train["task_id"]],
        index,
        threshold=0.5,
    )
    assert kept == [train["task_id"]]
    assert dropped[0]["benchmark_task_id"] == he0["task_id"] == "HumanEval/0"


# -- the whole command, on the real executor ----------------------------------------------------
def _source_files(tmp_path: Path) -> list[Path]:
    """The fixtures as three training sources, one problems file each (as the workflow pools)."""
    files = []
    for name, load in [
        ("leetcode-train", sources.load_leetcode),
        ("codecontests-train", sources.load_codecontests),
        ("leetcode-extra", sources.load_leetcode),
    ]:
        files.append(tmp_path / f"{name}.jsonl")
        write_jsonl(files[-1], load(FIXTURES / f"{name}.jsonl"))
    return files


def test_filter_command_pools_sources_and_writes_kept_problems_and_a_report(tmp_path):
    problems = _train_problems()
    srcs = _source_files(tmp_path)
    out, report, executions = (
        tmp_path / "kept.jsonl",
        tmp_path / "report.json",
        tmp_path / "ex.jsonl",
    )
    argv = [
        "--problems",
        *map(str, srcs),
        "--benchmarks",
        str(BENCH),
        "--out",
        str(out),
        "--report",
        str(report),
        "--ngram",
        "13",
        "--threshold",
        "0.5",
        "--backend",
        BACKEND,
        "--workers",
        "2",
        "--executions",
        str(executions),
        "--no-progress",
    ]
    assert filters.main(argv) == 0
    kept = list(load_problems(out))
    assert kept == [t for t in problems if t not in (COPIED, REPEATED, BROKEN)]
    rep = read_json(report)
    assert rep["counts"] == {
        "input": 9,
        "kept": 6,
        "dropped": {"reference_fails": 1, "contaminated": 1, "duplicate": 1},
        "by_source": {
            # leetcode-extra holds the contaminated and the repeated problem
            "leetcode-train": {"input": 4, "kept": 4},
            "codecontests-train": {"input": 3, "kept": 2},
            "leetcode-extra": {"input": 2, "kept": 0},
        },
    }
    by_id = {d["task_id"]: d for d in rep["dropped"]}
    assert by_id[COPIED]["benchmark_task_id"] == "HumanEvalLike/1"
    assert by_id[REPEATED]["duplicate_of"] == "leetcode/count-digits-that-are-even"
    assert by_id[BROKEN]["reason"] == "reference_fails"
    assert by_id[BROKEN]["status"] == "failed" and "wrong output" in by_id[BROKEN]["message"]
    assert rep["config"]["ngram"] == 13 and rep["config"]["threshold"] == 0.5
    assert rep["config"]["execution"]["sandbox"]["backend"] == BACKEND
    assert rep["benchmarks"][0]["problems"] == 2
    assert [p["path"] for p in rep["problems"]] == list(map(str, srcs))
    assert all(len(p["sha256"]) == 64 for p in rep["problems"])
    # Only the survivors of the cheap filters were executed.
    assert len(executions.read_text().splitlines()) == 7


def test_an_id_in_two_sources_is_an_error_naming_both(tmp_path, capsys):
    a, b = tmp_path / "a.jsonl", tmp_path / "b.jsonl"
    one = list(_train_problems().values())[:1]
    write_jsonl(a, one)
    write_jsonl(b, one)
    argv = ["--problems", str(a), str(b), "--out", str(tmp_path / "o.jsonl"),
            "--report", str(tmp_path / "r.json"), "--skip-execution"]  # fmt: skip
    assert filters.main(argv) == 2
    err = capsys.readouterr().err
    assert f"{b}: field 'task_id'" in err and f"is also in {a}" in err
    assert not (tmp_path / "o.jsonl").exists()


def test_no_reference_is_dropped_without_running_anything():
    problems = _train_problems()
    orphan = dict(problems["leetcode/sum-of-a-range"], canonical_solution=None)
    kept, dropped = filters.verify_references({"o": orphan}, ["o"], config=None)
    assert kept == [] and dropped == [{"task_id": "o", "reason": "no_reference"}]


def test_sandbox_faults_stop_the_run(monkeypatch, tmp_path):
    def faulty(problems, sample_paths, out, config, **kwargs):
        rec = {
            "status": "sandbox_error",
            "passed": 0,
            "total": 1,
            "first_failure": {"message": "bwrap: setting up uid map: Permission denied"},
        }
        write_jsonl(out, [{"task_id": t, "sample_id": t, **rec} for t in problems])

    monkeypatch.setattr(filters, "execute_files", faulty)
    src = tmp_path / "train.jsonl"
    write_jsonl(src, list(_train_problems().values())[:2])
    argv = [
        "--problems",
        str(src),
        "--out",
        str(tmp_path / "o.jsonl"),
        "--report",
        str(tmp_path / "r.json"),
        "--backend",
        "process",
    ]
    assert filters.main(argv) == 3
    assert not (tmp_path / "o.jsonl").exists()


def test_everything_dropped_is_an_error_but_the_report_says_why(tmp_path, capsys):
    bench = sources.load_leetcode(FIXTURES / "leetcode-train.jsonl")[:1]
    src, bench_path = tmp_path / "train.jsonl", tmp_path / "bench.jsonl"
    write_jsonl(src, bench)
    write_jsonl(bench_path, bench)
    out, report = tmp_path / "o.jsonl", tmp_path / "r.json"
    argv = [
        "--problems",
        str(src),
        "--benchmarks",
        str(bench_path),
        "--out",
        str(out),
        "--report",
        str(report),
        "--skip-execution",
    ]
    assert filters.main(argv) == 2
    assert "every problem was dropped" in capsys.readouterr().err
    assert not out.exists()
    assert read_json(report)["dropped"][0]["reason"] == "contaminated"
    assert read_json(report)["config"]["execution"] is None


@pytest.mark.parametrize(
    ("flag", "value", "message"),
    [
        ("--threshold", "0", "--threshold must be in"),
        ("--ngram", "0", "--ngram must be at least 1"),
    ],
)
def test_bad_settings_are_errors(tmp_path, capsys, flag, value, message):
    src = tmp_path / "train.jsonl"
    write_jsonl(src, list(_train_problems().values())[:1])
    argv = [
        "--problems",
        str(src),
        "--out",
        str(tmp_path / "o.jsonl"),
        "--report",
        str(tmp_path / "r.json"),
        "--skip-execution",
        flag,
        value,
    ]
    assert filters.main(argv) == 2
    assert message in capsys.readouterr().err


def test_bad_problems_file_names_its_line(tmp_path, capsys):
    src = tmp_path / "train.jsonl"
    src.write_text(json.dumps({"task_id": "x", "prompt": "p"}) + "\n")
    argv = [
        "--problems",
        str(src),
        "--out",
        str(tmp_path / "o.jsonl"),
        "--report",
        str(tmp_path / "r.json"),
        "--skip-execution",
    ]
    assert filters.main(argv) == 2
    assert "train.jsonl:1: field '(record)'" in capsys.readouterr().err


def test_filter_problems_rejects_a_bad_threshold():
    with pytest.raises(InputError, match="threshold"):
        filters.filter_problems({}, _index(), 1.5, None)


def test_problems_with_many_right_answers_stay_out_of_training():
    """'Print any divisor': the statement says so, or two accepted solutions disagree."""
    from codedpo.execution.backends import SandboxConfig  # noqa: PLC0415
    from codedpo.execution.executor import ExecConfig, Limits  # noqa: PLC0415

    def stdio(task_id, statement, code, meta=None):
        return {"task_id": task_id, "prompt": statement, "entry_point": None,
                "canonical_solution": code, "meta": meta or {},
                "tests": {"kind": "stdio",
                          "cases": [{"input": "6\n", "output": "2\n"}]}}  # fmt: skip

    smallest = "n = int(input())\nprint(min(d for d in range(2, n + 1) if n % d == 0))\n"
    largest = "n = int(input())\nprint(n)\n"
    problems = {
        # Div. 1 and Div. 2 twins: the same statement, two accepted solutions that disagree.
        "cf/1_A": stdio("cf/1_A", "Print a divisor of n greater than one.", smallest),
        "cf/2_A": stdio("cf/2_A", "Print a divisor of n greater than one.", largest),
        "cf/3_B": stdio("cf/3_B", "Print a prime factor of n. If there are several, print any "
                                  "of them.", smallest,
                        {"needs_checker": "statement: 'print any'"}),  # fmt: skip
        "cf/4_C": stdio("cf/4_C", "Print the smallest divisor of n greater than one.", smallest),
    }
    config = ExecConfig(sandbox=SandboxConfig(backend=BACKEND), limits=Limits(test_seconds=5.0),
                        workers=1)  # fmt: skip
    kept, dropped = filters.filter_problems(problems, filters.NgramIndex(13), 0.5, config)
    assert [p["task_id"] for p in kept] == ["cf/4_C"]
    why = {d["task_id"]: d for d in dropped}
    assert why["cf/2_A"]["reason"] == "duplicate"
    assert why["cf/1_A"]["reason"] == "needs_checker"
    assert "another accepted solution" in why["cf/1_A"]["evidence"]
    assert why["cf/3_B"] == {"task_id": "cf/3_B", "reason": "needs_checker",
                             "evidence": "statement: 'print any'"}  # fmt: skip
