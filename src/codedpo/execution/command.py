"""``codedpo execute``: run samples against problems' tests in a sandbox.

    codedpo execute --problems problems.jsonl --samples samples.jsonl --out executions.jsonl \
        --backend bwrap --workers 2
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
import threading
from pathlib import Path

from codedpo.execution.backends import BACKENDS, SandboxConfig, SandboxUnavailable, default_backend
from codedpo.execution.executor import ExecConfig, Limits, execute_files, write_expected
from codedpo.execution.runtime import DEFAULT_DIR as DEFAULT_RUNTIME
from codedpo.execution.runtime import STDLIB
from codedpo.execution.runtime import resolve as resolve_runtime
from codedpo.io import InputError
from codedpo.problems.load import load_problems
from codedpo.verbs import command_parser


def add_executor_arguments(p: argparse.ArgumentParser) -> None:
    """The sandbox and limit flags, shared by every command that executes code (`filter` too),
    so that the workflow's execution_flags(config['execution']) fit them all."""
    p.add_argument(
        "--backend",
        choices=BACKENDS,
        default=None,
        help="isolation backend (default: bwrap where installed, else process)",
    )
    p.add_argument("--workers", type=int, default=os.cpu_count() or 1, help="warm sandboxes")
    p.add_argument("--apptainer-image", default=None, help="sandbox image for --backend apptainer")
    p.add_argument("--memory-mb", type=int, default=Limits.memory_mb,
                   help="address-space limit of a sample's process, in MiB")  # fmt: skip
    p.add_argument(
        "--test-seconds",
        type=float,
        default=Limits.test_seconds,
        help="per-test limit where no reference time is known",
    )
    p.add_argument("--min-test-seconds", type=float, default=Limits.min_test_seconds,
                   help="EvalPlus's rule: a test's limit is max(this, time factor x the "
                   "reference's time)")  # fmt: skip
    p.add_argument("--time-factor", type=float, default=Limits.time_factor,
                   help="EvalPlus's rule: the reference's time is multiplied by this")  # fmt: skip
    p.add_argument("--sample-seconds", type=float, default=Limits.sample_seconds,
                   help="cap on the sum of a sample's per-test limits")  # fmt: skip
    p.add_argument("--output-bytes", type=int, default=Limits.output_bytes,
                   help="cap on what a sample may write to stdout and stderr")  # fmt: skip
    p.add_argument("--max-processes", type=int, default=SandboxConfig.max_processes,
                   help="processes and threads a sample may run at once")  # fmt: skip
    p.add_argument(
        "--stack-mb",
        type=int,
        default=SandboxConfig.stack_mb,
        help="stack size of the sandboxed interpreter (deep recursion, as the judges allow)",
    )
    p.add_argument(
        "--runtime",
        default=None,
        help="judge runtime directory (pinned packages untrusted code may import; built by "
        "`codedpo runtime`), or 'stdlib' for the standard library only; default: "
        f"{DEFAULT_RUNTIME}, as the workflow judges, when it is built (`make setup`)",
    )
    p.add_argument(
        "--parallel-reruns",
        type=int,
        default=1,
        help="timed-out samples that were starved of CPU re-run at once, at most this many",
    )
    p.add_argument(
        "--fast-check",
        action="store_true",
        help="stop a sample at its first failing range of tests (EvalPlus's default); "
        "'passed' then counts only the tests that ran",
    )
    p.add_argument(
        "--no-timeout-rerun",
        action="store_true",
        help="do not re-run timed-out samples alone before counting them",
    )


def build_parser() -> argparse.ArgumentParser:
    p = command_parser("execute", __doc__.split("\n")[0])
    p.add_argument("--problems", type=Path, required=True, help="problems JSONL")
    p.add_argument("--samples", type=Path, nargs="+", help="samples JSONL file(s)")
    p.add_argument("--out", type=Path, help="execution records JSONL (atomic)")
    p.add_argument(
        "--expected-only",
        action="store_true",
        help="only compute the expected-outputs cache (--expected) and stop",
    )
    p.add_argument(
        "--expected",
        type=Path,
        default=None,
        help="cache of expected outputs computed from canonical solutions",
    )
    p.add_argument(
        "--check-references",
        action="store_true",
        help="with --expected-only: also run every reference solution through its tests and "
        "fail, naming each task, where one does not pass (benchmarks)",
    )
    add_executor_arguments(p)
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    return p


def config_from_args(args: argparse.Namespace) -> ExecConfig:
    if args.runtime not in (None, STDLIB) and not Path(args.runtime).is_dir():
        raise InputError(
            f"--runtime {args.runtime}: no such directory (build it with `codedpo runtime "
            f"--out {args.runtime}`)"
        )
    sandbox = SandboxConfig(
        backend=args.backend or default_backend(),
        max_processes=args.max_processes,
        apptainer_image=args.apptainer_image,
        stack_mb=args.stack_mb,
        runtime=resolve_runtime(args.runtime),
    )
    limits = Limits(
        memory_mb=args.memory_mb,
        output_bytes=args.output_bytes,
        test_seconds=args.test_seconds,
        min_test_seconds=args.min_test_seconds,
        time_factor=args.time_factor,
        sample_seconds=args.sample_seconds,
    )
    return ExecConfig(sandbox=sandbox, limits=limits, workers=args.workers,
                      retry_timeouts=not args.no_timeout_rerun, fast_check=args.fast_check,
                      parallel_reruns=args.parallel_reruns)  # fmt: skip


def stop_on_interrupt(out: Path | None):
    """Ctrl-C (SIGINT) ends the command at once, as SIGTERM does, with one line instead of a
    traceback: every finished record is already on disk in ``OUT.partial`` (written and flushed
    one by one), which the same command resumes from, and the sandboxes die with this process
    (the kernel ends them when their parent goes). Waiting for the running samples to finish
    would take up to their time limits. Returns the handler it replaced."""

    def interrupted(signum, frame) -> None:
        kept = f"; the records finished so far are in {out}.partial, and the same command " \
               "resumes from them" if out is not None else ""  # fmt: skip
        sys.stderr.write(f"codedpo execute: interrupted{kept}\n")
        sys.stderr.flush()
        os._exit(128 + signal.SIGINT)

    return signal.signal(signal.SIGINT, interrupted)


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if threading.current_thread() is not threading.main_thread():
        return _main(args)
    out = Path(args.out) if args.out is not None and not args.expected_only else None
    previous = stop_on_interrupt(out)
    try:
        return _main(args)
    finally:
        signal.signal(signal.SIGINT, previous)


def _main(args: argparse.Namespace) -> int:
    try:
        config = config_from_args(args)
        problems = load_problems(args.problems)
        if args.expected_only:
            if args.expected is None:
                raise InputError("--expected-only needs --expected PATH")
            summary = write_expected(problems, config, args.expected,
                                     strict=args.check_references,
                                     progress=not args.no_progress)  # fmt: skip
            print(json.dumps(summary))
            return 0
        if not args.samples or args.out is None:
            raise InputError("--samples and --out are required")
        summary = execute_files(
            problems,
            args.samples,
            args.out,
            config,
            expected_path=args.expected,
            progress=not args.no_progress,
        )
    except (InputError, SandboxUnavailable) as exc:
        print(f"codedpo execute: error: {exc}", file=sys.stderr)
        return 2
    print(json.dumps(summary))
    return 0
