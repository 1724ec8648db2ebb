"""Sandboxed execution of untrusted code, with every verdict decided on the trusted side.

- :mod:`~codedpo.execution.command`: ``codedpo execute`` (samples in, execution records out);
- :mod:`~codedpo.execution.executor`: the trusted parent in one import (see its docstring for
  planning, running, verdicts and files);
- :mod:`~codedpo.execution.filter`: ``codedpo filter`` (training problems whose references pass,
  decontaminated against the benchmarks);
- :mod:`~codedpo.execution.runtime`: ``codedpo runtime`` (the packages untrusted code may import);
- :mod:`~codedpo.execution.backends`: bwrap, apptainer or a plain process around the worker;
- :mod:`~codedpo.execution.hacks`: the reward-hack classes of an execution record;
- :mod:`~codedpo.execution.reward`: the executor as a batch reward for RL trainers (TRL's GRPO);
- ``sandbox/``: the sandbox side (standard library only, loaded by path).
"""
