//! The frozen encoder's configuration (`[encoder]`), beside the component it configures.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use crate::checks::{positive, Invalid};

/// The frozen content encoder.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct EncoderConfig {
    /// The frozen model: a Hugging Face directory (`config.json`, `tokenizer.json`,
    /// `model.safetensors`; `model_type` bert, nomic_bert, llama or qwen2) or a llama, qwen2 or
    /// nomic-bert `.gguf` file. `scripts/fetch-model.sh` fetches all-MiniLM-L6-v2 (default),
    /// nomic-embed-text-v1.5 (`nomic`) or SmolLM2-135M (`smollm2`).
    pub model_dir: PathBuf,
    /// Model id published with every embedding; empty means the directory's name.
    pub model_id: String,
    /// Text put before every item text, as embedding models trained with task prefixes expect:
    /// `"auto"` is the model's own (nomic-embed-text: `"clustering: "`; none for MiniLM and the
    /// decoders), `""` none, anything else is used as given.
    pub prefix: TaskPrefix,
    /// Item texts are truncated to this many tokens.
    pub max_tokens: usize,
    /// Largest number of texts in one forward pass.
    pub max_batch: usize,
    /// Longest an upload waits for others to share its encoder batch (the uploads consumer's
    /// `max_wait`; the actions consumer uses `ingest.max_wait_ms`). Small: freshness first; under
    /// lag, batches fill on their own.
    pub max_wait_ms: u64,
    /// `auto`: candle on the GPU when built with `--features cuda` and a CUDA device is present,
    /// otherwise `native`. `native`: learn-stream's own CPU kernels (packed tokens, no padding
    /// computed; the fastest on CPU). `candle`: candle-transformers' models (CUDA when available,
    /// else CPU).
    pub backend: EncoderBackend,
    /// Threads of the encoder's own pool; 0 means one per CPU core.
    pub threads: usize,
    /// Embeddings kept by item-text hash (xxh3-128), so an identical text is never embedded twice;
    /// 0 disables the cache.
    pub cache_entries: usize,
}

/// Which implementation runs the frozen encoder (`encoder.backend`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum EncoderBackend {
    Auto,
    Native,
    Candle,
}

/// `encoder.prefix`: the model's own task prefix, or a given one.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(from = "String", into = "String")]
pub enum TaskPrefix {
    Auto,
    Given(String),
}

impl From<String> for TaskPrefix {
    fn from(s: String) -> Self {
        if s == "auto" {
            TaskPrefix::Auto
        } else {
            TaskPrefix::Given(s)
        }
    }
}

impl From<TaskPrefix> for String {
    fn from(p: TaskPrefix) -> Self {
        match p {
            TaskPrefix::Auto => "auto".into(),
            TaskPrefix::Given(s) => s,
        }
    }
}

impl TaskPrefix {
    /// The prefix to use, given the model family's own.
    pub fn resolve<'a>(&'a self, model_default: &'a str) -> &'a str {
        match self {
            TaskPrefix::Auto => model_default,
            TaskPrefix::Given(s) => s,
        }
    }
}

impl EncoderConfig {
    /// The first value the encoder cannot run with.
    pub fn validate(&self) -> Result<(), Invalid> {
        positive("encoder.max_tokens", self.max_tokens)?;
        positive("encoder.max_batch", self.max_batch)
    }

    /// The id published with embeddings: `model_id`, or the model directory's name (a `.gguf`
    /// file's name without the extension).
    pub fn resolved_model_id(&self) -> String {
        if !self.model_id.is_empty() {
            return self.model_id.clone();
        }
        let name = if self.model_dir.extension().is_some_and(|e| e == "gguf") {
            self.model_dir.file_stem()
        } else {
            self.model_dir.file_name()
        };
        name.map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| "unknown".into())
    }
}
