"""Experiment tracking (codedpo.training.tracking): the workflow's training.report_to reaches a
training run through the environment, TensorBoard's events land under the run's log folder, a
tracker that is not installed stops the dry run, and tracking never blocks a resume."""

from __future__ import annotations

import json
import os
import shutil
import sys
from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace

import pytest
import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent))
from tinymodel import tiny_model_dir  # noqa: E402
from workflow_helpers import merge  # noqa: E402

from codedpo.training import resume, tracking  # noqa: E402
from codedpo.workflow import preflight  # noqa: E402
from codedpo.workflow.config import ConfigError, Layer, check, load_schema  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
SCHEMA = load_schema(REPO / "schemas/config.schema.yaml")
DEMO = yaml.safe_load((REPO / "config.yaml").read_text())


@pytest.fixture
def env(monkeypatch):
    for name in (tracking.REPORT_TO_ENV, tracking.TRACKING_DIR_ENV, "TENSORBOARD_LOGGING_DIR",
                 "WANDB_DIR", "MLFLOW_TRACKING_URI"):  # fmt: skip
        monkeypatch.delenv(name, raising=False)
    return monkeypatch


def test_the_workflows_setting_applies_where_the_recipe_names_no_tracker(env, tmp_path):
    env.setenv(tracking.REPORT_TO_ENV, "tensorboard")
    env.setenv(tracking.TRACKING_DIR_ENV, str(tmp_path / "logs/tracking"))
    args = SimpleNamespace(report_to=[])  # a recipe's report_to: none, as transformers keeps it
    assert tracking.apply(args, "results/checkpoints/demo-a/paper/dpo/r2/dpo-demo-a") == [
        "tensorboard"
    ]
    assert args.report_to == ["tensorboard"]
    assert os.environ["TENSORBOARD_LOGGING_DIR"] == str(
        tmp_path / "logs/tracking/demo-a/paper/dpo/r2/dpo-demo-a/tensorboard"
    )
    # a recipe that names a tracker wins
    args = SimpleNamespace(report_to=["wandb"])
    assert tracking.apply(args, "elsewhere/run") == ["wandb"]
    assert os.environ["WANDB_DIR"] == str(tmp_path / "logs/tracking/run/wandb")
    # nothing asked: nothing set
    env.delenv(tracking.REPORT_TO_ENV)
    assert tracking.apply(SimpleNamespace(report_to=[]), "x") == []
    assert tracking.trackers("none") == [] and tracking.trackers(["none", ""]) == []


def test_trackers_do_not_change_which_checkpoint_resumes(tmp_path):
    train = tmp_path / "pairs.jsonl"
    train.write_text("{}\n")

    @dataclass
    class Script:
        train_file: str

    class Args:
        def __init__(self, report_to):
            self.report_to = report_to

        def to_json_string(self):
            return json.dumps({"learning_rate": 1e-4, "report_to": self.report_to})

    script = Script(str(train))
    assert resume.run_settings(script, Args([])) == resume.run_settings(script, Args(["wandb"]))


def dry_check(report_to) -> None:
    override = {"training": {"report_to": report_to}}
    config = merge(DEMO, override)
    layers = [Layer("config.yaml", DEMO), Layer("o.yaml", override)]
    preflight.check_trackers(config, layers, check(config, SCHEMA, layers, root=REPO))


def test_a_tracker_that_is_not_installed_stops_the_dry_run():
    assert tracking.missing(["tensorboard", "mlflow"])[-1:] == ["mlflow"]  # no mlflow in CI
    with pytest.raises(ConfigError, match=r"^o.yaml: training.report_to: mlflow: not installed"):
        dry_check("mlflow")
    with pytest.raises(ConfigError, match=r"^o.yaml: training.report_to"):
        dry_check("neptune")  # not a tracker the workflow offers
    if not tracking.missing("tensorboard"):  # installed by the tracking extra (make setup)
        dry_check(["tensorboard"])


@pytest.mark.skipif(shutil.which("bwrap") is None, reason="bubblewrap not installed")
@pytest.mark.skipif(bool(tracking.missing("tensorboard")),
                    reason="tensorboard not installed (pip install -e '.[tracking]')")  # fmt: skip
def test_a_run_writes_its_tensorboard_events_under_the_log_folder(env, tmp_path_factory):
    """A real (2-step GRPO) run of the tests' tiny model, tracked as the workflow asks."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    from codedpo.training.train import main

    model = tiny_model_dir(tmp_path_factory)
    work = tmp_path_factory.mktemp("tracked")
    problems = REPO / "src/codedpo/data/demo/problems.jsonl"
    from codedpo.problems.load import load_problems

    tasks = ("demo/sum_to_n", "demo/factorial")
    chosen = [p for t, p in load_problems(problems).items() if t in tasks]
    train = work / "train.jsonl"
    train.write_text("".join(json.dumps(p) + "\n" for p in chosen))
    env.setenv(tracking.REPORT_TO_ENV, "tensorboard")
    env.setenv(tracking.TRACKING_DIR_ENV, str(work / "logs/tracking"))
    out = work / "results/checkpoints/tiny/grpo-a"
    env.chdir(work)
    args = ["--config", str(REPO / "configs/recipes/grpo.yaml"), "--model_name_or_path",
            str(model), "--train_file", str(train), "--output_dir",
            "results/checkpoints/tiny/grpo-a", "--activation_checkpointing", "false",
            "--learning_rate", "1e-3", "--num_generations", "4",
            "--per_device_train_batch_size", "4", "--effective_batch_size", "8",
            "--max_completion_length", "16", "--reward_workers", "2", "--max_steps", "2",
            "--save_strategy", "no"]  # fmt: skip
    assert main(args) == 0
    assert (out / "train_summary.json").exists()
    events = list((work / "logs/tracking/tiny/grpo-a/tensorboard").rglob("events.out.tfevents.*"))
    assert events, "no TensorBoard events under logs/tracking/tiny/grpo-a/tensorboard"
    acc = EventAccumulator(str(events[0].parent))
    acc.Reload()
    scalars = acc.Tags()["scalars"]
    assert "train/loss" in scalars and "train/rewards/pass_all_reward/mean" in scalars
    assert [e.step for e in acc.Scalars("train/loss")] == [1, 2]
