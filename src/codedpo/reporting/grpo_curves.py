"""The training curves of GRPO runs, from their ``rollouts.jsonl`` (docs/online-rl.md, Rollouts).

Per run and optimizer step: the pass rate (completions whose verdict is ``passed``, over every
completion, as greedy pass@1 counts a sandbox error as failed), the mean of each reward kind over
the completions that have one (a reward is null where the fault is not the model's; TRL's logged
mean is the same), the hack rate (completions with a hack class) and the mean completion length.
``step`` is TRL's global step when the batch was generated, so the lines of a resumed attempt, of
every process and of every generation batch of a step all pool into that step. Lines without a
step (scored outside a trainer) have no place on the axis and are left out.

Command line (:mod:`codedpo.reporting.plots`)::

    codedpo plot grpo-curves --rollouts results/models/grpo-a/rollouts.jsonl \\
        results/models/grpo-b/rollouts.jsonl --labels pass_all rule \\
        --rewards pass_all=pass_all --rewards rule=rule --out curves.png --out-csv curves.csv
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Mapping, Sequence
from pathlib import Path

import pandas as pd

from codedpo.execution.reward import KINDS
from codedpo.io import InputError, atomic_write, read_jsonl, require
from codedpo.records import STATUSES

REWARD_COLUMNS = [f"reward_{kind}" for kind in KINDS]
COLUMNS = ["label", "step", "completions", "pass_rate", "hack_rate", *REWARD_COLUMNS,
           "mean_completion_tokens"]  # fmt: skip
# One dash per reward kind in the reward panel (the colour is the run's).
KIND_STYLES = {"pass_all": "-", "fraction": "--", "rule": ":"}


def _number(value: object) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _count(record: dict, field: str, where: str, nullable: bool = True) -> int | None:
    """A non-negative integer field (``None`` allowed where ``nullable``)."""
    if field not in record:
        raise InputError(f"{where}: missing field '{field}'")
    value = record[field]
    if value is None and nullable:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise InputError(f"{where}: field '{field}': {value!r} is not a count (0, 1, ...)")
    return value


def read_rollouts(path: str | os.PathLike) -> list[dict]:
    """The lines of a rollouts file that the curves use, checked: ``step``, ``status``,
    ``hacks``, ``rewards`` (kind -> number or null) and ``completion_tokens``."""
    rows = []
    for lineno, record in read_jsonl(path):
        where = f"{path}:{lineno}"
        step = _count(record, "step", where)
        status = require(record, "status", str, where)
        if status not in STATUSES:
            raise InputError(f"{where}: field 'status': {status!r} is not one of "
                             f"{', '.join(STATUSES)}")  # fmt: skip
        hacks = require(record, "hacks", list, where)
        if not all(isinstance(h, str) for h in hacks):
            raise InputError(f"{where}: field 'hacks': {hacks!r} is not a list of hack classes")
        rewards = require(record, "rewards", dict, where)
        for kind, value in rewards.items():
            if kind not in KINDS:
                raise InputError(f"{where}: field 'rewards.{kind}': no reward kind "
                                 f"(one of {', '.join(KINDS)})")  # fmt: skip
            if value is not None and not _number(value):
                raise InputError(f"{where}: field 'rewards.{kind}': {value!r} is not a number "
                                 "or null")  # fmt: skip
        tokens = _count(record, "completion_tokens", where)
        rows.append(
            {"step": step, "passed": status == "passed", "hacked": bool(hacks), "tokens": tokens}
            | {f"reward_{k}": rewards.get(k) for k in KINDS}
        )
    if not rows:
        raise InputError(f"{path}: no rollouts in the file")
    if all(r["step"] is None for r in rows):
        raise InputError(f"{path}: field 'step': null on every line, no step to plot")
    return rows


def curves_frame(
    paths: Sequence[str | os.PathLike], labels: Sequence[str] | None = None
) -> pd.DataFrame:
    """One row per (label, step), columns :data:`COLUMNS`; runs in the order of ``labels`` (one
    per path, default: each file's directory), steps ascending. A label given to several files
    pools them (the rank files of a multi-process run killed before they were merged)."""
    if labels is None:
        labels = [Path(p).parent.name for p in paths]
    if not paths:
        raise InputError("no rollouts files to draw curves from")
    if len(labels) != len(paths):
        raise InputError(f"{len(labels)} labels for {len(paths)} rollouts files: one per file")
    lines = []
    for label, path in zip(labels, paths, strict=True):
        lines += [{"label": str(label), **r} for r in read_rollouts(path) if r["step"] is not None]
    df = pd.DataFrame(lines)
    df["step"] = df["step"].astype(int)
    # Mean over the non-null values (None becomes NaN in these float columns).
    for column in [*REWARD_COLUMNS, "tokens"]:
        df[column] = df[column].astype(float)
    grouped = df.groupby(["label", "step"], sort=False)
    frame = grouped.agg(
        completions=("passed", "size"),
        pass_rate=("passed", "mean"),
        hack_rate=("hacked", "mean"),
        **{c: (c, "mean") for c in REWARD_COLUMNS},
        mean_completion_tokens=("tokens", "mean"),
    ).reset_index()
    order = {label: i for i, label in enumerate(dict.fromkeys(map(str, labels)))}
    frame["run"] = frame["label"].map(order)
    return frame.sort_values(["run", "step"]).reset_index(drop=True)[COLUMNS]


def parse_trained(specs: Sequence[str] | None) -> dict[str, list[str]]:
    """``--rewards`` values, each ``LABEL=KIND[,KIND]`` or a JSON object ``{"LABEL": ["KIND",
    ...]}``; a later value adds labels or replaces their kinds."""
    out: dict[str, list[str]] = {}
    for spec in specs or []:
        if spec.lstrip().startswith("{"):
            try:
                mapping = json.loads(spec)
            except json.JSONDecodeError as exc:
                raise InputError(f"--rewards {spec!r}: not valid JSON ({exc.msg})") from None
            lists = isinstance(mapping, dict) and all(
                isinstance(v, list) and all(isinstance(k, str) for k in v) for v in mapping.values()
            )
            if not lists:
                raise InputError(f"--rewards {spec!r}: expected a JSON object of label -> "
                                 "list of reward kinds")  # fmt: skip
            out |= {str(label): list(kinds) for label, kinds in mapping.items()}
        else:
            label, sep, kinds = spec.rpartition("=")
            if not sep or not label:
                raise InputError(f"--rewards {spec!r}: expected LABEL=KIND[,KIND] or a JSON "
                                 "object")  # fmt: skip
            out[label] = [k.strip() for k in kinds.split(",") if k.strip()]
    return out


def trained_kinds(
    frame: pd.DataFrame, trained: Mapping[str, Sequence[str]] | None = None
) -> dict[str, list[str]]:
    """The reward kinds drawn for each run: ``trained``'s, else every kind the run has values of."""
    labels = list(dict.fromkeys(frame["label"]))
    trained = dict(trained or {})
    unknown = [label for label in trained if label not in labels]
    if unknown:
        raise InputError(f"rewards given for {unknown}, which are no run's label ({labels})")
    out = {}
    for label in labels:
        sub = frame[frame["label"] == label]
        kinds = list(trained.get(label) or [k for k in KINDS if sub[f"reward_{k}"].notna().any()])
        bad = [k for k in kinds if k not in KINDS]
        if bad:
            raise InputError(f"rewards of {label!r}: {bad} are no reward kinds "
                             f"(one of {', '.join(KINDS)})")  # fmt: skip
        out[label] = kinds
    return out


def curves_figure(frame: pd.DataFrame, trained: Mapping[str, Sequence[str]] | None = None):
    """Three panels against the optimizer step: the pass rate, the mean reward of the kinds each
    run trained on (:func:`trained_kinds`), the hack rate; one colour per run, points only at the
    steps the run has."""
    import matplotlib

    matplotlib.use("Agg")  # before pyplot: batch jobs have no display
    import matplotlib.pyplot as plt
    from matplotlib.ticker import MaxNLocator

    kinds = trained_kinds(frame, trained)
    cmap = plt.get_cmap("tab10")
    colors = {label: cmap(i % 10) for i, label in enumerate(kinds)}
    fig, (passes, rewards, hacks) = plt.subplots(1, 3, figsize=(13.0, 3.6))
    for label, color in colors.items():
        sub = frame[frame["label"] == label]
        passes.plot(sub["step"], sub["pass_rate"], marker="o", markersize=3, color=color,
                    label=label)  # fmt: skip
        hacks.plot(sub["step"], sub["hack_rate"], marker="o", markersize=3, color=color,
                   label=label)  # fmt: skip
        for kind in kinds[label]:
            points = sub[sub[f"reward_{kind}"].notna()]
            rewards.plot(points["step"], points[f"reward_{kind}"], marker="o", markersize=3,
                         color=color, ls=KIND_STYLES[kind], label=f"{label}: {kind}")  # fmt: skip
    for ax, title, ylabel in (
        (passes, "Pass rate of the completions", "share passing every test"),
        (rewards, "Mean reward (kind: line style)", "mean reward"),
        (hacks, "Hack rate", "share with a hack class"),
    ):
        ax.set_title(title, fontsize=10)
        ax.set_xlabel("optimizer step")
        ax.set_ylabel(ylabel)
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.grid(alpha=0.3)
        if ax.get_legend_handles_labels()[0] and ax is not rewards:
            ax.legend(fontsize=7, frameon=False)
    if rewards.get_legend_handles_labels()[0]:  # up to three lines a run: below the panel
        rewards.legend(fontsize=7, frameon=False, ncol=2, loc="upper center",
                       bbox_to_anchor=(0.5, -0.18))  # fmt: skip
    passes.set_ylim(-0.02, 1.02)
    hacks.set_ylim(-0.02, max(0.1, 1.15 * float(frame["hack_rate"].max())))
    fig.tight_layout()
    return fig


def write_csv(frame: pd.DataFrame, out: str | os.PathLike) -> Path:
    """The frame as CSV (empty cells where a step has no value of a reward kind), atomically."""
    with atomic_write(out) as fh:
        fh.write(frame.to_csv(index=False))
    return Path(out)
