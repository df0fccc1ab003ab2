#!/usr/bin/env bash
# Frozen-encoder throughput, learn-stream vs the onnxruntime reference, in one run: same weights,
# same texts (tests/fixtures/encoder/titles.json, with the model's own task prefix), same thread count,
# batch 1/16/64, for MiniLM, SmolLM2-135M and (MODELS="minilm nomic smollm2") nomic-embed-text-v1.5.
# The two runtimes alternate per (model, threads) so machine drift hits both alike.
# Prints JSON lines as they come (learn-stream's with its peak RSS), then a markdown table with the ratio
# learn-stream / onnxruntime.
# Usage: scripts/bench-encoder.sh [SECONDS_PER_POINT=3] [THREADS="1 2"] [MODELS="minilm smollm2"] [BACKEND=native]
set -euo pipefail
cd "$(dirname "$0")/.."
seconds="${1:-3}"; threads_list="${2:-1 2}"; models="${3:-minilm smollm2}"; backend="${4:-native}"
source scripts/lib/reference-venv.sh
cargo build --release --quiet
out="$(mktemp)"; trap 'rm -f "$out"' EXIT
for model in $models; do
  path="$(scripts/fetch-model.sh "$model")"
  for threads in $threads_list; do
    rss="$(mktemp)"
    LEARN__ENCODER__THREADS="$threads" LEARN__ENCODER__BACKEND="$backend" /usr/bin/time -f %M -o "$rss" \
      target/release/learn bench-encoder --model-dir "$path" --seconds "$seconds" | sed "s/^{/{\"key\":\"$model\",/" | tee -a "$out"
    echo "{\"key\":\"$model\",\"threads\":$threads,\"peak_rss_mb\":$(($(cat "$rss") / 1024))}" | tee -a "$out"; rm -f "$rss"
    # The reference gets the task prefix learn-stream put before every text (encoder.prefix resolved).
    prefix="$(tail -n 2 "$out" | head -n 1 | python3 -c 'import json, sys; print(json.load(sys.stdin)["prefix"], end="")')"
    "$REF_PYTHON" scripts/encoder_reference.py bench "$path" --threads "$threads" --seconds "$seconds" --prefix "$prefix" \
      | sed "s/^{/{\"key\":\"$model\",/" | tee -a "$out"
  done
done
python3 - "$out" "$(lscpu | sed -n 's/^Model name: *//p')" <<'PY'
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
rss = {(r["key"], r["threads"]): r["peak_rss_mb"] for r in rows if "peak_rss_mb" in r}
rows = [r for r in rows if "peak_rss_mb" not in r]
ours = {(r["key"], r["threads"], r["batch"]): r["items_per_s"] for r in rows if r["runtime"] != "onnxruntime"}
ref = {(r["key"], r["threads"], r["batch"]): r["items_per_s"] for r in rows if r["runtime"] == "onnxruntime"}
print(f"\nitems/s on {sys.argv[2]} ({next(r['runtime'] for r in rows if r['runtime'] != 'onnxruntime')} vs onnxruntime)\n")
print("| model | threads | batch | learn-stream | onnxruntime | ratio | learn-stream peak RSS |")
print("|---|---|---|---|---|---|---|")
for key in sorted(ours, key=lambda k: (k[0] != "minilm", k[0], k[1], k[2])):
    print(f"| {key[0]} | {key[1]} | {key[2]} | {ours[key]:.1f} | {ref[key]:.1f} | {ours[key] / ref[key]:.2f}x | {rss.get(key[:2], 0)} MB |")
PY
