#!/usr/bin/env bash
# The value of online updates on a real stream (Monolith-style): MovieLens 100K split in time. The events
# before the split are the history: exported as a dataset, trained offline by `learn train` (the defaults,
# selected on its own validation split), and imported as the warm start of a fresh `learn serve`. Then both
# that service and a second one that starts from scratch (same topics, its own consumer group, keys and
# checkpoints) ingest the history, and the rest is streamed and evaluated test-then-train on the same probes:
# popularity so far, the offline model frozen, the offline model + online updates, online from scratch.
#   KAFKA=127.0.0.1:9093 REDIS=redis://127.0.0.1:6390/ scripts/replay-split.sh ML100K_DIR [SPLIT] [learn replay options]
# e.g. scripts/replay-split.sh ../shared/data/ml-100k 0.5 --max-rate 300 --eval-every 20 --window 250
# SPLIT: a fraction of the events (default 0.5) or a Unix time in seconds. The report lands in
# runs/split-<time>/ (replay.md, replay.json, replay.svg; offline/ holds the offline run's report).
set -euo pipefail
cd "$(dirname "$0")/.."
dataset=$1; split=${2:-0.5}; shift; (($#)) && shift
port=${PORT:-8098}
source scripts/lib/fresh-serve.sh
tag="split-$(date +%s)"; base="runs/$tag"
mkdir -p "$base"
cargo build --release -q
learn=target/release/learn
$learn replay --dataset "$dataset" --split "$split" --export "$base/history" "$@" | tee "$base/export.txt"
# Offline: the same command a platform runs on its logs (epochs chosen on the history's validation split).
$learn train --dataset "$base/history" --out "$base/offline" 2>&1 | tail -n 3 | tee "$base/offline.txt"
serve_on "$base" warm "$port" "$tag" "warm_start = \"$base/offline\""
warm=$config
serve_on "$base" scratch $((port + 1)) "$tag"
$learn --config "$warm" replay --dataset "$dataset" --split "$split" --scratch-url "http://127.0.0.1:$((port + 1))" \
  --out "$base" "$@"
$learn --config "$warm" status | tee "$base/status-warm.txt"
$learn --config "$config" status | tee "$base/status-scratch.txt"
