"""The paper's reported numbers (``configs/paper_results.yaml``) as cells of our tables.

The file is keyed by Hugging Face model id and the paper's benchmark name; :func:`load_paper`
maps them to our policies (``model_ids``: policy -> hub id) and benchmarks (``benchmark_ids``: our
benchmark -> the paper's), so the demo's models, which have no hub id, get no paper numbers. The
paper ran one round of the config's own DPO: its numbers are cells of the paper's run only.
"""

from __future__ import annotations

import os
from pathlib import Path

import jsonschema
import yaml

from codedpo.evaluation.score_files import DEFAULT_RUN
from codedpo.io import InputError

PAPER_BENCHMARKS = ("humaneval", "humaneval_plus", "mbpp", "mbpp_plus")
_SCORES = {
    "type": "object",
    "propertyNames": {"enum": list(PAPER_BENCHMARKS)},
    "additionalProperties": {"type": "number", "minimum": 0, "maximum": 1},
}
PAPER_SCHEMA = {
    "type": "object",
    "required": ["models"],
    "properties": {
        "reference": {"type": "string"},
        "models": {
            "type": "object",
            "additionalProperties": {
                "type": "object",
                "additionalProperties": False,
                "properties": {
                    "name": {"type": "string"},
                    "base": _SCORES,
                    "rft": _SCORES,
                    "dpo": _SCORES,
                    "dpo_pairs_from": {"type": "object", "additionalProperties": _SCORES},
                },
            },
        },
    },
}

Cells = dict[tuple, float]


def load_paper(
    path: str | os.PathLike, model_ids: dict[str, str], benchmark_ids: dict[str, str]
) -> Cells:
    """The paper's numbers as cells keyed like ours: ``(policy, kind, pairs_from, run, benchmark)``
    (:data:`codedpo.evaluation.score_files.Key`, the run always the paper's)."""
    try:
        data = yaml.safe_load(Path(path).read_text())
    except (OSError, yaml.YAMLError) as exc:
        raise InputError(f"{path}: cannot read the paper's results: {exc}") from None
    error = jsonschema.exceptions.best_match(
        jsonschema.Draft202012Validator(PAPER_SCHEMA).iter_errors(data)
    )
    if error is not None:
        where = ".".join(str(p) for p in error.absolute_path) or "(file)"
        raise InputError(f"{path}: field '{where}': {error.message}")
    policy_of = {hub: policy for policy, hub in model_ids.items()}
    cells: Cells = {}

    def put(policy: str, kind: str, pairs_from: str | None, scores: dict) -> None:
        for ours, theirs in benchmark_ids.items():
            if theirs in scores:
                cells[(policy, kind, pairs_from, DEFAULT_RUN, ours)] = float(scores[theirs])

    for hub, entry in data["models"].items():
        policy = policy_of.get(hub)
        if policy is None:
            continue
        for kind in ("base", "rft"):
            put(policy, kind, None, entry.get(kind) or {})
        put(policy, "dpo", policy, entry.get("dpo") or {})
        for source_hub, scores in (entry.get("dpo_pairs_from") or {}).items():
            if source_hub in policy_of:
                put(policy, "dpo", policy_of[source_hub], scores)
    return cells
