"""Each stage's measured cost per problem and per sample, from a finished run's benchmarks/.

Reads the ``benchmark:`` files every expensive rule writes (``benchmarks/<rule>/...tsv``:
wall seconds and CPU seconds of the job) and counts what each job processed from the run's
outputs (problems, samples, training examples). Prints one Markdown table; ``--json`` also
writes the numbers. With ``--paper`` it multiplies the CPU-side per-unit costs by the paper
config's counts: an *extrapolation*, labelled so, valid only for the stages whose cost does
not depend on the model (see the README's rehearsal section).

    python scripts/stage_costs.py --workdir . [--results DIR] [--json costs.json] [--paper]

``--results`` is the experiment's folder (the config's ``results``); the default config keeps its
timings in ``benchmarks/``, every other experiment in ``<results>/benchmarks/``.
"""

from __future__ import annotations

import argparse
import csv
import json
import sys
from collections import defaultdict
from pathlib import Path

# Sizes of the paper's evaluation sets (the real files in ../shared/benchmarks/) and its data.
PAPER = {
    "benchmark_problems": {"humaneval": 164, "humaneval_plus": 164, "mbpp": 500, "mbpp_plus": 378,
                           "leetcode_new": 228},  # fmt: skip
    "train_problems": 3000,  # 1500 LeetCodeDataset + 1500 Codeforces, before filtering
    "samples_per_problem": 8,
    "models": 3,
    "eval_variants": 3 * 3 + 2,  # base, RFT, DPO for 3 models + the CodeQwen/DeepSeek swap
    "dpo_runs": 3 + 2,
    "rft_runs": 3,
}


def _lines(path: Path) -> int:
    with path.open(encoding="utf-8") as fh:
        return sum(1 for line in fh if line.strip())


def _job_time(tsv: Path) -> tuple[float, float]:
    with tsv.open(encoding="utf-8") as fh:
        row = next(csv.DictReader(fh, delimiter="\t"))
    return float(row["s"]), float(row["cpu_time"])


def units_of(rule: str, parts: list[str], results: Path) -> tuple[str, int] | None:
    """What one job of ``rule`` (its benchmark file's path parts) processed: (unit, count)."""
    if rule == "build_demo_model":
        return "policy", 1
    if rule in ("sample_responses", "execute_samples"):
        policy, shard = parts[0], parts[1].removesuffix(".tsv")
        return "sample", _lines(results / "samples" / policy / f"{shard}.jsonl")
    if rule == "compute_expected":
        return "problem", _lines(results / "problems" / f"{parts[0].removesuffix('.tsv')}.jsonl")
    if rule == "filter_train_problems":
        return "problem", sum(_lines(p) for p in (results / "problems/train_sources").glob("*"))
    if rule == "train_dpo":
        source = parts[1].removesuffix(".tsv").removeprefix("dpo-")
        return "pair", _lines(results / "pairs" / source / "pairs.jsonl")
    if rule == "train_rft":
        return "example", _lines(results / "pairs" / parts[0] / "rft.jsonl")
    if rule in ("generate_eval", "execute_eval"):
        policy, variant, bench = parts[0], parts[1], parts[2].removesuffix(".tsv")
        return "sample", _lines(results / "eval" / policy / variant / bench / "samples.jsonl")
    if rule == "analyze_implicit_reward":
        summary = results / "analysis" / parts[0].removesuffix(".tsv") / "reward_summary.json"
        return "response", json.loads(summary.read_text())["responses"]
    return None


def timings_dir(workdir: Path, results: str = "results") -> Path:
    """Where an experiment's ``benchmark:`` files are (as the workflow puts them)."""
    return workdir / ("benchmarks" if results == "results" else f"{results}/benchmarks")


def stage_costs(workdir: Path, results: str = "results") -> list[dict]:
    """Per rule: jobs, wall and CPU seconds, units processed, CPU seconds per unit."""
    bench = timings_dir(workdir, results)
    results = workdir / results
    totals: dict[str, dict] = defaultdict(lambda: {"jobs": 0, "wall_s": 0.0, "cpu_s": 0.0})
    for tsv in sorted(bench.rglob("*.tsv")):
        rule, *parts = tsv.relative_to(bench).parts
        wall, cpu = _job_time(tsv)
        row = totals[rule]
        row["jobs"] += 1
        row["wall_s"] += wall
        row["cpu_s"] += cpu
        got = units_of(rule, parts, results)
        if got is not None:
            row["unit"] = got[0]
            row["units"] = row.get("units", 0) + got[1]
    out = []
    for rule, row in totals.items():
        units = row.get("units") or 0
        out.append(
            {
                "rule": rule,
                **row,
                "cpu_s_per_unit": row["cpu_s"] / units if units else None,
                "wall_s_per_unit": row["wall_s"] / units if units else None,
            }
        )
    return sorted(out, key=lambda r: -r["wall_s"])


def paper_counts() -> dict[str, int]:
    """Units the paper config processes per rule (before any sample is filtered out)."""
    samples = PAPER["train_problems"] * PAPER["samples_per_problem"] * PAPER["models"]
    eval_samples = sum(PAPER["benchmark_problems"].values()) * PAPER["eval_variants"]
    return {
        "execute_samples": samples,
        "sample_responses": samples,
        "generate_eval": eval_samples,
        "execute_eval": eval_samples,
        "compute_expected": PAPER["train_problems"] + sum(PAPER["benchmark_problems"].values()),
    }


def to_markdown(rows: list[dict], paper: bool) -> str:
    head = "| rule | jobs | wall s | CPU s | units | CPU s / unit |"
    lines = [head, "|---|---:|---:|---:|---:|---:|"]
    for r in rows:
        per = f"{r['cpu_s_per_unit']:.4f}" if r["cpu_s_per_unit"] is not None else "-"
        units = f"{r.get('units', '-')} {r.get('unit', '')}".strip()
        lines.append(
            f"| {r['rule']} | {r['jobs']} | {r['wall_s']:.1f} | {r['cpu_s']:.1f} | {units} "
            f"| {per} |"
        )
    total_wall = sum(r["wall_s"] for r in rows)
    total_cpu = sum(r["cpu_s"] for r in rows)
    lines.append(f"| all benchmarked jobs | {sum(r['jobs'] for r in rows)} | {total_wall:.1f} "
                 f"| {total_cpu:.1f} | | |")  # fmt: skip
    if paper:
        counts = paper_counts()
        lines += ["", "Extrapolation to configs/paper.yaml (CPU-side stages only: units x the "
                  "CPU seconds per unit measured here; not a measurement):", ""]  # fmt: skip
        for r in rows:
            if r["rule"] in ("execute_samples", "execute_eval", "compute_expected") and (
                r["cpu_s_per_unit"] is not None
            ):
                n, per = counts[r["rule"]], r["cpu_s_per_unit"]
                lines.append(
                    f"- {r['rule']}: {n} {r['unit']}s x {per:.4f} CPU s = "
                    f"{n * per / 3600:.2f} CPU-hours"
                )
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--workdir", type=Path, default=Path("."), help="a finished run")
    parser.add_argument(
        "--results", default="results", help="the experiment's folder (the config's `results`)"
    )
    parser.add_argument("--json", type=Path, default=None, help="also write the numbers here")
    parser.add_argument("--paper", action="store_true", help="extrapolate to the paper config")
    args = parser.parse_args(argv)
    bench = timings_dir(args.workdir, args.results)
    if not bench.is_dir():
        print(f"error: {bench}: no benchmark files (run the workflow first)", file=sys.stderr)
        return 2
    rows = stage_costs(args.workdir, args.results)
    print(to_markdown(rows, args.paper), end="")
    if args.json:
        args.json.write_text(json.dumps(rows, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
