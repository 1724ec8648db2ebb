"""The GPU check's vLLM sampling row (``bench/gpu_check.py``), where ``import vllm`` works.

The random-init model the HF rows sample from (same seed, same weights) is saved to a temporary
directory (bf16 on a GPU, fp32 on the CPU) and served by ``vllm.LLM`` in a subprocess (this file
run as a script), so that vLLM and the HF rows never hold GPU memory at the same time and vLLM's
process-wide state stays out of the check's process. The same prompts (``TokensPrompt``), one
``SamplingParams`` per prompt: ``n`` = 8 seeded samples, temperature 0.8 / top-p 0.95,
``max_tokens`` new tokens with ``ignore_eos=True`` (every sample runs to full length),
``gpu_memory_utilization`` 0.85, ``max_model_len`` prompt + new tokens, no tokenizer (token ids
in and out). On a GPU the engine runs with vLLM's defaults (CUDA graphs, torch.compile); on the
CPU (the smoke mode, vLLM's CPU build) eager, one thread, with a small fixed KV cache. The row
reports the engine's start-up seconds apart from the timed ``generate`` (after a short warm-up
request), and tokens/s of generated tokens. codedpo's own vLLM backend
(``codedpo.sampling.vllm_backend``) sends one ``n=1`` request per sample with its own seed and
the stop tokens instead; vLLM's prefix cache prefills a prompt once either way.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib.util
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

GPU_MEMORY_UTILIZATION = 0.85
# CPU (smoke) only: the tiny model's KV cache for every sequence many times over.
CPU_KV_CACHE_BYTES = 64 * 2**20


def vllm_row(build, name: str, prompts: list[list[int]], args, seconds_left: float) -> dict:
    """Save the model ``build()`` makes and serve it with vLLM in a subprocess of at most
    ``seconds_left`` seconds; the model is freed before the subprocess starts."""
    row = {"model": name, "engine": "vllm", "sequences": len(prompts) * args.n}
    if importlib.util.find_spec("vllm") is None:
        return {**row, "skipped": "vllm not installed"}
    with tempfile.TemporaryDirectory(prefix="gpu-check-vllm-") as tmp:
        model = build()
        model.save_pretrained(tmp)
        device = model.device.type
        del model
        from gpu_check_train import release

        release()
        (Path(tmp) / "prompts.json").write_text(json.dumps(prompts))
        out = Path(tmp) / "row.json"
        command = [
            sys.executable,
            __file__,
            "--model",
            tmp,
            "--device",
            device,
            "--n",
            str(args.n),
            "--max-new-tokens",
            str(args.max_new_tokens),
            "--out",
            str(out),
        ]
        env = {**os.environ, "VLLM_ENABLE_V1_MULTIPROCESSING": "0"}
        # A process group of its own: stopping it stops what it started (compile workers) too.
        proc = subprocess.Popen(command, env=env, start_new_session=True)
        try:
            proc.wait(timeout=max(seconds_left, 1))
        except BaseException as exc:  # the timeout, the check's budget alarm, Ctrl-C
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
            if isinstance(exc, subprocess.TimeoutExpired):
                return {**row, "skipped": "time budget reached while vLLM ran"}
            raise
        if proc.returncode or not out.exists():
            return {
                **row,
                "error": f"the vLLM worker exited with {proc.returncode} (its log above)",
            }
        return {**row, **json.loads(out.read_text())}


def worker(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="serve a saved model with vLLM, one timed row")
    parser.add_argument("--model", required=True)
    parser.add_argument("--device", choices=["cuda", "cpu"], required=True)
    parser.add_argument("--n", type=int, required=True)
    parser.add_argument("--max-new-tokens", type=int, required=True)
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args(argv)
    prompts = json.loads((Path(args.model) / "prompts.json").read_text())

    import torch

    cuda = args.device == "cuda"
    engine = dict(
        model=args.model,
        dtype="bfloat16" if cuda else "float32",
        seed=0,
        generation_config="vllm",
        skip_tokenizer_init=True,
        max_model_len=max(map(len, prompts)) + args.max_new_tokens,
    )
    if cuda:
        engine["gpu_memory_utilization"] = GPU_MEMORY_UTILIZATION
    else:
        # Before the engine starts: its CPU worker replaces torch.set_num_threads with a no-op.
        torch.set_num_threads(1)
        engine.update(kv_cache_memory_bytes=CPU_KV_CACHE_BYTES, enforce_eager=True)
    import vllm
    from vllm.inputs import TokensPrompt

    start = time.perf_counter()
    llm = vllm.LLM(**engine)
    startup_s = time.perf_counter() - start

    def params(p: int, max_tokens: int):
        return vllm.SamplingParams(
            n=args.n,
            temperature=0.8,
            top_p=0.95,
            seed=1000 + p,
            max_tokens=max_tokens,
            ignore_eos=True,
            detokenize=False,
        )

    inputs = [TokensPrompt(prompt_token_ids=p) for p in prompts]
    llm.generate(inputs[:1], [params(0, 4)], use_tqdm=False)  # warm-up
    start = time.perf_counter()
    outputs = llm.generate(
        inputs, [params(p, args.max_new_tokens) for p in range(len(inputs))], use_tqdm=False
    )
    seconds = time.perf_counter() - start
    tokens = sum(len(c.token_ids) for out in outputs for c in out.outputs)
    row = {
        "vllm": vllm.__version__,
        "sequences": sum(len(out.outputs) for out in outputs),
        "tokens": tokens,
        "seconds": round(seconds, 3),
        "tokens_per_s": round(tokens / seconds, 1),
        "startup_s": round(startup_s, 1),
    }
    if cuda:
        row["gpu_memory_utilization"] = GPU_MEMORY_UTILIZATION
    args.out.write_text(json.dumps(row))
    return 0


if __name__ == "__main__":
    sys.exit(worker())
