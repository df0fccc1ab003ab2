#!/usr/bin/env bash
# The demo's story over several seeds: where the walkthrough's brand-new upload ranks for the featured
# fan after the trainer's catch-up (issue 27: in the top 10 in at least 9 of 10 seeds), and how many
# catch-up steps each run took. Usage: scripts/demo-seeds.sh [FIRST_SEED [COUNT]]  (default 1 10)
set -euo pipefail
cd "$(dirname "$0")/.."
first=${1:-1} count=${2:-10}
scripts/fetch-model.sh >/dev/null
cargo build --release --bin learn -q
top10=0
for seed in $(seq "$first" $((first + count - 1))); do
  out=$(target/release/learn demo --seed "$seed" 2>/dev/null)
  rank=$(grep -oE 'it ranks #[0-9]+ of [0-9]+' <<<"$out" | grep -oE '#[0-9]+' | tr -d '#')
  steps=$(grep -oE 'catches up on the users who acted: [0-9]+ steps in [0-9.]+ s' <<<"$out" | grep -oE '[0-9]+ steps in [0-9.]+ s')
  audience=$(grep -oE 'top 10 of [0-9]+ of [0-9]+ users' <<<"$out" || echo "top 10 of 0 users")
  echo "seed $seed: new upload #${rank:-?} for the featured fan; catch-up $steps; $audience"
  [[ -n $rank && $rank -le 10 ]] && top10=$((top10 + 1))
done
echo "in the featured fan's top 10 in $top10 of $count seeds"
