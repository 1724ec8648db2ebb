"""The trusted parent: plans tests, drives sandboxes, and decides every verdict.

The sandbox only reports what the code returned or printed, as plain data. Expected outputs stay
here; comparisons happen here (:mod:`codedpo.execute.compare`, :mod:`codedpo.execute.asserts`).
"""

from __future__ import annotations

import json
import math
import signal
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from tqdm import tqdm

from codedpo.execute import codec
from codedpo.execute.asserts import Check, convert_assert, judge
from codedpo.execute.compare import outputs_match
from codedpo.execute.pool import Sandbox, SandboxFault, SandboxPool
from codedpo.execute.sandbox import SandboxConfig
from codedpo.io import InputError, atomic_write, read_jsonl, sha256_json, write_json

STATUSES = (
    "passed",
    "failed",
    "runtime_error",
    "syntax_error",
    "timeout",
    "memory_exceeded",
    "output_exceeded",
    "sandbox_error",
)
_ARG_CHECKS = ("poly_root", "surface_area", "digit_distance")
# Order in which a whole-sample verdict is chosen when the child died without reporting a test.
_KILLED_BY_CPU = (signal.SIGXCPU,)


@dataclass(frozen=True)
class Limits:
    memory_mb: int = 2048
    output_bytes: int = 16 * 2**20
    # HumanEval/130's reference outputs reach 124 MB per sample (float lists: no digest).
    results_bytes: int = 256 * 2**20
    open_files: int = 64
    # EvalPlus's rule for per-test limits: max(floor, factor x reference time).
    min_test_seconds: float = 1.0
    time_factor: float = 4.0
    # Per-test limit where no reference time is known (assert and stdio tests, the demo); MBPP's
    # Mbpp/123 reference takes 4.5 s on a 2-core machine.
    test_seconds: float = 10.0
    sample_seconds: float = 60.0  # cap on the sum of a sample's per-test limits
    load_seconds: float = 4.0  # importing and defining the solution

    def wire(self, test_seconds: list[float]) -> dict:
        return {
            "memory_bytes": self.memory_mb * 2**20,
            "output_bytes": self.output_bytes,
            "results_bytes": self.results_bytes,
            "open_files": self.open_files,
            "test_seconds": test_seconds,
            "load_seconds": self.load_seconds,
        }


@dataclass
class Plan:
    """Everything the parent knows about one problem's tests; only ``wire`` is sent inside."""

    task_id: str
    mode: str  # call | script | stdio
    groups: list[str]
    wire: dict
    expected: list[Any] = field(default_factory=list)  # call: encoded outputs; stdio: text
    args: list[Any] = field(default_factory=list)  # call: encoded inputs (for poly_root)
    checks: list[Check | None] = field(default_factory=list)  # script: None = in-process
    digests: dict[int, str] = field(default_factory=dict)  # call: digests of large outputs
    atol: float = 0.0
    check: str = "exact"
    float_tol: float | None = None
    test_seconds: list[float] = field(default_factory=list)
    reference_seconds: float = 0.0  # the reference solution's measured time over all tests
    _decoded: dict[int, Any] = field(default_factory=dict, repr=False)

    def expected_value(self, i: int) -> Any:
        """The reference output of call test ``i``, decoded on first use.

        Kept encoded until then: a fast check rarely needs most of them, and decoding
        HumanEval+'s 240 MB of outputs up front dominated the run.
        """
        if i not in self._decoded:
            self._decoded[i] = codec.decode(self.expected[i])
        return self._decoded[i]

    @property
    def total(self) -> int:
        return len(self.groups)


@dataclass
class Outcome:
    status: str
    message: str = ""


# -- planning -----------------------------------------------------------------------------------
def problem_key(problem: dict) -> str:
    return problem["task_id"] + "#" + sha256_json(problem["tests"])[:12]


def plan_problem(problem: dict, limits: Limits, expected: dict | None = None) -> Plan:
    """Build the :class:`Plan`; ``expected`` supplies computed outputs and reference times."""
    tests = problem["tests"]
    kind = tests["kind"]
    key = problem_key(problem)
    if kind == "call":
        cases = tests["cases"]
        outputs: list[Any] = []
        digests: dict[int, str] = {}
        times: list[float | None] = [None] * len(cases)
        if all("output" in c for c in cases):
            outputs = [c["output"] for c in cases]
        elif expected is not None:
            # Cases on which the reference solution itself fails are dropped, not counted.
            bad = {b["index"] for b in expected.get("bad_cases") or []}
            keep = [i for i in range(len(cases)) if i not in bad]
            cases = [cases[i] for i in keep]
            outputs = [expected["outputs"][i] for i in keep]
            old_digests = expected.get("digests") or {}
            digests = {n: old_digests[str(i)] for n, i in enumerate(keep) if str(i) in old_digests}
            all_times = expected.get("times") or [None] * len(expected["outputs"])
            times = [all_times[i] for i in keep]
        else:
            raise InputError(f"{problem['task_id']}: expected outputs are not computed")
        test_seconds = [
            limits.test_seconds
            if t is None
            else max(limits.min_test_seconds, limits.time_factor * t)
            for t in times
        ]
        if not cases:
            raise InputError(
                f"{problem['task_id']}: no test cases left: the reference solution fails on all"
            )
        wire = {
            "op": "problem",
            "key": key,
            "mode": "call",
            "entry_point": problem["entry_point"],
            "setup": tests.get("setup"),
            "inputs": [c["input"] for c in cases],
            # Large outputs may travel as digests only where equality is exact.
            "digest": tests.get("check", "exact") == "exact",
            "not_none": tests.get("check") == "not_none",
        }
        return Plan(
            task_id=problem["task_id"],
            mode="call",
            groups=[c.get("group", "base") for c in cases],
            wire=wire,
            expected=outputs,
            args=[c["input"] for c in cases],
            atol=float(tests.get("atol") or 0.0),
            check=tests.get("check", "exact"),
            test_seconds=test_seconds,
            digests=digests,
            reference_seconds=sum(t for t in times if t is not None),
        )
    if kind == "assert":
        checks = [convert_assert(a) for a in tests["asserts"]]
        script = [
            ["eval", c.expr] if c is not None else ["exec", src]
            for c, src in zip(checks, tests["asserts"], strict=True)
        ]
        groups = tests.get("groups") or ["base"] * len(script)
        wire = {
            "op": "problem",
            "key": key,
            "mode": "script",
            "entry_point": problem.get("entry_point"),
            "setup": tests.get("setup"),
            "script": script,
        }
        return Plan(
            task_id=problem["task_id"],
            mode="script",
            groups=groups,
            wire=wire,
            checks=checks,
            test_seconds=[limits.test_seconds] * len(script),
        )
    cases = tests["cases"]
    wire = {"op": "problem", "key": key, "mode": "stdio", "stdins": [c["input"] for c in cases]}
    return Plan(
        task_id=problem["task_id"],
        mode="stdio",
        groups=[c.get("group", "base") for c in cases],
        wire=wire,
        expected=[c["output"] for c in cases],
        float_tol=tests.get("float_tol"),
        test_seconds=[limits.test_seconds] * len(cases),
    )


# -- verdicts -----------------------------------------------------------------------------------
def _parse_results(text: str) -> tuple[dict[int, dict], dict | None, str | None]:
    """Per-test lines by index, the load error (if any), the syntax error (if any)."""
    by_index: dict[int, dict] = {}
    load_error = None
    syntax = None
    for line in text.splitlines():
        try:
            rec = json.loads(line)
        except (json.JSONDecodeError, RecursionError):
            continue
        if not isinstance(rec, dict):
            continue
        if "syntax" in rec and syntax is None:
            syntax = str(rec["syntax"])[:500]
        elif "load_error" in rec and load_error is None:
            load_error = rec
        elif type(rec.get("i")) is int and rec["i"] not in by_index:
            by_index[rec["i"]] = rec
    return by_index, load_error, syntax


def _exception_outcome(exc: Any) -> Outcome:
    if not isinstance(exc, list) or len(exc) != 2:
        return Outcome("runtime_error", "malformed exception report")
    name, message = str(exc[0])[:100], str(exc[1])[:500]
    if name == "MemoryError":
        return Outcome("memory_exceeded", "MemoryError")
    return Outcome("runtime_error", f"{name}: {message}" if message else name)


def _death_outcome(run: dict, limits: Limits) -> Outcome:
    """Why a child stopped before reporting a test."""
    if run.get("timed_out"):
        return Outcome("timeout", f"wall-clock limit reached after {run.get('duration', 0):.1f} s")
    sig = run.get("signal")
    if sig == signal.SIGXFSZ:
        return Outcome("output_exceeded", "file size limit reached")
    if sig in _KILLED_BY_CPU:
        return Outcome("timeout", "CPU time limit reached")
    if sig == signal.SIGKILL:
        return Outcome("memory_exceeded", "killed (SIGKILL), most likely out of memory")
    if sig is not None:
        try:
            name = signal.Signals(sig).name
        except ValueError:
            name = str(sig)
        return Outcome("runtime_error", f"killed by {name}")
    return Outcome("runtime_error", f"process exited (code {run.get('exit')}) before the test ran")


def _output_exceeded(run: dict, limits: Limits) -> bool:
    return (
        run.get("signal") == signal.SIGXFSZ
        or int(run.get("output_bytes") or 0) > limits.output_bytes
        or int(run.get("results_bytes") or 0) > limits.results_bytes
    )


def _call_outcomes(
    plan: Plan, run: dict, limits: Limits, span: tuple[int, int] | None = None
) -> tuple[list[Outcome], int]:
    """Per-test outcomes (of tests ``span``, default all) for call and script plans, and the
    number of in-process checks."""
    by_index, load_error, syntax = _parse_results(run.get("results") or "")
    start, end = span or (0, plan.total)
    n = end - start
    in_process = sum(1 for c in plan.checks if c is None) if plan.mode == "script" else 0
    if syntax is not None:
        return [Outcome("syntax_error", syntax)] * n, in_process
    if load_error is not None:
        if load_error.get("timeout"):
            return [Outcome("timeout", "defining the solution took too long")] * n, in_process
        return [_exception_outcome(load_error.get("load_error"))] * n, in_process
    outcomes: list[Outcome] = []
    for i in range(start, end):
        rec = by_index.get(i)
        if rec is None:
            if outcomes and outcomes[-1].status in ("timeout", "memory_exceeded"):
                outcomes.append(outcomes[-1])
            elif not by_index and not run.get("results") and run.get("exit") == 0:
                outcomes.append(Outcome("runtime_error", "exited before defining the solution"))
            else:
                outcomes.append(_death_outcome(run, limits))
            continue
        if rec.get("timeout"):
            outcomes.append(Outcome("timeout", f"test {i} exceeded {plan.test_seconds[i]:.1f} s"))
        elif "exc" in rec:
            outcomes.append(_exception_outcome(rec["exc"]))
        elif "bad" in rec:
            outcomes.append(Outcome("failed", f"returned a value that is not plain data: "
                                              f"{str(rec['bad'])[:200]}"))  # fmt: skip
        elif "nn" in rec and plan.mode == "call" and plan.check == "not_none":
            # An object the codec cannot carry (re.Match): only whether it is None counts.
            value = "<object>" if rec["nn"] is True else None
            outcomes.append(_judge_value(plan, i, value))
        elif "h" in rec and plan.mode == "call":
            ok = rec["h"] == _expected_digest(plan, i)
            outcomes.append(Outcome("passed") if ok else Outcome("failed", "wrong answer (large)"))
        elif "v" in rec:
            if i in plan.digests:
                try:
                    ok = codec.digest(rec["v"]) == plan.digests[i]
                except (ValueError, TypeError, RecursionError):
                    ok = False
                outcomes.append(Outcome("passed") if ok else Outcome("failed", "wrong answer"))
                continue
            try:
                value = codec.decode(rec["v"])
            except (ValueError, TypeError, RecursionError):
                outcomes.append(Outcome("failed", "malformed value"))
                continue
            outcomes.append(_judge_value(plan, i, value))
        else:
            outcomes.append(Outcome("failed", "no value reported"))
    return outcomes, in_process


def _expected_digest(plan: Plan, i: int) -> str | None:
    if i in plan.digests:
        return plan.digests[i]
    try:
        plan.digests[i] = codec.digest(plan.expected[i])
    except (codec.Unencodable, ValueError, RecursionError):
        return None
    return plan.digests[i]


def _judge_value(plan: Plan, i: int, value: Any) -> Outcome:
    if plan.mode == "call":
        # Only the oracles that recompute from the inputs need them decoded.
        args = codec.decode(plan.args[i]) if plan.check in _ARG_CHECKS else []
        ok = outputs_match(value, plan.expected_value(i), args=args, atol=plan.atol,
                           check=plan.check)  # fmt: skip
        return Outcome("passed") if ok else Outcome("failed", f"wrong answer: {_short(value)}")
    check = plan.checks[i]
    if check is None:  # an in-process assertion that raised nothing
        return Outcome("passed")
    if judge(check, value):
        return Outcome("passed")
    return Outcome("failed", f"assertion failed: {check.expr} -> {_short(value)}")


def _short(value: Any, n: int = 120) -> str:
    try:
        text = repr(value)
    except ValueError:  # an int past Python's 4300-digit str() limit
        return f"<int of {value.bit_length()} bits>" if isinstance(value, int) else "<value>"
    return text if len(text) <= n else text[:n] + "..."


def tokens_match(out: str, expected: str, float_tol: float | None) -> bool:
    """Whitespace-normalized token comparison, floats within ``float_tol`` when set."""
    a, b = out.split(), expected.split()
    if len(a) != len(b):
        return False
    for x, y in zip(a, b, strict=True):
        if x == y:
            continue
        if float_tol is None:
            return False
        try:
            fx, fy = float(x), float(y)
        except ValueError:
            return False
        if not math.isclose(fx, fy, rel_tol=float_tol, abs_tol=float_tol):
            return False
    return True


def _stdio_outcomes(plan: Plan, runs: list[dict], limits: Limits) -> list[Outcome]:
    outcomes = []
    for i in range(plan.total):
        if i >= len(runs):
            outcomes.append(outcomes[-1] if outcomes else Outcome("timeout"))
            continue
        run = runs[i]
        _, _, syntax = _parse_results(run.get("results") or "")
        report = None
        for line in (run.get("results") or "").splitlines():
            try:
                rec = json.loads(line)
            except json.JSONDecodeError:
                continue
            if isinstance(rec, dict) and "exc" in rec:
                report = rec
                break
        if syntax is not None:
            outcomes.append(Outcome("syntax_error", syntax))
        elif run.get("timed_out"):
            outcomes.append(_death_outcome(run, limits))
        elif _output_exceeded(run, limits):
            outcomes.append(Outcome("output_exceeded", "output limit reached"))
        elif report is not None:
            outcomes.append(_exception_outcome(report["exc"]))
        elif run.get("signal") is not None:
            outcomes.append(_death_outcome(run, limits))
        elif tokens_match(run.get("stdout") or "", plan.expected[i], plan.float_tol):
            outcomes.append(Outcome("passed"))
        else:
            outcomes.append(Outcome("failed", f"wrong output: {_short(run.get('stdout'))}"))
    return outcomes


def _span_outcomes(
    plan: Plan, run: dict, limits: Limits, span: tuple[int, int] | None = None
) -> tuple[list[Outcome], int]:
    outcomes, in_process = _call_outcomes(plan, run, limits, span)
    if _output_exceeded(run, limits):
        outcomes = [
            o if o.status == "passed" else Outcome("output_exceeded", "output limit reached")
            for o in outcomes
        ]
        if outcomes and all(o.status == "passed" for o in outcomes):
            outcomes[-1] = Outcome("output_exceeded", "output limit reached")
    return outcomes, in_process


def verdict(plan: Plan, runs: list[dict], limits: Limits) -> dict:
    """The execution record fields decided from the sandbox's raw reports."""
    in_process = 0
    if plan.mode == "stdio":
        outcomes = _stdio_outcomes(plan, runs, limits)
    else:
        outcomes, in_process = _span_outcomes(plan, runs[0], limits)
    return assemble(plan, outcomes, runs, in_process)


def assemble(plan: Plan, outcomes: list[Outcome], runs: list[dict], in_process: int) -> dict:
    """Record fields from per-test outcomes (``not_run`` for tests a fast check skipped)."""
    groups: dict[str, dict] = {}
    first = None
    for i, (group, outcome) in enumerate(zip(plan.groups, outcomes, strict=True)):
        g = groups.setdefault(group, {"passed": 0, "total": 0, "status": "passed"})
        g["total"] += 1
        if outcome.status == "passed":
            g["passed"] += 1
        elif g["status"] == "passed":
            g["status"] = outcome.status
        if outcome.status != "passed" and first is None:
            first = {"index": i, "group": group, "status": outcome.status,
                     "message": outcome.message}  # fmt: skip
    passed = sum(o.status == "passed" for o in outcomes)
    stderr = "".join(r.get("stderr_tail") or "" for r in runs)[-2000:]
    return {
        "status": "passed" if first is None else first["status"],
        "passed": passed,
        "total": len(outcomes),
        "tests_run": sum(o.status != "not_run" for o in outcomes),
        "first_failure": first,
        "groups": groups,
        "duration_s": round(sum(float(r.get("duration") or 0) for r in runs), 4),
        "stderr_tail": stderr,
        "in_process_checks": in_process,
    }


# -- running ------------------------------------------------------------------------------------
@dataclass(frozen=True)
class ExecConfig:
    sandbox: SandboxConfig = field(default_factory=SandboxConfig)
    limits: Limits = field(default_factory=Limits)
    workers: int = 2
    retry_timeouts: bool = True
    fast_check: bool = False  # stop a sample at its first failing range of tests

    def describe(self) -> dict:
        return {"sandbox": asdict(self.sandbox), "limits": asdict(self.limits),
                "workers": self.workers, "retry_timeouts": self.retry_timeouts,
                "fast_check": self.fast_check}  # fmt: skip


def _watchdog_seconds(plan: Plan, limits: Limits) -> float:
    per_sample = limits.load_seconds + _sample_deadline(plan, limits)
    if plan.mode == "stdio":
        per_sample = sum(limits.load_seconds + t + 0.5 for t in plan.test_seconds)
    return per_sample + 30.0


def _sample_deadline(plan: Plan, limits: Limits) -> float:
    """Wall-clock budget of a whole sample's tests (beyond each test's own limit).

    Each test keeps its own limit (its alarm fires first); this cap only stops code that defeats
    the alarm. It is ``sample_seconds``, or more where the reference solution itself needs more
    (Mbpp/599's reference runs ~50 s): never below the reference's time x the time factor.
    """
    total = sum(plan.test_seconds)
    floor = limits.time_factor * plan.reference_seconds
    return min(total, max(limits.sample_seconds, floor))


def _wire_limits(plan: Plan, limits: Limits, start: int = 0, end: int | None = None) -> dict:
    wire = limits.wire(list(plan.test_seconds))
    if plan.mode != "stdio":
        wire["deadline_seconds"] = _sample_deadline(plan, limits)
        wire["start"] = start
        wire["end"] = plan.total if end is None else end
    return wire


def run_on(
    box: Sandbox, plan: Plan, code: str, limits: Limits, start: int = 0, end: int | None = None
) -> list[dict]:
    """Send ``code`` for ``plan`` to ``box``, tests ``start`` to ``end`` (default: the rest).

    Raises :class:`SandboxFault`.
    """
    if plan.wire["key"] not in box.loaded:
        reply = box.request(plan.wire, timeout=120)
        if not reply.get("ok"):
            raise SandboxFault(f"problem upload failed: {reply.get('error')}")
        box.loaded.add(plan.wire["key"])
    msg = {"op": "run", "key": plan.wire["key"], "code": code,
           "limits": _wire_limits(plan, limits, start, end)}  # fmt: skip
    reply = box.request(msg, timeout=_watchdog_seconds(plan, limits))
    if "unknown_key" in reply:  # the worker evicted the problem: send it again
        box.loaded.discard(plan.wire["key"])
        return run_on(box, plan, code, limits, start, end)
    if "runs" not in reply:
        raise SandboxFault(f"sandbox error: {reply.get('error')}")
    return reply["runs"]


def fast_spans(plan: Plan) -> list[tuple[int, int]]:
    """Test ranges a fast check runs one after the other: the first group, then growing chunks.

    EvalPlus stops a sample at its first failing test; so does a fast check, between ranges.
    """
    n = plan.total
    first = plan.groups.count(plan.groups[0]) if n else 0
    bounds = [0, min(n, max(1, min(first, 16)))]
    while bounds[-1] < n:
        bounds.append(min(n, bounds[-1] * 8))
    return list(zip(bounds, bounds[1:], strict=False))


def _run_fast(box: Sandbox, plan: Plan, code: str, limits: Limits) -> dict:
    outcomes: list[Outcome] = []
    runs: list[dict] = []
    in_process = 0
    for start, end in fast_spans(plan):
        run = run_on(box, plan, code, limits, start, end)[0]
        runs.append(run)
        span, in_process = _span_outcomes(plan, run, limits, (start, end))
        outcomes += span
        if any(o.status != "passed" for o in span):
            outcomes += [Outcome("not_run")] * (plan.total - end)
            break
    return assemble(plan, outcomes, runs, in_process)


def execute_one(
    box: Sandbox, plan: Plan, code: str, limits: Limits, fast_check: bool = False
) -> dict:
    """Run one sample; a sandbox fault restarts the sandbox and is retried once.

    ``fast_check`` stops at the first failing range of tests (EvalPlus's default behaviour):
    ``passed`` then counts the tests that ran (``tests_run``).
    """
    last_error = ""
    for attempt in (1, 2):
        try:
            if fast_check and plan.mode != "stdio" and plan.total:
                record = _run_fast(box, plan, code, limits)
            else:
                record = verdict(plan, run_on(box, plan, code, limits), limits)
            record["attempts"] = attempt
            return record
        except SandboxFault as exc:
            last_error = str(exc)[:1000]
            try:
                box.start()
            except SandboxFault as exc2:
                last_error += f"; restart failed: {exc2}"
    return {
        "status": "sandbox_error",
        "passed": 0,
        "total": plan.total,
        "first_failure": {
            "index": None,
            "group": None,
            "status": "sandbox_error",
            "message": last_error,
        },  # fmt: skip
        "groups": {},
        "duration_s": 0.0,
        "stderr_tail": "",
        "in_process_checks": 0,
        "attempts": 2,
    }


class Executor:
    """Executes samples against problems with a pool of warm sandboxes."""

    def __init__(self, config: ExecConfig) -> None:
        self.config = config
        self._pool: SandboxPool | None = None

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

    def run(self, jobs: list[tuple[str, Plan, str]], *, desc: str = "execute",
            on_result=None, progress: bool = True) -> dict[str, dict]:  # fmt: skip
        """Run ``(job_id, plan, code)`` jobs; returns ``{job_id: record fields}``."""
        assert self._pool is not None
        results: dict[str, dict] = {}
        lock = threading.Lock()
        limits = self.config.limits

        def work(job):
            job_id, plan, code = job
            with self._pool.acquire() as box:
                record = execute_one(box, plan, code, limits, self.config.fast_check)
            return job_id, record

        # Group by problem so that a sandbox mostly sees one problem's tests in a row.
        jobs = sorted(jobs, key=lambda j: j[1].task_id)
        bar = tqdm(total=len(jobs), desc=desc, unit="sample", disable=not progress,
                   dynamic_ncols=True)  # fmt: skip
        with ThreadPoolExecutor(max_workers=self._pool.size) as ex:
            futures = [ex.submit(work, job) for job in jobs]
            for fut in as_completed(futures):
                job_id, record = fut.result()
                with lock:
                    results[job_id] = record
                    if on_result is not None:
                        on_result(job_id, record)
                bar.update()
        bar.close()
        return results

    def rerun_timeouts(self, jobs: list[tuple[str, Plan, str]], progress: bool = True) -> dict:
        """Re-run timed-out samples one at a time, so that machine load cannot flip them."""
        assert self._pool is not None
        out = {}
        with self._pool.acquire() as box:
            for job_id, plan, code in tqdm(jobs, desc="re-run timeouts", disable=not progress):
                record = execute_one(box, plan, code, self.config.limits, self.config.fast_check)
                record["timeout_rerun"] = True
                out[job_id] = record
        return out


# -- expected outputs ---------------------------------------------------------------------------
def needs_expected(problem: dict) -> bool:
    tests = problem["tests"]
    return tests["kind"] == "call" and any("output" not in c for c in tests["cases"])


def compute_expected(problems: dict[str, dict], executor: Executor, *,
                     progress: bool = True) -> dict[str, dict]:  # fmt: skip
    """Run each canonical solution inside the sandbox to get outputs and reference times."""
    limits = executor.config.limits
    generous = Limits(**{**asdict(limits), "test_seconds": 60.0, "sample_seconds": 3600.0,
                         "load_seconds": 30.0})  # fmt: skip
    jobs = []
    for task_id, problem in problems.items():
        if not needs_expected(problem):
            continue
        plan = plan_problem(
            problem, generous, expected={"outputs": [None] * len(problem["tests"]["cases"])}
        )
        plan.test_seconds = [generous.test_seconds] * plan.total
        jobs.append((task_id, plan, problem["canonical_solution"]))
    out: dict[str, dict] = {}
    if not jobs:
        return out
    saved = executor.config
    executor.config = ExecConfig(saved.sandbox, generous, saved.workers, saved.retry_timeouts)
    try:
        raw: dict[str, list[dict]] = {}
        lock = threading.Lock()

        def work(job):
            task_id, plan, code = job
            results, start = "", 0
            with executor._pool.acquire() as box:
                while start < plan.total:
                    run = run_on(box, plan, code, generous, start)[0]
                    results += run.get("results") or ""
                    by_index, load_error, syntax = _parse_results(results)
                    if load_error or syntax:
                        break
                    if all(i in by_index for i in range(start, plan.total)):
                        break
                    # The reference stopped early on a case (a resource limit): the cases after
                    # it get their own run (Mbpp/255: case 88 is 1 GB, cases 89-111 are small).
                    last = max((i for i in by_index if i >= start), default=start - 1)
                    stopped_there = last >= start and (
                        by_index[last].get("timeout") or "exc" in by_index[last]
                    )
                    start = last + 1 if stopped_there else last + 2
            with lock:
                raw[task_id] = [{"results": results}]

        with ThreadPoolExecutor(max_workers=executor._pool.size) as ex:
            futs = [ex.submit(work, j) for j in jobs]
            for fut in tqdm(as_completed(futs), total=len(futs), desc="expected outputs",
                            disable=not progress):  # fmt: skip
                fut.result()
    finally:
        executor.config = saved
    for task_id, plan, _ in jobs:
        by_index, load_error, syntax = _parse_results(raw[task_id][0].get("results") or "")
        if syntax or load_error:
            raise InputError(
                f"{task_id}: field 'canonical_solution' does not run: {syntax or load_error}"
            )
        outputs, times, bad, digests = [], [], [], {}
        for i in range(plan.total):
            rec = by_index.get(i, {})
            if "nn" in rec:  # not_none tasks: EvalPlus's expected output is "is not None"
                outputs.append(rec["nn"] is True)
                times.append(float(rec.get("t") or 0.0))
            elif "v" in rec or "h" in rec:
                outputs.append(rec.get("v"))
                if "h" in rec:
                    digests[str(i)] = str(rec["h"])
                times.append(float(rec.get("t") or 0.0))
            else:
                outputs.append(None)
                times.append(None)
                bad.append({"index": i, "why": _why(rec)})
        out[task_id] = {"outputs": outputs, "times": times, "bad_cases": bad, "digests": digests}
    return out


def _why(rec: dict) -> str:
    if not rec:
        return "no result (killed or timed out)"
    if rec.get("timeout"):
        return "timeout"
    if "exc" in rec:
        return ": ".join(map(str, rec["exc"]))
    return str(rec.get("bad", "unknown"))[:200]


# -- the whole command --------------------------------------------------------------------------
def load_samples(paths: list[Path]) -> list[dict]:
    samples = []
    seen: set[str] = set()
    for path in paths:
        for lineno, rec in read_jsonl(path):
            where = f"{path}:{lineno}"
            if not isinstance(rec.get("task_id"), str):
                raise InputError(f"{where}: field 'task_id' is missing or not a string")
            if not isinstance(rec.get("solution"), str):
                raise InputError(f"{where}: field 'solution' is missing or not a string")
            sample_id = rec.get("sample_id", f"{path.name}:{lineno}")
            if not isinstance(sample_id, str):
                raise InputError(f"{where}: field 'sample_id' must be a string")
            if sample_id in seen:
                raise InputError(f"{where}: field 'sample_id': duplicate id {sample_id!r}")
            seen.add(sample_id)
            samples.append({"task_id": rec["task_id"], "sample_id": sample_id,
                            "solution": rec["solution"], "_where": where})  # fmt: skip
    return samples


def _header(problems: dict[str, dict], samples: list[dict], config: ExecConfig) -> dict:
    """What a partial file must match to be resumed: the same tests, samples and limits."""
    return {
        "problems": sha256_json(sorted(problems)),
        "problems_tests": sha256_json([problems[t]["tests"] for t in sorted(problems)]),
        "samples": sha256_json([[s["sample_id"], s["solution"]] for s in samples]),
        "config": config.describe(),
    }


def _read_partial(path: Path, header: dict) -> dict[str, dict]:
    """Finished records of an interrupted run with the same inputs; anything else is dropped."""
    done: dict[str, dict] = {}
    if not path.exists():
        return done
    with open(path, encoding="utf-8") as fh:
        first = fh.readline()
        try:
            if json.loads(first).get("header") != header:
                return done
        except (json.JSONDecodeError, AttributeError):
            return done
        for line in fh:
            try:
                rec = json.loads(line)
            except json.JSONDecodeError:
                break  # a torn last line from a killed run
            if isinstance(rec, dict) and "sample_id" in rec:
                done[rec["sample_id"]] = rec
    return done


def execute_files(problems: dict[str, dict], sample_paths: list[Path], out: Path,
                  config: ExecConfig, *, expected_path: Path | None = None,
                  progress: bool = True) -> dict:  # fmt: skip
    """Execute every sample; write records to ``out`` (JSONL, sample order), resumable."""
    samples = load_samples(sample_paths)
    for s in samples:
        if s["task_id"] not in problems:
            raise InputError(f"{s['_where']}: field 'task_id': unknown task {s['task_id']!r}")
    header = _header(problems, samples, config)
    partial = out.with_name(out.name + ".partial")
    done = _read_partial(partial, header)
    with Executor(config) as executor:
        expected = load_expected(problems, executor, expected_path, progress=progress)
        plans = {t: plan_problem(p, config.limits, expected.get(t)) for t, p in problems.items()}
        jobs = [(s["sample_id"], plans[s["task_id"]], s["solution"])
                for s in samples if s["sample_id"] not in done]  # fmt: skip
        out.parent.mkdir(parents=True, exist_ok=True)
        mode = "a" if done else "w"
        with open(partial, mode, encoding="utf-8") as fh:
            if not done:
                fh.write(json.dumps({"header": header}) + "\n")
            task_of = {s["sample_id"]: s["task_id"] for s in samples}

            def save(job_id: str, record: dict) -> None:
                full = {"task_id": task_of[job_id], "sample_id": job_id, **record}
                done[job_id] = full
                fh.write(json.dumps(full) + "\n")
                fh.flush()

            executor.run(jobs, on_result=save, progress=progress)
            if config.retry_timeouts:
                again = [(s["sample_id"], plans[s["task_id"]], s["solution"]) for s in samples
                         if done[s["sample_id"]]["status"] == "timeout"
                         and not done[s["sample_id"]].get("timeout_rerun")]  # fmt: skip
                for job_id, record in executor.rerun_timeouts(again, progress=progress).items():
                    save(job_id, record)
    with atomic_write(out) as fh:
        for s in samples:
            fh.write(json.dumps(done[s["sample_id"]]) + "\n")
    partial.unlink(missing_ok=True)
    counts: dict[str, int] = {}
    for s in samples:
        status = done[s["sample_id"]]["status"]
        counts[status] = counts.get(status, 0) + 1
    return {"samples": len(samples), "status_counts": counts}


def load_expected(problems: dict[str, dict], executor: Executor, path: Path | None, *,
                  progress: bool = True) -> dict[str, dict]:  # fmt: skip
    """Expected outputs for problems that lack them: read from ``path`` or computed and saved.

    The cache is keyed by a hash of the problems' tests and reference solutions, so a changed
    dataset never reuses stale outputs.
    """
    need = {t: p for t, p in problems.items() if needs_expected(p)}
    if not need:
        return {}
    key = sha256_json(
        [[t, p["tests"], p.get("canonical_solution")] for t, p in sorted(need.items())]
    )
    if path is not None and path.exists():
        with open(path, encoding="utf-8") as fh:
            cached = json.load(fh)
        if cached.get("key") == key:
            return cached["tasks"]
    tasks = compute_expected(need, executor, progress=progress)
    for task_id, entry in tasks.items():
        if entry["bad_cases"]:
            print(f"codedpo: {task_id}: reference solution fails on cases "
                  f"{[b['index'] for b in entry['bad_cases']]}; they are dropped",
                  file=sys.stderr)  # fmt: skip
    if path is not None:
        write_json(path, {"key": key, "date": time.strftime("%Y-%m-%dT%H:%M:%S"), "tasks": tasks})
    return tasks


def write_expected(problems: dict[str, dict], config: ExecConfig, path: Path, *,
                   progress: bool = True) -> dict:  # fmt: skip
    """Compute (or reuse) the expected-outputs cache at ``path``; always leaves a file there."""
    with Executor(config) as executor:
        tasks = load_expected(problems, executor, path, progress=progress)
    if not path.exists():  # nothing needed computing: record that, so the DAG has its file
        write_json(path, {"key": None, "date": time.strftime("%Y-%m-%dT%H:%M:%S"), "tasks": {}})
    bad = sum(len(t["bad_cases"]) for t in tasks.values())
    return {"tasks_computed": len(tasks), "bad_cases_dropped": bad}
