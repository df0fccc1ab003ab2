#!/usr/bin/env python3
"""Independent reference for learn-stream's frozen encoders: onnxruntime on the same weights.

It builds an ONNX graph by hand from the model files (no PyTorch needed) and runs it with onnxruntime:
  * BERT family (an HF directory: config.json, tokenizer.json, model.safetensors), e.g. all-MiniLM-L6-v2;
  * NomicBERT (nomic-embed-text-v1.5) from a GGUF file, tokenized by bert-base-uncased's tokenizer.json
    (MiniLM's; the Rust side rebuilds the same WordPiece from the GGUF metadata);
  * llama decoders from a GGUF file (e.g. SmolLM2-135M): tensors dequantised to f32 by the `gguf` package,
    used in llama.cpp's own layout (interleaved RoPE on the permuted Q/K rows), so the Rust side's
    un-permute + HF-style RoPE is checked against a different route to the same numbers.
Embeddings are the mean of the last hidden states over real tokens, L2-normalised (padding: right, masked).

Modes:
  fixtures MODEL OUT.json --texts A.json,B.json   embed the texts, write texts + vectors (committed fixtures)
  bench MODEL --threads N --batches 1,16,64          items/s on tests/fixtures/encoder/titles.json
Run through scripts/bench-encoder.sh or scripts/encoder-fixtures.sh, which set up a venv with
onnxruntime, onnx, numpy, tokenizers, safetensors and gguf from PyPI.
"""
import argparse
import json
import math
import os
import sys
import time

import gguf
import numpy as np
import onnx
import onnxruntime as ort
from onnx import TensorProto, helper, numpy_helper


class Graph:
    """A tiny ONNX graph builder: every call adds one node and returns its output name."""

    def __init__(self):
        self.nodes, self.inits, self.count = [], [], 0

    def const(self, array, name=None):
        self.count += 1
        name = name or f"c{self.count}"
        self.inits.append(numpy_helper.from_array(np.asarray(array), name))
        return name

    def op(self, kind, *inputs, **attrs):
        self.count += 1
        out = f"t{self.count}"
        self.nodes.append(helper.make_node(kind, list(inputs), [out], **attrs))
        return out

    def linear(self, x, weight, bias=None):
        """x @ weight.T (+ bias); weight is (out, in) as stored by HF."""
        y = self.op("MatMul", x, self.const(np.ascontiguousarray(weight.T.astype(np.float32))))
        return self.op("Add", y, self.const(bias.astype(np.float32))) if bias is not None else y

    def model(self, inputs, output):
        graph = helper.make_graph(self.nodes, "encoder", inputs,
                                  [helper.make_tensor_value_info(output, TensorProto.FLOAT, None)],
                                  self.inits)
        return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])


def token_inputs():
    return [helper.make_tensor_value_info("input_ids", TensorProto.INT64, ["b", "l"]),
            helper.make_tensor_value_info("attention_mask", TensorProto.INT64, ["b", "l"])]


def split_heads(g, x, heads, head_dim, perm):
    return g.op("Transpose", g.op("Reshape", x, g.const(np.array([0, 0, heads, head_dim], np.int64))), perm=perm)


def bert_graph(model_dir):
    from safetensors.numpy import load_file
    cfg = json.load(open(os.path.join(model_dir, "config.json")))
    w = load_file(os.path.join(model_dir, "model.safetensors"))
    w = {k.removeprefix("bert."): v for k, v in w.items()}
    hidden, heads = cfg["hidden_size"], cfg["num_attention_heads"]
    head_dim, eps = hidden // heads, cfg["layer_norm_eps"]
    g = Graph()

    def norm(x, prefix):
        return g.op("LayerNormalization", x, g.const(w[prefix + ".weight"]), g.const(w[prefix + ".bias"]),
                    axis=-1, epsilon=eps)

    length = g.op("Slice", g.op("Shape", "input_ids"), g.const(np.array([1], np.int64)), g.const(np.array([2], np.int64)))
    positions = g.op("Slice", g.const(w["embeddings.position_embeddings.weight"]), g.const(np.array([0], np.int64)), length)
    x = g.op("Add", g.op("Gather", g.const(w["embeddings.word_embeddings.weight"]), "input_ids"), positions)
    x = g.op("Add", x, g.const(w["embeddings.token_type_embeddings.weight"][0]))
    x = norm(x, "embeddings.LayerNorm")
    mask = g.op("Cast", g.op("Unsqueeze", "attention_mask", g.const(np.array([1, 2], np.int64))), to=TensorProto.FLOAT)
    mask_bias = g.op("Mul", g.op("Sub", g.const(np.float32(1.0)), mask), g.const(np.float32(-1e9)))
    for i in range(cfg["num_hidden_layers"]):
        p = f"encoder.layer.{i}."
        q = split_heads(g, g.linear(x, w[p + "attention.self.query.weight"], w[p + "attention.self.query.bias"]), heads, head_dim, [0, 2, 1, 3])
        k = split_heads(g, g.linear(x, w[p + "attention.self.key.weight"], w[p + "attention.self.key.bias"]), heads, head_dim, [0, 2, 3, 1])
        v = split_heads(g, g.linear(x, w[p + "attention.self.value.weight"], w[p + "attention.self.value.bias"]), heads, head_dim, [0, 2, 1, 3])
        scores = g.op("Add", g.op("Mul", g.op("MatMul", q, k), g.const(np.float32(1 / math.sqrt(head_dim)))), mask_bias)
        ctx = g.op("MatMul", g.op("Softmax", scores, axis=-1), v)
        ctx = g.op("Reshape", g.op("Transpose", ctx, perm=[0, 2, 1, 3]), g.const(np.array([0, 0, hidden], np.int64)))
        attn = g.linear(ctx, w[p + "attention.output.dense.weight"], w[p + "attention.output.dense.bias"])
        x = norm(g.op("Add", attn, x), p + "attention.output.LayerNorm")
        h = g.linear(x, w[p + "intermediate.dense.weight"], w[p + "intermediate.dense.bias"])
        erf = g.op("Erf", g.op("Mul", h, g.const(np.float32(1 / math.sqrt(2)))))
        h = g.op("Mul", g.op("Mul", h, g.const(np.float32(0.5))), g.op("Add", erf, g.const(np.float32(1.0))))
        out = g.linear(h, w[p + "output.dense.weight"], w[p + "output.dense.bias"])
        x = norm(g.op("Add", out, x), p + "output.LayerNorm")
    return g.model(token_inputs(), x)


def bert_tokenizer(model_dir, max_tokens):
    from tokenizers import Tokenizer
    tok = Tokenizer.from_file(os.path.join(model_dir, "tokenizer.json"))
    tok.no_padding()
    tok.enable_truncation(max_tokens)
    return lambda texts: [e.ids for e in tok.encode_batch(texts)]


def gguf_fields(reader):
    out = {}
    for name, field in reader.fields.items():
        if not field.types:
            continue
        if field.types[0] == gguf.GGUFValueType.ARRAY:
            if field.types[-1] == gguf.GGUFValueType.STRING:
                out[name] = [bytes(field.parts[i]).decode("utf-8") for i in field.data]
            else:
                out[name] = [field.parts[i][0].item() for i in field.data]
        elif field.types[0] == gguf.GGUFValueType.STRING:
            out[name] = bytes(field.parts[field.data[0]]).decode("utf-8")
        else:
            out[name] = field.parts[field.data[0]][0].item()
    return out


def read_gguf(path):
    """(metadata, f32 tensors in llama.cpp's names and HF row-major shapes) of a GGUF file."""
    reader = gguf.GGUFReader(path)
    w = {}
    for t in reader.tensors:
        shape = tuple(reversed([int(d) for d in t.shape]))
        w[t.name] = gguf.quants.dequantize(t.data, t.tensor_type).reshape(shape).astype(np.float32)
    return gguf_fields(reader), w


MAX_LEN = 2048  # longest sequence the rotary and causal tables cover


def sequence_length(g):
    """The input's sequence length as a 1-element tensor, and the constant [0] to slice from."""
    length = g.op("Slice", g.op("Shape", "input_ids"), g.const(np.array([1], np.int64)), g.const(np.array([2], np.int64)))
    return length, g.const(np.array([0], np.int64))


def rotary(g, head_dim, theta, interleaved):
    """RoPE on (b, h, l, d) as x·cos + (x @ R)·sin with a constant rotation R: `interleaved` rotates
    adjacent pairs (2i, 2i+1) (llama.cpp's permuted Q/K rows), otherwise the two halves (NEOX,
    Hugging Face's rotate_half)."""
    inv_freq = theta ** (-np.arange(0, head_dim, 2, dtype=np.float64) / head_dim)
    angles = np.outer(np.arange(MAX_LEN), inv_freq)  # (len, head_dim/2)
    spread = (lambda a: np.repeat(a, 2, axis=1)) if interleaved else (lambda a: np.concatenate([a] * 2, axis=1))
    length, zero = sequence_length(g)
    cos_t = g.op("Slice", g.const(spread(np.cos(angles)).astype(np.float32)), zero, length)
    sin_t = g.op("Slice", g.const(spread(np.sin(angles)).astype(np.float32)), zero, length)
    rot = np.zeros((head_dim, head_dim), np.float32)
    half = head_dim // 2
    for i in range(half):
        a, b = (2 * i, 2 * i + 1) if interleaved else (i, half + i)
        rot[b, a], rot[a, b] = -1.0, 1.0  # (xa, xb) -> (-xb, xa)
    rot_c = g.const(rot)
    return lambda x: g.op("Add", g.op("Mul", x, cos_t), g.op("Mul", g.op("MatMul", x, rot_c), sin_t))


def llama_graph(meta, w):
    arch = meta["general.architecture"]
    hidden = meta[f"{arch}.embedding_length"]
    heads, kv_heads = meta[f"{arch}.attention.head_count"], meta[f"{arch}.attention.head_count_kv"]
    head_dim, eps = hidden // heads, meta[f"{arch}.attention.layer_norm_rms_epsilon"]
    theta = meta.get(f"{arch}.rope.freq_base", 10000.0)
    g = Graph()

    def rms(x, weight):
        var = g.op("ReduceMean", g.op("Mul", x, x), axes=[-1], keepdims=1)
        inv = g.op("Reciprocal", g.op("Sqrt", g.op("Add", var, g.const(np.float32(eps)))))
        return g.op("Mul", g.op("Mul", x, inv), g.const(weight))

    # llama.cpp layout: Q/K rows permuted so that RoPE rotates adjacent pairs (2i, 2i+1).
    rope = rotary(g, head_dim, theta, interleaved=True)
    length, zero = sequence_length(g)
    causal = np.triu(np.full((MAX_LEN, MAX_LEN), -1e9, np.float32), 1)
    causal_t = g.op("Slice", g.const(causal), g.op("Concat", zero, zero, axis=0), g.op("Concat", length, length, axis=0),
                    g.const(np.array([0, 1], np.int64)))
    x = g.op("Gather", g.const(w["token_embd.weight"]), "input_ids")
    group = heads // kv_heads
    for i in range(meta[f"{arch}.block_count"]):
        p = f"blk.{i}."
        h = rms(x, w[p + "attn_norm.weight"])
        q = rope(split_heads(g, g.linear(h, w[p + "attn_q.weight"]), heads, head_dim, [0, 2, 1, 3]))
        k = rope(split_heads(g, g.linear(h, w[p + "attn_k.weight"]), kv_heads, head_dim, [0, 2, 1, 3]))
        v = split_heads(g, g.linear(h, w[p + "attn_v.weight"]), kv_heads, head_dim, [0, 2, 1, 3])
        if group > 1:  # grouped-query attention: each kv head serves `group` query heads
            k = g.op("Reshape", g.op("Tile", g.op("Unsqueeze", k, g.const(np.array([2], np.int64))), g.const(np.array([1, 1, group, 1, 1], np.int64))),
                     g.const(np.array([0, heads, -1, head_dim], np.int64)))
            v = g.op("Reshape", g.op("Tile", g.op("Unsqueeze", v, g.const(np.array([2], np.int64))), g.const(np.array([1, 1, group, 1, 1], np.int64))),
                     g.const(np.array([0, heads, -1, head_dim], np.int64)))
        scores = g.op("MatMul", q, g.op("Transpose", k, perm=[0, 1, 3, 2]))
        scores = g.op("Add", g.op("Mul", scores, g.const(np.float32(1 / math.sqrt(head_dim)))), causal_t)
        ctx = g.op("MatMul", g.op("Softmax", scores, axis=-1), v)
        ctx = g.op("Reshape", g.op("Transpose", ctx, perm=[0, 2, 1, 3]), g.const(np.array([0, 0, hidden], np.int64)))
        x = g.op("Add", x, g.linear(ctx, w[p + "attn_output.weight"]))
        h = rms(x, w[p + "ffn_norm.weight"])
        gate = g.linear(h, w[p + "ffn_gate.weight"])
        act = g.op("Mul", gate, g.op("Sigmoid", gate))
        x = g.op("Add", x, g.linear(g.op("Mul", act, g.linear(h, w[p + "ffn_up.weight"])), w[p + "ffn_down.weight"]))
    x = rms(x, w["output_norm.weight"])
    return g.model(token_inputs(), x)


def nomic_graph(meta, w):
    """NomicBERT (nomic-embed-text) from a GGUF file, in llama.cpp's tensor names: post-norm blocks,
    NEOX rotary (rotate_half) on q and k, bias-free fused qkv, SwiGLU (ffn_up value, silu(ffn_gate))."""
    arch = meta["general.architecture"]
    hidden, heads = meta[f"{arch}.embedding_length"], meta[f"{arch}.attention.head_count"]
    head_dim, eps = hidden // heads, meta[f"{arch}.attention.layer_norm_epsilon"]
    theta = meta[f"{arch}.rope.freq_base"]
    g = Graph()

    def norm(x, prefix):
        return g.op("LayerNormalization", x, g.const(w[prefix + ".weight"]), g.const(w[prefix + ".bias"]),
                    axis=-1, epsilon=eps)

    rope = rotary(g, head_dim, theta, interleaved=False)

    x = g.op("Add", g.op("Gather", g.const(w["token_embd.weight"]), "input_ids"), g.const(w["token_types.weight"][0]))
    x = norm(x, "token_embd_norm")
    mask = g.op("Cast", g.op("Unsqueeze", "attention_mask", g.const(np.array([1, 2], np.int64))), to=TensorProto.FLOAT)
    mask_bias = g.op("Mul", g.op("Sub", g.const(np.float32(1.0)), mask), g.const(np.float32(-1e9)))
    qkv_w = lambda p: np.split(w[p + "attn_qkv.weight"], 3, axis=0)
    for i in range(meta[f"{arch}.block_count"]):
        p = f"blk.{i}."
        wq, wk, wv = qkv_w(p)
        q = rope(split_heads(g, g.linear(x, wq), heads, head_dim, [0, 2, 1, 3]))
        k = rope(split_heads(g, g.linear(x, wk), heads, head_dim, [0, 2, 1, 3]))
        v = split_heads(g, g.linear(x, wv), heads, head_dim, [0, 2, 1, 3])
        scores = g.op("MatMul", q, g.op("Transpose", k, perm=[0, 1, 3, 2]))
        scores = g.op("Add", g.op("Mul", scores, g.const(np.float32(1 / math.sqrt(head_dim)))), mask_bias)
        ctx = g.op("MatMul", g.op("Softmax", scores, axis=-1), v)
        ctx = g.op("Reshape", g.op("Transpose", ctx, perm=[0, 2, 1, 3]), g.const(np.array([0, 0, hidden], np.int64)))
        x = norm(g.op("Add", x, g.linear(ctx, w[p + "attn_output.weight"])), p + "attn_output_norm")
        gate = g.linear(x, w[p + "ffn_gate.weight"])
        act = g.op("Mul", g.op("Mul", gate, g.op("Sigmoid", gate)), g.linear(x, w[p + "ffn_up.weight"]))
        x = norm(g.op("Add", x, g.linear(act, w[p + "ffn_down.weight"])), p + "layer_output_norm")
    return g.model(token_inputs(), x)


def gguf_tokenizer(meta, max_tokens):
    """GPT-2 style byte-level BPE rebuilt from the GGUF metadata (SmolLM2 splits digits one by one)."""
    from tokenizers import Tokenizer, models, pre_tokenizers, decoders
    tokens = meta["tokenizer.ggml.tokens"]
    vocab = {t: i for i, t in enumerate(tokens)}
    merges = [tuple(m.split(" ", 1)) for m in meta["tokenizer.ggml.merges"]]
    tok = Tokenizer(models.BPE(vocab, merges))
    tok.pre_tokenizer = pre_tokenizers.Sequence([pre_tokenizers.Digits(individual_digits=True),
                                                 pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)])
    tok.decoder = decoders.ByteLevel()
    tok.enable_truncation(max_tokens)
    return lambda texts: [e.ids for e in tok.encode_batch(texts)]


def load(model, max_tokens, vocab):
    """(onnx model, tokenize fn, pad id) for an HF BERT directory or a GGUF file (a NomicBERT GGUF is
    tokenized with the bert-base-uncased WordPiece of `vocab`, an HF directory: its own vocabulary)."""
    if model.endswith(".gguf"):
        meta, w = read_gguf(model)
        if meta["general.architecture"] == "nomic-bert":
            return nomic_graph(meta, w), bert_tokenizer(vocab, max_tokens), 0
        return llama_graph(meta, w), gguf_tokenizer(meta, max_tokens), 0
    return bert_graph(model), bert_tokenizer(model, max_tokens), 0


def session(proto, threads):
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = threads
    opts.inter_op_num_threads = 1
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    return ort.InferenceSession(proto.SerializeToString(), opts, providers=["CPUExecutionProvider"])


def embed(sess, tokenize, pad_id, texts, max_batch):
    """Length-sorted batches padded to their own longest text, like a careful production caller."""
    ids = tokenize(texts)
    order = sorted(range(len(texts)), key=lambda i: len(ids[i]))
    out = [None] * len(texts)
    for start in range(0, len(order), max_batch):
        chunk = order[start:start + max_batch]
        length = max(len(ids[i]) for i in chunk)
        batch = np.full((len(chunk), length), pad_id, np.int64)
        mask = np.zeros((len(chunk), length), np.int64)
        for row, i in enumerate(chunk):
            batch[row, :len(ids[i])] = ids[i]
            mask[row, :len(ids[i])] = 1
        hidden = sess.run(None, {"input_ids": batch, "attention_mask": mask})[0]
        pooled = (hidden * mask[:, :, None]).sum(1) / mask.sum(1, keepdims=True)
        pooled /= np.linalg.norm(pooled, axis=1, keepdims=True)
        for row, i in enumerate(chunk):
            out[i] = pooled[row]
    return np.stack(out)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("mode", choices=["fixtures", "bench"])
    parser.add_argument("model", help="HF BERT directory or .gguf file")
    parser.add_argument("out", nargs="?", help="fixtures: output JSON")
    parser.add_argument("--texts", default="tests/fixtures/encoder/titles.json", help="JSON lists of strings, comma separated")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--batches", default="1,16,64")
    parser.add_argument("--max-tokens", type=int, default=256)
    parser.add_argument("--prefix", default="", help="task prefix put before every text (not stored in the fixture)")
    parser.add_argument("--vocab", default="models/all-MiniLM-L6-v2", help="HF directory whose tokenizer.json a NomicBERT GGUF uses")
    parser.add_argument("--seconds", type=float, default=3.0, help="bench: time per batch size")
    args = parser.parse_args()

    texts = [t for f in args.texts.split(",") for t in json.load(open(f))]
    proto, tokenize, pad_id = load(args.model, args.max_tokens, args.vocab)
    sess = session(proto, args.threads)
    if args.mode == "fixtures":
        vectors = embed(sess, tokenize, pad_id, [args.prefix + t for t in texts], 4)
        json.dump({"reference": f"onnxruntime {ort.__version__}", "model": os.path.basename(args.model.rstrip("/")),
                   "prefix": args.prefix,
                   "texts": texts, "vectors": [[round(float(v), 8) for v in row] for row in vectors]},
                  open(args.out, "w"))
        print(f"wrote {len(texts)} reference vectors of dim {vectors.shape[1]} to {args.out}")
        return
    for batch in [int(b) for b in args.batches.split(",")]:
        inputs = [args.prefix + t for t in (texts * (batch // len(texts) + 1))[:batch]]
        embed(sess, tokenize, pad_id, inputs, batch)  # warm-up
        done, start = 0, time.perf_counter()
        while time.perf_counter() - start < args.seconds or done < 3 * batch:
            embed(sess, tokenize, pad_id, inputs, batch)
            done += batch
        rate = done / (time.perf_counter() - start)
        print(json.dumps({"runtime": "onnxruntime", "batch": batch, "threads": args.threads, "items_per_s": round(rate, 2)}))
        sys.stdout.flush()


if __name__ == "__main__":
    main()
