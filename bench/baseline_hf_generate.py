"""The named baseline of ``bench/sampling_speed.py``: the HF sampling path as it was before the
generation package (``src/codedpo/generate.py`` at commit c876378).

Rows (problem, sample) sorted by prompt length, cut into static batches of ``batch_size``, each
batch left-padded and run through ``model.generate`` to the end of its longest row, every row
with its own seeded Gumbel-max logits processor. Only the engine is kept here; the prompts, stop
tokens, seeds and decoding are the current shared ones, so both sides do the same work and their
samples can be compared token for token.
"""

from __future__ import annotations

from collections.abc import Sequence


def _row_sampler(seeds: Sequence[int], temperature: float, top_p: float, device):
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
            return scores.float() - noise.log()

    processors = LogitsProcessorList()
    if temperature != 1.0:
        processors.append(TemperatureLogitsWarper(temperature))
    if top_p < 1.0:
        processors.append(TopPLogitsWarper(top_p))
    processors.append(GumbelNoise())
    return processors


def _left_pad(rows: Sequence[Sequence[int]], pad_id: int, device):
    """What ``tokenizer.pad(..., padding_side="left")`` returned in the original."""
    import torch

    length = max(len(r) for r in rows)
    ids = torch.full((len(rows), length), pad_id, dtype=torch.long)
    mask = torch.zeros((len(rows), length), dtype=torch.long)
    for k, r in enumerate(rows):
        ids[k, length - len(r) :] = torch.tensor(list(r))
        mask[k, length - len(r) :] = 1
    return {"input_ids": ids.to(device), "attention_mask": mask.to(device)}


def baseline_token_ids(
    model,
    prompts: Sequence[Sequence[int]],
    requests,
    *,
    stop_ids: Sequence[int],
    max_new_tokens: int,
    temperature: float,
    top_p: float,
    batch_size: int,
    pad_id: int,
) -> list[list[int]]:
    """Generated token ids per request (rows that finish early are padded with ``pad_id``)."""
    import torch
    from transformers import GenerationConfig

    greedy = requests[0].seed is None
    gen_config = GenerationConfig(
        max_new_tokens=max_new_tokens,
        do_sample=False,
        num_beams=1,
        eos_token_id=list(stop_ids),
        pad_token_id=pad_id,
        bos_token_id=model.generation_config.bos_token_id,
    )
    model.generation_config = gen_config
    rows = list(range(len(requests)))
    rows.sort(key=lambda r: len(prompts[requests[r].problem]), reverse=True)
    out_ids: list[list[int]] = [[] for _ in requests]
    for start in range(0, len(rows), batch_size):
        batch = rows[start : start + batch_size]
        enc = _left_pad([prompts[requests[r].problem] for r in batch], pad_id, model.device)
        processors = None
        if not greedy:
            processors = _row_sampler(
                [requests[r].seed for r in batch], temperature, top_p, model.device
            )
        with torch.inference_mode():
            out = model.generate(**enc, generation_config=gen_config, logits_processor=processors)
        for r, ids in zip(batch, out[:, enc["input_ids"].shape[1] :].tolist(), strict=True):
            out_ids[r] = ids
    return out_ids
