"""Judged tests, on both sides (stdlib only): a solution child that stays up and answers calls,
and a judge child whose calls the worker relays to the parent, one at a time.

Mixed into :class:`harness.Worker`: the same forking, clock and sweeping.
"""

import json
import os
import select
import time

import child
import judge
from channel import MAX_CREDIT

GRACE = 0.05
_LOAD_REPORTS = (b'{"loaded"', b'{"syntax"', b'{"load_error"')


class Sessions:
    # -- a judge's calls: a solution child that stays up and answers ------------------------
    def serve(self, spec: dict, code: str, limits: dict) -> dict:
        self.end_session()
        cpu = limits["load_seconds"] + limits.get("deadline_seconds", 60.0)
        kid = self._fork(lambda: child.serve(code, spec), limits, cpu, duplex=True)
        deadline = kid.start + limits["load_seconds"] + GRACE
        timed_out = False
        while True:
            lines = kid.wait(deadline - time.monotonic(), limits["results_bytes"])
            # The harness's load report comes first; a line before it is the solution's own.
            if lines and not lines[0].startswith(_LOAD_REPORTS):
                kid.kill()
                run = self._finish(kid, limits)
                run["tamper"] = "a line on the channel before the solution loaded"
                return {"runs": [run]}
            if lines and lines[0].startswith(b'{"loaded"'):
                kid.chunks, kid.size = [], 0  # replies are relayed, not kept
                kid.lines = lines[1:]  # a line after it is stray: the first call says so
                self.session, self.session_limits = kid, limits
                return {"loaded": True}
            if lines or kid.eof or kid.status is not None or kid.killed:
                break
            if kid.size > limits["results_bytes"]:
                kid.kill()
                break
            if time.monotonic() >= deadline:
                timed_out = True
                kid.kill()
                break
        return {"runs": [self._finish(kid, limits, timed_out=timed_out,
                                      timeout_at="load" if timed_out else None)]}  # fmt: skip

    def call(self, msg: dict) -> dict:
        """One call of the judge's, answered by the serving child: exactly one reply line, to
        this call. Anything else on its channel (a line before the call was sent, a second
        reply, bytes outside the framing) is ``tamper``: the solution wrote on the channel."""
        kid = self.session
        if kid is None:
            return {"died": True}
        limits = self.session_limits
        cap = limits["results_bytes"]
        limit = float(msg["limit"])
        stray = self._stray(kid, cap)
        if stray:
            return {"tamper": f"{stray} before call was sent", "t": 0.0}
        before = kid.size
        t0, wait0 = time.monotonic(), kid.credit(self.pid1, fresh=True)

        def credit(fresh: bool = False) -> float:  # waits caused from outside the sample
            return min(max(0.0, kid.credit(self.pid1, fresh) - wait0), MAX_CREDIT * limit)

        if not kid.send({"target": msg["target"], "args": msg["args"]}):
            return {"died": True}
        while True:
            deadline = t0 + limit + GRACE + credit()
            lines = kid.wait(deadline - time.monotonic(), before + cap)
            elapsed = time.monotonic() - t0 - credit(fresh=True)
            if lines:
                kid.chunks = []
                if len(lines) > 1 or kid.partial:
                    return {"tamper": "a second reply to one call", "t": elapsed}
                try:
                    reply = json.loads(lines[0])
                except (json.JSONDecodeError, RecursionError):
                    reply = None
                if not isinstance(reply, dict) or len(reply) != 1 or not (
                        reply.keys() <= {"v", "exc", "bad"}):  # fmt: skip
                    return {"tamper": "a line outside the reply framing", "t": elapsed}
                reply["t"] = elapsed
                return reply
            if kid.size - before > cap:
                kid.kill()
                kid.lines, kid.partial = [], []  # the reply too large to carry, not a stray line
                return {"exceeded": True, "t": elapsed}
            if kid.eof or kid.status is not None:
                return {"died": True, "t": elapsed}
            if time.monotonic() >= t0 + limit + GRACE + credit(fresh=True):
                kid.kill()
                return {"timeout": True, "t": elapsed}

    @staticmethod
    def _stray(kid, cap: int) -> str | None:
        """What the serving child wrote that no call asked for (audit reports aside)."""
        try:
            while select.select([kid.fd], [], [], 0)[0]:  # whatever has arrived, no waiting
                chunk = os.read(kid.fd, 1 << 20)
                if not chunk or kid.size > cap:
                    break
                kid._feed(chunk)
        except OSError:
            pass
        if kid.lines or kid.partial:
            kid.lines, kid.partial, kid.chunks = [], [], []
            return "a line"
        return None

    def end_session(self) -> dict:
        kid, self.session = self.session, None
        if kid is None:
            return {"runs": []}
        stray = self._stray(kid, self.session_limits["results_bytes"])
        if not kid.eof and not kid.poll_exit():
            # Still serving, every call answered: nothing is left to observe. (A child whose
            # channel closed is left to exit, so that a death by a signal is seen as such.)
            kid.kill()
        run = self._finish(kid, self.session_limits)
        if stray:
            run["tamper"] = f"{stray} after the last call"
        return {"runs": [run]}

    # -- the judge's side: the problem's test code, relaying its calls ----------------------
    def judge(self, spec: dict, limits: dict, protocol) -> dict:
        start = int(limits.get("start", 0))
        end = int(limits.get("end", len(spec["tests"])))
        fast = bool(limits.get("fast"))
        per_test = float(limits["judge_seconds"])
        cpu = per_test * max(1, end - start) + limits.get("deadline_seconds", 60.0)
        if "cases" in limits:
            spec = {**spec, "cases": limits["cases"]}
        kid = self._fork(lambda: judge.judge(spec, start, end, fast), limits, cpu, duplex=True)
        cap = limits["results_bytes"]
        spent, mark = 0.0, time.monotonic()  # the judge's own time, not the solution's
        records: list[bytes] = []
        timed_out = False
        while True:
            left = per_test * (len(records) + 1) - spent - (time.monotonic() - mark)
            lines = kid.wait(left, cap)
            spent += time.monotonic() - mark
            mark = time.monotonic()
            for line in lines:
                if line.startswith(b'{"call"'):
                    protocol.send({"relay": json.loads(line)})
                    reply = protocol.read() or {}
                    mark = time.monotonic()
                    payload = {k: v for k, v in reply.items() if k != "op"}
                    if not kid.send(payload):
                        break
                else:
                    records.append(line)
            if kid.size > cap:
                kid.kill()
                break
            if kid.eof or kid.status is not None:
                break
            if not lines and left <= 0:
                timed_out = True
                kid.kill()
                break
        run = self._finish(kid, limits, timed_out=timed_out,
                           timeout_at=len(records) + start if timed_out else None)  # fmt: skip
        run["results"] = b"\n".join(records).decode("utf-8", errors="replace")
        return {"judged": run}

