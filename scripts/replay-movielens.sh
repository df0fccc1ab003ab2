#!/usr/bin/env bash
# Prequential replay of MovieLens 100K against a fresh `learn serve` (new topics, keys, checkpoints):
#   KAFKA=127.0.0.1:9093 REDIS=redis://127.0.0.1:6390/ scripts/replay-movielens.sh ML100K_DIR [learn replay options]
# e.g. scripts/replay-movielens.sh ../shared/data/ml-100k --max-rate 300 --eval-every 20 --window 250
# Config overrides go through the environment (LEARN__SERVING__POPULARITY_WEIGHT=0 ...). The report lands in
# runs/replay-<time>/ (replay.md, replay.json, replay.svg) with the service's log and final status.
set -euo pipefail
cd "$(dirname "$0")/.."
dataset=$1; shift
kafka=${KAFKA:-127.0.0.1:9093}; redis=${REDIS:-redis://127.0.0.1:6390/}
tag="replay-$(date +%s)"; dir="runs/$tag"; port=${PORT:-8098}
mkdir -p "$dir"
cat >"$dir/config.toml" <<TOML
[kafka]
brokers = "$kafka"
group_id = "$tag"
actions_topic = "$tag-actions"
items_topic = "$tag-items"
dead_letter_topic = "$tag-dead-letter"
item_embeddings_topic = "$tag-item-embeddings"
user_embeddings_topic = "$tag-user-embeddings"
[redis]
url = "$redis"
key_prefix = "$tag:"
[online]
checkpoint_dir = "$dir/checkpoints"
[serving]
addr = "127.0.0.1:$port"
TOML
cargo build --release -q
target/release/learn --config "$dir/config.toml" serve >"$dir/serve.log" 2>&1 &
pid=$!
trap 'kill $pid 2>/dev/null || true' EXIT
for _ in $(seq 1 100); do curl -sf "http://127.0.0.1:$port/healthz" >/dev/null && break; sleep 0.2; done
sleep 3 # consumer groups joined
target/release/learn --config "$dir/config.toml" replay --dataset "$dataset" --out "$dir" "$@"
target/release/learn --config "$dir/config.toml" status | tee "$dir/status.txt"
