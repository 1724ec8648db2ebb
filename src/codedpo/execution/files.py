"""The executor's files: samples in, records out (atomic, resumable), the expected-outputs cache
and the check of a problem set's reference solutions."""

from __future__ import annotations

import json
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import asdict, replace
from pathlib import Path

from tqdm import tqdm

from codedpo.execution.plan import Limits, plan_problem
from codedpo.execution.running import ExecConfig, Executor
from codedpo.execution.verdicts import parse_results, short
from codedpo.io import InputError, atomic_write, sha256_json, write_json
from codedpo.records import WHERE, load_records

# Bumped when the cache's content changes meaning (v2: digests of Python values, worker clock).
CACHE_VERSION = 3


def load_samples(paths: list[Path]) -> list[dict]:
    """The samples to run, read as every stage reads them (:func:`codedpo.records.load_records`:
    a missing ``sample_id`` is the line number), with the fields the executor needs checked."""
    samples = []
    seen: set[str] = set()
    for rec in load_records(paths):
        where = rec[WHERE]
        if not isinstance(rec.get("task_id"), str):
            raise InputError(f"{where}: field 'task_id' is missing or not a string")
        if not isinstance(rec.get("solution"), str):
            raise InputError(f"{where}: field 'solution' is missing or not a string")
        sample_id = rec["sample_id"]
        if not isinstance(sample_id, str):
            raise InputError(f"{where}: field 'sample_id' must be a string")
        if sample_id in seen:
            raise InputError(f"{where}: field 'sample_id': duplicate id {sample_id!r}")
        seen.add(sample_id)
        rescued = rec.get("rescued") or []
        if not isinstance(rescued, list) or not all(isinstance(r, str) for r in rescued):
            raise InputError(f"{where}: field 'rescued' must be a list of strings")
        samples.append({"task_id": rec["task_id"], "sample_id": sample_id,
                        "solution": rec["solution"], "rescued": rescued,
                        "_where": where})  # fmt: skip
    return samples


def runtime_name(config: ExecConfig) -> str:
    """The judge runtime a record ran in: its id (``runtime.json``), or ``stdlib``."""
    if config.sandbox.backend == "apptainer":
        return f"apptainer:{Path(config.sandbox.apptainer_image or '').name}"
    if not config.sandbox.runtime:
        return "stdlib"
    from codedpo.execution.runtime import describe  # noqa: PLC0415

    return describe(Path(config.sandbox.runtime))["id"]


def _header(problems: dict[str, dict], samples: list[dict], config: ExecConfig) -> dict:
    """What a partial file must match to be resumed: the same tests, samples and limits."""
    return {
        "problems": sha256_json(sorted(problems)),
        "problems_tests": sha256_json([problems[t]["tests"] for t in sorted(problems)]),
        "samples": sha256_json([[s["sample_id"], s["solution"]] for s in samples]),
        "config": config.describe(),
        "runtime": runtime_name(config),
    }


def _read_partial(path: Path, header: dict) -> dict[str, dict]:
    """Finished records of an interrupted run with the same inputs; anything else is dropped."""
    done: dict[str, dict] = {}
    if not path.exists():
        return done
    with open(path, encoding="utf-8") as fh:
        first = fh.readline()
        try:
            if json.loads(first).get("header") != header:
                return done
        except (json.JSONDecodeError, AttributeError):
            return done
        for line in fh:
            try:
                rec = json.loads(line)
            except json.JSONDecodeError:
                break  # a torn last line from a killed run
            if isinstance(rec, dict) and "sample_id" in rec:
                done[rec["sample_id"]] = rec
    return done


def execute_files(problems: dict[str, dict], sample_paths: list[Path], out: Path,
                  config: ExecConfig, *, expected_path: Path | None = None,
                  reference_times: bool = True, progress: bool = True) -> dict:  # fmt: skip
    """Execute every sample; write records to ``out`` (JSONL, sample order), resumable.

    ``reference_times=False`` keeps the fixed limit on assertion tests instead of timing their
    references first (the training-set filter, which runs those references anyway).
    """
    samples = load_samples(sample_paths)
    for s in samples:
        if s["task_id"] not in problems:
            raise InputError(f"{s['_where']}: field 'task_id': unknown task {s['task_id']!r}")
    runtime = runtime_name(config)
    header = _header(problems, samples, config)
    partial = out.with_name(out.name + ".partial")
    done = _read_partial(partial, header)
    with Executor(config) as executor:
        expected = load_expected(problems, executor, expected_path, times=reference_times,
                                 progress=progress)  # fmt: skip
        plans = {t: plan_problem(p, config.limits, expected.get(t)) for t, p in problems.items()}
        jobs = [(s["sample_id"], plans[s["task_id"]], s["solution"])
                for s in samples if s["sample_id"] not in done]  # fmt: skip
        out.parent.mkdir(parents=True, exist_ok=True)
        with open(partial, "a" if done else "w", encoding="utf-8") as fh:
            if not done:
                fh.write(json.dumps({"header": header}) + "\n")
            task_of = {s["sample_id"]: s["task_id"] for s in samples}
            # What the extraction rescued (the sample's) joins what the prelude gave (the run's).
            extracted = {s["sample_id"]: s["rescued"] for s in samples if s["rescued"]}

            def save(job_id: str, record: dict) -> None:
                rescued = sorted({*record.get("rescued", ()), *extracted.get(job_id, ())})
                if rescued:
                    record = {**record, "rescued": rescued}
                full = {"task_id": task_of[job_id], "sample_id": job_id, **record,
                        "runtime": runtime}  # fmt: skip
                done[job_id] = full
                fh.write(json.dumps(full) + "\n")
                fh.flush()

            executor.run(jobs, on_result=save, progress=progress)
    with atomic_write(out) as fh:
        for s in samples:
            fh.write(json.dumps(done[s["sample_id"]]) + "\n")
    partial.unlink(missing_ok=True)
    counts: dict[str, int] = {}
    for s in samples:
        status = done[s["sample_id"]]["status"]
        counts[status] = counts.get(status, 0) + 1
    return {"samples": len(samples), "status_counts": counts}


# -- expected outputs ---------------------------------------------------------------------------
def needs_expected(problem: dict, times: bool = True) -> bool:
    """Call tests without outputs need the reference's outputs; assertion tests with a reference
    need its times (each test's limit is derived from it, as a call test's is)."""
    tests = problem["tests"]
    if tests["kind"] == "assert":
        return times and bool(problem.get("canonical_solution"))
    return tests["kind"] == "call" and any("output" not in c for c in tests["cases"])


def _generous(limits: Limits) -> Limits:
    return replace(limits, test_seconds=60.0, sample_seconds=3600.0, load_seconds=30.0)


def _reference_outputs(executor: Executor, task_id: str, problem: dict, limits: Limits) -> dict:
    """Run one canonical solution over every case; a case it cannot give is named, not lost.

    When the reference stops on a case (a resource limit, a crash), the cases after it get runs
    of their own (Mbpp/255: case 88 returns 1.6M tuples; cases 89-111 are small).
    """
    n = len(problem["tests"]["cases"])
    plan = plan_problem(problem, limits, expected={"outputs": [None] * n})
    plan.test_seconds = [limits.test_seconds] * n
    code = problem["canonical_solution"]
    records: dict[int, dict] = {}
    times: dict[int, float] = {}
    stopped: dict[int, str] = {}
    start = 0
    while start < n:
        run = executor.run_raw(plan, code, limits, start)
        by_index, load_error, syntax, _ = parse_results(run.get("results") or "", start, True)
        if run.get("timeout_at") == "load":
            raise InputError(f"{task_id}: field 'canonical_solution' takes too long to load")
        if syntax or load_error:
            raise InputError(
                f"{task_id}: field 'canonical_solution' does not run: {syntax or load_error}"
            )
        for k, seconds in enumerate(run.get("clock") or []):
            times[start + k] = seconds
        records.update({i: r for i, r in by_index.items() if i >= start})
        missing = next((i for i in range(start, n) if i not in by_index), None)
        if missing is None:
            break
        if run.get("timed_out"):
            stopped[missing] = "timeout"
        elif run.get("exceeded"):
            stopped[missing] = "the output is too large to carry"
        else:
            died = f"signal {run.get('signal')}, exit {run.get('exit')}"
            stopped[missing] = f"the process died ({died})"
        start = missing + 1
    outputs, out_times, bad, digests = [], [], [], {}
    for i in range(n):
        rec = records.get(i, {})
        if "nn" in rec:  # not_none tasks: EvalPlus's expected output is "is not None"
            outputs.append(rec["nn"] is True)
        elif "v" in rec or "h" in rec:
            outputs.append(rec.get("v"))
            if "h" in rec:
                digests[str(i)] = str(rec["h"])
        else:
            why = stopped.get(i) or _why(rec)
            outputs.append(None)
            out_times.append(None)
            bad.append({"index": i, "why": why})
            continue
        out_times.append(times.get(i))
    return {"outputs": outputs, "times": out_times, "bad_cases": bad, "digests": digests}


def _reference_times(executor: Executor, problem: dict, limits: Limits) -> dict:
    """Time the reference on each assertion (or judged) test; None where it does not pass.

    A test the reference fails keeps the fixed limit; the reference check (``strict``) names it.
    """
    plan = plan_problem(problem, limits)
    times = executor.time_tests(plan, problem["canonical_solution"], limits)
    return {"times": times, "bad_cases": []}


def _why(rec: dict) -> str:
    if not rec:
        return "no result (killed or timed out)"
    if "exc" in rec:
        return ": ".join(map(str, rec["exc"][:2]))
    return str(rec.get("bad", "unknown"))[:200]


def compute_expected(problems: dict[str, dict], executor: Executor, *,
                     progress: bool = True) -> dict[str, dict]:  # fmt: skip
    """Run each canonical solution inside the sandbox to get outputs and reference times
    (call tests), or reference times alone (assertion tests)."""
    limits = _generous(executor.config.limits)
    need = [(t, p) for t, p in problems.items() if needs_expected(p)]
    out: dict[str, dict] = {}
    lock = threading.Lock()

    def work(item):
        task_id, problem = item
        if problem["tests"]["kind"] == "assert":
            entry = _reference_times(executor, problem, limits)
        else:
            entry = _reference_outputs(executor, task_id, problem, limits)
        with lock:
            out[task_id] = entry

    with ThreadPoolExecutor(max_workers=executor.pool.size) as ex:
        futs = [ex.submit(work, item) for item in need]
        for fut in tqdm(as_completed(futs), total=len(futs), desc="reference runs",
                        disable=not progress):  # fmt: skip
            fut.result()
    return {t: out[t] for t, _ in need}


def _cache_key(need: dict[str, dict], limits: Limits) -> str:
    return sha256_json([CACHE_VERSION, limits.memory_mb,
                        [[t, p["tests"], p.get("canonical_solution")]
                         for t, p in sorted(need.items())]])  # fmt: skip


def load_expected(problems: dict[str, dict], executor: Executor, path: Path | None, *,
                  times: bool = True, progress: bool = True) -> dict[str, dict]:  # fmt: skip
    """Expected outputs for problems that lack them: read from ``path`` or computed and saved.

    The cache is keyed by a hash of the problems' tests and reference solutions, so a changed
    dataset never reuses stale outputs.
    """
    need = {t: p for t, p in problems.items() if needs_expected(p, times)}
    if not need:
        return {}
    key = _cache_key(need, executor.config.limits)
    if path is not None and path.exists():
        with open(path, encoding="utf-8") as fh:
            cached = json.load(fh)
        if cached.get("key") == key:
            return cached["tasks"]
    tasks = compute_expected(need, executor, progress=progress)
    for task_id, entry in tasks.items():
        if entry["bad_cases"]:
            print(f"codedpo: {task_id}: the reference solution gives no output for cases "
                  f"{[b['index'] for b in entry['bad_cases']]} "
                  f"({entry['bad_cases'][0]['why']}); they are listed as bad cases",
                  file=sys.stderr)  # fmt: skip
    if path is not None:
        write_json(path, {"key": key, "date": time.strftime("%Y-%m-%dT%H:%M:%S"), "tasks": tasks})
    return tasks


def _stored(problem: dict) -> bool:
    """Does a call problem carry outputs of its own (not computed from its reference)?"""
    return problem["tests"]["kind"] == "call" and any("output" in c for c in
                                                       problem["tests"]["cases"])  # fmt: skip


def check_references(problems: dict[str, dict], executor: Executor, expected: dict,
                     progress: bool = True) -> dict[str, dict]:  # fmt: skip
    """Run every reference solution through every test it is scored on.

    Assertion and stdio problems' references, and the references of call problems whose cases
    carry stored outputs: a stored output the reference disagrees with is a failure naming the
    case (the outputs a reference computed are its own; their cases it cannot give are the
    ``bad_cases``). Returns ``{task_id: record}`` of the references that do not pass.
    """
    jobs = []
    for task_id, problem in problems.items():
        code = problem.get("canonical_solution")
        if not code or (problem["tests"]["kind"] == "call" and not _stored(problem)):
            continue
        plan = plan_problem(problem, executor.config.limits, expected.get(task_id))
        jobs.append((task_id, plan, code))
    records = executor.run(jobs, desc="reference solutions", progress=progress)
    return {t: r for t, r in records.items() if r["status"] != "passed"}


def _failure_line(task_id: str, problem: dict, record: dict) -> str:
    """One line naming the task, the case and what differs."""
    first = record.get("first_failure") or {}
    index, message = first.get("index"), first.get("message")
    line = f"{task_id}: reference solution {record['status']}"
    if problem["tests"]["kind"] == "call" and isinstance(index, int):
        case = problem["tests"]["cases"][index]
        stored = f", stored output {short(case['output'])}" if "output" in case else ""
        return f"{line} on case {index} (input {short(case.get('input'))}): {message}{stored}"
    return f"{line}: {message}"


def write_expected(problems: dict[str, dict], config: ExecConfig, path: Path, *,
                   strict: bool = False, progress: bool = True) -> dict:  # fmt: skip
    """Compute (or reuse) the expected-outputs cache at ``path``; always leaves a file there.

    ``strict`` (benchmarks) also runs every reference solution through its tests: a reference
    that fails, or a case whose output the reference cannot give, is an error naming the task
    and the message (a benchmark's configuration may exclude the task, with a reason).
    """
    with Executor(config) as executor:
        tasks = load_expected(problems, executor, path, progress=progress)
        failures = check_references(problems, executor, tasks, progress) if strict else {}
    if not path.exists():  # nothing needed computing: record that, so the DAG has its file
        write_json(path, {"key": None, "date": time.strftime("%Y-%m-%dT%H:%M:%S"), "tasks": {}})
    bad = {t: e["bad_cases"] for t, e in tasks.items() if e["bad_cases"]}
    if strict and (failures or bad):
        lines = [_failure_line(t, problems[t], r) for t, r in sorted(failures.items())]
        lines += [f"{t}: the reference gives no output for case {b[0]['index']} ({b[0]['why']})"
                  for t, b in sorted(bad.items())]  # fmt: skip
        raise InputError(
            "the problem set's own references fail (exclude a task in the benchmark's config "
            "with a reason, `exclude: {TASK_ID: REASON}`, if the fault is the dataset's):\n  "
            + "\n  ".join(lines)
        )
    return {"tasks_computed": len(tasks), "bad_cases": sum(len(b) for b in bad.values()),
            "references_failing": len(failures), "limits": asdict(config.limits)}  # fmt: skip
