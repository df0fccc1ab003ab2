#!/usr/bin/env bash
# CPU cost per ingested action with N `learn serve` processes in one group against one process, on
# the same broker and Redis (a Redis Cluster by default), side by side in one run:
#   KAFKA=127.0.0.1:9093 REDIS=redis://127.0.0.1:7101,redis://127.0.0.1:7102,redis://127.0.0.1:7103 \
#     scripts/bench-scale-out.sh [ACTIONS] [PROCESSES] [PARTITIONS]
# (CLUSTER=false with a single-node REDIS URL). For each group size: fresh topics and keys, the
# processes started (followers: no training, so the figure is ingestion's), their CPU time read from
# /proc once they are ready, ACTIONS actions produced by `learn loadgen`, and the CPU time read again
# once every action is applied. Prints actions per CPU-second of the service processes (Redis and the
# broker not counted) for each size and the ratio.
set -euo pipefail
cd "$(dirname "$0")/.."
actions=${1:-100000}; processes=${2:-3}; partitions=${3:-6}
kafka=${KAFKA:-127.0.0.1:9093}
redis=${REDIS:-redis://127.0.0.1:7101,redis://127.0.0.1:7102,redis://127.0.0.1:7103}
cluster=${CLUSTER:-true}
cargo build --release -q
learn=target/release/learn
ticks=$(getconf CLK_TCK)
pids=()
trap 'kill "${pids[@]}" 2>/dev/null || true' EXIT

cpu_seconds() { # total utime + stime of the given pids
  local total=0
  for pid in "$@"; do
    read -r -a stat <"/proc/$pid/stat"
    total=$((total + stat[13] + stat[14]))
  done
  echo "scale=3; $total / $ticks" | bc
}

run() { # run N → prints "actions_per_cpu_second seconds"
  local n=$1 tag="scale-$1-$(date +%s)" dir config
  dir="runs/$tag"; config="$dir/config.toml"; mkdir -p "$dir"
  cat >"$config" <<TOML
[kafka]
brokers = "$kafka"
group_id = "$tag"
actions_topic = "$tag-actions"
items_topic = "$tag-items"
dead_letter_topic = "$tag-dead-letter"
item_embeddings_topic = "$tag-item-embeddings"
user_embeddings_topic = "$tag-user-embeddings"
topic_partitions = $partitions
[redis]
url = "$redis"
cluster = $cluster
key_prefix = "$tag:"
[online]
role = "follower"
checkpoint_dir = "$dir/checkpoints"
TOML
  pids=()
  local ports=()
  for i in $(seq 1 "$n"); do
    local port=$((8200 + i))
    LEARN__SERVING__ADDR="127.0.0.1:$port" $learn --config "$config" serve >"$dir/serve-$i.log" 2>&1 &
    pids+=($!); ports+=("$port")
  done
  for port in "${ports[@]}"; do
    for _ in $(seq 1 150); do curl -sf "http://127.0.0.1:$port/readyz" >/dev/null && break; sleep 0.2; done
  done
  sleep 5 # the group settles on its final assignment
  local before started
  before=$(cpu_seconds "${pids[@]}")
  started=$(date +%s.%N)
  $learn --config "$config" loadgen --uploads-per-sec 1 --actions-per-sec 50000 --seconds "$((actions / 50000))" >"$dir/loadgen.log"
  local sent=$((actions / 50000 * 50000))
  while :; do
    local applied=0
    for port in "${ports[@]}"; do
      applied=$((applied + $(curl -sf "http://127.0.0.1:$port/v1/status" | python3 -c 'import json,sys; print(json.load(sys.stdin)["actions_applied"])')))
    done
    ((applied >= sent)) && break
    sleep 0.2
  done
  local after elapsed
  after=$(cpu_seconds "${pids[@]}")
  elapsed=$(echo "$(date +%s.%N) - $started" | bc)
  kill "${pids[@]}"; wait "${pids[@]}" 2>/dev/null || true
  echo "$(echo "scale=0; $sent / ($after - $before)" | bc) $(echo "scale=1; $elapsed / 1" | bc) $(echo "$after - $before" | bc)"
}

read -r one one_s one_cpu < <(run 1)
read -r many many_s many_cpu < <(run "$processes")
echo "actions $actions, partitions $partitions, redis cluster $cluster"
echo "1 process:           $one actions per CPU-second ($one_cpu CPU-s, $one_s s wall)"
echo "$processes processes:         $many actions per CPU-second ($many_cpu CPU-s, $many_s s wall)"
echo "ratio (N / 1):       $(echo "scale=2; $many / $one" | bc)"
