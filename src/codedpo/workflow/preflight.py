"""Mistakes a job would find late, found at the dry run: a policy's model that cannot be loaded,
and a policy name that reaches no table (a typo of one that does).

- ``models.<policy>.hub`` is a local directory or a Hugging Face id. A directory must be a model
  (its ``config.json``, or an adapter whose base exists:
  :func:`codedpo.models.load.check_model_path`); a path that does not exist is an error naming
  the key. A Hub id must be in the Hugging Face cache when the Hub is off (``HF_HUB_OFFLINE=1``,
  as on compute nodes without internet): else an error naming the key, before any job waits in a
  GPU queue to find out. With the Hub on, an id not in the cache is a warning: the first job that
  loads it downloads it, which a compute node without internet cannot.
- A policy that no table shows (not in ``tables.models``, and no Table 2 run trains on its
  pairs) but whose name is close to one that is, is a warning with "did you mean": its jobs would
  run and reach nothing.

:func:`check` raises :class:`~codedpo.workflow.messages.ConfigError` and returns the warnings;
``rules/common.smk`` prints them once, in the snakemake process the user started.
"""

from __future__ import annotations

import difflib
import os
from collections.abc import Sequence
from pathlib import Path

from codedpo.io import InputError
from codedpo.workflow.messages import ConfigError, error

# How alike two policy names must be to call one a typo of the other (difflib's ratio):
# demo-qwen / demo-codeqwen is 0.82, two demo families (demo-codellama / demo-codeqwen) 0.67.
TYPO = 0.8
# A value starting so is a path, never a Hub id.
PATH_PREFIXES = ("/", "./", "../", "~")


def _hub_cached(repo_id: str) -> bool:
    """Whether the Hugging Face cache holds the model's config (what loading reads first)."""
    from huggingface_hub import try_to_load_from_cache

    try:
        found = try_to_load_from_cache(repo_id, "config.json")
    except ValueError:  # not a valid repo id
        return False
    return isinstance(found, str)


def _hub_offline() -> bool:
    from huggingface_hub import constants

    return bool(constants.HF_HUB_OFFLINE)


def check_models(config: dict, layers: Sequence, root: Path) -> list[str]:
    """Each hub policy's model can be loaded (see the module); returns the warnings."""
    from codedpo.models.load import _HUB_ID, check_model_path

    warnings = []
    for policy, model in config["models"].items():
        hub = model.get("hub")
        if not hub:
            continue
        key = ["models", policy, "hub"]
        local = Path(os.path.expanduser(hub))
        local = local if local.is_absolute() else root / local
        if local.exists() or hub.startswith(PATH_PREFIXES) or not _HUB_ID.match(hub):
            try:
                check_model_path(str(local))
            except InputError as exc:
                raise error(layers, key, str(exc).replace(str(local), hub)) from None
            continue
        if _hub_cached(hub):
            continue
        if _hub_offline():
            raise error(layers, key, f"{hub}: not in the Hugging Face cache, and HF_HUB_OFFLINE=1 "
                        f"keeps jobs from downloading it: download it where there is internet "
                        f"(`hf download {hub}`) or name a local model directory")  # fmt: skip
        warnings.append(f"models.{policy}.hub: {hub} is not in the Hugging Face cache: the first "
                        "job that loads it downloads it (on compute nodes without internet, "
                        "download it first and set HF_HUB_OFFLINE=1)")  # fmt: skip
    return warnings


def check_unshown_policies(config: dict) -> list[str]:
    """A policy no table shows whose name is close to one that is shown: a typo's warning."""
    tables = config["tables"]
    shown = set(tables["models"])
    off = tables["off_policy"]
    if off is True:
        sources = set(config["models"])
    elif off:
        sources = {run["pairs_from"] for run in off if run["policy"] in shown}
    else:
        sources = set()
    warnings = []
    for policy in config["models"]:
        if policy in shown or policy in sources:
            continue
        near = difflib.get_close_matches(policy, sorted(shown), n=1, cutoff=TYPO)
        near = near[0] if near else None
        if near:
            warnings.append(f"models.{policy}: no table shows it (tables.models: "
                            f"{', '.join(tables['models'])}), yet its jobs would run; did you "
                            f"mean '{near}'?")  # fmt: skip
    return warnings


def check_trackers(config: dict, layers: Sequence, checked=None) -> None:
    """Every tracker a training job would report to is installed: ``training.report_to``, and
    the ``report_to`` of each recipe (``checked``: :class:`codedpo.workflow.recipes.Checked`)."""
    from codedpo.training import tracking

    gone = tracking.missing(config["training"]["report_to"])
    if gone:
        raise error(layers, ["training", "report_to"], _not_installed(gone))
    recipes = {}
    if checked is not None:
        recipes = {**checked.dpo_recipes, **checked.grpo_recipes,
                   config["rft"]["recipe"]: checked.recipes.get("rft", {})}  # fmt: skip
    for path, recipe in recipes.items():
        gone = tracking.missing(recipe.get("report_to"))
        if gone:
            raise ConfigError(f"{path}: report_to: {_not_installed(gone)}")


def _not_installed(names: list[str]) -> str:
    extra = " (pip install -e '.[tracking]')" if "tensorboard" in names else ""
    return f"{', '.join(names)}: not installed{extra}"


def check(config: dict, layers: Sequence, root: Path, checked=None) -> list[str]:
    """Every check; raises on a model that cannot load or a tracker that is not installed,
    returns the warnings."""
    check_trackers(config, layers, checked)
    return check_models(config, layers, root) + check_unshown_policies(config)
