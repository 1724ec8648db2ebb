"""The workflow on a real SLURM cluster: one node (slurm-wlm + munge) started by
scripts/slurm_local.sh, driven through `snakemake --profile profiles/ci-slurm`.

Needs root where slurm-wlm is not installed yet (the script installs it with apt-get) and
snakemake-executor-plugin-slurm in the environment. Every snakemake call has a timeout; a hung
snakemake is stopped with SIGINT (it ignores SIGTERM while it waits on the executor).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import textwrap
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import pytest
from workflow_helpers import copy_workflow

REPO = Path(__file__).resolve().parents[1]
SCRIPT = REPO / "scripts" / "slurm_local.sh"
PROFILE = REPO / "profiles" / "ci-slurm"
# One policy's chain goes through SLURM, in a copy of the one-machine demo (tests/conftest.py)
# that lost it: every rule the demo submits (sampling, execution, DPO and RFT training, evaluation
# generation and execution, the implicit-reward analysis), each job starting snakemake twice while
# the plugin polls squeue with a growing delay (README: measured time), and the rule that builds
# a policy, for another policy's model (also removed), in a free slot beside the chain rather than
# at its head (where its minute and a slow poll delayed every later job); the problem stages
# belong to no policy and come with the copy. Every output must equal the demo's.
# CODEDPO_SLURM_FULL=1 sends the whole demo from scratch (`rule all`, three policies),
# CODEDPO_SLURM_QUICK=1 only the chain's pairs (every stage up to DPO's input) and the model
# build, for a quicker check while developing.
FULL_DEMO = os.environ.get("CODEDPO_SLURM_FULL") == "1"
QUICK = os.environ.get("CODEDPO_SLURM_QUICK") == "1"
POLICY = "demo-codeqwen"
BUILT = "demo-codellama"  # whose model is built again through SLURM
CHAIN = [f"results/eval/{POLICY}/{variant}/demo_eval/scores.json"
         for variant in ("base", "rft", f"dpo-{POLICY}")] + [
    f"results/analysis/{POLICY}/reward_summary.json"]  # fmt: skip
DEMO_TARGETS = ([] if FULL_DEMO else [f"results/pairs/{POLICY}/stats.json"] if QUICK
                else CHAIN) + ([] if FULL_DEMO else [f"results/models/{BUILT}"])  # fmt: skip
# The demo's outputs of POLICY from its samples on (and BUILT's model): what SLURM makes again.
REMOVED = [f"results/{stage}/{POLICY}" for stage in
           ("samples", "executions", "pairs", "checkpoints", "eval", "analysis")] + [
    f"results/models/{BUILT}"]  # fmt: skip
# The jobs that go through sbatch: each once.
REMOTE_JOBS = {"build_demo_model": 1, "sample_responses": 2, "execute_samples": 2}
if not QUICK:
    REMOTE_JOBS |= {"train_dpo": 1, "train_rft": 1, "generate_eval": 3, "execute_eval": 3,
                    "analyze_implicit_reward": 1}  # fmt: skip
SUBMITTED = re.compile(r"^Job (\d+) has been submitted with SLURM jobid (\d+)", re.M)
REMOTE_RULE = re.compile(r"^rule (\w+):\n(?:    .*\n)*?    jobid: (\d+)$", re.M)
# One sbatch --array for several jobs of a rule (the plugin's line; tasks numbered from 1).
ARRAY_SUBMITTED = re.compile(
    r"^Submitted array job with Snakemake IDs ([\d,]+) and SLURM job ID (\d+)\. "
    r"The individual task IDs are 1-(\d+)\.$",
    re.M,
)
RUN_ID = re.compile(r"^SLURM run ID: (\S+)$", re.M)  # the job name of every job of a run

pytestmark = [pytest.mark.slurm, pytest.mark.workflow]


@dataclass
class Cluster:
    dir: Path
    env: dict[str, str]

    def slurm(self, *args: str, check: bool = True) -> str:
        proc = subprocess.run(
            list(args), env=self.env, capture_output=True, text=True, timeout=30, check=check
        )
        return proc.stdout

    def ctld_log(self) -> str:
        return (self.dir / "log" / "slurmctld.log").read_text()

    def pids(self) -> dict[str, int]:
        return {p.stem: int(p.read_text()) for p in (self.dir / "pids").glob("*.pid")}


def run_script(action: str, cluster_dir: Path, timeout: float) -> subprocess.CompletedProcess:
    proc = subprocess.run(
        ["bash", str(SCRIPT), action, str(cluster_dir)],
        capture_output=True, text=True, timeout=timeout,
    )  # fmt: skip
    assert proc.returncode == 0, f"slurm_local.sh {action} failed:\n{proc.stdout}\n{proc.stderr}"
    return proc


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    if os.geteuid() != 0 and not shutil.which("slurmctld"):
        pytest.skip("slurm-wlm is not installed and installing it needs root")
    cluster_dir = tmp_path_factory.mktemp("slurm")
    start = time.monotonic()
    run_script("start", cluster_dir, timeout=600)  # apt-get install on a fresh machine: ~20 s
    print(f"cluster start: {time.monotonic() - start:.1f} s")
    env = {
        **os.environ,
        "SLURM_CONF": str(cluster_dir / "slurm.conf"),
        "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}",
    }
    yield Cluster(cluster_dir, env)
    run_script("stop", cluster_dir, timeout=120)  # a no-op after test_cluster_stops


def snakemake(cluster: Cluster, workdir: Path, *args: str, timeout: float = 300, check=True):
    """`snakemake --profile <ci-slurm> ARGS` in workdir; output in workdir/snakemake-N.log."""
    n = len(list(workdir.glob("snakemake-*.log")))
    log_path = workdir / f"snakemake-{n}.log"
    cmd = [sys.executable, "-m", "snakemake", "--profile", str(PROFILE), *args]
    with log_path.open("w") as log:
        proc = subprocess.Popen(cmd, cwd=workdir, env=cluster.env, stdout=log, stderr=log)
        try:
            proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            proc.send_signal(signal.SIGINT)  # snakemake ignores SIGTERM; SIGINT cancels its jobs
            try:
                proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
            raise AssertionError(
                f"snakemake {' '.join(args)} timed out after {timeout} s:\n"
                f"{log_path.read_text()[-6000:]}"
            ) from None
    out = log_path.read_text()
    if check and proc.returncode != 0:
        raise AssertionError(f"snakemake {' '.join(args)} failed:\n{out[-6000:]}")
    return proc.returncode, out


def submissions(out: str) -> dict[int, int]:
    """Snakemake job id -> SLURM job id, from snakemake's log."""
    return {int(job): int(slurm_id) for job, slurm_id in SUBMITTED.findall(out)}


def ctld_submitted_and_succeeded(cluster: Cluster, slurm_id: int) -> bool:
    text = cluster.ctld_log()
    return (
        f"_slurm_rpc_submit_batch_job: JobId={slurm_id} " in text
        and f"_job_complete: JobId={slurm_id} WEXITSTATUS 0\n" in text
    )


def write_workflow(workdir: Path, snakefile: str) -> Path:
    workdir.mkdir(parents=True, exist_ok=True)
    (workdir / "Snakefile").write_text(textwrap.dedent(snakefile))
    return workdir


@pytest.fixture(scope="module")
def slurm_demo(tmp_path_factory, request):
    workdir = tmp_path_factory.mktemp("demo-slurm")
    if not FULL_DEMO:
        shutil.copytree(request.getfixturevalue("demo"), workdir, symlinks=True, dirs_exist_ok=True)
        for rel in REMOVED:
            shutil.rmtree(workdir / rel)
    return copy_workflow(workdir, extra=("profiles",))


def test_cluster_is_up(cluster):
    assert cluster.slurm("sinfo", "-h", "-N", "-o", "%T").strip() == "idle"
    assert "is UP" in cluster.slurm("scontrol", "ping")
    assert set(cluster.pids()) >= {"slurmctld", "slurmd"}


def test_dry_run(cluster, slurm_demo):
    submitted_before = cluster.ctld_log().count("_slurm_rpc_submit_batch_job")
    code, out = snakemake(cluster, slurm_demo, "-n", timeout=120)
    assert "Job stats:" in out and "This was a dry-run" in out
    assert not submissions(out)
    assert cluster.ctld_log().count("_slurm_rpc_submit_batch_job") == submitted_before


def test_demo_through_sbatch(cluster, slurm_demo, request):
    start = time.monotonic()
    target = DEMO_TARGETS
    code, out = snakemake(cluster, slurm_demo, *target, timeout=2400 if FULL_DEMO else 900)
    print(f"demo through SLURM ({' '.join(target) or 'all'}): {time.monotonic() - start:.0f} s")
    remote = {int(job): rule for rule, job in REMOTE_RULE.findall(out)}
    submitted = submissions(out)
    assert remote, out[-3000:]
    # Every non-local job was submitted with sbatch, once, and slurmctld ran it to exit code 0.
    assert set(submitted) == set(remote), (remote, submitted)
    assert len(set(submitted.values())) == len(submitted)
    for job, slurm_id in submitted.items():
        assert ctld_submitted_and_succeeded(cluster, slurm_id), (remote[job], slurm_id)
    if FULL_DEMO:
        assert set(REMOTE_JOBS) <= set(remote.values())
    else:
        assert Counter(remote.values()) == REMOTE_JOBS
    # The localrules (problems, pairs, tables) ran beside SLURM, not through it.
    assert "localrule build_pairs:" in out
    # The same outputs as the demo run on one machine (tests/conftest.py): every job is seeded
    # and sets its own thread count, so where it ran changes nothing.
    local = request.getfixturevalue("demo")
    if not FULL_DEMO:  # the model built again: the same weights, tokenizer and build record
        for path in sorted((local / f"results/models/{BUILT}").iterdir()):
            mine = slurm_demo / path.relative_to(local)
            if path.name == "demo_model.json":
                records = [json.loads(p.read_text()) for p in (mine, path)]
                for r in records:
                    r.pop("build_seconds")
                assert records[0] == records[1]
            else:
                assert mine.read_bytes() == path.read_bytes(), path.name
    if QUICK:
        assert all((slurm_demo / t).stat().st_size > 0 for t in target)
    else:
        policies = ("demo-codeqwen", "demo-deepseek-coder", "demo-codellama")
        same = [f"results/pairs/{p}/pairs.jsonl" for p in (policies if FULL_DEMO else [POLICY])]
        same += [f"results/eval/{POLICY}/{v}/demo_eval/samples.jsonl"
                 for v in ("base", "rft", f"dpo-{POLICY}")]  # fmt: skip
        if FULL_DEMO:
            same += [f"results/tables/table{i}.{ext}" for i in (1, 2) for ext in ("csv", "md")]
        for rel in same:
            assert (slurm_demo / rel).read_text() == (local / rel).read_text(), rel
        for variant in ("base", "rft", f"dpo-{POLICY}"):  # the verdicts (not their timings)
            rel = f"results/eval/{POLICY}/{variant}/demo_eval/scores.json"
            mine, theirs = (json.loads((d / rel).read_text()) for d in (slurm_demo, local))
            assert mine["verdicts"] == theirs["verdicts"], rel
    assert "Nothing to be done" in snakemake(cluster, slurm_demo, "-n", *target, timeout=120)[1]


def test_failed_job_is_retried_with_more_memory(cluster, tmp_path):
    workdir = write_workflow(
        tmp_path / "retry",
        """
        rule flaky:
            output:
                "flaky.txt",
            log:
                "logs/flaky.log",
            resources:
                mem_mb=lambda wc, attempt: 600 * attempt,
                runtime=5,
            shell:
                "echo attempt with {resources.mem_mb} MB >> attempts.txt; "
                "test {resources.mem_mb} -ge 1200 && echo {resources.mem_mb} > {output}"
        """,
    )
    code, out = snakemake(cluster, workdir, "--retries", "1", timeout=240)
    assert (workdir / "flaky.txt").read_text().strip() == "1200"
    assert (workdir / "attempts.txt").read_text().splitlines() == [
        "attempt with 600 MB",
        "attempt with 1200 MB",
    ]
    first, second = sorted(int(i) for _, i in SUBMITTED.findall(out))
    ctld = cluster.ctld_log()
    assert f"_job_complete: JobId={first} WEXITSTATUS 1\n" in ctld
    assert ctld_submitted_and_succeeded(cluster, second)
    # the retry asked SLURM for the larger memory (MinJobAge keeps the finished job listed)
    assert "mem=1200M" in cluster.slurm("scontrol", "show", "job", str(second))


def test_cancelled_job_is_redone_on_next_run(cluster, tmp_path):
    workdir = write_workflow(
        tmp_path / "cancel",
        """
        rule slow:
            output:
                "slow.txt",
            resources:
                runtime=5,
            shell:
                # the first attempt waits to be cancelled; the next one finishes at once
                "if [ ! -e started ]; then touch started; sleep 300; fi; echo done > {output}"
        """,
    )
    n = len(list(workdir.glob("snakemake-*.log")))
    log_path = workdir / f"snakemake-{n}.log"
    cmd = [sys.executable, "-m", "snakemake", "--profile", str(PROFILE), "--retries", "0"]
    with log_path.open("w") as log:
        proc = subprocess.Popen(cmd, cwd=workdir, env=cluster.env, stdout=log, stderr=log)
        try:
            deadline = time.monotonic() + 120
            while not (workdir / "started").exists():
                assert proc.poll() is None, log_path.read_text()
                assert time.monotonic() < deadline, log_path.read_text()
                time.sleep(0.5)
            (slurm_id,) = submissions(log_path.read_text()).values()
            cluster.slurm("scancel", str(slurm_id))
            assert proc.wait(timeout=180) != 0  # the cancel is seen and the run fails
        finally:
            if proc.poll() is None:
                proc.send_signal(signal.SIGINT)
                proc.wait(timeout=60)
    out = log_path.read_text()
    assert f"SLURM-job '{slurm_id}' failed, SLURM status is: 'CANCELLED'" in out
    assert not (workdir / "slow.txt").exists()
    assert "JobState=CANCELLED" in cluster.slurm("scontrol", "show", "job", str(slurm_id))

    code, out = snakemake(cluster, workdir, timeout=180)
    (redone,) = submissions(out).values()
    assert redone != slurm_id and ctld_submitted_and_succeeded(cluster, redone)
    assert (workdir / "slow.txt").read_text() == "done\n"


@pytest.fixture(scope="module")
def array_run(cluster, tmp_path_factory):
    """Two jobs of one rule through `--slurm-array-jobs`, with the efficiency report asked for:
    (snakemake's output, the workdir, how many batch jobs slurmctld was sent meanwhile)."""
    workdir = write_workflow(
        tmp_path_factory.mktemp("array"),
        """
        rule all:
            input:
                expand("shard{i}.txt", i=(1, 2)),
            localrule: True


        rule shard:
            output:
                "shard{i}.txt",
            resources:
                runtime=5,
            shell:
                "echo $SLURM_ARRAY_JOB_ID $SLURM_ARRAY_TASK_ID > {output}"
        """,
    )
    before = cluster.ctld_log().count("_slurm_rpc_submit_batch_job")
    start = time.monotonic()
    _, out = snakemake(
        cluster, workdir, "--slurm-array-jobs", "shard",
        # the first status check within 3 s of the submission, the next 13 s later (the plugin
        # waits 10 s longer after each check that finds nothing finished): the tasks take 5-12 s
        "--slurm-init-seconds-before-status-checks", "3",
        # every task runs inside a snakemake that then waits for the *first* task's output
        # (plugin 2.8.0, docs/cluster.md#job-arrays): room for task 1 to end after task 2
        "--latency-wait", "30",
        "--slurm-efficiency-report", "--slurm-efficiency-report-path", "reports",
        timeout=180,
    )  # fmt: skip
    print(f"array run: {time.monotonic() - start:.0f} s")
    sent = cluster.ctld_log().count("_slurm_rpc_submit_batch_job") - before
    return out, workdir, sent


def test_shards_go_as_one_job_array(cluster, array_run):
    out, workdir, sent = array_run
    # one sbatch --array=1-2 for both jobs of the rule, none alone, and slurmctld got one batch job
    ((snakemake_ids, array_id, last_task),) = ARRAY_SUBMITTED.findall(out)
    remote = {int(job): rule for rule, job in REMOTE_RULE.findall(out)}
    assert sorted(int(i) for i in snakemake_ids.split(",")) == sorted(remote)
    assert set(remote.values()) == {"shard"} and last_task == "2"
    assert not submissions(out)
    assert sent == 1
    ctld = cluster.ctld_log()
    assert f"_slurm_rpc_submit_batch_job: JobId={array_id} " in ctld
    for task in (1, 2):  # slurmctld ran each task (JobId=<array>_<task>(<own id>)) to exit code 0
        assert re.search(rf"_job_complete: JobId={array_id}_{task}\(\d+\) WEXITSTATUS 0\n", ctld)
        assert re.search(  # MinJobAge keeps the finished tasks listed
            rf"ArrayJobId={array_id} ArrayTaskId={task} ",
            cluster.slurm("scontrol", "show", "job", array_id),
        )
    # each task ran its own job: the outputs carry the array's id and one task id each
    written = sorted((workdir / f"shard{i}.txt").read_text().split() for i in (1, 2))
    assert written == [[array_id, "1"], [array_id, "2"]]
    # the plugin's SLURM logs of an array: one per task, in one folder per rule
    logs = sorted(p.relative_to(workdir / "logs/slurm").as_posix()
                  for p in (workdir / "logs/slurm").rglob("*.log"))  # fmt: skip
    assert logs == [f"rule_shard/{array_id}_1.log", f"rule_shard/{array_id}_2.log"]


def test_efficiency_report_needs_accounting(cluster, array_run):
    """The report reads sacct, which this cluster (no slurmdbd) cannot answer: the plugin logs
    one error at the end, writes no file, and the run still succeeds (array_run checks that)."""
    out, workdir, _ = array_run
    sacct = subprocess.run(
        ["sacct", "-X"], env=cluster.env, capture_output=True, text=True, timeout=30
    )
    assert sacct.returncode != 0 and "accounting storage is disabled" in sacct.stderr
    (run_id,) = RUN_ID.findall(out)
    assert f"Failed to retrieve job data for workflow {run_id}." in out
    assert not list(workdir.rglob("efficiency_report_*"))


def test_cluster_stops(cluster):
    pids = cluster.pids()
    assert {"slurmctld", "slurmd"} <= set(pids)
    run_script("stop", cluster.dir, timeout=120)
    assert not any(alive(pid) for pid in pids.values()), pids
    assert not list((cluster.dir / "pids").glob("*.pid"))
    ping = subprocess.run(
        ["scontrol", "ping"], env=cluster.env, capture_output=True, text=True, timeout=60
    )
    assert "DOWN" in ping.stdout or ping.returncode != 0, ping.stdout
