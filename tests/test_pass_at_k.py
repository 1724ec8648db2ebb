"""The unbiased pass@k estimator (Chen et al. 2021) against its definition, computed exactly."""

from __future__ import annotations

import itertools
import math
from fractions import Fraction

import pytest

from codedpo.evaluation.pass_at_k import count_passes, estimate, pass_at_k
from codedpo.io import InputError


def exact(n: int, c: int, k: int) -> Fraction:
    """The definition: 1 - C(n - c, k) / C(n, k) as an exact rational (C(a, b) = 0 for b > a)."""
    return 1 - Fraction(math.comb(n - c, k), math.comb(n, k))


def by_enumeration(n: int, c: int, k: int) -> Fraction:
    """The quantity estimated: the share of the k-subsets of n answers (c correct) holding a
    correct one."""
    answers = [True] * c + [False] * (n - c)
    subsets = list(itertools.combinations(range(n), k))
    return Fraction(sum(any(answers[i] for i in s) for s in subsets), len(subsets))


@pytest.mark.parametrize("n", range(1, 13))
def test_estimate_equals_the_definition_for_every_small_case(n: int) -> None:
    for c in range(n + 1):
        for k in range(1, n + 1):
            assert estimate(n, c, k) == pytest.approx(float(exact(n, c, k)), abs=1e-12), (n, c, k)


@pytest.mark.parametrize(("n", "c", "k"), [(5, 2, 2), (6, 1, 3), (7, 3, 4), (4, 4, 2), (6, 0, 1)])
def test_definition_is_the_chance_over_k_subsets(n: int, c: int, k: int) -> None:
    assert exact(n, c, k) == by_enumeration(n, c, k)
    assert estimate(n, c, k) == pytest.approx(float(by_enumeration(n, c, k)), abs=1e-12)


def test_known_values() -> None:
    assert estimate(10, 0, 5) == 0.0
    assert estimate(10, 10, 1) == 1.0
    assert estimate(10, 3, 1) == pytest.approx(0.3)  # pass@1 is the fraction correct
    assert estimate(10, 6, 5) == 1.0  # only 4 wrong answers: every 5 hold a correct one
    assert estimate(5, 1, 2) == pytest.approx(0.4)  # 1 - C(4,2)/C(5,2) = 1 - 6/10


def test_large_n_is_stable() -> None:
    # C(2000, 1000) overflows a float; the product form does not.
    with pytest.raises(OverflowError):
        float(math.comb(2000, 1000))
    for n, c, k in [(2000, 3, 1000), (2000, 1, 100), (1000, 999, 1), (200, 17, 100)]:
        assert estimate(n, c, k) == pytest.approx(float(exact(n, c, k)), rel=1e-9)
        assert 0.0 <= estimate(n, c, k) <= 1.0


def test_benchmark_pass_at_k_averages_problems_with_different_n() -> None:
    counts = {"a": (5, 0), "b": (5, 2), "c": (8, 8), "d": (6, 1)}
    got = pass_at_k(counts, [1, 2, 5])
    for k in (1, 2, 5):
        want = sum(exact(n, c, k) for n, c in counts.values()) / len(counts)
        assert got[str(k)] == pytest.approx(float(want), abs=1e-12)
    assert list(got) == ["1", "2", "5"]
    assert got["1"] == pytest.approx((0 + 0.4 + 1 + 1 / 6) / 4)


def test_k_above_n_names_the_flag_and_the_problem() -> None:
    counts = {"a": (10, 3), "b": (4, 1), "c": (3, 0)}
    with pytest.raises(InputError, match=r"--pass-at-k: k=5 exceeds the 3 sampled response\(s\) "
                       r"of 'c' in s\.jsonl \(2 problem\(s\) have fewer than 5\)"):  # fmt: skip
        pass_at_k(counts, [1, 5], source="s.jsonl")
    with pytest.raises(InputError, match="--pass-at-k: k must be a positive integer, got 0"):
        pass_at_k(counts, [0])
    # A problem without samples has n = 0: even pass@1 cannot be estimated on it.
    with pytest.raises(InputError, match="k=1 exceeds the 0 sampled"):
        pass_at_k(count_passes(["a", "b"], [("a", True)]), [1])


def test_count_passes() -> None:
    verdicts = [("a", True), ("b", False), ("a", False), ("a", True)]
    assert count_passes(["a", "b", "z"], verdicts) == {"a": (3, 2), "b": (1, 0), "z": (0, 0)}
