"""The executor on the real benchmarks (``../shared/benchmarks``), under the bwrap backend.

1. Every canonical solution of HumanEval+ (164, base and plus inputs) and MBPP+ (378) passes, and
   its record counts every input: groups ``base``/``plus`` with totals equal to the number of
   inputs minus the cases the expected-outputs file drops. A case may be dropped only where the
   reference solution itself hits a resource limit (killed, timed out, out of memory); a case
   dropped for any other reason (an exception such as ``TypeError`` on the benchmark's own input,
   an output the codec cannot carry) means our loader or codec disagrees with EvalPlus, and fails.
   The MBPP+ time-limit flakes EvalPlus shows (Mbpp/255, 392, 630) are not excused: the executor
   re-runs timeouts alone, so they must pass.
2. Mutants of every canonical solution fail: the entry point is rebound to return ``None``, an
   off-by-one output (:data:`OFF_BY_ONE`), raise ``ValueError``, or return an object whose
   ``__eq__`` always answers True; a syntax error is appended; on four tasks per dataset the entry
   point loops forever. Exceptions are computed from the problem data, never listed by id: the
   ``None`` or off-by-one mutant is excused on a task exactly where EvalPlus's comparison
   (:func:`~codedpo.execution.compare.outputs_match` with the task's ``check`` and ``atol``)
   accepts the mutated reference output on every kept case: a ``check == "any"`` task (Mbpp/164,
   which MBPP+ v0.2.0 does not contain), ``not_none`` tasks whose expected outputs are all
   ``None``/``False``, tasks whose outputs are all ``None``, or where ``x + 1 == x`` throughout
   (huge floats, infinities). On the current data nothing is excused: the ``not_none`` tasks
   (Mbpp/737, 787, 794) all have cases whose reference output is not None. The ``__eq__``,
   ``raise``, syntax-error and infinite-loop mutants must fail everywhere (EvalPlus passes the
   ``__eq__`` one on 163/164 HumanEval+ and 368/378 MBPP+ tasks).
3. The original HumanEval (assertion tests) and MBPP's test split (ids 11-510): canonical solutions
   pass, and the ``__eq__`` mutant fails everywhere: no check runs in the untrusted process
   (``in_process_checks == 0``); HumanEval's checks that cannot be split run in the judge.
4. Where EvalPlus is installed (``.[bench]``), the MBPP+ inputs we rebuild are EvalPlus's own.

One ``execute_files`` call per dataset runs the canonical solutions and all the mutants
(module-scoped fixtures, two workers). About 4 minutes on 2 idle cores (HumanEval+ 1.5, MBPP+
2.5; up to 7.5 when the machine is shared); skipped without bwrap or the shared data.
"""

from __future__ import annotations

import contextlib
import json
import shutil
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest

from codedpo.execution.backends import SandboxConfig
from codedpo.execution.compare import outputs_match
from codedpo.execution.executor import ExecConfig, execute_files
from codedpo.execution.sandbox import codec
from codedpo.io import write_jsonl
from codedpo.problems.benchmark_formats import load_evalplus, load_humaneval, load_mbpp
from codedpo.problems.load import load_problems

SHARED = Path(__file__).resolve().parents[2] / "shared" / "benchmarks"
pytestmark = [
    pytest.mark.real_data,
    pytest.mark.skipif(not SHARED.exists(), reason="../shared/benchmarks not present"),
    pytest.mark.skipif(shutil.which("bwrap") is None, reason="bubblewrap (bwrap) not installed"),
]
# The fast check, as the workflow's evaluation runs it: a mutant stops at its first failing range
# of tests (its verdict is that test's), a passing canonical solution still runs every test.
CONFIG = ExecConfig(SandboxConfig(backend="bwrap"), workers=2, fast_check=True)
LOOP_TASKS = 4  # infinite-loop mutants per dataset: each costs a time limit, twice

# The off-by-one rule, shared by the mutant (inside the sandbox) and the exception check (here).
OFF_BY_ONE = """
def _codedpo_off_by_one(r):
    if type(r) is bool:
        return not r
    if type(r) is int or type(r) is float:
        return r + 1
    if type(r) is str:
        return r + "x"
    if type(r) is list:
        return r + [None]
    if type(r) is tuple:
        return r + (None,)
    return None
"""
_ns: dict = {}
exec(OFF_BY_ONE, _ns)
off_by_one = _ns["_codedpo_off_by_one"]

# Mutant bodies for the rebound entry point. Recursive canonical solutions call themselves by
# name: the depth guard sends those inner calls to the original, so the mutant's output is exactly
# the mutation of the reference output.
_WRAPPER = """

_codedpo_orig = {entry}
_codedpo_depth = [0]
{helpers}

def {entry}(*args, **kwargs):
    if _codedpo_depth[0]:
        return _codedpo_orig(*args, **kwargs)
    _codedpo_depth[0] += 1
    try:
        {body}
    finally:
        _codedpo_depth[0] -= 1
"""
_ALWAYS_EQUAL = """
class _CodedpoAlwaysEqual:
    def __eq__(self, other):
        return True

    def __ne__(self, other):
        return False

    __hash__ = object.__hash__
"""
MUTANTS = {
    "none": ("", "return None"),
    "off_by_one": (OFF_BY_ONE, "return _codedpo_off_by_one(_codedpo_orig(*args, **kwargs))"),
    "raise": ("", "raise ValueError('mutant')"),
    "always_equal": (_ALWAYS_EQUAL, "return _CodedpoAlwaysEqual()"),
    "loop": ("", "while True:\n            pass"),
}
# What each mutant's record must say (``none``/``off_by_one``: a wrong answer).
MUTANT_STATUS = {"none": "failed", "off_by_one": "failed", "raise": "runtime_error",
                 "always_equal": "failed", "loop": "timeout", "syntax": "syntax_error"}  # fmt: skip


def mutant(code: str, entry: str, kind: str) -> str:
    if kind == "syntax":
        return code + "\n\n_codedpo_unclosed = (\n"
    helpers, body = MUTANTS[kind]
    return code + _WRAPPER.format(entry=entry, helpers=helpers, body=body)


def loop_tasks(task_ids: list[str]) -> list[str]:
    """A deterministic spread of ``LOOP_TASKS`` tasks."""
    ids = sorted(task_ids)
    step = max(1, len(ids) // LOOP_TASKS)
    return ids[::step][:LOOP_TASKS]


def run_samples(tmp: Path, problems_list: list[dict], samples: list[dict]) -> dict:
    """Write problems and samples, execute them in one call; records by sample id (a cache of
    expected outputs already in ``tmp`` is used when it matches)."""
    write_jsonl(tmp / "problems.jsonl", problems_list)
    problems = load_problems(tmp / "problems.jsonl")
    write_jsonl(tmp / "samples.jsonl", samples)
    start = time.monotonic()
    execute_files(problems, [tmp / "samples.jsonl"], tmp / "executions.jsonl", CONFIG,
                  expected_path=tmp / "expected.json", progress=False)  # fmt: skip
    seconds = time.monotonic() - start
    with open(tmp / "executions.jsonl", encoding="utf-8") as fh:
        records = {r["sample_id"]: r for r in map(json.loads, fh)}
    expected = {}
    if (tmp / "expected.json").exists():
        with open(tmp / "expected.json", encoding="utf-8") as fh:
            expected = json.load(fh)["tasks"]
    print(f"\n{tmp.name}: {len(samples)} samples in {seconds:.0f} s")
    return {"problems": problems, "records": records, "expected": expected, "seconds": seconds}


def _plus_run(tmp: Path, file_name: str, dataset: str, plus_expected) -> dict:
    plus_expected(f"{dataset}_plus", tmp / "expected.json")
    problems = load_evalplus(SHARED / file_name, dataset)
    loops = set(loop_tasks([p["task_id"] for p in problems]))
    samples = []
    for p in problems:
        tid, code, entry = p["task_id"], p["canonical_solution"], p["entry_point"]
        samples.append({"task_id": tid, "sample_id": f"{tid}/canonical", "solution": code})
        for kind in ("none", "off_by_one", "raise", "always_equal", "syntax"):
            samples.append({"task_id": tid, "sample_id": f"{tid}/{kind}",
                            "solution": mutant(code, entry, kind)})  # fmt: skip
        if tid in loops:
            samples.append({"task_id": tid, "sample_id": f"{tid}/loop",
                            "solution": mutant(code, entry, "loop")})  # fmt: skip
    run = run_samples(tmp, problems, samples)
    run["loops"] = loops
    return run


def _original_run(tmp: Path, problems: list[dict]) -> dict:
    samples = []
    for p in problems:
        tid, code = p["task_id"], p["canonical_solution"]
        samples.append({"task_id": tid, "sample_id": f"{tid}/canonical", "solution": code})
        samples.append({"task_id": tid, "sample_id": f"{tid}/always_equal",
                        "solution": mutant(code, p["entry_point"], "always_equal")})  # fmt: skip
    return run_samples(tmp, problems, samples)


@contextlib.contextmanager
def _scratch(tmp_path_factory, name: str) -> Iterator[Path]:
    """A work directory, removed afterwards (HumanEval+'s expected outputs take 240 MB)."""
    tmp = tmp_path_factory.mktemp(name)
    try:
        yield tmp
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


@pytest.fixture(scope="module")
def humaneval_plus(tmp_path_factory, plus_expected):
    with _scratch(tmp_path_factory, "humaneval_plus") as tmp:
        yield _plus_run(tmp, "HumanEvalPlus.jsonl.gz", "humaneval", plus_expected)


@pytest.fixture(scope="module")
def mbpp_plus(tmp_path_factory, plus_expected):
    with _scratch(tmp_path_factory, "mbpp_plus") as tmp:
        yield _plus_run(tmp, "MbppPlus-v0.2.0.jsonl.gz", "mbpp", plus_expected)


@pytest.fixture(scope="module")
def humaneval(tmp_path_factory):
    with _scratch(tmp_path_factory, "humaneval") as tmp:
        yield _original_run(tmp, load_humaneval(SHARED / "HumanEval.jsonl.gz"))


@pytest.fixture(scope="module")
def mbpp(tmp_path_factory):
    with _scratch(tmp_path_factory, "mbpp") as tmp:
        yield _original_run(tmp, load_mbpp(SHARED / "mbpp.jsonl.gz"))


# -- 1. canonical solutions of HumanEval+ and MBPP+ ----------------------------------------------
# Why a reference solution may legitimately lose a case: it exceeded a resource limit.
RESOURCE_REASONS = ("no result (killed or timed out)", "timeout", "MemoryError")


def _kept_cases(problem: dict, expected: dict) -> list[tuple[int, dict]]:
    bad = {b["index"] for b in expected.get("bad_cases") or []}
    return [(i, c) for i, c in enumerate(problem["tests"]["cases"]) if i not in bad]


@pytest.mark.parametrize("fixture", ["humaneval_plus", "mbpp_plus"])
def test_canonical_solutions_pass(request, fixture):
    run = request.getfixturevalue(fixture)
    problems, records, expected = run["problems"], run["records"], run["expected"]
    assert len(problems) == (164 if fixture == "humaneval_plus" else 378)
    failures, miscounted, dropped, unjustified = [], [], {}, []
    for tid, problem in problems.items():
        rec = records[f"{tid}/canonical"]
        exp = expected[tid]
        if rec["status"] != "passed" or rec["passed"] != rec["total"]:
            failures.append(f"{tid}: {rec['status']} {rec['passed']}/{rec['total']} "
                            f"{rec['first_failure']}")  # fmt: skip
        want = Counter(c.get("group", "base") for _, c in _kept_cases(problem, exp))
        got = {g: v["total"] for g, v in rec["groups"].items()}
        if got != dict(want) or rec["total"] != sum(want.values()) or not want.get("base"):
            miscounted.append(f"{tid}: groups {got}, expected {dict(want)}")
        for b in exp.get("bad_cases") or []:
            dropped.setdefault(tid, []).append(b["index"])
            if not b["why"].startswith(RESOURCE_REASONS):
                unjustified.append(f"{tid} case {b['index']}: {b['why']}")
    if fixture == "mbpp_plus":  # Mbpp/793 has no plus inputs (shared README)
        assert "plus" not in records["Mbpp/793/canonical"]["groups"]
    print(f"{fixture}: dropped reference cases: {dropped or 'none'}")
    assert not failures, "canonical solutions that do not pass:\n" + "\n".join(failures)
    assert not miscounted, "records that miscount the inputs:\n" + "\n".join(miscounted)
    assert not unjustified, (
        f"{len(unjustified)} cases dropped because the reference solution fails on them for a "
        "reason other than a resource limit (loader or codec bug):\n" + "\n".join(unjustified[:50])
    )


# -- 2. mutants ----------------------------------------------------------------------------------
def _mutated_outputs(kind: str, exp, check: str) -> list:
    """What the ``none``/``off_by_one`` mutant returns where the reference returned ``exp``.

    For ``not_none`` checks the reference's raw output may not be what the expected file holds
    (a ``re.Match`` stands there as ``True``, or is missing): every output the mutant could have
    returned is tried, and the case is indistinguishable if any of them is accepted.
    """
    if kind == "none":
        return [None]
    if check == "not_none" and exp is not None:
        return [off_by_one(exp), None]
    return [off_by_one(exp)]


def indistinguishable(problem: dict, expected: dict, kind: str) -> bool:
    """Does EvalPlus's comparison accept the ``none``/``off_by_one`` mutation on every case?"""
    if kind not in ("none", "off_by_one"):
        return False
    tests = problem["tests"]
    check, atol = tests.get("check", "exact"), float(tests.get("atol") or 0.0)
    kept = _kept_cases(problem, expected)
    if not kept:
        return False  # a task without tests is a failure of its own (test 1), never excused
    for i, case in kept:
        exp = codec.decode(expected["outputs"][i])
        args = codec.decode(case["input"])
        if not any(outputs_match(out, exp, args=args, atol=atol, check=check)
                   for out in _mutated_outputs(kind, exp, check)):  # fmt: skip
            return False
    return True


@pytest.mark.parametrize("fixture", ["humaneval_plus", "mbpp_plus"])
def test_mutants_fail(request, fixture):
    run = request.getfixturevalue(fixture)
    problems, records, expected = run["problems"], run["records"], run["expected"]
    kinds = ["none", "off_by_one", "raise", "always_equal", "syntax", "loop"]
    wrong, excused = [], []
    checked = Counter()
    for tid, problem in problems.items():
        for kind in kinds:
            if kind == "loop" and tid not in run["loops"]:
                continue
            rec = records[f"{tid}/{kind}"]
            if indistinguishable(problem, expected[tid], kind):
                excused.append(f"{tid}/{kind} (check {problem['tests'].get('check')}): "
                               f"{rec['status']}")  # fmt: skip
                continue
            checked[kind] += 1
            if rec["status"] != MUTANT_STATUS[kind]:
                wrong.append(f"{tid}/{kind}: {rec['status']} {rec['passed']}/{rec['total']} "
                             f"{rec['first_failure']}")  # fmt: skip
    print(f"{fixture}: mutants checked {dict(checked)}; excused: {excused}")
    assert checked["always_equal"] == len(problems)
    assert checked["loop"] == LOOP_TASKS
    assert not wrong, "mutants with the wrong verdict:\n" + "\n".join(wrong)


# -- 3. the original HumanEval and MBPP (assertion tests) ----------------------------------------
@pytest.mark.parametrize("fixture", ["humaneval", "mbpp"])
def test_original_canonical_pass_and_always_equal_fails(request, fixture):
    run = request.getfixturevalue(fixture)
    problems, records = run["problems"], run["records"]
    assert len(problems) == (164 if fixture == "humaneval" else 500)
    failures, fooled, judged = [], [], []
    for tid in problems:
        rec = records[f"{tid}/canonical"]
        if rec["status"] != "passed" or rec["passed"] != rec["total"]:
            failures.append(f"{tid}: {rec['status']} {rec['passed']}/{rec['total']} "
                            f"{rec['first_failure']}")  # fmt: skip
        assert rec["in_process_checks"] == 0  # nothing is checked in the untrusted process
        if rec["judged_tests"]:
            judged.append(tid)  # the problem's own test code ran in the judge
        if records[f"{tid}/always_equal"]["status"] == "passed":
            fooled.append(tid)
    print(f"{fixture}: {len(judged)} tasks judged by their own test code: {judged}")
    assert not failures, "canonical solutions that do not pass:\n" + "\n".join(failures)
    # The object equal to everything fails everywhere, the judged tasks included (it passed 6
    # HumanEval tasks when their check ran in the solution's process).
    assert not fooled, f"the __eq__ mutant passes: {fooled}"


# -- the MBPP+ loader against EvalPlus ------------------------------------------------------------
def _same(a, b) -> bool:
    """Equal values of the same types all the way down."""
    if type(a) is not type(b):
        return False
    if isinstance(a, list | tuple):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)
    return a == b or (a != a and b != b)  # NaN


def test_mbpp_plus_inputs_match_evalplus():
    """Our rebuilt MBPP+ inputs are EvalPlus's own (``mbpp_deserialize_inputs``), types included.

    EvalPlus is an optional extra (``.[bench]``); without it this check is skipped.
    """
    evalplus_mbpp = pytest.importorskip("evalplus.data.mbpp")
    import gzip

    ours = {p["task_id"]: p for p in load_evalplus(SHARED / "MbppPlus-v0.2.0.jsonl.gz", "mbpp")}
    differ = {}
    with gzip.open(SHARED / "MbppPlus-v0.2.0.jsonl.gz", "rt", encoding="utf-8") as fh:
        for line in fh:
            rec = json.loads(line)
            tid = rec["task_id"]
            theirs = [
                list(inp)
                for key in ("base_input", "plus_input")
                for inp in evalplus_mbpp.mbpp_deserialize_inputs(tid, rec[key] or [])
            ]
            mine = [codec.decode(c["input"]) for c in ours[tid]["tests"]["cases"]]
            bad = [i for i, (a, b) in enumerate(zip(mine, theirs, strict=True)) if not _same(a, b)]
            if bad or len(mine) != len(theirs):
                differ[tid] = f"{len(bad)}/{len(theirs)} inputs differ, e.g. ours " + (
                    f"{mine[bad[0]]!r:.80} vs EvalPlus {theirs[bad[0]]!r:.80}" if bad else ""
                )
    assert not differ, f"MBPP+ inputs rebuilt unlike EvalPlus: {differ}"
