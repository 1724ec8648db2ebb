"""What a job asks the scheduler for: GPUs, host memory and CPUs, by model and attempt.

Only what is inherent to a job lives here (style item 5): a demo policy is a tiny model that
runs on the CPU in a few GB, a hub policy a 7B model on GPUs. Partitions, accounts and GPU
models belong in ``profiles/<cluster>/config.yaml``. Memory grows with Snakemake's ``attempt``,
so a job that ran out of memory asks for more when it is retried.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

# Host memory of one job (or one training process) of a model. The demo's tiny models fit in a
# few GB; a 7B model needs its weights in host memory while loading, and with ZeRO-2 the
# optimizer shards and checkpoint writes when training.
DEMO_MEM_MB = 4000
HUB_MEM_MB = 64000


def model_mem_mb(demo: bool, attempt: int) -> int:
    """Host memory of a job that loads one model (generation, the reward analysis)."""
    return (DEMO_MEM_MB if demo else HUB_MEM_MB) * attempt


def generation_gpus(backend: str, vllm: Mapping[str, Any]) -> int:
    """GPUs of one generation job of a hub model: vLLM's tensor-parallel size, else one."""
    return vllm["tensor_parallel_size"] if backend == "vllm" else 1


def training_gpus(demo: bool, processes: int) -> int:
    """One GPU per training process; the demo's tiny models train on the CPU."""
    return 0 if demo else processes


def training_mem_mb(demo: bool, processes: int, attempt: int) -> int:
    """Host memory of a training job: one model's worth per process."""
    return model_mem_mb(demo, attempt) * processes


def training_cpus(threads: int, processes: int) -> int:
    """CPUs of a training job: ``training.threads`` torch threads per process."""
    return threads * processes
