"""Where generation stops: the end-of-turn and end-of-sequence tokens named by the model's files.

A chat model ends its answer with its template's end-of-turn token, which is not always the eos of
``config.json``: CodeQwen1.5-7B-Chat's config says eos 2 (``<|endoftext|>``) while its tokenizer
and its ChatML template end a turn with ``<|im_end|>`` (4); DeepSeek-Coder-Instruct ends with
``<|EOT|>`` (32021); CodeLlama-Instruct with ``</s>`` (2). Stopping only at the config's eos lets
the model run on past its turn into template markup (the next ``<|im_start|>user`` turn, or
``### Instruction:``), so the stop set is the union of

- ``eos_token_id`` of ``generation_config.json`` (an int or a list), or of ``config.json`` when
  the model has no generation config (what transformers itself falls back to);
- the tokenizer's ``eos_token``;
- the first special token the chat template writes after an assistant message's content (its
  end-of-turn token), found by rendering a conversation and reading what follows the answer.

Everything is read from the model's own files, so a checkpoint saved by our training, a demo
policy and a Hub model are treated alike.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from codedpo.io import InputError

# A marker that no template alters (no whitespace to trim, no markup) and no tokenizer merges
# with what follows it in a way that matters: only the text after it is tokenized.
_ANSWER = "CODEDPOANSWERMARKER"


@dataclass(frozen=True)
class StopTokens:
    """The stop token ids and which file named each of them (recorded with every sample)."""

    ids: tuple[int, ...]
    sources: dict[str, list[int]] = field(default_factory=dict)


def _as_list(value) -> list[int]:
    if value is None:
        return []
    if isinstance(value, (list, tuple)):
        return [int(v) for v in value]
    return [int(value)]


def generation_config_eos(model_path: str) -> list[int]:
    """``eos_token_id`` of the model's generation config (derived from config.json if absent)."""
    from transformers import AutoConfig, GenerationConfig

    try:
        config = GenerationConfig.from_pretrained(model_path)
    except OSError:
        try:
            config = GenerationConfig.from_model_config(AutoConfig.from_pretrained(model_path))
        except (OSError, ValueError) as exc:
            raise InputError(f"{model_path}: cannot read the model's config ({exc})") from None
    return _as_list(config.eos_token_id)


def special_token_ids(tokenizer) -> set[int]:
    """Ids of the tokenizer's special tokens: the named ones and added tokens marked special."""
    ids = set(tokenizer.all_special_ids)
    for token_id, token in getattr(tokenizer, "added_tokens_decoder", {}).items():
        if getattr(token, "special", False):
            ids.add(int(token_id))
    return ids


def template_end_of_turn(tokenizer) -> int | None:
    """The first special token the chat template writes after an assistant answer, if any."""
    messages = [
        {"role": "user", "content": "Q"},
        {"role": "assistant", "content": _ANSWER},
    ]
    try:
        rendered = tokenizer.apply_chat_template(messages, tokenize=False)
    except Exception:  # noqa: BLE001 - a template may refuse this conversation; then it names none
        return None
    if not isinstance(rendered, str) or _ANSWER not in rendered:
        return None
    after = rendered[rendered.rindex(_ANSWER) + len(_ANSWER) :]
    special = special_token_ids(tokenizer)
    for token_id in tokenizer(after, add_special_tokens=False)["input_ids"]:
        if token_id in special:
            return int(token_id)
    return None


def stop_tokens(model_path: str, tokenizer) -> StopTokens:
    """The stop set of the model at ``model_path`` (see the module docstring)."""
    sources = {
        "generation_config": generation_config_eos(model_path),
        "tokenizer": _as_list(tokenizer.eos_token_id),
        "chat_template": _as_list(template_end_of_turn(tokenizer)),
    }
    ids = sorted({i for found in sources.values() for i in found})
    if not ids:
        raise InputError(
            f"{model_path}: no stop token: no eos_token_id in generation_config.json or "
            "config.json, no tokenizer eos_token, and the chat template ends a turn with no "
            "special token"
        )
    return StopTokens(tuple(ids), sources)
