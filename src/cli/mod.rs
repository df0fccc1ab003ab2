//! The `learn` binary's command families, one file each, every command's arguments beside its
//! function: [`run`] (serve, demo), [`encoder`] (embed, bench-encoder), [`offline`] (train,
//! eval), [`stream`] (replay, loadgen), [`ingest`] (bench-ingest), [`ops`] (status, checkpoint
//! inspect and import), [`model`] (model reset); [`logging`] sets up where logs go.

pub mod encoder;
pub mod ingest;
pub mod logging;
pub mod model;
pub mod offline;
pub mod ops;
pub mod run;
pub mod stream;

use std::path::PathBuf;
use std::sync::Arc;

use anyhow::Result;
use clap::Args;
use learn_stream::config::Config;
use learn_stream::encode::ContentEncoder;

#[derive(Args)]
pub struct ModelArgs {
    /// Frozen encoder: a Hugging Face directory or a llama, qwen2 or nomic-bert .gguf file (overrides
    /// encoder.model_dir; LEARN__ENCODER__BACKEND / __THREADS set the backend and threads).
    #[arg(long)]
    pub model_dir: Option<PathBuf>,
}

pub fn load_encoder(config: &mut Config, args: &ModelArgs) -> Result<Arc<ContentEncoder>> {
    apply_model_dir(config, &args.model_dir);
    let encoder = ContentEncoder::from_config(&config.encoder)?;
    tracing::info!(
        model = encoder.model_id(),
        dim = encoder.dim(),
        backend = encoder.backend(),
        threads = encoder.threads(),
        "frozen encoder loaded"
    );
    Ok(Arc::new(encoder))
}

pub fn apply_model_dir(config: &mut Config, dir: &Option<PathBuf>) {
    if let Some(dir) = dir {
        config.encoder.model_dir = dir.clone();
    }
}
