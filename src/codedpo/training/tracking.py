"""Experiment tracking of training runs: TensorBoard, W&B, MLflow or Trackio through transformers'
``report_to``, with their logs under the workflow's log folder.

The workflow's ``training.report_to`` is a scheduling setting (which trackers watch a run does not
change what it trains: changing it reruns nothing); ``rules/common.smk`` hands it to every
training job in the environment (:data:`REPORT_TO_ENV`), with the folder the logs go to
(:data:`TRACKING_DIR_ENV`, ``logs/tracking``; ``<results>/logs/tracking`` for an experiment in a
folder of its own). A recipe or override that sets ``report_to`` to a tracker itself wins over it.
Each run logs under ``<tracking dir>/<its checkpoint path below <results>/checkpoints/>``:
TensorBoard's event files in ``tensorboard/``
(``TENSORBOARD_LOGGING_DIR``), W&B's run in ``wandb/`` (``WANDB_DIR``; set
``WANDB_MODE=offline`` on compute nodes without internet, then ``wandb sync``), MLflow's in
``<tracking dir>/mlruns`` (``MLFLOW_TRACKING_URI``), each unless the user set that variable. A
tracker that is not installed is an error at the dry run (:func:`missing`).
"""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path

REPORT_TO_ENV = "CODEDPO_REPORT_TO"
TRACKING_DIR_ENV = "CODEDPO_TRACKING_DIR"
# The trackers the workflow offers, and the module each needs.
MODULES = {"tensorboard": ("tensorboard", "tensorboardX"), "wandb": ("wandb",),
           "mlflow": ("mlflow",), "trackio": ("trackio",)}  # fmt: skip
CHECKPOINTS = "checkpoints"  # below the experiment's results folder


def trackers(value) -> list[str]:
    """``report_to`` as a list of trackers: ``none`` (or nothing) is none."""
    names = [value] if isinstance(value, str) else list(value or [])
    return [n for n in names if n and n != "none"]


def missing(value) -> list[str]:
    """The trackers of ``value`` whose package is not installed."""
    return [n for n in trackers(value) if n in MODULES
            and not any(importlib.util.find_spec(m) for m in MODULES[n])]  # fmt: skip


def run_dir(root: str | os.PathLike, output_dir: str | os.PathLike) -> Path:
    """Where a run's logs go: its path below ``<results>/checkpoints/``, under ``root``."""
    parts = Path(output_dir).parts
    if CHECKPOINTS in parts[:-1]:
        below = parts[len(parts) - parts[::-1].index(CHECKPOINTS) :]
        return Path(root).joinpath(*below)
    return Path(root) / Path(output_dir).name


def apply(training_args, output_dir: str | os.PathLike) -> list[str]:
    """Set ``training_args.report_to`` from the workflow's setting where the recipe named no
    tracker, and each tracker's log folder; returns the trackers."""
    wanted = trackers(os.environ.get(REPORT_TO_ENV, "").split(","))
    if not trackers(training_args.report_to) and wanted:
        training_args.report_to = wanted
    names = trackers(training_args.report_to)
    root = os.environ.get(TRACKING_DIR_ENV)
    if not names or not root:
        return names
    where = run_dir(root, output_dir)
    if "tensorboard" in names:
        os.environ.setdefault("TENSORBOARD_LOGGING_DIR", str(where / "tensorboard"))
    if "wandb" in names:
        (where / "wandb").mkdir(parents=True, exist_ok=True)
        os.environ.setdefault("WANDB_DIR", str(where / "wandb"))
    if "mlflow" in names:
        os.environ.setdefault("MLFLOW_TRACKING_URI", (Path(root) / "mlruns").resolve().as_uri())
    return names
