"""The three paper models' chat formats, for the demo policies that imitate them.

A demo policy is a tiny model trained from scratch, shaped like one of the paper's models: that
model's architecture family (Llama for DeepSeek-Coder and CodeLlama, Qwen2 for CodeQwen1.5), its
chat template, special tokens and stop token, and the files generation reads its stop tokens
from (``config.json``, ``generation_config.json``, the tokenizer's eos and chat template) laid out
as the hub model ships them. Its tokenizer comes from one of three sources:

- ``None`` (the default): a byte-level BPE tokenizer trained here on the demo corpus, carrying
  the family's special tokens and chat template, so ``make demo`` needs neither ``../shared`` nor
  the Hub;
- a tokenizer directory, e.g. ``../shared/models/deepseek-ai__deepseek-coder-6.7b-instruct``
  (the real files; CodeQwen1.5's copy there has no ``tokenizer.json`` and must be read with
  ``tokenizer_class: LlamaTokenizer``, see ``../shared/models/README.md``);
- a Hub id, e.g. ``deepseek-ai/deepseek-coder-6.7b-instruct`` (the tokenizer only; needs
  internet).

The chat templates below are the hub models' own (``tokenizer_config.json``'s ``chat_template``),
character for character; tests/test_demo.py compares them with the real files.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from codedpo.io import InputError

DEEPSEEK_CODER_TEMPLATE = (
    "{% if not add_generation_prompt is defined %}\n{% set add_generation_prompt = false %}\n"
    "{% endif %}\n{%- set ns = namespace(found=false) -%}\n{%- for message in messages -%}\n"
    "    {%- if message['role'] == 'system' -%}\n        {%- set ns.found = true -%}\n"
    "    {%- endif -%}\n{%- endfor -%}\n{{bos_token}}{%- if not ns.found -%}\n"
    "{{'You are an AI programming assistant, utilizing the Deepseek Coder model, developed by "
    "Deepseek Company, and you only answer questions related to computer science. For "
    "politically sensitive questions, security and privacy issues, and other non-computer "
    "science questions, you will refuse to answer\\n'}}\n{%- endif %}\n"
    "{%- for message in messages %}\n    {%- if message['role'] == 'system' %}\n"
    "{{ message['content'] }}\n    {%- else %}\n        {%- if message['role'] == 'user' %}\n"
    "{{'### Instruction:\\n' + message['content'] + '\\n'}}\n        {%- else %}\n"
    "{{'### Response:\\n' + message['content'] + '\\n<|EOT|>\\n'}}\n        {%- endif %}\n"
    "    {%- endif %}\n{%- endfor %}\n{% if add_generation_prompt %}\n{{'### Response:'}}\n"
    "{% endif %}"
)

CODELLAMA_TEMPLATE = (
    "{% if messages[0]['role'] == 'system' %}{% set loop_messages = messages[1:] %}"
    "{% set system_message = messages[0]['content'] %}{% else %}"
    "{% set loop_messages = messages %}{% set system_message = false %}{% endif %}"
    "{% for message in loop_messages %}"
    "{% if (message['role'] == 'user') != (loop.index0 % 2 == 0) %}"
    "{{ raise_exception('Conversation roles must alternate user/assistant/user/assistant/...') }}"
    "{% endif %}{% if loop.index0 == 0 and system_message != false %}"
    "{% set content = '<<SYS>>\\n' + system_message + '\\n<</SYS>>\\n\\n' + message['content'] %}"
    "{% else %}{% set content = message['content'] %}{% endif %}"
    "{% if message['role'] == 'user' %}{{ bos_token + '[INST] ' + content | trim + ' [/INST]' }}"
    "{% elif message['role'] == 'assistant' %}{{ ' '  + content | trim + ' ' + eos_token }}"
    "{% endif %}{% endfor %}"
)

CODEQWEN_TEMPLATE = (
    "{% for message in messages %}{% if loop.first and messages[0]['role'] != 'system' %}"
    "{{ '<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n' }}{% endif %}"
    "{{'<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n'}}"
    "{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}"
)


@dataclass(frozen=True)
class Family:
    """How one paper model is laid out: architecture, tokens, template, stop tokens."""

    name: str
    imitates: str  # the hub model whose template and tokens these are
    model_type: str  # transformers architecture: "llama" or "qwen2"
    chat_template: str
    bos: str
    eos: str  # the tokenizer's eos: the token that ends an assistant turn
    pad: str | None
    unk: str | None
    extra_specials: tuple[str, ...]
    add_bos: bool  # the tokenizer puts BOS in front when asked for special tokens
    config_eos: str  # the token config.json's eos_token_id names
    generation_eos: tuple[str, ...]  # generation_config.json's eos_token_id
    generation_from_model_config: bool  # generation_config.json's `_from_model_config`


FAMILIES = {
    # deepseek-ai/deepseek-coder-6.7b-instruct: config.json and generation_config.json both say
    # eos 32021 (<|EOT|>), bos 32013; pad <｜end▁of▁sentence｜> in the tokenizer only.
    "deepseek-coder": Family(
        name="deepseek-coder",
        imitates="deepseek-ai/deepseek-coder-6.7b-instruct",
        model_type="llama",
        chat_template=DEEPSEEK_CODER_TEMPLATE,
        bos="<｜begin▁of▁sentence｜>",
        eos="<|EOT|>",
        pad="<｜end▁of▁sentence｜>",
        unk=None,
        extra_specials=(),
        add_bos=True,
        config_eos="<|EOT|>",
        generation_eos=("<|EOT|>",),
        generation_from_model_config=True,
    ),
    # codellama/CodeLlama-7b-Instruct-hf: eos </s> ends the turn (the template writes it), bos
    # <s>; the hub tokenizer has no pad token.
    "codellama": Family(
        name="codellama",
        imitates="codellama/CodeLlama-7b-Instruct-hf",
        model_type="llama",
        chat_template=CODELLAMA_TEMPLATE,
        bos="<s>",
        eos="</s>",
        pad=None,
        unk="<unk>",
        extra_specials=(),
        add_bos=True,
        config_eos="</s>",
        generation_eos=("</s>",),
        generation_from_model_config=True,
    ),
    # Qwen/CodeQwen1.5-7B-Chat: the tokenizer's eos is <|im_end|>, while config.json's
    # eos_token_id (and bos) is <|endoftext|>; a sampler that stops on config.json's eos alone
    # runs past the end of the turn. Its generation_config.json was not available to check
    # (../shared/models/README.md); this one lists both ends as Qwen1.5's chat models do.
    "codeqwen": Family(
        name="codeqwen",
        imitates="Qwen/CodeQwen1.5-7B-Chat",
        model_type="qwen2",
        chat_template=CODEQWEN_TEMPLATE,
        bos="<|endoftext|>",
        eos="<|im_end|>",
        pad="<fim_pad>",
        unk="<unk>",
        extra_specials=("<|im_start|>",),
        add_bos=False,
        config_eos="<|endoftext|>",
        generation_eos=("<|im_end|>", "<|endoftext|>"),
        generation_from_model_config=False,
    ),
}


def get_family(name: str) -> Family:
    try:
        return FAMILIES[name]
    except KeyError:
        raise InputError(
            f"demo family {name!r} is not one of {', '.join(sorted(FAMILIES))}"
        ) from None


def specials(family: Family) -> list[str]:
    """The family's special tokens, unk/bos/eos first (CodeLlama's ids 0, 1, 2)."""
    tokens = [family.unk, family.bos, family.eos, family.pad, *family.extra_specials]
    return list(dict.fromkeys(t for t in tokens if t))


def corpus_text(family: Family, rendered: str) -> str:
    """A rendered conversation without its special tokens, for training the BPE merges: the
    tokenizer splits special tokens out before it merges, so they take no part in merges."""
    for token in specials(family):
        rendered = rendered.replace(token, "\n")
    return rendered


def train_local_tokenizer(family: Family, texts: Sequence[str], vocab_size: int):
    """A byte-level BPE tokenizer trained on ``texts`` with ``family``'s special tokens, its
    BOS behaviour and its chat template.

    Byte-level, so any string a model may be shown later (a benchmark prompt, a traceback)
    still encodes, only in more tokens.
    """
    from tokenizers import (
        Regex,
        Tokenizer,
        decoders,
        models,
        normalizers,
        pre_tokenizers,
        processors,
        trainers,
    )
    from transformers import PreTrainedTokenizerFast, Qwen2Tokenizer

    special = specials(family)
    backend = Tokenizer(models.BPE())
    if family.model_type == "qwen2":
        # transformers' AutoTokenizer loads every qwen2 model's tokenizer as Qwen2Tokenizer,
        # which rebuilds the pipeline below around the file's vocabulary and merges; training
        # with that same pipeline makes the saved tokenizer the one every stage loads.
        from transformers.models.qwen2.tokenization_qwen2 import PRETOKENIZE_REGEX

        backend.normalizer = normalizers.NFC()
        backend.pre_tokenizer = pre_tokenizers.Sequence(
            [
                pre_tokenizers.Split(Regex(PRETOKENIZE_REGEX), behavior="isolated"),
                pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False),
            ]
        )
    else:
        backend.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    backend.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        min_frequency=2,
        special_tokens=special,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    backend.train_from_iterator(texts, trainer=trainer)
    if family.add_bos:
        bos_id = backend.token_to_id(family.bos)
        backend.post_processor = processors.TemplateProcessing(
            single=f"{family.bos} $A",
            pair=f"{family.bos} $A {family.bos} $B",
            special_tokens=[(family.bos, bos_id)],
        )
    named = {"bos_token": family.bos, "eos_token": family.eos}
    if family.pad:
        named["pad_token"] = family.pad
    if family.unk:
        named["unk_token"] = family.unk
    common = {
        "extra_special_tokens": list(family.extra_specials),
        # Decoder-only: batched generation needs the padding on the left.
        "padding_side": "left",
        "model_max_length": 4096,
        **named,
    }
    if family.model_type == "qwen2":
        model = json.loads(backend.to_str())["model"]
        merges = [tuple(m.split(" ")) if isinstance(m, str) else tuple(m) for m in model["merges"]]
        tokenizer = Qwen2Tokenizer(vocab=model["vocab"], merges=merges, **common)
    else:
        tokenizer = PreTrainedTokenizerFast(tokenizer_object=backend, **common)
    tokenizer.chat_template = family.chat_template
    return tokenizer


def load_tokenizer(source: str, family: Family, tokenizer_class: str | None = None):
    """A tokenizer from a directory or a Hub id, checked against ``family``.

    ``tokenizer_class`` names a transformers class to load it with (``LlamaTokenizer`` for
    CodeQwen1.5's files without ``tokenizer.json``); None uses ``AutoTokenizer``.
    """
    import transformers

    if tokenizer_class:
        cls = getattr(transformers, tokenizer_class, None)
        if cls is None or not hasattr(cls, "from_pretrained"):
            raise InputError(f"tokenizer_class {tokenizer_class!r} is not a transformers tokenizer")
    else:
        cls = transformers.AutoTokenizer
    if not Path(source).is_dir() and (source.startswith((".", "/")) or source.count("/") > 1):
        raise InputError(f"{source}: tokenizer directory not found")
    try:
        tokenizer = cls.from_pretrained(source)
    except (OSError, ValueError) as exc:
        raise InputError(f"{source}: cannot load the tokenizer: {exc}") from None
    if tokenizer.eos_token != family.eos:
        raise InputError(
            f"{source}: the tokenizer's eos is {tokenizer.eos_token!r}, but family "
            f"{family.name!r} ends a turn with {family.eos!r}"
        )
    if not tokenizer.chat_template:
        raise InputError(f"{source}: the tokenizer has no chat template")
    missing = [t for t in specials(family) if tokenizer.convert_tokens_to_ids(t) is None]
    if missing:
        raise InputError(f"{source}: the tokenizer lacks the special tokens {missing}")
    tokenizer.padding_side = "left"
    return tokenizer


def token_id(tokenizer, token: str) -> int:
    ids = tokenizer.convert_tokens_to_ids(token)
    if ids is None or ids == tokenizer.unk_token_id and token != tokenizer.unk_token:
        raise InputError(f"the tokenizer has no token {token!r}")
    return int(ids)


def padded_vocab_size(tokenizer, multiple: int = 64) -> int:
    """``len(tokenizer)`` rounded up, as the hub models pad their embedding tables."""
    return -(-len(tokenizer) // multiple) * multiple


def model_config(family: Family, tokenizer, **sizes):
    """The ``transformers`` config of a tiny model of ``family``: its architecture, and
    ``config.json``'s bos/eos ids as the hub model ships them."""
    from transformers import LlamaConfig, Qwen2Config

    common = {
        "vocab_size": padded_vocab_size(tokenizer),
        "hidden_size": sizes["hidden_size"],
        "intermediate_size": sizes["intermediate_size"],
        "num_hidden_layers": sizes["num_layers"],
        "num_attention_heads": sizes["num_heads"],
        "max_position_embeddings": sizes["max_position_embeddings"],
        # Tiny models tie the input and output embeddings: with a 32k-92k vocabulary the
        # tables are most of the parameters.
        "tie_word_embeddings": True,
        "bos_token_id": token_id(tokenizer, family.bos),
        "eos_token_id": token_id(tokenizer, family.config_eos),
    }
    if family.model_type == "qwen2":
        # CodeQwen1.5 uses grouped-query attention (32 heads, 4 KV heads).
        return Qwen2Config(
            num_key_value_heads=max(1, sizes["num_heads"] // 4), use_sliding_window=False, **common
        )
    return LlamaConfig(num_key_value_heads=sizes["num_heads"], **common)


def generation_config(family: Family, tokenizer):
    """``generation_config.json``: the end-of-turn id(s) generation stops on, as shipped (no
    sampling defaults: codedpo.sampling.sample sets its own)."""
    from transformers import GenerationConfig

    eos = [token_id(tokenizer, t) for t in family.generation_eos]
    config = GenerationConfig(
        bos_token_id=token_id(tokenizer, family.bos),
        eos_token_id=eos[0] if len(eos) == 1 else eos,
    )
    if family.pad and not family.generation_from_model_config:
        config.pad_token_id = token_id(tokenizer, family.pad)
    config._from_model_config = family.generation_from_model_config
    return config
