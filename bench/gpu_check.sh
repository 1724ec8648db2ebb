#!/usr/bin/env bash
# The GPU check (issue 15): HF-backend sampling tokens/s at n=8, and DPO-step tokens/s and peak
# memory with precomputed reference log-probs on and off, for random-init models of a 7B shape
# (DeepSeek-Coder-6.7B's config.json) and a 1B variant in bf16; prints one table (bench/gpu_check.py
# says exactly what is measured). For a machine with one CUDA GPU, torch, transformers and
# accelerate, no internet, no TRL / DeepSpeed / vLLM, and this repository (codedpo is used from
# src/, not installed). Under 10 minutes on one H100/H200-class GPU by design (not yet measured).
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
mkdir -p "$OUT"
if command -v nvidia-smi >/dev/null; then nvidia-smi > "$OUT/nvidia-smi.txt" 2>&1 || true; fi
exec "$PYTHON" bench/gpu_check.py --out "$OUT" "$@"
