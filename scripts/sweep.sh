#!/usr/bin/env bash
# A reproducible training sweep: trains and evaluates one model per configuration line and writes a
# table of every configuration's results (validation-selected; test reported, never used to select).
# Usage: scripts/sweep.sh DATASET_DIR SWEEP_FILE [OUT_DIR [COMMON ...]]
#   COMMON: KEY=VALUE overrides and options given to every train and eval (e.g. --cold-items 0.1,
#   LEARN__TRAINING__EPOCHS=12).
#   SWEEP_FILE: one configuration per line, `name [KEY=VALUE ...] [learn train options ...]`, e.g.
#     learn-default
#     learn-ids          LEARN__TOWERS__ITEM_IDS=true
#     learn-inbatch      --negatives in_batch
#     sasrec             --model sasrec
#   (KEY=VALUE are config overrides through the environment; `#` starts a comment.) Each
#   configuration goes to OUT_DIR/<name>/ (checkpoint, results.json, report.md, training.svg); a
#   configuration whose results.json exists is skipped, one whose checkpoint exists only evaluated. The raw-content and popularity
#   baselines go to OUT_DIR/baselines/. The table: OUT_DIR/sweep.md (and sweep.json).
# Default OUT_DIR: runs/sweep-<dataset>.
set -euo pipefail
cd "$(dirname "$0")/.."
dataset=$1
sweep=$2
out=${3:-runs/sweep-$(basename "$dataset")}
shift $(($# < 3 ? $# : 3))
common=() common_env=()
for word in "$@"; do
  if [[ $word == *=* && $word != --* ]]; then common_env+=("$word"); else common+=("$word"); fi
done
scripts/fetch-model.sh >/dev/null
cargo build --release --bin learn
learn=target/release/learn
mkdir -p "$out"
[[ -f $out/baselines/results.json ]] ||
  env "${common_env[@]}" "$learn" eval --dataset "$dataset" --out "$out/baselines" --model content content-whitened popularity "${common[@]}"
while read -r name rest; do
  [[ -z $name || $name == \#* ]] && continue
  dir=$out/$name
  [[ -f $dir/results.json ]] && { echo "$name: done already ($dir)"; continue; }
  envs=("${common_env[@]}") args=() model=learn
  read -r -a words <<<"${rest%%#*}"
  for ((i = 0; i < ${#words[@]}; i++)); do
    word=${words[i]}
    if [[ $word == *=* && $word != --* ]]; then envs+=("$word")
    elif [[ $word == --model ]]; then model=${words[i + 1]}; i=$((i + 1))
    else args+=("$word"); fi
  done
  echo "== $name: ${envs[*]:-} --model $model ${args[*]:-}"
  [[ -f $dir/$model.json ]] ||
    env "${envs[@]}" "$learn" train --dataset "$dataset" --out "$dir" --model "$model" "${args[@]}" "${common[@]}"
  env "${envs[@]}" "$learn" eval --dataset "$dataset" --out "$dir" --model "$model" "${common[@]}"
  printf '%s\n' "${envs[@]}" "${args[@]}" >"$dir/sweep-line.txt"
done <"$sweep"
python3 - "$out" <<'PY'
import json, os, sys
out = sys.argv[1]
rows = []
for name in sorted(os.listdir(out)):
    path = os.path.join(out, name, "results.json")
    if not os.path.isfile(path):
        continue
    results = json.load(open(path))
    line = os.path.join(out, name, "sweep-line.txt")
    setting = " ".join(open(line).read().split()) if os.path.isfile(line) else ""
    for model, r in results["models"].items():
        t = r.get("training")
        best = max(t["curve"], key=lambda e: e["valid_ndcg_10"]) if t else None
        u, m = r["evaluation"]["unmasked"], r["evaluation"]["masked"]
        cold, warm = r["evaluation"].get("cold_targets"), r["evaluation"].get("warm_targets")
        rows.append({
            "config": name, "model": model, "setting": setting,
            "best_epoch": t["best_epoch"] if t else None,
            "epochs_run": len(t["curve"]) if t else None,
            "train_s": round(t["seconds"]) if t else None,
            "valid_ndcg_10": best["valid_ndcg_10"] if best else None,
            "unmasked": u, "masked": m,
            "cold_recall_10": cold["recall_10"] if cold else None,
            "warm_recall_10": warm["recall_10"] if warm else None,
        })
json.dump(rows, open(os.path.join(out, "sweep.json"), "w"), indent=1)
f = lambda x: "" if x is None else (f"{x:.4f}" if isinstance(x, float) else str(x))
lines = ["| config | model | valid N@10 | R@10 | N@10 | R@50 | N@50 | MRR | masked R@10 | masked N@10 | cold R@10 | warm R@10 | best epoch / run | train s | setting |",
         "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
for r in rows:
    u, m = r["unmasked"], r["masked"]
    epochs = f"{r['best_epoch']} / {r['epochs_run']}" if r["best_epoch"] else ""
    lines.append(f"| {r['config']} | {r['model']} | {f(r['valid_ndcg_10'])} | {f(u['recall_10'])} | {f(u['ndcg_10'])} | "
                 f"{f(u['recall_50'])} | {f(u['ndcg_50'])} | {f(u['mrr'])} | {f(m['recall_10'])} | {f(m['ndcg_10'])} | "
                 f"{f(r['cold_recall_10'])} | {f(r['warm_recall_10'])} | {epochs} | {f(r['train_s'])} | {r['setting']} |")
open(os.path.join(out, "sweep.md"), "w").write("\n".join(lines) + "\n")
print("\n".join(lines))
PY
