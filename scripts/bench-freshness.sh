#!/usr/bin/env bash
# Freshness benchmark: upload produced → aligned embedding written to Redis, at a steady load.
# Needs a Kafka-protocol broker and Redis (e.g. started by scripts/test-services.sh, or your own):
#   KAFKA=127.0.0.1:9093 REDIS=redis://127.0.0.1:6390/ scripts/bench-freshness.sh [UPLOADS/S] [ACTIONS/S] [SECONDS]
# Starts `learn serve` on fresh topics, runs `learn loadgen --probe` (which also measures freshness
# from outside: it polls Redis for each upload's aligned embedding), then prints the service's own
# learn_freshness_seconds percentiles and per-stage breakdown (`learn status`) and stops the service.
set -euo pipefail
cd "$(dirname "$0")/.."
uploads=${1:-20}; actions=${2:-500}; seconds=${3:-60}
port=${PORT:-8097}
source scripts/lib/fresh-serve.sh
fresh_serve fresh "$port"
echo "freshness at $uploads uploads/s + $actions actions/s for $seconds s:"
target/release/learn --config "$config" loadgen --uploads-per-sec "$uploads" --actions-per-sec "$actions" --seconds "$seconds" --probe
sleep 1
target/release/learn --config "$config" status
