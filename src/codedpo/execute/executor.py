"""The trusted parent, in one import: plan tests, drive sandboxes, decide every verdict.

The parts, by responsibility (the trust boundary is in the layout):

- :mod:`~codedpo.execute.plan`: what crosses into which sandbox (calls, split assertions,
  judged tests), limits;
- :mod:`~codedpo.execute.running`: running samples on warm sandboxes, judged tests relayed call
  by call, timeout re-runs;
- :mod:`~codedpo.execute.verdicts`: verdicts from what the sandboxes reported and the worker
  observed (:mod:`~codedpo.execute.compare` and :mod:`~codedpo.execute.asserts` compare);
- :mod:`~codedpo.execute.files`: samples and records, the expected-outputs cache, reference
  checks;
- inside the sandbox (stdlib only): :mod:`~codedpo.execute.harness` (the worker and its clock),
  :mod:`~codedpo.execute.child` (the forked children), :mod:`~codedpo.execute.codec`,
  :mod:`~codedpo.execute.seccomp`.
"""

from codedpo.execute.files import (
    _header,
    check_references,
    compute_expected,
    execute_files,
    load_expected,
    load_samples,
    needs_expected,
    write_expected,
)
from codedpo.execute.plan import Limits, Plan, fast_spans, plan_problem, problem_key
from codedpo.execute.running import ExecConfig, Executor, execute_one, run_on
from codedpo.execute.verdicts import (
    NOT_THE_MODELS,
    STATUSES,
    assemble,
    call_outcomes,
    tokens_match,
)

__all__ = [
    "NOT_THE_MODELS",
    "STATUSES",
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
