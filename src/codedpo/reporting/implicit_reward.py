"""DPO's implicit reward against the rule-based reward (the paper's Figure 1 and Appendix A).

A DPO-trained policy ``pi_theta`` defines an implicit reward for a response ``y`` to a prompt ``x``:
``r(x, y) = beta * log(pi_theta(y|x) / pi_ref(y|x))``, with ``pi_ref`` the model DPO started from.
The paper argues that, unlike the rule-based reward of Le et al. (2022) (+1 passes every test,
-0.3 fails a test, -0.6 runtime error, -1 compile error), this reward can also order two
*failing* responses, e.g. rank a wrong answer above a crash. This module measures how far it does
on our own on-policy samples:

- per response: status, tests passed, the rule-based reward, both sequence log-probabilities and
  the implicit reward;
- per problem, every pair of distinct responses with a ground-truth order (different rule
  reward or different fraction of tests passed), with both reward differences;
- summary statistics: how often the implicit reward ranks lower the response with fewer passed
  tests, or the one with the more severe error, and the Spearman rank correlation between the
  implicit reward and the fraction of tests passed.

Responses are tokenised as TRL's ``DPOTrainer`` tokenises a conversational pair: the problem as
one user turn through the tokenizer's chat template with the generation prompt, the response as
the assistant turn, the completion starting where the two tokenisations diverge; sequences longer
than the training ``max_length`` are cut at the end (TRL's ``keep_start``). Log-probabilities are
summed over the completion tokens, as in the DPO loss.

Command line (``beta`` and ``max_length`` default to the values in the checkpoint's
``train_summary.json``)::

    codedpo analyze-rewards --problems results/problems/train.jsonl \\
        --samples results/samples/demo-codeqwen/shard*.jsonl \\
        --executions results/executions/demo-codeqwen/shard*.jsonl \\
        --policy-model results/checkpoints/demo-codeqwen/dpo-demo-codeqwen \\
        --ref-model results/models/demo-codeqwen \\
        --out-responses rewards.csv --out-pairs reward_pairs.csv \\
        --out-summary reward_summary.json --out-figure reward_differences.png
"""

from __future__ import annotations

import datetime as dt
import itertools
import logging
import math
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pandas as pd

from codedpo.io import (
    InputError,
    atomic_write,
    read_json,
    read_jsonl,
    require,
    sha256_file,
    write_json,
)
from codedpo.problems.load import load_problems
from codedpo.records import NOT_THE_MODELS, RULE_REWARD, join_executions, load_records
from codedpo.verbs import command_parser

log = logging.getLogger(__name__)

# Fewer than three distinct responses give a within-problem rank correlation of only +-1 or 0.
MIN_RESPONSES_FOR_SPEARMAN = 3


# --- inputs -------------------------------------------------------------------------------


def load_training_pairs(path: str | Path) -> set[frozenset[str]]:
    """The ``{chosen_id, rejected_id}`` of every DPO pair (pairs.jsonl, docs/formats.md)."""
    out = set()
    for lineno, record in read_jsonl(path):
        where = f"{path}:{lineno}"
        chosen = str(require(record, "chosen_id", (str, int), where))
        rejected = str(require(record, "rejected_id", (str, int), where))
        out.add(frozenset((chosen, rejected)))
    return out


def load_responses(
    problems_path: str | Path, sample_paths: Sequence[str | Path], execution_paths: Sequence
) -> pd.DataFrame:
    """One row per sample with its verdict, in the samples' order: ``task_id, sample_id, prompt,
    raw, status, passed, total, frac_passed, rule_reward``. Verdicts that are not the model's
    (:data:`codedpo.records.NOT_THE_MODELS`) are dropped; the join is the pairs' own
    (:func:`codedpo.records.join_executions`), so a sample without an execution record (or the
    reverse) is the same :class:`InputError`."""
    problems = load_problems(problems_path)
    joined = join_executions(
        problems, load_records(sample_paths), load_records(execution_paths)
    )
    rows = []
    for sample_id, sample, status, record in joined:
        if status in NOT_THE_MODELS:
            continue
        task_id = sample["task_id"]
        total = int(record.get("total") or 0)
        passed = int(record.get("passed") or 0)
        rows.append(
            {
                "task_id": task_id,
                "sample_id": sample_id,
                "prompt": problems[task_id]["prompt"],
                "raw": sample["raw"],
                "status": status,
                "passed": passed,
                "total": total,
                # A response that never ran its tests (syntax error) passed none of them.
                "frac_passed": passed / total if total else 0.0,
                "rule_reward": RULE_REWARD[status],
            }
        )
    return pd.DataFrame(rows)


# --- log-probabilities ------------------------------------------------------------------------


def tokenize_pair(
    tokenizer, prompt: str, response: str, max_length: int | None = None
) -> tuple[list[int], int]:
    """``(input_ids, completion_start)`` of one response, as codedpo.training.train gives it to
    TRL's DPOTrainer: the generation prompt, then the response as sampled and one end-of-turn token
    (codedpo.models.chat), cut at ``max_length`` as DPO's collator cuts it."""
    from codedpo.models import chat

    messages = [{"role": "user", "content": prompt}]
    prompt_ids = chat.prompt_ids(tokenizer, messages)
    full_ids = prompt_ids + chat.completion_ids(tokenizer, messages, response)
    start = len(prompt_ids)
    if max_length is not None:
        full_ids = full_ids[:max_length]
    return full_ids, min(start, len(full_ids))


def sequence_logprobs(
    model, sequences: Sequence[tuple[list[int], int]], *, batch_size: int = 8, pad_id: int = 0
) -> list[float]:
    """Sum of ``log p(token | prefix)`` over each sequence's tokens from ``completion_start`` on.

    Batches of similar length (sorted, right-padded, masked), no gradients. A sequence with no
    completion tokens (cut away by ``max_length``) sums to 0.
    """
    import torch

    device = next(model.parameters()).device
    order = sorted(range(len(sequences)), key=lambda i: len(sequences[i][0]), reverse=True)
    out = [0.0] * len(sequences)
    with torch.no_grad():
        for lo in range(0, len(order), batch_size):
            batch = [sequences[i] for i in order[lo : lo + batch_size]]
            width = max(len(ids) for ids, _ in batch)
            input_ids = torch.full((len(batch), width), pad_id, dtype=torch.long)
            attention = torch.zeros((len(batch), width), dtype=torch.long)
            # mask[b, t] marks the tokens at t + 1 that belong to the completion.
            mask = torch.zeros((len(batch), max(width - 1, 1)), dtype=torch.bool)
            for row, (ids, start) in enumerate(batch):
                input_ids[row, : len(ids)] = torch.tensor(ids, dtype=torch.long)
                attention[row, : len(ids)] = 1
                if len(ids) > max(start, 1):
                    mask[row, max(start, 1) - 1 : len(ids) - 1] = True
            input_ids, attention, mask = (t.to(device) for t in (input_ids, attention, mask))
            logits = model(input_ids=input_ids, attention_mask=attention).logits[:, :-1]
            # fp32 (bf16 logits lose the small differences); gather minus logsumexp is the
            # log-softmax of the target tokens without a second vocabulary-sized tensor.
            logits = logits.float()
            targets = logits.gather(-1, input_ids[:, 1:].unsqueeze(-1)).squeeze(-1)
            token_logps = targets - torch.logsumexp(logits, dim=-1)
            sums = (token_logps * mask[:, : token_logps.shape[1]]).sum(-1).tolist()
            for k, i in enumerate(order[lo : lo + batch_size]):
                out[i] = float(sums[k])
    return out


def _load_model(path: str, device: str):
    import torch

    from codedpo.models.load import load_causal_lm

    # bf16 halves memory on GPUs (the log-softmax above runs in fp32); CPUs compute in fp32.
    # A LoRA adapter directory loads merged into its base (codedpo.models.load).
    dtype = torch.bfloat16 if device.startswith("cuda") else torch.float32
    return load_causal_lm(path, dtype=dtype, device=device).eval()


def score_responses(
    responses: pd.DataFrame,
    policy_model: str,
    ref_model: str,
    *,
    beta: float,
    max_length: int | None = None,
    batch_size: int = 8,
    threads: int = 1,
    device: str | None = None,
) -> pd.DataFrame:
    """Add ``completion_tokens, logp_policy, logp_ref, implicit_reward`` to ``responses``.

    Each distinct ``(prompt, raw)`` is scored once; the two models are loaded one after the other
    so only one is in memory at a time. The tokenizer is the reference's (DPO trains with it).
    """
    import torch

    from codedpo.models.chat import load_tokenizer

    torch.set_num_threads(threads)
    if device is None:
        device = "cuda" if torch.cuda.is_available() else "cpu"
    tokenizer = load_tokenizer(ref_model)
    if tokenizer.chat_template is None:
        raise InputError(f"{ref_model}: the tokenizer has no chat template")
    pad_id = tokenizer.pad_token_id
    if pad_id is None:
        pad_id = tokenizer.eos_token_id or 0
    keys = list(dict.fromkeys(zip(responses["prompt"], responses["raw"], strict=True)))
    sequences = [tokenize_pair(tokenizer, p, r, max_length) for p, r in keys]
    logps = {}
    for name, path in (("ref", ref_model), ("policy", policy_model)):
        started = time.monotonic()
        model = _load_model(path, device)
        logps[name] = sequence_logprobs(model, sequences, batch_size=batch_size, pad_id=pad_id)
        del model
        if device.startswith("cuda"):
            torch.cuda.empty_cache()
        log.info("%s: %d sequences in %.1f s", path, len(keys), time.monotonic() - started)
    index = {key: i for i, key in enumerate(keys)}
    rows = [index[key] for key in zip(responses["prompt"], responses["raw"], strict=True)]
    out = responses.copy()
    out["completion_tokens"] = [len(sequences[i][0]) - sequences[i][1] for i in rows]
    out["logp_policy"] = [logps["policy"][i] for i in rows]
    out["logp_ref"] = [logps["ref"][i] for i in rows]
    out["implicit_reward"] = beta * (out["logp_policy"] - out["logp_ref"])
    return out


# --- pairs and statistics ---------------------------------------------------------------------


def _distinct(responses: pd.DataFrame) -> pd.DataFrame:
    """One row per distinct response text of a problem (samples often repeat one another)."""
    counts = responses.groupby(["task_id", "raw"], sort=False).size().rename("copies")
    first = responses.drop_duplicates(["task_id", "raw"]).set_index(["task_id", "raw"])
    return first.join(counts).reset_index()


def reward_pairs(
    responses: pd.DataFrame, trained: set[frozenset[str]] | None = None
) -> pd.DataFrame:
    """Every pair of distinct responses to one problem that the tests order.

    A pair is oriented so that ``a`` is the better response: higher rule reward, then the larger
    fraction of tests passed. Pairs equal on both have no ground truth and are left out. The
    differences are ``a - b``: ``rule_diff >= 0``; ``frac_diff`` can be negative (a wrong answer
    that passed fewer tests than a crash), ``implicit_diff`` is negative where DPO disagrees.
    ``in_training`` marks the pairs DPO was trained on (``trained``: sets of two sample ids; a
    pair of texts counts when any of their copies formed a training pair).
    """
    copies: dict[tuple[str, str], set[str]] = {}
    for task_id, raw, sample_id in zip(
        responses["task_id"], responses["raw"], responses["sample_id"], strict=True
    ):
        copies.setdefault((task_id, raw), set()).add(str(sample_id))
    trained_ids = {frozenset(pair) for pair in trained or ()}
    by_id: dict[str, set[frozenset[str]]] = {}
    for pair in trained_ids:
        for sample_id in pair:
            by_id.setdefault(sample_id, set()).add(pair)
    columns = [
        "task_id", "a_id", "b_id", "a_status", "b_status", "kind",
        "a_frac_passed", "b_frac_passed", "a_rule_reward", "b_rule_reward",
        "a_implicit_reward", "b_implicit_reward", "rule_diff", "frac_diff", "implicit_diff",
        "in_training",
    ]  # fmt: skip
    rows = []
    for task_id, group in _distinct(responses).groupby("task_id", sort=False):
        records = group.to_dict("records")
        for x, y in itertools.combinations(records, 2):
            kx = (x["rule_reward"], x["frac_passed"])
            ky = (y["rule_reward"], y["frac_passed"])
            if kx == ky:
                continue
            a, b = (x, y) if kx > ky else (y, x)
            if b["status"] == "passed":
                kind = "pass-pass"  # cannot happen: equal keys; kept for completeness
            elif a["status"] == "passed":
                kind = "pass-fail"
            elif a["status"] == b["status"]:
                kind = "fail-fail (same error)"
            else:
                kind = "fail-fail (different errors)"
            ids_a = copies[(task_id, a["raw"])]
            ids_b = copies[(task_id, b["raw"])]
            in_training = any(
                pair & ids_b for sample_id in ids_a for pair in by_id.get(sample_id, ())
            )
            rows.append(
                {
                    "task_id": task_id,
                    "a_id": a["sample_id"],
                    "b_id": b["sample_id"],
                    "a_status": a["status"],
                    "b_status": b["status"],
                    "kind": kind,
                    "a_frac_passed": a["frac_passed"],
                    "b_frac_passed": b["frac_passed"],
                    "a_rule_reward": a["rule_reward"],
                    "b_rule_reward": b["rule_reward"],
                    "a_implicit_reward": a["implicit_reward"],
                    "b_implicit_reward": b["implicit_reward"],
                    "rule_diff": a["rule_reward"] - b["rule_reward"],
                    "frac_diff": a["frac_passed"] - b["frac_passed"],
                    "implicit_diff": a["implicit_reward"] - b["implicit_reward"],
                    "in_training": in_training,
                }
            )
    return pd.DataFrame(rows, columns=columns)


def spearman(x: Sequence[float], y: Sequence[float]) -> float:
    """Spearman's rank correlation (average ranks for ties); NaN when either side is constant."""
    rx = pd.Series(list(x), dtype=float).rank()
    ry = pd.Series(list(y), dtype=float).rank()
    if len(rx) < 2 or rx.nunique() < 2 or ry.nunique() < 2:
        return math.nan
    return float(rx.corr(ry))


def _agreement(pairs: pd.DataFrame, signed_truth: pd.Series) -> dict[str, Any]:
    """How often the implicit reward orders a pair as ``signed_truth`` (its sign) does."""
    truth = signed_truth[signed_truth != 0]
    implicit = pairs.loc[truth.index, "implicit_diff"]
    same = int(((implicit * truth) > 0).sum())
    opposite = int(((implicit * truth) < 0).sum())
    n = len(truth)
    return {
        "pairs": n,
        # The worse response (fewer tests / more severe error) gets the lower implicit reward.
        "ranked_lower": same / n if n else None,
        "ranked_higher": opposite / n if n else None,
        "ties": n - same - opposite,
    }


def summarize(responses: pd.DataFrame, pairs: pd.DataFrame, examples: int = 3) -> dict[str, Any]:
    """The summary statistics written to the JSON (see the module docstring)."""
    distinct = _distinct(responses)
    failing = pairs["b_status"].ne("passed") & pairs["a_status"].ne("passed")
    trained = pairs["in_training"].astype(bool)
    within = []
    for _, group in distinct.groupby("task_id", sort=False):
        if len(group) >= MIN_RESPONSES_FOR_SPEARMAN:
            rho = spearman(group["implicit_reward"], group["frac_passed"])
            if not math.isnan(rho):
                within.append(rho)
    fail_fail = pairs[failing & pairs["rule_diff"].ne(0)]
    worst = fail_fail.sort_values("implicit_diff").head(examples)
    return {
        "responses": int(len(responses)),
        "distinct_responses": int(len(distinct)),
        "problems": int(responses["task_id"].nunique()),
        "status_counts": {k: int(v) for k, v in responses["status"].value_counts().items()},
        "pairs": int(len(pairs)),
        "pair_kinds": {k: int(v) for k, v in pairs["kind"].value_counts().items()},
        # Pairs the rule-based reward orders: does the implicit reward order them the same way?
        "more_severe_ranked_lower": _agreement(pairs, pairs["rule_diff"]),
        # The same among two failing responses with different errors (the paper's case).
        "more_severe_ranked_lower_failing": _agreement(
            pairs[failing], pairs.loc[failing, "rule_diff"]
        ),
        "fewer_passed_ranked_lower": _agreement(pairs, pairs["frac_diff"]),
        # Pairs DPO never saw: the ranking is learnt, not memorised.
        "pairs_in_training": int(pairs["in_training"].sum()),
        "fewer_passed_ranked_lower_held_out": _agreement(
            pairs[~trained], pairs.loc[~trained, "frac_diff"]
        ),
        "fewer_passed_ranked_lower_failing": _agreement(
            pairs[failing], pairs.loc[failing, "frac_diff"]
        ),
        "spearman_implicit_vs_frac_passed": _nan_none(
            spearman(distinct["implicit_reward"], distinct["frac_passed"])
        ),
        "spearman_implicit_vs_frac_passed_within_problem": {
            "mean": _nan_none(sum(within) / len(within)) if within else None,
            "problems": len(within),
        },
        "spearman_implicit_vs_rule_reward": _nan_none(
            spearman(distinct["implicit_reward"], distinct["rule_reward"])
        ),
        "mean_implicit_reward_by_status": {
            k: float(v) for k, v in distinct.groupby("status")["implicit_reward"].mean().items()
        },
        "failing_pair_examples": worst[
            ["task_id", "a_id", "b_id", "a_status", "b_status", "rule_diff", "implicit_diff"]
        ].to_dict("records"),
    }


def _nan_none(value: float) -> float | None:
    return None if value is None or math.isnan(value) else float(value)


# --- command line ----------------------------------------------------------------------------


def _training_value(policy_model: str, key: str) -> Any:
    summary = Path(policy_model) / "train_summary.json"
    if not summary.exists():
        return None
    return read_json(summary).get("training_args", {}).get(key)


RESPONSE_COLUMNS = [
    "task_id", "sample_id", "status", "passed", "total", "frac_passed", "rule_reward",
    "completion_tokens", "logp_policy", "logp_ref", "implicit_reward",
]  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    parser = command_parser("analyze-rewards", __doc__)
    parser.add_argument("--problems", required=True, help="problems JSONL (the prompts)")
    parser.add_argument("--samples", required=True, nargs="+", help="samples JSONL files")
    parser.add_argument("--executions", required=True, nargs="+", help="execution JSONL files")
    parser.add_argument(
        "--train-pairs", default=None, help="the pairs.jsonl DPO trained on (marks those pairs)"
    )
    parser.add_argument("--policy-model", required=True, help="the DPO-trained checkpoint")
    parser.add_argument("--ref-model", required=True, help="the model DPO started from")
    parser.add_argument(
        "--beta", type=float, default=None, help="default: the checkpoint's training beta"
    )
    parser.add_argument(
        "--max-length", type=int, default=None, help="default: the checkpoint's max_length"
    )
    parser.add_argument("--batch-size", type=int, default=8, help="sequences per forward pass")
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads")
    parser.add_argument("--label", default=None, help="policy name for the figure's title")
    parser.add_argument("--out-responses", required=True, help="per-response rewards CSV")
    parser.add_argument("--out-pairs", required=True, help="per-problem pairwise differences CSV")
    parser.add_argument("--out-summary", required=True, help="summary statistics JSON")
    parser.add_argument("--out-figure", default=None, help="Figure-1-style plot (PNG/PDF/SVG)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")

    beta = args.beta if args.beta is not None else _training_value(args.policy_model, "beta")
    if beta is None:
        raise InputError(f"{args.policy_model}: no train_summary.json with a beta; give --beta")
    max_length = args.max_length or _training_value(args.policy_model, "max_length")
    responses = load_responses(args.problems, args.samples, args.executions)
    if responses.empty:
        raise InputError("no responses with a verdict in the samples")
    started = time.monotonic()
    responses = score_responses(
        responses,
        args.policy_model,
        args.ref_model,
        beta=float(beta),
        max_length=max_length,
        batch_size=args.batch_size,
        threads=args.threads,
    )
    seconds = time.monotonic() - started
    trained = load_training_pairs(args.train_pairs) if args.train_pairs else None
    pairs = reward_pairs(responses, trained)
    summary = summarize(responses, pairs)
    summary.update(
        {
            "policy_model": args.policy_model,
            "ref_model": args.ref_model,
            "beta": float(beta),
            "max_length": max_length,
            "rule_reward": RULE_REWARD,
            "inputs": {
                "samples": {p: sha256_file(p) for p in args.samples},
                "executions": {p: sha256_file(p) for p in args.executions},
            },
            "scoring_seconds": round(seconds, 2),
            "date": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        }
    )
    with atomic_write(args.out_responses) as fh:
        responses[RESPONSE_COLUMNS].to_csv(fh, index=False, float_format="%.10g")
    with atomic_write(args.out_pairs) as fh:
        pairs.to_csv(fh, index=False, float_format="%.10g")
    write_json(args.out_summary, summary)
    if args.out_figure:
        from codedpo.reporting.plots import plot_reward_differences

        plot_reward_differences(responses, pairs, args.out_figure, title=args.label)
    lower = summary["more_severe_ranked_lower"]["ranked_lower"]
    print(
        f"{len(responses)} responses, {len(pairs)} pairs; the worse response ranked lower in "
        f"{lower if lower is None else round(lower, 3)} of the rule-ordered pairs; Spearman "
        f"(implicit, fraction passed) {summary['spearman_implicit_vs_frac_passed']}",
        file=sys.stderr,
    )
    return 0
