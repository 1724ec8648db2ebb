#!/usr/bin/env bash
# Wheels for the GPU check's GRPO step (bench/gpu_check.sh): TRL and what importing its GRPO
# trainer needs beyond torch, transformers, accelerate and peft, downloaded into bench/wheels/
# (git-ignored) on a machine with PyPI access, to be copied to a GPU machine without a network.
# There bench/gpu_check.sh installs those of them that are missing and built for its Python;
# without them the check runs the mirror of TRL's GRPO loss (bench/gpu_check_train.py).
#
#   bench/gpu_wheels.sh --python-version 3.12   # the GPU machine's python3 (default: this one's)
#   bench/gpu_wheels.sh --no-arrow              # that machine has pandas and pyarrow already
#
# TRL 1.16.0's GRPO trainer imports datasets and pandas at its top (trl/trainer/grpo_trainer.py)
# and datasets imports pyarrow: pyarrow (43 MB) and pandas (12 MB) are most of the folder, about
# 56.4 MiB in all (--no-arrow: 2.8 MiB), under the 64 MiB a GPU machine may be brought. Hence
# datasets 4.8.5, the last that takes pyarrow 21 (datasets 5 needs pyarrow 24, 49 MB: over 64 MiB
# with pandas), and pandas 2.3.3 (numpy 1.26 or 2). Every wheel is fetched with --no-deps: this
# list is the whole set (found by importing the GRPO trainer on top of torch, transformers,
# accelerate and peft and listing the distributions it loaded).
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-$(command -v python3 || command -v python)}
PY_VERSION=$("$PYTHON" -c 'import sys; print(f"{sys.version_info[0]}.{sys.version_info[1]}")')
ARROW=1
DEST=bench/wheels
while [ $# -gt 0 ]; do
  case $1 in
    --python-version) PY_VERSION=$2; shift 2 ;;
    --no-arrow) ARROW=0; shift ;;
    --dest) DEST=$2; shift 2 ;;
    *) echo "usage: $0 [--python-version X.Y] [--no-arrow] [--dest DIR]" >&2; exit 2 ;;
  esac
done

PACKAGES=(
  trl==1.16.0            # the pin of pyproject.toml
  datasets==4.8.5        # imported by trl's trainers
  dill==0.4.1            # datasets
  multiprocess==0.70.19  # datasets
  xxhash==4.1.0          # datasets
  requests==2.34.2       # datasets (huggingface_hub 1.x and 2.x use httpx instead)
  urllib3==2.8.0         # requests
  certifi==2026.10.19.post1
  charset-normalizer==3.5.3
  idna==3.21
)
if [ "$ARROW" = 1 ]; then
  PACKAGES+=(
    pyarrow==21.0.0      # datasets
    pandas==2.3.3        # trl, datasets
    python-dateutil==2.9.0.post0 six==1.17.0 pytz==2026.6 tzdata==2026.6  # pandas
  )
fi
mkdir -p "$DEST"
rm -f "$DEST"/*.whl
# manylinux wheels for x86-64 Linux (GPU machines); pure-Python wheels match any platform.
"$PYTHON" -m pip download --no-deps --only-binary=:all: --dest "$DEST" \
  --python-version "$PY_VERSION" --implementation cp \
  --platform manylinux_2_28_x86_64 --platform manylinux_2_27_x86_64 \
  --platform manylinux_2_24_x86_64 --platform manylinux_2_17_x86_64 \
  --platform manylinux2014_x86_64 --platform manylinux1_x86_64 \
  "${PACKAGES[@]}"
ls -l "$DEST"
BYTES=$(du -sb "$DEST" | cut -f1)
echo "$DEST: $BYTES bytes ($(awk "BEGIN {printf \"%.1f\", $BYTES / 2^20}") MiB) for Python $PY_VERSION"
