#!/usr/bin/env bash
# CPU cost per ingested action with N `learn serve` processes in one group against one process, on
# the same broker and Redis (a Redis Cluster by default), side by side in one run:
#   KAFKA=127.0.0.1:9093 REDIS=redis://127.0.0.1:7101,redis://127.0.0.1:7102,redis://127.0.0.1:7103 \
#     scripts/bench-scale-out.sh [ACTIONS] [PROCESSES] [PARTITIONS]
# (CLUSTER=false with a single-node REDIS URL). For each group size: fresh topics and keys, the
# processes started (followers: no training, so the figure is ingestion's), their CPU time read from
# /proc once they are ready, ACTIONS actions produced by `learn loadgen`, and the CPU time read again
# once every action is applied; before producing, their CPU over 5 idle seconds (the fixed cost of a
# running process: polls, the changelog, popularity sync) is measured too. Prints actions per
# CPU-second of the service processes (Redis and the broker not counted) for each size, raw and
# with the idle rate taken out, and the ratios.
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
catalogue_topic = "$tag-item-catalogue"
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
  local before started idle
  idle=$(cpu_seconds "${pids[@]}")
  sleep 5
  idle=$(echo "scale=4; ($(cpu_seconds "${pids[@]}") - $idle) / 5" | bc) # CPU-s per second, all processes
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
  local cpu busy
  cpu=$(echo "$after - $before" | bc)
  busy=$(echo "$cpu - $idle * $elapsed" | bc)
  echo "$(echo "scale=0; $sent / $cpu" | bc) $(echo "scale=0; $sent / $busy" | bc) $(echo "scale=1; $elapsed / 1" | bc) $cpu $idle"
}

read -r one one_busy one_s one_cpu one_idle < <(run 1)
read -r many many_busy many_s many_cpu many_idle < <(run "$processes")
echo "actions $actions, partitions $partitions, redis cluster $cluster"
echo "| processes | actions per CPU-s | without the idle cost | CPU-s | wall s | idle CPU-s per s |"
echo "|---|---|---|---|---|---|"
echo "| 1 | $one | $one_busy | $one_cpu | $one_s | $one_idle |"
echo "| $processes | $many | $many_busy | $many_cpu | $many_s | $many_idle |"
echo "ratio ($processes / 1): $(echo "scale=2; $many / $one" | bc) raw, $(echo "scale=2; $many_busy / $one_busy" | bc) without the idle cost"
