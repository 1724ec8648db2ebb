"""Token sequences of a chat policy: the prompt it is sampled from and the response it produced.

Sampling renders a problem as one user turn with the tokenizer's own chat template and
generates after the generation prompt until an end-of-turn token. Training must see that same
sequence, token for token. Tokenizing ``prompt + response`` through the chat template (what TRL
does with conversational data) does not give it for the paper's models:

- DeepSeek-Coder's template writes ``content + "\\n<|EOT|>\\n"``: a response the model ended with
  its own newline gets a second one, and a newline that was never generated follows ``<|EOT|>``;
- ChatML (CodeQwen1.5) writes ``content + "<|im_end|>\\n"``: again a token after the stop token;
- CodeLlama's writes ``" " + content | trim + " </s>"`` and its SentencePiece decoder drops the
  leading space of a decoded response, so the response text alone does not say whether the
  first token carried the space.

So :func:`prompt_ids` tokenizes the prompt exactly as :mod:`codedpo.sampling.sample` does, and
:func:`completion_ids` tokenizes the stored response the way the template places it (standalone
or after the prompt, whichever agrees with the template's own rendering) and ends it with one
end-of-turn token. :func:`check_example` is what the tests assert for every template.
"""

from __future__ import annotations

from collections.abc import Sequence

Messages = list[dict[str, str]]

# Declared tokenizer classes that read a tokenizer's own files as they are.
_AS_DECLARED = ("LlamaTokenizer", "CodeLlamaTokenizer", "PreTrainedTokenizer", "TokenizersBackend")


def load_tokenizer(model_name_or_path: str, **kwargs):
    """A policy's tokenizer, as its files describe it.

    ``AutoTokenizer`` picks the class from the model's ``model_type`` for some architectures,
    whatever ``tokenizer_config.json`` declares: transformers 5 loads every ``qwen2`` model's
    tokenizer as ``Qwen2Tokenizer``, which rebuilds a byte-level pipeline around the file's
    vocabulary. CodeQwen1.5's tokenizer is a SentencePiece one (its hub files declare
    ``PreTrainedTokenizerFast``; the files in ../shared/models need ``LlamaTokenizer``), and
    that rebuild garbles its text (tests/test_train.py shows it). Where the model type would
    override a declared SentencePiece or plain-file class, the declared class loads the
    tokenizer; everything else goes through ``AutoTokenizer``.
    """
    import transformers
    from transformers import AutoConfig, AutoTokenizer
    from transformers.models.auto import tokenization_auto

    declared = tokenization_auto.get_tokenizer_config(model_name_or_path).get("tokenizer_class")
    overridden = getattr(tokenization_auto, "MODELS_WITH_INCORRECT_HUB_TOKENIZER_CLASS", {"qwen2"})
    try:
        model_type = AutoConfig.from_pretrained(model_name_or_path).model_type
    except (OSError, ValueError):
        model_type = None
    if declared and model_type in overridden and declared.removesuffix("Fast") in _AS_DECLARED:
        if declared.removesuffix("Fast") in ("PreTrainedTokenizer", "TokenizersBackend"):
            cls = transformers.PreTrainedTokenizerFast
        else:
            cls = getattr(transformers, declared)
        return cls.from_pretrained(model_name_or_path, **kwargs)
    return AutoTokenizer.from_pretrained(model_name_or_path, **kwargs)


def prompt_text(tokenizer, messages: Messages) -> str:
    """The generation prompt as text: the template with ``add_generation_prompt``."""
    return tokenizer.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)


def prompt_ids(tokenizer, messages: Messages) -> list[int]:
    """The prompt's ids as sampling feeds them to the model.

    The rendered text already holds the BOS token where the template writes one, so the
    tokenizer must not add another (``add_special_tokens=False``), as in codedpo.sampling.sample.
    """
    return tokenizer(prompt_text(tokenizer, messages), add_special_tokens=False)["input_ids"]


def end_of_turn_id(tokenizer) -> int:
    """The token that ends an assistant turn: the tokenizer's eos (``<|EOT|>`` for
    DeepSeek-Coder, ``</s>`` for CodeLlama, ``<|im_end|>`` for CodeQwen1.5)."""
    if tokenizer.eos_token_id is None:
        raise ValueError("the tokenizer has no eos token: no end-of-turn token to train on")
    return int(tokenizer.eos_token_id)


def _common_prefix(a: Sequence[int], b: Sequence[int]) -> int:
    n = 0
    for x, y in zip(a, b, strict=False):
        if x != y:
            break
        n += 1
    return n


def template_turn_ids(tokenizer, messages: Messages, content: str) -> list[int]:
    """The ids the chat template gives an assistant turn ``content`` after ``messages``, cut
    after its first end-of-turn token: what a model trained on this template generates."""
    eot = end_of_turn_id(tokenizer)
    prompt = prompt_ids(tokenizer, messages)
    full = tokenizer.apply_chat_template(
        [*messages, {"role": "assistant", "content": content}], tokenize=True, return_dict=True
    )["input_ids"]
    if full[: len(prompt)] != prompt:
        raise ValueError(
            "chat template: the generation prompt's tokens are not a prefix of the conversation's"
        )
    turn = list(full[len(prompt) :])
    if eot not in turn:
        raise ValueError(f"chat template: the assistant turn has no end-of-turn token ({eot})")
    return turn[: turn.index(eot) + 1]


def completion_ids(tokenizer, messages: Messages, response: str) -> list[int]:
    """The ids of a sampled ``response`` (decoded text without special tokens) plus one
    end-of-turn token: the sequence the policy generated after the prompt.

    Two encodings of the text are candidates: alone, and in context after the prompt text.
    They differ only where the tokenizer treats the start of a text specially (SentencePiece's
    dummy-prefix space) or a token merges across the boundary; the one closer to the template's
    own rendering of the turn is how the model emits it.
    """
    eot = end_of_turn_id(tokenizer)
    alone = tokenizer(response, add_special_tokens=False)["input_ids"]
    prompt = prompt_ids(tokenizer, messages)
    joined = tokenizer(prompt_text(tokenizer, messages) + response, add_special_tokens=False)
    joined = joined["input_ids"]
    candidates = [alone]
    if joined[: len(prompt)] == prompt:
        candidates.insert(0, joined[len(prompt) :])
    if len(candidates) > 1 and candidates[0] != candidates[1]:
        reference = template_turn_ids(tokenizer, messages, response)
        candidates.sort(key=lambda ids: -_common_prefix(ids, reference))
    ids = list(candidates[0])
    # A response is decoded without special tokens, so none should be left in it; an eos that
    # the text spells out anyway must not end up doubled.
    while ids and ids[-1] == eot:
        ids.pop()
    return [*ids, eot]


def check_example(
    tokenizer,
    prompt: Sequence[int],
    completion: Sequence[int],
    generation_prompt: Sequence[int],
) -> list[str]:
    """What is wrong with a tokenized training example (empty: nothing).

    ``prompt`` must be exactly the ids generation started from, ``completion`` must end with
    exactly one end-of-turn token and hold no other special token, and the whole sequence may
    hold at most one BOS.
    """
    problems = []
    eot = end_of_turn_id(tokenizer)
    if list(prompt) != list(generation_prompt):
        n = _common_prefix(prompt, generation_prompt)
        problems.append(
            f"the prompt differs from the generation prompt at token {n} "
            f"({list(prompt[n : n + 3])} vs {list(generation_prompt[n : n + 3])})"
        )
    if not completion or completion[-1] != eot:
        tail = tokenizer.convert_ids_to_tokens(list(completion[-3:]))
        problems.append(f"the completion does not end with the end-of-turn token: ...{tail}")
    special = set(tokenizer.all_special_ids)
    inner = [t for t in completion[:-1] if t in special]
    if inner:
        problems.append(
            "the completion holds special tokens before its end: "
            f"{tokenizer.convert_ids_to_tokens(inner)}"
        )
    bos = tokenizer.bos_token_id
    if bos is not None and bos != eot and [*prompt, *completion].count(bos) > 1:
        problems.append(f"BOS ({bos}) appears {[*prompt, *completion].count(bos)} times")
    return problems
