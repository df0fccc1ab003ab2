# Sourced by the encoder scripts: a Python venv with the onnxruntime reference's packages from PyPI
# (onnxruntime, onnx, numpy, tokenizers, safetensors, gguf), made once under target/ (git-ignored).
REF_VENV="${REF_VENV:-target/reference-venv}"
if [[ ! -x "$REF_VENV/bin/python" ]] || ! "$REF_VENV/bin/python" -c "import onnxruntime, onnx, gguf, tokenizers, safetensors" 2>/dev/null; then
  python3 -m venv "$REF_VENV"
  "$REF_VENV/bin/pip" install --quiet onnxruntime==1.32.0 onnx numpy tokenizers safetensors gguf
fi
REF_PYTHON="$REF_VENV/bin/python"
