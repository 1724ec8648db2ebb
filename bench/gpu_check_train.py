"""The GPU check's training steps: one DPO step and one GRPO step (``bench/gpu_check.py``).

Both steps run on random sequences of ``seq_len`` tokens (a quarter of them prompt), with fp32
master weights under bf16 autocast and activation checkpointing (``TrainingArguments(bf16=True)``
on one GPU without DeepSpeed) and fused AdamW. Where fp32 weights, gradients and AdamW states
cannot fit the GPU (:func:`fp32_master_fits`; a 7B model needs about 108 GB) that row is recorded
as skipped and the step runs with bf16 weights and optimizer states; an fp32 step that runs out of
memory anyway is recorded and retried the same way. The first step is a warm-up; the row reports
the mean of the ``steps`` after it, tokens/s of all tokens of the step's sequences, and peak
memory.

**DPO** (not TRL's trainer): ``pairs`` pairs per step, the policy's summed completion log-probs
of chosen and rejected, the sigmoid DPO loss of TRL's ``loss_type=sigmoid`` with beta 0.1,
backward, AdamW. Reference log-probs are either precomputed (the reference model is scored once
and freed before training: ``precompute_ref_log_probs: true``) or computed by a resident bf16
reference model in every step (``false``).

**GRPO**: one group of ``group`` completions of one prompt per step (TRL's ``num_generations``,
default 8), generation not included (the sampling rows measure it). Rewards are random and
normalized per group into advantages as TRL does (``scale_rewards="group"``); old log-probs equal
the current ones (TRL with ``num_iterations=1``), ``beta`` 0 (no reference model). The loss is
TRL's own where TRL imports (``impl: trl``): ``GRPOTrainer._compute_loss`` of TRL's GRPO trainer,
called on a trainer object that holds only the attributes that method reads, set from a default
``GRPOConfig``, on a policy with TRL's fused LM head (``add_fused_lm_head``: log-probs in chunks,
without the full logits), as ``GRPOTrainer.__init__`` sets it up. Where TRL does not import
(``impl: mirror``, and the row says why) the loss is :func:`mirror_grpo_loss`, which mirrors
TRL 1.16.0's default path of that method line by line, from full logits.
"""

from __future__ import annotations

import contextlib
import gc
import json
import tempfile
import time
import traceback

# DPO beta of the paper config (TRL's default is also 0.1).
DPO_BETA = 0.1
# TRL 1.16.0 GRPOConfig defaults, used by the mirror (the TRL path reads them from GRPOConfig).
GRPO_LOSS_TYPE = "dapo"
GRPO_EPSILON = 0.2
# bytes per parameter with fp32 master weights: weights, gradients, AdamW's two moments
FP32_MASTER_BYTES = 4 + 4 + 8
# room left for activations (checkpointed), logits and the allocator's slack when fp32 master
# weights are judged to fit
ACTIVATION_ROOM = 6 * 2**30


def release() -> None:
    """Give the memory of objects nobody holds back to the device."""
    import torch

    gc.collect()
    if torch.cuda.is_available():
        torch.cuda.empty_cache()


def parameter_count(shape: dict) -> int:
    """Parameters of a Llama of ``shape`` (untied embeddings)."""
    h, i = shape["hidden_size"], shape["intermediate_size"]
    head = h // shape["num_attention_heads"]
    kv = shape["num_key_value_heads"] * head
    layer = 2 * h * h + 2 * h * kv + 3 * h * i + 2 * h
    return shape["num_hidden_layers"] * layer + 2 * shape["vocab_size"] * h + h


def fp32_master_fits(shape: dict, resident_reference: bool) -> str | None:
    """None where fp32 master weights should fit the GPU, else why not."""
    import torch

    if not torch.cuda.is_available():
        return None
    params = parameter_count(shape)
    need = params * FP32_MASTER_BYTES + (params * 2 if resident_reference else 0)
    total = torch.cuda.get_device_properties(0).total_memory
    if need + ACTIVATION_ROOM <= total:
        return None
    what = "fp32 weights, gradients and AdamW states"
    what += " and a bf16 reference" if resident_reference else ""
    return f"{what} need {need / 2**30:.0f} GiB, the GPU has {total / 2**30:.0f} GiB"


def random_groups(generator, groups: int, per_group: int, seq_len: int, prompt_len: int):
    """``groups * per_group`` token sequences; the ``per_group`` of a group share a prompt."""
    import torch

    # Token ids above the special tokens (32013-32021): plain text tokens of the vocabulary.
    prompt = torch.randint(100, 32000, (groups, 1, prompt_len), generator=generator)
    completions = torch.randint(
        100, 32000, (groups, per_group, seq_len - prompt_len), generator=generator
    )
    ids = torch.cat([prompt.expand(-1, per_group, -1), completions], -1)
    return ids.reshape(-1, seq_len)


def per_token_log_probs(model, ids, prompt_len: int):
    """Log-probs of each token after the prompt, from the full logits: ``[rows, completion]``."""
    import torch

    logits = model(input_ids=ids).logits[:, prompt_len - 1 : -1].float()
    targets = ids[:, prompt_len:]
    return torch.log_softmax(logits, -1).gather(-1, targets[..., None]).squeeze(-1)


def group_advantages(rewards, group: int):
    """Rewards normalized per group, as TRL 1.16.0's ``GRPOTrainer._generate_and_score_completions``
    does with ``scale_rewards="group"``: (r - group mean) / (group std + 1e-4), std with Bessel's
    correction (``trl.trainer.utils.nanstd``; no NaN rewards here)."""
    grouped = rewards.view(-1, group)
    mean = grouped.mean(1).repeat_interleave(group)
    std = grouped.std(1).repeat_interleave(group)
    return (rewards - mean) / (std + 1e-4)


def mirror_grpo_loss(policy, ids, prompt_len: int, advantages, autocast):
    """TRL 1.16.0 ``GRPOTrainer._compute_loss`` on its default path, line by line: per-token
    log-probs of the completion; ``old_per_token_logps = per_token_logps.detach()`` (no old
    log-probs are passed when ``num_iterations == 1``); ``importance_sampling_level="token"``:
    ``coef_1 = exp(logp - old)``, ``coef_2 = clamp(coef_1, 1 - epsilon, 1 + epsilon_high)``
    (both 0.2); ``per_token_loss = -min(coef_1 * A, coef_2 * A)``; ``beta == 0``: no KL term;
    ``loss_type="dapo"``: ``(per_token_loss * mask).sum() / num_items_in_batch`` (one process, no
    gradient accumulation, ``steps_per_generation`` 1). It differs in cost, not in value, from
    TRL's: full logits instead of TRL's fused LM head, and no entropies (TRL computes them for its
    metrics)."""
    import torch

    with autocast:
        logp = per_token_log_probs(policy, ids, prompt_len)
    mask = torch.ones_like(logp)
    advantages = advantages.unsqueeze(1)
    coef_1 = torch.exp(logp - logp.detach())
    coef_2 = torch.clamp(coef_1, 1 - GRPO_EPSILON, 1 + GRPO_EPSILON)
    per_token_loss = -torch.min(coef_1 * advantages, coef_2 * advantages)
    return (per_token_loss * mask).sum() / mask.sum().clamp(min=1.0)


class TrlGrpoLoss:
    """TRL's ``GRPOTrainer._compute_loss`` on ``policy``, without a dataset, a tokenizer or the
    Trainer's loop: a ``GRPOTrainer`` made without ``__init__``, holding what ``_compute_loss``
    and ``_get_per_token_logps_and_entropies`` read, set from a default ``GRPOConfig`` as
    ``GRPOTrainer.__init__`` sets them; the policy gets TRL's fused LM head as there."""

    def __init__(self, policy, group: int, cuda: bool) -> None:
        from collections import defaultdict

        import trl
        from accelerate import Accelerator
        from trl import GRPOConfig
        from trl.trainer.grpo_trainer import GRPOTrainer
        from trl.trainer.utils import add_fused_lm_head

        with tempfile.TemporaryDirectory(prefix="gpu-check-grpo-") as out:
            args = GRPOConfig(
                output_dir=out,
                report_to="none",
                bf16=cuda,
                use_cpu=not cuda,
                num_generations=group,
                per_device_train_batch_size=group,
            )
        trainer = object.__new__(GRPOTrainer)
        trainer.args = args
        trainer.model = policy
        trainer.accelerator = Accelerator(mixed_precision="bf16" if cuda else "no", cpu=not cuda)
        for name in (
            "loss_type",
            "beta",
            "importance_sampling_level",
            "top_entropy_quantile",
            "off_policy_mask_threshold",
            "use_vllm",
            "vllm_importance_sampling_correction",
            "entropy_coef",
            "use_adaptive_entropy",
        ):
            setattr(trainer, name, getattr(args, name))
        trainer.epsilon_low = args.epsilon
        trainer.epsilon_high = args.epsilon_high if args.epsilon_high is not None else args.epsilon
        trainer.router_aux_loss_coef = 0.0
        trainer.aux_loss_enabled = False  # a dense Llama: no router logits
        trainer._entropy_bonus_enabled = args.entropy_coef != 0.0 or args.use_adaptive_entropy
        trainer._last_world_entropy = float("inf")
        trainer._entropy_window_stats = None
        trainer._metrics = {"train": defaultdict(list), "eval": defaultdict(list)}
        trainer.current_gradient_accumulation_steps = 1
        add_fused_lm_head(
            policy,
            temperature=args.temperature,
            cast_lm_head_to_fp32=args.cast_lm_head_to_fp32,
            outputs=("log_probs", "entropy"),
        )
        self.trainer = trainer
        self.impl = f"trl {trl.__version__}: GRPOTrainer._compute_loss"
        self.loss_type = args.loss_type

    def __call__(self, policy, ids, prompt_len: int, advantages):
        import torch

        prompt, completion = ids[:, :prompt_len], ids[:, prompt_len:]
        completion_mask = torch.ones_like(completion)
        inputs = {
            "prompt_ids": prompt,
            "prompt_mask": torch.ones_like(prompt),
            "completion_ids": completion,
            "completion_mask": completion_mask,
            "advantages": advantages,
            "num_items_in_batch": completion_mask.sum(),
        }
        return self.trainer._compute_loss(policy, inputs)


def short_error(exc: BaseException) -> str:
    text = str(exc).strip()
    return f"{type(exc).__name__}: {text.splitlines()[0][:160]}" if text else type(exc).__name__


def trl_grpo_error() -> str | None:
    """None where TRL's GRPO trainer imports, else the error."""
    try:
        from trl.trainer.grpo_trainer import GRPOTrainer  # noqa: F401
    except Exception as exc:  # any failure of the import means: use the mirror
        return short_error(exc)
    return None


def _policy(build_model, shape, device, master: str):
    import torch

    policy = build_model(shape, device, torch.float32 if master == "fp32" else torch.bfloat16)
    policy.train()
    policy.gradient_checkpointing_enable()
    policy.config.use_cache = False
    return policy


def _timed_steps(policy, batches, step_loss, cuda: bool) -> float:
    """Mean seconds of the steps after the first (a warm-up)."""
    import torch

    optimizer = torch.optim.AdamW(policy.parameters(), lr=5e-6, fused=True if cuda else None)
    times = []
    for step, batch in enumerate(batches):
        if cuda:
            torch.cuda.synchronize()
        start = time.perf_counter()
        loss = step_loss(step, batch)
        loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        if cuda:
            torch.cuda.synchronize()
        if step:
            times.append(time.perf_counter() - start)
    return sum(times) / len(times)


def _autocast(cuda: bool):
    import torch

    return torch.autocast("cuda", dtype=torch.bfloat16) if cuda else contextlib.nullcontext()


def dpo_row(build_model, name, shape, args, device, precompute: bool, master: str) -> dict:
    import torch
    import torch.nn.functional as F

    cuda = device.startswith("cuda")
    generator = torch.Generator().manual_seed(2)
    prompt_len = args.seq_len // 4
    # pairs x (chosen, rejected): one prompt per pair, two completions.
    batches = [
        random_groups(generator, args.pairs, 2, args.seq_len, prompt_len).to(device)
        for _ in range(args.steps + 1)
    ]
    row = {"model": name, "precompute_ref_log_probs": precompute, "weights": master}
    if cuda:
        torch.cuda.reset_peak_memory_stats()
    reference = build_model(shape, device, torch.bfloat16 if cuda else torch.float32)

    def summed(model, ids):
        return per_token_log_probs(model, ids, prompt_len).sum(-1)

    with torch.inference_mode():
        start = time.perf_counter()
        ref = [summed(reference, ids).float() for ids in batches]
        if cuda:
            torch.cuda.synchronize()
        ref_seconds = time.perf_counter() - start
    if precompute:
        row["precompute_tokens_per_s"] = round(sum(b.numel() for b in batches) / ref_seconds, 1)
        del reference
        release()
        reference = None
    policy = _policy(build_model, shape, device, master)
    autocast = _autocast(cuda)

    def step_loss(step, ids):
        with autocast:
            logp = summed(policy, ids).view(args.pairs, 2)
        if precompute:
            ref_logp = ref[step].view(args.pairs, 2)
        else:
            with torch.inference_mode():
                ref_logp = summed(reference, ids).float()
            ref_logp = ref_logp.clone().view(args.pairs, 2)
        margin = (logp[:, 0] - ref_logp[:, 0]) - (logp[:, 1] - ref_logp[:, 1])
        return -F.logsigmoid(DPO_BETA * margin).mean()

    step_s = _timed_steps(policy, batches, step_loss, cuda)
    row["step_s"] = round(step_s, 3)
    row["tokens_per_s"] = round(args.pairs * 2 * args.seq_len / step_s, 1)
    if cuda:
        row["peak_gb"] = round(torch.cuda.max_memory_allocated() / 2**30, 2)
    return row


def grpo_row(build_model, name, shape, args, device, master: str, impl: str) -> dict:
    """One GRPO row; ``impl`` is ``trl`` or ``mirror``."""
    import torch

    cuda = device.startswith("cuda")
    generator = torch.Generator().manual_seed(3)
    prompt_len = args.seq_len // 4
    batches = []
    for _ in range(args.steps + 1):
        ids = random_groups(generator, 1, args.group, args.seq_len, prompt_len)
        advantages = group_advantages(torch.rand(args.group, generator=generator), args.group)
        batches.append((ids.to(device), advantages.to(device)))
    row = {"model": name, "weights": master, "group": args.group, "seq_len": args.seq_len}
    if cuda:
        torch.cuda.reset_peak_memory_stats()
    policy = _policy(build_model, shape, device, master)
    if impl == "trl":
        trl_loss = TrlGrpoLoss(policy, args.group, cuda)
        row["impl"], row["loss_type"] = trl_loss.impl, trl_loss.loss_type

        def step_loss(step, batch):
            return trl_loss(policy, batch[0], prompt_len, batch[1])
    else:
        autocast = _autocast(cuda)
        row["impl"] = "mirror of trl 1.16.0 GRPOTrainer._compute_loss"
        row["loss_type"] = GRPO_LOSS_TYPE

        def step_loss(step, batch):
            return mirror_grpo_loss(policy, batch[0], prompt_len, batch[1], autocast)

    step_s = _timed_steps(policy, batches, step_loss, cuda)
    row["step_s"] = round(step_s, 3)
    row["tokens_per_s"] = round(args.group * args.seq_len / step_s, 1)
    if cuda:
        row["peak_gb"] = round(torch.cuda.max_memory_allocated() / 2**30, 2)
    return row


def train_rows(kind: str, build_model, name, shape, args, device, into: list, **options) -> None:
    """The rows of one DPO mode or of the GRPO step: fp32 master weights where they fit, else
    (or after running out of memory) bf16. A GRPO step whose TRL loss fails for another reason
    than memory runs again with the mirror, and its row says why (``trl_error``)."""
    import torch

    rows = into
    masters = ["fp32", "bf16"]
    while masters:
        master = masters[0]
        base = {"model": name, "weights": master, **options}
        too_big = fp32_master_fits(shape, options.get("precompute_ref_log_probs") is False)
        if master == "fp32" and too_big:
            rows.append({**base, "skipped": too_big})
            print(json.dumps(rows[-1]), flush=True)
            masters.pop(0)
            continue
        try:
            if kind == "dpo":
                row = dpo_row(
                    build_model,
                    name,
                    shape,
                    args,
                    device,
                    options["precompute_ref_log_probs"],
                    master,
                )
            else:
                row = grpo_row(build_model, name, shape, args, device, master, options["impl"])
                if options.get("trl_error"):
                    row["trl_error"] = options["trl_error"]
        except torch.OutOfMemoryError as exc:
            rows.append({**base, "error": f"out of memory ({str(exc).splitlines()[0][:120]})"})
            print(json.dumps(rows[-1]), flush=True)
            release()
            masters.pop(0)
            continue
        except Exception as exc:
            if kind != "grpo" or options["impl"] != "trl":
                raise
            traceback.print_exc()
            options = {**options, "impl": "mirror", "trl_error": short_error(exc)}
            release()
            continue  # the same weights, with the mirror
        release()
        rows.append(row)
        print(json.dumps(row), flush=True)
        break  # this one ran: no bf16 row needed
