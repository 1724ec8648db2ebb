"""The training curves of every trained checkpoint (DPO, RFT, GRPO), from ``train_summary.json``.

A summary's ``log_history`` is transformers' ``Trainer.state.log_history``: one entry per logging
step (``logging_steps``; every recipe logs every optimizer step) with the step's ``loss``,
``learning_rate``, ``grad_norm`` and ``epoch``, DPO's implicit rewards (``rewards/margins``,
``rewards/accuracies``) and GRPO's mean reward (``reward``), then one closing entry with
``train_runtime`` and no ``loss``, which is left out (so are evaluation entries, which have none).
A resumed run restores the trainer state of its checkpoint, so its history goes on from there
without repeating a step; should a step appear twice all the same, its last entry is kept.

Per run and logged step: ``reward_margin`` is DPO's mean margin (the implicit reward of the
chosen response minus the rejected one's) and GRPO's mean reward (weighted over its reward
functions, as TRL logs it); RFT has neither. ``reward_accuracy`` is DPO's share of pairs whose
chosen response has the higher implicit reward.

Command line (:mod:`codedpo.reporting.plots`)::

    codedpo plot training-curves --summaries results/checkpoints/demo-a/rft/train_summary.json \\
        results/checkpoints/demo-a/dpo-demo-a/train_summary.json --labels "+ RFT" "+ DPO" \\
        --out training_curves.png --out-csv training_curves.csv
"""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from pathlib import Path

import pandas as pd

from codedpo.io import InputError, read_json, require
from codedpo.training.fields import METHODS

COLUMNS = ["label", "method", "step", "epoch", "loss", "learning_rate", "grad_norm",
           "reward_margin", "reward_accuracy"]  # fmt: skip
# The log_history key of each column every method logs (absent from an entry: NaN) ...
LOGGED = {"epoch": "epoch", "loss": "loss", "learning_rate": "learning_rate",
          "grad_norm": "grad_norm"}  # fmt: skip
# ... and of the reward columns, per method (a column a method has no key for is NaN).
REWARD_KEYS = {
    "dpo": {"reward_margin": "rewards/margins", "reward_accuracy": "rewards/accuracies"},
    "grpo": {"reward_margin": "reward"},
    "rft": {},
}
# What the reward panel draws of each method: its legend text and line style.
REWARD_LINES = {"dpo": ("DPO reward margin", "-"), "grpo": ("GRPO mean reward", "--")}


def _number(value: object, field: str, where: str) -> float:
    """A logged value as a float: a NaN or infinite loss (a run that diverged) stays one; null
    is NaN."""
    if value is None:
        return math.nan
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise InputError(f"{where}: field '{field}': {value!r} is not a number")
    return float(value)


def read_summary(path: str | os.PathLike) -> tuple[str, list[dict]]:
    """``(method, rows)`` of a ``train_summary.json``: one row per logged training step, steps
    ascending, each with the columns of :data:`COLUMNS` but ``label`` and ``method``."""
    summary = read_json(path)
    if not isinstance(summary, dict):
        raise InputError(f"{path}: expected a JSON object, got {type(summary).__name__}")
    method = require(summary, "method", str, str(path))
    if method not in METHODS:
        raise InputError(f"{path}: field 'method': {method!r} is not one of {', '.join(METHODS)}")
    history = require(summary, "log_history", list, str(path))
    keys = LOGGED | REWARD_KEYS[method]
    by_step: dict[int, dict] = {}
    for i, entry in enumerate(history):
        where = f"{path}: log_history[{i}]"
        if not isinstance(entry, dict):
            raise InputError(f"{where}: expected a JSON object, got {type(entry).__name__}")
        step = require(entry, "step", int, where)
        if isinstance(step, bool) or step < 0:
            raise InputError(f"{where}: field 'step': {step!r} is not a step (0, 1, ...)")
        if "loss" not in entry:  # the closing summary entry, or an evaluation
            continue
        row = {column: _number(entry.get(key), key, where) for column, key in keys.items()}
        by_step[step] = {"step": step} | row  # a repeated step: the last entry wins
    if not by_step:
        logging_steps = (summary.get("training_args") or {}).get("logging_steps")
        raise InputError(
            f"{path}: field 'log_history': no logged training step (no entry with a 'loss'): set "
            f"logging_steps (here {logging_steps}) to at most the run's steps "
            f"(global_step {summary.get('global_step')})"
        )
    rows = [by_step[s] for s in sorted(by_step)]
    return method, [{c: r.get(c, math.nan) for c in COLUMNS[2:]} for r in rows]


def curves_frame(
    summaries: Sequence[str | os.PathLike], labels: Sequence[str] | None = None
) -> pd.DataFrame:
    """One row per (run, logged step), columns :data:`COLUMNS`; runs in the order given, each
    named by its label (one per file, default: the checkpoint's directory)."""
    if not summaries:
        raise InputError("no train_summary.json files to draw curves from")
    if labels is None:
        labels = [Path(p).parent.name for p in summaries]
    if len(labels) != len(summaries):
        raise InputError(f"{len(labels)} labels for {len(summaries)} train_summary.json files: "
                         "one per file")  # fmt: skip
    seen: dict[str, str] = {}
    rows = []
    for label, path in zip(map(str, labels), summaries, strict=True):
        if label in seen:
            raise InputError(f"label {label!r} names both {seen[label]} and {path}: one run a "
                             "label (give --labels)")  # fmt: skip
        seen[label] = str(path)
        method, steps = read_summary(path)
        rows += [{"label": label, "method": method, **row} for row in steps]
    frame = pd.DataFrame(rows, columns=COLUMNS)
    frame["step"] = frame["step"].astype(int)
    return frame


def curves_figure(frame: pd.DataFrame):
    """Three panels over the optimizer step, one above the other: the training loss, DPO's reward
    margin and GRPO's mean reward (line style: which), the learning rate; one colour per run."""
    import matplotlib

    matplotlib.use("Agg")  # before pyplot: batch jobs have no display
    import matplotlib.pyplot as plt
    from matplotlib.ticker import MaxNLocator

    runs = list(dict.fromkeys(frame["label"]))
    cmap = plt.get_cmap("tab10" if len(runs) <= 10 else "tab20")
    colors = {label: cmap(i % cmap.N) for i, label in enumerate(runs)}
    fig, (losses, rewards, rates) = plt.subplots(3, 1, figsize=(7.5, 8.0), sharex=True)
    for label, color in colors.items():
        sub = frame[frame["label"] == label]
        style = {"marker": "o", "markersize": 2.5, "color": color}
        losses.plot(sub["step"], sub["loss"], label=label, **style)
        rates.plot(sub["step"], sub["learning_rate"], label=label, **style)
        method = sub["method"].iloc[0]
        if method in REWARD_LINES:
            what, ls = REWARD_LINES[method]
            rewards.plot(sub["step"], sub["reward_margin"], ls=ls, label=f"{label}: {what}",
                         **style)  # fmt: skip
    for ax, title, ylabel in (
        (losses, "Training loss", "loss"),
        (rewards, "Reward: DPO margin (solid), GRPO mean reward (dashed)",
         "DPO margin / GRPO mean reward"),
        (rates, "Learning rate", "learning rate"),
    ):  # fmt: skip
        ax.set_title(title, fontsize=10)
        ax.set_ylabel(ylabel)
        ax.grid(alpha=0.3)
        if ax is not rates and ax.get_legend_handles_labels()[0]:  # the loss panel's says all
            ax.legend(fontsize=7, frameon=False, loc="upper left", bbox_to_anchor=(1.0, 1.0))
    if not rewards.get_legend_handles_labels()[0]:
        rewards.text(0.5, 0.5, "no DPO or GRPO run", ha="center", va="center",
                     transform=rewards.transAxes, color="grey")  # fmt: skip
    rates.ticklabel_format(axis="y", style="sci", scilimits=(-3, 3))
    rates.set_xlabel("optimizer step")
    rates.xaxis.set_major_locator(MaxNLocator(integer=True))
    fig.tight_layout()
    return fig
