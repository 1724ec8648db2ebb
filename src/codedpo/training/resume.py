"""Resuming a killed ``codedpo train`` from the checkpoints TRL saved in ``OUT.tmp/``.

A job that TRL checkpoints (``save_strategy: steps``, as the GRPO recipes do) and that is killed
leaves ``OUT.tmp/checkpoint-N/`` behind; the next run of the same command resumes from the last
complete one (TRL writes a checkpoint's ``trainer_state.json`` last), with its optimizer,
scheduler, RNG and data position. "The same command" is checked: the run's settings (every
argument but the output directory, and the training file's hash) are kept in ``OUT.tmp/`` beside
the checkpoints, and a run with other settings starts afresh, as every run did before it could
resume. The checkpoints and the settings serve resuming only and are removed before the output
is published.
"""

from __future__ import annotations

import json
import shutil
from dataclasses import asdict
from pathlib import Path

from codedpo.io import read_json, sha256_file, write_json

SETTINGS = "run_settings.json"
PREFIX = "checkpoint-"


def _complete(checkpoint: Path) -> bool:
    """TRL writes a checkpoint's trainer state last: a checkpoint with a readable one is whole."""
    try:
        return isinstance(read_json(checkpoint / "trainer_state.json"), dict)
    except (OSError, ValueError):
        return False


def last_checkpoint(tmp_dir: Path) -> Path | None:
    """The complete checkpoint of the highest step in ``tmp_dir``, if any."""
    steps = {}
    for path in tmp_dir.glob(f"{PREFIX}*"):
        step = path.name[len(PREFIX) :]
        if step.isdigit() and _complete(path):
            steps[int(step)] = path
    return steps[max(steps)] if steps else None


def run_settings(script_args, training_args) -> dict:
    """What a checkpoint must have been written with to be resumed from (JSON values)."""
    args = json.loads(training_args.to_json_string())
    args.pop("output_dir", None)
    args.pop("report_to", None)  # which trackers watch the run does not change it
    settings = {"script_args": asdict(script_args), "training_args": args,
                "train_file_sha256": sha256_file(script_args.train_file)}  # fmt: skip
    return json.loads(json.dumps(settings))


def _recorded(tmp_dir: Path) -> dict | None:
    try:
        return read_json(tmp_dir / SETTINGS)
    except (OSError, ValueError):
        return None


def prepare(tmp_dir: Path, settings: dict, state) -> str | None:
    """The checkpoint to resume from (every process gets the same answer), else None after the
    first process cleared ``tmp_dir`` (left by a run killed before its first checkpoint, or run
    with other settings) and recorded ``settings`` there."""
    resume = last_checkpoint(tmp_dir)
    if resume is not None and _recorded(tmp_dir) != settings:
        resume = None
    state.wait_for_everyone()  # every process decided before the first one deletes anything
    if state.is_main_process and resume is None:
        if tmp_dir.exists():
            shutil.rmtree(tmp_dir)
        write_json(tmp_dir / SETTINGS, settings)
    state.wait_for_everyone()
    return str(resume) if resume is not None else None


def clear(tmp_dir: Path) -> None:
    """Remove what only resuming needs (first process, before publishing)."""
    for path in tmp_dir.glob(f"{PREFIX}*"):
        if path.is_dir():
            shutil.rmtree(path)
    (tmp_dir / SETTINGS).unlink(missing_ok=True)
