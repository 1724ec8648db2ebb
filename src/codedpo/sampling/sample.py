"""Sample responses from a policy: ``n`` on-policy samples per problem, or one greedy response.

Each prompt is the problem text as a single user turn rendered with the tokenizer's own chat
template, so the policy sees what it sees at evaluation time. Generation stops at the model's
own stop tokens (``generation_config.json``, the tokenizer's eos and the chat template's
end-of-turn token). The records written are EvalPlus-style samples (``docs/formats.md``):
``task_id``, ``sample_id``, ``index``, ``raw`` (the response up to its stop token, no special
tokens), ``solution`` (the code :func:`codedpo.sampling.extract.extract_code` takes out of it),
``prompt``, ``finish_reason``, ``num_tokens`` and ``generator`` (backend, versions, settings).

Two backends (``--backend``; ``sampling.backend`` and ``eval.backend`` in the config) share all of
this and differ only in how they run the model: ``hf`` (transformers, any device, the default)
and ``vllm`` (CUDA GPUs; see :mod:`codedpo.sampling.vllm_backend`).

Reproducibility: sample ``i`` of problem ``t`` is drawn with its own seed ``(seed, t, i)``. With
``hf`` (Gumbel-max sampling from a generator per sample) a sample does not depend on the batch it
lands in, the batch size, the sharding or the other problems in the file. With ``vllm`` the seed
is the request's ``SamplingParams.seed``, and reproducibility holds as far as vLLM's settings
make it (:mod:`codedpo.sampling.vllm_backend`).

Example::

    codedpo sample --model deepseek-ai/deepseek-coder-6.7b-instruct \\
        --problems results/problems/train.jsonl --split train --shard 0 --num-shards 4 \\
        --out results/samples/base/shard0.jsonl --n 8 --temperature 0.8 --top-p 0.95 \\
        --max-new-tokens 256 --seed 1 [--backend vllm --tensor-parallel-size 1]
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Callable

from codedpo.io import InputError, write_jsonl
from codedpo.models import load as models
from codedpo.problems.load import load_problems
from codedpo.sampling import vllm_backend
from codedpo.sampling.records import (
    default_extract,
    finish,
    generator_info,
    sample_records,
    versions,
)
from codedpo.sampling.requests import (
    build_requests,
    load_tokenizer,
    prompt_ids,
    sample_seed,
)
from codedpo.sampling.stops import stop_tokens
from codedpo.sampling.vllm_backend import VllmSettings
from codedpo.verbs import command_parser

__all__ = ["check_model_path", "generate_responses", "main", "shard_of", "sample_seed"]

log = logging.getLogger(__name__)

BACKENDS = ("hf", "vllm")

# A model directory, a LoRA adapter directory (codedpo.models.load) or a Hub id; re-exported here.
check_model_path = models.check_model_path


def generate_responses(
    model_path: str,
    problems: list[dict],
    *,
    n: int,
    temperature: float,
    top_p: float,
    max_new_tokens: int,
    seed: int,
    batch_size: int = 64,
    threads: int = 1,
    greedy: bool = False,
    extract: Callable[[str, dict], str] | None = None,
    backend: str = "hf",
    vllm: VllmSettings | None = None,
    progress: bool = True,
) -> list[dict]:
    """Generate ``n`` responses per problem (one when ``greedy``) and return sample records.

    Records come back in problem order, then sample index. ``extract`` maps a response and its
    problem to code; it defaults to :func:`codedpo.sampling.extract.extract_code` with the
    problem's entry point and the names its tests use. ``batch_size`` (HF backend) is the number of
    sequences decoded together; ``vllm`` holds the vLLM engine's settings.
    """
    if backend not in BACKENDS:
        raise ValueError(f"backend must be one of {', '.join(BACKENDS)}, got {backend!r}")
    if greedy:
        n = 1
    if n < 1:
        raise ValueError(f"n must be at least 1, got {n}")
    if not greedy and (temperature <= 0 or not 0 < top_p <= 1):
        raise ValueError(
            f"sampling needs temperature > 0 and 0 < top_p <= 1, got {temperature}, {top_p}"
        )
    if batch_size < 1:
        raise ValueError(f"batch_size must be at least 1, got {batch_size}")
    check_model_path(model_path)
    if backend == "vllm":
        # Before anything is loaded: a missing vLLM is a setup error, found at once.
        vllm = vllm or VllmSettings()
        vllm_backend.set_environment(vllm)
        vllm_backend.import_vllm()
    if extract is None:
        extract = default_extract()
    if not problems:
        return []

    tokenizer = load_tokenizer(model_path)
    prompts = prompt_ids(tokenizer, problems, model_path)
    stop = stop_tokens(model_path, tokenizer)
    requests = build_requests(problems, n=n, seed=seed, greedy=greedy)
    settings = {
        "n": n,
        "greedy": greedy,
        "temperature": None if greedy else temperature,
        "top_p": None if greedy else top_p,
        "max_new_tokens": max_new_tokens,
        "seed": None if greedy else seed,
    }
    if backend == "hf":
        import torch

        from codedpo.sampling.hf_backend import generate_token_ids, load_model

        torch.set_num_threads(threads)
        model = load_model(model_path)
        pad_id = tokenizer.pad_token_id
        if pad_id is None:
            pad_id = stop.ids[0]
        token_ids = generate_token_ids(
            model,
            prompts,
            requests,
            stop_ids=stop.ids,
            max_new_tokens=max_new_tokens,
            temperature=temperature,
            top_p=top_p,
            batch_size=batch_size,
            pad_id=pad_id,
            progress=progress,
        )
        settings["dtype"] = str(model.dtype).removeprefix("torch.")
        packages = versions("transformers", "torch")
    else:
        token_ids = vllm_backend.generate_token_ids(
            model_path,
            prompts,
            requests,
            stop_ids=stop.ids,
            max_new_tokens=max_new_tokens,
            temperature=temperature,
            top_p=top_p,
            settings=vllm,
            threads=threads,
            progress=progress,
        )
        from codedpo.sampling.hf_backend import generation_dtype

        dtype = generation_dtype(vllm_backend.engine_device())
        settings.update(dtype=str(dtype).removeprefix("torch."), **vllm.as_dict())
        packages = {**vllm_backend.package(), **versions("transformers", "torch")}
    generated = [finish(ids, stop.ids, tokenizer) for ids in token_ids]
    generator = generator_info(backend, packages, settings, stop.ids)
    return sample_records(problems, requests, generated, extract, generator)


def shard_of(problems: list[dict], shard: int = 0, num_shards: int = 1) -> list[dict]:
    """Every ``num_shards``-th problem from ``shard``: the sampling jobs' split of a problem set."""
    if not 0 <= shard < num_shards:
        raise ValueError(f"shard must be in [0, {num_shards}), got {shard}")
    return [p for k, p in enumerate(problems) if k % num_shards == shard]


def build_parser() -> argparse.ArgumentParser:
    parser = command_parser("sample", __doc__)
    parser.add_argument("--model", required=True, help="model directory or Hub id")
    parser.add_argument("--problems", required=True, help="problems.jsonl")
    parser.add_argument("--out", required=True, help="samples.jsonl to write")
    parser.add_argument("--split", default=None, help="keep only problems of this split")
    parser.add_argument("--shard", type=int, default=0, help="this shard's index (0-based)")
    parser.add_argument("--num-shards", type=int, default=1, help="number of shards")
    parser.add_argument("--n", type=int, default=8, help="samples per problem")
    parser.add_argument("--temperature", type=float, default=0.8, help="sampling temperature")
    parser.add_argument("--top-p", type=float, default=0.95, help="nucleus sampling")
    parser.add_argument("--max-new-tokens", type=int, default=256, help="tokens per response")
    parser.add_argument("--seed", type=int, default=1,
                        help="base seed: each response's seed derives from it")  # fmt: skip
    parser.add_argument("--greedy", action="store_true", help="one greedy response per problem")
    parser.add_argument("--backend", choices=BACKENDS, default="hf", help="generation backend")
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads")
    parser.add_argument(
        "--batch-size", type=int, default=64, help="sequences decoded together (hf)"
    )
    defaults = VllmSettings()
    vllm = parser.add_argument_group("vLLM engine (--backend vllm; config: sampling.vllm)")
    vllm.add_argument("--tensor-parallel-size", type=int, default=defaults.tensor_parallel_size,
                      help="GPUs the engine spreads the model over")  # fmt: skip
    vllm.add_argument(
        "--gpu-memory-utilization", type=float, default=defaults.gpu_memory_utilization,
        help="share of each GPU's memory for weights and KV cache (GPU only)",
    )  # fmt: skip
    vllm.add_argument("--max-model-len", type=int, default=defaults.max_model_len,
                      help="context length (default: the model's)")  # fmt: skip
    vllm.add_argument(
        "--deterministic-scheduling",
        action=argparse.BooleanOptionalAction,
        default=defaults.deterministic_scheduling,
        help="VLLM_ENABLE_V1_MULTIPROCESSING=0",
    )
    vllm.add_argument(
        "--batch-invariant",
        action=argparse.BooleanOptionalAction,
        default=defaults.batch_invariant,
        help="VLLM_BATCH_INVARIANT=1",
    )
    vllm.add_argument(
        "--enforce-eager",
        action=argparse.BooleanOptionalAction,
        default=defaults.enforce_eager,
        help="no torch.compile or CUDA graphs (faster start, slower decoding)",
    )
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    try:
        problems = shard_of(
            list(load_problems(args.problems, args.split).values()), args.shard, args.num_shards
        )
        if not problems:
            log.warning(
                "no problems in %s for split=%s shard %d/%d",
                args.problems,
                args.split,
                args.shard,
                args.num_shards,
            )
        records = generate_responses(
            args.model,
            problems,
            n=args.n,
            temperature=args.temperature,
            top_p=args.top_p,
            max_new_tokens=args.max_new_tokens,
            seed=args.seed,
            batch_size=args.batch_size,
            threads=args.threads,
            greedy=args.greedy,
            backend=args.backend,
            vllm=VllmSettings(
                tensor_parallel_size=args.tensor_parallel_size,
                gpu_memory_utilization=args.gpu_memory_utilization,
                max_model_len=args.max_model_len,
                deterministic_scheduling=args.deterministic_scheduling,
                batch_invariant=args.batch_invariant,
                enforce_eager=args.enforce_eager,
            ),
            progress=not args.no_progress,
        )
    except (InputError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    count = write_jsonl(args.out, records)
    stopped = sum(r["finish_reason"] == "stop" for r in records)
    log.info(
        "wrote %d samples for %d problems to %s (%d ended at a stop token, %d at the token limit)",
        count,
        len(problems),
        args.out,
        stopped,
        count - stopped,
    )
    return 0
