"""Problems with unit tests: sources normalized into the problems file (docs/formats.md).

- :mod:`~codedpo.problems.load`: the problems file, loaded and validated (``problem.schema.json``);
- :mod:`~codedpo.problems.prepare`: ``codedpo prepare`` (a source -> the problems file);
- :mod:`~codedpo.problems.benchmark_formats`: HumanEval(+), MBPP(+) records as problems;
- :mod:`~codedpo.problems.train_sources`: LeetCode and Codeforces datasets as problems, and
  ``codedpo export-source`` (a Hub dataset split to JSONL);
- :mod:`~codedpo.problems.python_source`: a ``check(candidate)`` function split into assertions,
  a statement's source lines;
- :mod:`~codedpo.problems.download`: ``codedpo download`` (pinned benchmark files);
- :mod:`~codedpo.problems.released`: problems released after a date (``--released-after``);
- :mod:`~codedpo.problems.slices`: ``codedpo slice-problems`` (one round's slice).
"""
