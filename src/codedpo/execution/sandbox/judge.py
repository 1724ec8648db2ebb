"""The judge child: a problem's own test code, with the function under test behind a proxy.

Runs in the judge's sandbox, which never runs a solution (stdlib only). HumanEval's ``check``
with loops and LeetCode's ``is_same_list(candidate(...), ...)`` run here; each call of the
function under test crosses to the solution's sandbox as plain data (the parent relays it, timed
against the test's limit) and its value comes back as plain data, objects of the problem's own
types (its prelude's classes) rebuilt as this side's. Each test's outcome goes to descriptor 3.
"""

import builtins
import os
import sys

import codec
from child import _BUILTIN_EXCEPTIONS, _Lines, defined_types, describe, emit, new_module, run_source


class NotPlainData(BaseException):
    """The solution returned something that is not plain data: a wrong answer, uncatchable."""


class Aborted(BaseException):
    """The solution's process is gone (time or memory limit): nothing more can be judged."""


class SolutionError(Exception):
    """An exception of the solution's own type, as the judge sees it."""


class _Judge:
    def __init__(self, types: dict, lines: _Lines) -> None:
        self.types = types
        self.lines = lines
        self.test = -1
        self.events: dict[int, dict] = {}

    def call(self, target: str, args: tuple, kwargs: dict):
        encoded = codec.encode([list(args), kwargs], self.types)
        emit({"call": {"target": target, "args": encoded}, "i": self.test})
        reply = self.lines.read()
        event = self.events.setdefault(self.test, {})
        event["calls"] = event.get("calls", 0) + 1
        if reply is None or "stop" in reply:
            event["stopped"] = True
            raise Aborted()
        if "v" in reply:
            try:
                return codec.decode(reply["v"], self.types)
            except (ValueError, TypeError, RecursionError) as exc:
                event["bad"] = f"malformed value: {exc}"
                raise NotPlainData() from None
        if "bad" in reply:
            event["bad"] = str(reply["bad"])[:300]
            raise NotPlainData()
        real, message = reply["exc"][0], reply["exc"][1]
        event["raised"] = reply["exc"]
        cls = getattr(builtins, real, None)
        if (isinstance(cls, type) and issubclass(cls, Exception)
                and cls in _BUILTIN_EXCEPTIONS):  # fmt: skip
            try:
                raise cls(message)
            except TypeError:  # an exception type that needs other arguments
                pass
        raise SolutionError(f"{reply['exc'][2]}: {message}")


class _Proxy:
    """The function under test, as the judge's code sees it: every call crosses."""

    def __init__(self, judge: _Judge, target: str) -> None:
        self._judge = judge
        self._target = target

    def __call__(self, *args, **kwargs):
        return self._judge.call(self._target, args, kwargs)

    def __repr__(self) -> str:
        return f"<solution {self._target}>"


def judge(spec: dict, start: int, end: int, fast: bool) -> None:
    """Run the problem's test code with every function under test replaced by a proxy."""
    lines = _Lines()
    module = new_module("judge", os.path.join(sys.modules["child"].RUN_DIR, "judge.py"))
    try:
        if spec.get("prelude"):
            run_source(module, spec["prelude"], "prelude.py")
        types = defined_types(module)
        for name in spec.get("imports") or ():
            module.__dict__.setdefault(name, __import__(name))
        jdg = _Judge(types, lines)
        for name in spec.get("proxies") or ():
            module.__dict__[name] = _Proxy(jdg, name)
        if spec.get("helpers"):
            run_source(module, spec["helpers"], "tests.py")
    except BaseException as exc:  # noqa: BLE001 - the problem's own test code is broken
        emit({"judge_error": describe(exc)})
        return
    tests = spec["tests"]
    cases = spec.get("cases")  # a checker's data: [input, output, expected] per test
    for i in range(start, end):
        jdg.test = i
        if cases is not None:
            module.CASE = cases[i - start]
        record: dict = {"i": i}
        try:
            run_source(module, tests[i], f"test_{i}.py")
            record["ok"] = True
        except Aborted:
            record["stopped"] = True
        except NotPlainData:
            pass
        except AssertionError as exc:
            record["assert"] = describe(exc)[1]
        except BaseException as exc:  # noqa: BLE001
            record["exc"] = describe(exc)
        record.update(jdg.events.pop(i, {}))
        emit(record)
        if record.get("stopped") or (fast and not record.get("ok")):
            return
