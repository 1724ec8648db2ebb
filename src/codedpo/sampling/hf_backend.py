"""The transformers backend: any device, the default, and what CI runs.

Speed without giving up per-sample reproducibility:

- **Prefix sharing**: the ``n`` samples of a problem share one prefill of its prompt; the prompt's
  key/value cache is copied to the ``n`` rows (``Cache.batch_select_indices``).
- **Length buckets**: requests are admitted longest prompt first, so the prompts prefilled
  together have similar lengths and padding stays small.
- **No decoding of finished rows**: a row that reaches a stop token or its token budget leaves the
  batch at once (today's static batches decoded every row until the longest one finished).
- **Refill** (continuous batching on a ``DynamicCache``): when the running batch has shrunk to
  ``refill_fraction`` of ``batch_size``, the next requests are prefilled and merged into it, so
  the batch stays full until the work runs out. Left-padding columns that no row needs any more
  are trimmed from the cache.
- **No cache copy per token**: ``DynamicLayer.update`` concatenates, copying the whole cache at
  every step (a quarter of the time of the demo policy's sampling); the cache layers here grow
  their storage by half when full and write each new token in place.

Models whose cache is not made of plain ``DynamicLayer``s (sliding window, hybrid) keep the first
three and finish each batch before starting the next.

Sampling is Gumbel-max over the temperature / top-p distribution with one generator per sample,
seeded with :func:`codedpo.sampling.requests.sample_seed`: ``argmax(logits / T + Gumbel noise)``
over the nucleus is an exact draw from that distribution, and since a sample's noise comes from
its own generator, what it samples does not depend on the rows beside it, on when it was
admitted, or on the batch size (up to floating-point differences between batch shapes, which the
tests check do not change samples of fp32 models). transformers' own continuous batching
(``generate_batch``, ``ContinuousBatchingManager``) is not used: its sampler draws every row from
one global generator (``torch.multinomial`` in ``continuous_batching/model_runner.py``), so a
sample would depend on its batch.
"""

from __future__ import annotations

import functools
import inspect
import sys
from collections import deque
from collections.abc import Sequence

from codedpo.sampling.requests import Request

# Refill once the running batch is down to this share of batch_size: merging new rows copies the
# cache, so refilling after every finished row (1.0) copies it once per sample; on the demo
# policies 1.0 took 10-40% more CPU time than 0.5 or 0.75, which were within noise of each other.
REFILL_FRACTION = 0.5
# Compact the batch (drop finished rows, which decode on, ignored, until then) once this share
# of its rows has finished; 0 to 0.25 were within noise of each other on the demo policies.
COMPACT_FRACTION = 0.125


def load_model(model_path: str, device: str | None = None):
    """The model for generation: bf16 on CUDA, fp32 on CPU (tests, tiny models), eval mode.

    A full checkpoint or a LoRA adapter directory (merged into its base):
    :func:`codedpo.models.load.load_causal_lm`.
    """
    import torch

    from codedpo.models.load import load_causal_lm

    if device is None:
        device = "cuda" if torch.cuda.is_available() else "cpu"
    return load_causal_lm(model_path, dtype=generation_dtype(device), device=device).eval()


def generation_dtype(device: str):
    """The dtype both backends generate in: bf16 on CUDA, fp32 on the CPU."""
    import torch

    return torch.bfloat16 if device.startswith("cuda") else torch.float32


def _sampler(temperature: float, top_p: float):
    """The batch-level warpers; the Gumbel noise is added per row (see :func:`_gumbel`)."""
    from transformers import LogitsProcessorList
    from transformers.generation.logits_process import (
        TemperatureLogitsWarper,
        TopPLogitsWarper,
    )

    processors = LogitsProcessorList()
    if temperature != 1.0:
        processors.append(TemperatureLogitsWarper(temperature))
    if top_p < 1.0:
        processors.append(TopPLogitsWarper(top_p))
    return processors


def _gumbel(scores, generators):
    """``scores`` plus one standard Gumbel draw per token, each row from its own generator."""
    import torch

    tiny = torch.finfo(torch.float32).tiny
    noise = torch.stack(
        [
            torch.empty(scores.shape[-1], device=scores.device, dtype=torch.float32)
            .exponential_(generator=g)
            .clamp_(min=tiny)
            for g in generators
        ]
    )
    # -log(Exp(1)) is a standard Gumbel variable.
    return scores.float() - noise.log()


class _Batch:
    """The running rows: their cache, attention mask, positions, next-token logits and state."""

    def __init__(self, cache, mask, positions, logits, rows, generators) -> None:
        self.cache = cache
        self.mask = mask  # [rows, cache length], 0 on left padding
        self.positions = positions  # [rows], position of each row's last token
        self.logits = logits  # [rows, vocab], for the token each row samples next
        self.rows = rows  # request indices
        self.generators = generators  # one per row (empty list when greedy)
        # Finished rows stay (decoding on, ignored) until the batch is compacted.
        self.alive = [True] * len(rows)

    def __len__(self) -> int:
        return len(self.rows)

    def alive_count(self) -> int:
        return sum(self.alive)

    def keep(self, keep: list[int]) -> None:
        """Drop every row not in ``keep`` (positions into the current rows)."""
        import torch

        index = torch.tensor(keep, device=self.mask.device)
        self.cache.batch_select_indices(index)
        self.mask = self.mask[index]
        self.positions = self.positions[index]
        self.logits = self.logits[index]
        self.rows = [self.rows[k] for k in keep]
        self.alive = [self.alive[k] for k in keep]
        if self.generators:
            self.generators = [self.generators[k] for k in keep]


@functools.cache
def _growing_layer():
    """A ``DynamicLayer`` that appends in place into storage grown by half when full."""
    from transformers.cache_utils import DynamicLayer

    class GrowingLayer(DynamicLayer):
        def lazy_initialization(self, key_states, value_states) -> None:
            super().lazy_initialization(key_states, value_states)
            self._keys = self._values = None
            self._length = 0

        def _expose(self) -> None:
            self.keys = self._keys[:, :, : self._length]
            self.values = self._values[:, :, : self._length]

        def set(self, keys, values, need: int = 0) -> None:
            """Replace the contents (after a merge or a trim), with room for ``need`` tokens
            at least and for half as many again as it holds."""
            import torch

            length = keys.shape[-2]
            room = max(length + max(length // 2, 16), need)
            shape = (*keys.shape[:2], room, keys.shape[-1])
            self._keys = torch.empty(shape, dtype=keys.dtype, device=keys.device)
            self._values = torch.empty(shape, dtype=values.dtype, device=values.device)
            self._keys[:, :, :length] = keys
            self._values[:, :, :length] = values
            self._length = length
            self._expose()

        def update(self, key_states, value_states, *args, **kwargs):
            if not self.is_initialized:
                self.lazy_initialization(key_states, value_states)
            if self._keys is None:
                self.set(key_states, value_states)
                return self.keys, self.values
            end = self._length + key_states.shape[-2]
            if end > self._keys.shape[-2]:
                self.set(self.keys, self.values, need=end)
            self._keys[:, :, self._length : end] = key_states
            self._values[:, :, self._length : end] = value_states
            self._length = end
            self._expose()
            return self.keys, self.values

        def get_seq_length(self) -> int:
            return self._length if self.is_initialized and self._keys is not None else 0

        def batch_select_indices(self, indices) -> None:
            if self.get_seq_length() > 0:
                self._keys = self._keys[indices, ...]
                self._values = self._values[indices, ...]
                self._expose()

        def _unsupported(self, *args, **kwargs):
            raise NotImplementedError("GrowingLayer only serves codedpo's generation loop")

        crop = batch_repeat_interleave = reorder_cache = reset = _unsupported

    return GrowingLayer


def _new_cache(model):
    """A ``DynamicCache`` for ``model``; growing layers instead of plain ``DynamicLayer``s."""
    from transformers import DynamicCache
    from transformers.cache_utils import DynamicLayer

    cache = DynamicCache(config=model.config)
    layers = getattr(cache, "layers", None)
    if layers and all(type(layer) is DynamicLayer for layer in layers):
        cache.layers[:] = [_growing_layer()() for _ in layers]
    return cache


def _growing(cache) -> bool:
    """Whether refills (and trims) can rewrite this cache: all its layers are growing ones."""
    layers = getattr(cache, "layers", None)
    return bool(layers) and all(isinstance(layer, _growing_layer()) for layer in layers)


def _cache_argument(model) -> str:
    """transformers 5.x names the forward's cache argument ``cache`` (``past_key_values``, which
    4.x uses, is deprecated there)."""
    return "cache" if "cache" in inspect.signature(model.forward).parameters else "past_key_values"


def _left_pad(layer_tensor, columns: int):
    import torch.nn.functional as F

    return F.pad(layer_tensor, (0, 0, columns, 0)) if columns else layer_tensor


def _merge(running: _Batch, new: _Batch) -> _Batch:
    """One batch of both, left-padded to a common cache length (growing-layer caches)."""
    import torch
    import torch.nn.functional as F

    length = max(running.mask.shape[1], new.mask.shape[1])
    pad_old, pad_new = length - running.mask.shape[1], length - new.mask.shape[1]
    for old_layer, new_layer in zip(running.cache.layers, new.cache.layers, strict=True):
        old_layer.set(
            torch.cat([_left_pad(old_layer.keys, pad_old), _left_pad(new_layer.keys, pad_new)]),
            torch.cat([_left_pad(old_layer.values, pad_old), _left_pad(new_layer.values, pad_new)]),
        )
    running.mask = torch.cat([F.pad(running.mask, (pad_old, 0)), F.pad(new.mask, (pad_new, 0))])
    running.positions = torch.cat([running.positions, new.positions])
    running.logits = torch.cat([running.logits, new.logits])
    running.rows += new.rows
    running.alive += new.alive
    running.generators += new.generators
    return running


def _compact(batch: _Batch, trim: bool) -> list[int]:
    """Drop the finished rows (and, with ``trim``, padding no row needs); return who stayed."""
    keep = [k for k, alive in enumerate(batch.alive) if alive]
    if len(keep) < len(batch):
        batch.keep(keep)
        if trim:
            _trim(batch)
    return keep


def _trim(batch: _Batch) -> None:
    """Drop the leading cache columns that are padding in every row."""
    lead = int((batch.mask.cumsum(-1) == 0).sum(-1).min())
    if lead:
        for layer in batch.cache.layers:
            layer.set(layer.keys[:, :, lead:], layer.values[:, :, lead:])
        batch.mask = batch.mask[:, lead:]


def _prefill(model, prompts, requests, rows: list[int], pad_id: int) -> _Batch:
    """Prefill each distinct prompt among ``rows`` once, then copy its cache to its rows."""
    import torch

    device = model.device
    problems: list[int] = []
    for r in rows:
        if requests[r].problem not in problems:
            problems.append(requests[r].problem)
    length = max(len(prompts[p]) for p in problems)
    ids = torch.full((len(problems), length), pad_id, dtype=torch.long)
    mask = torch.zeros((len(problems), length), dtype=torch.long)
    for k, p in enumerate(problems):
        ids[k, length - len(prompts[p]) :] = torch.tensor(prompts[p])
        mask[k, length - len(prompts[p]) :] = 1
    ids, mask = ids.to(device), mask.to(device)
    positions = (mask.cumsum(-1) - 1).clamp(min=0)
    cache = _new_cache(model)
    out = model(
        input_ids=ids,
        attention_mask=mask,
        position_ids=positions,
        use_cache=True,
        logits_to_keep=1,
        **{_cache_argument(model): cache},
    )
    index = torch.tensor([problems.index(requests[r].problem) for r in rows], device=device)
    cache.batch_select_indices(index)
    generators = [
        torch.Generator(device=device).manual_seed(requests[r].seed)
        for r in rows
        if requests[r].seed is not None
    ]
    return _Batch(
        cache,
        mask[index],
        positions[index, -1],
        out.logits[index, -1, :].float(),
        list(rows),
        generators,
    )


def generate_token_ids(
    model,
    prompts: Sequence[Sequence[int]],
    requests: Sequence[Request],
    *,
    stop_ids: Sequence[int],
    max_new_tokens: int,
    temperature: float,
    top_p: float,
    batch_size: int,
    pad_id: int,
    refill_fraction: float = REFILL_FRACTION,
    progress: bool = True,
) -> list[list[int]]:
    """Generated token ids of every request (a stop token, if reached, ends its list)."""
    import torch
    from tqdm.auto import tqdm

    greedy = all(r.seed is None for r in requests)
    if not greedy and any(r.seed is None for r in requests):
        raise ValueError("requests mix greedy and seeded sampling")
    warpers = None if greedy else _sampler(temperature, top_p)
    stops = torch.tensor(sorted(set(stop_ids)), device=model.device)
    cache_argument = _cache_argument(model)
    # Longest prompts first, a problem's samples together: similar lengths share a prefill.
    pending = deque(
        sorted(range(len(requests)), key=lambda r: (-len(prompts[requests[r].problem]), r))
    )
    generated: list[list[int]] = [[] for _ in requests]
    batch: _Batch | None = None
    refill = True
    with (
        torch.inference_mode(),
        tqdm(
            total=len(requests), desc="generate", unit="seq", file=sys.stderr, disable=not progress
        ) as bar,
    ):
        while pending or batch is not None:
            alive = batch.alive_count() if batch is not None else 0
            room = batch_size - alive
            if pending and (
                batch is None or (refill and room > 0 and alive <= refill_fraction * batch_size)
            ):
                take = [pending.popleft() for _ in range(min(room, len(pending)))]
                new = _prefill(model, prompts, requests, take, pad_id)
                if batch is None:
                    batch = new
                    refill = _growing(batch.cache)
                else:
                    _compact(batch, trim=True)
                    batch = _merge(batch, new)
            scores = batch.logits
            if not greedy:
                scores = _gumbel(warpers(None, scores), batch.generators)
            tokens = scores.argmax(-1)
            done = torch.isin(tokens, stops).tolist()
            for k, (row, token) in enumerate(zip(batch.rows, tokens.tolist(), strict=True)):
                if not batch.alive[k]:
                    continue
                generated[row].append(token)
                if done[k] or len(generated[row]) >= max_new_tokens:
                    batch.alive[k] = False
                    bar.update(1)
            alive = batch.alive_count()
            if not alive:
                batch = None
                continue
            # Finished rows leave the batch once they are COMPACT_FRACTION of it: a compaction
            # copies the cache, so rows are not dropped one at a time.
            if len(batch) - alive >= max(1, COMPACT_FRACTION * len(batch)):
                tokens = tokens[torch.tensor(_compact(batch, trim=refill), device=tokens.device)]
            batch.mask = torch.cat([batch.mask, batch.mask.new_ones((len(batch), 1))], dim=1)
            batch.positions = batch.positions + 1
            out = model(
                input_ids=tokens[:, None],
                attention_mask=batch.mask,
                position_ids=batch.positions[:, None],
                use_cache=True,
                **{cache_argument: batch.cache},
            )
            batch.logits = out.logits[:, -1, :].float()
    return generated
