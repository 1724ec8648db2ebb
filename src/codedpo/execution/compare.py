"""Output comparison for function-call tests, with EvalPlus's semantics, on the trusted side.

EvalPlus compares with ``out == exp`` inside the untrusted process; here ``out`` is plain data
decoded from the sandbox's reply, so the comparison cannot be rigged. The rules follow
EvalPlus 0.3.1 (``evalplus/eval/__init__.py``): float outputs get ``atol = 1e-6`` when the
dataset gives none; a non-exact match passes only with the same type, the same length and
``allclose(rtol=1e-7, atol)``; MBPP+ set-equality and "not None" oracles; HumanEval/32's root
check, which EvalPlus's later releases use instead of comparing with the reference root.
"""

from __future__ import annotations

import math
from typing import Any

CHECKS = (
    "exact",
    "set",
    "not_none",
    "poly_root",
    "any",
    "exact_or_zero",
    "surface_area",
    "digit_distance",
)


def is_floats(x: Any) -> bool:
    if isinstance(x, float):
        return True
    if isinstance(x, list | tuple) and x:
        return all(isinstance(i, float) for i in x)
    return False


def _allclose(out: Any, exp: Any, atol: float, rtol: float = 1e-7) -> bool:
    """numpy.allclose for scalars and flat sequences of numbers (what EvalPlus passes it)."""
    outs = out if isinstance(out, list | tuple) else [out]
    exps = exp if isinstance(exp, list | tuple) else [exp]
    if len(outs) != len(exps):
        return False
    for a, b in zip(outs, exps, strict=True):
        if not isinstance(a, int | float) or not isinstance(b, int | float):
            return False
        if math.isnan(a) or math.isnan(b):
            return False  # allclose(equal_nan=False)
        if math.isinf(a) or math.isinf(b):
            if a != b:
                return False
            continue
        if abs(a - b) > atol + rtol * abs(b):
            return False
    return True


def poly(xs: list, x: float) -> float:
    return sum(coeff * math.pow(x, i) for i, coeff in enumerate(xs))


def _surface_area(base_edge: float, height: float) -> float:
    # MBPP+ Mbpp/581: "height" is the perpendicular height of the pyramid.
    slant = math.sqrt((base_edge / 2) ** 2 + height**2)
    return round(base_edge**2 + 2 * base_edge * slant)


def _digit_distance(a: int, b: int) -> int:
    # MBPP+ Mbpp/558: pad the shorter number with zeros.
    sa, sb = str(a), str(b)
    width = max(len(sa), len(sb))
    return sum(abs(int(x) - int(y)) for x, y in zip(sa.zfill(width), sb.zfill(width), strict=True))


def outputs_match(
    out: Any, exp: Any, *, args: list, atol: float = 0.0, check: str = "exact"
) -> bool:
    """Does ``out`` (what the solution returned) pass against ``exp`` (the reference output)?"""
    try:
        if check == "poly_root":
            # Any root of the polynomial is right, not just the reference's one.
            return isinstance(out, int | float) and abs(poly(args[0], out)) <= max(atol, 1e-6)
        if check == "any":
            # MBPP+ Mbpp/164: EvalPlus accepts any returned value (its oracle is `or True`).
            return True
        if check == "exact_or_zero" and out == 0:
            return True  # MBPP+ Mbpp/295
        if check == "surface_area" and out == exp:
            return True
        if check == "surface_area":
            return isinstance(out, int | float) and abs(out - _surface_area(*args)) <= atol
        if check == "digit_distance":
            return out == exp or out == _digit_distance(*args)
        if check == "set":
            try:
                return set(out) == set(exp)
            except TypeError:
                return False
        if check == "not_none":
            expected = exp if isinstance(exp, bool) else exp is not None
            if isinstance(out, bool):
                return out == expected
            return expected == (out is not None)
        exact = out == exp
        if exact:
            return True
        if atol == 0 and is_floats(exp):
            atol = 1e-6
        if atol == 0:
            return False
        if type(out) is not type(exp):
            return False
        return _allclose(out, exp, atol)
    except (TypeError, ValueError, OverflowError, RecursionError):
        return False
