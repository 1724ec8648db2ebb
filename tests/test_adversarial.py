"""The adversarial corpus (tests/adversarial/*.py) against the real bubblewrap sandbox.

Each attack is written so that it *passes* only if the attack worked (it read the host's secret,
wrote outside its scratch space, reached the network, ...). Every one must end with a
non-passing verdict, leave the host untouched, and leave the executor working: a correct sample
runs after each attack, in the same warm sandbox.
"""

from __future__ import annotations

import json
import os
import random
import shutil
import socket
import threading
import time
from pathlib import Path

import pytest

from codedpo.execution.backends import SandboxConfig
from codedpo.execution.executor import ExecConfig, Limits, execute_files
from codedpo.problems.load import load_problems

CORPUS = Path(__file__).parent / "adversarial"
ATTACKS = sorted(p.stem for p in CORPUS.glob("*.py"))
GOOD = "def add(a, b):\n    return a + b\n"
# Run after every attack in the same warm sandbox: it passes only if the attack left nothing
# behind (no IPC object, no file in its scratch directory, no process but the worker and it).
PROBE = """import os


def _clean():
    for kind in ("shm", "sem", "msg"):
        with open(f"/proc/sysvipc/{kind}") as fh:
            if len(fh.read().splitlines()) > 1:
                return False
    if set(os.listdir(".")) - {".stdout", ".stderr"}:
        return False
    pids = {int(p) for p in os.listdir("/proc") if p.isdigit()}
    return pids <= {1, os.getpid()}


def add(a, b):
    return a + b if _clean() else -1
"""
WHOAMI = "import os\n\n\ndef add(a, b):\n    return os.getuid()\n"
# A uid range of this run's own (as root each sandbox drops to base + its bwrap's pid), so that
# survivors are told apart from other executors running on the machine at the same time.
PID_MAX = int(Path("/proc/sys/kernel/pid_max").read_text())
UID = 3_000_000_000 + random.SystemRandom().randrange(100) * PID_MAX

pytestmark = pytest.mark.skipif(shutil.which("bwrap") is None, reason="bubblewrap not installed")


def expected_statuses(name: str) -> set[str]:
    first = (CORPUS / f"{name}.py").read_text().splitlines()[0]
    assert first.startswith("# expect:"), name
    return set(first.split(":", 1)[1].split())


def observed_kinds(name: str) -> set[str]:
    """What the record must say the attack tried (``# observed:`` in its header)."""
    for line in (CORPUS / f"{name}.py").read_text().splitlines()[:4]:
        if line.startswith("# observed:"):
            return set(line.split(":", 1)[1].split())
    return set()


def attack_task(code: str) -> str:
    for line in code.splitlines()[:3]:
        if line.startswith("# task:"):
            return line.split(":", 1)[1].strip()
    return "adv/secret" if "def secret" in code else "adv/add"


@pytest.fixture(scope="module")
def corpus_run(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("adv")
    caller = tmp / "caller"
    caller.mkdir()
    canary = tmp / "canary.txt"
    canary.write_text("intact")
    home_secret = Path.home() / f".codedpo-canary-{os.getpid()}"
    home_secret.write_text("home secret")
    secret_value = random.SystemRandom().randrange(10**12, 10**13)
    mark = f"MARK{random.SystemRandom().randrange(10**9)}"

    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(8)
    listener.settimeout(0.2)
    port = listener.getsockname()[1]
    connections = []
    stop = threading.Event()

    def accept():
        while not stop.is_set():
            try:
                conn, _ = listener.accept()
                connections.append(conn.recv(100))
                conn.close()
            except OSError:
                pass

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()

    problems_path = tmp / "problems.jsonl"
    problems = [
        {"task_id": "adv/add", "prompt": "add", "entry_point": "add",
         "canonical_solution": GOOD,
         "tests": {"kind": "call", "cases": [{"input": [1, 2], "output": 3},
                                              {"input": [5, 7], "output": 12}]}},
        {"task_id": "adv/secret", "entry_point": "secret", "canonical_solution": None,
         "prompt": mark,
         "tests": {"kind": "call", "cases": [{"input": [], "output": secret_value}]}},
        # Split assertions: each call's value crosses and is compared outside.
        {"task_id": "adv/asserts", "prompt": "add", "entry_point": "add",
         "canonical_solution": GOOD,
         "tests": {"kind": "assert", "asserts": ["assert add(1, 2) == 3",
                                                 "assert add(5, 7) == 12",
                                                 "assert add(2, 2) == 4"]}},
        # A check with a loop: the problem's own test code runs in a judge.
        {"task_id": "adv/judged", "prompt": "add", "entry_point": "add",
         "canonical_solution": GOOD,
         "tests": {"kind": "assert", "asserts": ["check(candidate)"],
                   "helpers": "def check(candidate):\n    for a in range(4):\n"
                              "        assert candidate(a, 1) == a + 1\n"}},
    ]  # fmt: skip
    problems_path.write_text("".join(json.dumps(p) + "\n" for p in problems))
    expected_path = tmp / "expected.json"
    samples = []
    for name in ATTACKS:
        code = (CORPUS / f"{name}.py").read_text()
        for key, value in {
            "__CANARY__": str(canary),
            "__CALLER_DIR__": str(caller),
            "__HOME_SECRET__": str(home_secret),
            "__PORT__": str(port),
            "__SECRET_MARK__": mark,
            "__PROBLEMS__": str(problems_path),
            "__EXPECTED__": str(expected_path),
        }.items():
            code = code.replace(key, value)
        task = attack_task(code)
        samples.append({"task_id": task, "sample_id": name, "solution": code})
        # Same task: a worker runs a task's samples in a row, so the probe follows the attack.
        if task == "adv/judged":
            samples.append({"task_id": task, "sample_id": f"{name}/after", "solution": GOOD})
        else:
            samples.append({"task_id": "adv/add", "sample_id": f"{name}/after", "solution": PROBE})
    samples.append({"task_id": "adv/add", "sample_id": "whoami", "solution": WHOAMI})
    samples_path = tmp / "samples.jsonl"
    samples_path.write_text("".join(json.dumps(s) + "\n" for s in samples))
    out = tmp / "executions.jsonl"

    os.environ["CODEDPO_TEST_SECRET"] = "hunter2"
    old_cwd = os.getcwd()
    os.chdir(caller)
    try:
        config = ExecConfig(
            sandbox=SandboxConfig(backend="bwrap", uid_base=UID),
            limits=Limits(test_seconds=2.0, memory_mb=1024, results_bytes=32 * 2**20),
            workers=1,
        )
        execute_files(load_problems(problems_path), [samples_path], out, config,
                      expected_path=expected_path, progress=False)  # fmt: skip
    finally:
        os.chdir(old_cwd)
        os.environ.pop("CODEDPO_TEST_SECRET", None)
        stop.set()
        thread.join()
        listener.close()
    records = {r["sample_id"]: r for r in map(json.loads, out.read_text().splitlines())}
    yield {"records": records, "canary": canary, "caller": caller, "connections": connections}
    home_secret.unlink()


@pytest.mark.parametrize("name", ATTACKS)
def test_attack_does_not_pass(corpus_run, name):
    record = corpus_run["records"][name]
    assert record["status"] != "passed"
    assert record["status"] in expected_statuses(name), record
    assert record["status"] != "sandbox_error", record
    # What it tried is on the record (the reward-hacking report reads it).
    assert observed_kinds(name) <= set(record["observed"]), record["observed"]


@pytest.mark.parametrize("name", ATTACKS)
def test_executor_still_works_after_attack(corpus_run, name):
    assert corpus_run["records"][f"{name}/after"]["status"] == "passed"


def test_host_untouched(corpus_run):
    assert corpus_run["canary"].read_text() == "intact"
    assert list(corpus_run["caller"].iterdir()) == []
    assert not Path("/pwned_by_codedpo").exists()
    assert not Path("/etc/pwned_by_codedpo").exists()
    assert corpus_run["connections"] == []


@pytest.mark.skipif(os.getuid() != 0, reason="sandbox uids exist only when run as root")
def test_nothing_outlives_the_run(corpus_run):
    # The samples did run as a uid of this run's range (so the search below can find them).
    message = corpus_run["records"]["whoami"]["first_failure"]["message"]
    uid = int(message.rsplit(":", 1)[1])
    assert UID <= uid < UID + PID_MAX
    # A sandbox's last processes are killed by the kernel as its namespace ends: give them a
    # moment to be gone, then none may be left.
    for _ in range(200):
        survivors = []
        for entry in Path("/proc").iterdir():
            if entry.name.isdigit():
                try:
                    if UID <= entry.stat().st_uid < UID + PID_MAX:
                        survivors.append(entry.name)
                except OSError:
                    pass
        if not survivors:
            break
        time.sleep(0.01)
    assert survivors == []
