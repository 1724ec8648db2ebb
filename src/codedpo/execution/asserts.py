"""Turn assertion tests into "evaluate this inside, compare that outside".

``assert f(3) == 5`` becomes: evaluate ``f(3)`` in the sandbox, ship the value back as plain data,
and compare it with the literal ``5`` in the trusted parent. The literal never enters the sandbox,
so a solution cannot learn it, and an object with a rigged ``__eq__`` cannot survive the trip.
Assertions whose expected side is not a literal (``assert f(x) == g(x)``, loops, helper variables)
cannot be split; the problem's test code then runs in a judge process
(:mod:`codedpo.execution.plan`).
"""

from __future__ import annotations

import ast
import math
from dataclasses import dataclass
from typing import Any

_SAFE_CONSTRUCTORS = {"set": set, "frozenset": frozenset, "tuple": tuple, "list": list,
                      "sorted": sorted, "dict": dict}  # fmt: skip
_CMP = {ast.Eq: "eq", ast.NotEq: "ne", ast.Lt: "lt", ast.LtE: "le", ast.Gt: "gt", ast.GtE: "ge"}
_FLIP = {"eq": "eq", "ne": "ne", "lt": "gt", "le": "ge", "gt": "lt", "ge": "le"}


class NotLiteral(ValueError):
    pass


@dataclass(frozen=True)
class Check:
    """How the parent judges the value of ``expr``."""

    expr: str  # evaluated inside the sandbox
    op: str  # eq ne lt le gt ge truthy falsy is abs_lt abs_le isclose const
    expected: Any = None
    tolerance: float = 0.0  # abs_lt/abs_le bound, isclose abs_tol
    rel_tol: float = 1e-9


def literal(node: ast.AST) -> Any:
    """Evaluate a literal node, plus a few pure constructors: ``set((1, 2))``, ``float('inf')``."""
    try:
        return ast.literal_eval(node)
    except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError):
        pass
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and not node.keywords:
        name = node.func.id
        if name == "float" and len(node.args) == 1:
            arg = literal(node.args[0])
            if isinstance(arg, str | int | float):
                return float(arg)
        if name in _SAFE_CONSTRUCTORS and len(node.args) <= 1:
            args = [literal(a) for a in node.args]
            try:
                return _SAFE_CONSTRUCTORS[name](*args)
            except (TypeError, ValueError) as exc:
                raise NotLiteral(str(exc)) from None
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub):
        value = literal(node.operand)
        if isinstance(value, int | float) and not isinstance(value, bool):
            return -value
    raise NotLiteral(ast.dump(node)[:80])


def _is_literal(node: ast.AST) -> bool:
    try:
        literal(node)
    except NotLiteral:
        return False
    return True


def convert_assert(source: str) -> Check | None:
    """A :class:`Check` for one ``assert`` statement, or None when it must run in-process."""
    try:
        tree = ast.parse(source.strip())
    except SyntaxError:
        return None
    if len(tree.body) != 1 or not isinstance(tree.body[0], ast.Assert):
        return None
    test = tree.body[0].test
    return _convert_test(test)


def _src(node: ast.AST) -> str:
    return ast.unparse(node)


def _convert_test(test: ast.expr) -> Check | None:
    if isinstance(test, ast.Compare) and len(test.ops) == 1:
        left, right, op = test.left, test.comparators[0], type(test.ops[0])
        if op in (ast.Is, ast.IsNot) and isinstance(right, ast.Constant):
            if right.value in (True, False, None) and not _is_literal(left):
                if op is ast.Is:
                    return Check(_src(left), "is", right.value)
                return None
        if op in _CMP:
            name = _CMP[op]
            right_lit, left_lit = _is_literal(right), _is_literal(left)
            if right_lit and not left_lit:
                abs_check = _abs_difference(left, right, name)
                if abs_check is not None:
                    return abs_check
                return Check(_src(left), name, literal(right))
            if left_lit and not right_lit:
                return Check(_src(right), _FLIP[name], literal(left))
        return None
    if isinstance(test, ast.UnaryOp) and isinstance(test.op, ast.Not):
        if not _is_literal(test.operand):
            return Check(_src(test.operand), "falsy")
        return None
    if isinstance(test, ast.Call) and _is_isclose(test.func):
        return _isclose(test)
    if not _is_literal(test) and not isinstance(test, ast.BoolOp | ast.Compare):
        return Check(_src(test), "truthy")
    if _is_literal(test):
        # `assert True, "..."` (HumanEval): decided here, nothing to evaluate.
        return Check("None", "const", bool(literal(test)))
    return None


def _abs_difference(left: ast.expr, right: ast.expr, name: str) -> Check | None:
    """``abs(EXPR - LIT) < EPS`` -> evaluate EXPR inside, bound the distance outside."""
    if name not in ("lt", "le"):
        return None
    if not (isinstance(left, ast.Call) and isinstance(left.func, ast.Name)):
        return None
    if left.func.id != "abs" or len(left.args) != 1:
        return None
    inner = left.args[0]
    if not (isinstance(inner, ast.BinOp) and isinstance(inner.op, ast.Sub)):
        return None
    eps = literal(right)
    if not isinstance(eps, int | float):
        return None
    split = _expr_and_number(inner.left, inner.right)
    if split is None:
        return None
    return Check(_src(split[0]), "abs_" + name, split[1], tolerance=float(eps))


def _expr_and_number(a: ast.expr, b: ast.expr) -> tuple[ast.expr, int | float] | None:
    """Of two operands, the one to evaluate inside and the literal number to compare with."""
    if _is_literal(b) and not _is_literal(a):
        expr, target = a, literal(b)
    elif _is_literal(a) and not _is_literal(b):
        expr, target = b, literal(a)
    else:
        return None
    if not isinstance(target, int | float) or isinstance(target, bool):
        return None
    return expr, target


def _is_isclose(func: ast.expr) -> bool:
    if isinstance(func, ast.Attribute):
        return func.attr == "isclose" and isinstance(func.value, ast.Name)
    return isinstance(func, ast.Name) and func.id == "isclose"


def _isclose(call: ast.Call) -> Check | None:
    if len(call.args) != 2:
        return None
    split = _expr_and_number(*call.args)
    if split is None:
        return None
    expr, target = split
    rel_tol, abs_tol = 1e-9, 0.0
    for kw in call.keywords:
        if kw.arg not in ("rel_tol", "abs_tol") or not _is_literal(kw.value):
            return None
        if kw.arg == "rel_tol":
            rel_tol = float(literal(kw.value))
        else:
            abs_tol = float(literal(kw.value))
    return Check(_src(expr), "isclose", target, tolerance=abs_tol, rel_tol=rel_tol)


def judge(check: Check, value: Any) -> bool:
    """Apply ``check`` to a plain-data ``value`` on the trusted side."""
    op = check.op
    try:
        if op == "eq":
            return value == check.expected
        if op == "ne":
            return value != check.expected
        if op in ("lt", "le", "gt", "ge"):
            return {
                "lt": value < check.expected,
                "le": value <= check.expected,
                "gt": value > check.expected,
                "ge": value >= check.expected,
            }[op]
        if op == "const":
            return bool(check.expected)
        if op == "truthy":
            return bool(value)
        if op == "falsy":
            return not value
        if op == "is":
            return type(value) is type(check.expected) and value == check.expected
        if op in ("abs_lt", "abs_le"):
            if not isinstance(value, int | float) or isinstance(value, bool):
                return False
            d = abs(value - check.expected)
            return d < check.tolerance if op == "abs_lt" else d <= check.tolerance
        if op == "isclose":
            if not isinstance(value, int | float) or isinstance(value, bool):
                return False
            return math.isclose(value, check.expected, rel_tol=check.rel_tol,
                                abs_tol=check.tolerance)  # fmt: skip
    except (TypeError, ValueError, OverflowError):
        return False
    raise ValueError(f"unknown check {op!r}")
