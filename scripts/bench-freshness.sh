#!/usr/bin/env bash
# Freshness benchmark: upload produced → aligned embedding written to Redis, at a steady load.
# Needs a Kafka-protocol broker and Redis (e.g. started by scripts/test-services.sh, or your own):
#   KAFKA=127.0.0.1:9093 REDIS=redis://127.0.0.1:6390/ scripts/bench-freshness.sh [UPLOADS/S] [ACTIONS/S] [SECONDS]
# Starts `learn serve` on fresh topics, runs `learn loadgen`, then prints the service's
# learn_freshness_seconds quantiles (Prometheus summary over the whole run) and stops the service.
set -euo pipefail
cd "$(dirname "$0")/.."
uploads=${1:-20}; actions=${2:-500}; seconds=${3:-60}
port=${PORT:-8097}
source scripts/lib/fresh-serve.sh
fresh_serve fresh "$port"
target/release/learn --config "$config" loadgen --uploads-per-sec "$uploads" --actions-per-sec "$actions" --seconds "$seconds"
sleep 3
echo "freshness (seconds) at $uploads uploads/s + $actions actions/s for $seconds s:"
curl -s "http://127.0.0.1:$port/metrics" | grep -E '^learn_freshness_seconds|^learn_train_steps_total|^learn_items_embedded_total|^learn_encoder_batch_size'
target/release/learn --config "$config" status
