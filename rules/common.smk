# The config, checked at parse time, and W: what every rule's jobs get (inputs, params,
# resources), built from the checked config by the tested package. The checks are
# codedpo.workflow.config (tests/test_config.py); the paths of chains and rounds, the flags and
# the resources are codedpo.workflow.jobs, .runs, .flags and .resources
# (tests/test_workflow_logic.py). This file keeps only the glue that needs Snakemake's objects.
import os
import re
import sys
from pathlib import Path

from snakemake.common.configfile import load_configfile

from codedpo.workflow import config as config_check
from codedpo.workflow import launch, preflight, profile
from codedpo.training import tracking
from codedpo.workflow.jobs import Workflow


def config_layers():
    """The config files as the user wrote them, lowest precedence first, then --config."""
    given = [Path(f).resolve() for f in workflow.config_settings.configfiles]
    files = [f for f in workflow.configfiles if Path(f).resolve() not in given]
    files += list(workflow.config_settings.configfiles)
    layers = []
    for f in files:
        label = (
            os.path.relpath(f) if not os.path.relpath(f).startswith("..") else str(f)
        )
        layers.append(config_check.Layer(label, load_configfile(f)))
    if workflow.config_settings.config:
        layers.append(
            config_check.Layer("--config", dict(workflow.config_settings.config))
        )
    return layers


def check_config():
    """Check the merged config at parse time; an error is one or two lines and exit status 1
    (no traceback into this file: the user's config file is what to fix)."""
    schema = config_check.load_schema(
        Path(workflow.basedir) / "schemas/config.schema.yaml"
    )
    try:
        checked = config_check.check(config, schema, config_layers())
        # models that cannot load, names that reach no table: once, where the user runs it
        if workflow.is_main_process:
            for warning in preflight.check(
                config, config_layers(), Path.cwd(), checked
            ):
                print(f"config warning: {warning}", file=sys.stderr)
        return checked
    except config_check.ConfigError as exc:
        print(f"config error: {exc}", file=sys.stderr)
        sys.exit(1)


W = Workflow(config, check_config())


def res(path):
    """A path in the experiment's folder (config `results`)."""
    return f"{W.results}/{path}"


def logpath(path):
    return f"{W.logs}/{path}"


def benchpath(path):
    return f"{W.bench}/{path}"


wildcard_constraints:
    policy="|".join(W.models),
    pairs_from="|".join(W.models),
    benchmark="|".join(W.benchmarks),
    variant=W.variant_pattern,
    grpo_arm="|".join(re.escape(a) for a in W.grpo) or "(?!)",
    shard=r"\d+",
    source="|".join(W.train_sources),
    chain=f"(?:{W.runs.pattern})?",
    draw="(?:/sampled)?",
    round=r"[1-9][0-9]*",


# Long jobs run through `codedpo launch` (codedpo.workflow.launch): it stops the job's whole
# process tree on SIGINT/SIGTERM and when this snakemake process is gone, even after a SIGKILL.
os.environ[launch.WATCH_ENV] = launch.identity(os.getpid()) or ""
# Experiment trackers of the training jobs (codedpo.training.tracking): scheduling, not params.
os.environ[tracking.REPORT_TO_ENV] = ",".join(
    tracking.trackers(config["training"]["report_to"])
)
os.environ[tracking.TRACKING_DIR_ENV] = logpath("tracking")


onstart:
    launch.forward_stop_signals()
    check_site_placeholders()


def check_site_placeholders():
    """Unedited EDIT_ME values of profiles/slurm are one clear error before anything is
    submitted (codedpo.workflow.profile; a dry run still works, to show the plan)."""
    settings = workflow.resource_settings
    message = profile.placeholder_error(
        settings.default_resources.args,
        {
            rule_name: {k: str(getattr(v, "orig_arg", v)) for k, v in values.items()}
            for rule_name, values in settings.overwrite_resources.items()
        },
    )
    if message:
        print(message, file=sys.stderr)
        sys.exit(1)
