# Two entry points (README): `make demo` runs the embedded demo end to end, `make test` the tests.
# Both set up everything they need first: Debian packages (bubblewrap for the sandbox, graphviz for
# DAG pictures) and a virtual environment with a CPU build of torch.
VENV ?= .venv
PYTHON ?= python3
CORES ?= 2
BIN := $(VENV)/bin
export PATH := $(abspath $(BIN)):$(PATH)

.PHONY: setup system demo test test-fast lint dag clean

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

demo: setup
	snakemake --cores $(CORES)
	@cat results/tables/table1.md results/tables/table2.md

# Everything (CI: .ci/run), with the 30 slowest tests listed at the end of the log.
test: setup
	pytest -q --durations=30

# The inner loop: no snakemake run or dry run, no SLURM cluster, nothing read from ../shared, no
# multi-rank training (markers: pyproject.toml). Under two minutes on 2 idle cores (84 s measured).
test-fast: setup
	pytest -q -m "not workflow and not slurm and not real_data and not slow" --durations=10

lint: setup
	ruff check src tests scripts bench
	snakefmt --check .
	snakemake --lint

dag: setup
	snakemake --rulegraph | dot -Tsvg > docs/rulegraph.svg

clean:
	rm -rf results logs benchmarks .snakemake
