"""Sample responses from a policy: ``n`` on-policy samples per problem, or one greedy response.

Each prompt is the problem text as a single user turn rendered with the tokenizer's own chat
template, so the policy sees what it sees at evaluation time. The records written are EvalPlus-style
samples (``docs/formats.md``): ``task_id``, ``sample_id``, ``index``, ``raw`` (the whole response),
``solution`` (the code :func:`codedpo.extract.extract_code` takes out of it) and ``prompt``.

Reproducibility: sample ``i`` of problem ``t`` draws its randomness from its own generator seeded
with ``(seed, t, i)`` (Gumbel-max sampling, which draws exactly from the temperature / top-p
distribution), so the output of a sample does not depend on the batch it lands in, on the batch
size, on the sharding, or on which other problems are in the file.

Example::

    python -m codedpo.generate --model deepseek-ai/deepseek-coder-6.7b-instruct \\
        --problems results/problems/train.jsonl --split train --shard 0 --num-shards 4 \\
        --out results/samples/base/shard0.jsonl --n 8 --temperature 0.8 --top-p 0.95 \\
        --max-new-tokens 256 --seed 1
"""

from __future__ import annotations

import argparse
import hashlib
import logging
import os
import re
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

from codedpo.io import InputError, read_jsonl, require, write_jsonl

log = logging.getLogger(__name__)

# A Hub id is "name" or "owner/name"; anything else (absolute, ./, two slashes) can only be a path.
_HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]*(/[\w.-]+)?$")


def check_model_path(model_path: str) -> None:
    """Raise :class:`InputError` naming ``model_path`` unless it is a model dir or a Hub id."""
    path = Path(model_path)
    if path.exists():
        if not path.is_dir() or not (path / "config.json").exists():
            raise InputError(f"{model_path}: not a model directory (no config.json)")
        return
    if not _HUB_ID.match(model_path):
        raise InputError(f"{model_path}: model directory not found")


def load_policy(model_path: str, device: str | None = None):
    """Load ``(model, tokenizer)`` for generation: left padding, pad token falling back to eos."""
    import torch
    from transformers import AutoModelForCausalLM

    from codedpo.chat import load_tokenizer

    check_model_path(model_path)
    if device is None:
        device = "cuda" if torch.cuda.is_available() else "cpu"
    # bf16 halves memory and time on GPUs; CPUs (tests, tiny models) compute in fp32.
    dtype = torch.bfloat16 if device.startswith("cuda") else torch.float32
    try:
        # CodeQwen1.5's SentencePiece tokenizer must not be rebuilt as Qwen2Tokenizer.
        tokenizer = load_tokenizer(model_path, padding_side="left")
        model = AutoModelForCausalLM.from_pretrained(model_path, dtype=dtype)
    except OSError as exc:
        raise InputError(
            f"{model_path}: cannot load the model (not a local directory, and the Hub gave: {exc})"
        ) from None
    tokenizer.padding_side = "left"
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    if tokenizer.chat_template is None:
        raise InputError(f"{model_path}: the tokenizer has no chat template")
    model.to(device).eval()
    return model, tokenizer


def sample_seed(seed: int, task_id: str, index: int) -> int:
    """The seed of one sample's generator: a function of the run seed and the sample alone."""
    digest = hashlib.sha256(f"{seed}\0{task_id}\0{index}".encode()).digest()
    return int.from_bytes(digest[:8], "little") & (2**63 - 1)


def _row_sampler(seeds: Sequence[int], temperature: float, top_p: float, device):
    """Logits processors that turn greedy decoding into per-row seeded sampling (Gumbel-max).

    ``argmax(logits / T + Gumbel noise)`` over the top-p nucleus is an exact draw from the
    temperature / top-p distribution; giving each row its own generator makes the draw independent
    of the other rows in the batch, which ``generate``'s single global RNG cannot do.
    """
    import torch
    from transformers import LogitsProcessor, LogitsProcessorList
    from transformers.generation.logits_process import (
        TemperatureLogitsWarper,
        TopPLogitsWarper,
    )

    class GumbelNoise(LogitsProcessor):
        def __init__(self) -> None:
            self.generators = [torch.Generator(device=device).manual_seed(s) for s in seeds]

        def __call__(self, input_ids, scores):
            tiny = torch.finfo(torch.float32).tiny
            noise = torch.stack(
                [
                    torch.empty(scores.shape[-1], device=scores.device, dtype=torch.float32)
                    .exponential_(generator=g)
                    .clamp_(min=tiny)
                    for g in self.generators
                ]
            )
            # -log(Exp(1)) is a standard Gumbel variable.
            return scores.float() - noise.log()

    processors = LogitsProcessorList()
    if temperature != 1.0:
        processors.append(TemperatureLogitsWarper(temperature))
    if top_p < 1.0:
        processors.append(TopPLogitsWarper(top_p))
    processors.append(GumbelNoise())
    return processors


def _default_extract() -> Callable[[str, dict], str]:
    from codedpo.extract import extract_code, names_tests_use

    names: dict[str, frozenset[str]] = {}  # per problem: its n samples share one parse

    def extract(raw: str, problem: dict) -> str:
        task = problem["task_id"]
        if task not in names:
            names[task] = names_tests_use(problem["tests"])
        return extract_code(raw, problem.get("entry_point"), names[task])

    return extract


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
) -> list[dict]:
    """Generate ``n`` responses per problem (one when ``greedy``) and return sample records.

    Records come back in problem order, then sample index. ``extract`` maps a response and its
    problem to code; it defaults to :func:`codedpo.extract.extract_code` with the problem's entry
    point and the names its tests use.
    """
    import torch
    from tqdm.auto import tqdm
    from transformers import GenerationConfig

    if greedy:
        n = 1
    if n < 1:
        raise ValueError(f"n must be at least 1, got {n}")
    if not greedy and (temperature <= 0 or not 0 < top_p <= 1):
        raise ValueError(
            f"sampling needs temperature > 0 and 0 < top_p <= 1, got {temperature}, {top_p}"
        )
    if extract is None:
        extract = _default_extract()
    torch.set_num_threads(threads)
    torch.manual_seed(seed)
    if not problems:
        return []

    model, tokenizer = load_policy(model_path)
    device = model.device
    prompts = [
        tokenizer.apply_chat_template(
            [{"role": "user", "content": p["prompt"]}], add_generation_prompt=True, tokenize=False
        )
        for p in problems
    ]
    prompt_ids = [tokenizer(text, add_special_tokens=False)["input_ids"] for text in prompts]

    eos = model.generation_config.eos_token_id
    eos = list(eos) if isinstance(eos, (list, tuple)) else ([eos] if eos is not None else [])
    if tokenizer.eos_token_id is not None and tokenizer.eos_token_id not in eos:
        eos.append(tokenizer.eos_token_id)
    # The checkpoint's own generation defaults (top_k, repetition penalty...) would silently change
    # the distribution we sample from: `generate` fills every field left unset in the config it is
    # given from `model.generation_config`, so that one is replaced, not just overridden.
    gen_config = GenerationConfig(
        max_new_tokens=max_new_tokens,
        do_sample=False,
        num_beams=1,
        eos_token_id=eos,
        pad_token_id=tokenizer.pad_token_id,
        bos_token_id=model.generation_config.bos_token_id,
    )
    model.generation_config = gen_config

    # Rows are (problem, sample index); sorting by prompt length keeps padding low, and since each
    # row has its own generator the order cannot change what it samples.
    rows = [(p, i) for p in range(len(problems)) for i in range(n)]
    rows.sort(key=lambda row: len(prompt_ids[row[0]]), reverse=True)
    texts: dict[tuple[int, int], str] = {}
    with tqdm(total=len(rows), desc="generate", unit="seq", file=sys.stderr) as bar:
        for start in range(0, len(rows), batch_size):
            batch = rows[start : start + batch_size]
            enc = tokenizer.pad(
                {"input_ids": [prompt_ids[p] for p, _ in batch]}, return_tensors="pt"
            ).to(device)
            processors = None
            if not greedy:
                seeds = [sample_seed(seed, problems[p]["task_id"], i) for p, i in batch]
                processors = _row_sampler(seeds, temperature, top_p, device)
            with torch.inference_mode():
                out = model.generate(
                    **enc, generation_config=gen_config, logits_processor=processors
                )
            new_tokens = out[:, enc["input_ids"].shape[1] :]
            decoded = tokenizer.batch_decode(new_tokens, skip_special_tokens=True)
            for row, text in zip(batch, decoded, strict=True):
                texts[row] = text
            bar.update(len(batch))

    records = []
    for p, problem in enumerate(problems):
        for i in range(n):
            raw = texts[(p, i)]
            records.append(
                {
                    "task_id": problem["task_id"],
                    "sample_id": f"{problem['task_id']}/{i}",
                    "index": i,
                    "raw": raw,
                    "solution": extract(raw, problem),
                    "prompt": problem["prompt"],
                }
            )
    return records


def load_problems(
    path: str | os.PathLike, split: str | None = None, shard: int = 0, num_shards: int = 1
) -> list[dict]:
    """Read problems, keep ``split`` when given, then every ``num_shards``-th from ``shard``."""
    if not 0 <= shard < num_shards:
        raise ValueError(f"shard must be in [0, {num_shards}), got {shard}")
    problems = []
    for lineno, record in read_jsonl(path):
        where = f"{path}:{lineno}"
        require(record, "task_id", str, where)
        require(record, "prompt", str, where)
        if split is None or record.get("split") == split:
            problems.append(record)
    return [p for k, p in enumerate(problems) if k % num_shards == shard]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m codedpo.generate", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument("--model", required=True, help="model directory or Hub id")
    parser.add_argument("--problems", required=True, help="problems.jsonl")
    parser.add_argument("--out", required=True, help="samples.jsonl to write")
    parser.add_argument("--split", default=None, help="keep only problems of this split")
    parser.add_argument("--shard", type=int, default=0, help="this shard's index (0-based)")
    parser.add_argument("--num-shards", type=int, default=1, help="number of shards")
    parser.add_argument("--n", type=int, default=8, help="samples per problem")
    parser.add_argument("--temperature", type=float, default=0.8)
    parser.add_argument("--top-p", type=float, default=0.95)
    parser.add_argument("--max-new-tokens", type=int, default=256)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--greedy", action="store_true", help="one greedy response per problem")
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads")
    parser.add_argument("--batch-size", type=int, default=64, help="sequences per generate call")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    try:
        problems = load_problems(args.problems, args.split, args.shard, args.num_shards)
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
        )
    except (InputError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    count = write_jsonl(args.out, records)
    log.info("wrote %d samples for %d problems to %s", count, len(problems), args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
