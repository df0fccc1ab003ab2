#!/usr/bin/env bash
# The release build of `learn`, one command for every place that makes the binary: CI (.ci/run), the
# Dockerfile's build stage and scripts/demo.sh. Installs the Debian build dependencies when missing.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib/build-deps.sh
build_deps
cargo build --release --locked --bin learn "$@"
