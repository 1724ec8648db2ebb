"""Write the embedded demo problem set, ``src/codedpo/data/demo/problems.jsonl``.

The problems are written by us (no benchmark text) and kept as Python data here so the JSONL can
be regenerated and reviewed as a diff. Each problem has one deliberately wrong variant of its
canonical solution (``meta.buggy_solution``), always made by the same small edit of one of six
*bug families*. The demo model is pretrained on both variants, so its samples mix passing and
failing code; because the families are shared by the train and eval splits, a preference learnt by
DPO on the train split has something to transfer to the eval split.

The hand-written problems (66: 44 train, 22 eval) are joined by generated *evaluation* problems
(:func:`generated_problems`): small templates per bug family, each instantiated with a few
expressions or thresholds, their cases computed from the canonical solution on fixed inputs. They
make the eval split large enough (200 problems) for a 10-point difference in greedy pass@1 to be
detectable (README, "What the demo can and cannot show"); the training split stays the 44
hand-written problems, and no generated problem copies a training one. Problems from one template
are alike, so they are not independent draws: the tables' intervals are over these problems.

Before writing, every canonical solution is run on its cases (it must pass all of them) and every
buggy one too (it must fail at least one); a failed check aborts without touching the output.

    python scripts/make_demo_problems.py --out src/codedpo/data/demo/problems.jsonl
"""

from __future__ import annotations

import argparse
import copy
import sys
from dataclasses import dataclass
from pathlib import Path
from textwrap import dedent
from typing import Any

from codedpo.execution.sandbox.codec import encode
from codedpo.io import write_jsonl

DEFAULT_OUT = Path(__file__).resolve().parents[1] / "src/codedpo/data/demo/problems.jsonl"

# The bug families. The edit always goes the same way (the wrong variant is the strict comparison,
# the range without its `+ 1`, ...), so that "which of the two is right" is learnable across
# problems rather than a coin flip per problem.
FAMILIES = {
    "off_by_one": "range upper bound loses its `+ 1`",
    "strict_compare": "`<=` / `>=` becomes `<` / `>`",
    "missing_abs": "an `abs(...)` is dropped",
    "wrong_init": "an accumulator starts at 0 instead of the right value",
    "max_min": "`max` becomes `min`",
    "sign": "a `-` becomes `+`",
}


@dataclass(frozen=True)
class DemoProblem:
    name: str
    args: str  # the signature's argument list, as it appears in the prompt
    does: str  # completes "Write a Python function `name(args)` that ..."
    code: str
    bug: tuple[str, str]  # (old, new): replaced exactly once in `code` to give the buggy variant
    family: str
    cases: list[tuple[list[Any], Any]]  # (positional args, expected output), written by hand
    split: str

    @property
    def task_id(self) -> str:
        return f"demo/{self.name}"

    @property
    def prompt(self) -> str:
        return f"Write a Python function `{self.name}({self.args})` that {self.does}."

    @property
    def buggy(self) -> str:
        old, new = self.bug
        if self.code.count(old) != 1:
            raise ValueError(f"{self.task_id}: bug text {old!r} must occur exactly once")
        return self.code.replace(old, new)


def P(name, args, does, code, bug, family, cases, split="train") -> DemoProblem:  # noqa: N802
    return DemoProblem(name, args, does, dedent(code).lstrip("\n"), bug, family, cases, split)


PROBLEMS: list[DemoProblem] = [
    # --- off_by_one ---------------------------------------------------------------------------
    P(
        "sum_to_n",
        "n",
        "returns the sum of the integers from 1 to n inclusive",
        """
        def sum_to_n(n):
            return sum(range(1, n + 1))
        """,
        ("range(1, n + 1)", "range(1, n)"),
        "off_by_one",
        [([1], 1), ([3], 6), ([5], 15), ([10], 55), ([0], 0)],
    ),
    P(
        "factorial",
        "n",
        "returns n factorial, with factorial(0) equal to 1",
        """
        def factorial(n):
            result = 1
            for i in range(1, n + 1):
                result *= i
            return result
        """,
        ("range(1, n + 1)", "range(1, n)"),
        "off_by_one",
        [([0], 1), ([1], 1), ([3], 6), ([5], 120), ([6], 720)],
    ),
    P(
        "count_multiples",
        "n, k",
        "returns how many integers from 1 to n inclusive are divisible by k",
        """
        def count_multiples(n, k):
            return sum(1 for i in range(1, n + 1) if i % k == 0)
        """,
        ("range(1, n + 1)", "range(1, n)"),
        "off_by_one",
        [([10, 2], 5), ([10, 3], 3), ([9, 3], 3), ([1, 1], 1), ([7, 7], 1), ([5, 6], 0)],
    ),
    P(
        "squares_up_to",
        "n",
        "returns the list of the squares of the integers from 1 to n inclusive",
        """
        def squares_up_to(n):
            return [i * i for i in range(1, n + 1)]
        """,
        ("range(1, n + 1)", "range(1, n)"),
        "off_by_one",
        [([1], [1]), ([3], [1, 4, 9]), ([0], []), ([4], [1, 4, 9, 16]), ([5], [1, 4, 9, 16, 25])],
    ),
    P(
        "sum_of_squares",
        "n",
        "returns the sum of the squares of the integers from 1 to n inclusive",
        """
        def sum_of_squares(n):
            return sum(i * i for i in range(1, n + 1))
        """,
        ("range(1, n + 1)", "range(1, n)"),
        "off_by_one",
        [([1], 1), ([2], 5), ([3], 14), ([4], 30), ([0], 0), ([10], 385)],
    ),
    P(
        "divisors",
        "n",
        "returns the sorted list of the positive divisors of n",
        """
        def divisors(n):
            return [d for d in range(1, n + 1) if n % d == 0]
        """,
        ("range(1, n + 1)", "range(1, n)"),
        "off_by_one",
        [
            ([1], [1]),
            ([6], [1, 2, 3, 6]),
            ([7], [1, 7]),
            ([12], [1, 2, 3, 4, 6, 12]),
            ([9], [1, 3, 9]),
        ],
    ),
    P(
        "sum_even_up_to",
        "n",
        "returns the sum of the even numbers from 0 to n inclusive",
        """
        def sum_even_up_to(n):
            return sum(range(0, n + 1, 2))
        """,
        ("range(0, n + 1, 2)", "range(0, n, 2)"),
        "off_by_one",
        [([0], 0), ([4], 6), ([5], 6), ([10], 30), ([1], 0), ([2], 2)],
    ),
    P(
        "range_list",
        "a, b",
        "returns the list of the integers from a to b inclusive",
        """
        def range_list(a, b):
            return list(range(a, b + 1))
        """,
        ("range(a, b + 1)", "range(a, b)"),
        "off_by_one",
        [
            ([1, 3], [1, 2, 3]),
            ([0, 0], [0]),
            ([-2, 1], [-2, -1, 0, 1]),
            ([5, 4], []),
            ([3, 6], [3, 4, 5, 6]),
        ],
        "eval",
    ),
    P(
        "sum_odd_up_to",
        "n",
        "returns the sum of the odd numbers from 1 to n inclusive",
        """
        def sum_odd_up_to(n):
            return sum(range(1, n + 1, 2))
        """,
        ("range(1, n + 1, 2)", "range(1, n, 2)"),
        "off_by_one",
        [([1], 1), ([5], 9), ([6], 9), ([7], 16), ([0], 0), ([9], 25)],
        "eval",
    ),
    P(
        "product_range",
        "a, b",
        "returns the product of the integers from a to b inclusive",
        """
        def product_range(a, b):
            result = 1
            for i in range(a, b + 1):
                result *= i
            return result
        """,
        ("range(a, b + 1)", "range(a, b)"),
        "off_by_one",
        [([1, 4], 24), ([2, 3], 6), ([5, 5], 5), ([3, 5], 60), ([1, 1], 1)],
        "eval",
    ),
    P(
        "cube_sum",
        "n",
        "returns the sum of the cubes of the integers from 1 to n inclusive",
        """
        def cube_sum(n):
            return sum(i ** 3 for i in range(1, n + 1))
        """,
        ("range(1, n + 1)", "range(1, n)"),
        "off_by_one",
        [([1], 1), ([2], 9), ([3], 36), ([4], 100), ([0], 0)],
        "eval",
    ),
    # --- strict_compare -----------------------------------------------------------------------
    P(
        "count_at_most",
        "xs, limit",
        "returns how many elements of xs are at most limit",
        """
        def count_at_most(xs, limit):
            return sum(1 for x in xs if x <= limit)
        """,
        ("x <= limit", "x < limit"),
        "strict_compare",
        [
            ([[1, 2, 3], 2], 2),
            ([[5, 5, 5], 5], 3),
            ([[], 3], 0),
            ([[4, 1, 7], 3], 1),
            ([[-1, 0, 1], 0], 2),
        ],
    ),
    P(
        "count_at_least",
        "xs, limit",
        "returns how many elements of xs are at least limit",
        """
        def count_at_least(xs, limit):
            return sum(1 for x in xs if x >= limit)
        """,
        ("x >= limit", "x > limit"),
        "strict_compare",
        [
            ([[1, 2, 3], 2], 2),
            ([[5, 5, 5], 5], 3),
            ([[], 1], 0),
            ([[4, 1, 7], 5], 1),
            ([[0, -1, 3], 0], 2),
        ],
    ),
    P(
        "is_sorted",
        "xs",
        "returns True if xs is sorted in non-decreasing order",
        """
        def is_sorted(xs):
            return all(xs[i] <= xs[i + 1] for i in range(len(xs) - 1))
        """,
        ("xs[i] <= xs[i + 1]", "xs[i] < xs[i + 1]"),
        "strict_compare",
        [
            ([[1, 2, 3]], True),
            ([[1, 1, 2]], True),
            ([[3, 1]], False),
            ([[]], True),
            ([[2, 2, 2]], True),
            ([[1, 3, 2]], False),
        ],
    ),
    P(
        "filter_at_least",
        "xs, t",
        "returns the elements of xs that are at least t, in order",
        """
        def filter_at_least(xs, t):
            return [x for x in xs if x >= t]
        """,
        ("x >= t", "x > t"),
        "strict_compare",
        [
            ([[1, 5, 3, 5], 3], [5, 3, 5]),
            ([[], 0], []),
            ([[2, 2], 2], [2, 2]),
            ([[1, 2], 5], []),
            ([[0, -3, 4], 0], [0, 4]),
        ],
    ),
    P(
        "is_adult",
        "age",
        "returns True if age is 18 or more",
        """
        def is_adult(age):
            return age >= 18
        """,
        ("age >= 18", "age > 18"),
        "strict_compare",
        [([18], True), ([17], False), ([30], True), ([0], False), ([19], True)],
    ),
    P(
        "in_range",
        "x, lo, hi",
        "returns True if x lies between lo and hi, both ends included",
        """
        def in_range(x, lo, hi):
            return lo <= x <= hi
        """,
        ("lo <= x", "lo < x"),
        "strict_compare",
        [
            ([5, 1, 10], True),
            ([1, 1, 10], True),
            ([10, 1, 10], True),
            ([0, 1, 10], False),
            ([11, 1, 10], False),
            ([3, 3, 3], True),
        ],
    ),
    P(
        "passes",
        "score, threshold",
        "returns True if score is at least threshold",
        """
        def passes(score, threshold):
            return score >= threshold
        """,
        ("score >= threshold", "score > threshold"),
        "strict_compare",
        [([50, 50], True), ([49, 50], False), ([90, 50], True), ([0, 0], True), ([-1, 0], False)],
    ),
    P(
        "all_at_most",
        "xs, limit",
        "returns True if every element of xs is at most limit",
        """
        def all_at_most(xs, limit):
            return all(x <= limit for x in xs)
        """,
        ("x <= limit", "x < limit"),
        "strict_compare",
        [
            ([[1, 2, 3], 3], True),
            ([[1, 4], 3], False),
            ([[], 0], True),
            ([[2, 2], 2], True),
            ([[5], 4], False),
        ],
        "eval",
    ),
    P(
        "first_at_least",
        "xs, t",
        "returns the first element of xs that is at least t, or None if there is none",
        """
        def first_at_least(xs, t):
            for x in xs:
                if x >= t:
                    return x
            return None
        """,
        ("x >= t", "x > t"),
        "strict_compare",
        [
            ([[1, 5, 3], 3], 5),
            ([[1, 3, 5], 3], 3),
            ([[], 1], None),
            ([[1, 2], 5], None),
            ([[4, 4], 4], 4),
        ],
        "eval",
    ),
    P(
        "count_non_negative",
        "xs",
        "returns how many elements of xs are zero or positive",
        """
        def count_non_negative(xs):
            return sum(1 for x in xs if x >= 0)
        """,
        ("x >= 0", "x > 0"),
        "strict_compare",
        [([[1, -1, 0]], 2), ([[]], 0), ([[0, 0]], 2), ([[-5, -2]], 0), ([[3, 4, -1]], 2)],
        "eval",
    ),
    P(
        "can_afford",
        "prices, budget",
        "returns True if the total of prices is at most budget",
        """
        def can_afford(prices, budget):
            return sum(prices) <= budget
        """,
        ("sum(prices) <= budget", "sum(prices) < budget"),
        "strict_compare",
        [
            ([[1, 2, 3], 6], True),
            ([[1, 2, 3], 5], False),
            ([[], 0], True),
            ([[10], 20], True),
            ([[5, 5], 10], True),
        ],
        "eval",
    ),
    # --- missing_abs --------------------------------------------------------------------------
    P(
        "distance",
        "a, b",
        "returns the distance between the numbers a and b",
        """
        def distance(a, b):
            return abs(a - b)
        """,
        ("abs(a - b)", "a - b"),
        "missing_abs",
        [([1, 4], 3), ([4, 1], 3), ([0, 0], 0), ([-2, 3], 5), ([7, 7], 0)],
    ),
    P(
        "sum_abs",
        "xs",
        "returns the sum of the absolute values of the elements of xs",
        """
        def sum_abs(xs):
            return sum(abs(x) for x in xs)
        """,
        ("abs(x)", "x"),
        "missing_abs",
        [([[1, -2, 3]], 6), ([[]], 0), ([[-1, -1]], 2), ([[0, 5]], 5), ([[-4]], 4)],
    ),
    P(
        "max_abs",
        "xs",
        "returns the largest absolute value among the elements of xs",
        """
        def max_abs(xs):
            return max(abs(x) for x in xs)
        """,
        ("abs(x)", "x"),
        "missing_abs",
        [([[1, -5, 3]], 5), ([[2, 3]], 3), ([[-1, -2]], 2), ([[0]], 0), ([[-7, 7]], 7)],
    ),
    P(
        "manhattan",
        "x1, y1, x2, y2",
        "returns the Manhattan distance between the points (x1, y1) and (x2, y2)",
        """
        def manhattan(x1, y1, x2, y2):
            return abs(x1 - x2) + abs(y1 - y2)
        """,
        ("abs(x1 - x2)", "(x1 - x2)"),
        "missing_abs",
        [
            ([0, 0, 3, 4], 7),
            ([3, 4, 0, 0], 7),
            ([1, 1, 1, 1], 0),
            ([-1, 2, 2, -2], 7),
            ([5, 0, 2, 0], 3),
        ],
    ),
    P(
        "abs_diffs",
        "xs",
        "returns the list of the absolute differences between neighbouring elements of xs",
        """
        def abs_diffs(xs):
            return [abs(xs[i + 1] - xs[i]) for i in range(len(xs) - 1)]
        """,
        ("abs(xs[i + 1] - xs[i])", "(xs[i + 1] - xs[i])"),
        "missing_abs",
        [
            ([[1, 4, 2]], [3, 2]),
            ([[]], []),
            ([[5]], []),
            ([[3, 3]], [0]),
            ([[10, 0, 10]], [10, 10]),
        ],
    ),
    P(
        "digit_sum",
        "n",
        "returns the sum of the decimal digits of the integer n, ignoring its sign",
        """
        def digit_sum(n):
            return sum(int(c) for c in str(abs(n)))
        """,
        ("str(abs(n))", "str(n)"),
        "missing_abs",
        [([123], 6), ([-45], 9), ([0], 0), ([9], 9), ([-7], 7)],
    ),
    P(
        "num_digits",
        "n",
        "returns the number of decimal digits of the integer n, ignoring its sign",
        """
        def num_digits(n):
            return len(str(abs(n)))
        """,
        ("str(abs(n))", "str(n)"),
        "missing_abs",
        [([0], 1), ([7], 1), ([-7], 1), ([12345], 5), ([-100], 3)],
    ),
    P(
        "abs_values",
        "xs",
        "returns the list of the absolute values of the elements of xs",
        """
        def abs_values(xs):
            return [abs(x) for x in xs]
        """,
        ("abs(x)", "x"),
        "missing_abs",
        [([[1, -2]], [1, 2]), ([[]], []), ([[0]], [0]), ([[-3, -4]], [3, 4]), ([[5]], [5])],
        "eval",
    ),
    P(
        "is_close",
        "a, b, tol",
        "returns True if a and b differ by at most tol",
        """
        def is_close(a, b, tol):
            return abs(a - b) <= tol
        """,
        ("abs(a - b)", "a - b"),
        "missing_abs",
        [
            ([1, 2, 1], True),
            ([2, 1, 1], True),
            ([5, 1, 2], False),
            ([1, 5, 2], False),
            ([3, 3, 0], True),
        ],
        "eval",
    ),
    P(
        "max_gap",
        "xs",
        "returns the largest absolute difference between neighbouring elements of xs",
        """
        def max_gap(xs):
            return max(abs(xs[i + 1] - xs[i]) for i in range(len(xs) - 1))
        """,
        ("abs(xs[i + 1] - xs[i])", "(xs[i + 1] - xs[i])"),
        "missing_abs",
        [([[1, 4, 2]], 3), ([[10, 0]], 10), ([[1, 2, 3]], 1), ([[5, 5]], 0), ([[0, -6, -3]], 6)],
        "eval",
    ),
    P(
        "count_close",
        "xs, target, tol",
        "returns how many elements of xs are at most tol away from target",
        """
        def count_close(xs, target, tol):
            return sum(1 for x in xs if abs(x - target) <= tol)
        """,
        ("abs(x - target)", "x - target"),
        "missing_abs",
        [
            ([[1, 2, 3], 2, 0], 1),
            ([[1, 5, 9], 5, 4], 3),
            ([[], 0, 1], 0),
            ([[10, 0], 5, 1], 0),
            ([[-2, 2], 0, 2], 2),
        ],
        "eval",
    ),
    # --- wrong_init ---------------------------------------------------------------------------
    P(
        "max_value",
        "xs",
        "returns the largest element of the non-empty list xs without using max",
        """
        def max_value(xs):
            best = xs[0]
            for x in xs:
                if x > best:
                    best = x
            return best
        """,
        ("best = xs[0]", "best = 0"),
        "wrong_init",
        [([[1, 3, 2]], 3), ([[-5, -2, -9]], -2), ([[7]], 7), ([[0, 0]], 0), ([[-1]], -1)],
    ),
    P(
        "min_value",
        "xs",
        "returns the smallest element of the non-empty list xs without using min",
        """
        def min_value(xs):
            best = xs[0]
            for x in xs:
                if x < best:
                    best = x
            return best
        """,
        ("best = xs[0]", "best = 0"),
        "wrong_init",
        [([[3, 1, 2]], 1), ([[5, 9, 7]], 5), ([[-3]], -3), ([[4]], 4), ([[2, 2]], 2)],
    ),
    P(
        "product",
        "xs",
        "returns the product of the elements of xs, or 1 for an empty list",
        """
        def product(xs):
            result = 1
            for x in xs:
                result *= x
            return result
        """,
        ("result = 1", "result = 0"),
        "wrong_init",
        [([[2, 3]], 6), ([[]], 1), ([[5]], 5), ([[1, 2, 3, 4]], 24), ([[-2, 3]], -6)],
    ),
    P(
        "power",
        "base, exp",
        "returns base raised to the non-negative integer exp using a loop",
        """
        def power(base, exp):
            result = 1
            for _ in range(exp):
                result *= base
            return result
        """,
        ("result = 1", "result = 0"),
        "wrong_init",
        [([2, 3], 8), ([5, 0], 1), ([3, 2], 9), ([1, 10], 1), ([-2, 3], -8)],
    ),
    P(
        "running_max",
        "xs",
        "returns the list whose i-th element is the largest of xs[0] to xs[i], for a non-empty xs",
        """
        def running_max(xs):
            best = xs[0]
            out = []
            for x in xs:
                if x > best:
                    best = x
                out.append(best)
            return out
        """,
        ("best = xs[0]", "best = 0"),
        "wrong_init",
        [
            ([[1, 3, 2]], [1, 3, 3]),
            ([[-1, -2]], [-1, -1]),
            ([[5]], [5]),
            ([[2, 2, 4]], [2, 2, 4]),
            ([[-3, -1, -2]], [-3, -1, -1]),
        ],
    ),
    P(
        "running_product",
        "xs",
        "returns the list of the running products of the elements of xs",
        """
        def running_product(xs):
            acc = 1
            out = []
            for x in xs:
                acc *= x
                out.append(acc)
            return out
        """,
        ("acc = 1", "acc = 0"),
        "wrong_init",
        [
            ([[1, 2, 3]], [1, 2, 6]),
            ([[]], []),
            ([[5]], [5]),
            ([[2, 2, 2]], [2, 4, 8]),
            ([[-1, 4]], [-1, -4]),
        ],
    ),
    P(
        "product_of_digits",
        "n",
        "returns the product of the decimal digits of the integer n >= 0",
        """
        def product_of_digits(n):
            result = 1
            for c in str(n):
                result *= int(c)
            return result
        """,
        ("result = 1", "result = 0"),
        "wrong_init",
        [([123], 6), ([5], 5), ([0], 0), ([99], 81), ([101], 0), ([234], 24)],
    ),
    P(
        "min_length",
        "words",
        "returns the length of the shortest string in the non-empty list words",
        """
        def min_length(words):
            best = len(words[0])
            for w in words:
                if len(w) < best:
                    best = len(w)
            return best
        """,
        ("best = len(words[0])", "best = 0"),
        "wrong_init",
        [
            ([["ab", "c"]], 1),
            ([["hello"]], 5),
            ([["aa", "bb"]], 2),
            ([["abc", "de", "fghi"]], 2),
            ([[""]], 0),
        ],
        "eval",
    ),
    P(
        "running_min",
        "xs",
        "returns the list whose i-th element is the smallest of xs[0] to xs[i], for a non-empty xs",
        """
        def running_min(xs):
            best = xs[0]
            out = []
            for x in xs:
                if x < best:
                    best = x
                out.append(best)
            return out
        """,
        ("best = xs[0]", "best = 0"),
        "wrong_init",
        [
            ([[3, 1, 2]], [3, 1, 1]),
            ([[1, 2]], [1, 1]),
            ([[4]], [4]),
            ([[5, 5, 3]], [5, 5, 3]),
            ([[2, 3, 1]], [2, 2, 1]),
        ],
        "eval",
    ),
    P(
        "max_pair_sum",
        "xs",
        "returns the largest sum of two neighbouring elements of xs, which has at least 2 elements",
        """
        def max_pair_sum(xs):
            best = xs[0] + xs[1]
            for i in range(len(xs) - 1):
                if xs[i] + xs[i + 1] > best:
                    best = xs[i] + xs[i + 1]
            return best
        """,
        ("best = xs[0] + xs[1]", "best = 0"),
        "wrong_init",
        [
            ([[1, 2, 3]], 5),
            ([[-5, -1, -3]], -4),
            ([[4, 4]], 8),
            ([[0, 9, -9]], 9),
            ([[-2, -2]], -4),
        ],
        "eval",
    ),
    P(
        "product_of_odds",
        "xs",
        "returns the product of the odd elements of xs, or 1 if there are none",
        """
        def product_of_odds(xs):
            result = 1
            for x in xs:
                if x % 2 == 1:
                    result *= x
            return result
        """,
        ("result = 1", "result = 0"),
        "wrong_init",
        [([[1, 2, 3]], 3), ([[]], 1), ([[2, 4]], 1), ([[5, 7]], 35), ([[3]], 3)],
        "eval",
    ),
    # --- max_min ------------------------------------------------------------------------------
    P(
        "largest_of_three",
        "a, b, c",
        "returns the largest of a, b and c",
        """
        def largest_of_three(a, b, c):
            return max(a, b, c)
        """,
        ("max(", "min("),
        "max_min",
        [([1, 2, 3], 3), ([3, 2, 1], 3), ([5, 5, 5], 5), ([-1, -2, -3], -1), ([0, 7, 2], 7)],
    ),
    P(
        "longest_length",
        "words",
        "returns the length of the longest string in words, or 0 for an empty list",
        """
        def longest_length(words):
            return max((len(w) for w in words), default=0)
        """,
        ("max(", "min("),
        "max_min",
        [
            ([["a", "abc"]], 3),
            ([[]], 0),
            ([["hi"]], 2),
            ([["ab", "cd"]], 2),
            ([["abcd", "x", ""]], 4),
        ],
    ),
    P(
        "larger_sum",
        "xs, ys",
        "returns the larger of the sum of xs and the sum of ys",
        """
        def larger_sum(xs, ys):
            return max(sum(xs), sum(ys))
        """,
        ("max(", "min("),
        "max_min",
        [
            ([[1, 2], [5]], 5),
            ([[4], [1, 1]], 4),
            ([[], []], 0),
            ([[-1], [-2]], -1),
            ([[3], [3]], 3),
        ],
    ),
    P(
        "floor_at",
        "xs, lo",
        "returns xs with every element smaller than lo replaced by lo",
        """
        def floor_at(xs, lo):
            return [max(x, lo) for x in xs]
        """,
        ("max(", "min("),
        "max_min",
        [
            ([[1, 5, 3], 3], [3, 5, 3]),
            ([[], 0], []),
            ([[-1, 2], 0], [0, 2]),
            ([[7], 7], [7]),
            ([[10, 20], 5], [10, 20]),
        ],
    ),
    P(
        "max_digit",
        "n",
        "returns the largest decimal digit of the integer n >= 0",
        """
        def max_digit(n):
            return max(int(c) for c in str(n))
        """,
        ("return max(", "return min("),
        "max_min",
        [([123], 3), ([907], 9), ([0], 0), ([5], 5), ([4411], 4)],
    ),
    P(
        "longest_word",
        "words",
        "returns the first longest string in the non-empty list words",
        """
        def longest_word(words):
            return max(words, key=len)
        """,
        ("max(", "min("),
        "max_min",
        [
            ([["a", "abc", "de"]], "abc"),
            ([["hi"]], "hi"),
            ([["ab", "cd"]], "ab"),
            ([["x", "yy", "zz"]], "yy"),
            ([["long", "s"]], "long"),
        ],
    ),
    P(
        "best_total",
        "rounds",
        "returns the sum of the largest element of each list in rounds",
        """
        def best_total(rounds):
            return sum(max(r) for r in rounds)
        """,
        ("max(", "min("),
        "max_min",
        [
            ([[[1, 2], [3]]], 5),
            ([[]], 0),
            ([[[5, 1, 2]]], 5),
            ([[[-1, -2], [0]]], -1),
            ([[[4], [4, 9]]], 13),
        ],
    ),
    P(
        "pairwise_max",
        "xs, ys",
        "returns the list of the larger of xs[i] and ys[i] for each position i",
        """
        def pairwise_max(xs, ys):
            return [max(x, y) for x, y in zip(xs, ys)]
        """,
        ("[max(", "[min("),
        "max_min",
        [
            ([[1, 5], [3, 2]], [3, 5]),
            ([[], []], []),
            ([[0], [0]], [0]),
            ([[-1, -2], [-3, 4]], [-1, 4]),
            ([[7, 7], [1, 9]], [7, 9]),
        ],
    ),
    P(
        "max_char",
        "s",
        "returns the character of the non-empty string s that comes last in alphabetical order",
        """
        def max_char(s):
            return max(s)
        """,
        ("return max(", "return min("),
        "max_min",
        [(["abc"], "c"), (["zebra"], "z"), (["a"], "a"), (["banana"], "n"), (["hello"], "o")],
        "eval",
    ),
    P(
        "relu",
        "xs",
        "returns xs with every negative element replaced by 0",
        """
        def relu(xs):
            return [max(0, x) for x in xs]
        """,
        ("max(", "min("),
        "max_min",
        [([[-1, 2]], [0, 2]), ([[]], []), ([[0]], [0]), ([[3, 4]], [3, 4]), ([[-5, -6]], [0, 0])],
        "eval",
    ),
    P(
        "most_words",
        "sentences",
        "returns the largest number of words in a sentence of the non-empty list sentences",
        """
        def most_words(sentences):
            return max(len(s.split()) for s in sentences)
        """,
        ("max(", "min("),
        "max_min",
        [
            ([["a b", "c"]], 2),
            ([["one"]], 1),
            ([["x y z", "p q"]], 3),
            ([["", ""]], 0),
            ([["hi there", "a b c d"]], 4),
        ],
        "eval",
    ),
    # --- sign ---------------------------------------------------------------------------------
    P(
        "difference",
        "a, b",
        "returns a minus b",
        """
        def difference(a, b):
            return a - b
        """,
        ("a - b", "a + b"),
        "sign",
        [([5, 3], 2), ([3, 5], -2), ([0, 0], 0), ([-1, -1], 0), ([10, 0], 10)],
    ),
    P(
        "spread",
        "xs",
        "returns the difference between the largest and the smallest element of the non-empty xs",
        """
        def spread(xs):
            return max(xs) - min(xs)
        """,
        ("max(xs) - min(xs)", "max(xs) + min(xs)"),
        "sign",
        [([[1, 5, 3]], 4), ([[2]], 0), ([[-3, 3]], 6), ([[7, 7]], 0), ([[0, 10]], 10)],
    ),
    P(
        "subtract_lists",
        "xs, ys",
        "returns the element-wise difference xs minus ys of two lists of equal length",
        """
        def subtract_lists(xs, ys):
            return [x - y for x, y in zip(xs, ys)]
        """,
        ("x - y", "x + y"),
        "sign",
        [
            ([[5, 3], [1, 1]], [4, 2]),
            ([[], []], []),
            ([[0], [0]], [0]),
            ([[1, 2], [3, 4]], [-2, -2]),
            ([[10], [5]], [5]),
        ],
    ),
    P(
        "change",
        "old, new",
        "returns how much a value rose from old to new, negative if it fell",
        """
        def change(old, new):
            return new - old
        """,
        ("new - old", "new + old"),
        "sign",
        [([1, 5], 4), ([5, 1], -4), ([3, 3], 0), ([0, 10], 10), ([-2, 2], 4)],
    ),
    P(
        "net_balance",
        "deposits, withdrawals",
        "returns the total of deposits minus the total of withdrawals",
        """
        def net_balance(deposits, withdrawals):
            return sum(deposits) - sum(withdrawals)
        """,
        ("sum(deposits) - sum(", "sum(deposits) + sum("),
        "sign",
        [([[10, 5], [3]], 12), ([[], []], 0), ([[5], [5]], 0), ([[], [4]], -4), ([[1, 1], []], 2)],
    ),
    P(
        "age_in",
        "born, year",
        "returns the age in the given year of someone born in the year born",
        """
        def age_in(born, year):
            return year - born
        """,
        ("year - born", "year + born"),
        "sign",
        [
            ([2000, 2020], 20),
            ([1990, 1990], 0),
            ([2010, 2024], 14),
            ([1, 2], 1),
            ([1950, 2000], 50),
        ],
    ),
    P(
        "remaining",
        "total, used",
        "returns what is left of total after using used",
        """
        def remaining(total, used):
            return total - used
        """,
        ("total - used", "total + used"),
        "sign",
        [([10, 3], 7), ([5, 5], 0), ([0, 0], 0), ([8, 0], 8), ([3, 4], -1)],
    ),
    P(
        "neighbour_diffs",
        "xs",
        "returns the list of the differences between each element of xs and the one before it",
        """
        def neighbour_diffs(xs):
            return [xs[i + 1] - xs[i] for i in range(len(xs) - 1)]
        """,
        ("xs[i + 1] - xs[i]", "xs[i + 1] + xs[i]"),
        "sign",
        [
            ([[1, 4, 2]], [3, -2]),
            ([[]], []),
            ([[5]], []),
            ([[3, 3]], [0]),
            ([[0, 10, 30]], [10, 20]),
        ],
    ),
    P(
        "profit",
        "revenue, cost",
        "returns revenue minus cost",
        """
        def profit(revenue, cost):
            return revenue - cost
        """,
        ("revenue - cost", "revenue + cost"),
        "sign",
        [([10, 4], 6), ([4, 10], -6), ([0, 0], 0), ([7, 7], 0), ([100, 1], 99)],
        "eval",
    ),
    P(
        "decrement_all",
        "xs, k",
        "returns xs with k subtracted from every element",
        """
        def decrement_all(xs, k):
            return [x - k for x in xs]
        """,
        ("x - k", "x + k"),
        "sign",
        [
            ([[1, 2], 1], [0, 1]),
            ([[], 5], []),
            ([[5], 0], [5]),
            ([[0, 0], 2], [-2, -2]),
            ([[10, 20], 10], [0, 10]),
        ],
        "eval",
    ),
    P(
        "last_minus_first",
        "xs",
        "returns the last element of the non-empty list xs minus the first one",
        """
        def last_minus_first(xs):
            return xs[-1] - xs[0]
        """,
        ("xs[-1] - xs[0]", "xs[-1] + xs[0]"),
        "sign",
        [([[1, 2, 5]], 4), ([[7]], 0), ([[5, 1]], -4), ([[3, 3]], 0), ([[-2, 8]], 10)],
        "eval",
    ),
]


# --- generated evaluation problems -------------------------------------------------------------

# Fixed inputs per argument kind; the cases of a generated problem are its canonical solution's
# outputs on these (a problem whose buggy variant passes them all is rejected by `check`).
_N = [[0], [1], [2], [3], [5], [8]]
_LISTS = [[[3]], [[1, 5, 2]], [[-4, 7, 0, 10]], [[12, -3, 3, 50, 100]], [[2, 2, 9, -1]]]
_RANGES = [[1, 3], [2, 5], [0, 0], [-2, 2], [4, 4], [3, 7]]


def _cases(code: str, name: str, inputs: list[list[Any]]) -> list[tuple[list[Any], Any]]:
    namespace: dict[str, Any] = {}
    exec(compile(code, f"<{name}>", "exec"), namespace)  # noqa: S102 - our own code
    return [(args, namespace[name](*copy.deepcopy(args))) for args in inputs]


def _gen(name, args, does, code, bug, family, inputs) -> DemoProblem:
    code = dedent(code).lstrip("\n")
    return DemoProblem(name, args, does, code, bug, family, _cases(code, name, inputs), "eval")


def _with(value: int) -> list[list[Any]]:
    """List inputs that hold ``value`` itself (where `<` and `<=` part) and its neighbours."""
    return [*_LISTS, [[value, value - 1, value + 1]]]


# fmt: off
# (the templates below are tables: one row per problem, kept one line each where it fits)
def generated_problems() -> list[DemoProblem]:
    """The generated evaluation problems, six bug families, deterministic."""
    out: list[DemoProblem] = []
    # off_by_one: a range that must include its upper end.
    for word, text, expr in [
        ("doubles", "twice each integer", "2 * i"),
        ("triples", "three times each integer", "3 * i"),
        ("successors", "each integer plus one", "i + 1"),
        ("predecessors", "each integer minus one", "i - 1"),
        ("halves", "each integer floor-divided by 2", "i // 2"),
        ("last_digits", "the last decimal digit of each integer", "i % 10"),
        ("squares_plus_one", "each integer squared plus one", "i * i + 1"),
        ("pronic_numbers", "each integer times the next one", "i * (i + 1)"),
        ("negatives", "the negative of each integer", "-i"),
        ("quadruples", "four times each integer", "4 * i"),
        ("squares_minus_one", "each integer squared minus one", "i * i - 1"),
        ("remainders_by_3", "the remainder of each integer divided by 3", "i % 3"),
        ("tens", "ten times each integer", "10 * i"),
        ("odd_successors", "twice each integer plus one", "2 * i + 1"),
        ("cubes_minus_squares", "the cube minus the square of each integer", "i ** 3 - i * i"),
    ]:
        out.append(_gen(
            f"total_of_{word}", "n", f"returns the sum of {text} from 1 to n inclusive",
            f"def total_of_{word}(n):\n    return sum({expr} for i in range(1, n + 1))\n",
            ("range(1, n + 1)", "range(1, n)"), "off_by_one", _N,
        ))  # fmt: skip
    for word, text, expr in [
        ("doubled", "twice each integer", "2 * i"),
        ("cubed", "the cube of each integer", "i ** 3"),
        ("halved", "each integer floor-divided by 2", "i // 2"),
        ("negated", "the negative of each integer", "-i"),
        ("parities", "the remainder of each integer divided by 2", "i % 2"),
        ("tripled_minus_one", "three times each integer minus one", "3 * i - 1"),
        ("squared", "the square of each integer", "i * i"),
        ("plus_ten", "each integer plus 10", "i + 10"),
        ("square_digits", "the last digit of the square of each integer", "i * i % 10"),
        ("thirds", "each integer floor-divided by 3", "i // 3"),
    ]:
        out.append(_gen(
            f"list_{word}", "n", f"returns the list of {text} from 1 to n inclusive, in order",
            f"def list_{word}(n):\n    return [{expr} for i in range(1, n + 1)]\n",
            ("range(1, n + 1)", "range(1, n)"), "off_by_one", _N,
        ))  # fmt: skip
    for word, text, cond in [
        ("odd_numbers", "are odd", "i % 2 == 1"),
        ("threes", "are divisible by 3", "i % 3 == 0"),
        ("fives", "are divisible by 5", "i % 5 == 0"),
        ("evens", "are even", "i % 2 == 0"),
        ("squares", "are perfect squares", "int(i ** 0.5) ** 2 == i"),
        ("ones_digits", "end in the digit 1", "i % 10 == 1"),
        ("fours", "are divisible by 4", "i % 4 == 0"),
        ("sixes", "are divisible by 6", "i % 6 == 0"),
        ("non_threes", "are not divisible by 3", "i % 3 != 0"),
        ("above_four", "are greater than 4", "i > 4"),
    ]:
        out.append(_gen(
            f"tally_{word}", "n", f"returns how many of the integers from 1 to n inclusive {text}",
            f"def tally_{word}(n):\n    return sum(1 for i in range(1, n + 1) if {cond})\n",
            ("range(1, n + 1)", "range(1, n)"), "off_by_one",
            [[1], [3], [4], [5], [6], [9], [10], [16]],
        ))  # fmt: skip
    for word, text, expr in [
        ("squares", "the squares of", "i * i"),
        ("doubles", "twice", "2 * i"),
        ("numbers", "", "i"),
        ("cubes", "the cubes of", "i ** 3"),
        ("abs_values", "the absolute values of", "abs(i)"),
        ("triples", "three times", "3 * i"),
        ("successors", "the successors of", "i + 1"),
        ("remainders_by_4", "the remainders by 4 of", "i % 4"),
    ]:
        phrase = f"{text} the integers" if text else "the integers"
        out.append(_gen(
            f"span_sum_{word}", "a, b", f"returns the sum of {phrase} from a to b inclusive",
            f"def span_sum_{word}(a, b):\n    return sum({expr} for i in range(a, b + 1))\n",
            ("range(a, b + 1)", "range(a, b)"), "off_by_one", _RANGES,
        ))  # fmt: skip
    for k in (2, 3, 4, 5, 10):
        out.append(_gen(
            f"multiples_of_{k}_to", "n", f"returns the list of the multiples of {k} from {k} to n "
            "inclusive, in order", f"def multiples_of_{k}_to(n):\n"
            f"    return list(range({k}, n + 1, {k}))\n", ("n + 1", "n"), "off_by_one",
            [[0], [k], [2 * k], [2 * k + 1], [10], [3]],
        ))  # fmt: skip
    # strict_compare: "at least" / "at most" thresholds.
    for lo, hi in ((1, 5), (0, 10), (10, 20), (-3, 3)):
        name = f"count_from_{lo}_to_{hi}".replace("-", "minus_")
        out.append(_gen(
            name, "xs", f"returns how many elements of xs lie between {lo} and {hi}, both "
            "included", f"def {name}(xs):\n    return sum(1 for x in xs if {lo} <= x <= {hi})\n",
            (f"{lo} <= x", f"{lo} < x"), "strict_compare", [*_LISTS, [[lo, hi, hi + 1]]],
        ))  # fmt: skip
    for k in (2, 3, 10, 25, 50, 100):
        out.append(_gen(
            f"number_at_least_{k}", "xs",
            f"returns the number of elements of xs that are {k} or more",
            f"def number_at_least_{k}(xs):\n    return sum(1 for x in xs if x >= {k})\n",
            (">=", ">"), "strict_compare", _with(k),
        ))  # fmt: skip
        out.append(_gen(
            f"number_at_most_{k}", "xs",
            f"returns the number of elements of xs that are {k} or less",
            f"def number_at_most_{k}(xs):\n    return sum(1 for x in xs if x <= {k})\n",
            ("<=", "<"), "strict_compare", _with(k),
        ))  # fmt: skip
        out.append(_gen(
            f"keep_at_least_{k}", "xs",
            f"returns, in order, the elements of xs that are {k} or more",
            f"def keep_at_least_{k}(xs):\n    return [x for x in xs if x >= {k}]\n",
            (">=", ">"), "strict_compare", _with(k),
        ))  # fmt: skip
    for k in (1, 5, 20, 40):
        out.append(_gen(
            f"every_at_least_{k}", "xs", f"returns True if no element of xs is below {k}",
            f"def every_at_least_{k}(xs):\n    return all(x >= {k} for x in xs)\n",
            (">=", ">"), "strict_compare", [*_LISTS, [[k]], [[k, k + 3]]],
        ))  # fmt: skip
        out.append(_gen(
            f"sum_at_most_{k}", "xs", f"returns the sum of the elements of xs that are {k} or less",
            f"def sum_at_most_{k}(xs):\n    return sum(x for x in xs if x <= {k})\n",
            ("<=", "<"), "strict_compare", _with(k),
        ))  # fmt: skip
    for name, args, does, expr, bug, inputs in [
        ("is_freezing", "temp", "temp is 0 or below", "temp <= 0", ("<=", "<"),
         [[-5], [0], [1], [12], [-1]]),
        ("is_full", "count, capacity", "count has reached capacity", "count >= capacity",
         (">=", ">"), [[3, 5], [5, 5], [6, 5], [0, 0], [1, 4]]),
        ("is_heavy", "kg", "kg is 100 or more", "kg >= 100", (">=", ">"),
         [[99], [100], [150], [0], [101]]),
        ("is_short_word", "word", "word has 3 letters or fewer", "len(word) <= 3", ("<=", "<"),
         [["a"], ["abc"], ["abcd"], [""], ["hello"]]),
        ("is_long_list", "xs", "xs has 5 elements or more", "len(xs) >= 5", (">=", ">"),
         [[[1, 2, 3, 4, 5]], [[1]], [[]], [[1, 2, 3, 4, 5, 6]], [[0, 0, 0, 0]]]),
        ("is_affordable", "price, cash", "price is no more than cash", "price <= cash",
         ("<=", "<"), [[3, 5], [5, 5], [6, 5], [0, 0], [10, 1]]),
        ("reached_goal", "steps, goal", "steps is at least goal", "steps >= goal", (">=", ">"),
         [[100, 100], [99, 100], [150, 100], [0, 0], [5, 10]]),
        ("is_on_time", "arrival, deadline", "arrival is no later than deadline",
         "arrival <= deadline", ("<=", "<"), [[9, 10], [10, 10], [11, 10], [0, 0], [20, 5]]),
        ("is_passing", "score", "score is 50 or more", "score >= 50", (">=", ">"),
         [[49], [50], [80], [0], [51]]),
        ("fits_in", "size, limit", "size is no bigger than limit", "size <= limit",
         ("<=", "<"), [[3, 5], [5, 5], [6, 5], [0, 0], [10, 1]]),
        ("is_senior", "age", "age is 65 or more", "age >= 65", (">=", ">"),
         [[64], [65], [80], [0], [66]]),
        ("has_quorum", "present, needed", "present is at least needed", "present >= needed",
         (">=", ">"), [[3, 5], [5, 5], [6, 5], [0, 0], [1, 4]]),
    ]:
        out.append(_gen(
            name, args, f"returns True if {does}",
            f"def {name}({args}):\n    return {expr}\n", bug, "strict_compare", inputs,
        ))  # fmt: skip
    # missing_abs: a distance that must not go negative.
    for name, args, does, code, bug, inputs in [
        ("total_distance_to", "xs, c", "returns the sum of the distances of the elements of xs "
         "from the number c", "return sum(abs(x - c) for x in xs)", ("abs(x - c)", "(x - c)"),
         [[[1, 5], 3], [[10], 0], [[], 4], [[-2, 2], 0], [[7, 8, 9], 10]]),
        ("farthest_distance", "xs, c", "returns the largest distance between an element of the "
         "non-empty xs and the number c", "return max(abs(x - c) for x in xs)",
         ("abs(x - c)", "(x - c)"), [[[1, 5], 3], [[10], 0], [[-2, 2], 0], [[7, 8, 9], 10],
                                     [[0, 1], 5]]),
        ("distances_to", "xs, c", "returns the list of the distances of the elements of xs "
         "from the number c", "return [abs(x - c) for x in xs]", ("abs(x - c)", "(x - c)"),
         [[[1, 5], 3], [[10], 0], [[], 4], [[-2, 2], 0], [[7, 8, 9], 10]]),
        ("total_variation", "xs", "returns the sum of the distances between neighbouring "
         "elements of xs", "return sum(abs(b - a) for a, b in zip(xs, xs[1:]))",
         ("abs(b - a)", "(b - a)"), [[[1, 5, 2]], [[3]], [[]], [[10, 0, 10]], [[4, 4, 5]]]),
        ("magnitude_of_sum", "xs", "returns the absolute value of the sum of xs",
         "return abs(sum(xs))", ("abs(sum(xs))", "(sum(xs))"),
         [[[1, 5]], [[-3]], [[]], [[-4, 1]], [[2, -9, 3]]]),
        ("within_tolerance", "x, target, tol", "returns True if x is at most tol away from "
         "target", "return abs(x - target) <= tol", ("abs(x - target)", "(x - target)"),
         [[5, 4, 1], [3, 4, 1], [1, 4, 1], [10, 4, 2], [0, 0, 0]]),
        ("nearest_to", "xs, c", "returns the first element of the non-empty xs that is closest "
         "to the number c", "return min(xs, key=lambda x: abs(x - c))",
         ("abs(x - c)", "(x - c)"), [[[1, 5], 4], [[10], 0], [[-9, 2], 0], [[7, 8, 9], 10],
                                     [[0, 1], -5]]),
        ("absolute_gaps", "xs, ys", "returns the list of the distances between xs[i] and ys[i] "
         "for each position i of two lists of equal length",
         "return [abs(x - y) for x, y in zip(xs, ys)]", ("abs(x - y)", "(x - y)"),
         [[[1, 5], [3, 3]], [[], []], [[0], [-4]], [[9, 2, 4], [1, 8, 4]], [[5], [5]]]),
        ("count_far_from", "xs, c, d", "returns how many elements of xs are more than d away "
         "from the number c", "return sum(1 for x in xs if abs(x - c) > d)",
         ("abs(x - c)", "(x - c)"), [[[1, 5], 3, 1], [[10], 0, 20], [[], 4, 0], [[-2, 2], 0, 1],
                                     [[7, 8, 9], 10, 2]]),
        ("distances_to_first", "xs", "returns the list of the distances between each element "
         "of the non-empty xs and its first element", "return [abs(x - xs[0]) for x in xs]",
         ("abs(x - xs[0])", "(x - xs[0])"), [[[1, 5, 0]], [[3]], [[10, 0, 10]], [[4, 4, 5]],
                                             [[-1, -3]]]),
        ("widest_gap", "xs, ys", "returns the largest distance between xs[i] and ys[i] over "
         "the positions i of two non-empty lists of equal length",
         "return max(abs(x - y) for x, y in zip(xs, ys))", ("abs(x - y)", "(x - y)"),
         [[[1, 5], [3, 3]], [[0], [-4]], [[9, 2, 4], [1, 8, 4]], [[5], [5]], [[1, 2], [9, 9]]]),
    ]:
        out.append(_gen(
            name, args, does, f"def {name}({args}):\n    {code}\n", bug, "missing_abs", inputs,
        ))  # fmt: skip
    for c in (10, 100, -5):
        name = f"distance_to_{c}".replace("-", "minus_")
        out.append(_gen(
            name, "x", f"returns the distance between the number x and {c}",
            f"def {name}(x):\n    return abs(x - {c})\n".replace("- -5", "+ 5"),
            ("abs(", "("), "missing_abs", [[0], [c], [c + 3], [c - 4], [1000], [-20]],
        ))  # fmt: skip
    # wrong_init: a product that starts at 1, a maximum that starts at the first element.
    for k in (2, 3):
        name = f"product_of_first_{k}"
        code = (
            f"def {name}(xs):\n    result = 1\n    for x in xs[:{k}]:\n        result *= x\n"
            "    return result\n"
        )
        out.append(_gen(
            name, "xs", f"returns the product of the first {k} elements of xs (of all of them "
            f"if there are fewer than {k})", code, ("result = 1", "result = 0"), "wrong_init",
            [*_LISTS, [[]]],
        ))  # fmt: skip
    for name, does, cond in [
        ("product_above_2", "greater than 2", "x > 2"),
        ("product_of_evens", "that are even", "x % 2 == 0"),
        ("product_of_negatives", "that are negative", "x < 0"),
        ("product_of_nonzero", "that are not 0", "x != 0"),
        ("product_below_10", "smaller than 10", "x < 10"),
        ("product_of_positives", "that are positive", "x > 0"),
        ("product_of_multiples_of_3", "that are divisible by 3", "x % 3 == 0"),
        ("product_of_small", "between -5 and 5", "-5 <= x <= 5"),
    ]:
        code = (
            f"def {name}(xs):\n    result = 1\n    for x in xs:\n        if {cond}:\n"
            "            result *= x\n    return result\n"
        )
        out.append(_gen(
            name, "xs", f"returns the product of the elements of xs {does}, or 1 if there are none",
            code, ("result = 1", "result = 0"), "wrong_init", [*_LISTS, [[]]],
        ))  # fmt: skip
    for name, does, expr in [
        ("largest_cube", "the largest cube of an element", "x ** 3"),
        ("largest_negation", "the largest negation of an element", "-x"),
        ("largest_minus_100", "the largest value of an element minus 100", "x - 100"),
        ("largest_minus_ten", "the largest value of an element minus 10", "x - 10"),
        ("largest_half", "the largest half (floor division by 2) of an element", "x // 2"),
        ("largest_triple", "the largest triple of an element", "3 * x"),
    ]:
        # Written unlike the training split's max_value/min_value, which decontamination
        # would otherwise drop as near-copies.
        code = (
            f"def {name}(xs):\n    values = [{expr} for x in xs]\n    best = values[0]\n"
            "    for v in values:\n        best = v if v > best else best\n    return best\n"
        )
        out.append(_gen(
            name, "xs", f"returns {does} of the non-empty list xs, without using max",
            code, ("best = values[0]", "best = 0"), "wrong_init",
            [[[3]], [[1, 5, 2]], [[-4, -7, -1]], [[12, -3, 3]], [[-20, -30]]],
        ))  # fmt: skip
    # max_min: the larger where the smaller is written.
    for name, args, does, code, inputs in [
        ("largest_last_digit", "xs", "returns the largest last decimal digit among the "
         "non-negative integers of the non-empty xs", "return max(x % 10 for x in xs)",
         [[[13, 29, 4]], [[10]], [[55, 51]], [[7, 70, 700]], [[18, 81]]]),
        ("longest_list_length", "lists", "returns the length of the longest list in the "
         "non-empty list of lists lists", "return max(len(l) for l in lists)",
         [[[[1], [1, 2]]], [[[]]], [[[1, 2, 3], []]], [[[0], [0], [0]]], [[[], [5, 5]]]]),
        ("highest_total", "teams", "returns the largest sum of a list in the non-empty list of "
         "lists teams", "return max(sum(t) for t in teams)",
         [[[[1], [1, 2]]], [[[4]]], [[[1, 2, 3], [9]]], [[[0], [-1]]], [[[-5], [5, -5]]]]),
        ("larger_end", "xs", "returns the larger of the first and the last element of the "
         "non-empty xs", "return max(xs[0], xs[-1])",
         [[[1, 2, 3]], [[7]], [[9, 0, 2]], [[-1, -5]], [[4, 4]]]),
        ("peak_pair_sum", "xs", "returns the largest sum of two neighbouring elements of xs, "
         "which has at least 2 elements", "return max(a + b for a, b in zip(xs, xs[1:]))",
         [[[1, 2, 3]], [[7, 1]], [[9, 0, 2]], [[-1, -5, -2]], [[4, 4, 0, 8]]]),
        ("cap_at", "xs, hi", "returns xs with every element larger than hi replaced by hi",
         "return [min(x, hi) for x in xs]", [[[1, 5], 3], [[], 0], [[9], 9], [[-2, 8], 0],
                                             [[3, 4, 5], 4]]),
        ("longest_word_length", "text", "returns the length of the longest word in the "
         "non-empty string text, words being separated by spaces",
         "return max(len(w) for w in text.split())",
         [["a bb ccc"], ["hello"], ["hi there"], ["xyz a"], ["one two three"]]),
        ("best_of_each", "xs, ys", "returns the list of the larger of xs[i] and ys[i] plus 1 "
         "for each position i", "return [max(x, y) + 1 for x, y in zip(xs, ys)]",
         [[[1, 5], [3, 3]], [[], []], [[0], [-4]], [[9, 2, 4], [1, 8, 4]], [[5], [5]]]),
        ("widest_interval", "pairs", "returns the largest hi - lo over the (lo, hi) pairs of the "
         "non-empty list pairs", "return max(hi - lo for lo, hi in pairs)",
         [[[[1, 3], [2, 9]]], [[[0, 0]]], [[[5, 6], [1, 2]]], [[[-3, 3], [0, 1]]],
          [[[2, 2], [4, 5]]]]),
        ("peak_pair_product", "xs", "returns the largest product of two neighbouring elements "
         "of xs, which has at least 2 elements", "return max(a * b for a, b in zip(xs, xs[1:]))",
         [[[1, 2, 3]], [[7, 1]], [[9, 0, 2]], [[-1, -5, -2]], [[4, 4, 0, 8]]]),
        ("double_top_score", "scores", "returns twice the largest element of the non-empty "
         "list scores", "return 2 * max(scores)", [[[1, 2, 3]], [[7]], [[9, 0, 2]], [[-1, -5]],
                                                  [[4, 4]]]),
    ]:
        old = "min(" if name == "cap_at" else "max("
        new = "max(" if name == "cap_at" else "min("
        out.append(_gen(
            name, args, does, f"def {name}({args}):\n    {code}\n", (old, new), "max_min",
            inputs,
        ))  # fmt: skip
    for k in (2, 3):
        out.append(_gen(
            f"top_of_first_{k}", "xs", f"returns the largest of the first {k} elements of the "
            "non-empty xs", f"def top_of_first_{k}(xs):\n    return max(xs[:{k}])\n",
            ("max(", "min("), "max_min", [[[1, 2, 3]], [[7]], [[9, 0, 2]], [[-1, -5]],
                                          [[4, 4, 8]]],
        ))  # fmt: skip
    # sign: a difference written as a sum.
    for k in (1, 10, 100):
        out.append(_gen(
            f"total_less_{k}", "xs", f"returns the sum of xs minus {k}",
            f"def total_less_{k}(xs):\n    return sum(xs) - {k}\n", (" - ", " + "), "sign",
            _LISTS,
        ))  # fmt: skip
    for name, args, does, expr, inputs in [
        ("price_after_discount", "price, discount", "returns price minus discount",
         "price - discount", [[10, 2], [5, 5], [0, 0], [7, 1], [100, 30]]),
        ("days_left", "day, total", "returns how many days are left after day of total days",
         "total - day", [[2, 10], [10, 10], [0, 7], [3, 4], [1, 30]]),
        ("weight_lost", "before, after", "returns how much weight was lost going from before "
         "to after", "before - after", [[80, 75], [60, 60], [90, 95], [0, 0], [71, 70]]),
        ("goal_difference", "scored, conceded", "returns scored minus conceded",
         "scored - conceded", [[3, 1], [0, 0], [1, 4], [2, 2], [5, 0]]),
        ("temperature_drop", "high, low", "returns how far the temperature fell from high to "
         "low", "high - low", [[20, 12], [5, 5], [0, -4], [3, 7], [30, 0]]),
        ("sum_without_max", "xs", "returns the sum of the non-empty xs minus its largest "
         "element", "sum(xs) - max(xs)", [[[1, 2, 3]], [[7]], [[9, 0, 2]], [[-1, -5]],
                                          [[4, 4]]]),
        ("range_width", "lo, hi", "returns the width hi minus lo of the interval from lo to hi",
         "hi - lo", [[1, 3], [0, 0], [-2, 2], [5, 9], [4, 5]]),
        ("lower_by", "xs, k", "returns the list of each element of xs minus k",
         "[x - k for x in xs]", [[[1, 5], 3], [[], 4], [[0], 0], [[9, 2], 1], [[5], -2]]),
        ("seconds_remaining", "elapsed, limit", "returns limit minus elapsed",
         "limit - elapsed", [[10, 60], [60, 60], [0, 5], [7, 3], [30, 90]]),
        ("last_step", "xs", "returns the last element of xs minus the element before it, for "
         "xs with at least 2 elements", "xs[-1] - xs[-2]",
         [[[1, 2, 3]], [[7, 1]], [[9, 0, 2]], [[-1, -5]], [[4, 4]]]),
        ("change_due", "paid, cost", "returns paid minus cost", "paid - cost",
         [[10, 2], [5, 5], [0, 0], [7, 1], [100, 30]]),
        ("pages_left", "read, total", "returns how many of total pages are left after reading "
         "read of them", "total - read", [[2, 10], [10, 10], [0, 7], [3, 4], [1, 30]]),
        ("net_points", "points, penalty", "returns points minus penalty", "points - penalty",
         [[3, 1], [0, 0], [1, 4], [2, 2], [5, 0]]),
        ("first_minus_last", "xs", "returns the first element of the non-empty xs minus its "
         "last element", "xs[0] - xs[-1]", [[[1, 2, 3]], [[7]], [[9, 0, 2]], [[-1, -5]],
                                            [[4, 4]]]),
        ("balance_after", "balance, spent", "returns what is left of balance after spending "
         "spent", "balance - spent", [[10, 2], [5, 5], [0, 0], [7, 1], [100, 30]]),
    ]:
        out.append(_gen(
            name, args, does, f"def {name}({args}):\n    return {expr}\n", (" - ", " + "),
            "sign", inputs,
        ))  # fmt: skip
    return out
# fmt: on


def run_cases(code: str, entry_point: str, cases: list[tuple[list[Any], Any]]) -> list[bool]:
    """Run ``code`` in-process (it is ours, not a model's) and say which cases it passes.

    An exception counts as a failed case. Outputs compare by value *and* type, so ``True`` does
    not pass for ``1``.
    """
    namespace: dict[str, Any] = {}
    exec(compile(code, f"<{entry_point}>", "exec"), namespace)  # noqa: S102
    fn = namespace[entry_point]
    results = []
    for args, expected in cases:
        try:
            got = fn(*copy.deepcopy(args))
        except Exception:  # noqa: BLE001 - a crash is just a failed case here
            results.append(False)
            continue
        results.append(type(got) is type(expected) and got == expected)
    return results


def check(problem: DemoProblem) -> list[str]:
    """Problems with one demo problem, as messages; empty when it is sound."""
    errors = []
    if problem.family not in FAMILIES:
        errors.append(f"{problem.task_id}: unknown bug family {problem.family!r}")
    if problem.split not in ("train", "eval"):
        errors.append(f"{problem.task_id}: split must be train or eval")
    if not 5 <= len(problem.cases) <= 8:
        errors.append(f"{problem.task_id}: {len(problem.cases)} cases, want 5 to 8")
    try:
        buggy = problem.buggy
    except ValueError as exc:
        return [*errors, str(exc)]
    canonical_ok = run_cases(problem.code, problem.name, problem.cases)
    for i, ok in enumerate(canonical_ok):
        if not ok:
            errors.append(f"{problem.task_id}: canonical solution fails case {i}")
    if all(run_cases(buggy, problem.name, problem.cases)):
        errors.append(f"{problem.task_id}: buggy solution passes every case")
    return errors


def to_record(problem: DemoProblem) -> dict[str, Any]:
    return {
        "task_id": problem.task_id,
        "prompt": problem.prompt,
        "entry_point": problem.name,
        "canonical_solution": problem.code,
        "split": problem.split,
        "source": "demo",
        "tests": {
            "kind": "call",
            "cases": [
                {"input": encode(list(args)), "output": encode(out), "group": "base"}
                for args, out in problem.cases
            ],
            "atol": 0.0,
            "check": "exact",
        },
        "meta": {"buggy_solution": problem.buggy, "bug_family": problem.family},
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="problems JSONL to write")
    args = parser.parse_args(argv)

    problems = PROBLEMS + generated_problems()
    errors = [e for p in problems for e in check(p)]
    names = [p.name for p in problems]
    errors += [
        f"demo/{n}: duplicate name" for n in sorted({n for n in names if names.count(n) > 1})
    ]
    if errors:
        print("\n".join(errors), file=sys.stderr)
        return 1
    n = write_jsonl(args.out, (to_record(p) for p in problems))
    splits = {s: sum(p.split == s for p in problems) for s in ("train", "eval")}
    print(f"wrote {n} problems ({splits['train']} train, {splits['eval']} eval) to {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
