"""Mistakes found at the dry run, not inside a job (codedpo.workflow.preflight): a model that
cannot load names its config key; a Hub id missing from the cache stops the dry run when the Hub
is off; a policy name that is a typo of a shown one is a warning with "did you mean"."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import yaml
from workflow_helpers import copy_workflow, merge, snakemake

from codedpo.workflow import preflight
from codedpo.workflow.config import ConfigError, Layer, check, load_schema

REPO = Path(__file__).resolve().parents[1]
SCHEMA = load_schema(REPO / "schemas/config.schema.yaml")
DEMO = yaml.safe_load((REPO / "config.yaml").read_text())
# The real config and tokenizer files of a paper model, without weights (../shared/models).
SHARED_MODEL = REPO.parent / "shared" / "models" / "deepseek-ai__deepseek-coder-6.7b-instruct"


def checked(override: dict) -> tuple[dict, list[Layer]]:
    config = merge(DEMO, override)
    layers = [Layer("config.yaml", DEMO), Layer("o.yaml", override)]
    check(config, SCHEMA, layers, root=REPO)
    return config, layers


def cache_with(tmp_path: Path, repo_id: str) -> Path:
    """A Hugging Face hub cache holding ``repo_id``'s config.json, in the layout the hub library
    writes (models--owner--name/refs/main -> snapshots/<revision>/)."""
    root = tmp_path / "hub"
    repo = root / f"models--{repo_id.replace('/', '--')}"
    (repo / "refs").mkdir(parents=True)
    (repo / "refs" / "main").write_text("0" * 40)
    snapshot = repo / "snapshots" / ("0" * 40)
    snapshot.mkdir(parents=True)
    (snapshot / "config.json").write_text('{"model_type": "llama"}')
    return root


@pytest.fixture
def hub(monkeypatch, tmp_path):
    """The hub library's cache and offline switch, set for this test."""
    from huggingface_hub import constants

    def set_hub(offline: bool, cached: str | None = None) -> None:
        cache = cache_with(tmp_path, cached) if cached else tmp_path / "empty"
        monkeypatch.setattr(constants, "HF_HUB_CACHE", str(cache))
        monkeypatch.setattr(constants, "HF_HUB_OFFLINE", offline)

    return set_hub


def test_a_missing_model_directory_names_the_key():
    config, layers = checked({"models": {"mine": {"hub": "./no/such/model"}}})
    with pytest.raises(ConfigError, match=r"^o.yaml: models.mine.hub: ./no/such/model: model "
                       "directory not found$"):  # fmt: skip
        preflight.check_models(config, layers, REPO)


def test_a_directory_without_a_model_names_the_key(tmp_path):
    (tmp_path / "empty").mkdir()
    config, layers = checked({"models": {"mine": {"hub": str(tmp_path / "empty")}}})
    with pytest.raises(ConfigError, match=r"models.mine.hub: .*empty: not a model directory"):
        preflight.check_models(config, layers, REPO)


@pytest.mark.real_data
@pytest.mark.skipif(not SHARED_MODEL.exists(), reason="../shared/models not present")
def test_a_model_directory_passes():
    config, layers = checked({"models": {"mine": {"hub": str(SHARED_MODEL)}}})
    assert preflight.check_models(config, layers, REPO) == []


def test_a_hub_id_not_in_the_cache_stops_the_dry_run_when_the_hub_is_off(hub):
    config, layers = checked({"models": {"mine": {"hub": "someone/some-model"}}})
    hub(offline=True)
    with pytest.raises(ConfigError, match=r"^o.yaml: models.mine.hub: someone/some-model: not in "
                       r"the Hugging Face cache, and HF_HUB_OFFLINE=1"):  # fmt: skip
        preflight.check_models(config, layers, REPO)
    hub(offline=False)  # the first job downloads it: a warning, no error
    (warning,) = preflight.check_models(config, layers, REPO)
    assert warning.startswith("models.mine.hub: someone/some-model is not in the Hugging Face")
    hub(offline=True, cached="someone/some-model")  # downloaded before: fine offline
    assert preflight.check_models(config, layers, REPO) == []


def test_a_policy_no_table_shows_close_to_a_shown_one_is_a_warning():
    config, _ = checked({"models": {"demo-qwen": {"demo": {"family": "codeqwen"}}}})
    assert preflight.check_unshown_policies(config) == [
        "models.demo-qwen: no table shows it (tables.models: demo-codeqwen, demo-deepseek-coder, "
        "demo-codellama), yet its jobs would run; did you mean 'demo-codeqwen'?"
    ]
    # a policy of its own name, or one whose pairs train a shown policy (Table 2), is no typo
    config, _ = checked({"models": {"reviewer": {"demo": {"family": "codeqwen"}}}})
    assert preflight.check_unshown_policies(config) == []
    config, _ = checked({"tables": {"models": ["demo-codeqwen"]}})
    assert preflight.check_unshown_policies(config) == []  # demo-deepseek-coder's pairs: Table 2


@pytest.mark.workflow
def test_the_dry_run_stops_before_planning_and_warns_once(tmp_path):
    workdir = copy_workflow(tmp_path / "wf")
    (workdir / "o.yaml").write_text(yaml.safe_dump({"models": {"mine": {"hub": "a/b"}}}))
    env_keys = ("HF_HUB_OFFLINE", "HF_HUB_CACHE")
    saved = {k: os.environ.get(k) for k in env_keys}
    os.environ.update({"HF_HUB_OFFLINE": "1", "HF_HUB_CACHE": str(tmp_path / "cache")})
    try:
        proc = snakemake(workdir, "-n", "--configfile", "o.yaml", check=False)
    finally:
        for k, v in saved.items():
            os.environ.pop(k, None) if v is None else os.environ.__setitem__(k, v)
    assert proc.returncode == 1
    assert "config error: o.yaml: models.mine.hub: a/b: not in the Hugging Face cache" in (
        proc.stderr
    )
    assert "Job stats" not in proc.stdout + proc.stderr
    (workdir / "t.yaml").write_text(yaml.safe_dump({"models": {"demo-qwen": {"demo": {}}}}))
    proc = snakemake(workdir, "-n", "--configfile", "t.yaml")
    assert proc.stderr.count("config warning: models.demo-qwen: no table shows it") == 1
