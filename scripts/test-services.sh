#!/usr/bin/env bash
# The project's test command: installs (when missing) and starts the services the tests need on
# loopback — redis-server from Debian and the Kafka-protocol broker tansu (crates.io, SQLite engine) —
# fetches the two frozen encoders (MiniLM, SmolLM2), runs `cargo test --workspace` against them, and stops both services at the end.
# The first run builds tansu (~20 min on 2 cores); later runs reuse ~/.cargo/bin/tansu.
# Extra arguments go to `cargo test` (e.g. scripts/test-services.sh --release).
set -euo pipefail
cd "$(dirname "$0")/.."
root="$PWD"
redis_port="${LEARN_TEST_REDIS_PORT:-6390}"
kafka_port="${LEARN_TEST_KAFKA_PORT:-9093}"
state="$root/.services"
export PATH="$HOME/.cargo/bin:$PATH"

log() { echo "[test-services] $*"; }

if ! command -v redis-server >/dev/null; then
  log "installing redis-server (Debian)"
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq redis-server >/dev/null
fi
if ! command -v tansu >/dev/null; then
  log "building tansu from crates.io (first run only, ~20 min)"
  cargo install tansu --locked --features dynostore,libsql
fi
scripts/fetch-model.sh minilm
scripts/fetch-model.sh smollm2

rm -rf "$state" && mkdir -p "$state"
stop() {
  log "stopping services"
  [[ -f "$state/tansu.pid" ]] && kill "$(cat "$state/tansu.pid")" 2>/dev/null || true
  redis-cli -p "$redis_port" shutdown nosave >/dev/null 2>&1 || true
}
trap stop EXIT

redis-server --bind 127.0.0.1 --port "$redis_port" --save '' --appendonly no --dir "$state" \
  --daemonize yes --pidfile "$state/redis.pid" --logfile "$state/redis.log"
# tansu reads .env in its working directory: start it in the empty state directory.
(cd "$state" && exec tansu broker --listener-url "tcp://127.0.0.1:$kafka_port" \
  --advertised-listener-url "tcp://127.0.0.1:$kafka_port" \
  --storage-engine "sqlite://tansu.db" --silent >"$state/tansu.log" 2>&1) &
echo $! >"$state/tansu.pid"

for _ in $(seq 1 100); do
  redis-cli -p "$redis_port" ping 2>/dev/null | grep -q PONG && (exec 3<>"/dev/tcp/127.0.0.1/$kafka_port") 2>/dev/null && break
  sleep 0.2
done
redis-cli -p "$redis_port" ping | grep -q PONG || { log "redis did not start"; exit 1; }
(exec 3<>"/dev/tcp/127.0.0.1/$kafka_port") 2>/dev/null || { log "tansu did not start:"; cat "$state/tansu.log"; exit 1; }
log "redis on 127.0.0.1:$redis_port, tansu on 127.0.0.1:$kafka_port"

export LEARN_TEST_REDIS="redis://127.0.0.1:$redis_port/"
export LEARN_TEST_KAFKA="127.0.0.1:$kafka_port"
export LEARN_TEST_MODEL_DIR="$root/models/all-MiniLM-L6-v2"
export LEARN_TEST_DECODER_MODEL="$root/models/SmolLM2-135M-Instruct.Q4_1.gguf"
cargo test --workspace "$@"
