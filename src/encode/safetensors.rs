//! Owns reading a Hugging Face model directory: `config.json` (the architecture by its
//! `model_type`), `tokenizer.json` and `model.safetensors` (as f32, `bert.` / `nomic_bert.` prefixes
//! dropped).

use std::path::Path;

use candle_core::Device;

use super::weights::{bad_file, require, Architecture, ModelFiles};
use super::EncodeError;

/// The model in Hugging Face directory `path`.
pub fn read(path: &Path) -> Result<ModelFiles, EncodeError> {
    let config_path = require(path, "config.json")?;
    let tokenizer_path = require(path, "tokenizer.json")?;
    let weights_path = require(path, "model.safetensors")?;
    let text = std::fs::read_to_string(&config_path).map_err(|e| bad_file(&config_path, e))?;
    let kind: serde_json::Value =
        serde_json::from_str(&text).map_err(|e| bad_file(&config_path, e))?;
    let architecture = match kind["model_type"].as_str().unwrap_or("bert") {
        "bert" => {
            Architecture::Bert(serde_json::from_str(&text).map_err(|e| bad_file(&config_path, e))?)
        }
        "llama" | "qwen2" => Architecture::Decoder(
            serde_json::from_str(&text).map_err(|e| bad_file(&config_path, e))?,
        ),
        "nomic_bert" => Architecture::NomicBert(
            serde_json::from_str(&text).map_err(|e| bad_file(&config_path, e))?,
        ),
        other => {
            return Err(bad_file(
                &config_path,
                format!("model_type {other:?} is not supported (bert, nomic_bert, llama, qwen2)"),
            ))
        }
    };
    let tensors = candle_core::safetensors::load(&weights_path, &Device::Cpu)
        .map_err(|e| bad_file(&weights_path, e))?
        .into_iter()
        .map(|(name, t)| {
            let name = ["bert.", "nomic_bert."]
                .iter()
                .find_map(|p| name.strip_prefix(p))
                .map(str::to_string)
                .unwrap_or(name);
            Ok((name, t.to_dtype(candle_core::DType::F32)?))
        })
        .collect::<candle_core::Result<_>>()?;
    let tokenizer = tokenizers::Tokenizer::from_file(&tokenizer_path)
        .map_err(|e| bad_file(&tokenizer_path, e))?;
    Ok(ModelFiles {
        architecture,
        tensors,
        tokenizer,
    })
}
