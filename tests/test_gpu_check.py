"""The prepared GPU check (`bench/gpu_check.sh`) runs: its --smoke mode is the same code on the
CPU with tiny shapes, so the real check runs on a GPU machine without being debugged there; the
mirror of TRL's GRPO loss (used where TRL does not import) gives TRL's gradients; the time budget
stops measurements and still writes the JSON."""

from __future__ import annotations

import argparse
import contextlib
import importlib.util
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "bench"))

import gpu_check  # noqa: E402
import gpu_check_train  # noqa: E402

VLLM = importlib.util.find_spec("vllm") is not None
# The smoke run took 35-40 s on a 2-core machine with other work beside it (TRL's import about
# 10 s, vLLM's CPU engine about 13 s); the bound leaves room for a busier machine, not for a
# GPU-sized shape on the CPU.
SMOKE_BOUND_S = 150


@pytest.mark.real_data
@pytest.mark.vllm
def test_gpu_check_smoke_runs_every_measurement(tmp_path):
    env = {**os.environ, "PYTHON": sys.executable, "OUT": str(tmp_path)}
    start = time.monotonic()
    proc = subprocess.run(
        ["bash", str(REPO / "bench/gpu_check.sh"), "--smoke"],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    wall = time.monotonic() - start
    assert proc.returncode == 0, proc.stdout + proc.stderr
    result = json.loads((tmp_path / "gpu_check.json").read_text())
    shared = REPO.parent / "shared"
    if shared.exists():
        assert result["machine"]["shape"].startswith("checked against")
    rows = result["sampling"] + result["grpo"] + result["dpo"]
    assert not [r for r in rows if "error" in r or ("skipped" in r and r.get("engine") != "vllm")]
    engines = [(r["engine"], r["sequences"], r.get("tokens")) for r in result["sampling"]]
    # 2 prompts x 8 samples x 8 new tokens; vLLM runs each sample to full length too
    assert engines[:2] == [("hf backend", 16, 128), ("baseline", 16, 128)]
    (vllm,) = [r for r in result["sampling"] if r["engine"] == "vllm"]
    if VLLM:
        assert (vllm["sequences"], vllm["tokens"]) == (16, 128) and vllm["startup_s"] > 0
    else:
        assert vllm["skipped"] == "vllm not installed"
    (grpo,) = result["grpo"]
    trl = importlib.util.find_spec("trl") is not None
    assert grpo["impl"].startswith("trl 1.16.0" if trl else "mirror")
    assert (grpo["group"], grpo["seq_len"], grpo["loss_type"]) == (8, 64, "dapo")
    assert [r["precompute_ref_log_probs"] for r in result["dpo"]] == [True, False]
    assert all(r["tokens_per_s"] > 0 for r in rows if "skipped" not in r)
    # cheap: tiny shapes, and the whole run inside the bound
    assert result["machine"]["device"] == "cpu" and wall < SMOKE_BOUND_S
    assert result["elapsed_s"] < SMOKE_BOUND_S
    table = (tmp_path / "gpu_check.md").read_text()
    assert "| smoke | hf backend | 16 | 128 |" in table
    assert "| smoke | resident ref | fp32 |" in table
    assert "| smoke | trl 1.16.0: GRPOTrainer._compute_loss | dapo | fp32 |" in table or not trl


def test_grpo_mirror_gives_trls_gradients():
    pytest.importorskip("trl")
    import torch

    torch.manual_seed(0)
    generator = torch.Generator().manual_seed(0)
    ids = gpu_check_train.random_groups(generator, 1, 8, 24, 6)
    advantages = gpu_check_train.group_advantages(torch.rand(8, generator=generator), 8)
    grads = {}
    for impl in ("trl", "mirror"):
        policy = gpu_check.build_model(gpu_check.SHAPE_SMOKE, "cpu", torch.float32).train()
        if impl == "trl":
            loss = gpu_check_train.TrlGrpoLoss(policy, 8, cuda=False)(policy, ids, 6, advantages)
        else:
            autocast = contextlib.nullcontext()
            loss = gpu_check_train.mirror_grpo_loss(policy, ids, 6, advantages, autocast)
        loss.backward()
        grads[impl] = {n: p.grad.clone() for n, p in policy.named_parameters()}
    assert any(g.abs().sum() > 0 for g in grads["trl"].values())
    for name, grad in grads["trl"].items():
        torch.testing.assert_close(grads["mirror"][name], grad, rtol=1e-4, atol=1e-8)


def test_group_advantages_are_normalized_per_group():
    import torch

    rewards = torch.tensor([1.0, 0.0, 0.0, 0.0, 5.0, 5.0, 7.0, 7.0])
    advantages = gpu_check_train.group_advantages(rewards, 4)
    torch.testing.assert_close(advantages.view(2, 4).sum(1), torch.zeros(2))
    torch.testing.assert_close(advantages[:4].std(), torch.tensor(1.0), rtol=1e-3, atol=0)


def test_budget_alarm_stops_a_running_measurement():
    start = time.monotonic()
    with pytest.raises(gpu_check.OutOfBudget), gpu_check.deadline_alarm(start + 0.2):
        while time.monotonic() - start < 5:
            time.sleep(0.01)
    assert time.monotonic() - start < 1


def test_spent_budget_skips_every_measurement_and_writes_the_json(tmp_path):
    import torch

    args = ["--smoke", "--grpo-impl", "mirror", "--budget-s", "0", "--out", str(tmp_path)]
    threads = torch.get_num_threads()
    try:
        assert gpu_check.main(args) == 0
    finally:
        torch.set_num_threads(threads)  # the smoke mode's one thread, not the other tests'

    result = json.loads((tmp_path / "gpu_check.json").read_text())
    rows = result["sampling"] + result["grpo"] + result["dpo"]
    assert len(rows) == 5  # HF sampling, GRPO, DPO x 2, vLLM
    assert all(r["skipped"] == "time budget (0 s)" for r in rows)
    assert "time budget (0 s)" in (tmp_path / "gpu_check.md").read_text()


def test_fp32_master_weights_of_the_7b_shape_need_more_than_an_h100():
    params = gpu_check_train.parameter_count(gpu_check.SHAPE_7B)
    assert 6.6e9 < params < 6.8e9  # DeepSeek-Coder-6.7B
    assert params * gpu_check_train.FP32_MASTER_BYTES > 80e9


def test_grpo_falls_back_to_the_mirror_when_trls_loss_fails(monkeypatch):
    class Broken:
        def __init__(self, *args, **kwargs):
            raise AttributeError("'GRPOTrainer' object has no attribute 'something_new'")

    monkeypatch.setattr(gpu_check_train, "TrlGrpoLoss", Broken)
    args = argparse.Namespace(group=4, seq_len=16, steps=1)
    rows = []
    shape = gpu_check.SHAPE_SMOKE
    gpu_check_train.train_rows(
        "grpo", gpu_check.build_model, "smoke", shape, args, "cpu", into=rows, impl="trl"
    )
    (row,) = rows
    assert row["impl"].startswith("mirror of trl") and row["tokens_per_s"] > 0
    assert row["trl_error"].startswith("AttributeError: 'GRPOTrainer' object")
