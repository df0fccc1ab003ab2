# Sourced by the benchmark scripts: starts `learn serve` on fresh topics, Redis keys and checkpoints.
#   fresh_serve NAME PORT   → sets $dir (runs/NAME-<time>/, with config.toml and serve.log) and $config,
#                             waits until the HTTP API answers and the consumer groups have joined;
#                             the service is stopped when the calling script exits.
# KAFKA and REDIS pick the servers (default: the loopback ports scripts/test-services.sh uses).
fresh_serve() {
  local tag="$1-$(date +%s)" port=$2
  dir="runs/$tag"; config="$dir/config.toml"
  mkdir -p "$dir"
  cat >"$config" <<TOML
[kafka]
brokers = "${KAFKA:-127.0.0.1:9093}"
group_id = "$tag"
actions_topic = "$tag-actions"
items_topic = "$tag-items"
dead_letter_topic = "$tag-dead-letter"
item_embeddings_topic = "$tag-item-embeddings"
user_embeddings_topic = "$tag-user-embeddings"
[redis]
url = "${REDIS:-redis://127.0.0.1:6390/}"
key_prefix = "$tag:"
[online]
checkpoint_dir = "$dir/checkpoints"
[serving]
addr = "127.0.0.1:$port"
TOML
  cargo build --release -q
  target/release/learn --config "$config" serve >"$dir/serve.log" 2>&1 &
  serve_pid=$!
  trap 'kill $serve_pid 2>/dev/null || true' EXIT
  for _ in $(seq 1 100); do curl -sf "http://127.0.0.1:$port/healthz" >/dev/null && break; sleep 0.2; done
  sleep 3 # consumer groups joined
}
