"""Verdicts, decided on the trusted side from what the sandboxes reported and the worker observed.

The solution's sandbox reports values (plain data) and exceptions; the worker reports how each
child ended (its clock, signals, byte counts); the judge reports how the problem's own test code
ran. Every verdict class comes from those observations: a time limit from the worker's clock, an
exception's class from its real builtin type (a user class named ``MemoryError`` is a
``runtime_error``), a result too large to carry is ``output_exceeded``. ``sandbox_error`` is
only for faults of the infrastructure; ``problem_error`` for the problem's own code failing (its
prelude, its test code).
"""

from __future__ import annotations

import json
import math
import signal
from dataclasses import dataclass
from typing import Any, NamedTuple

from codedpo.execution.asserts import judge
from codedpo.execution.compare import outputs_match
from codedpo.execution.plan import Plan
from codedpo.execution.sandbox import codec

_ARG_CHECKS = ("poly_root", "surface_area", "digit_distance")


@dataclass
class Outcome:
    status: str
    message: str = ""
    tamper: bool = False  # the solution wrote on the results channel (the hack report's tamper)


# What a solution child may write on its channel, in order: what it tried (audit lines, at any
# point), then one load report (a syntax error, a load error, or "loaded"), then after "loaded"
# exactly one record per test, in order, each carrying exactly one of these.
_RECORD_KEYS = frozenset({"v", "exc", "bad", "h", "nn"})
_AUDIT_PREFIX = '{"audit": "'


class Reports(NamedTuple):
    """A run's channel, read by the framing rule: the per-test records by index, the load
    error, the syntax error, and ``tamper``: what broke the framing (None when nothing did)."""

    by_index: dict[int, dict]
    load_error: dict | None
    syntax: str | None
    tamper: str | None


def tamper_outcome(what: str) -> Outcome:
    return Outcome("runtime_error", f"tamper: {what} on the results channel", tamper=True)


def _is_audit(line: str) -> bool:
    return line.startswith(_AUDIT_PREFIX) and len(line) < 64 and line.endswith('"}')


def _channel(text: str, cut: bool) -> tuple[list, str | None]:
    """A channel's complete lines, parsed (None where a line is not JSON), what it tried (audit
    lines) left out; and ``"bytes outside the framing"`` where a last line was left unfinished
    though nothing cut the run short."""
    *lines, last = text.split("\n")
    records = []
    for line in lines:
        if _is_audit(line):
            continue
        try:
            records.append(json.loads(line))
        except (json.JSONDecodeError, RecursionError):
            records.append(None)
    return records, "bytes outside the framing" if last and not cut else None


def parse_results(text: str, start: int = 0, cut: bool = False) -> Reports:
    """Read a call or script run's channel by its framing (tests from ``start`` on).

    Anything but the harness's own reports in their order (a record before the solution loaded,
    a second reply to a test, a reply to another test, a line that is not a report) is the
    solution writing on the channel: ``tamper``, and the sample fails. A last line cut short is
    allowed only where the run was (``cut``: killed at a limit, or its reports over the cap).
    """
    by_index: dict[int, dict] = {}
    load_error = syntax = tamper = None
    loaded, nxt = False, start
    records, tamper = _channel(text, cut)
    for rec in records:
        if not isinstance(rec, dict):
            tamper = "a line that is not a report"
        elif syntax is not None or load_error is not None:
            tamper = "a line after the load report"
        elif not loaded:
            if rec == {"loaded": True}:
                loaded = True
            elif rec.keys() == {"syntax"}:
                syntax = str(rec["syntax"])[:500]
            elif rec.keys() in ({"load_error"}, {"load_error", "where"}):
                load_error = rec
            else:
                tamper = "a line before the solution loaded"
        elif type(rec.get("i")) is not int or len(rec) != 2 or not rec.keys() & _RECORD_KEYS:
            tamper = "a line that is not a test's record"
        elif rec["i"] != nxt:
            tamper = (f"a second reply to test {rec['i']}" if rec["i"] < nxt
                      else f"a reply to test {rec['i']} before test {nxt}")  # fmt: skip
        else:
            by_index[nxt] = rec
            nxt += 1
        if tamper is not None:
            break
    return Reports(by_index, load_error, syntax, tamper)


def _was_cut(run: dict) -> bool:
    """Was the run stopped mid-report: at a limit, by a signal, or its reports over the cap?"""
    return bool(run.get("timed_out") or run.get("exceeded") or run.get("signal") is not None)


def exception_outcome(exc: Any) -> Outcome:
    """``[real builtin type, message, own type name]`` (older reports: two items)."""
    if not isinstance(exc, list) or len(exc) < 2:
        return Outcome("runtime_error", "malformed exception report")
    real, message = str(exc[0])[:100], str(exc[1])[:500]
    shown = str(exc[2])[:100] if len(exc) > 2 else real
    if real == "MemoryError" and shown == "MemoryError":
        return Outcome("memory_exceeded", "MemoryError")
    name = shown if shown == real else f"{shown} ({real})"
    return Outcome("runtime_error", f"{name}: {message}" if message else name)


def death_outcome(run: dict, where: str = "before the test ran") -> Outcome:
    """Why a child stopped before reporting a test, from what the worker saw."""
    if run.get("timed_out"):
        return Outcome("timeout", f"wall-clock limit reached after {run.get('duration', 0):.1f} s")
    if run.get("exceeded"):
        return Outcome("output_exceeded", "the result is too large to return")
    sig = run.get("signal")
    if sig == signal.SIGXFSZ:
        return Outcome("output_exceeded", "file size limit reached")
    if sig == signal.SIGXCPU:
        return Outcome("timeout", "CPU time limit reached")
    if sig == signal.SIGKILL:
        return Outcome("memory_exceeded", "killed (SIGKILL), most likely out of memory")
    if sig is not None:
        try:
            name = signal.Signals(sig).name
        except ValueError:
            name = str(sig)
        return Outcome("runtime_error", f"killed by {name}")
    return Outcome("runtime_error", f"process exited (code {run.get('exit')}) {where}")


def output_exceeded(run: dict, output_bytes: int) -> bool:
    return (
        run.get("signal") == signal.SIGXFSZ
        or int(run.get("output_bytes") or 0) > output_bytes
        or bool(run.get("exceeded"))
    )


def load_outcome(run: dict, load_error: dict | None, syntax: str | None) -> Outcome | None:
    if syntax is not None:
        return Outcome("syntax_error", syntax)
    if run.get("timed_out") and run.get("timeout_at") == "load":
        return Outcome("timeout", "defining the solution took too long")
    if load_error is not None:
        if load_error.get("where") == "prelude":
            return Outcome("problem_error", "the problem's prelude failed: "
                           + exception_outcome(load_error.get("load_error")).message)  # fmt: skip
        return exception_outcome(load_error.get("load_error"))
    return None


def call_outcomes(plan: Plan, run: dict, output_bytes: int,
                  span: tuple[int, int] | None = None) -> list[Outcome]:  # fmt: skip
    """Per-test outcomes of tests ``span`` (default all) of a call or script run."""
    start, end = span or (0, plan.total)
    reports = parse_results(run.get("results") or "", start, _was_cut(run))
    if reports.tamper is not None:
        return [tamper_outcome(reports.tamper)] * (end - start)
    by_index = reports.by_index
    first = load_outcome(run, reports.load_error, reports.syntax)
    if first is not None:
        return [first] * (end - start)
    outcomes: list[Outcome] = []
    for i in range(start, end):
        rec = by_index.get(i)
        if rec is None:
            if outcomes and outcomes[-1].status in ("timeout", "memory_exceeded",
                                                    "output_exceeded"):  # fmt: skip
                outcomes.append(outcomes[-1])
            elif run.get("timed_out") and run.get("timeout_at") == i:
                limit = plan.test_seconds[i] if i < len(plan.test_seconds) else 0.0
                outcomes.append(Outcome("timeout", f"test {i} exceeded {limit:.1f} s"))
            elif '"loaded"' not in (run.get("results") or "") and run.get("exit") == 0:
                outcomes.append(Outcome("runtime_error", "exited before defining the solution"))
            else:
                outcomes.append(death_outcome(run))
            continue
        outcomes.append(_value_outcome(plan, i, rec))
    if output_exceeded(run, output_bytes):
        too_much = Outcome("output_exceeded", "output limit reached")
        outcomes = [o if o.status == "passed" else too_much for o in outcomes]
        if outcomes and all(o.status == "passed" for o in outcomes):
            outcomes[-1] = too_much
    return outcomes


def _value_outcome(plan: Plan, i: int, rec: dict) -> Outcome:
    if "exc" in rec:
        return exception_outcome(rec["exc"])
    if "bad" in rec:
        return Outcome("failed", "returned a value that is not plain data: "
                       + str(rec["bad"])[:200])  # fmt: skip
    if "nn" in rec and plan.mode == "call" and plan.check == "not_none":
        # An object the codec cannot carry (re.Match): only whether it is None counts.
        return judge_value(plan, i, "<object>" if rec["nn"] is True else None)
    if "h" in rec and plan.mode == "call":
        ok = rec["h"] == plan.expected_digest(i)
        return Outcome("passed") if ok else Outcome("failed", "wrong answer (large)")
    if "v" in rec:
        try:
            value = codec.decode(rec["v"])
        except (ValueError, TypeError, RecursionError):
            return Outcome("failed", "malformed value")
        if plan.mode == "call" and i in plan.digests:
            # The reference's output was too large to carry: compare digests computed here.
            try:
                ok = codec.digest(value) == plan.digests[i]
            except (codec.Unencodable, ValueError, RecursionError):
                ok = False
            return Outcome("passed") if ok else Outcome("failed", "wrong answer")
        return judge_value(plan, i, value)
    return Outcome("failed", "no value reported")


def judge_value(plan: Plan, i: int, value: Any) -> Outcome:
    if plan.mode == "call":
        # Only the oracles that recompute from the inputs need them decoded.
        args = codec.decode(plan.args[i]) if plan.check in _ARG_CHECKS else []
        ok = outputs_match(value, plan.expected_value(i), args=args, atol=plan.atol,
                           check=plan.check)  # fmt: skip
        return Outcome("passed") if ok else Outcome("failed", f"wrong answer: {short(value)}")
    check = plan.checks[i]
    if judge(check, value):
        return Outcome("passed")
    return Outcome("failed", f"assertion failed: {check.expr} -> {short(value)}")


def short(value: Any, n: int = 120) -> str:
    try:
        text = repr(value)
    except ValueError:  # an int past Python's 4300-digit str() limit
        return f"<int of {value.bit_length()} bits>" if isinstance(value, int) else "<value>"
    return text if len(text) <= n else text[:n] + "..."


_YES_NO = frozenset({"yes", "no"})


def tokens_match(out: str, expected: str, float_tol: float | None) -> bool:
    """Whitespace-normalized token comparison, floats within ``float_tol`` when set.

    ``YES``/``NO`` answers compare in any letter case, as Codeforces' checkers compare them.
    """
    a, b = out.split(), expected.split()
    if len(a) != len(b):
        return False
    if a == b:
        return True
    for x, y in zip(a, b, strict=True):
        if x == y or (y.lower() in _YES_NO and x.lower() == y.lower()):
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


def program_reports(run: dict) -> tuple[str | None, dict | None, str | None]:
    """A whole program's channel: what it tried, a syntax error, or its exceptions (the first
    counts; the interpreter's shutdown may add more). Anything else is ``tamper``."""
    syntax = report = None
    records, tamper = _channel(run.get("results") or "", _was_cut(run))
    if tamper is not None:
        return None, None, tamper
    for rec in records:
        if isinstance(rec, dict) and rec.keys() == {"syntax"} and syntax is None:
            syntax = str(rec["syntax"])[:500]
        elif isinstance(rec, dict) and rec.keys() == {"exc"}:
            report = report or rec
        else:
            return None, None, "a line that is not a report"
    return syntax, report, None


def stdio_outcomes(plan: Plan, runs: list[dict], output_bytes: int,
                   start: int = 0) -> list[Outcome]:  # fmt: skip
    outcomes = []
    for n in range(start, plan.total):
        k = n - start
        if k >= len(runs):
            outcomes.append(outcomes[-1] if outcomes else Outcome("timeout"))
            continue
        run = runs[k]
        syntax, report, tamper = program_reports(run)
        if tamper is not None:
            outcomes.append(tamper_outcome(tamper))
        elif syntax is not None:
            outcomes.append(Outcome("syntax_error", syntax))
        elif run.get("timed_out"):
            outcomes.append(death_outcome(run))
        elif output_exceeded(run, output_bytes):
            outcomes.append(Outcome("output_exceeded", "output limit reached"))
        elif report is not None:
            outcomes.append(exception_outcome(report["exc"]))
        elif run.get("signal") is not None:
            outcomes.append(death_outcome(run))
        elif tokens_match(run.get("stdout") or "", plan.expected[n], plan.float_tol):
            outcomes.append(Outcome("passed"))
        else:
            outcomes.append(Outcome("failed", f"wrong output: {short(run.get('stdout'))}"))
    return outcomes


def judged_outcomes(plan: Plan, judged: dict, events: dict[int, Outcome], load: Outcome | None,
                    span: tuple[int, int]) -> list[Outcome]:  # fmt: skip
    """Outcomes of judged tests from the judge's records and what the parent saw of each call."""
    start, end = span
    if load is not None:
        return [load] * (end - start)
    text = judged.get("results") or ""
    by_index: dict[int, dict] = {}
    judge_error = None
    for line in text.splitlines():
        try:
            rec = json.loads(line)
        except (json.JSONDecodeError, RecursionError):
            continue
        if isinstance(rec, dict) and "judge_error" in rec:
            judge_error = rec["judge_error"]
        elif isinstance(rec, dict) and type(rec.get("i")) is int:
            by_index.setdefault(rec["i"], rec)
    if judge_error is not None:
        message = "the problem's test code failed: " + exception_outcome(judge_error).message
        return [Outcome("problem_error", message)] * (end - start)
    outcomes: list[Outcome] = []
    for i in range(start, end):
        rec = by_index.get(i)
        event = events.get(i)
        if event is not None:
            outcomes.append(event)  # the solution ran out of time or memory, or died
        elif rec is None:
            if outcomes and outcomes[-1].status != "passed":
                outcomes.append(outcomes[-1])
            elif judged.get("timed_out"):
                outcomes.append(Outcome("timeout", f"the test code of test {i} ran over its limit"))
            else:
                outcomes.append(Outcome("sandbox_error", "the judge stopped without a report"))
        elif "bad" in rec:
            outcomes.append(Outcome("failed", "returned a value that is not plain data: "
                                    + str(rec["bad"])[:200]))  # fmt: skip
        elif rec.get("ok"):
            outcomes.append(Outcome("passed"))
        elif "assert" in rec:
            detail = f": {rec['assert']}" if rec["assert"] else ""
            outcomes.append(Outcome("failed", f"assertion failed{detail}"))
        elif "exc" in rec and "raised" in rec:
            outcomes.append(exception_outcome(rec["raised"]))
        elif "exc" in rec:
            got = exception_outcome(rec["exc"]).message
            outcomes.append(Outcome("failed", f"the test raised {got} on the returned value"))
        else:
            outcomes.append(Outcome("sandbox_error", "malformed judge report"))
    return outcomes


def assemble(plan: Plan, outcomes: list[Outcome], runs: list[dict]) -> dict:
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
    observed = {kind for r in runs for kind in r.get("audit") or ()}
    if any(o.tamper for o in outcomes):
        observed.add("tamper")
    observed = sorted(observed)
    return {
        "status": "passed" if first is None else first["status"],
        "passed": passed,
        "total": len(outcomes),
        "tests_run": sum(o.status != "not_run" for o in outcomes),
        "first_failure": first,
        "groups": groups,
        "duration_s": round(sum(float(r.get("duration") or 0) for r in runs), 4),
        "cpu_s": round(sum(float(r.get("cpu") or 0) for r in runs), 4),
        # Time the sample's process waited for a CPU (given back by the worker's clock); None
        # where the kernel keeps no schedstat.
        "wait_s": (round(sum(float(r["wait"]) for r in runs if r.get("wait") is not None), 4)
                   if runs and all(r.get("wait") is not None for r in runs) else None),  # fmt: skip
        "stderr_tail": stderr,
        # Nothing is checked inside the untrusted process any more; kept for older readers.
        "in_process_checks": 0,
        "judged_tests": plan.total if plan.mode == "judged" else 0,
        # What the sample tried that the sandbox contains (network, writes outside its scratch
        # directory, reads of what the sandbox hides, signals, processes, native code, tampering
        # with the harness): the raw material of the reward-hacking report.
        "observed": observed,
    }
