"""Every checkpoint's training curves from train_summary.json: the frame holds the trainer's logged
values, the figure has its three panels, the CLI writes figure and table, errors name file and
field. DPO and RFT summaries come from real (tiny, in-process) training runs; GRPO's needs the
sandbox and a slower run (tests/test_grpo.py), so its history is written here with the keys
TRL's GRPO trainer logs."""

from __future__ import annotations

import json
import math
import re
import sys
from pathlib import Path

import pandas as pd
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
from tinymodel import tiny_model_dir  # noqa: E402

from codedpo import cli  # noqa: E402
from codedpo.io import InputError  # noqa: E402
from codedpo.reporting.plots import main, plot_training_curves  # noqa: E402
from codedpo.reporting.training_curves import COLUMNS, curves_figure, curves_frame  # noqa: E402
from codedpo.training.train import main as train  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
PNG = b"\x89PNG\r\n\x1a\n"
# As tests/test_train.py: a tiny model, 8 examples, 4 per optimizer step; 2 epochs: 4 steps.
TINY = ["--activation_checkpointing", "false", "--learning_rate", "1e-3", "--max_length", "128",
        "--effective_batch_size", "4", "--per_device_train_batch_size", "2",
        "--num_train_epochs", "2"]  # fmt: skip


def chat(role: str, text: str) -> list[dict]:
    return [{"role": role, "content": text}]


def write_jsonl(path: Path, records: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in records))
    return path


@pytest.fixture(scope="module")
def trained(tmp_path_factory) -> dict[str, Path]:
    """train_summary.json of a DPO run, an RFT run and an RFT run that logged no step."""
    model, tmp = tiny_model_dir(tmp_path_factory), tmp_path_factory.mktemp("trained")
    code = [f"```python\ndef f{k}(x):\n    return x {{}} {k}\n```" for k in range(8)]
    prompts = [chat("user", f"Write `f{k}(x)` returning x + {k}.") for k in range(8)]
    pairs = write_jsonl(tmp / "pairs.jsonl", [
        {"prompt": p, "chosen": chat("assistant", c.format("+")), "task_id": f"demo/p{k}",
         "rejected": chat("assistant", c.format("-")), "chosen_id": f"demo/p{k}/0",
         "rejected_id": f"demo/p{k}/1", "rejected_status": "failed"}
        for k, (p, c) in enumerate(zip(prompts, code, strict=True))
    ])  # fmt: skip
    sft = write_jsonl(tmp / "rft.jsonl", [
        {"prompt": p, "completion": chat("assistant", c.format("+")), "task_id": f"demo/p{k}",
         "sample_id": f"demo/p{k}/0"}
        for k, (p, c) in enumerate(zip(prompts, code, strict=True))
    ])  # fmt: skip
    runs = {"dpo": ("dpo", pairs, []), "rft": ("rft", sft, []),
            "quiet": ("rft", sft, ["--logging_steps", "100"])}  # fmt: skip
    out = {}
    for name, (method, data, extra) in runs.items():
        args = ["--config", str(ROOT / f"configs/recipes/{method}.yaml"), "--model_name_or_path",
                str(model), "--train_file", str(data), "--output_dir", str(tmp / name), *TINY,
                *extra]  # fmt: skip
        assert train(args) == 0
        out[name] = tmp / name / "train_summary.json"
    return out


def grpo_entry(step: int, loss: float, reward: float, lr: float, **more) -> dict:
    """A log entry with the keys TRL's GRPOTrainer logs (a real one: the demo's grpo-pass_all)."""
    return {"loss": loss, "grad_norm": 0.25 + step / 100, "learning_rate": lr,
            "num_tokens": 5820.0 * step, "completions/mean_length": 32.7,
            "rewards/pass_all_reward/mean": reward, "rewards/pass_all_reward/std": 0.5,
            "reward": reward, "reward_std": 0.5, "frac_reward_zero_std": 0.0, "entropy": 0.04,
            "epoch": step / 4, "step": step} | more  # fmt: skip


def closing(step: int) -> dict:
    return {"train_runtime": 5.2, "train_steps_per_second": 0.9, "total_flos": 0.0,
            "train_loss": -0.009, "epoch": step / 4, "step": step}  # fmt: skip


# Killed after checkpoint-2 and resumed: the restored history goes on at step 3; a step logged
# twice all the same keeps its last entry. An evaluation entry has no loss; step 4 no grad norm.
GRPO_HISTORY = [
    grpo_entry(1, -0.005, 0.56, 0.0),
    grpo_entry(2, -0.006, 0.48, 1e-4),
    grpo_entry(2, -0.007, 0.50, 9e-5),
    {"eval_loss": 0.1, "epoch": 0.75, "step": 3},
    grpo_entry(3, -0.002, 0.75, 5e-5),
    {k: v for k, v in grpo_entry(4, float("nan"), 0.40, 1e-5).items() if k != "grad_norm"},
    closing(4),
]


@pytest.fixture
def grpo(tmp_path: Path) -> Path:
    """A GRPO run's train_summary.json (the fields the curves read, and a few beside them)."""
    path = tmp_path / "grpo-pass_all" / "train_summary.json"
    path.parent.mkdir()
    path.write_text(json.dumps({"method": "grpo", "global_step": 4, "resumed_from": "checkpoint-2",
                                "training_args": {"logging_steps": 1},
                                "log_history": GRPO_HISTORY}))  # fmt: skip
    return path


def logged(path: Path) -> list[dict]:
    return [h for h in json.loads(path.read_text())["log_history"] if "loss" in h]


def same(got: float, want: float | None) -> bool:
    want = math.nan if want is None else want
    return (math.isnan(got) and math.isnan(want)) or got == want


def test_the_frame_holds_what_the_trainers_logged(trained, grpo) -> None:
    frame = curves_frame([trained["dpo"], trained["rft"], grpo], ["+ DPO", "+ RFT", "+ GRPO"])
    assert list(frame.columns) == COLUMNS
    runs = (("+ DPO", "dpo", trained["dpo"]), ("+ RFT", "rft", trained["rft"]))
    for label, method, path in runs:
        rows = frame[frame["label"] == label]
        history = logged(path)
        # logging_steps 1: every optimizer step once, the closing entry (no loss) left out
        assert rows["step"].tolist() == [h["step"] for h in history] == [1, 2, 3, 4]
        assert set(rows["method"]) == {method}
        for column in ("epoch", "loss", "learning_rate", "grad_norm"):
            assert rows[column].tolist() == [h[column] for h in history], column
    dpo = frame[frame["label"] == "+ DPO"]
    assert dpo["reward_margin"].tolist() == [h["rewards/margins"] for h in logged(trained["dpo"])]
    assert dpo["reward_accuracy"].tolist() == [
        h["rewards/accuracies"] for h in logged(trained["dpo"])
    ]
    rft = frame[frame["label"] == "+ RFT"]
    assert rft["reward_margin"].isna().all() and rft["reward_accuracy"].isna().all()
    rows = frame[frame["label"] == "+ GRPO"]
    kept = [GRPO_HISTORY[i] for i in (0, 2, 4, 5)]  # step 2's last entry, no eval, no closing
    assert rows["step"].tolist() == [1, 2, 3, 4]
    for column, key in (("loss", "loss"), ("learning_rate", "learning_rate"),
                        ("grad_norm", "grad_norm"), ("epoch", "epoch"),
                        ("reward_margin", "reward")):  # fmt: skip
        got = rows[column].tolist()
        assert all(same(g, h.get(key)) for g, h in zip(got, kept, strict=True)), column
    assert rows["reward_accuracy"].isna().all()


def test_labels_default_to_the_checkpoint_directory(trained, grpo) -> None:
    frame = curves_frame([trained["rft"], grpo])
    assert list(dict.fromkeys(frame["label"])) == ["rft", "grpo-pass_all"]
    with pytest.raises(InputError, match=r"label 'x' names both .*dpo.* and .*rft.*: one run"):
        curves_frame([trained["dpo"], trained["rft"]], ["x", "x"])


def test_figure_has_three_panels_on_one_step_axis(trained, grpo, tmp_path) -> None:
    frame = curves_frame([trained["dpo"], trained["rft"], grpo], ["dpo", "rft", "grpo"])
    fig = curves_figure(frame)
    losses, rewards, rates = fig.axes
    assert losses.get_shared_x_axes().joined(losses, rates)
    assert losses.get_shared_x_axes().joined(rewards, rates)
    assert losses.get_legend_handles_labels()[1] == ["dpo", "rft", "grpo"]
    # RFT has no reward; which reward each line is, the legend says
    assert rewards.get_legend_handles_labels()[1] == ["dpo: DPO reward margin",
                                                      "grpo: GRPO mean reward"]  # fmt: skip
    assert "DPO margin" in rewards.get_ylabel() and "GRPO mean reward" in rewards.get_ylabel()
    assert [len(ax.lines) for ax in fig.axes] == [3, 2, 3]
    dpo = frame[frame["label"] == "dpo"]
    assert list(rates.lines[0].get_ydata()) == dpo["learning_rate"].tolist()
    only_rft = plot_training_curves(curves_frame([trained["rft"]]), tmp_path / "rft.svg")
    assert "no DPO or GRPO run" in only_rft.read_text()


def test_cli_writes_the_figure_and_the_table(trained, grpo, tmp_path) -> None:
    png, csv = tmp_path / "plots" / "curves.png", tmp_path / "tables" / "curves.csv"
    argv = ["plot", "training-curves", "--summaries", str(trained["dpo"]), str(trained["rft"]),
            str(grpo), "--labels", "+ DPO", "+ RFT", "+ GRPO", "--out", str(png),
            "--out-csv", str(csv)]  # fmt: skip
    assert cli.main(argv) == 0
    assert png.read_bytes()[:8] == PNG
    table = pd.read_csv(csv)
    frame = curves_frame([trained["dpo"], trained["rft"], grpo], ["+ DPO", "+ RFT", "+ GRPO"])
    pd.testing.assert_frame_equal(table, frame)
    first = png.read_bytes()
    assert main(argv[1:]) == 0 and png.read_bytes() == first  # no timestamp in the file


def entry(**fields) -> dict:
    return {"loss": 0.69, "learning_rate": 1e-4, "epoch": 0.5, "step": 1} | fields


@pytest.mark.parametrize(
    ("summary", "message"),
    [
        ("[1, 2]", "expected a JSON object, got list"),
        ({"log_history": []}, "missing field 'method'"),
        ({"method": "ppo", "log_history": []}, "field 'method': 'ppo' is not one of dpo, rft"),
        ({"method": "dpo"}, "missing field 'log_history'"),
        ({"method": "dpo", "log_history": {}}, "field 'log_history' must be list, got dict"),
        ({"method": "dpo", "log_history": [entry(), 3]},
         r"log_history\[1\]: expected a JSON object, got int"),
        ({"method": "dpo", "log_history": [{"loss": 0.69, "epoch": 0.5}]},
         r"log_history\[0\]: missing field 'step'"),
        ({"method": "dpo", "log_history": [entry(step="1")]},
         r"log_history\[0\]: field 'step' must be int, got str"),
        ({"method": "dpo", "log_history": [entry(step=True)]},
         r"log_history\[0\]: field 'step': True is not a step"),
        ({"method": "dpo", "log_history": [entry(), entry(step=2, loss="0.6")]},
         r"log_history\[1\]: field 'loss': '0.6' is not a number"),
        ({"method": "dpo", "log_history": [entry(**{"rewards/margins": [0.1]})]},
         r"log_history\[0\]: field 'rewards/margins': \[0.1\] is not a number"),
    ],
)  # fmt: skip
def test_bad_summaries_name_the_file_and_the_field(tmp_path, summary, message) -> None:
    path = tmp_path / "dpo" / "train_summary.json"
    path.parent.mkdir()
    path.write_text(summary if isinstance(summary, str) else json.dumps(summary))
    with pytest.raises(InputError, match=f"^{re.escape(str(path))}: {message}"):
        curves_frame([path], ["dpo"])


def test_a_run_that_logged_no_step_says_how_to_log_one(trained, tmp_path, capsys) -> None:
    path = trained["quiet"]  # a real run, logging_steps 100 over 4 steps: the closing entry only
    assert [h["step"] for h in json.loads(path.read_text())["log_history"]] == [4]
    message = (
        f"{path}: field 'log_history': no logged training step (no entry with a 'loss'): "
        "set logging_steps (here 100) to at most the run's steps (global_step 4)"
    )
    with pytest.raises(InputError) as err:
        curves_frame([path], ["quiet"])
    assert str(err.value) == message
    assert cli.main(["plot", "training-curves", "--summaries", str(path), "--out",
                     str(tmp_path / "x.png")]) == 2  # fmt: skip
    assert message in capsys.readouterr().err
    assert not (tmp_path / "x.png").exists()


def test_missing_files_unreadable_json_and_label_counts(tmp_path, grpo) -> None:
    with pytest.raises(InputError, match=re.escape(f"{tmp_path / 'nope.json'}: file not found")):
        curves_frame([tmp_path / "nope.json"], ["a"])
    half = tmp_path / "half.json"
    half.write_text('{"method": "dpo", "log_history": [')
    with pytest.raises(InputError, match=f"^{re.escape(str(half))}:1: not valid JSON"):
        curves_frame([half], ["h"])
    with pytest.raises(InputError, match="^1 labels for 2 train_summary.json files: one per file"):
        curves_frame([grpo, grpo], ["a"])
    with pytest.raises(InputError, match="no train_summary.json files"):
        curves_frame([], [])
