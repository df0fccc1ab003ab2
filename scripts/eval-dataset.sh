#!/usr/bin/env bash
# Reproduces the offline comparison on one dataset: trains LEARN and SASRec, then evaluates them with
# the raw-content and popularity baselines in one run (leave-one-out, full ranking).
# Usage: scripts/eval-dataset.sh DATASET_DIR [OUT_DIR] [extra `learn train`/`learn eval` options, e.g. --cold-items 0.1]
set -euo pipefail
cd "$(dirname "$0")/.."
dataset="$1"; shift
out="${1:-runs/$(basename "$dataset")}"; shift || true
scripts/fetch-model.sh
cargo build --release --bin learn
learn=target/release/learn
for model in learn sasrec; do
  /usr/bin/time -f "$model: %e s wall" "$learn" train --dataset "$dataset" --out "$out" --model "$model" "$@"
done
"$learn" eval --dataset "$dataset" --out "$out" "$@"
