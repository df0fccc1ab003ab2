#!/usr/bin/env bash
# Prequential replay of MovieLens 100K against a fresh `learn serve` (new topics, keys, checkpoints):
#   KAFKA=127.0.0.1:9093 REDIS=redis://127.0.0.1:6390/ scripts/replay-movielens.sh ML100K_DIR [learn replay options]
# e.g. scripts/replay-movielens.sh ../shared/data/ml-100k --max-rate 300 --eval-every 20 --window 250
# Config overrides go through the environment (LEARN__SERVING__POPULARITY_WEIGHT=0 ...). The report lands in
# runs/replay-<time>/ (replay.md, replay.json, replay.svg) with the service's log and final status.
set -euo pipefail
cd "$(dirname "$0")/.."
dataset=$1; shift
port=${PORT:-8098}
source scripts/lib/fresh-serve.sh
fresh_serve replay "$port"
target/release/learn --config "$config" replay --dataset "$dataset" --out "$dir" "$@"
target/release/learn --config "$config" status | tee "$dir/status.txt"
