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
import logging
from collections.abc import Sequence
from dataclasses import dataclass

from codedpo.io import InputError

log = logging.getLogger(__name__)


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


# Code with indentation, blank lines, tabs, digit runs and non-ASCII text: a tokenizer that
# loads with the wrong pre-tokenizer or decoder does not give it back.
_ROUND_TRIP = "def add(a, b):\n\n    return a + b  # 12345\n\tprint('h\u00e9llo', [1, 2])\n"


def _round_trips(tokenizer) -> bool:
    ids = tokenizer(_ROUND_TRIP, add_special_tokens=False)["input_ids"]
    return tokenizer.decode(ids) == _ROUND_TRIP


def load_tokenizer(model_path: str):
    """The model's tokenizer (both backends render prompts and decode with it).

    ``AutoTokenizer`` first. transformers 5 overrides the class a checkpoint declares for some
    model types: for every ``qwen2`` model it builds a byte-level ``Qwen2Tokenizer``, which
    mangles CodeQwen1.5's sentencepiece vocabulary (``../shared/models/README.md``, note Q2). So
    a tokenizer that does not give back a probe text is replaced by the class the checkpoint's
    ``tokenizer_config.json`` names, or by the plain ``tokenizer.json`` pipeline, whichever
    round-trips.
    """
    import transformers
    from transformers import AutoTokenizer, PreTrainedTokenizerFast
    from transformers.models.auto.tokenization_auto import get_tokenizer_config

    try:
        tokenizer = AutoTokenizer.from_pretrained(model_path)
    except (OSError, ValueError) as exc:
        raise InputError(f"{model_path}: cannot load the tokenizer ({exc})") from None
    if _round_trips(tokenizer):
        return tokenizer
    declared = get_tokenizer_config(model_path).get("tokenizer_class")
    candidates = [getattr(transformers, declared, None) if declared else None]
    candidates.append(PreTrainedTokenizerFast)
    for cls in candidates:
        if cls is None or cls is type(tokenizer):
            continue
        try:
            other = cls.from_pretrained(model_path)
        except (OSError, ValueError, TypeError):
            continue
        if _round_trips(other):
            log.warning(
                "%s: AutoTokenizer gave a %s that does not reproduce text; using %s",
                model_path,
                type(tokenizer).__name__,
                type(other).__name__,
            )
            return other
    log.warning("%s: the tokenizer does not reproduce a probe text exactly", model_path)
    return tokenizer


def render_prompt(tokenizer, text: str) -> list[int]:
    """Token ids of ``text`` as one user turn, through the chat template, ready to continue."""
    rendered = tokenizer.apply_chat_template(
        [{"role": "user", "content": text}], add_generation_prompt=True, tokenize=False
    )
    return list(tokenizer(rendered, add_special_tokens=False)["input_ids"])


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
