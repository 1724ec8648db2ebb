"""The GPU check: sampling and DPO-step throughput of 7B- and 1B-shaped models, one table.

Run by ``bench/gpu_check.sh`` (see there for the machine it expects). Models are random-init
Llamas of DeepSeek-Coder-6.7B's shape (``../shared/models/deepseek-ai__deepseek-coder-6.7b-
instruct/config.json``; the numbers are kept here too, and checked against the file where it is
present, because the GPU machine gets the repository only) and of a 1B variant (hidden 2048,
24 layers, 16 heads, intermediate 5504, same vocabulary), in bf16.

**Sampling**: ``codedpo.sampling.hf_backend.generate_token_ids`` (the HF backend) and the
named baseline ``bench/baseline_hf_generate.py`` (the HF path before it) on the same requests:
``problems`` prompts of random token ids, ``n`` = 8 seeded samples each, temperature 0.8 /
top-p 0.95, ``max_new_tokens`` each (random weights rarely write a stop token, so nearly every
sample runs to the budget: this measures decoding speed, not the early-stop savings that
``bench/sampling_speed.py`` measures on a trained policy). Tokens/s counts generated tokens.

**DPO step**: not TRL (the GPU machine has no TRL and no ``datasets``). One optimizer step on
``pairs`` pairs of random sequences (prompt + completion of ``seq_len`` tokens each): the policy's
summed completion log-probs of chosen and rejected, the sigmoid DPO loss of TRL's
``loss_type=sigmoid`` with beta 0.1, backward, AdamW. The policy keeps fp32 master weights under
bf16 autocast with activation checkpointing (``TrainingArguments(bf16=True)`` on one GPU without
DeepSpeed); if that runs out of memory the step is retried with bf16 weights and optimizer states
and the row says so. Reference log-probs are either precomputed (the reference model is scored
once and freed before training: ``precompute_ref_log_probs: true``) or computed by a resident
bf16 reference model in every step (``false``). It measures the model's forward, backward and
optimizer cost and peak memory on one GPU, not TRL's collation and not DeepSpeed's ZeRO sharding
across 8 GPUs that the paper config uses. Tokens/s counts all tokens of the pair sequences.
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import json
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "bench"))
sys.path.insert(0, str(ROOT / "src"))

SHAPE_FILE = "models/deepseek-ai__deepseek-coder-6.7b-instruct/config.json"
# DeepSeek-Coder-6.7B-Instruct's architecture (config.json, checked below where it is present).
SHAPE_7B = {
    "hidden_size": 4096,
    "intermediate_size": 11008,
    "num_hidden_layers": 32,
    "num_attention_heads": 32,
    "num_key_value_heads": 32,
    "vocab_size": 32256,
    "max_position_embeddings": 16384,
    "rms_norm_eps": 1e-06,
    "rope_theta": 100000,
}
SHAPE_1B = {
    **SHAPE_7B,
    "hidden_size": 2048,
    "intermediate_size": 5504,
    "num_hidden_layers": 24,
    "num_attention_heads": 16,
    "num_key_value_heads": 16,
}
# --smoke: the same code on CPU in seconds.
SHAPE_SMOKE = {
    **SHAPE_7B,
    "hidden_size": 64,
    "intermediate_size": 128,
    "num_hidden_layers": 2,
    "num_attention_heads": 4,
    "num_key_value_heads": 4,
}


def check_shape(shared: Path | None) -> str:
    """Compare SHAPE_7B with the real config.json when it is reachable."""
    candidates = [shared] if shared else [ROOT.parent / "shared", ROOT / "shared"]
    for base in candidates:
        path = base / SHAPE_FILE
        if path.exists():
            real = json.loads(path.read_text())
            wrong = {k: (v, real.get(k)) for k, v in SHAPE_7B.items() if real.get(k) != v}
            if wrong:
                raise SystemExit(f"{path}: differs from SHAPE_7B: {wrong}")
            return f"checked against {path}"
    return "config.json not reachable here; using the numbers kept in bench/gpu_check.py"


def build_model(shape: dict, device: str, dtype):
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    config = LlamaConfig(**shape, tie_word_embeddings=False, bos_token_id=32013, eos_token_id=32021)
    torch.manual_seed(0)
    default = torch.get_default_dtype()
    # Initialized on the device in its final dtype: no fp32 copy of a 7B model on the way.
    torch.set_default_dtype(dtype)
    try:
        with torch.device(device):
            model = LlamaForCausalLM(config)
    finally:
        torch.set_default_dtype(default)
    return model.eval()


def free(*objects) -> None:
    import torch

    for obj in objects:
        del obj
    gc.collect()
    if torch.cuda.is_available():
        torch.cuda.empty_cache()


@contextlib.contextmanager
def peak_memory(record: dict):
    import torch

    cuda = torch.cuda.is_available()
    if cuda:
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
    start = time.perf_counter()
    yield
    if cuda:
        torch.cuda.synchronize()
        record["peak_gb"] = round(torch.cuda.max_memory_allocated() / 2**30, 2)
    record["seconds"] = round(time.perf_counter() - start, 3)


def sampling_rows(name, shape, args, device, dtype) -> list[dict]:
    import torch
    from baseline_hf_generate import baseline_token_ids

    from codedpo.sampling.hf_backend import generate_token_ids
    from codedpo.sampling.requests import Request, sample_seed

    model = build_model(shape, device, dtype)
    generator = torch.Generator().manual_seed(1)
    # Token ids above the special tokens (32013-32021): plain text tokens of the vocabulary.
    prompts = [
        torch.randint(100, 32000, (args.prompt_len,), generator=generator).tolist()
        for _ in range(args.problems)
    ]
    requests = [
        Request(p, i, sample_seed(1, f"gpu/{p}", i))
        for p in range(args.problems)
        for i in range(args.n)
    ]
    common = dict(
        stop_ids=[32021],
        max_new_tokens=args.max_new_tokens,
        temperature=0.8,
        top_p=0.95,
        batch_size=args.batch_size,
        pad_id=32014,
    )
    engines = {
        "hf backend": lambda: generate_token_ids(
            model, prompts, requests, progress=False, **common
        ),
        "baseline": lambda: baseline_token_ids(model, prompts, requests, **common),
    }
    rows = []
    with torch.inference_mode():
        # Warm-up (kernels, allocator): a few short requests.
        generate_token_ids(
            model, prompts, requests[:4], progress=False, **common | {"max_new_tokens": 4}
        )
        for engine, run in engines.items():
            row = {"model": name, "engine": engine, "sequences": len(requests)}
            with peak_memory(row):
                out = run()
            stop = 32021
            row["tokens"] = sum(ids.index(stop) + 1 if stop in ids else len(ids) for ids in out)
            row["tokens_per_s"] = round(row["tokens"] / row["seconds"], 1)
            rows.append(row)
            print(json.dumps(row), flush=True)
    free(model)
    return rows


def completion_log_probs(model, ids, prompt_len: int):
    """Summed log-probs of each sequence's tokens after the prompt."""
    import torch

    logits = model(input_ids=ids).logits[:, prompt_len - 1 : -1].float()
    targets = ids[:, prompt_len:]
    return torch.log_softmax(logits, -1).gather(-1, targets[..., None]).squeeze(-1).sum(-1)


def dpo_row(name, shape, args, device, precompute: bool, master: str) -> dict:
    import torch
    import torch.nn.functional as F

    cuda = device.startswith("cuda")
    generator = torch.Generator().manual_seed(2)
    prompt_len = args.seq_len // 4
    # pairs x (chosen, rejected): one prompt per pair, two completions.
    batches = []
    for _ in range(args.steps + 1):
        prompt = torch.randint(100, 32000, (args.pairs, 1, prompt_len), generator=generator)
        completions = torch.randint(
            100, 32000, (args.pairs, 2, args.seq_len - prompt_len), generator=generator
        )
        ids = torch.cat([prompt.expand(-1, 2, -1), completions], -1).reshape(-1, args.seq_len)
        batches.append(ids.to(device))
    row = {"model": name, "precompute_ref_log_probs": precompute, "weights": master}
    if cuda:
        torch.cuda.reset_peak_memory_stats()
    reference = build_model(shape, device, torch.bfloat16 if cuda else torch.float32)
    with torch.inference_mode():
        start = time.perf_counter()
        ref = [completion_log_probs(reference, ids, prompt_len).float() for ids in batches]
        if cuda:
            torch.cuda.synchronize()
        ref_seconds = time.perf_counter() - start
    if precompute:
        row["precompute_tokens_per_s"] = round(sum(b.numel() for b in batches) / ref_seconds, 1)
        free(reference)
        reference = None
    policy = build_model(shape, device, torch.float32 if master == "fp32" else torch.bfloat16)
    policy.train()
    policy.gradient_checkpointing_enable()
    policy.config.use_cache = False
    optimizer = torch.optim.AdamW(policy.parameters(), lr=5e-6, fused=True if cuda else None)
    autocast = torch.autocast("cuda", dtype=torch.bfloat16) if cuda else contextlib.nullcontext()
    times = []
    for step, ids in enumerate(batches):
        if cuda:
            torch.cuda.synchronize()
        start = time.perf_counter()
        with autocast:
            logp = completion_log_probs(policy, ids, prompt_len).view(args.pairs, 2)
        if precompute:
            ref_logp = ref[step].view(args.pairs, 2)
        else:
            with torch.inference_mode():
                ref_logp = completion_log_probs(reference, ids, prompt_len).float()
            ref_logp = ref_logp.clone().view(args.pairs, 2)
        margin = (logp[:, 0] - ref_logp[:, 0]) - (logp[:, 1] - ref_logp[:, 1])
        loss = -F.logsigmoid(0.1 * margin).mean()
        loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        if cuda:
            torch.cuda.synchronize()
        if step:  # the first step is a warm-up
            times.append(time.perf_counter() - start)
    step_s = sum(times) / len(times)
    row["step_s"] = round(step_s, 3)
    row["tokens_per_s"] = round(args.pairs * 2 * args.seq_len / step_s, 1)
    if cuda:
        row["peak_gb"] = round(torch.cuda.max_memory_allocated() / 2**30, 2)
    free(policy, optimizer, reference)
    return row


def dpo_rows(name, shape, args, device) -> list[dict]:
    import torch

    rows = []
    for precompute in (True, False):
        for master in ("fp32", "bf16"):
            try:
                row = dpo_row(name, shape, args, device, precompute, master)
            except torch.OutOfMemoryError as exc:
                free()
                row = {"model": name, "precompute_ref_log_probs": precompute, "weights": master}
                row["error"] = f"out of memory ({str(exc).splitlines()[0][:120]})"
                print(json.dumps(row), flush=True)
                rows.append(row)
                continue
            print(json.dumps(row), flush=True)
            rows.append(row)
            break  # fp32 master weights fitted: no bf16 fallback needed
    return rows


def table(sampling: list[dict], dpo: list[dict]) -> str:
    lines = ["| model | sampling engine | sequences | tokens | s | tokens/s | peak GB |"]
    lines.append("|---|---|---:|---:|---:|---:|---:|")
    for r in sampling:
        lines.append(
            f"| {r['model']} | {r['engine']} | {r['sequences']} | {r['tokens']} "
            f"| {r['seconds']} | {r['tokens_per_s']} | {r.get('peak_gb', '')} |"
        )
    lines.append("")
    lines.append(
        "| model | DPO step | weights | step s | tokens/s | peak GB | ref scoring tokens/s |"
    )
    lines.append("|---|---|---|---:|---:|---:|---:|")
    for r in dpo:
        mode = "precomputed ref" if r["precompute_ref_log_probs"] else "resident ref"
        if "error" in r:
            lines.append(f"| {r['model']} | {mode} | {r['weights']} | {r['error']} | | | |")
            continue
        lines.append(
            f"| {r['model']} | {mode} | {r['weights']} | {r['step_s']} | {r['tokens_per_s']} "
            f"| {r.get('peak_gb', '')} | {r.get('precompute_tokens_per_s', '')} |"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--smoke", action="store_true", help="tiny shapes, CPU, seconds")
    parser.add_argument("--only", choices=["7b", "1b"], help="one model size")
    parser.add_argument("--shared", type=Path, help="the shared/ directory (default: ../shared)")
    parser.add_argument("--problems", type=int, default=16)
    parser.add_argument("--n", type=int, default=8)
    parser.add_argument("--prompt-len", type=int, default=256)
    parser.add_argument("--max-new-tokens", type=int, default=256)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--pairs", type=int, default=1, help="pairs per DPO step (TRL: 1)")
    parser.add_argument("--seq-len", type=int, default=1024, help="tokens per DPO sequence")
    parser.add_argument("--steps", type=int, default=3, help="timed DPO steps (+1 warm-up)")
    parser.add_argument("--out", type=Path, default=Path(os.environ.get("OUT", "gpu_check")))
    args = parser.parse_args(argv)

    import torch
    import transformers

    if args.smoke:
        args.problems, args.max_new_tokens, args.prompt_len = 2, 8, 16
        args.seq_len, args.steps = 64, 1
        shapes = {"smoke": SHAPE_SMOKE}
        device, dtype = "cpu", torch.float32
    else:
        if not torch.cuda.is_available():
            raise SystemExit("no CUDA GPU here: run with --smoke to check the script on a CPU")
        shapes = {"7b": SHAPE_7B, "1b": SHAPE_1B}
        if args.only:
            shapes = {args.only: shapes[args.only]}
        device, dtype = "cuda", torch.bfloat16
    machine = {
        "torch": torch.__version__,
        "transformers": transformers.__version__,
        "device": torch.cuda.get_device_name() if device == "cuda" else "cpu",
        "shape": check_shape(args.shared),
        "args": {k: str(v) for k, v in vars(args).items()},
    }
    print(json.dumps(machine), flush=True)
    sampling, dpo = [], []
    for name, shape in shapes.items():
        sampling += sampling_rows(name, shape, args, device, dtype)
        dpo += dpo_rows(name, shape, args, device)
    text = table(sampling, dpo)
    print("\n" + text)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "gpu_check.md").write_text(text + "\n")
    (args.out / "gpu_check.json").write_text(
        json.dumps({"machine": machine, "sampling": sampling, "dpo": dpo}, indent=1)
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
