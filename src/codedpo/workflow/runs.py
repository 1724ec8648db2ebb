"""Where each run of each chain lives: path segments, the ``{chain}`` wildcard, eval variants.

A *run* is round ``k`` of a chain (:mod:`codedpo.workflow.chains`). The paper's run (the first
chain, round 1) keeps the paths it always had; every other run lives under
``{policy}/{arm}/{recipe}/r{k}/`` (the ``{chain}`` wildcard is ``/{arm}/{recipe}/r{k}``, empty for
the paper's run). Round 1 samples come from the original model, so every chain shares them, and
round 1 pairs depend on the arm only, so the default arm's recipes share the paper's pairs: their
jobs are one job, not one per chain.

Table 2's off-policy runs (a policy trained with DPO on another model's pairs) are runs of the
paper's round 1 only; :func:`off_policy_runs` reads them from ``tables.off_policy``.
"""

from __future__ import annotations

import re
import shlex
from collections.abc import Sequence

from codedpo.workflow.chains import Chain

SEP = "/"


def off_policy_runs(
    setting: bool | list[dict[str, str]], models: Sequence[str]
) -> list[tuple[str, str]]:
    """Table 2's ``(policy, pairs_from)`` DPO runs on another model's pairs.

    ``tables.off_policy`` lists them; true means every model on every other's, false none.
    """
    if setting is True:
        return [(m, o) for m in models for o in models if o != m]
    if setting is False:
        return []
    runs = []
    for i, run in enumerate(setting):
        for key in ("policy", "pairs_from"):
            if run[key] not in models:
                raise ValueError(
                    f"config: field 'tables.off_policy.{i}.{key}': {run[key]!r} is not one "
                    f"of the models {list(models)}"
                )
        if run["policy"] == run["pairs_from"]:
            raise ValueError(
                f"config: field 'tables.off_policy.{i}': {run['policy']!r} on its own pairs "
                "is on-policy DPO, which every model gets anyway"
            )
        runs.append((run["policy"], run["pairs_from"]))
    return runs


def variant_chain(variant: str) -> str:
    """The ``{chain}`` part of an eval variant (``paper/dpo/r2/dpo-x`` -> ``/paper/dpo/r2``)."""
    head, _, _ = variant.rpartition(SEP)
    return f"{SEP}{head}" if head else ""


def variant_name(variant: str) -> str:
    """An eval variant without its chain: ``base``, ``rft``, ``dpo-{pairs_from}``."""
    return variant.rpartition(SEP)[2]


class Runs:
    """The runs of a config's chains over ``rounds`` rounds, and the paths they use."""

    def __init__(self, chains: Sequence[Chain], rounds: int, results: str = "results"):
        if not chains:
            raise ValueError("a config has at least one chain (dpo.recipe)")
        self.chains = list(chains)
        self.rounds = rounds
        self.results = results
        self.first = self.chains[0]
        arms = "|".join(sorted({re.escape(c.arm) for c in self.chains}))
        recipes = "|".join(sorted({re.escape(c.recipe) for c in self.chains}))
        # The {chain} wildcard's text; the groups are the arm, the recipe and the round (one the
        # config runs: a target of another round is no job of this config).
        rounds_ = "|".join(str(k) for k in range(rounds, 0, -1))
        self.pattern = f"{SEP}({arms})/({recipes})/r({rounds_})"

    def all(self) -> list[tuple[Chain, int]]:
        """Every run, chain by chain, round by round."""
        return [(chain, k) for chain in self.chains for k in range(1, self.rounds + 1)]

    @property
    def shown(self) -> bool:
        """The round table and plot, when there is more than the paper's run to show."""
        return self.rounds > 1 or len(self.chains) > 1

    # -- paths -----------------------------------------------------------------------------------
    def segment(self, chain: Chain, k: int) -> str:
        """Path segment of run ``k`` of ``chain``: none for the paper's run."""
        if chain is self.first and k == 1:
            return ""
        return f"{SEP}{chain.arm}/{chain.recipe}/r{k}"

    def samples_segment(self, chain: Chain, k: int) -> str:
        """Round 1 samples come from the original model: every chain shares them."""
        return "" if k == 1 else self.segment(chain, k)

    def pairs_segment(self, chain: Chain, k: int) -> str:
        """Round 1 pairs depend on the arm only: the default arm's recipes share the paper's."""
        return "" if chain.arm == self.first.arm and k == 1 else self.segment(chain, k)

    def checkpoint_dir(self, policy: str, chain: Chain, k: int) -> str:
        """The DPO checkpoint of run ``k`` of ``chain`` on the policy's own pairs."""
        return f"{self.results}/checkpoints/{policy}{self.segment(chain, k)}/dpo-{policy}"

    def run_of(self, text: str) -> tuple[Chain, int]:
        """``(chain, round)`` of a ``{chain}`` wildcard's text (empty: the paper's run)."""
        if not text:
            return self.first, 1
        match = re.fullmatch(self.pattern, text)
        if match:
            arm, recipe, k = match.groups()
            for chain in self.chains:
                if (chain.arm, chain.recipe) == (arm, recipe) and self.segment(
                    chain, int(k)
                ) == text:
                    return chain, int(k)
        raise ValueError(f"{text}: not a run of this config's arms, recipes and rounds")

    def variants(self, policy: str) -> list[str]:
        """The eval variants of every run but the paper's (``{arm}/{recipe}/r{k}/dpo-{policy}``)."""
        return [
            f"{self.segment(chain, k)[1:]}/dpo-{policy}"
            for chain, k in self.all()
            if self.segment(chain, k)
        ]

    # -- names -----------------------------------------------------------------------------------
    def run_flags(self, chain: Chain, k: int) -> list[str]:
        """``codedpo score`` / ``hack-report`` identity of a run, where it is not the default."""
        flags = []
        if k != 1:
            flags.append(f"--round {k}")
        if chain.arm != self.first.arm:
            flags.append(f"--arm {shlex.quote(chain.arm)}")
        if chain.recipe != "dpo":
            flags.append(f"--recipe {shlex.quote(chain.recipe)}")
        return flags

    def run_label(self, policy: str, chain: Chain, k: int) -> str:
        """A run's label in the hack report: ``demo-codeqwen round 2``, ``demo-codeqwen max_min
        round 1``."""
        arm = "" if chain.arm == self.first.arm else f" {chain.arm}"
        recipe = "" if chain.recipe == self.first.recipe else f" {chain.recipe}"
        return f"{policy}{arm}{recipe} round {k}"

    def pair_runs(self, policies: Sequence[str]) -> list[tuple[str, str, str]]:
        """``(policy, path segment, label)`` of every set of pairs the runs of ``policies``
        train on, once each (runs that share pairs share the first run's label)."""
        runs: dict[tuple[str, str], str] = {}
        for policy in policies:
            for chain, k in self.all():
                where = self.pairs_segment(chain, k)
                runs.setdefault((policy, where), self.run_label(policy, chain, k))
        return [(policy, where, label) for (policy, where), label in runs.items()]
