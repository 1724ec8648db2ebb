"""How the (chosen, rejected) pairs of one problem are drawn, and the scores they are drawn by.

Strategies (``codedpo build-pairs --strategy``), after RLHFlow's Online-RLHF (Dong et al. 2024,
``choose_type``), with execution verdicts in place of a reward model:

- ``random`` (the paper, the default): chosen passes every test, rejected fails, the pair drawn
  uniformly from all (passing, failing) combinations.
- ``max_min``: chosen has the problem's best score, rejected its worst.
- ``max_random``: chosen has the best score, rejected is drawn from the responses scoring below it
  (Online-RLHF draws from all the others and drops a pair whose rewards tie; drawing among the
  lower ones gives the same pairs without dropping a problem for an unlucky draw).
- ``by_error``: as ``random``, but rejected only from the given verdict statuses (only ``failed``,
  only ``syntax_error``, ...).

With the score strategies a problem none of whose responses passed still gives a pair when their
scores differ (the best partial answer against the worst), as Online-RLHF pairs any two rewards
that differ; equal best and worst scores give none. ``k`` pairs per problem are distinct
combinations drawn without replacement. Every draw uses ``random.Random(f"{seed}/{task_id}")``.

Scores (``--score``): ``fraction`` of tests passed (``passed / total`` of the execution record;
with the executor's ``--fast-check`` the tests after the first failing range did not run, so
it is a lower bound) or ``rule``, the rule-based reward of Le et al. (2022), CodeRL, Sec. 3.2:
+1 passes, -0.3 fails a test, -0.6 runtime error (timeouts and limits included), -1 compile
(syntax) error (:data:`codedpo.records.RULE_REWARD`).
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass

import pandas as pd

from codedpo.io import InputError
from codedpo.records import RULE_REWARD

STRATEGIES = ("random", "max_min", "max_random", "by_error")
SCORES = ("fraction", "rule")
SCORED = frozenset({"max_min", "max_random"})
# Largest possible margin per score: the range of the margin histogram.
MAX_MARGIN = {"fraction": 1.0, "rule": RULE_REWARD["passed"] - RULE_REWARD["syntax_error"]}
HISTOGRAM_BINS = 10
QUANTILES = (0.1, 0.25, 0.5, 0.75, 0.9)
DIGITS = 6


@dataclass(frozen=True)
class Response:
    sample_id: str
    raw: str
    status: str
    score: float | None
    hack: bool  # flagged by codedpo.execution.hacks: never chosen


def score_of(record: dict, score: str, where: str, *, required: bool) -> float | None:
    """The response's score; ``None`` where the record lacks the counts and none is required."""
    status = record["status"]
    if score == "rule":
        return RULE_REWARD[status]
    passed, total = record.get("passed"), record.get("total")
    if type(passed) is not int or type(total) is not int or not 0 <= passed <= total:
        if required:
            field = "passed" if type(passed) is not int else "total"
            raise InputError(
                f"{where}: field '{field}': the fraction-of-tests score needs integer passed "
                f"<= total, got passed={passed!r} total={total!r}"
            )
        return None
    if total == 0:
        return 1.0 if status == "passed" else 0.0
    return round(passed / total, DIGITS)


def combinations(
    strategy: str,
    passing: Sequence[Response],
    failing: Sequence[Response],
    rejected_statuses: frozenset[str] | None,
) -> list[tuple[Response, Response]]:
    """Every (chosen, rejected) combination the strategy allows, in a fixed order.

    ``passing``: the problem's passing responses, ``failing``: its failing ones (the model's
    failures only, each list sorted by sample id); hacks are among them and never chosen.
    """
    if strategy in ("random", "by_error"):
        chosen = [r for r in passing if not r.hack]
        rejected = [
            r for r in failing if rejected_statuses is None or r.status in rejected_statuses
        ]
        return [(c, r) for c in chosen for r in rejected]
    responses = [*passing, *failing]
    candidates = [r for r in responses if not r.hack]
    if not candidates:
        return []
    best = max(r.score for r in candidates)
    chosen = [r for r in candidates if r.score == best]
    if strategy == "max_min":
        worst = min(r.score for r in responses)
        rejected = [r for r in responses if r.score == worst and worst < best]
    elif strategy == "max_random":
        rejected = [r for r in responses if r.score < best]
    else:
        raise ValueError(f"unknown strategy {strategy!r}")
    # The same text scored twice differently (a flaky timeout) is no preference.
    return [(c, r) for c in chosen for r in rejected if c.raw != r.raw]


def draw(combos: list, k: int, seed: int, task_id: str) -> list:
    """``k`` distinct combinations (all of them if fewer), seeded per problem.

    A string seed is hashed with SHA-512 by random.Random: stable across processes and Python
    runs (unlike hash()), and distinct per problem.
    """
    rng = random.Random(f"{seed}/{task_id}")
    return rng.sample(combos, min(k, len(combos)))


def margin_histogram(margins: Sequence[float], score: str) -> dict:
    """Counts in ``HISTOGRAM_BINS`` equal bins over ``[0, max margin]``, each closed on the left
    (the last on both sides). Margins are differences of a few discrete scores and often fall
    on an edge (0.6 = 1 - 0.4): the small tolerance keeps them in the bin they start, as exact
    arithmetic would."""
    width = MAX_MARGIN[score] / HISTOGRAM_BINS
    counts = [0] * HISTOGRAM_BINS
    for m in margins:
        counts[min(max(int(m / width + 1e-9), 0), HISTOGRAM_BINS - 1)] += 1
    edges = [round(i * width, DIGITS) for i in range(HISTOGRAM_BINS + 1)]
    return {"edges": edges, "counts": counts}


def margin_summary(margins: Sequence[float], score: str) -> dict:
    """``n``, ``mean``, ``min``, ``max``, quantiles (pandas' linear interpolation) and the
    histogram of the pairs' margins."""
    series = pd.Series(list(margins), dtype=float)
    histogram = margin_histogram(margins, score)
    if series.empty:
        none = {str(q): None for q in QUANTILES}
        return {"n": 0, "mean": None, "min": None, "max": None, "quantiles": none,
                "histogram": histogram}  # fmt: skip
    return {
        "n": int(series.size),
        "mean": round(float(series.mean()), DIGITS),
        "min": round(float(series.min()), DIGITS),
        "max": round(float(series.max()), DIGITS),
        "quantiles": {str(q): round(float(series.quantile(q)), DIGITS) for q in QUANTILES},
        "histogram": histogram,
    }
