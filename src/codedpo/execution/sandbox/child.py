"""What runs in a forked child inside the sandbox (stdlib only; bound beside ``harness.py``).

Three kinds of child, one per role:

- the **solution** child loads the untrusted code as a real module and either runs a list of
  calls/expressions, streaming each value (plain data) to the worker (:func:`run_tests`), or
  serves calls one at a time for a judge (:func:`serve`), or runs as ``__main__`` on stdin
  (:func:`run_program`);
- the **judge** child runs a problem's own test code (HumanEval's ``check``, LeetCode's asserts)
  and never runs the solution: every call of the function under test crosses to the solution's
  sandbox as plain data (:mod:`judge`).

Values, exceptions and results go to descriptor 3, one JSON line each. Nothing here decides a
verdict: the trusted parent does, from these lines and from what the worker observed.

Module semantics: the solution is the module ``solution`` (``__main__`` for programs),
registered in ``sys.modules`` and compiled with ``dont_inherit=True``, so that ``dataclasses``,
``pickle``, ``inspect``, ``typing.get_type_hints``, ``enum`` and ``functools.singledispatch``
behave as in a script and no harness ``__future__`` flag leaks into it. Order, as each source's
own evaluator runs it: the problem's ``prelude`` (prompt-level imports and helpers), then the
solution, then ``setup`` (code that builds test inputs from the solution's definitions).
"""

import _thread
import builtins
import json
import linecache
import os
import sys
import types as _types

import audit
import codec

RUN_DIR = "/tmp/run"
# Exceptions as the interpreter defines them, captured before any untrusted code runs: a
# verdict class comes from the real type, never from a name the solution chose.
_BUILTIN_EXCEPTIONS = {
    cls: name
    for name, cls in vars(builtins).items()
    if isinstance(cls, type) and issubclass(cls, BaseException)
}
_MEMORY_RECORD = b'{"i": %d, "exc": ["MemoryError", "", "MemoryError"]}\n'


class _Quitter:
    """``exit()`` / ``quit()`` as ``site`` defines them (the sandbox starts Python with -S)."""

    def __init__(self, name: str) -> None:
        self.name = name

    def __repr__(self) -> str:
        return f"Use {self.name}() or Ctrl-D (i.e. EOF) to exit"

    def __call__(self, code=None):
        try:
            sys.stdin.close()
        except BaseException:  # noqa: BLE001
            pass
        raise SystemExit(code)


def install_builtins() -> None:
    builtins.exit = _Quitter("exit")
    builtins.quit = _Quitter("quit")


# -- the channel --------------------------------------------------------------------------------
# The process the worker forked. A copy the solution forks runs this harness too, from wherever
# the fork left it: it must not report or read requests (its lines would be a second reply), so it
# ends at its first step on the channel.
ORIGIN = 0
# One writer at a time: a record written in pieces is never split by another thread's report.
LOCK = _thread.RLock()


def _mine() -> None:
    if os.getpid() != ORIGIN:
        os._exit(0)


def _write(data: bytes) -> None:
    _mine()
    with LOCK:
        while data:
            n = os.write(3, data)
            data = data[n:]


# One encoder for every report (json.dumps with options builds a new one per call).
_ENCODE = json.JSONEncoder(allow_nan=False).encode
# Values up to this size go out in one write (one system call per test).
_ONE_WRITE = 1 << 16


def emit(obj: dict) -> None:
    _write((_ENCODE(obj) + "\n").encode())


class _Lines:
    """Lines read from descriptor 3 (the serving and judging children's requests)."""

    def __init__(self) -> None:
        self.buf = b""

    def read(self) -> dict | None:
        _mine()
        while b"\n" not in self.buf:
            chunk = os.read(3, 1 << 20)
            if not chunk:
                return None
            self.buf += chunk
        line, self.buf = self.buf.split(b"\n", 1)
        return json.loads(line)


def describe(exc: BaseException) -> list[str]:
    """``[real builtin type, message, the type's own name]``."""
    real = "BaseException"
    for cls in type(exc).__mro__:
        name = _BUILTIN_EXCEPTIONS.get(cls)
        if name is not None:
            real = name
            break
    try:
        message = str(exc)[:500]
    except BaseException:  # noqa: BLE001 - a hostile __str__
        message = "<unprintable>"
    return [real, message, str(getattr(type(exc), "__name__", "?"))[:100]]


# -- modules --------------------------------------------------------------------------------------
def new_module(name: str, filename: str) -> _types.ModuleType:
    module = _types.ModuleType(name)
    module.__file__ = filename
    module.__builtins__ = builtins
    sys.modules[name] = module
    return module


def run_source(module, source: str, filename: str) -> None:
    """Compile and run ``source`` in ``module``, with none of the harness's future flags."""
    linecache.cache[filename] = (len(source), None, source.splitlines(True), filename)
    exec(compile(source, filename, "exec", dont_inherit=True), module.__dict__)


def defined_types(module) -> dict:
    """Classes the module's code itself defined (the problem's own types, from its prelude)."""
    return {
        name: value
        for name, value in vars(module).items()
        if isinstance(value, type) and value.__module__ == module.__name__
    }


def _syntax(code: str, filename: str):
    try:
        return compile(code, filename, "exec", dont_inherit=True)
    except (SyntaxError, ValueError) as exc:
        line = getattr(exc, "lineno", None)
        emit({"syntax": f"{type(exc).__name__}: {getattr(exc, 'msg', exc)} (line {line})"})
        return None


class Loaded:
    def __init__(self, module, fn, types: dict) -> None:
        self.module = module
        self.fn = fn
        self.types = types


def load(code: str, spec: dict) -> Loaded | None:
    """Prelude, solution, setup; then the entry point. Emits why not and returns None on failure."""
    filename = os.path.join(RUN_DIR, "solution.py")
    module = new_module("solution", filename)
    try:
        if spec.get("prelude"):
            run_source(module, spec["prelude"], "prelude.py")
    except BaseException as exc:  # noqa: BLE001 - the problem's fault, reported as such
        emit({"load_error": describe(exc), "where": "prelude"})
        return None
    types = defined_types(module)
    code_obj = _syntax(code, filename)
    if code_obj is None:
        return None
    linecache.cache[filename] = (len(code), None, code.splitlines(True), filename)
    try:
        exec(code_obj, module.__dict__)
        if spec.get("setup"):
            run_source(module, spec["setup"], "setup.py")
    except BaseException as exc:  # noqa: BLE001 - SystemExit and friends are the code's failure
        emit({"load_error": describe(exc)})
        return None
    entry = spec.get("entry_point")
    fn = None
    if entry:
        try:
            if entry.isidentifier():
                fn = module.__dict__[entry]
            else:
                # An expression such as LeetCode's "Solution().twoSum", in the module's scope.
                fn = eval(compile(entry, "entry_point", "eval", dont_inherit=True), module.__dict__)
        except KeyError:
            emit({"load_error": ["NameError", f"entry point {entry!r} not defined", "NameError"]})
            return None
        except BaseException as exc:  # noqa: BLE001
            emit({"load_error": describe(exc)})
            return None
        if not callable(fn):
            emit({"load_error": ["TypeError", f"entry point {entry!r} is not callable",
                                 "TypeError"]})  # fmt: skip
            return None
    audit.check_tamper()  # what its import replaced, reported before anything may break
    emit({"loaded": True})
    return Loaded(module, fn, types)


def _test_namespace(loaded: Loaded, spec: dict) -> dict:
    """Where a test expression is evaluated: the module's names plus the tests' own imports.

    A copy: the imports a test needs (``math`` for ``math.isclose``) must not become the
    solution's globals, or they would rescue a solution that forgot them.
    """
    ns = dict(loaded.module.__dict__)
    for name in spec.get("imports") or ():
        if name not in ns:
            ns[name] = __import__(name)
    if spec.get("test_setup"):
        exec(compile(spec["test_setup"], "test_setup.py", "exec", dont_inherit=True), ns)
    for name in spec.get("wrappers") or ():
        ns[name] = getattr(builtins, name)  # the real ones, whatever the solution rebound
    if loaded.fn is not None:
        # HumanEval's and LeetCode's tests name the function under test "candidate".
        ns["candidate"] = loaded.fn
        entry = spec.get("entry_point") or ""
        if entry.isidentifier():
            ns[entry] = loaded.fn
    return ns


# -- the solution child ---------------------------------------------------------------------------
def _larger_than(value, limit: int) -> bool:
    """Would ``value``'s JSON text exceed ``limit`` bytes? A bounded walk, no text built."""
    size, stack, seen = 0, [value], 0
    while stack:
        item = stack.pop()
        seen += 1
        t = type(item)
        if t is str or t is bytes:
            size += len(item) + 2
        elif t is list or t is tuple or t is set or t is frozenset:
            size += 2 + len(item)
            stack.extend(item)
        elif t is dict:
            size += 2 + 2 * len(item)
            stack.extend(item.keys())
            stack.extend(item.values())
        else:
            size += 8
        if size > limit:
            return True
        if seen > limit:  # many tiny items: treat as large rather than walk them all
            return True
    return False


def _emit_value(i: int, out, allow_digest: bool, not_none: bool, digest_over: int) -> None:
    if i % 32 == 0:  # and after the last test (run_tests)
        audit.check_tamper()
    if allow_digest and _larger_than(out, digest_over):
        # A large float-free output is compared by digest, computed here without building its
        # text (Mbpp/255's case 88 returns 1.6M tuples: 1 GB as JSON).
        try:
            emit({"i": i, "h": codec.digest(out)})
            return
        except codec.HasFloat:
            pass  # floats may need a tolerance: the value itself must cross
        except codec.Unencodable as exc:
            emit({"i": i, "bad": str(exc)[:300]})
            return
        except RecursionError:
            emit({"i": i, "bad": "value nested too deeply"})
            return
    try:
        value = codec.encode(out)
    except codec.Unencodable as exc:
        if not_none:
            emit({"i": i, "nn": out is not None})
        else:
            emit({"i": i, "bad": str(exc)[:300]})
        return
    except RecursionError:
        emit({"i": i, "bad": "value nested too deeply"})
        return
    try:
        text = _ENCODE(value)
    except (ValueError, RecursionError) as exc:
        emit({"i": i, "bad": f"value cannot be serialized: {exc}"})
        return
    if len(text) < _ONE_WRITE:
        _write(b'{"i": %d, "v": %s}\n' % (i, text.encode()))
        return
    with LOCK:  # one record, however many pieces
        _write(b'{"i": %d, "v": ' % i)
        for k in range(0, len(text), 1 << 22):  # no full copy of a large text in memory
            _write(text[k : k + (1 << 22)].encode())
        _write(b"}\n")


def run_tests(code: str, spec: dict, start: int, end: int) -> None:
    """Call mode (inputs) or script mode (expressions): one value line per test, in order.

    No alarm here: the worker times every test from outside and kills this process.
    """
    loaded = load(code, spec)
    if loaded is None:
        return
    allow_digest = bool(spec.get("digest"))
    not_none = bool(spec.get("not_none"))
    digest_over = int(spec.get("digest_over") or 64 * 1024)
    if spec["mode"] == "call":
        tests, fn = spec["inputs"], loaded.fn
        for i in range(start, end):
            try:
                out = fn(*tests[i])  # decoded for this child alone (a fork of the worker)
            except MemoryError:
                _write(_MEMORY_RECORD % i)  # pre-encoded: memory may have run out
                return
            except BaseException as exc:  # noqa: BLE001
                emit({"i": i, "exc": describe(exc)})
                continue
            _emit_value(i, out, allow_digest, not_none, digest_over)
        audit.check_tamper()
        return
    ns = _test_namespace(loaded, spec)
    exprs = spec["exprs"]
    for i in range(start, end):
        try:
            out = eval(compile(exprs[i], f"test_{i}.py", "eval", dont_inherit=True), ns)
        except MemoryError:
            _write(_MEMORY_RECORD % i)
            return
        except BaseException as exc:  # noqa: BLE001
            emit({"i": i, "exc": describe(exc)})
            continue
        _emit_value(i, out, False, False, digest_over)
    audit.check_tamper()


def serve(code: str, spec: dict) -> None:
    """Load the solution, then answer calls from a judge until the worker stops asking."""
    loaded = load(code, spec)
    if loaded is None:
        return
    ns = _test_namespace(loaded, spec)
    lines = _Lines()
    while True:
        request = lines.read()
        if request is None:
            return
        target = ns.get(request.get("target"))
        if target is None:
            emit({"exc": ["NameError", f"name {request.get('target')!r} is not defined",
                          "NameError"]})  # fmt: skip
            continue
        try:
            args, kwargs = codec.decode(request["args"], loaded.types)
            out = target(*args, **kwargs)
        except MemoryError:
            _write(b'{"exc": ["MemoryError", "", "MemoryError"]}\n')
            continue
        except BaseException as exc:  # noqa: BLE001
            emit({"exc": describe(exc)})
            continue
        try:
            emit({"v": codec.encode(out, loaded.types)})
        except (codec.Unencodable, RecursionError, ValueError) as exc:
            emit({"bad": str(exc)[:300]})


def run_program(code: str) -> None:
    """A whole program, as ``python3 solution.py < input`` runs it (module ``__main__``)."""
    filename = os.path.join(RUN_DIR, "solution.py")
    code_obj = _syntax(code, filename)
    if code_obj is None:
        return
    linecache.cache[filename] = (len(code), None, code.splitlines(True), filename)
    module = new_module("__main__", filename)
    try:
        exec(code_obj, module.__dict__)
    except SystemExit as exc:
        if exc.code not in (None, 0):
            emit({"exc": ["SystemExit", str(exc.code)[:200], "SystemExit"]})
    except MemoryError:
        _write(b'{"exc": ["MemoryError", "", "MemoryError"]}\n')
    except BaseException as exc:  # noqa: BLE001
        emit({"exc": describe(exc)})
    finally:
        _shut_down(module)


def _shut_down(module) -> None:
    """What the interpreter does when a program ends (the child ends with ``os._exit``), in its
    order: wait for the non-daemon threads (the ``threading.stack_size`` idiom often does not
    join), run the ``atexit`` handlers, flush standard output (a fast-IO wrapper installed as
    ``sys.stdout`` flushes then, while the globals it uses still exist), then drop the globals so
    that finalizers run (a buffered writer flushed in ``__del__``), and flush again."""
    steps = []
    threading = sys.modules.get("threading")
    if threading is not None and hasattr(threading, "_shutdown"):
        steps.append(threading._shutdown)
    atexit = sys.modules.get("atexit")
    if atexit is not None:
        steps.append(atexit._run_exitfuncs)
    gc = __import__("gc")

    def drop_objects() -> None:
        # Objects first, while the modules and functions their finalizers use are still there.
        kinds = (_types.ModuleType, type, _types.FunctionType, _types.BuiltinFunctionType)
        for name in [n for n, v in module.__dict__.items() if not isinstance(v, kinds)]:
            if not name.startswith("__"):
                del module.__dict__[name]
        gc.collect()

    steps += [_flush_stdout, drop_objects, module.__dict__.clear, gc.collect]
    for step in steps:
        try:
            step()
        except SystemExit as exc:
            if exc.code not in (None, 0):
                emit({"exc": ["SystemExit", str(exc.code)[:200], "SystemExit"]})
        except BaseException as exc:  # noqa: BLE001
            emit({"exc": describe(exc)})
    _flush_stdout()


def _flush_stdout() -> None:
    for stream in (sys.stdout, sys.__stdout__):
        try:
            stream.flush()
        except BaseException:  # noqa: BLE001
            pass
