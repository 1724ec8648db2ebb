"""Paired comparisons of two greedy pass@1 scores on the same problems.

Both scores come from one pass/fail verdict per problem, so the difference is compared problem
by problem:

- **difference**: pass@1(other) - pass@1(base), the mean of the per-problem differences
  ``other_i - base_i`` (each -1, 0 or +1);
- **95% paired bootstrap interval**: the percentile interval of that mean over
  ``resamples`` resamplings of the *problems* with replacement (each resample keeps a
  problem's two verdicts together), from ``scipy.stats.bootstrap`` with a generator seeded by
  ``seed``: the same inputs give the same interval;
- **McNemar's exact test**: under "no difference" a problem that one model solves and the
  other does not is as likely to favour either, so the number of problems only ``other``
  solves is Binomial(discordant, 1/2); the two-sided p-value is ``scipy.stats.binomtest``'s.

The interval and the test answer the same question in two ways; tables mark a difference
whose interval excludes 0. :func:`mcnemar_power` gives the chance that the test detects a
given true difference on ``n`` problems, which sized the demo's evaluation split.

Any two score files of the same benchmark (``scores.json`` of codedpo.evaluation.score) compare
from the command line, e.g. DPO against RFT::

    codedpo significance results/eval/P/rft/B/scores.json \\
        results/eval/P/dpo-P/B/scores.json
"""

from __future__ import annotations

import json
import math
import sys
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass

import numpy as np

from codedpo.verbs import command_parser

RESAMPLES = 10_000
CONFIDENCE = 0.95
SEED = 0


@dataclass(frozen=True)
class Difference:
    """``other`` minus ``base`` on ``n`` paired problems."""

    delta: float
    low: float
    high: float
    p_value: float
    n: int
    gains: int  # problems only `other` solves
    losses: int  # problems only `base` solves
    confidence: float
    resamples: int
    seed: int

    @property
    def excludes_zero(self) -> bool:
        return self.low > 0 or self.high < 0

    def as_dict(self) -> dict:
        return {**asdict(self), "excludes_zero": self.excludes_zero}


def mcnemar_exact(gains: int, losses: int) -> float:
    """Two-sided exact McNemar p-value from the discordant counts (1.0 when there are none)."""
    from scipy.stats import binomtest

    if gains < 0 or losses < 0:
        raise ValueError(f"counts must be non-negative, got {gains}, {losses}")
    if gains + losses == 0:
        return 1.0
    return float(binomtest(gains, gains + losses, 0.5, alternative="two-sided").pvalue)


def paired_difference(
    base: Sequence[bool],
    other: Sequence[bool],
    *,
    resamples: int = RESAMPLES,
    confidence: float = CONFIDENCE,
    seed: int = SEED,
) -> Difference:
    """Compare per-problem verdicts ``other`` with ``base`` (same problems, same order)."""
    from scipy.stats import bootstrap

    if len(base) != len(other):
        raise ValueError(f"paired verdicts differ in length: {len(base)} and {len(other)}")
    if not base:
        raise ValueError("no problems to compare")
    a = np.asarray(base, dtype=float)
    b = np.asarray(other, dtype=float)
    diffs = b - a
    gains = int((diffs > 0).sum())
    losses = int((diffs < 0).sum())
    delta = float(diffs.mean())
    if gains + losses == 0:
        # Every resample has mean 0: the interval is the point (scipy would warn and say nan).
        low = high = 0.0
    else:
        result = bootstrap(
            (diffs,),
            np.mean,
            n_resamples=resamples,
            confidence_level=confidence,
            method="percentile",
            vectorized=True,
            rng=np.random.default_rng(seed),
        )
        low = float(result.confidence_interval.low)
        high = float(result.confidence_interval.high)
    return Difference(
        delta=delta,
        low=low,
        high=high,
        p_value=mcnemar_exact(gains, losses),
        n=len(diffs),
        gains=gains,
        losses=losses,
        confidence=confidence,
        resamples=resamples,
        seed=seed,
    )


def paired_verdicts(
    base: Mapping[str, bool], other: Mapping[str, bool]
) -> tuple[list[bool], list[bool]]:
    """The two verdict lists over the same problems (``task_id -> passed`` maps).

    Both scores must cover the same problems: a difference over unmatched sets is not paired.
    """
    if set(base) != set(other):
        only_base = sorted(set(base) - set(other))[:3]
        only_other = sorted(set(other) - set(base))[:3]
        raise ValueError(
            f"the two scores cover different problems (only in the base: {only_base}, "
            f"only in the other: {only_other})"
        )
    order = sorted(base)
    return [bool(base[t]) for t in order], [bool(other[t]) for t in order]


def mcnemar_power(n: int, p_gain: float, p_loss: float, alpha: float = 0.05) -> float:
    """Chance that McNemar's exact test rejects at ``alpha`` on ``n`` problems, when each
    problem is a gain with probability ``p_gain`` and a loss with ``p_loss`` (so the true
    difference is ``p_gain - p_loss``). Exact: sums over the number of discordant problems."""
    from scipy.stats import binom

    if not (0 <= p_gain and 0 <= p_loss and p_gain + p_loss <= 1):
        raise ValueError(f"probabilities out of range: {p_gain}, {p_loss}")
    discordant = p_gain + p_loss
    if discordant == 0:
        return 0.0
    share = p_gain / discordant
    power = 0.0
    for d in range(1, n + 1):
        weight = binom.pmf(d, n, discordant)
        if weight < 1e-12:
            continue
        k = np.arange(d + 1)
        # Two-sided exact p-value of each split, vectorised: 2 * min tail, capped at 1.
        lower = binom.cdf(k, d, 0.5)
        upper = binom.sf(k - 1, d, 0.5)
        p_values = np.minimum(1.0, 2 * np.minimum(lower, upper))
        reject = p_values <= alpha
        power += weight * float(binom.pmf(k[reject], d, share).sum())
    return power


def smallest_n(target_power: float, p_gain: float, p_loss: float, alpha: float = 0.05) -> int:
    """The fewest problems at which :func:`mcnemar_power` reaches ``target_power`` (from 10 up,
    in steps of 10)."""
    for n in range(10, 5001, 10):
        if mcnemar_power(n, p_gain, p_loss, alpha) >= target_power:
            return n
    return math.inf  # type: ignore[return-value]


def main(argv: list[str] | None = None) -> int:
    parser = command_parser("significance", "Paired difference of two greedy pass@1 scores")
    parser.add_argument("base", help="scores.json of the reference run")
    parser.add_argument("other", help="scores.json of the run compared with it")
    parser.add_argument("--resamples", type=int, default=RESAMPLES, help="bootstrap resamples")
    parser.add_argument("--confidence", type=float, default=CONFIDENCE, help="interval level")
    parser.add_argument("--seed", type=int, default=SEED, help="the bootstrap's seed")
    args = parser.parse_args(argv)
    verdicts = []
    for path in (args.base, args.other):
        with open(path, encoding="utf-8") as fh:
            score = json.load(fh)
        if "verdicts" not in score:
            print(f"error: {path}: field 'verdicts' is missing", file=sys.stderr)
            return 2
        verdicts.append({t: v["passed"] for t, v in score["verdicts"].items()})
    try:
        a, b = paired_verdicts(*verdicts)
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    d = paired_difference(
        a, b, resamples=args.resamples, confidence=args.confidence, seed=args.seed
    )
    print(
        f"{args.other} - {args.base}: {d.delta:+.3f} [{d.low:+.3f}, {d.high:+.3f}] "
        f"({d.confidence:.0%} paired bootstrap, {d.resamples} resamples, seed {d.seed}); "
        f"{d.gains} gained, {d.losses} lost of {d.n}; McNemar exact p = {d.p_value:.3g}"
    )
    return 0
