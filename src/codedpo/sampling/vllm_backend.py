"""The vLLM backend: offline ``LLM.generate`` on CUDA GPUs, one engine per generation job.

vLLM is imported only here and only when this backend is chosen: its PyPI wheel is a CUDA build
that pins an exact torch (vLLM 0.27.1 pins torch 2.13.0), so it is never installed on CPU machines
or in CI. Install it with the ``vllm`` extra on a GPU machine (``pip install '.[vllm]'``, after
a CUDA 13 build of torch 2.13.0: the wheel's kernels link ``libcudart.so.13``) or use the image
built from ``envs/gpu.def``, which has it.

What it shares with the HF backend (:mod:`codedpo.sampling`): the prompts are the same token
ids (rendered with the tokenizer's chat template by :mod:`codedpo.sampling.requests` and passed
as ``TokensPrompt``; vLLM's own chat templating is not used), the same stop tokens
(``SamplingParams.stop_token_ids``), one request per sample with the same per-sample seed as its
``SamplingParams.seed``, and the same stop handling, decoding, extraction and records. vLLM's
prefix cache (on by default) prefills a prompt once for its ``n`` samples. The checkpoint's own
generation defaults are ignored (``generation_config="vllm"``), as in the HF backend.

The samples are not those of the HF backend (another sampler and other kernels), and vLLM does
not guarantee reproducible outputs by default. Its documented settings (docs.vllm.ai,
"Reproducibility" and "Batch invariance"), exposed as ``sampling.vllm``:

- ``deterministic_scheduling`` (default true) sets ``VLLM_ENABLE_V1_MULTIPROCESSING=0``: offline,
  the scheduling is deterministic, so the same job gives the same samples. Changing anything
  that changes the batches (the shard count, the problem file) may change samples;
- ``batch_invariant`` (default false) sets ``VLLM_BATCH_INVARIANT=1``: outputs do not depend on
  the batch size or order (beta in vLLM; needs a recent NVIDIA GPU, compute capability 9.0 or
  higher in its current docs, and is slower);
- either way vLLM only reproduces results on the same hardware and the same vLLM version.

A LoRA adapter directory (a recipe's ``peft: {merge: false}``, :mod:`codedpo.models.load`) is merged
into its base first and written as a full model to a temporary directory (``$TMPDIR``, removed
when the job ends), which vLLM loads like any checkpoint. vLLM's own LoRA serving
(``enable_lora`` + ``LoRARequest``) is not used: it applies one adapter to a full base, while the
adapters of iterative rounds form chains (round k's base is round k-1's adapter) that have to be
merged anyway, and a merged model runs vLLM's ordinary kernels. Not run in CI (no GPU there).
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Sequence
from dataclasses import asdict, dataclass

from codedpo.io import InputError
from codedpo.sampling.requests import Request

# The release this project pins (pyproject's `vllm` extra, envs/gpu.def).
VLLM_VERSION = "0.27.1"


@dataclass(frozen=True)
class VllmSettings:
    """Engine settings (``sampling.vllm`` in the config)."""

    # GPUs per engine: more than one only when the model does not fit one GPU. For a 7B model the
    # usual layout is one engine per GPU, which the sampling shards already give.
    tensor_parallel_size: int = 1
    gpu_memory_utilization: float = 0.9
    # None: the model's context length (config.json).
    max_model_len: int | None = None
    deterministic_scheduling: bool = True
    batch_invariant: bool = False

    def as_dict(self) -> dict:
        return asdict(self)


def import_vllm():
    """Import vLLM, or raise an error that says which setting asked for it and what to do."""
    try:
        import vllm
    except ImportError as exc:
        raise InputError(
            "backend 'vllm' (sampling.backend / eval.backend in the config, --backend vllm on the "
            f"command line) needs vLLM, which is not installed here ({exc}). vLLM runs on CUDA "
            f"GPUs: install it there with pip install '.[vllm]' (vllm=={VLLM_VERSION}) or run the "
            "job in the image built from envs/gpu.def (containers.gpu); on a machine without a "
            "GPU use backend 'hf'"
        ) from None
    return vllm


def set_environment(settings: VllmSettings) -> None:
    """vLLM reads these when its engine starts, so they are set before it is imported."""
    if settings.deterministic_scheduling:
        os.environ["VLLM_ENABLE_V1_MULTIPROCESSING"] = "0"
    if settings.batch_invariant:
        os.environ["VLLM_BATCH_INVARIANT"] = "1"


def generate_token_ids(
    model_path: str,
    prompts: Sequence[Sequence[int]],
    requests: Sequence[Request],
    *,
    stop_ids: Sequence[int],
    max_new_tokens: int,
    temperature: float,
    top_p: float,
    settings: VllmSettings,
    progress: bool = True,
) -> list[list[int]]:
    """Generated token ids of every request; vLLM keeps the stop token that ended a sequence
    at the end of its ``token_ids`` (``check_stop`` in ``vllm/v1/core/sched/utils.py``)."""
    set_environment(settings)
    vllm = import_vllm()
    from codedpo.models.load import is_adapter, save_merged

    options = dict(stop_ids=stop_ids, max_new_tokens=max_new_tokens, temperature=temperature,
                   top_p=top_p, settings=settings, progress=progress)  # fmt: skip
    if not is_adapter(model_path):
        return _generate(vllm, model_path, prompts, requests, **options)
    import torch

    # On the CPU: merging on the GPU would hold memory vLLM then cannot have.
    with tempfile.TemporaryDirectory(prefix="codedpo-merged-") as merged:
        save_merged(model_path, merged, dtype=torch.bfloat16)
        return _generate(vllm, merged, prompts, requests, **options)


def _generate(vllm, model_path, prompts, requests, *, stop_ids, max_new_tokens, temperature,
              top_p, settings, progress) -> list[list[int]]:  # fmt: skip
    from vllm.inputs import TokensPrompt

    llm = vllm.LLM(
        model=model_path,
        tensor_parallel_size=settings.tensor_parallel_size,
        gpu_memory_utilization=settings.gpu_memory_utilization,
        max_model_len=settings.max_model_len,
        dtype="bfloat16",
        seed=0,
        generation_config="vllm",
    )
    stops = sorted(set(stop_ids))
    params = [
        vllm.SamplingParams(
            n=1,
            temperature=0.0 if r.seed is None else temperature,
            top_p=1.0 if r.seed is None else top_p,
            seed=r.seed,
            max_tokens=max_new_tokens,
            stop_token_ids=stops,
            detokenize=False,
        )
        for r in requests
    ]
    inputs = [TokensPrompt(prompt_token_ids=list(prompts[r.problem])) for r in requests]
    outputs = llm.generate(inputs, params, use_tqdm=progress)
    return [list(out.outputs[0].token_ids) for out in outputs]
