#!/usr/bin/env bash
# The project's test command: installs (when missing) and starts the services the tests need on
# loopback — redis-server from Debian and the Kafka-protocol broker tansu (crates.io, SQLite engine) —
# fetches the three frozen encoders (MiniLM, nomic-embed-text, SmolLM2), runs `cargo test --workspace` against them, and stops both services at the end.
# The first run builds tansu (~20 min on 2 cores); later runs reuse ~/.cargo/bin/tansu.
# Extra arguments go to `cargo test` (e.g. scripts/test-services.sh --release).
set -euo pipefail
cd "$(dirname "$0")/.."
root="$PWD"
redis_port="${LEARN_TEST_REDIS_PORT:-6390}"
kafka_port="${LEARN_TEST_KAFKA_PORT:-9093}"
redis_tls_port=$((redis_port + 2))
cluster_port="${LEARN_TEST_REDIS_CLUSTER_PORT:-7101}" # three cluster primaries: this port and the next two
kafka_tls_port=$((kafka_port + 2)) # the TLS endpoint; the second tansu listens one above it
state="$root/.services"
tls="$state/tls"
export PATH="$HOME/.cargo/bin:$PATH"

log() { echo "[test-services] $*"; }

if ! command -v redis-server >/dev/null; then
  log "installing redis-server (Debian)"
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq redis-server >/dev/null
fi
source scripts/lib/build-deps.sh
build_deps
need_apt=()
command -v socat >/dev/null || need_apt+=(socat)
command -v openssl >/dev/null || need_apt+=(openssl)
command -v promtool >/dev/null || need_apt+=(prometheus) # promtool: tests/ops_kit.rs
if ((${#need_apt[@]})); then
  log "installing ${need_apt[*]} (Debian): the TLS test endpoints, promtool"
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need_apt[@]}" >/dev/null
fi
if ! command -v tansu >/dev/null; then
  log "building tansu from crates.io (first run only, ~20 min)"
  cargo install tansu --locked --features dynostore,libsql
fi
scripts/fetch-model.sh minilm
scripts/fetch-model.sh smollm2
scripts/fetch-model.sh nomic

rm -rf "$state" && mkdir -p "$state"
stop() {
  log "stopping services"
  for pid in tansu tansu-tls socat; do
    [[ -f "$state/$pid.pid" ]] && kill "$(cat "$state/$pid.pid")" 2>/dev/null || true
  done
  redis-cli -p "$redis_port" shutdown nosave >/dev/null 2>&1 || true
  redis-cli -p "$redis_tls_port" --tls --cacert "$tls/ca.pem" shutdown nosave >/dev/null 2>&1 || true
  for port in $cluster_ports; do redis-cli -p "$port" shutdown nosave >/dev/null 2>&1 || true; done
}
cluster_ports="$cluster_port $((cluster_port + 1)) $((cluster_port + 2))"
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

# A Redis Cluster of three primaries (tests/cluster.rs, tests/redis_store.rs run on it too).
for port in $cluster_ports; do
  mkdir -p "$state/cluster-$port"
  redis-server --bind 127.0.0.1 --port "$port" --cluster-enabled yes --cluster-config-file nodes.conf \
    --cluster-node-timeout 2000 --save '' --appendonly no --dir "$state/cluster-$port" --daemonize yes \
    --pidfile "$state/cluster-$port/redis.pid" --logfile "$state/cluster-$port/redis.log"
done
for port in $cluster_ports; do
  for _ in $(seq 1 50); do redis-cli -p "$port" ping 2>/dev/null | grep -q PONG && break; sleep 0.1; done
done
redis-cli --cluster create $(for port in $cluster_ports; do printf '127.0.0.1:%s ' "$port"; done) \
  --cluster-replicas 0 --cluster-yes >"$state/cluster-create.log"
for _ in $(seq 1 100); do
  redis-cli -p "$cluster_port" cluster info | grep -q 'cluster_state:ok' && break
  sleep 0.2
done
redis-cli -p "$cluster_port" cluster info | grep -q 'cluster_state:ok' || { log "redis cluster did not form"; exit 1; }
log "redis cluster (3 primaries) on 127.0.0.1:$cluster_port-$((cluster_port + 2))"
export LEARN_TEST_REDIS_CLUSTER="$(for port in $cluster_ports; do printf 'redis://127.0.0.1:%s,' "$port"; done | sed 's/,$//')"

# TLS endpoints (tests/tls.rs): a throwaway CA and a server certificate for 127.0.0.1, redis-server
# with a TLS port, and a second tansu behind socat's OpenSSL listener (tansu 0.6 does not use --cert).
mkdir -p "$tls"
openssl req -x509 -newkey rsa:2048 -nodes -keyout "$tls/ca.key" -out "$tls/ca.pem" -days 2 \
  -subj "/CN=learn-test-ca" 2>/dev/null
openssl req -newkey rsa:2048 -nodes -keyout "$tls/server.key" -out "$tls/server.csr" -subj "/CN=127.0.0.1" 2>/dev/null
openssl x509 -req -in "$tls/server.csr" -CA "$tls/ca.pem" -CAkey "$tls/ca.key" -CAcreateserial -days 2 \
  -extfile <(printf 'subjectAltName=IP:127.0.0.1,DNS:localhost\n') -out "$tls/server.pem" 2>/dev/null
redis-server --bind 127.0.0.1 --port 0 --tls-port "$redis_tls_port" --tls-cert-file "$tls/server.pem" \
  --tls-key-file "$tls/server.key" --tls-ca-cert-file "$tls/ca.pem" --tls-auth-clients no --save '' \
  --appendonly no --dir "$state" --daemonize yes --pidfile "$state/redis-tls.pid" --logfile "$state/redis-tls.log"
mkdir -p "$state/tls-broker"
(cd "$state/tls-broker" && exec tansu broker --listener-url "tcp://127.0.0.1:$((kafka_tls_port + 1))" \
  --advertised-listener-url "tcp://127.0.0.1:$kafka_tls_port" \
  --storage-engine "sqlite://tansu.db" --silent >"$state/tansu-tls.log" 2>&1) &
echo $! >"$state/tansu-tls.pid"
socat "OPENSSL-LISTEN:$kafka_tls_port,bind=127.0.0.1,reuseaddr,fork,cert=$tls/server.pem,key=$tls/server.key,verify=0" \
  "TCP:127.0.0.1:$((kafka_tls_port + 1))" 2>"$state/socat.log" &
echo $! >"$state/socat.pid"
for _ in $(seq 1 100); do
  (exec 3<>"/dev/tcp/127.0.0.1/$((kafka_tls_port + 1))") 2>/dev/null && break
  sleep 0.2
done
log "TLS: redis on 127.0.0.1:$redis_tls_port, tansu behind TLS on 127.0.0.1:$kafka_tls_port"
export LEARN_TEST_REDIS_TLS="rediss://127.0.0.1:$redis_tls_port/"
export LEARN_TEST_KAFKA_TLS="127.0.0.1:$kafka_tls_port"
export LEARN_TEST_TLS_CA="$tls/ca.pem"

export LEARN_TEST_PROMTOOL="$(command -v promtool)"
export LEARN_TEST_REDIS="redis://127.0.0.1:$redis_port/"
export LEARN_TEST_KAFKA="127.0.0.1:$kafka_port"
export LEARN_TEST_MODEL_DIR="$root/models/all-MiniLM-L6-v2"
export LEARN_TEST_DECODER_MODEL="$root/models/SmolLM2-135M-Instruct.Q4_1.gguf"
export LEARN_TEST_NOMIC_MODEL="$root/models/nomic-embed-text-v1.5.f16.gguf"
cargo test --workspace "$@"
