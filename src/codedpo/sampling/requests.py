"""What is generated: one request per sample, with its prompt token ids and its own seed.

A prompt is the problem text as a single user turn rendered with the tokenizer's own chat
template (with the generation prompt), so the policy sees at sampling time exactly what it sees
at evaluation time. The rendered text is tokenized without adding special tokens: the template
writes them itself (DeepSeek-Coder and CodeLlama start with their BOS), and adding them again
would double the BOS.

Sample ``i`` of problem ``t`` gets the seed :func:`sample_seed` ``(seed, t, i)``: a function of
the run seed and the sample alone, so a sample does not depend on its batch, the batch size, the
sharding or the other problems in the file (the HF backend draws it from its own generator; the
vLLM backend passes it as the request's ``SamplingParams.seed``).
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass

from codedpo.io import InputError


@dataclass(frozen=True)
class Request:
    """One sample to generate: ``index``-th sample of ``problems[problem]``."""

    problem: int
    index: int
    # None for greedy decoding.
    seed: int | None


def sample_seed(seed: int, task_id: str, index: int) -> int:
    """The seed of one sample's generator: a function of the run seed and the sample alone."""
    digest = hashlib.sha256(f"{seed}\0{task_id}\0{index}".encode()).digest()
    return int.from_bytes(digest[:8], "little") & (2**63 - 1)


def load_tokenizer(model_path: str):
    """The model's tokenizer, as training loads it (:func:`codedpo.models.chat.load_tokenizer`:
    the class its files declare where transformers would rebuild it, CodeQwen1.5's SentencePiece
    one)."""
    from codedpo.models.chat import load_tokenizer as load

    try:
        return load(model_path)
    except (OSError, ValueError) as exc:
        raise InputError(f"{model_path}: cannot load the tokenizer ({exc})") from None


def render_prompt(tokenizer, text: str) -> list[int]:
    """Token ids of ``text`` as one user turn, through the chat template, ready to continue:
    :func:`codedpo.models.chat.prompt_ids`, the very ids training puts before the response."""
    from codedpo.models.chat import prompt_ids as ids

    return list(ids(tokenizer, [{"role": "user", "content": text}]))


def prompt_ids(tokenizer, problems: Sequence[dict], model_path: str) -> list[list[int]]:
    """The rendered prompt of every problem; a tokenizer without a template is an error."""
    if tokenizer.chat_template is None:
        raise InputError(f"{model_path}: the tokenizer has no chat template")
    return [render_prompt(tokenizer, problem["prompt"]) for problem in problems]


def build_requests(problems: Sequence[dict], *, n: int, seed: int, greedy: bool) -> list[Request]:
    """``n`` requests per problem (one when ``greedy``), in problem order, then sample index."""
    if greedy:
        return [Request(p, 0, None) for p in range(len(problems))]
    return [
        Request(p, i, sample_seed(seed, problem["task_id"], i))
        for p, problem in enumerate(problems)
        for i in range(n)
    ]
