"""The trusted parent, in one import: plan tests, drive sandboxes, decide every verdict.

The parts, by responsibility (the trust boundary is in the layout):

- :mod:`~codedpo.execution.plan`: what crosses into which sandbox (calls, split assertions,
  judged tests), limits;
- :mod:`~codedpo.execution.running`: running samples on warm sandboxes, judged tests relayed call
  by call, timeout re-runs;
- :mod:`~codedpo.execution.verdicts`: verdicts from what the sandboxes reported and the worker
  observed (:mod:`~codedpo.execution.compare` and :mod:`~codedpo.execution.asserts` compare);
- :mod:`~codedpo.execution.files`: samples and records, the expected-outputs cache, reference
  checks;
- inside the sandbox (stdlib only): :mod:`~codedpo.execution.sandbox.harness` (the worker and its
clock),
  :mod:`~codedpo.execution.sandbox.child` (the forked children),
  :mod:`~codedpo.execution.sandbox.codec`,
  :mod:`~codedpo.execution.sandbox.seccomp`.
"""

from codedpo.execution.files import (
    _header,
    check_references,
    compute_expected,
    execute_files,
    load_expected,
    load_samples,
    needs_expected,
    write_expected,
)
from codedpo.execution.plan import Limits, Plan, fast_spans, plan_problem, problem_key
from codedpo.execution.running import ExecConfig, Executor, execute_one, run_on
from codedpo.execution.verdicts import assemble, call_outcomes, tokens_match

__all__ = [
    "ExecConfig",
    "Executor",
    "Limits",
    "Plan",
    "_header",
    "assemble",
    "call_outcomes",
    "check_references",
    "compute_expected",
    "execute_files",
    "execute_one",
    "fast_spans",
    "load_expected",
    "load_samples",
    "needs_expected",
    "plan_problem",
    "problem_key",
    "run_on",
    "tokens_match",
    "write_expected",
]
