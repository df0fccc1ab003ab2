//! Owns the frozen content encoder: item text in, L2-normalised mean-pooled last hidden states out.
//! The LLM is never trained (LEARN's premise): an item is embedded once, when it is uploaded, and an
//! identical text is served from a cache keyed by its hash.
//!
//! - [`open`] → [`safetensors`] (Hugging Face directory) or [`gguf`] / [`gguf_vocab`] (GGUF):
//!   model files → [`weights`] (tensors, config, tokenizer).
//! - [`bert`] / [`nomic`] / [`decoder`]: BERT-family encoders, NomicBERT (nomic-embed-text) and
//!   llama/qwen2 decoder LLMs on the native CPU kernels of the `learn-kernels` crate (packed
//!   tokens, no padding computed, run-time SIMD dispatch); [`tokens`] packs their input rows.
//! - [`candle`]: the same families on candle-transformers (CUDA with `--features cuda`; the plain
//!   version the kernels are tested against).

mod bert;
mod candle;
mod config;
mod decoder;
mod gguf;
mod gguf_vocab;
mod nomic;
mod open;
mod safetensors;
mod tokens;
mod weights;

pub use config::{EncoderBackend, EncoderConfig, TaskPrefix};
pub use weights::Architecture;

use std::num::NonZeroUsize;
use std::path::PathBuf;
use std::sync::Mutex;

use learn_kernels::Team;
use tokenizers::{Tokenizer, TruncationParams};

#[derive(Debug, thiserror::Error)]
pub enum EncodeError {
    #[error(
        "model {dir} is missing {file}; fetch the default model with `scripts/fetch-model.sh` \
         (`nomic` for nomic-embed-text, `smollm2` for a decoder LLM), or point encoder.model_dir / \
         --model-dir at a directory with config.json, tokenizer.json and model.safetensors, or at a \
         .gguf file"
    )]
    MissingModel { dir: PathBuf, file: &'static str },
    #[error("cannot read {path}: {reason}")]
    BadModelFile { path: PathBuf, reason: String },
    #[error("model file has no tensor {0}")]
    MissingTensor(String),
    #[error("tokenizer: {0}")]
    Tokenizer(String),
    #[error("encoder thread pool: {0}")]
    Threads(String),
    #[error("model forward pass: {0}")]
    Candle(#[from] candle_core::Error),
}

enum Backend {
    NativeBert(bert::NativeBert, Team),
    NativeNomic(nomic::NativeNomic, Team),
    NativeDecoder(decoder::NativeDecoder, Team),
    /// candle parallelises on rayon: its own pool bounds the threads.
    Candle(candle::CandleEncoder, rayon::ThreadPool),
}

/// The frozen encoder the service, the CLI and the experiments share.
pub struct ContentEncoder {
    backend: Backend,
    tokenizer: Tokenizer,
    /// Prepended to every text before tokenization (the model's task prefix).
    prefix: String,
    cache: Option<Mutex<lru::LruCache<u128, Vec<f32>>>>,
    model_id: String,
    dim: usize,
    max_batch: usize,
    /// Tokens a text is truncated to (`encoder.max_tokens`, capped by the model's positions).
    max_tokens: usize,
}

impl ContentEncoder {
    /// Loads the model the `[encoder]` section names (directory or `.gguf`), with its backend,
    /// thread pool and cache.
    pub fn from_config(config: &EncoderConfig) -> Result<Self, EncodeError> {
        let files = weights::ModelFiles::read(&config.model_dir)?;
        let dim = files.dim();
        let max_tokens = config.max_tokens.min(files.max_positions());
        let mut tokenizer = files.tokenizer.clone();
        // Never pad to the tokenizer file's fixed length: batches are packed (native) or padded to
        // their own longest text (candle).
        tokenizer.with_padding(None);
        tokenizer
            .with_truncation(Some(TruncationParams {
                max_length: max_tokens,
                ..Default::default()
            }))
            .map_err(|e| EncodeError::Tokenizer(e.to_string()))?;
        let prefix = config
            .prefix
            .resolve(files.architecture.default_prefix())
            .to_string();
        let use_candle = match config.backend {
            EncoderBackend::Auto => candle::gpu_present(),
            EncoderBackend::Native => false,
            EncoderBackend::Candle => true,
        };
        let backend = match (use_candle, &files.architecture) {
            (false, Architecture::Bert(c)) => Backend::NativeBert(
                bert::NativeBert::load(&files, c)?,
                Team::new(config.threads),
            ),
            (false, Architecture::NomicBert(c)) => Backend::NativeNomic(
                nomic::NativeNomic::load(&files, c, max_tokens)?,
                Team::new(config.threads),
            ),
            (false, Architecture::Decoder(c)) => Backend::NativeDecoder(
                decoder::NativeDecoder::load(&files, c, max_tokens)?,
                Team::new(config.threads),
            ),
            (true, _) => {
                let pool = rayon::ThreadPoolBuilder::new()
                    .num_threads(config.threads)
                    .thread_name(|i| format!("encoder-{i}"))
                    .build()
                    .map_err(|e| EncodeError::Threads(e.to_string()))?;
                Backend::Candle(candle::CandleEncoder::load(files)?, pool)
            }
        };
        Ok(Self {
            backend,
            tokenizer,
            prefix,
            cache: NonZeroUsize::new(config.cache_entries)
                .map(|n| Mutex::new(lru::LruCache::new(n))),
            model_id: config.resolved_model_id(),
            dim,
            max_batch: config.max_batch.max(1),
            max_tokens,
        })
    }

    pub fn model_id(&self) -> &str {
        &self.model_id
    }

    pub fn dim(&self) -> usize {
        self.dim
    }

    /// Tokens a text is truncated to (`encoder.max_tokens`, capped by the model's positions).
    pub fn max_tokens(&self) -> usize {
        self.max_tokens
    }

    /// The task prefix put before every text (`encoder.prefix`, resolved).
    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    /// What runs the model: `native`, `candle-cpu` or `candle-cuda`.
    pub fn backend(&self) -> &'static str {
        match &self.backend {
            Backend::NativeBert(..) | Backend::NativeNomic(..) | Backend::NativeDecoder(..) => {
                "native"
            }
            Backend::Candle(m, _) if m.on_gpu() => "candle-cuda",
            Backend::Candle(..) => "candle-cpu",
        }
    }

    /// Threads a forward pass runs on (`encoder.threads`, 0 resolved to the core count).
    pub fn threads(&self) -> usize {
        match &self.backend {
            Backend::NativeBert(_, team)
            | Backend::NativeNomic(_, team)
            | Backend::NativeDecoder(_, team) => team.size(),
            Backend::Candle(_, pool) => pool.current_num_threads(),
        }
    }

    /// Distinct texts whose embeddings the cache holds.
    pub fn cached_texts(&self) -> usize {
        self.cache
            .as_ref()
            .map_or(0, |c| c.lock().expect("encoder cache lock").len())
    }

    /// Embeds `texts`, returning one unit-length vector per text, in input order. Texts seen
    /// before come from the cache; the rest are tokenized, sorted by length and run in batches of
    /// at most `max_batch` by the backend (the native kernels on the encoder's thread team).
    pub fn embed(&self, texts: &[String]) -> Result<Vec<Vec<f32>>, EncodeError> {
        let keys: Vec<u128> = texts
            .iter()
            .map(|t| xxhash_rust::xxh3::xxh3_128(t.as_bytes()))
            .collect();
        let mut out: Vec<Option<Vec<f32>>> = match &self.cache {
            Some(cache) => {
                let mut cache = cache.lock().expect("encoder cache lock");
                keys.iter().map(|k| cache.get(k).cloned()).collect()
            }
            None => vec![None; texts.len()],
        };
        let mut missing: Vec<usize> = (0..texts.len()).filter(|&i| out[i].is_none()).collect();
        crate::metrics::Event::EncoderCacheHits {
            count: (texts.len() - missing.len()) as u64,
        }
        .record();
        // The same new text twice in one call is embedded once: `first` maps a key to the index
        // that carries it.
        let mut first: std::collections::HashMap<u128, usize> = std::collections::HashMap::new();
        missing.retain(|&i| *first.entry(keys[i]).or_insert(i) == i);
        if !missing.is_empty() {
            let inputs: Vec<String> = missing
                .iter()
                .map(|&i| format!("{}{}", self.prefix, texts[i]))
                .collect();
            let encodings = self
                .tokenizer
                .encode_batch(inputs, true)
                .map_err(|e| EncodeError::Tokenizer(e.to_string()))?;
            let mut order: Vec<usize> = (0..missing.len()).collect();
            order.sort_by_key(|&j| encodings[j].get_ids().len());
            for chunk in order.chunks(self.max_batch) {
                // A text with no tokens at all (possible for decoders) is embedded as token 0.
                let ids: Vec<&[u32]> = chunk
                    .iter()
                    .map(|&j| match encodings[j].get_ids() {
                        [] => &[0u32][..],
                        ids => ids,
                    })
                    .collect();
                let vectors = self.forward(&ids)?;
                for (&j, v) in chunk.iter().zip(vectors) {
                    out[missing[j]] = Some(v);
                }
            }
            if let Some(cache) = &self.cache {
                let mut cache = cache.lock().expect("encoder cache lock");
                for &i in &missing {
                    cache.put(keys[i], out[i].clone().expect("embedded"));
                }
            }
        }
        // A repeat of a new text takes the vector of its first occurrence.
        for (i, k) in keys.iter().enumerate() {
            if out[i].is_none() {
                out[i] = out[first[k]].clone();
            }
        }
        Ok(out.into_iter().map(|v| v.expect("embedded")).collect())
    }

    fn forward(&self, ids: &[&[u32]]) -> Result<Vec<Vec<f32>>, EncodeError> {
        match &self.backend {
            Backend::NativeBert(m, team) => m.embed(team, ids),
            Backend::NativeNomic(m, team) => m.embed(team, ids),
            Backend::NativeDecoder(m, team) => m.embed(team, ids),
            Backend::Candle(m, pool) => pool.install(|| m.embed(ids)),
        }
    }
}
