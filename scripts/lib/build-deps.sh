# Sourced by the README's commands: installs from Debian what the build links against when it is
# missing — OpenSSL headers and pkg-config (librdkafka and redis-rs are built with TLS).
build_deps() {
  local need=()
  command -v pkg-config >/dev/null && pkg-config --exists openssl 2>/dev/null || need+=(libssl-dev pkg-config)
  if ((${#need[@]})); then
    echo "installing ${need[*]} (Debian): the Kafka and Redis clients are built with TLS" >&2
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >/dev/null
  fi
}
