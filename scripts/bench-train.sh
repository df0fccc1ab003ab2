#!/usr/bin/env bash
# Training-step benchmark, side by side in one run: this build (`cargo bench --bench training`), the
# PyTorch reference of the same step (scripts/train_reference.py, CPU, 2 threads; needs `pip install
# torch numpy`) and, with BASE=<commit>, a former build of the benchmark (built in a worktree under
# target/bench-base). Implementations alternate per configuration; each runs in its own process.
#
#   scripts/bench-train.sh                          # the default configurations below
#   BASE=bfbd899 scripts/bench-train.sh             # + the former build (2bf7223 with this benchmark)
#   BASE_BIN=path/to/training-bench scripts/bench-train.sh   # + a former build's benchmark binary
#   CONFIGS="online:4385 offline:20000" STEPS=10 scripts/bench-train.sh
#   LEARN__ONLINE__FULL_SOFTMAX_ITEMS=100000000 …   # the all-items step at every size (reference too)
#
# Prints one JSON line per run, then a table: s/step, first step, peak RSS, and the ratios
# (steps/s over the former build's, step time over the reference's).
set -euo pipefail
cd "$(dirname "$0")/.."
CONFIGS=${CONFIGS:-"online:1000 online:4385 online:10000 online:100000 online:1000000 offline:4385 offline:20000 offline:100000"}
# The former build's all-items step at these sizes takes minutes and tens of GB: skipped above this.
BASE_MAX_ITEMS=${BASE_MAX_ITEMS:-20000}
OUT=${OUT:-target/bench-train.jsonl}
# The former build gets a target directory of its own: two checkouts of one package share artifact
# names, and cargo would take one's build for the other's.
base_dir=${BASE_DIR:-target/bench-base}
base_target=$PWD/$base_dir-target
: >"$OUT"

cargo bench --bench training --no-run -q
if [[ -n "${BASE:-}" ]]; then
  [[ -d $base_dir ]] || git worktree add -f --detach "$base_dir" "$BASE" >/dev/null
  git -C "$base_dir" checkout -q --detach "$BASE"
  (cd "$base_dir" && CARGO_TARGET_DIR="$base_target" cargo bench --bench training --no-run -q)
fi
# What the reference runs above the all-items threshold: the same mixed step.
full_softmax=${LEARN__ONLINE__FULL_SOFTMAX_ITEMS:-$(grep -E '^full_softmax_items' config/default.toml | tr -dc '0-9')}
samples=$(grep -E '^negative_samples' config/default.toml | tr -dc '0-9')

run() { # impl mode items
  local impl=$1 mode=$2 items=$3 steps=${STEPS:-}
  local args=("$mode" "$items")
  [[ -n $steps ]] && args+=(--steps "$steps")
  case $impl in
    ours) cargo bench --bench training -q -- "${args[@]}" ;;
    # The former build knows none of this build's new keys.
    base) if [[ -n "${BASE_BIN:-}" ]]; then env -u LEARN__ONLINE__FULL_SOFTMAX_ITEMS "$BASE_BIN" "${args[@]}"; else
        (cd "$base_dir" && env -u LEARN__ONLINE__FULL_SOFTMAX_ITEMS CARGO_TARGET_DIR="$base_target" cargo bench --bench training -q -- "${args[@]}")
      fi | sed 's/"impl":"learn-stream"/"impl":"base"/' ;;
    reference)
      local negatives=all
      [[ $mode == online && $items -gt $full_softmax ]] && negatives=mixed
      python3 scripts/train_reference.py "${args[@]}" --negatives "$negatives" --samples "$samples" 2>/dev/null ;;
  esac
}

for config in $CONFIGS; do
  mode=${config%%:*} items=${config##*:}
  impls=(ours reference)
  [[ -n "${BASE:-}${BASE_BIN:-}" && $items -le $BASE_MAX_ITEMS ]] && impls=(base ours reference)
  for impl in "${impls[@]}"; do
    line=$(run "$impl" "$mode" "$items" | grep '^{' | tail -1) || line=""
    [[ -z $line ]] && line="{\"impl\":\"$impl\",\"mode\":\"$mode\",\"items\":$items,\"failed\":true}"
    echo "$line" | tee -a "$OUT"
  done
done

python3 - "$OUT" <<'EOF'
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
key = lambda r: (r["mode"], r["items"])
by = {}
for r in rows:
    name = "ours" if r["impl"] == "learn-stream" else ("base" if r["impl"] == "base" else "ref")
    by.setdefault(key(r), {})[name] = r
print("\n| step | items | batch | ours s/step | first step | peak MB | pairs/s | base s/step | ours vs base steps/s | reference s/step | ref peak MB | ours / reference time |")
print("|---|---|---|---|---|---|---|---|---|---|---|---|")
for (mode, items), r in by.items():
    o, b, f = r.get("ours", {}), r.get("base", {}), r.get("ref", {})
    cell = lambda d, k, fmt="{:.3f}": fmt.format(d[k]) if k in d else "—"
    ratio = lambda x, y: f"{x / y:.2f}×" if x and y else "—"
    print(f"| {mode} | {items:,} | {o.get('batch', '—')} | {cell(o, 'step_s')} | {cell(o, 'first_step_s')} | {cell(o, 'peak_rss_mb', '{:.0f}')} "
          f"| {cell(o, 'pairs_per_s', '{:.0f}')} | {cell(b, 'step_s')} | {ratio(b.get('step_s'), o.get('step_s'))} "
          f"| {cell(f, 'step_s')} | {cell(f, 'peak_rss_mb', '{:.0f}')} | {ratio(o.get('step_s'), f.get('step_s'))} |")
EOF
