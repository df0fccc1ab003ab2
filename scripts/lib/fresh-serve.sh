# Sourced by the benchmark scripts: starts `learn serve` on fresh topics, Redis keys and checkpoints.
#   fresh_serve NAME PORT   → sets $dir (runs/NAME-<time>/, with config.toml and serve.log) and $config,
#                             waits until the HTTP API answers and the consumer groups have joined;
#                             the service is stopped when the calling script exits.
#   serve_on DIR NAME PORT TOPICS [ONLINE]
#                           → one more `learn serve` with its own consumer group NAME, Redis keys and
#                             checkpoints under DIR/NAME/, reading the topics TOPICS-* (so two services
#                             can learn from one stream); ONLINE: lines for its [online] section. Sets $config.
# KAFKA and REDIS pick the servers (default: the loopback ports scripts/test-services.sh uses).
serve_pids=()
trap 'for p in "${serve_pids[@]}"; do kill "$p" 2>/dev/null || true; done' EXIT

serve_on() {
  local base=$1 name=$2 port=$3 topics=$4 extra=${5:-}
  mkdir -p "$base/$name"
  config="$base/$name/config.toml"
  cat >"$config" <<TOML
[kafka]
brokers = "${KAFKA:-127.0.0.1:9093}"
group_id = "$topics-$name"
actions_topic = "$topics-actions"
items_topic = "$topics-items"
dead_letter_topic = "$topics-dead-letter"
item_embeddings_topic = "$topics-$name-item-embeddings"
catalogue_topic = "$topics-$name-item-catalogue"
user_embeddings_topic = "$topics-$name-user-embeddings"
[redis]
url = "${REDIS:-redis://127.0.0.1:6390/}"
key_prefix = "$topics-$name:"
[online]
checkpoint_dir = "$base/$name/checkpoints"
$extra
[serving]
addr = "127.0.0.1:$port"
TOML
  cargo build --release -q
  target/release/learn --config "$config" serve >"$base/$name/serve.log" 2>&1 &
  serve_pids+=($!)
  for _ in $(seq 1 300); do curl -sf "http://127.0.0.1:$port/healthz" >/dev/null && break; sleep 0.2; done
  sleep 3 # consumer groups joined
}

fresh_serve() {
  local tag="$1-$(date +%s)" port=$2
  dir="runs/$tag"
  serve_on "runs" "$tag" "$port" "$tag"
}
