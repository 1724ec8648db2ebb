"""Paired differences of pass@1: bootstrap interval, McNemar's exact test, power."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy.stats import binomtest

from codedpo.reporting.significance import (
    mcnemar_exact,
    mcnemar_power,
    paired_difference,
    paired_verdicts,
    smallest_n,
)


def test_difference_counts_and_interval() -> None:
    # 200 problems: 30 gained, 10 lost, 60 both pass, 100 both fail -> +0.10.
    base = [False] * 30 + [True] * 10 + [True] * 60 + [False] * 100
    other = [True] * 30 + [False] * 10 + [True] * 60 + [False] * 100
    d = paired_difference(base, other)
    assert d.delta == pytest.approx(0.10)
    assert (d.gains, d.losses, d.n) == (30, 10, 200)
    assert d.low < d.delta < d.high
    # The percentile interval of a mean of +-1/0 values: about delta +- 1.96 * sd / sqrt(n).
    diffs = np.array(other, float) - np.array(base, float)
    half = 1.96 * diffs.std(ddof=1) / math.sqrt(len(diffs))
    assert d.low == pytest.approx(d.delta - half, abs=0.012)
    assert d.high == pytest.approx(d.delta + half, abs=0.012)
    assert d.excludes_zero
    assert d.p_value == pytest.approx(binomtest(30, 40, 0.5).pvalue)
    assert d.p_value < 0.01


def test_same_seed_same_interval_other_seed_other_interval() -> None:
    base = [i % 3 == 0 for i in range(90)]
    other = [i % 2 == 0 for i in range(90)]
    a, b = paired_difference(base, other, seed=1), paired_difference(base, other, seed=1)
    assert (a.low, a.high, a.seed) == (b.low, b.high, 1)
    # The interval's ends are multiples of 1/90, so other seeds often land on the same ones;
    # with few resamples some seed must move them.
    others = {
        (d.low, d.high)
        for d in (paired_difference(base, other, seed=s, resamples=100) for s in range(2, 8))
    }
    assert len(others) > 1
    assert all(d.delta == a.delta for d in [b])


def test_no_discordant_problem_is_no_difference() -> None:
    d = paired_difference([True, False, True], [True, False, True])
    assert (d.delta, d.low, d.high, d.p_value) == (0.0, 0.0, 0.0, 1.0)
    assert not d.excludes_zero


def test_a_small_difference_on_few_problems_is_not_marked() -> None:
    # One problem of 22 (the old demo's eval split): +0.045, the interval includes 0.
    base = [False] + [True] * 10 + [False] * 11
    other = [True] + [True] * 10 + [False] * 11
    d = paired_difference(base, other)
    assert d.delta == pytest.approx(1 / 22)
    assert d.low <= 0 < d.high and not d.excludes_zero
    assert d.p_value == 1.0


def test_mcnemar_exact_matches_the_binomial_test() -> None:
    assert mcnemar_exact(0, 0) == 1.0
    assert mcnemar_exact(6, 0) == pytest.approx(2 * 0.5**6)
    assert mcnemar_exact(3, 9) == pytest.approx(binomtest(3, 12, 0.5).pvalue)
    with pytest.raises(ValueError):
        mcnemar_exact(-1, 2)


def test_paired_verdicts_need_the_same_problems() -> None:
    a, b = paired_verdicts({"t2": True, "t1": False}, {"t1": True, "t2": True})
    assert (a, b) == ([False, True], [True, True])
    with pytest.raises(ValueError, match=r"only in the base: \['t3'\]"):
        paired_verdicts({"t1": True, "t3": True}, {"t1": True})
    with pytest.raises(ValueError, match="differ in length"):
        paired_difference([True], [True, False])


def test_power_grows_with_n_and_sizes_the_demo() -> None:
    # A 10-point gain with 20% of problems discordant (15% gained, 5% lost).
    small, demo = mcnemar_power(22, 0.15, 0.05), mcnemar_power(173, 0.15, 0.05)
    assert small < 0.1  # 22 problems cannot show it
    assert 0.8 < demo < 0.85  # the demo's 173 eval problems: about 81%
    assert smallest_n(0.8, 0.15, 0.05) in (160, 170)
    # The power is the rejection rate of the test: check it against a simulation.
    rng = np.random.default_rng(0)
    rejected = 0
    for _ in range(400):
        u = rng.random(173)
        gains, losses = int((u < 0.15).sum()), int(((u >= 0.15) & (u < 0.20)).sum())
        rejected += mcnemar_exact(gains, losses) <= 0.05
    assert rejected / 400 == pytest.approx(demo, abs=0.06)


def test_command_line_compares_two_score_files(tmp_path, capsys) -> None:
    import json

    from codedpo.reporting.significance import main

    def write(name: str, passed: set[str]) -> str:
        verdicts = {f"t{i}": {"passed": f"t{i}" in passed} for i in range(40)}
        path = tmp_path / name
        path.write_text(json.dumps({"pass_at_1": len(passed) / 40, "verdicts": verdicts}))
        return str(path)

    base = write("base.json", {f"t{i}" for i in range(10)})
    other = write("other.json", {f"t{i}" for i in range(20)})
    assert main([base, other]) == 0
    out = capsys.readouterr().out
    assert ": +0.250 [" in out and "10 gained, 0 lost of 40" in out
    (tmp_path / "bad.json").write_text(json.dumps({"pass_at_1": 0.5}))
    assert main([base, str(tmp_path / "bad.json")]) == 2
    assert "field 'verdicts' is missing" in capsys.readouterr().err
