"""Greedy pass@1 (and pass@k) of one policy on one benchmark, from execution records.

- :mod:`~codedpo.evaluation.score`: ``codedpo score`` (``scores.json``);
- :mod:`~codedpo.evaluation.pass_at_k`: the unbiased pass@k estimator;
- :mod:`~codedpo.evaluation.score_files`: reading ``scores.json`` files back;
- :mod:`~codedpo.evaluation.per_problem`: ``codedpo verdicts`` (each problem's verdict).
"""
