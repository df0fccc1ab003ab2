#!/usr/bin/env bash
# One command from a fresh clone to a running demo: fetch the model if missing, build, run `learn demo`
# (librdkafka's mock cluster + in-process store: no servers needed). Arguments go to `learn demo`.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/fetch-model.sh
scripts/build-release.sh
exec target/release/learn demo "$@"
