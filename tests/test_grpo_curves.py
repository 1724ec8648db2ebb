"""GRPO's training curves from rollouts.jsonl: the means and rates per step, the figure and its
table, located errors; and GRPO scores in the pass@1 figure."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pandas as pd
import pytest

from codedpo.execution.reward import KINDS, Reward
from codedpo.io import InputError
from codedpo.records import NOT_THE_MODELS, RULE_REWARD
from codedpo.reporting.grpo_curves import COLUMNS, curves_frame, parse_trained, trained_kinds
from codedpo.reporting.plots import main, pass_at_1_frame, plot_curves, rounds_frame

PNG = b"\x89PNG\r\n\x1a\n"


def line(step, status, passed, total, tokens, hacks=(), attempt=1, rank=0, task="demo/1") -> dict:
    """One line as :class:`codedpo.training.grpo.Rollouts` writes it, rewarded by the real
    :meth:`Reward.value` (the lowest reward for a hack, none where the fault is not the model's)."""
    ours = status not in NOT_THE_MODELS
    reward = Reward(
        task_id=task, code="def f(): ...", status=status, passed=passed, total=total,
        fraction=(passed / total if total else 0.0) if ours else None,
        pass_all=(1.0 if status == "passed" else 0.0) if ours else None,
        rule=RULE_REWARD[status] if ours else None, hacks=tuple(hacks), record={},
    )  # fmt: skip
    return {"step": step, "attempt": attempt, "rank": rank, "task_id": task,
            "prompt": "Write f.", "completion": "```python\ndef f(): ...\n```",
            "completion_tokens": tokens, "status": status, "passed": passed, "total": total,
            "rewards": {kind: reward.value(kind) for kind in KINDS}, "hacks": list(hacks),
            "sandbox_s": 0.004, "executor_s": 0.011}  # fmt: skip


# Run "pass_all": two processes, killed after step 2's batch and resumed from checkpoint-2, so
# attempt 2 generates step 2 again; the rank-1 lines were merged at the end of attempt 2.
RUN_A = [
    line(0, "passed", 3, 3, 40),
    line(0, "failed", 1, 3, 60),
    line(1, "passed", 3, 3, 50),
    line(1, "sandbox_error", 0, 0, 70),  # not the model's: no reward
    line(2, "failed", 0, 3, 20),
    line(2, "passed", 3, 3, 60, attempt=2),
    line(3, "passed", 3, 3, 30, attempt=2),
    line(None, "passed", 3, 3, 5, attempt=2),  # scored outside a trainer: no step
    line(0, "runtime_error", 0, 2, 80, rank=1, task="demo/2"),
    line(0, "passed", 2, 2, 90, hacks=["early_exit"], rank=1, task="demo/2"),
    line(1, "failed", 2, 3, 30, rank=1, task="demo/2"),
    line(1, "passed", 2, 2, None, rank=1, task="demo/2"),  # no completion ids: no length
    line(2, "passed", 2, 2, 40, rank=1, task="demo/2"),
    line(2, "syntax_error", 0, 2, 10, attempt=2, rank=1, task="demo/2"),
    line(3, "timeout", 0, 2, 100, attempt=2, rank=1, task="demo/2"),
]
# Run "rule": one generation batch per two steps, so only steps 0, 2 and 4 have lines.
RUN_B = [
    line(0, "passed", 4, 4, 20),
    line(0, "failed", 2, 4, 25, hacks=["read_hidden", "early_exit"]),
    line(2, "sandbox_error", 0, 0, 10),
    line(2, "problem_error", 0, 0, 30),
    line(4, "passed", 4, 4, 12),
    line(4, "passed", 4, 4, 14),
]
NAN = float("nan")
# (label, step): completions, pass rate, hack rate, mean pass_all, fraction, rule, tokens;
# worked out by hand from the lines above.
EXPECTED = {
    ("pass_all", 0): (4, 0.5, 0.25, 0.25, (1 + 1 / 3) / 4, (1 - 0.3 - 0.6 - 1) / 4, 67.5),
    ("pass_all", 1): (4, 0.5, 0.0, 2 / 3, (1 + 2 / 3 + 1) / 3, (1 - 0.3 + 1) / 3, 50.0),
    ("pass_all", 2): (4, 0.5, 0.0, 0.5, 0.5, (-0.3 + 1 + 1 - 1) / 4, 32.5),
    ("pass_all", 3): (2, 0.5, 0.0, 0.5, 0.5, (1 - 0.6) / 2, 65.0),
    ("rule", 0): (2, 0.5, 0.5, 0.5, 0.5, 0.0, 22.5),
    ("rule", 2): (2, 0.0, 0.0, NAN, NAN, NAN, 20.0),
    ("rule", 4): (2, 1.0, 0.0, 1.0, 1.0, 1.0, 13.0),
}


def write(path: Path, lines: list[dict]) -> str:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(x) + "\n" for x in lines))
    return str(path)


@pytest.fixture
def runs(tmp_path: Path) -> list[str]:
    return [write(tmp_path / "pass_all" / "rollouts.jsonl", RUN_A),
            write(tmp_path / "rule" / "rollouts.jsonl", RUN_B)]  # fmt: skip


def same(a: float, b: float) -> bool:
    return (math.isnan(a) and math.isnan(b)) or a == pytest.approx(b, abs=1e-12)


def test_curves_frame_means_and_rates_per_step(runs: list[str]) -> None:
    frame = curves_frame(runs, ["pass_all", "rule"])
    assert list(frame.columns) == COLUMNS
    assert list(zip(frame["label"], frame["step"], strict=True)) == list(EXPECTED)
    for row in frame.itertuples(index=False):
        got = row[2:]
        want = EXPECTED[(row.label, row.step)]
        assert all(same(float(g), float(w)) for g, w in zip(got, want, strict=True)), (row, want)


def test_labels_default_to_directories_and_a_label_pools_its_files(
    runs: list[str], tmp_path: Path
) -> None:
    assert list(dict.fromkeys(curves_frame(runs)["label"])) == ["pass_all", "rule"]
    # A multi-process run killed before the merge: rank 1's file beside rank 0's, one label.
    first = write(tmp_path / "k" / "rollouts.jsonl", [x for x in RUN_A if x["rank"] == 0])
    other = write(tmp_path / "k" / "rollouts.rank1.jsonl", [x for x in RUN_A if x["rank"]])
    pooled = curves_frame([first, other], ["a", "a"])
    whole = curves_frame(runs[:1], ["a"])
    pd.testing.assert_frame_equal(pooled, whole)


def test_cli_writes_figure_and_table(runs: list[str], tmp_path: Path) -> None:
    png, csv = tmp_path / "out" / "curves.png", tmp_path / "out" / "curves.csv"
    argv = ["grpo-curves", "--rollouts", *runs, "--labels", "pass_all", "rule",
            "--rewards", '{"pass_all": ["pass_all"]}', "--rewards", "rule=rule,fraction",
            "--out", str(png), "--out-csv", str(csv)]  # fmt: skip
    assert main(argv) == 0
    assert png.read_bytes()[:8] == PNG
    table = pd.read_csv(csv)
    assert list(table.columns) == COLUMNS and len(table) == len(EXPECTED)
    assert table["reward_rule"].isna().tolist() == [False] * 5 + [True, False]
    assert table.loc[0, "mean_completion_tokens"] == 67.5
    first = png.read_bytes()
    assert main(argv) == 0 and png.read_bytes() == first  # no timestamp in the file


def test_trained_kinds(runs: list[str], tmp_path: Path) -> None:
    frame = curves_frame(runs, ["pass_all", "rule"])
    assert trained_kinds(frame) == {"pass_all": list(KINDS), "rule": list(KINDS)}
    only = curves_frame([write(tmp_path / "x.jsonl", RUN_B[2:4])], ["down"])  # no reward at all
    assert trained_kinds(only) == {"down": []}
    assert plot_curves(only, tmp_path / "down.svg").exists()
    given = parse_trained(['{"pass_all": ["pass_all"], "rule": ["rule"]}', "rule=fraction,rule"])
    assert given == {"pass_all": ["pass_all"], "rule": ["fraction", "rule"]}
    assert trained_kinds(frame, given) == {"pass_all": ["pass_all"], "rule": ["fraction", "rule"]}
    with pytest.raises(InputError, match=r"rewards given for \['ppo'\], which are no run's"):
        trained_kinds(frame, {"ppo": ["rule"]})
    with pytest.raises(InputError, match=r"rewards of 'rule': \['ruel'\] are no reward kinds"):
        trained_kinds(frame, {"rule": ["ruel"]})
    for spec, message in (("rule", "expected LABEL=KIND"), ('{"a": "rule"}', "list of reward"),
                          ("{a: 1}", "not valid JSON")):  # fmt: skip
        with pytest.raises(InputError, match=message):
            parse_trained([spec])


def broken(field: str, value: object) -> dict:
    out = dict(RUN_B[0])
    if value is KeyError:
        del out[field]
    else:
        out[field] = value
    return out


@pytest.mark.parametrize(
    ("bad", "message"),
    [
        (broken("step", KeyError), "missing field 'step'"),
        (broken("step", "3"), r"field 'step': '3' is not a count"),
        (broken("step", True), "field 'step': True is not a count"),
        (broken("status", KeyError), "missing field 'status'"),
        (broken("status", "pass"), "field 'status': 'pass' is not one of passed"),
        (broken("rewards", KeyError), "missing field 'rewards'"),
        (broken("rewards", [1.0]), "field 'rewards' must be dict"),
        (broken("rewards", {"pass_all": "1"}), r"field 'rewards.pass_all': '1' is not a number"),
        (broken("rewards", {"exact": 1.0}), "field 'rewards.exact': no reward kind"),
        (broken("hacks", KeyError), "missing field 'hacks'"),
        (broken("hacks", "early_exit"), "field 'hacks' must be list"),
        (broken("completion_tokens", KeyError), "missing field 'completion_tokens'"),
        (broken("completion_tokens", -1), "field 'completion_tokens': -1 is not a count"),
    ],
)
def test_bad_lines_name_file_line_and_field(tmp_path: Path, bad: dict, message: str) -> None:
    path = write(tmp_path / "r.jsonl", [RUN_B[1], RUN_B[2], bad])
    with pytest.raises(InputError, match=f"^{path}:3: {message}"):
        curves_frame([path], ["r"])


def test_unreadable_and_empty_files_name_the_file(tmp_path: Path) -> None:
    half = tmp_path / "half.jsonl"
    half.write_text(json.dumps(RUN_B[0]) + '\n{"step": 1, "stat\n')
    with pytest.raises(InputError, match=f"^{half}:2: not valid JSON"):
        curves_frame([str(half)], ["h"])
    empty = tmp_path / "empty.jsonl"
    empty.write_text("\n")
    with pytest.raises(InputError, match=f"^{empty}: no rollouts in the file"):
        curves_frame([str(empty)], ["e"])
    stepless = write(tmp_path / "none.jsonl", [broken("step", None)])
    with pytest.raises(InputError, match=f"^{stepless}: field 'step': null on every line"):
        curves_frame([stepless], ["n"])
    with pytest.raises(InputError, match="no rollouts files"):
        curves_frame([], [])
    with pytest.raises(InputError, match="1 labels for 2 rollouts files"):
        curves_frame([stepless, stepless], ["n"])
    with pytest.raises(InputError, match="missing.jsonl: file not found"):
        main(["grpo-curves", "--rollouts", str(tmp_path / "missing.jsonl"), "--out", "x.png"])


def score(variant: str, value: float, **run) -> dict:
    return {"policy": "a", "variant": variant, "benchmark": "demo_eval", "pass_at_1": value, **run}


GRPO_SCORES = [
    score("grpo", 0.55, arm="rule", recipe="grpo-rule"),
    score("dpo", 0.5, pairs_from="b"),
    score("grpo", 0.6, arm="pass_all", recipe="grpo"),
    score("base", 0.3),
    score("dpo", 0.45, pairs_from="a", arm="max_min"),
    score("dpo", 0.4, pairs_from="a"),
]


def test_pass_at_1_frame_puts_grpo_after_dpo() -> None:
    df = pass_at_1_frame(GRPO_SCORES)
    ordered = df.sort_values("order", kind="stable")["label"].tolist()
    assert ordered == ["base", "+ DPO", "+ DPO max_min", "+ DPO (pairs from b)",
                       "+ GRPO pass_all", "+ GRPO rule"]  # fmt: skip
    assert df.set_index("label").loc["+ GRPO pass_all", "pass_at_1"] == 0.6
    with pytest.raises(InputError, match="'ppo' is not base, rft, dpo or grpo"):
        pass_at_1_frame([score("ppo", 0.1)])


def test_rounds_plot_leaves_grpo_out() -> None:
    df = rounds_frame(GRPO_SCORES, ["a"], ["demo_eval"])
    assert set(df["line"]) == {"paper", "max_min"}
    assert sorted(df["value"]) == [0.3, 0.3, 0.4, 0.45]
