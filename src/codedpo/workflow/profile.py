"""The check that a cluster profile was edited for the site before anything is submitted.

``profiles/slurm/config.yaml`` ships with ``EDIT_ME`` where only the user knows the value (the
partition, the account). Submitting with one would fail job by job on the cluster; this turns it
into one clear error when the workflow starts (a dry run still works, to show the plan). The
rules' glue (``rules/common.smk``) reads the values out of Snakemake's resource settings.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

PLACEHOLDER = "EDIT_ME"


def placeholders(
    default_resources: Iterable[str], set_resources: Mapping[str, Mapping[str, str]]
) -> list[str]:
    """Every placeholder left in a profile, as the profile spells its setting.

    ``default_resources`` are ``name=value`` arguments (``--default-resources``);
    ``set_resources`` maps a rule to its resources as written (``--set-resources``).
    """
    given = [arg.partition("=")[::2] for arg in default_resources]
    return [
        f"default-resources: {name}={value}" for name, value in given if PLACEHOLDER in value
    ] + [
        f"set-resources: {rule}: {name}={value}"
        for rule, values in set_resources.items()
        for name, value in values.items()
        if PLACEHOLDER in value
    ]


def placeholder_error(
    default_resources: Iterable[str], set_resources: Mapping[str, Mapping[str, str]]
) -> str | None:
    """The error to print when the profile still holds a placeholder, else None."""
    found = placeholders(default_resources, set_resources)
    if not found:
        return None
    return (
        f"profile error: {found[0]} is a placeholder (lines marked EDIT in "
        "profiles/slurm/config.yaml): set your site's value (sinfo -s; sacctmgr show assoc "
        "user=$USER) or delete the line"
        + (f"; {len(found) - 1} more like it" if len(found) > 1 else "")
    )
