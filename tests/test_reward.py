"""The executor as an online reward (codedpo.execution.reward), on the real bubblewrap sandbox.

One pool serves the module (two workers, small limits so that an infinite loop costs half a
second). The batch test uses a real benchmark problem (HumanEval+'s HumanEval/55 from
../shared/benchmarks), answered as a chat model answers (code fenced in chatter); the others use
the demo problems the project ships, whose expected rewards are computed here by running the
(trusted, our own) solutions in this process.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from codedpo.execution.backends import SandboxConfig
from codedpo.execution.plan import Limits
from codedpo.execution.reward import (
    KINDS,
    ExecutionReward,
    completion_text,
    default_config,
    execution_config,
    reward_of,
)
from codedpo.execution.running import ExecConfig
from codedpo.execution.sandbox import codec
from codedpo.io import InputError
from codedpo.problems.benchmark_formats import load_evalplus
from codedpo.problems.load import load_problems, validate_problem

ROOT = Path(__file__).resolve().parents[1]
DEMO = ROOT / "src" / "codedpo" / "data" / "demo" / "problems.jsonl"
HUMANEVAL_PLUS = ROOT.parent / "shared" / "benchmarks" / "HumanEvalPlus.jsonl.gz"
DEMO_TASKS = ("demo/sum_to_n", "demo/factorial", "demo/divisors")
# Small limits: a loop stops after half a second (a reference-timed test's floor) or one second
# (a test without a reference time: the demo's).
LIMITS = Limits(min_test_seconds=0.5, test_seconds=1.0, sample_seconds=2.0)
CONFIG = ExecConfig(SandboxConfig(backend="bwrap"), limits=LIMITS, workers=2)
# A problem of ours whose own prelude fails: whatever the answer, the fault is the problem's.
BROKEN = {"task_id": "ours/broken_prelude", "prompt": "Add two numbers.", "entry_point": "add",
          "source": "test", "split": "train",
          "tests": {"kind": "call", "prelude": "raise RuntimeError('the problem is broken')\n",
                    "cases": [{"input": [1, 2], "output": 3}]}}  # fmt: skip

# A problem of ours whose test code loops: it cannot be split, so the judge runs it (judged mode).
JUDGED = {"task_id": "ours/judged_double", "prompt": "Double a number.", "entry_point": "double",
          "source": "test", "split": "train",
          "tests": {"kind": "assert", "asserts": ["check(candidate)"],
                    "helpers": "def check(candidate):\n    for i in range(5):\n"
                               "        assert candidate(i) == 2 * i\n"}}  # fmt: skip

pytestmark = pytest.mark.skipif(shutil.which("bwrap") is None, reason="bubblewrap not installed")


def chat(code: str) -> str:
    """A response as a chat model writes one: prose, a fenced block, more prose."""
    return f"Here is a solution.\n\n```python\n{code}```\n\nIt runs in linear time."


@pytest.fixture(scope="module")
def problems() -> dict[str, dict]:
    found = {t: p for t, p in load_problems(DEMO).items() if t in DEMO_TASKS}
    for ours in (BROKEN, JUDGED):
        validate_problem(ours, ours["task_id"])
        found[ours["task_id"]] = ours
    if HUMANEVAL_PLUS.exists():
        he = load_evalplus(HUMANEVAL_PLUS, "humaneval")
        found.update({p["task_id"]: p for p in he if p["task_id"] == "HumanEval/55"})
    return found


@pytest.fixture(scope="module")
def reward(problems):
    with ExecutionReward(problems, CONFIG) as r:
        yield r


def in_process(problem: dict, code: str) -> tuple[int, int]:
    """Tests passed and total of our own (trusted) demo code, run here: the oracle."""
    ns: dict = {}
    exec(code, ns)
    cases = problem["tests"]["cases"]
    fn = ns[problem["entry_point"]]
    return sum(fn(*codec.decode(c["input"])) == codec.decode(c["output"]) for c in cases), len(
        cases
    )


# -- a real problem: correct, wrong, hostile and slow answers in one batch ----------------------
FIB = "def fib(n: int):\n    a, b = 0, 1\n    for _ in range(n):\n        a, b = b, a + b\n"
CORRECT = FIB + "    return a\n"
WRONG = FIB + "    return a if n <= 10 else 0\n"  # right up to 10 only
# Hostile: reads a file the sandbox hides, yet answers right (it passes every test).
READS_HIDDEN = ("def fib(n: int):\n    try:\n        open('/etc/shadow').read()\n"
                "    except OSError:\n        pass\n    a, b = 0, 1\n    for _ in range(n):\n"
                "        a, b = b, a + b\n    return a\n")  # fmt: skip
# Hostile: reaches for the network, and answers wrong.
CONNECTS = ("import socket\n\ndef fib(n: int):\n    try:\n"
            "        socket.create_connection(('127.0.0.1', 80), timeout=0.2)\n"
            "    except OSError:\n        pass\n    return None\n")  # fmt: skip
SLOW = "def fib(n: int):\n    while True:\n        pass\n"


@pytest.mark.real_data
@pytest.mark.skipif(not HUMANEVAL_PLUS.exists(), reason="../shared/benchmarks not present")
def test_a_real_problems_batch_gets_exact_rewards_and_hack_classes(reward, problems):
    task = "HumanEval/55"
    cases = problems[task]["tests"]["cases"]
    total = len(cases)
    small = sum(codec.decode(c["input"])[0] <= 10 for c in cases)  # the cases WRONG gets right
    assert 0 < small < total
    answers = [CORRECT, WRONG, READS_HIDDEN, CONNECTS, SLOW]
    results = reward.score([(task, chat(code)) for code in answers])

    assert [r.code for r in results] == answers  # the fenced code, without the chatter
    assert [r.status for r in results] == ["passed", "failed", "passed", "failed", "timeout"]
    assert [r.passed for r in results] == [total, small, total, 0, 0]
    assert {r.total for r in results} == {total}
    assert [r.hacks for r in results] == [(), (), ("read_hidden",), ("network",), ()]
    # The fields are what the tests said; the rewards put a hack at the bottom of its kind.
    assert [r.rule for r in results] == [1.0, -0.3, 1.0, -0.3, -0.6]
    expected = {
        "pass_all": [1.0, 0.0, 0.0, 0.0, 0.0],
        "fraction": [1.0, small / total, 0.0, 0.0, 0.0],
        "rule": [1.0, -0.3, -1.0, -1.0, -0.6],
    }
    for kind in KINDS:
        assert [r.value(kind) for r in results] == expected[kind]
        assert [r.value(kind, hack_reward=-5.0) for r in results][2:4] == [-5.0, -5.0]
    # The same through TRL's signature, conversational completions, without running again.
    executed = reward.executed
    completions = [[{"role": "assistant", "content": chat(code)}] for code in answers]
    for kind in KINDS:
        f = reward.reward_function(kind)
        got = f(prompts=["p"] * 5, completions=completions, task_id=[task] * 5, trainer_state=None)
        assert got == expected[kind]
    assert reward.executed == executed
    assert results[4].record["first_failure"]["status"] == "timeout"
    assert results[0].record["task_id"] == task and results[0].record["runtime"] == "stdlib"


# -- the demo problems: order, the cache, TRL's signature ---------------------------------------
def demo_answers(problems: dict) -> list[tuple[str, str, str]]:
    """(task, code, chat response) for each demo problem's reference and its buggy variant."""
    out = []
    for task in DEMO_TASKS:
        problem = problems[task]
        for code in (problem["canonical_solution"], problem["meta"]["buggy_solution"]):
            out.append((task, code, chat(code)))
    return out


def test_batch_order_is_kept_and_each_program_runs_once(reward, problems):
    answers = demo_answers(problems)
    # Problems mixed, each answer twice, the second time with other chatter around the same code.
    items = [(t, resp) for t, _, resp in answers] + [
        (t, f"Sure!\n```python\n{code}```") for t, code, _ in reversed(answers)
    ]
    before = reward.executed
    results = reward.score(items)
    assert reward.executed - before == len(answers)  # each (task, code) once
    assert [r.task_id for r in results] == [t for t, _ in items]
    for r, (task, _) in zip(results, items, strict=True):
        passed, total = in_process(problems[task], r.code)
        assert (r.passed, r.total) == (passed, total)
        assert r.fraction == passed / total
        assert r.pass_all == float(passed == total)
        assert r.rule == (1.0 if passed == total else -0.3)
        assert r.status == ("passed" if passed == total else "failed")
    assert any(r.pass_all == 0.0 for r in results) and any(r.pass_all == 1.0 for r in results)
    # Another call with the same programs (a second reward function on the same batch).
    again = reward.score(list(reversed(items)))
    assert reward.executed - before == len(answers)
    assert [r.status for r in again] == [r.status for r in reversed(results)]


def test_an_answer_in_words_alone_is_no_code_and_gets_the_lowest_rule_reward(reward, problems):
    task = sorted(t for t in problems if t.startswith("demo/"))[0]
    prose, broken = "I am sorry, I cannot solve this one.", "def f(x) return x"
    words, typo = reward.score([(task, prose), (task, broken)])
    assert (words.status, words.code, words.passed) == ("no_code", "", 0)
    assert (words.pass_all, words.fraction, words.rule) == (0.0, 0.0, -1.0)
    assert words.total == typo.total == len(problems[task]["tests"]["cases"])
    assert typo.status == "syntax_error" and typo.rule == -1.0


def test_trl_signature_with_string_and_conversational_completions(reward, problems):
    answers = demo_answers(problems)
    tasks = [t for t, _, _ in answers]
    strings = [resp for _, _, resp in answers]
    conversations = [[{"role": "user", "content": "ignored"}, {"role": "assistant", "content": s}]
                     for s in strings]  # fmt: skip
    scored = reward.score(zip(tasks, strings, strict=True))
    truth = [reward_of(t, "", {"status": r.status, "passed": r.passed, "total": r.total})
             for t, r in zip(tasks, scored, strict=True)]  # fmt: skip
    for kind in KINDS:
        f = reward.reward_function(kind)
        assert f.__name__ == f"{kind}_reward"
        want = [t.value(kind) for t in truth]
        assert f(prompts=[""] * len(tasks), completions=strings, task_id=tasks) == want
        assert f([""] * len(tasks), conversations, task_id=tasks, completion_ids=None) == want
    g = reward.reward_function("pass_all", task_column="problem")
    assert g(prompts=None, completions=strings[:1], problem=tasks[:1]) == [1.0]
    with pytest.raises(InputError, match="no column 'problem'"):
        g(prompts=None, completions=strings[:1], task_id=tasks[:1])
    with pytest.raises(InputError, match="2 task ids for 1 completions"):
        g(prompts=None, completions=strings[:1], problem=tasks[:2])
    with pytest.raises(ValueError, match="unknown reward kind"):
        reward.reward_function("accuracy")
    assert completion_text([{"role": "assistant", "content": [{"type": "text", "text": "x"}]}]) \
        == "x"  # fmt: skip


def test_unknown_task_is_an_error_naming_it(reward):
    with pytest.raises(InputError, match="batch item 1: unknown task 'demo/nope'"):
        reward.score([("demo/sum_to_n", "x"), ("demo/nope", "y")])


def test_the_problems_own_fault_has_no_reward(reward):
    r = reward.score([(BROKEN["task_id"], chat("def add(a, b):\n    return a + b\n"))])[0]
    assert r.status == "problem_error"
    assert (r.pass_all, r.fraction, r.rule) == (None, None, None)
    f = reward.reward_function("rule")
    assert f(prompts=[""], completions=[chat("def add(a, b):\n    return a + b\n")],
             task_id=[BROKEN["task_id"]]) == [None]  # fmt: skip


def test_warm_sandboxes_serve_call_after_call(reward):
    """The judge and the solution's sandbox stay up between calls: no call after the first finds
    a dead sandbox (a second attempt), and the processes are the same ones."""
    pids = None
    for call in range(3):
        answers = [f"def double(x):\n    return x * 2 + {call} - {call} + {k} - {k}\n"
                   for k in range(2)]  # fmt: skip
        results = reward.score([(JUDGED["task_id"], chat(a)) for a in answers])
        assert [(r.status, r.record["attempts"]) for r in results] == [("passed", 1)] * 2
        assert pids is None or reward.sandbox_pids(descendants=False) == pids
        pids = reward.sandbox_pids(descendants=False)


def test_scores_from_several_threads_at_once(reward, problems):
    """Each thread's batch holds programs of its own: the results do not mix."""
    base = problems["demo/sum_to_n"]["canonical_solution"]

    def batch(k: int) -> list:
        codes = [base.replace("n + 1", f"n + 1 + {k} - {k} + {j} - {j}") for j in range(3)]
        return [r.status for r in reward.score([("demo/sum_to_n", chat(c)) for c in codes])]

    before = reward.executed
    with ThreadPoolExecutor(4) as pool:
        statuses = list(pool.map(batch, range(4)))
    assert statuses == [["passed"] * 3] * 4
    assert reward.executed - before == 12


# -- fork, close, a killed trainer --------------------------------------------------------------
def test_a_forked_child_uses_its_own_pool_and_leaves_the_parents(reward, problems):
    reward.score([("demo/factorial", chat(problems["demo/factorial"]["canonical_solution"]))])
    parent_pids = reward.sandbox_pids(descendants=False)
    assert parent_pids
    code = problems["demo/factorial"]["canonical_solution"].replace("result = 1", "result = 2 - 1")
    pid = os.fork()
    if pid == 0:  # the child: never returns into pytest
        status = 3
        signal.alarm(120)  # a child that hangs on its parent's pool dies instead of hanging
        try:
            before = reward.executed
            r = reward.score([("demo/factorial", chat(code))])[0]
            own = reward.sandbox_pids()
            ok = r.status == "passed" and reward.executed == before + 1
            status = 0 if ok and own and not set(own) & set(parent_pids) else 1
            reward.close()
        finally:
            os._exit(status)
    _, wait_status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(wait_status) == 0
    # The parent's sandboxes are the same processes, and they still work.
    assert reward.sandbox_pids(descendants=False) == parent_pids
    before = reward.executed
    assert reward.score([("demo/factorial", chat(code))])[0].status == "passed"
    assert reward.executed == before + 1


def test_default_config():
    config = default_config(3)
    assert (config.sandbox.backend, config.workers, config.fast_check) == ("bwrap", 3, False)
    assert config.sandbox.runtime is None or Path(config.sandbox.runtime).is_absolute()


def test_the_workflows_execution_settings_make_the_config(tmp_path):
    """What `codedpo train --execution` gets from the workflow (codedpo.workflow.online): the
    config's execution keys; a key left out keeps the default; an unknown one is an error."""
    settings = {"backend": "process", "memory_mb": 512, "test_seconds": 3, "min_test_seconds": 0.5,
                "time_factor": 2, "sample_seconds": 30, "fast_check": True, "stack_mb": 64,
                "runtime": "stdlib"}  # fmt: skip
    config = execution_config(settings, 4)
    assert (config.sandbox.backend, config.sandbox.stack_mb, config.sandbox.runtime) == (
        "process", 64, None)  # fmt: skip
    limits = config.limits
    assert (limits.memory_mb, limits.test_seconds, limits.min_test_seconds) == (512, 3.0, 0.5)
    assert (limits.time_factor, limits.sample_seconds) == (2.0, 30.0)
    assert isinstance(limits.memory_mb, int) and isinstance(limits.test_seconds, float)
    assert (config.fast_check, config.workers) == (True, 4)
    default = default_config(4)
    assert execution_config({}, 4) == default
    assert execution_config({"backend": "auto"}, 4).sandbox.backend == default.sandbox.backend
    with pytest.raises(InputError, match="unknown key 'workers'"):
        execution_config({"workers": 2})
    with pytest.raises(InputError, match="no-such-dir"):
        execution_config({"runtime": str(tmp_path / "no-such-dir")})


TRAINER = """
import json, sys, time
from codedpo.execution.backends import SandboxConfig
from codedpo.execution.reward import ExecutionReward
from codedpo.execution.running import ExecConfig
reward = ExecutionReward(sys.argv[1], ExecConfig(SandboxConfig(backend="bwrap"), workers=2))
r = reward.score([("demo/sum_to_n", "def sum_to_n(n):\\n    return n * (n + 1) // 2\\n")])
print(json.dumps({"status": r[0].status, "pids": reward.sandbox_pids(),
                  "boxes": reward.sandbox_pids(descendants=False)}), flush=True)
time.sleep(600)
"""


def _start_time(pid: int) -> str | None:
    """The process's start time (field 22 of its stat), or None once it is gone or a zombie."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = stat.rsplit(")", 1)[1].split()
    return None if fields[0] in ("Z", "X") else fields[19]


def running(pids: list[int]) -> dict[int, str]:
    """The pids that are running processes, with their start times (a pid reused later is a
    different process)."""
    return {pid: t for pid in pids if (t := _start_time(pid)) is not None}


def outliving(started: dict[int, str | None]) -> list[int]:
    """The processes of ``started`` (pid: start time) still running after a bounded wait (a
    worker ends a moment after its bwrap; the bound is generous, not a claim about speed)."""
    deadline = time.monotonic() + 60
    alive = dict(started)
    while alive and time.monotonic() < deadline:
        alive = {p: t for p, t in alive.items() if _start_time(p) == t}
        if alive:
            time.sleep(0.05)
    return sorted(alive)


def test_a_killed_trainer_takes_its_sandboxes_with_it():
    proc = subprocess.Popen([sys.executable, "-c", TRAINER, str(DEMO)], stdout=subprocess.PIPE,
                            text=True, cwd=ROOT)  # fmt: skip
    try:
        report = json.loads(proc.stdout.readline())
        assert report["status"] == "passed"
        started = running(report["pids"])
        assert set(report["boxes"]) < set(started)  # each bwrap, and the worker under it
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    alive = outliving(started)
    assert not alive, f"sandbox processes outlived the killed trainer: {alive}"


def test_close_ends_the_sandboxes_and_is_idempotent_and_final(problems):
    r = ExecutionReward({t: problems[t] for t in DEMO_TASKS}, CONFIG)
    r.score([("demo/sum_to_n", chat(problems["demo/sum_to_n"]["canonical_solution"]))])
    started = running(r.sandbox_pids())
    assert set(r.sandbox_pids(descendants=False)) < set(started)
    r.close()
    assert not outliving(started), "sandbox processes outlived close()"
    r.close()
    with pytest.raises(RuntimeError, match="closed"):
        r.score([("demo/sum_to_n", "x")])
