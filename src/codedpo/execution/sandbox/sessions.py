"""Judged tests, on both sides (stdlib only): a solution child that stays up and answers calls,
and a judge child whose calls the worker relays to the parent, one at a time.

Mixed into :class:`harness.Worker`: the same forking, clock and sweeping.
"""

import json
import time

import child
import judge

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
            # Only the harness's own first report counts; anything written before it is noise.
            first = next((ln for ln in lines if ln.startswith(_LOAD_REPORTS)), None)
            if first is not None and first.startswith(b'{"loaded"'):
                kid.chunks, kid.size, kid.lines = [], 0, []  # replies are relayed, not kept
                self.session, self.session_limits = kid, limits
                return {"loaded": True}
            if first is not None or kid.eof or kid.status is not None or kid.killed:
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
        kid = self.session
        if kid is None:
            return {"died": True}
        limits = self.session_limits
        cap = limits["results_bytes"]
        before = kid.size
        t0, wait0 = time.monotonic(), kid.waited(fresh=True)
        if not kid.send({"target": msg["target"], "args": msg["args"]}):
            return {"died": True}
        while True:
            # The harness's clock: wall time minus the time the child waited for a CPU.
            deadline = t0 + float(msg["limit"]) + GRACE + kid.waited() - wait0
            lines = kid.wait(deadline - time.monotonic(), before + cap)
            elapsed = time.monotonic() - t0 - (kid.waited(fresh=True) - wait0)
            if lines:
                line = lines[0]
                kid.chunks = []
                try:
                    reply = json.loads(line)
                except (json.JSONDecodeError, RecursionError):
                    reply = None
                if not isinstance(reply, dict):
                    return {"bad": "malformed reply", "t": elapsed}
                reply = {k: reply[k] for k in ("v", "exc", "bad") if k in reply}
                reply = reply or {"bad": "malformed reply"}
                reply["t"] = elapsed
                return reply
            if kid.size - before > cap:
                kid.kill()
                return {"exceeded": True, "t": elapsed}
            if kid.eof or kid.status is not None:
                return {"died": True, "t": elapsed}
            waited = kid.waited(fresh=True) - wait0
            if time.monotonic() >= t0 + float(msg["limit"]) + GRACE + waited:
                kid.kill()
                return {"timeout": True, "t": elapsed}

    def end_session(self) -> dict:
        kid, self.session = self.session, None
        if kid is None:
            return {"runs": []}
        if not kid.eof and not kid.poll_exit():
            # Still serving, every call answered: nothing is left to observe. (A child whose
            # channel closed is left to exit, so that a death by a signal is seen as such.)
            kid.kill()
        return {"runs": [self._finish(kid, self.session_limits)]}

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

