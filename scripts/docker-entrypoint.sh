#!/bin/sh
# The image's entry point: `learn` with the frozen encoder the image was built with. A model baked in with
# --build-arg MODEL=minilm|nomic|smollm2 is named in /models/.model-dir; with none baked, /models is a
# mounted directory holding all-MiniLM-L6-v2. LEARN__ENCODER__MODEL_DIR, when set, wins (it also overrides a
# config file's encoder.model_dir: choose another encoder with the variable).
set -eu
if [ -z "${LEARN__ENCODER__MODEL_DIR:-}" ]; then
  if [ -f /models/.model-dir ]; then
    LEARN__ENCODER__MODEL_DIR=$(cat /models/.model-dir)
  else
    LEARN__ENCODER__MODEL_DIR=/models/all-MiniLM-L6-v2
  fi
  export LEARN__ENCODER__MODEL_DIR
fi
exec /usr/local/bin/learn "$@"
