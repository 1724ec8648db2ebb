"""Loading a policy checkpoint: a full model directory, a Hub id, or a LoRA adapter directory.

Training with a recipe's ``peft: {merge: false}`` saves an adapter directory (PEFT's
``adapter_config.json`` and ``adapter_model.safetensors``, plus the tokenizer, the generation
config and ``train_summary.json``) instead of a full model. Every later stage (sampling, eval
generation, the implicit-reward analysis, the next round's training) loads a checkpoint through
:func:`load_causal_lm`, which gives back a plain transformers model either way: for an adapter,
the base model named in ``adapter_config.json`` (``base_model_name_or_path``) with the adapter
merged into its weights (PEFT's ``merge_and_unload``).

The base of an adapter may itself be an adapter directory: the next iterative round trains a new
adapter on the merged previous one and records that previous adapter as its base, so a chain of
rounds loads base -> adapter 1 -> adapter 2 ..., each merged in turn.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

from codedpo.io import InputError

ADAPTER_CONFIG = "adapter_config.json"
# A Hub id: "name" or "owner/name" (what check_model_path lets through when no such path exists).
_HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]*(/[\w.-]+)?$")
# Chains longer than this are a loop in the adapter configs (an adapter naming itself).
MAX_CHAIN = 64


def is_adapter(path: str | Path) -> bool:
    """Whether ``path`` is a local PEFT adapter directory (has ``adapter_config.json``)."""
    return (Path(path) / ADAPTER_CONFIG).is_file()


def adapter_base(path: str | Path) -> str:
    """``base_model_name_or_path`` of the adapter at ``path``, checked."""
    config_path = Path(path) / ADAPTER_CONFIG
    try:
        config = json.loads(config_path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise InputError(f"{config_path}: cannot read the adapter config ({exc})") from None
    base = config.get("base_model_name_or_path") if isinstance(config, dict) else None
    if not isinstance(base, str) or not base:
        raise InputError(f"{config_path}: field 'base_model_name_or_path' is missing")
    return base


def adapter_chain(path: str | Path) -> list[str]:
    """``[full base, adapter 1, ..., path]``: what loading ``path`` loads, in order."""
    chain = [str(path)]
    while is_adapter(chain[-1]):
        if len(chain) > MAX_CHAIN:
            raise InputError(f"{path}: adapter bases loop ({' -> '.join(chain[:4])} ...)")
        chain.append(adapter_base(chain[-1]))
    return chain[::-1]


def check_model_path(model_path: str) -> None:
    """Raise :class:`InputError` naming ``model_path`` unless it is a model directory, an
    adapter directory whose bases all exist, or a Hub id."""
    path = Path(model_path)
    if path.exists():
        if not path.is_dir():
            raise InputError(f"{model_path}: not a model directory (no config.json)")
        if is_adapter(path):
            base = adapter_base(path)
            if not Path(base).exists() and not _HUB_ID.match(base):
                raise InputError(
                    f"{path / ADAPTER_CONFIG}: field 'base_model_name_or_path': {base}: "
                    "model directory not found"
                )
            adapter_chain(path)  # a loop of adapters naming each other is an error
            check_model_path(base)
            return
        if not (path / "config.json").exists():
            raise InputError(f"{model_path}: not a model directory (no config.json)")
        return
    if not _HUB_ID.match(model_path):
        raise InputError(f"{model_path}: model directory not found")


def load_causal_lm(path: str, *, dtype=None, device: str | None = None):
    """The causal LM at ``path`` (a full model or an adapter chain merged into its base).

    ``dtype``: a torch dtype (default: fp32; the caller picks bf16 on GPUs). ``device``: where
    the returned model lives (default: where ``from_pretrained`` puts it, the CPU). The model is
    returned in training mode, as ``from_pretrained`` gives it; callers that generate call
    ``.eval()``.
    """
    import torch
    from transformers import AutoModelForCausalLM

    dtype = torch.float32 if dtype is None else dtype
    chain = adapter_chain(path)
    check_model_path(chain[0])
    try:
        model = AutoModelForCausalLM.from_pretrained(chain[0], dtype=dtype)
    except OSError as exc:
        raise InputError(
            f"{chain[0]}: cannot load the model (not a local directory, and the Hub gave: {exc})"
        ) from None
    if len(chain) > 1:
        from peft import PeftModel

        for adapter in chain[1:]:
            try:
                model = PeftModel.from_pretrained(model, adapter).merge_and_unload()
            except (OSError, ValueError, KeyError, RuntimeError) as exc:
                raise InputError(f"{adapter}: cannot apply the adapter ({exc})") from None
        # PEFT loads an adapter for inference (its base frozen); the merged model is trainable
        # again, as from_pretrained gives a model (full fine-tuning of the next round).
        model.requires_grad_(True)
        # The merged model names the checkpoint it stands for, not the first base.
        model.config._name_or_path = str(path)
        model.name_or_path = str(path)
    if device is not None:
        model.to(device)
    return model


def save_merged(path: str, out_dir: str | Path, *, dtype=None) -> Path:
    """Write the model at ``path`` (an adapter chain is merged) as a full model directory, with
    the tokenizer and the generation config: what a backend that reads model directories
    itself (vLLM) loads."""
    from transformers import GenerationConfig

    from codedpo.models.chat import load_tokenizer

    out_dir = Path(out_dir)
    model = load_causal_lm(path, dtype=dtype)
    model.save_pretrained(out_dir)
    load_tokenizer(path).save_pretrained(out_dir)
    try:  # the adapter's own generation config (stop tokens) wins over the base's
        GenerationConfig.from_pretrained(path).save_pretrained(out_dir)
    except OSError:
        pass
    return out_dir
