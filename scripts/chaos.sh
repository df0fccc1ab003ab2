#!/usr/bin/env bash
# The fault-injection suite at full size against the real services (tansu + redis-server, started by
# scripts/test-services.sh; the crash loop uses librdkafka's mock cluster, see tests/crash_recovery.rs),
# then a summary table: scenario, faults injected, events produced, lost, duplicated.
# Usage: scripts/chaos.sh [ACTIONS (100000)] [FUZZ_CASES per property (1000000)] [MODEL_SEQUENCES (2000)]
# CI runs the same tests smaller (20,000 / 3,000 actions, 20,000 fuzz cases, 64 sequences).
set -euo pipefail
cd "$(dirname "$0")/.."
actions=${1:-100000} fuzz=${2:-1000000} sequences=${3:-2000}
mkdir -p runs
log=runs/chaos-$(date +%Y%m%d-%H%M%S).log
started=$SECONDS
status=0
LEARN_FAULTS_ACTIONS=$actions LEARN_FUZZ_CASES=$fuzz LEARN_MODEL_CASES=$sequences \
  scripts/test-services.sh --no-fail-fast --test faults --test crash_recovery --test properties \
  -- --nocapture --test-threads=1 >"$log" 2>&1 || status=$?
{
  echo "| scenario | faults injected | events | lost | duplicated |"
  echo "|---|---|---|---|---|"
  grep -ao 'chaos|.*' "$log" | sed 's/^chaos//; s/$/|/'
  if grep -q '^test decoders_never_panic_on_mangled_events ... ok' "$log" &&
    grep -q '^test decoders_never_panic_on_bytes ... ok' "$log"; then
    echo "| fuzzing | decoders and upload → item text: random bytes, mangled events | $((2 * fuzz)) inputs | 0 panics | – |"
  fi
} | tee runs/chaos-summary.md
grep -E '^test .* FAILED|^failures:' "$log" || true
echo "log: $log ($((SECONDS - started)) s); tests exit status $status"
exit $status
