#!/usr/bin/env bash
# The GPU check: for random-init models of a 7B shape (DeepSeek-Coder-6.7B's config.json) and a
# 1B variant in bf16, HF-backend sampling tokens/s (n=8, 1,024 new tokens), a GRPO step (TRL's
# loss where TRL imports, else its mirror) and a DPO step (tokens/s, peak memory), and vLLM
# sampling where vLLM is installed; writes $OUT/gpu_check.json (every figure) and gpu_check.md
# (bench/gpu_check.py says exactly what is measured). For a machine with one CUDA GPU, torch,
# transformers, accelerate and peft, no internet, and this repository (codedpo is used from src/,
# not installed). TRL comes as wheels in bench/wheels/ (bench/gpu_wheels.sh, run where PyPI is
# reachable); those missing here are installed into a temporary folder, not into the Python's
# own packages. Under 10 minutes on one H100 by design: --budget-s (default 540) stops measuring
# in time (not yet measured on a GPU).
#
#   bench/gpu_check.sh            # on the GPU machine; results in $OUT (or ./gpu_check/)
#   bench/gpu_check.sh --smoke    # the same code on CPU with tiny shapes, in seconds
#   bench/gpu_check.sh --only 1b  # one model size
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-$(command -v python3 || command -v python)}
export PYTHONPATH="$PWD/src${PYTHONPATH:+:$PYTHONPATH}"
export HF_HUB_OFFLINE=1 HF_HUB_DISABLE_TELEMETRY=1 TOKENIZERS_PARALLELISM=false
export PYTORCH_CUDA_ALLOC_CONF=${PYTORCH_CUDA_ALLOC_CONF:-expandable_segments:True}
OUT=${OUT:-gpu_check}
WHEELS=${GPU_CHECK_WHEELS:-bench/wheels}
mkdir -p "$OUT"
if command -v nvidia-smi >/dev/null; then nvidia-smi > "$OUT/nvidia-smi.txt" 2>&1 || true; fi

if compgen -G "$WHEELS/*.whl" >/dev/null; then
  # The wheels whose distribution is not installed here (none where TRL and what it imports
  # are) and that this Python can load; reading package metadata only, this takes a moment.
  mapfile -t MISSING < <("$PYTHON" - "$WHEELS"/*.whl <<'EOF'
import sys
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

from packaging.tags import sys_tags
from packaging.utils import parse_wheel_filename

here, installed = set(sys_tags()), []
for path in sys.argv[1:]:
    name, _, _, tags = parse_wheel_filename(Path(path).name)
    try:
        installed.append(f"{name} {version(name)}")
    except PackageNotFoundError:
        if tags & here:
            print(path)
        else:
            print(f"{path}: not for this Python (bench/gpu_wheels.sh --python-version "
                  f"{sys.version_info[0]}.{sys.version_info[1]})", file=sys.stderr)
print(f"wheels: installed here already: {', '.join(installed) or 'none'}", file=sys.stderr)
EOF
  )
  SITE=$(mktemp -d "${TMPDIR:-/tmp}/gpu-check-site.XXXXXX")
  trap 'rm -rf "$SITE"' EXIT
  if [ ${#MISSING[@]} -gt 0 ]; then
    echo "installing into $SITE: ${MISSING[*]##*/}"
    # Without pip, unpacking does for these wheels (no scripts or data folders are needed).
    "$PYTHON" -m pip install -q --no-index --no-deps --no-compile --target "$SITE" "${MISSING[@]}" \
      || for wheel in "${MISSING[@]}"; do "$PYTHON" -m zipfile -e "$wheel" "$SITE"; done
  fi
  export PYTHONPATH="$PYTHONPATH:$SITE"
fi
"$PYTHON" bench/gpu_check.py --out "$OUT" "$@"
