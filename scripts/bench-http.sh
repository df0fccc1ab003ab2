#!/usr/bin/env bash
# Serving under load, side by side with ingestion: `learn serve` with a large catalogue (random
# content vectors published straight to the catalogue changelog by `learn loadgen --catalogue`), 500 users with
# histories, then
#   1. ingestion alone: a burst of actions, time until every one is applied;
#   2. the same burst while wrk drives GET /v1/recommend (random users, k = 10) for SECONDS;
# and prints wrk's latency percentiles and errors and both ingestion rates as a ratio.
# Needs a Kafka-protocol broker and Redis (scripts/test-services.sh's, or KAFKA= / REDIS=):
#   scripts/bench-http.sh [ITEMS=100000] [SECONDS=30] [CONNECTIONS=8] [BURST=100000]
set -euo pipefail
cd "$(dirname "$0")/.."
items=${1:-100000}; seconds=${2:-30}; conns=${3:-8}; burst=${4:-100000}
port=${PORT:-8098}
command -v wrk >/dev/null || { apt-get update -qq && apt-get install -y -qq wrk >/dev/null; }
source scripts/lib/fresh-serve.sh
fresh_serve http "$port"
learn="target/release/learn --config $config"
status() { curl -sf "http://127.0.0.1:$port/v1/status" | python3 -c "import json,sys; print(json.load(sys.stdin)['$1'])"; }

$learn loadgen --catalogue "$items" --uploads-per-sec 20 --actions-per-sec 2000 --seconds 5
until (( $(status catalogue_items) >= items )); do sleep 1; done
echo "catalogue: $(status catalogue_items) items"

# Times a burst of actions from the first send until the service has applied them all.
ingest() {
  local before started
  before=$(status actions_applied); started=$(date +%s.%N)
  $learn loadgen --uploads-per-sec 1 --actions-per-sec 100000 --seconds "$(python3 -c "print($burst / 100000)")" \
    --seed "$1" >/dev/null
  local deadline=$((SECONDS + 300))
  until (( $(status actions_applied) >= before + burst )); do
    (( SECONDS < deadline )) || { echo "only $(( $(status actions_applied) - before )) of $burst applied after 300 s" >&2; exit 1; }
    sleep 0.05
  done
  python3 -c "print(round($burst / ($(date +%s.%N) - $started)))"
}
alone=$(ingest 11)
wrk -t2 -c"$conns" -d"${seconds}s" --timeout 5s -s scripts/lib/recommend.lua "http://127.0.0.1:$port" \
  >"$dir/wrk.txt" 2>&1 &
wrk_pid=$!
sleep 3
loaded=$(ingest 12)
wait $wrk_pid
IFS='|' read -r _ requests rps errors p50 p90 p99 p999 max < <(grep '^wrk|' "$dir/wrk.txt")
echo
echo "| catalogue | connections | requests | req/s | errors | p50 ms | p90 ms | p99 ms | p99.9 ms | max ms |"
echo "|---|---|---|---|---|---|---|---|---|---|"
echo "| $items | $conns | $requests | $rps | $errors | $p50 | $p90 | $p99 | $p999 | $max |"
echo
echo "ingestion of $burst actions: alone $alone actions/s, under HTTP load $loaded actions/s" \
  "(ratio $(python3 -c "print(round($loaded / $alone, 2))"))"
