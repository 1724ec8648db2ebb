"""The config is closed and checked at parse time: codedpo.workflow.config on the real schema and
configs, and the one-line error `snakemake -n` prints for a bad config file."""

from __future__ import annotations

import copy
import json
import subprocess
import sys

import pytest
import yaml
from workflow_helpers import REPO, copy_workflow, merge, snakemake_env

from codedpo.workflow import config as config_check
from codedpo.workflow.config import ConfigError, Layer

SCHEMA = config_check.load_schema(REPO / "schemas/config.schema.yaml")
DEMO = yaml.safe_load((REPO / "config.yaml").read_text())
PAPER = yaml.safe_load((REPO / "configs/paper.yaml").read_text())


def check(*overrides: dict, base: dict = DEMO) -> dict:
    """Check config.yaml merged with ``overrides`` (labelled o1.yaml, o2.yaml, ...)."""
    config = base
    layers = [Layer("config.yaml", base)]
    for i, override in enumerate(overrides, start=1):
        config = merge(config, override)
        layers.append(Layer(f"o{i}.yaml", override))
    config = copy.deepcopy(config)
    config_check.check(config, SCHEMA, layers, root=REPO)
    return config


def error_of(*overrides: dict, base: dict = DEMO) -> str:
    with pytest.raises(ConfigError) as err:
        check(*overrides, base=base)
    message = str(err.value)
    assert len(message.splitlines()) <= 2, message
    return message


def test_the_shipped_configs_pass():
    demo = check()
    assert demo["sampling"]["n"] == 8 and demo["execution"]["fast_check"] is False
    paper = check(PAPER)
    assert list(paper["models"]) == ["codeqwen", "deepseek", "codellama"]
    # defaults filled in from the schema, where the paper's file leaves a key out
    assert paper["benchmarks"]["humaneval"]["groups"] is None
    assert paper["train_problems"]["sources"]["leetcode"]["hub_revision"] is None


def test_a_null_entry_removes_what_an_earlier_file_set():
    demo_file = "src/codedpo/data/demo/problems.jsonl"
    first = {"arms": {"x": {"pairs": {"seed": 2}}, "y": {}},
             "train_problems": {"sources": {"more": {"path": demo_file}}}}  # fmt: skip
    config = check(first, {"arms": {"x": None}, "train_problems": {"sources": {"more": None}}})
    assert list(config["arms"]) == ["y"] and list(config["train_problems"]["sources"]) == ["demo"]
    assert "demo-codeqwen" not in check(PAPER)["models"]


def test_every_object_in_the_schema_is_closed():
    open_objects = []

    def walk(node, where):
        if isinstance(node, dict):
            if "object" in node.get("type", []) or "properties" in node:
                assert "additionalProperties" in node, f"{where} is open"
                if node["additionalProperties"] is True:
                    open_objects.append(where)
            for key, value in node.items():
                walk(value, f"{where}.{key}")
        elif isinstance(node, list):
            for i, value in enumerate(node):
                walk(value, f"{where}[{i}]")

    walk(SCHEMA, "schema")
    # open in the schema, closed by config_check against the classes that define them (the
    # tests below): demo-model fields (DemoModelArgs) and TRL's DPOConfig/SFTConfig/GRPOConfig
    # fields
    assert open_objects == [
        "schema.properties.models.additionalProperties.properties.demo",
        "schema.properties.dpo.properties.overrides",
        "schema.properties.arms.additionalProperties.properties.dpo.properties.overrides",
        "schema.properties.rft.properties.overrides",
        "schema.properties.grpo.properties.arms.additionalProperties.properties.overrides",
        "schema.properties.grpo.properties.overrides",
    ]


@pytest.mark.parametrize(
    "override, expected",
    [
        ({"sampels": {"n": 8}}, "o1.yaml: sampels: unknown key (did you mean 'sampling'?)"),
        ({"sampling": {"nn": 8}}, "o1.yaml: sampling.nn: unknown key (did you mean 'n'?)"),
        ({"train_problems": {"sources": {"demo": {"splitt": "train"}}}},
         "o1.yaml: train_problems.sources.demo.splitt: unknown key (did you mean 'split'?)"),
        ({"models": {"x": {"hubb": "a/b"}}}, "o1.yaml: models.x.hubb: unknown key (did you mean"),
        ({"models": {"demo-a": {"demo": {"hiden_size": 8}}}},
         "o1.yaml: models.demo-a.demo.hiden_size: unknown key (did you mean 'hidden_size'?)"),
        ({"dpo": {"overrides": {"betaa": 0.2}}},
         "o1.yaml: dpo.overrides.betaa: unknown key (did you mean 'beta'?)"),
        ({"rft": {"overrides": {"beta": 0.2}}}, "o1.yaml: rft.overrides.beta: unknown key"),
        ({"tables": {"modles": []}},
         "o1.yaml: tables.modles: unknown key (did you mean 'models'?)"),
    ],
)  # fmt: skip
def test_unknown_keys_name_the_file_the_path_and_the_nearest_key(override, expected):
    assert error_of(override).startswith(expected)


@pytest.mark.parametrize(
    "override, expected",
    [
        ({"dpo": {"overrides": {"beta": -0.1}}}, "dpo.overrides.beta: -0.1 must be > 0"),
        ({"sampling": {"temperature": 0}}, "sampling.temperature: 0 must be > 0"),
        ({"sampling": {"top_p": 1.5}}, "sampling.top_p: 1.5 must be <= 1"),
        ({"sampling": {"n": 1}}, "sampling.n: 1 must be >= 2"),
        ({"sampling": {"shards": 0}}, "sampling.shards: 0 must be >= 1"),
        ({"train_filters": {"threshold": 0}}, "train_filters.threshold: 0 must be > 0"),
        ({"rft": {"overrides": {"learning_rate": 0}}},
         "rft.overrides.learning_rate: 0.0 must be > 0"),
        ({"sampling": {"n": "eight"}}, "sampling.n: 'eight' is not an integer"),
        ({"execution": {"backend": "bwarp"}},
         "execution.backend: 'bwarp' is not one of auto, bwrap"),
        ({"dpo": {"overrides": {"lr_scheduler_type": "cosinee"}}},
         "dpo.overrides.lr_scheduler_type: 'cosinee' is not one of constant"),
        ({"dpo": {"overrides": {"num_train_epochs": "three"}}},
         "dpo.overrides.num_train_epochs: 'three' is not float"),
        ({"dpo": {"overrides": {"threads": 4}}},
         "dpo.overrides.threads: set by the workflow: use training.threads"),
        ({"dpo": {"overrides": {"effective_batch_size": 7, "per_device_train_batch_size": 2}}},
         "dpo.overrides.effective_batch_size: 7 is not a multiple of "
         "per_device_train_batch_size 2"),
        ({"models": {"x": {"demo": {}, "hub": "a/b"}}},
         "models.x: give exactly one of 'demo' or 'hub'"),
        ({"rounds": 0}, "rounds: 0 must be >= 1"),
        ({"rounds_reference": "base"}, "rounds_reference: 'base' is not one of start, original"),
        ({"pairs": {"strategy": "maxmin"}}, "pairs.strategy: 'maxmin' is not one of random"),
        ({"pairs": {"rejected_verdicts": ["passed"]}},
         "pairs.rejected_verdicts[0]: 'passed' is not one of failed"),
        ({"arms": {"a": {"pairz": {}}}}, "arms.a.pairz: unknown key (did you mean 'pairs'?)"),
        ({"arms": {"a": {"pairs": {"strategy": "maxmin"}}}},
         "arms.a.pairs.strategy: 'maxmin' is not one of random, max_min, max_random, by_error "
         "(did you mean 'max_min'?)"),
        ({"arms": {"a": {"dpo": {"overrides": {"betaa": 1}}}}},
         "arms.a.dpo.overrides.betaa: unknown key (did you mean 'beta'?)"),
        ({"arms": {"a": {"dpo": {"overrides": {"beta": -1}}}}},
         "arms.a.dpo.overrides.beta: -1.0 must be > 0"),
        ({"arms": {"paper": {}}}, "arms.paper: 'paper' is the default arm"),
        ({"arms": {"a b": {}}}, "arms.a b: an arm's name is letters, digits"),
        ({"pairs": {"strategy": "by_error"}},
         "pairs.strategy: by_error draws the rejected response from rejected_verdicts"),
        ({"arms": {"e": {"pairs": {"strategy": "by_error"}}}},
         "arms.e.pairs.strategy: by_error draws"),
        ({"eval": {"samples_per_problem": 4, "pass_at_k": [1, 5]}},
         "eval.pass_at_k[1]: pass@5 needs at least 5 samples per problem"),
        ({"dpo": {"recipes": ["configs/recipes/dpo.yaml"]}},
         "dpo.recipes[0]: configs/recipes/dpo.yaml: the recipe name 'dpo' is taken by dpo.recipe"),
        ({"dpo": {"recipes": ["configs/recipes/nope.yaml"]}},
         "dpo.recipes[0]: configs/recipes/nope.yaml: file not found"),
        ({"arms": {"a": {"dpo": {"recipe": "configs/recipes/rft.yaml"}}}},
         "arms.a.dpo.recipe: configs/recipes/rft.yaml is a 'rft' recipe"),
    ],
)  # fmt: skip
def test_values_out_of_range_or_of_the_wrong_kind(override, expected):
    message = error_of(override)
    assert message.startswith(f"o1.yaml: {expected}"), message


def test_names_and_files_must_exist():
    assert error_of({"tables": {"models": ["demo-codeqwen", "demo-codellamma"]}}) == (
        "o1.yaml: tables.models[1]: 'demo-codellamma' is not defined in models (defined: "
        "demo-codeqwen, demo-deepseek-coder, demo-codellama); did you mean 'demo-codellama'?"
    )
    assert error_of({"tables": {"benchmarks": ["humaneval"]}}).startswith(
        "o1.yaml: tables.benchmarks[0]: 'humaneval' is not defined in benchmarks"
    )
    missing = {"benchmarks": {"demo_eval": {"path": "/nonexistent/problems.jsonl"}}}
    assert error_of(missing) == (
        "o1.yaml: benchmarks.demo_eval.path: /nonexistent/problems.jsonl: file not found"
    )
    assert error_of({"dpo": {"recipe": "configs/recipes/dop.yaml"}}).startswith(
        "o1.yaml: dpo.recipe: configs/recipes/dop.yaml: file not found"
    )
    template = {"train_problems": {"sources": {"demo": {"prompt_template": "nope.yaml"}}}}
    assert "train_problems.sources.demo.prompt_template: nope.yaml: file not found" in error_of(
        template
    )
    # Files a rule makes are not errors: pinned downloads, Hub exports.
    check(PAPER)
    unknown = {"benchmarks": {"humaneval": {"path": "resources/benchmarks/HumanEval.json"}}}
    assert "codedpo download fetches only HumanEval.jsonl.gz" in error_of(PAPER, unknown)
    no_hub = {"train_problems": {"sources": {"leetcode": {"hub": None}}}}
    assert "(give the source a 'hub' dataset id" in error_of(PAPER, no_hub)


def test_each_experiment_writes_in_a_folder_of_its_own():
    assert check()["results"] == "results" and check(PAPER)["results"] == "results/paper"
    assert check({"results": "runs/ablation/"})["results"] == "runs/ablation"
    for inside in ("results/eval", "results/paper/tables/x", "configs/x", "."):
        assert error_of({"results": inside}).startswith(
            f"o1.yaml: results: {inside!r} lies inside another experiment's outputs"
        ), inside
    assert "does not match" in error_of({"results": "my results"})


def test_errors_name_the_file_that_set_the_value():
    # the last file that sets a key is the one named; --config is a layer too
    assert error_of({"sampling": {"n": 1}}, {"sampling": {"n": 3}, "eval": {"batch_size": 0}})
    both = error_of({"sampling": {"n": 1}}, {"eval": {"batch_size": 4}})
    assert both.startswith("o1.yaml: sampling.n:")
    config = merge(DEMO, {"sampling": {"top_p": 2}})
    layers = [Layer("config.yaml", DEMO), Layer("--config", {"sampling": {"top_p": 2}})]
    with pytest.raises(ConfigError, match=r"^--config: sampling.top_p: 2 must be <= 1"):
        config_check.check(config, SCHEMA, layers, root=REPO)
    # a bad key in a recipe names the recipe
    assert config_check.source_of(["sampling", "n"], [Layer("a", {"sampling": {}})]) == "a"


def test_recipes_are_checked_too(tmp_path):
    recipe = tmp_path / "dpo.yaml"
    recipe.write_text("method: dpo\nbetaa: 0.1\n")
    message = error_of({"dpo": {"recipe": str(recipe)}})
    assert message == f"{recipe}: betaa: unknown key (did you mean 'beta'?)"
    assert error_of({"dpo": {"recipe": "configs/recipes/rft.yaml"}}) == (
        "o1.yaml: dpo.recipe: configs/recipes/rft.yaml is a 'rft' recipe"
    )


def test_the_config_is_made_canonical():
    config = check(
        {"dpo": {"recipe": "./configs/recipes/dpo.yaml", "overrides": {"learning_rate": "1e-4"}}},
        {"rft": {"overrides": {"num_train_epochs": 3, "max_length": 512.0}}},
    )
    assert config["dpo"]["recipe"] == "configs/recipes/dpo.yaml"
    # YAML reads 1e-4 (no dot) as a string; the field is a float
    assert config["dpo"]["overrides"]["learning_rate"] == 1e-4
    assert config["rft"]["overrides"]["num_train_epochs"] == 3.0
    assert config["rft"]["overrides"]["max_length"] == 512
    assert isinstance(config["rft"]["overrides"]["max_length"], int)


@pytest.mark.workflow
def test_a_bad_config_is_one_line_at_the_dry_run(tmp_path):
    """Parse time, with no results: the user's file, the key path, the nearest key; no
    traceback, no rules/common.smk."""
    workdir = copy_workflow(tmp_path / "wf")
    (workdir / "o.yaml").write_text("sampling: {nn: 8}\n")
    proc = subprocess.run(
        [sys.executable, "-m", "snakemake", "-n", "--configfile", "o.yaml", "--config",
         "eval={batch_size: 0}"],
        cwd=workdir, env=snakemake_env(), capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert proc.returncode == 1
    errors = [line for line in proc.stderr.splitlines() if "error" in line.lower()]
    assert errors == ["config error: o.yaml: sampling.nn: unknown key (did you mean 'n'?)"]
    assert "Traceback" not in proc.stderr and "common.smk" not in proc.stderr
    assert not (workdir / "results").exists()


def test_the_trl_field_table_is_cached():
    """The field table the dry run checks overrides against, read from the per-version cache
    that the checks above wrote (importing TRL takes seconds)."""
    from codedpo.training import fields as train_fields

    fields = train_fields.trl_fields()
    (cache,) = [p for p in train_fields._cache_dir().glob("trl-fields-*.json")
                if json.loads(p.read_text())["versions"] == train_fields._versions()]  # fmt: skip
    assert json.loads(cache.read_text())["fields"] == fields
    assert fields["dpo"]["beta"]["kinds"] == ["float"]
    assert fields["dpo"]["loss_type"]["kinds"] == ["list"]
    assert "cosine" in fields["dpo"]["lr_scheduler_type"]["choices"]
    assert "beta" not in fields["rft"] and "packing" in fields["rft"]
    ours = train_fields.train_fields("dpo")
    assert ours["effective_batch_size"]["kinds"] == ["int", "null"]


def test_rounds_and_arms_make_chains():
    """The default arm's recipes, then the arms sorted by name, each with its settings merged
    over the top-level ones; the shipped configs have one chain, the iterative config two."""
    from codedpo.workflow.chains import recipe_name

    assert recipe_name("configs/recipes/dpo.yaml") == "dpo"
    assert recipe_name("configs/recipes/dpo-ipo.yaml") == "ipo"
    assert recipe_name("mine.yaml") == "mine"
    schema_checked = {}
    for name, overrides in (("demo", ()), ("paper", (PAPER,))):
        config = copy.deepcopy(DEMO)
        for o in overrides:
            config = merge(config, o)
        schema_checked[name] = config_check.check(config, SCHEMA, [Layer("c", config)], root=REPO)
        assert [(c.arm, c.recipe) for c in schema_checked[name].chains] == [("paper", "dpo")]
    iterative = yaml.safe_load((REPO / "configs/iterative.yaml").read_text())
    config = merge(DEMO, iterative)
    chains = config_check.check(config, SCHEMA, [Layer("c", config)], root=REPO).chains
    assert [(c.arm, c.pairs["strategy"]) for c in chains] == [("paper", "random"),
                                                              ("max_min", "max_min")]  # fmt: skip
    override = {"dpo": {"recipes": ["configs/recipes/rft.yaml"]}}
    assert "dpo.recipes[0]: configs/recipes/rft.yaml is a 'rft' recipe" in error_of(override)
    arms = {"arms": {"z": {"pairs": {"seed": 5}, "dpo": {"overrides": {"beta": 0.5}}},
                     "a": {"dpo": {"recipe": "configs/recipes/dpo.yaml"}}}}  # fmt: skip
    config = check(arms)
    chains = config_check.chains(config)
    assert [c.arm for c in chains] == ["paper", "a", "z"]
    z = chains[2]
    assert z.pairs == {**config["pairs"], "seed": 5}
    assert z.overrides == {**config["dpo"]["overrides"], "beta": 0.5}
    assert chains[1].overrides == config["dpo"]["overrides"]


def test_a_release_date_needs_a_dated_format():
    dated = {"benchmarks": {"demo_eval": {"released_after": "2024-04-30"}}}
    check(dated)  # the demo's problems format may carry `released` (prepare checks each record)
    assert error_of({"benchmarks": {"demo_eval": {"released_after": "2024-02-30"}}}) == (
        "o1.yaml: benchmarks.demo_eval.released_after: '2024-02-30' is not a date YYYY-MM-DD"
    )
    humaneval = {"benchmarks": {"humaneval": {"released_after": "2024-04-30"}}}
    assert error_of(PAPER, humaneval).startswith(
        "o2.yaml: benchmarks.humaneval.released_after: format humaneval carries no release dates"
    )
