"""The backend switches in the workflow: `snakemake -n -p` plans the generation jobs with the
backend's flags and GPUs (`sampling.backend`, `eval.backend`, `sampling.vllm`)."""

from __future__ import annotations

import re
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
from workflow_helpers import copy_workflow, snakemake  # noqa: E402

pytestmark = pytest.mark.workflow


def generation_jobs(stdout: str) -> dict[str, list[tuple[str, str]]]:
    """``rule name -> [(resources line, shell command)]`` of the planned generation jobs."""
    jobs: dict[str, list[tuple[str, str]]] = {}
    for block in stdout.split("\nrule ")[1:]:
        name = block.split(":", 1)[0]
        if name not in ("sample_responses", "generate_eval"):
            continue
        resources = re.search(r"resources: (.*)", block).group(1)
        shell = re.search(r"codedpo sample .*", block).group(0)
        jobs.setdefault(name, []).append((resources, shell))
    return jobs


def test_generation_jobs_follow_the_backend_settings(tmp_path):
    workdir = copy_workflow(tmp_path)
    demo = generation_jobs(snakemake(workdir, "-n", "-p").stdout)
    for name in ("sample_responses", "generate_eval"):
        assert demo[name] and all("--backend hf" in shell for _, shell in demo[name])
        assert all("gpu=0" in res for res, _ in demo[name])  # the demo runs on the CPU

    (workdir / "site.yaml").write_text(
        "sampling: {backend: vllm, vllm: {tensor_parallel_size: 2, batch_invariant: true}}\n"
        "eval: {backend: vllm}\n"
    )
    paper = snakemake(workdir, "-n", "-p", "--configfile", "configs/paper.yaml", "site.yaml").stdout
    jobs = generation_jobs(paper)
    flags = (
        "--backend vllm --tensor-parallel-size 2 --gpu-memory-utilization 0.9 "
        "--deterministic-scheduling --batch-invariant --no-enforce-eager"
    )
    # 3 models x 8 shards; (3 base, 3 RFT, 3 on-policy + 2 off-policy DPO) x 5 benchmarks.
    assert len(jobs["sample_responses"]) == 24 and len(jobs["generate_eval"]) == 55
    for name in ("sample_responses", "generate_eval"):
        for resources, shell in jobs[name]:
            assert f" {flags} --batch-size 64 --threads " in shell, shell
            assert "gpu=2" in resources, resources

    (workdir / "site.yaml").write_text("sampling: {backend: vllm}\n")
    jobs = generation_jobs(
        snakemake(workdir, "-n", "-p", "--configfile", "configs/paper.yaml", "site.yaml").stdout
    )
    assert all("--backend vllm --tensor-parallel-size 1" in s for _, s in jobs["sample_responses"])
    assert all("--backend hf" in s for _, s in jobs["generate_eval"])
    assert all("gpu=1" in r for r, _ in jobs["sample_responses"] + jobs["generate_eval"])

    (workdir / "site.yaml").write_text("sampling: {vllm: {tensor_parallel_size: 0}}\n")
    proc = snakemake(workdir, "-n", "--configfile", "configs/paper.yaml", "site.yaml", check=False)
    assert proc.returncode != 0 and "tensor_parallel_size" in proc.stdout + proc.stderr
