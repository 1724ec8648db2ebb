"""The executor as an online reward: a batch of model responses in, one reward per response out.

An RL trainer (TRL's ``GRPOTrainer``) calls its reward functions on every step with the prompts,
the completions and the dataset's columns. :class:`ExecutionReward` runs each completion through
the sandboxed executor that labels the DPO pairs, and turns its verdict into a number::

    with ExecutionReward("problems.jsonl") as reward:
        trainer = GRPOTrainer(model, reward_funcs=[reward.reward_function("rule")], ...)
        trainer.train()

- **What runs**: the code the evaluation stage would run for the response (``codedpo sample``'s
  extraction, :func:`codedpo.sampling.records.default_extract`), against the problem's tests,
  planned once per problem (its expected outputs and reference times computed in the sandbox on
  first use, or read from ``expected_path``).
- **The rewards** (:meth:`Reward.value`): ``pass_all`` (1 if every test passes), ``fraction``
  (tests passed / tests), ``rule`` (CodeRL's, :data:`codedpo.records.RULE_REWARD`). A response
  with a reward-hack class (:func:`codedpo.execution.hacks.classify`) gets the lowest reward of
  its kind, whatever its tests said. A verdict that is not the model's fault (``sandbox_error``,
  ``problem_error``) has no reward: ``None``, which TRL leaves out of that sample's sum.
- **Once per program**: identical ``(task_id, code)`` pairs, in one batch or in recent ones (a
  bounded cache), run once; GRPO calls every reward function on the same completions.
- **Warm sandboxes** stay open across calls (the solutions' and, where a problem has test code
  of its own, the judges', started with the pool). Jobs run on this object's own threads, so a
  program another thread is already running is waited for, not run twice.
- **Threads, forks, kills**: :meth:`ExecutionReward.score` may be called from several threads at
  once. A forked child (a dataloader worker) never uses or closes its parent's sandboxes: it opens
  its own pool if it scores anything. ``close()`` is idempotent and runs at exit; a killed trainer
  takes its sandboxes with it (the kernel kills them when their parent dies).

The page: docs/reward.md.
"""

from __future__ import annotations

import atexit
import contextlib
import dataclasses
import glob
import os
import threading
import weakref
from collections import OrderedDict
from collections.abc import Callable, Iterable
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path

from codedpo.execution.backends import SandboxConfig, default_backend
from codedpo.execution.files import load_expected, runtime_name
from codedpo.execution.hacks import classify
from codedpo.execution.plan import plan_problem
from codedpo.execution.pool import Sandbox
from codedpo.execution.running import ExecConfig, Executor
from codedpo.execution.runtime import resolve
from codedpo.io import InputError
from codedpo.problems.load import load_problems
from codedpo.records import NOT_THE_MODELS, RULE_REWARD
from codedpo.sampling.records import default_extract

KINDS = ("pass_all", "fraction", "rule")
# A response with a hack class gets the lowest reward its kind can give.
LOWEST = {"pass_all": 0.0, "fraction": 0.0, "rule": min(RULE_REWARD.values())}
# Programs (and extracted responses) remembered: a few GRPO steps' worth (64-1024 completions
# each, scored by every reward function).
CACHE_SIZE = 4096


@dataclass(frozen=True)
class Reward:
    """One response's verdict and rewards (``None`` where the fault is not the model's)."""

    task_id: str
    code: str  # what ran: the code extracted from the response
    status: str
    passed: int
    total: int
    fraction: float | None  # passed / total (0.0 when the problem has no tests)
    pass_all: float | None  # 1.0 if status == "passed" else 0.0
    rule: float | None  # RULE_REWARD[status]
    hacks: tuple[str, ...]  # codedpo.execution.hacks.classify of the record
    record: dict = field(repr=False, compare=False)  # the execution record (docs/formats.md)

    def value(self, kind: str, hack_reward: float | None = None) -> float | None:
        """The reward of ``kind``: the lowest of its kind (or ``hack_reward``) for a response with
        a hack class, else the field of that name (None for not-the-model's verdicts)."""
        if kind not in KINDS:
            raise ValueError(f"unknown reward kind {kind!r}; choose one of {KINDS}")
        if self.hacks:
            return LOWEST[kind] if hack_reward is None else float(hack_reward)
        return getattr(self, kind)


def reward_of(task_id: str, code: str, record: dict, tests_kind: str | None = None) -> Reward:
    """The :class:`Reward` of one execution record (``tests_kind``: the problem's tests.kind)."""
    status = record["status"]
    passed, total = int(record.get("passed") or 0), int(record.get("total") or 0)
    ours = status not in NOT_THE_MODELS
    return Reward(
        task_id=task_id,
        code=code,
        status=status,
        passed=passed,
        total=total,
        fraction=(passed / total if total else 0.0) if ours else None,
        pass_all=(1.0 if status == "passed" else 0.0) if ours else None,
        rule=RULE_REWARD[status] if ours else None,
        hacks=tuple(classify(record, tests_kind)),
        record=record,
    )


def completion_text(completion: str | list[dict]) -> str:
    """A TRL completion's text: the string itself (standard format), or the content of the last
    assistant message (conversational format: a list of ``{"role", "content"}`` dicts)."""
    if isinstance(completion, str):
        return completion
    if not isinstance(completion, list) or not all(isinstance(m, dict) for m in completion):
        raise InputError(f"a completion must be a string or a list of messages, got "
                         f"{type(completion).__name__}")  # fmt: skip
    said = [m for m in completion if m.get("role", "assistant") == "assistant"]
    if not said:
        return ""
    content = said[-1].get("content") or ""
    if isinstance(content, list):  # content parts: [{"type": "text", "text": ...}, ...]
        content = "".join(p.get("text") or "" for p in content if isinstance(p, dict))
    return str(content)


def default_config(workers: int | None = None) -> ExecConfig:
    """bwrap where installed, the judge runtime (``resources/runtime/judge`` when built), one
    worker per CPU, every test run (``fraction`` needs them all)."""
    runtime = resolve(None)
    sandbox = SandboxConfig(backend=default_backend(),
                            runtime=str(Path(runtime).resolve()) if runtime else None)  # fmt: skip
    return ExecConfig(sandbox=sandbox, workers=workers or os.cpu_count() or 1)


# The executor's settings a trainer may be given (config.yaml's ``execution`` keys, as the
# workflow passes them to ``codedpo train --execution``); ``workers`` is the trainer's own.
SETTINGS = ("backend", "apptainer_image", "memory_mb", "test_seconds", "min_test_seconds",
            "time_factor", "sample_seconds", "fast_check", "runtime", "stack_mb")  # fmt: skip


def execution_config(settings: dict, workers: int | None = None) -> ExecConfig:
    """An :class:`ExecConfig` from the workflow's ``execution`` settings (:data:`SETTINGS`; a
    key left out keeps :func:`default_config`'s value), so a reward judges as the workflow's
    execution jobs do. ``runtime``: a directory, ``"stdlib"``, or null (the built default)."""
    unknown = sorted(set(settings) - set(SETTINGS))
    if unknown:
        raise InputError(f"execution settings: unknown key {unknown[0]!r} (keys: "
                         f"{', '.join(SETTINGS)})")  # fmt: skip
    config = default_config(workers)
    sandbox: dict = {}
    if "runtime" in settings and settings["runtime"] is not None:
        resolved = resolve(settings["runtime"])
        sandbox["runtime"] = str(Path(resolved).resolve()) if resolved else None
    if (settings.get("backend") or "auto") != "auto":
        sandbox["backend"] = settings["backend"]
    sandbox.update({k: settings[k] for k in ("apptainer_image", "stack_mb")
                    if settings.get(k) is not None})  # fmt: skip
    limits = {k: type(getattr(config.limits, k))(settings[k])
              for k in ("memory_mb", "test_seconds", "min_test_seconds", "time_factor",
                        "sample_seconds") if settings.get(k) is not None}  # fmt: skip
    return dataclasses.replace(
        config, sandbox=dataclasses.replace(config.sandbox, **sandbox),
        limits=dataclasses.replace(config.limits, **limits),
        fast_check=bool(settings.get("fast_check", False)),
    )  # fmt: skip


class ExecutionReward:
    """Scores batches of ``(task_id, response)`` with a warm pool of sandboxes (see the module).

    ``problems``: a problems file (:func:`codedpo.problems.load.load_problems`) or the
    ``{task_id: problem}`` it returns. ``expected_path``: a cache of the expected outputs and
    reference times (computed for every problem at open when missing); without it they are
    computed per problem on first use and kept in memory.
    """

    def __init__(self, problems: str | Path | dict[str, dict], config: ExecConfig | None = None,
                 *, expected_path: str | Path | None = None, cache_size: int = CACHE_SIZE,
                 progress: bool = False) -> None:  # fmt: skip
        self.problems = dict(problems) if isinstance(problems, dict) else load_problems(problems)
        self.config = config if config is not None else default_config()
        self.expected_path = Path(expected_path) if expected_path is not None else None
        self.cache_size = max(1, cache_size)
        self.progress = progress
        self.executed = 0  # programs run in a sandbox (cache misses)
        self._extract = default_extract()
        self._runtime = runtime_name(self.config)
        # Judges (a problem's own test code, or a checker) start with the pool, on its thread.
        self._judges = any(p["tests"]["kind"] == "assert" or p["tests"].get("checker")
                           for p in self.problems.values())  # fmt: skip
        self._closed = False
        self._plans: dict = {}
        self._expected: dict[str, dict] = {}
        self._cache: OrderedDict[tuple[str, str], dict] = OrderedDict()  # (task, code) -> record
        self._texts: OrderedDict[tuple[str, str], tuple[str, list[str]]] = OrderedDict()
        self._own_process()
        _LIVE.add(self)

    def _own_process(self) -> None:
        """State that belongs to one process: its pool, its threads, its lock."""
        self._pid = os.getpid()
        self._lock = threading.RLock()
        self._executor: Executor | None = None
        self._threads: ThreadPoolExecutor | None = None
        self._boxes: list[Sandbox] = []
        self._running: dict[tuple[str, str], Future] = {}

    def _forget_parent(self) -> None:
        """In a forked child: the pool, threads and pipes are the parent's. The child never sends
        on them nor closes them (closing would stop the parent's sandboxes); its copies of the
        pipes point at /dev/null from now on, so the parent's sandboxes still see their input
        close when the parent closes it. What the parent computed (plans, records) stays."""
        null = os.open(os.devnull, os.O_RDWR)
        try:
            for box in self._boxes:
                proc = box.proc
                for pipe in (proc.stdin, proc.stdout) if proc is not None else ():
                    with contextlib.suppress(OSError, ValueError):
                        os.dup2(null, pipe.fileno())
        finally:
            os.close(null)
        # Kept, never collected here: collecting them would reap or flush the parent's objects.
        _ABANDONED.append((self._executor, self._threads, self._boxes))
        self._own_process()

    def __enter__(self) -> ExecutionReward:
        with self._lock:
            self._open()
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def _open(self) -> Executor:
        """The pool, opened on first use (under the lock)."""
        if self._closed:
            raise RuntimeError("this ExecutionReward is closed")
        if self._executor is not None:
            return self._executor
        executor = Executor(self.config)
        threads = ThreadPoolExecutor(self.config.workers, thread_name_prefix="codedpo-reward")
        try:
            boxes = threads.submit(_start_pool, executor, self._judges).result()
            if self.expected_path is not None:
                self._expected = load_expected(self.problems, executor, self.expected_path,
                                               progress=self.progress)  # fmt: skip
        except BaseException:
            executor.__exit__(None, None, None)
            threads.shutdown(wait=False)
            raise
        self._executor, self._threads, self._boxes = executor, threads, boxes
        return executor

    def _plan(self, task_ids: Iterable[str]) -> None:
        """Plan the problems not planned yet (under the lock; computes what they need first)."""
        new = {t: self.problems[t] for t in dict.fromkeys(task_ids) if t not in self._plans}
        if not new:
            return
        if self.expected_path is None:
            self._expected.update(load_expected(new, self._executor, None,
                                                progress=self.progress))  # fmt: skip
        for task_id, problem in new.items():
            self._plans[task_id] = plan_problem(problem, self.config.limits,
                                                self._expected.get(task_id))  # fmt: skip

    def _code(self, task_id: str, text: str) -> tuple[str, list[str]]:
        """The code to run for a response, and what extraction rescued (remembered)."""
        key = (task_id, text)
        with self._lock:
            found = self._texts.get(key)
        if found is None:
            found = self._extract(text, self.problems[task_id])
            with self._lock:
                self._texts[key] = found
                while len(self._texts) > self.cache_size:
                    self._texts.popitem(last=False)
        return found

    def score(self, items: Iterable[tuple[str, str]]) -> list[Reward]:
        """One :class:`Reward` per ``(task_id, response)``, in the batch's order."""
        items = self._checked(items)
        if not items:
            return []
        if self._pid != os.getpid():
            self._forget_parent()
        with self._lock:
            executor, threads = self._open(), self._threads
            self._plan(task_id for task_id, _ in items)
        extracted: list[tuple[str, list[str]]] = []
        pending: dict[tuple[str, str], Future] = {}
        records: dict[tuple[str, str], dict] = {}
        try:
            # Each program starts once its code is extracted: extraction overlaps the runs.
            for task_id, text in items:
                extracted.append(self._code(task_id, text))
                key = (task_id, extracted[-1][0])
                with self._lock:
                    if key in pending or key in records:
                        continue
                    if key in self._cache:
                        self._cache.move_to_end(key)
                        records[key] = self._cache[key]
                    elif key in self._running:
                        pending[key] = self._running[key]
                    else:
                        job = threads.submit(executor.run_one, self._plans[task_id], key[1])
                        self._running[key] = pending[key] = job
                        self.executed += 1
            for key, job in pending.items():
                records[key] = job.result()
        finally:
            with self._lock:
                for key, job in pending.items():
                    if self._running.get(key) is job and job.done():
                        del self._running[key]
                    if key in records:
                        self._cache[key] = records[key]
                while len(self._cache) > self.cache_size:
                    self._cache.popitem(last=False)
        keys = [(task_id, code) for (task_id, _), (code, _) in zip(items, extracted, strict=True)]
        return [self._reward(key, records[key], rescued)
                for key, (_, rescued) in zip(keys, extracted, strict=True)]  # fmt: skip

    def _checked(self, items: Iterable[tuple[str, str]]) -> list[tuple[str, str]]:
        items = list(items)
        for i, item in enumerate(items):
            if not (isinstance(item, tuple | list) and len(item) == 2):
                raise InputError(f"batch item {i}: expected (task_id, response), got {item!r:.80}")
            if item[0] not in self.problems:
                raise InputError(f"batch item {i}: unknown task {item[0]!r} "
                                 f"(not among the {len(self.problems)} problems)")  # fmt: skip
            if not isinstance(item[1], str):
                raise InputError(f"batch item {i}: the response must be a string, got "
                                 f"{type(item[1]).__name__}")  # fmt: skip
        return items

    def _reward(self, key: tuple[str, str], record: dict, rescued: list[str]) -> Reward:
        task_id, code = key
        record = {"task_id": task_id, **record, "runtime": self._runtime}
        joined = sorted({*record.get("rescued", ()), *rescued})
        if joined:
            record["rescued"] = joined
        return reward_of(task_id, code, record, self.problems[task_id]["tests"]["kind"])

    def reward_function(
        self, kind: str, *, task_column: str = "task_id", hack_reward: float | None = None
    ) -> Callable[..., list[float | None]]:
        """A reward function with TRL's signature, ``f(prompts, completions, **columns)``.

        ``columns[task_column]`` holds each completion's task id. Completions are strings or
        conversations (the last assistant message counts). Its ``__name__`` is
        ``f"{kind}_reward"``, the name TRL logs it under.
        """
        if kind not in KINDS:
            raise ValueError(f"unknown reward kind {kind!r}; choose one of {KINDS}")

        def reward(prompts=None, completions=None, **columns) -> list[float | None]:
            if task_column not in columns:
                raise InputError(f"{kind}_reward: the dataset has no column {task_column!r} "
                                 f"(columns: {sorted(columns)})")  # fmt: skip
            task_ids = list(columns[task_column])
            if completions is None or len(task_ids) != len(completions):
                raise InputError(f"{kind}_reward: {len(task_ids)} task ids for "
                                 f"{len(completions or [])} completions")  # fmt: skip
            items = zip(task_ids, map(completion_text, completions), strict=True)
            return [r.value(kind, hack_reward) for r in self.score(items)]

        reward.__name__ = reward.__qualname__ = f"{kind}_reward"
        return reward

    def sandbox_pids(self, descendants: bool = True) -> list[int]:
        """Host pids of this process's sandboxes: each bwrap (or worker) process, and with
        ``descendants`` everything under it (the worker inside, a sample's processes)."""
        pids = [b.proc.pid for b in self._boxes if b.proc is not None and self._pid == os.getpid()]
        return [p for pid in pids for p in (_with_descendants(pid) if descendants else [pid])]

    def close(self) -> None:
        """End this process's sandboxes and threads (idempotent; a forked child's close touches
        nothing of its parent's)."""
        if self._pid != os.getpid():
            self._forget_parent()
        with self._lock:
            self._closed = True
            executor, threads = self._executor, self._threads
            self._executor = self._threads = None
            self._boxes = []
        if threads is not None:
            threads.shutdown(wait=True, cancel_futures=True)
        if executor is not None:
            executor.__exit__(None, None, None)


def _start_pool(executor: Executor, judges: bool) -> list[Sandbox]:
    """Start the pool, and the judges where a problem has test code of its own (warm before the
    first batch)."""
    executor.__enter__()
    pool = executor.pool
    with ExitStack() as stack:
        slots = [stack.enter_context(pool.acquire()) for _ in range(pool.size)]
        return [slot.solution for slot in slots] + [slot.judge() for slot in slots if judges]


def _with_descendants(pid: int) -> list[int]:
    out, todo = [], [pid]
    while todo:
        out.append(p := todo.pop())
        for children in glob.glob(f"/proc/{p}/task/*/children"):
            with contextlib.suppress(OSError, ValueError):
                todo += [int(c) for c in Path(children).read_text().split()]
    return out


_LIVE: weakref.WeakSet[ExecutionReward] = weakref.WeakSet()
_ABANDONED: list = []  # a forked child's copies of its parent's pools (see _forget_parent)


def _after_fork_in_child() -> None:
    for reward in list(_LIVE):
        if reward._pid != os.getpid():
            reward._forget_parent()


def _close_all() -> None:
    for reward in list(_LIVE):
        if reward._pid == os.getpid():
            reward.close()


os.register_at_fork(after_in_child=_after_fork_in_child)
atexit.register(_close_all)
