#!/usr/bin/env bash
# Freshness benchmark: upload produced → aligned embedding written to Redis, at a steady load.
# Needs a Kafka-protocol broker and Redis (e.g. started by scripts/test-services.sh, or your own):
#   KAFKA=127.0.0.1:9093 REDIS=redis://127.0.0.1:6390/ scripts/bench-freshness.sh [UPLOADS/S] [ACTIONS/S] [SECONDS]
# Starts `learn serve` on fresh topics, runs `learn loadgen`, then prints the service's
# learn_freshness_seconds quantiles (Prometheus summary over the whole run) and stops the service.
set -euo pipefail
cd "$(dirname "$0")/.."
uploads=${1:-20}; actions=${2:-500}; seconds=${3:-60}
kafka=${KAFKA:-127.0.0.1:9093}; redis=${REDIS:-redis://127.0.0.1:6390/}
tag="fresh-$(date +%s)"; dir="runs/$tag"; port=${PORT:-8097}
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
sleep 3 # consumer group joined
target/release/learn --config "$dir/config.toml" loadgen --uploads-per-sec "$uploads" --actions-per-sec "$actions" --seconds "$seconds"
sleep 3
echo "freshness (seconds) at $uploads uploads/s + $actions actions/s for $seconds s:"
curl -s "http://127.0.0.1:$port/metrics" | grep -E '^learn_freshness_seconds|^learn_train_steps_total|^learn_items_embedded_total|^learn_encoder_batch_size'
target/release/learn --config "$dir/config.toml" status
