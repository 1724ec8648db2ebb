"""Planning, on the trusted side: what crosses into which sandbox for one problem's tests.

Every test is one of:

- a **call** (HumanEval+/MBPP+/demo): the inputs cross into the solution's sandbox, the value
  comes back as plain data, the parent compares it with the reference's output;
- a **split assertion** (``assert candidate(3) == 5``, ``assert set(f(x)) == {1, 2}``): only a
  call of the function under test (with its arguments, inside a few real builtins) is evaluated
  with the solution; the literal it is compared with stays here, where the comparison happens;
- a **judged test** (HumanEval's ``check`` with loops, LeetCode's ``is_same_list(...)``): the
  problem's own test code runs in a judge process that never runs the solution; each call of
  the function under test crosses to the solution's sandbox as plain data.

A problem whose assertions are all split runs in ``script`` mode, otherwise wholly in
``judged`` mode. Nothing is checked inside the untrusted process.
"""

from __future__ import annotations

import ast
import builtins
import sys
from dataclasses import dataclass, field
from typing import Any

from codedpo.execution.asserts import Check, convert_assert
from codedpo.execution.sandbox import codec
from codedpo.io import InputError, sha256_json

# Real builtins that may wrap the call of the function under test in a split assertion; the
# solution cannot rebind them there (the parent forces the real ones into the namespace).
SAFE_WRAPPERS = ("set", "frozenset", "sorted", "list", "tuple", "len", "abs", "round", "str",
                 "int", "float", "bool", "sum", "min", "max", "dict", "repr")  # fmt: skip
_STDLIB = frozenset(getattr(sys, "stdlib_module_names", ())) - {"__future__", "this", "antigravity"}
_BUILTIN_NAMES = frozenset(dir(builtins)) | {"__name__", "__file__", "__builtins__"}


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
    load_seconds: float = 4.0  # running the prelude and defining the solution
    # The judge's own time per test (benchmark code, not the solution's): generous.
    judge_seconds: float = 20.0

    def wire(self, test_seconds: list[float]) -> dict:
        return {
            "memory_bytes": self.memory_mb * 2**20,
            "output_bytes": self.output_bytes,
            "results_bytes": self.results_bytes,
            "open_files": self.open_files,
            "test_seconds": test_seconds,
            "load_seconds": self.load_seconds,
            "judge_seconds": self.judge_seconds,
        }


@dataclass
class Plan:
    """Everything the parent knows about one problem's tests; only the wires are sent inside."""

    task_id: str
    mode: str  # call | script | judged | stdio
    groups: list[str]
    wire: dict  # the problem as the solution's sandbox gets it
    judge_wire: dict | None = None  # the problem as the judge gets it (judged mode, checkers)
    expected: list[Any] = field(default_factory=list)  # call: encoded outputs; stdio: text
    args: list[Any] = field(default_factory=list)  # call: encoded inputs (for poly_root)
    checks: list[Check] = field(default_factory=list)  # script: how each value is judged
    digests: dict[int, str] = field(default_factory=dict)  # call: digests of large outputs
    atol: float = 0.0
    check: str = "exact"
    float_tol: float | None = None
    test_seconds: list[float] = field(default_factory=list)
    reference_seconds: float = 0.0  # the reference solution's measured time over all tests
    # Names the prelude gives a solution that forgot them (HumanEval's prompt imports), by kind.
    provides: dict[str, str] = field(default_factory=dict)
    bad_cases: list[dict] = field(default_factory=list)  # cases the reference could not give
    _decoded: dict[int, Any] = field(default_factory=dict, repr=False)

    def expected_value(self, i: int) -> Any:
        """The reference output of call test ``i``, decoded on first use.

        Kept encoded until then: a fast check rarely needs most of them, and decoding
        HumanEval+'s 240 MB of outputs up front dominated the run.
        """
        if i not in self._decoded:
            self._decoded[i] = codec.decode(self.expected[i])
        return self._decoded[i]

    def expected_digest(self, i: int) -> str | None:
        if i not in self.digests:
            try:
                self.digests[i] = codec.digest(self.expected_value(i))
            except (codec.Unencodable, ValueError, RecursionError):
                return None
        return self.digests[i]

    @property
    def total(self) -> int:
        return len(self.groups)


def problem_key(problem: dict) -> str:
    return problem["task_id"] + "#" + sha256_json(problem["tests"])[:12]


# -- names ------------------------------------------------------------------------------------
def _parse(source: str | None) -> ast.Module | None:
    try:
        return ast.parse(source or "")
    except SyntaxError:
        return None


def bound_names(tree: ast.AST) -> set[str]:
    """Every name a module binds anywhere (definitions, assignments, imports, parameters)."""
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            names.add(node.name)
        elif isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store | ast.Del):
            names.add(node.id)
        elif isinstance(node, ast.Import | ast.ImportFrom):
            for alias in node.names:
                if alias.name != "*":
                    names.add(alias.asname or alias.name.split(".")[0])
        elif isinstance(node, ast.arg):
            names.add(node.arg)
        elif isinstance(node, ast.ExceptHandler) and node.name:
            names.add(node.name)
    return names


def used_names(tree: ast.AST) -> set[str]:
    return {n.id for n in ast.walk(tree) if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Load)}


def top_level_binds(tree: ast.Module) -> dict[str, str]:
    """Names the top level of ``tree`` binds: ``import`` for imports, ``def`` for the rest."""
    out: dict[str, str] = {}
    for node in tree.body:
        if isinstance(node, ast.Import | ast.ImportFrom):
            for alias in node.names:
                if alias.name != "*":
                    out[alias.asname or alias.name.split(".")[0]] = "import"
        else:
            for name in bound_names(ast.Module(body=[node], type_ignores=[])):
                if not isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
                    out.setdefault(name, "def")
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
                out[node.name] = "def"
    return out


def rescued(plan: Plan, code: str) -> list[str]:
    """What the prelude supplied that the solution used without defining it (sorted kinds).

    HumanEval's harness runs ``prompt + completion``, so a completion may rely on the prompt's
    ``from typing import List``; a chat answer that forgot the import is rescued the same way,
    and the record says so (scores count it, to compare honestly with EvalPlus, which does not).
    """
    if not plan.provides:
        return []
    tree = _parse(code)
    if tree is None:
        return []
    missing = used_names(tree) - bound_names(tree) - _BUILTIN_NAMES
    return sorted({plan.provides[n] for n in missing if n in plan.provides})


# -- assertions -------------------------------------------------------------------------------
def _mentions(node: ast.AST, names: set[str]) -> bool:
    return any(isinstance(n, ast.Name) and n.id in names for n in ast.walk(node))


def _inside_ok(node: ast.expr, under_test: set[str]) -> bool:
    """May ``node`` be evaluated with the solution? Only a call of the function under test, on
    arguments that do not involve it, optionally inside real builtins or a literal subscript:
    no comparison helper and no expected value ever enters the untrusted process."""
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Name):
        if node.func.id in under_test:
            parts = [*node.args, *(k.value for k in node.keywords)]
            return not any(_mentions(p, under_test) for p in parts)
        if node.func.id in SAFE_WRAPPERS and len(node.args) == 1 and not node.keywords:
            return _inside_ok(node.args[0], under_test)
        return False
    if isinstance(node, ast.Subscript):
        try:
            ast.literal_eval(node.slice)
        except (ValueError, TypeError, SyntaxError):
            return False
        return _inside_ok(node.value, under_test)
    return False


def split_assertion(source: str, under_test: set[str]) -> Check | None:
    """The :class:`Check` of an assertion that can be split, else None (it goes to the judge)."""
    check = convert_assert(source)
    if check is None or check.op == "const":
        return check
    expr = ast.parse(check.expr, mode="eval").body
    return check if _inside_ok(expr, under_test) else None


def _self_contained(source: str) -> bool:
    """Does code use only what it binds itself, builtins and standard-library modules?"""
    tree = _parse(source)
    if tree is None:
        return False
    return not (used_names(tree) - bound_names(tree) - _BUILTIN_NAMES - _STDLIB)


def _test_imports(sources: list[str], bound: set[str]) -> list[str]:
    """Standard-library modules the tests use by name without importing them (``math``)."""
    used: set[str] = set()
    for source in sources:
        tree = _parse(source)
        if tree is not None:
            used |= used_names(tree)
    return sorted((used - bound) & _STDLIB)


# -- problems -----------------------------------------------------------------------------------
def _call_plan(problem: dict, limits: Limits, expected: dict | None, key: str) -> Plan:
    tests = problem["tests"]
    cases = tests["cases"]
    digests: dict[int, str] = {}
    times: list[float | None] = [None] * len(cases)
    bad: list[dict] = []
    if all("output" in c for c in cases):
        outputs = [c["output"] for c in cases]
    elif expected is not None:
        # Cases the reference could not give are an error of the problem set, listed in the
        # expected file, the records and the scores (``bad_cases``): never silently dropped.
        bad = list(expected.get("bad_cases") or [])
        dropped = {b["index"] for b in bad}
        keep = [i for i in range(len(cases)) if i not in dropped]
        cases = [cases[i] for i in keep]
        outputs = [expected["outputs"][i] for i in keep]
        old = expected.get("digests") or {}
        digests = {n: old[str(i)] for n, i in enumerate(keep) if str(i) in old}
        all_times = expected.get("times") or [None] * len(expected["outputs"])
        times = [all_times[i] for i in keep]
    else:
        raise InputError(f"{problem['task_id']}: expected outputs are not computed")
    if not cases:
        raise InputError(
            f"{problem['task_id']}: no test cases left: the reference solution fails on all"
        )
    if bad:  # another set of cases than the problem's: another upload
        key += "-" + sha256_json(sorted(b["index"] for b in bad))[:8]
    test_seconds = _limits_from(times, limits)
    wire = {
        "op": "problem",
        "key": key,
        "mode": "call",
        "entry_point": problem["entry_point"],
        "prelude": tests.get("prelude"),
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
        provides=_provides(tests),
        bad_cases=bad,
    )


def _provides(tests: dict) -> dict[str, str]:
    """The prelude's names a solution may rely on, when the prelude is the benchmark's prompt."""
    if tests.get("prelude_from") != "prompt":
        return {}
    tree = _parse(tests.get("prelude"))
    if tree is None:
        return {}
    kinds = {"import": "prompt_imports", "def": "prompt_helpers"}
    return {name: kinds[kind] for name, kind in top_level_binds(tree).items()}


def _limits_from(times: list[float | None], limits: Limits) -> list[float]:
    """EvalPlus's rule: ``max(floor, factor x the reference's time)``; the fixed limit where the
    reference's time is not known."""
    floor, factor = limits.min_test_seconds, limits.time_factor
    return [limits.test_seconds if t is None else max(floor, factor * t) for t in times]


def _assert_plan(problem: dict, limits: Limits, key: str, expected: dict | None) -> Plan:
    tests = problem["tests"]
    asserts = tests["asserts"]
    times = list((expected or {}).get("times") or [])
    if len(times) != len(asserts):  # not timed (no reference), or timed for other tests
        times = [None] * len(asserts)
    entry = problem.get("entry_point") or ""
    under_test = {"candidate"} | ({entry} if entry.isidentifier() else set())
    checks = [split_assertion(a, under_test) for a in asserts]
    groups = tests.get("groups") or ["base"] * len(asserts)
    prelude, setup, helpers = tests.get("prelude"), tests.get("setup"), tests.get("helpers")
    if setup and _self_contained(setup):
        # Test code that needs nothing of the solution's (``import math``) is the tests' own.
        helpers, setup = "\n".join(s for s in (setup, helpers) if s), None
    bound: set[str] = set()
    for source in (prelude, setup, helpers):
        tree = _parse(source)
        if tree is not None:
            bound |= bound_names(tree)
    imports = _test_imports([*asserts, helpers or ""], bound)
    common = {
        "task_id": problem["task_id"],
        "groups": groups,
        "test_seconds": _limits_from(times, limits),
        "reference_seconds": sum(t for t in times if t is not None),
        "provides": _provides(tests),
    }
    if all(c is not None for c in checks):
        wire = {"op": "problem", "key": key, "mode": "script", "entry_point": entry or None,
                "prelude": prelude, "setup": setup, "test_setup": helpers, "imports": imports,
                "wrappers": list(SAFE_WRAPPERS),
                "exprs": [c.expr if c.op != "const" else "None" for c in checks]}  # fmt: skip
        return Plan(mode="script", wire=wire, checks=checks, **common)
    if setup:
        raise InputError(
            f"{problem['task_id']}: field 'tests.setup' builds test inputs from the solution's "
            "own definitions, so its assertions must compare a call with a literal; this one "
            "cannot be judged outside the solution's process"
        )
    # Names the tests call that neither the prelude nor the test code defines: the solution's.
    free: set[str] = set()
    for source in (*asserts, helpers or ""):
        tree = _parse(source)
        if tree is not None:
            free |= used_names(tree)
    proxies = sorted(under_test | (free - bound - _BUILTIN_NAMES - set(imports)))
    wire = {"op": "problem", "key": key, "mode": "serve", "entry_point": entry or None,
            "prelude": prelude, "imports": []}  # fmt: skip
    judge_wire = {"op": "problem", "key": key + "/judge", "mode": "judge", "prelude": prelude,
                  "helpers": helpers, "tests": list(asserts), "imports": imports,
                  "proxies": proxies}  # fmt: skip
    return Plan(mode="judged", wire=wire, judge_wire=judge_wire, **common)


def plan_problem(problem: dict, limits: Limits, expected: dict | None = None) -> Plan:
    """Build the :class:`Plan`; ``expected`` supplies computed outputs and reference times."""
    tests = problem["tests"]
    kind = tests["kind"]
    key = problem_key(problem)
    if kind == "call":
        return _call_plan(problem, limits, expected, key)
    if kind == "assert":
        return _assert_plan(problem, limits, key, expected)
    cases = tests["cases"]
    wire = {"op": "problem", "key": key, "mode": "stdio", "stdins": [c["input"] for c in cases]}
    plan = Plan(
        task_id=problem["task_id"],
        mode="stdio",
        groups=[c.get("group", "base") for c in cases],
        wire=wire,
        expected=[c["output"] for c in cases],
        float_tol=tests.get("float_tol"),
        test_seconds=[limits.test_seconds] * len(cases),
    )
    if tests.get("checker"):
        # The problem's own checker, `check(input, output, expected) -> bool`, in the judge: it
        # gets the program's output as a string, never the program.
        plan.judge_wire = {"op": "problem", "key": key + "/checker", "mode": "judge",
                           "prelude": None, "helpers": tests["checker"], "imports": [],
                           "proxies": [],
                           "tests": ["assert check(*CASE)"] * len(cases)}  # fmt: skip
    return plan


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
