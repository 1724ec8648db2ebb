"""Running samples on warm sandboxes: one sample's tests, fast checks, judged tests, the pool.

A judged test runs in two sandboxes at once: the judge (the problem's test code) and the
solution (serving calls). Each call the judge makes comes here, is timed against its test's
limit, crosses to the solution's sandbox, and its reply (plain data) goes back to the judge.
"""

from __future__ import annotations

import os
import sys
import threading
import time
from collections.abc import Callable
from concurrent.futures import FIRST_COMPLETED, ThreadPoolExecutor, wait
from dataclasses import asdict, dataclass, field

from tqdm import tqdm

from codedpo.execution.backends import SandboxConfig
from codedpo.execution.plan import Limits, Plan, fast_spans, rescued
from codedpo.execution.pool import Sandbox, SandboxFault, SandboxPool, Slot
from codedpo.execution.verdicts import (
    Outcome,
    assemble,
    call_outcomes,
    death_outcome,
    judged_outcomes,
    load_outcome,
    parse_results,
    stdio_outcomes,
    tamper_outcome,
)

# A timed-out sample whose process got less than this share of its wall time on a CPU, while the
# machine had less than IDLE_CORES idle on average, was starved (a loaded machine), not slow: it is
# re-run. One that used its time (an infinite loop), or slept on an idle machine, is not.
STARVED_SHARE = 0.8
IDLE_CORES = 0.5
_TICK = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


def idle_seconds() -> float | None:
    """CPU-seconds the whole machine has spent idle since boot (``/proc/stat``), or None."""
    try:
        with open("/proc/stat") as fh:
            fields = fh.readline().split()
        return (int(fields[4]) + int(fields[5])) / _TICK
    except (OSError, ValueError, IndexError):
        return None


@dataclass(frozen=True)
class ExecConfig:
    sandbox: SandboxConfig = field(default_factory=SandboxConfig)
    limits: Limits = field(default_factory=Limits)
    workers: int = 2
    retry_timeouts: bool = True
    fast_check: bool = False  # stop a sample at its first failing range of tests
    # Timed-out samples re-run at the same time, at most (the others keep their workers busy).
    parallel_reruns: int = 1

    def describe(self) -> dict:
        return {"sandbox": asdict(self.sandbox), "limits": asdict(self.limits),
                "workers": self.workers, "retry_timeouts": self.retry_timeouts,
                "fast_check": self.fast_check}  # fmt: skip


def sample_deadline(plan: Plan, limits: Limits) -> float:
    """Wall-clock budget of a whole sample's tests (beyond each test's own limit).

    Each test keeps its own limit; this cap stops a sample of many slow tests. It is
    ``sample_seconds``, or more where the reference solution itself needs more (Mbpp/599's
    reference runs ~50 s): never below the reference's time x the time factor.
    """
    total = sum(plan.test_seconds)
    floor = limits.time_factor * plan.reference_seconds
    return min(total, max(limits.sample_seconds, floor))


def _watchdog(plan: Plan, limits: Limits) -> float:
    """How long the parent waits for a worker's reply before calling the sandbox broken."""
    if plan.mode == "stdio":
        return sum(limits.load_seconds + t + 1 for t in plan.test_seconds) + 30.0
    return limits.load_seconds + sample_deadline(plan, limits) + 30.0


def wire_limits(plan: Plan, limits: Limits, start: int = 0, end: int | None = None) -> dict:
    wire = limits.wire(list(plan.test_seconds))
    wire["deadline_seconds"] = sample_deadline(plan, limits)
    wire["start"] = start
    wire["end"] = plan.total if end is None else end
    return wire


def _upload(box: Sandbox, wire: dict) -> None:
    if wire["key"] not in box.loaded:
        reply = box.request(wire, timeout=120)
        if not reply.get("ok"):
            raise SandboxFault(f"problem upload failed: {reply.get('error')}")
        box.loaded.add(wire["key"])


def _request(box: Sandbox, wire: dict, msg: dict, timeout: float) -> dict:
    """A request about a problem; re-sends the problem when the worker evicted it."""
    _upload(box, wire)
    reply = box.request(msg, timeout=timeout)
    if "unknown_key" in reply:
        box.loaded.discard(wire["key"])
        _upload(box, wire)
        reply = box.request(msg, timeout=timeout)
    if "error" in reply:
        raise SandboxFault(f"sandbox error: {reply['error']}")
    return reply


def run_on(box: Sandbox, plan: Plan, code: str, limits: Limits, start: int = 0,
           end: int | None = None) -> list[dict]:  # fmt: skip
    """Run tests ``start`` to ``end`` of a call, script or stdio plan. Raises SandboxFault."""
    msg = {"op": "run", "key": plan.wire["key"], "code": code,
           "limits": wire_limits(plan, limits, start, end)}  # fmt: skip
    reply = _request(box, plan.wire, msg, _watchdog(plan, limits))
    if "runs" not in reply:
        raise SandboxFault(f"malformed reply: {str(reply)[:200]}")
    return reply["runs"]


def _span_outcomes(plan: Plan, runs: list[dict], limits: Limits,
                   span: tuple[int, int]) -> list[Outcome]:  # fmt: skip
    if plan.mode == "stdio":
        return stdio_outcomes(plan, runs, limits.output_bytes, span[0])[: span[1] - span[0]]
    return call_outcomes(plan, runs[0], limits.output_bytes, span)


def _checked(slot: Slot, plan: Plan, runs: list[dict], outcomes: list[Outcome],
             limits: Limits) -> list[Outcome]:  # fmt: skip
    """Outputs of a problem with a checker: the problem's own check decides, in the judge,
    every case the program ran through (a wrong output by comparison may be right)."""
    todo = [i for i, o in enumerate(outcomes) if o.status in ("passed", "failed")]
    if not todo:
        return outcomes
    judge = slot.judge()
    _upload(judge, plan.judge_wire)
    wire = wire_limits(plan, limits)
    out = list(outcomes)
    for i in todo:
        case = [plan.wire["stdins"][i], runs[i].get("stdout") or "", plan.expected[i]]
        msg = {"op": "judge", "key": plan.judge_wire["key"],
               "limits": {**wire, "start": i, "end": i + 1, "cases": [case]}}  # fmt: skip
        reply = judge.request(msg, timeout=limits.judge_seconds + 30)
        if "judged" not in reply:
            raise SandboxFault(f"checker error: {str(reply)[:200]}")
        verdict = judged_outcomes(plan, reply["judged"], {}, None, (i, i + 1))[0]
        out[i] = Outcome("passed") if verdict.status == "passed" else (
            Outcome("failed", "the checker rejects the output") if verdict.status == "failed"
            else verdict)  # fmt: skip
    return out


def _run_judged(slot: Slot, plan: Plan, code: str, limits: Limits, span: tuple[int, int],
                fast: bool) -> tuple[list[Outcome], list[dict]]:  # fmt: skip
    """Judged tests ``span``: the judge's calls cross to a solution that stays up."""
    sol = slot.solution
    wire = wire_limits(plan, limits, *span)
    served = _request(sol, plan.wire, {"op": "serve", "key": plan.wire["key"], "code": code,
                                       "limits": wire}, limits.load_seconds + 30)  # fmt: skip
    if "runs" in served:  # it did not load: syntax error, crash or timeout while defining
        run = served["runs"][0]
        if run.get("tamper"):
            return [tamper_outcome(run["tamper"])] * (span[1] - span[0]), [run]
        _, load_error, syntax, _ = parse_results(run.get("results") or "", cut=True)
        outcome = load_outcome(run, load_error, syntax) or death_outcome(run, "while loading")
        return [outcome] * (span[1] - span[0]), [run]
    judge = slot.judge()
    _upload(judge, plan.judge_wire)
    budget = sample_deadline(plan, limits)
    used: dict[int, float] = {}
    events: dict[int, Outcome] = {}
    dead = False
    judge.send({"op": "judge", "key": plan.judge_wire["key"],
                "limits": {**wire, "fast": fast}})  # fmt: skip
    judge_wait = limits.judge_seconds * (span[1] - span[0]) + budget + 60
    while True:
        msg = judge.read(judge_wait)
        if "judged" in msg:
            judged = msg["judged"]
            break
        if "unknown_key" in msg or "error" in msg:
            raise SandboxFault(f"judge error: {msg}")
        call = msg.get("relay") or {}
        i = call.get("i")
        if dead or not isinstance(i, int) or not span[0] <= i < span[1]:
            judge.send({"op": "reply", "stop": True})
            continue
        left = min(plan.test_seconds[i] - used.get(i, 0.0), budget - sum(used.values()))
        if left <= 0:
            events[i] = Outcome("timeout", f"test {i} exceeded {plan.test_seconds[i]:.1f} s")
            dead = True
            judge.send({"op": "reply", "stop": True})
            continue
        request = {"op": "call", "target": str(call["call"].get("target")),
                   "args": call["call"].get("args"), "limit": left}  # fmt: skip
        reply = sol.request(request, timeout=left + 30)
        used[i] = used.get(i, 0.0) + float(reply.get("t") or 0.0)
        if "timeout" in reply:
            events[i] = Outcome("timeout", f"test {i} exceeded {plan.test_seconds[i]:.1f} s")
        elif "exceeded" in reply:
            events[i] = Outcome("output_exceeded", "the result is too large to return")
        elif "tamper" in reply:
            events[i] = tamper_outcome(str(reply["tamper"]))
        elif "died" in reply:
            events[i] = None  # decided below from how the solution's process ended
        else:
            judge.send({"op": "reply", **{k: v for k, v in reply.items() if k != "t"}})
            continue
        dead = True
        judge.send({"op": "reply", "stop": True})
    ended = sol.request({"op": "end"}, timeout=30)
    # The solution's own time per test, summed over its calls (a reference's becomes limits).
    runs = [*ended.get("runs", []), {**judged, "clock": [used.get(i, 0.0) for i in range(*span)]}]
    for i, event in list(events.items()):
        if event is None:
            solution_run = ended["runs"][0] if ended.get("runs") else {}
            events[i] = death_outcome(solution_run, "during the call")
    outcomes = judged_outcomes(plan, judged, events, None, span)
    stray = next((r["tamper"] for r in ended.get("runs", []) if r.get("tamper")), None)
    if stray:  # a line the solution wrote after its last reply: the whole sample fails
        outcomes = [tamper_outcome(stray)] * len(outcomes)
    return outcomes, runs


def _one_pass(slot: Slot, plan: Plan, code: str, limits: Limits, fast: bool) -> dict:
    spans = fast_spans(plan) if fast and plan.total and plan.mode != "stdio" else [(0, plan.total)]
    if plan.mode == "judged":
        # The judge stops at the first failing test itself: one pass, whatever `fast` says.
        outcomes, runs = _run_judged(slot, plan, code, limits, (0, plan.total), fast)
        if fast:
            cut = next((k for k, o in enumerate(outcomes) if o.status != "passed"), None)
            if cut is not None:
                outcomes = outcomes[: cut + 1] + [Outcome("not_run")] * (plan.total - cut - 1)
        return assemble(plan, outcomes, runs)
    outcomes: list[Outcome] = []
    runs: list[dict] = []
    for start, end in spans:
        span_runs = run_on(slot.solution, plan, code, limits, start, end)
        runs += span_runs
        span = _span_outcomes(plan, span_runs, limits, (start, end))
        if plan.mode == "stdio" and plan.judge_wire is not None:
            span = _checked(slot, plan, span_runs, span, limits)
        outcomes += span
        if fast and any(o.status != "passed" for o in span):
            outcomes += [Outcome("not_run")] * (plan.total - end)
            break
    return assemble(plan, outcomes, runs)


def _nothing_ran(plan: Plan, status: str, message: str, attempts: int) -> dict:
    """The record of a sample none of whose tests ran: every test counted, none passed."""
    return {
        "status": status,
        "passed": 0,
        "total": plan.total,
        "tests_run": 0,
        "first_failure": {"index": None, "group": None, "status": status, "message": message},
        "groups": {},
        "duration_s": 0.0,
        "cpu_s": 0.0,
        "stderr_tail": "",
        "in_process_checks": 0,
        "attempts": attempts,
    }


def _sandbox_error(plan: Plan, message: str) -> dict:
    return _nothing_ran(plan, "sandbox_error", message, attempts=2)


def no_code_record(plan: Plan) -> dict:
    """A response with no code (:func:`codedpo.sampling.extract.extract` found none): nothing
    to run. Its verdict is ``no_code``, not the ``syntax_error`` that running prose would give:
    a model that answers in words alone is not one that writes broken code. Unlike a sandbox
    fault, the verdict is the model's: each test group failed, and nothing was observed."""
    record = _nothing_ran(plan, "no_code", "no code in the response", attempts=0)
    record["groups"] = {g: {"passed": 0, "total": plan.groups.count(g), "status": "no_code"}
                        for g in dict.fromkeys(plan.groups)}  # fmt: skip
    record["observed"] = []
    return record


def execute_one(slot: Slot, plan: Plan, code: str, limits: Limits,
                fast_check: bool = False) -> dict:  # fmt: skip
    """Run one sample; a sandbox fault restarts the sandboxes and is retried once.

    ``fast_check`` stops at the first failing range of tests (EvalPlus's default behaviour):
    ``passed`` then counts the tests that ran (``tests_run``).
    """
    last_error = ""
    for attempt in (1, 2):
        try:
            record = _one_pass(slot, plan, code, limits, fast_check)
            record["attempts"] = attempt
            if plan.bad_cases:
                record["bad_cases"] = [b["index"] for b in plan.bad_cases]
            found = rescued(plan, code)
            if found:
                record["rescued"] = found
            return record
        except SandboxFault as exc:
            last_error = str(exc)[:1000]
            for box in (slot.solution, slot._judge):
                if box.proc is None and box is slot._judge:
                    continue
                try:
                    box.start()
                except SandboxFault as exc2:
                    last_error += f"; restart failed: {exc2}"
    return _sandbox_error(plan, last_error)


def starved(record: dict, idle_cores: float | None) -> bool:
    """Did a timed-out sample lose its time to other processes rather than use it?

    Where the kernel keeps schedstat (``wait_s`` known) the worker's clock already gave the
    sample back the time it waited for a CPU: its timeout stands. Elsewhere, a sample that got
    less than ``STARVED_SHARE`` of its wall time on a CPU while the machine had no core to spare
    was starved.
    """
    if record.get("wait_s") is not None:
        return False
    if float(record.get("cpu_s") or 0.0) >= STARVED_SHARE * float(record.get("duration_s") or 0):
        return False  # it had the CPU and used it
    return idle_cores is None or idle_cores < IDLE_CORES  # the machine had no CPU to spare


class Executor:
    """Executes samples against problems with a pool of warm sandboxes."""

    def __init__(self, config: ExecConfig) -> None:
        self.config = config
        self._pool: SandboxPool | None = None
        self._reruns = threading.Semaphore(max(1, config.parallel_reruns))

    def __enter__(self) -> Executor:
        if self.config.sandbox.backend == "process":
            print(
                "codedpo: WARNING: sandbox backend 'process' applies resource limits only and "
                "does NOT isolate untrusted code from this machine",
                file=sys.stderr,
            )
        self._pool = SandboxPool(self.config.sandbox, self.config.workers).__enter__()
        return self

    def __exit__(self, *exc) -> None:
        if self._pool is not None:
            self._pool.__exit__(*exc)

    @property
    def pool(self) -> SandboxPool:
        assert self._pool is not None
        return self._pool

    def run_one(self, plan: Plan, code: str) -> dict:
        """One sample on a free slot (the timeout re-run included): its record's fields."""
        limits = self.config.limits
        if not code.strip():
            return no_code_record(plan)
        with self.pool.acquire() as slot:
            idle0, t0 = idle_seconds(), time.monotonic()
            record = execute_one(slot, plan, code, limits, self.config.fast_check)
            idle1, wall = idle_seconds(), time.monotonic() - t0
            known = idle0 is not None and idle1 is not None and wall > 0
            idle = (idle1 - idle0) / wall if known else None
            if (self.config.retry_timeouts and record["status"] == "timeout"
                    and starved(record, idle)):  # fmt: skip
                # Re-run at once, on this worker, while the others go on; at most
                # `parallel_reruns` at a time, so that re-runs do not starve each other.
                with self._reruns:
                    record = execute_one(slot, plan, code, limits, self.config.fast_check)
                record["timeout_rerun"] = True
        return record

    def run(self, jobs: list[tuple[str, Plan, str]], *, desc: str = "execute",
            on_result: Callable[[str, dict], None] | None = None,
            progress: bool = True) -> dict[str, dict]:  # fmt: skip
        """Run ``(job_id, plan, code)`` jobs; returns ``{job_id: record fields}``."""
        results: dict[str, dict] = {}
        # Group by problem so that a sandbox mostly sees one problem's tests in a row.
        jobs = sorted(jobs, key=lambda j: j[1].task_id)
        bar = tqdm(total=len(jobs), desc=desc, unit="sample", disable=not progress,
                   dynamic_ncols=True)  # fmt: skip
        with ThreadPoolExecutor(max_workers=self.pool.size) as ex:
            pending = {ex.submit(self.run_one, plan, code): job_id for job_id, plan, code in jobs}
            while pending:
                done, _ = wait(pending, return_when=FIRST_COMPLETED)
                for fut in done:
                    job_id = pending.pop(fut)
                    record = fut.result()
                    results[job_id] = record
                    if on_result is not None:
                        on_result(job_id, record)
                    bar.update()
        bar.close()
        return results

    def time_tests(self, plan: Plan, code: str, limits: Limits) -> list[float | None]:
        """The seconds ``code`` takes on each test of a script or judged plan; None where it
        does not pass (a reference's times become the tests' limits)."""
        with self.pool.acquire() as slot:
            if plan.mode == "judged":
                outcomes, runs = _run_judged(slot, plan, code, limits, (0, plan.total), False)
                clock = runs[-1].get("clock") or []
            else:
                runs = run_on(slot.solution, plan, code, limits)
                outcomes = _span_outcomes(plan, runs, limits, (0, plan.total))
                clock = runs[0].get("clock") or []
        return [clock[i] if i < len(clock) and o.status == "passed" else None
                for i, o in enumerate(outcomes)]  # fmt: skip

    def run_raw(self, plan: Plan, code: str, limits: Limits, start: int = 0) -> dict:
        """One run of a call plan's tests from ``start`` on (expected outputs)."""
        with self.pool.acquire() as slot:
            return run_on(slot.solution, plan, code, limits, start)[0]
