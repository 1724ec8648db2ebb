"""The record vocabulary every stage after execution shares: verdict names, whose fault a verdict
is, the rule-based reward, and the one join of samples with their execution records.

Verdicts are decided by the executor (:mod:`codedpo.execution.verdicts`); the pairs, the scores,
the hack report and the implicit-reward analysis read them back through this module, so a verdict
name or a reward is defined once.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import NamedTuple

from codedpo.io import InputError, read_jsonl, require

STATUSES = (
    "passed",
    "failed",
    "runtime_error",
    "syntax_error",
    "no_code",
    "timeout",
    "memory_exceeded",
    "output_exceeded",
    "sandbox_error",
    "problem_error",
)
# Not the model's: a fault of the infrastructure, or of the problem's own code (its prelude or
# its test code fails, whatever the solution does). Neither is ever a chosen or rejected response,
# and neither has a reward.
NOT_THE_MODELS = frozenset({"sandbox_error", "problem_error"})
# Failures of the model's code.
FAILING = frozenset(STATUSES) - {"passed"} - NOT_THE_MODELS

# Le et al. (2022), CodeRL, Sec. 3.2: the reward of a program by its worst outcome. Our statuses
# map onto their four: a timeout or a memory / output limit is a runtime error.
RULE_REWARD = {
    "passed": 1.0,
    "failed": -0.3,
    "runtime_error": -0.6,
    "timeout": -0.6,
    "memory_exceeded": -0.6,
    "output_exceeded": -0.6,
    "syntax_error": -1.0,
    # No code at all: no program to compile, CodeRL's worst outcome as for one that does not.
    "no_code": -1.0,
}

# Key under which load_records remembers "file:line" of a record, for error messages.
WHERE = "_where"


class Executed(NamedTuple):
    """One sample with the verdict of its execution record."""

    sample_id: str
    sample: dict
    status: str
    record: dict


def where_of(record: dict, kind: str, index: int) -> str:
    """``file:line`` of a loaded record, or ``kind[index]`` for records built in memory."""
    return record.get(WHERE) or f"{kind}[{index}]"


def load_records(paths: Iterable[str | Path]) -> list[dict]:
    """Records of several JSONL shards (samples or executions), each tagged with its ``file:line``.

    A missing ``sample_id`` defaults to the line number (docs/formats.md); across several shards
    such ids collide and the join reports the duplicate rather than guessing.
    """
    records = []
    for path in paths:
        for lineno, record in read_jsonl(path):
            record = {**record, WHERE: f"{path}:{lineno}"}
            record.setdefault("sample_id", str(lineno))
            records.append(record)
    return records


def _sample_id(record: dict, where: str) -> str:
    # Ids are compared as strings so an executor that wrote 3 and a sampler that wrote "3" agree.
    return str(require(record, "sample_id", (str, int), where))


def join_executions(
    problems: dict[str, dict], samples: list[dict], executions: list[dict]
) -> list[Executed]:
    """Every sample matched to exactly one execution record, in the samples' order.

    A sample of an unknown problem, a duplicate id, an unknown status, a record for another task,
    a record that matches no sample and a sample without a record are each an :class:`InputError`
    naming the file and line.
    """
    by_id: dict[str, tuple[dict, str]] = {}
    for i, sample in enumerate(samples):
        where = where_of(sample, "samples", i)
        task_id = require(sample, "task_id", str, where)
        sample_id = _sample_id(sample, where)
        require(sample, "raw", str, where)
        if task_id not in problems:
            raise InputError(f"{where}: field 'task_id': {task_id!r} is not in the problems file")
        if sample_id in by_id:
            first = by_id[sample_id][1]
            raise InputError(
                f"{where}: field 'sample_id': duplicate {sample_id!r} (first at {first})"
            )
        by_id[sample_id] = (sample, where)

    status_of: dict[str, tuple[str, str, dict]] = {}
    for i, record in enumerate(executions):
        where = where_of(record, "executions", i)
        sample_id = _sample_id(record, where)
        status = require(record, "status", str, where)
        if status not in STATUSES:
            raise InputError(
                f"{where}: field 'status': {status!r} is not one of {', '.join(STATUSES)}"
            )
        if sample_id in status_of:
            first = status_of[sample_id][1]
            raise InputError(
                f"{where}: field 'sample_id': duplicate execution record for {sample_id!r} "
                f"(first at {first})"
            )
        if sample_id not in by_id:
            raise InputError(f"{where}: field 'sample_id': {sample_id!r} matches no sample")
        sample_task = by_id[sample_id][0]["task_id"]
        if record.get("task_id", sample_task) != sample_task:
            raise InputError(
                f"{where}: field 'task_id': {record['task_id']!r} but sample {sample_id!r} "
                f"({by_id[sample_id][1]}) is for {sample_task!r}"
            )
        status_of[sample_id] = (status, where, record)

    lacking = [sid for sid in by_id if sid not in status_of]
    if lacking:
        raise InputError(
            f"{by_id[lacking[0]][1]}: field 'sample_id': no execution record for {lacking[0]!r} "
            f"({len(lacking)} sample(s) lack one)"
        )
    return [
        Executed(sample_id, sample, *status_of[sample_id][::2])
        for sample_id, (sample, _) in by_id.items()
    ]
