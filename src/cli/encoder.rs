//! `learn embed` (texts → embeddings as JSON lines) and `learn bench-encoder` (items/s per batch).

use std::path::PathBuf;

use anyhow::{bail, Context, Result};
use clap::Args;
use learn_stream::config::Config;

use super::{load_encoder, ModelArgs};

#[derive(Args)]
pub struct EmbedArgs {
    #[command(flatten)]
    pub model: ModelArgs,
    /// Text to embed (repeatable).
    #[arg(long, required_unless_present = "file")]
    pub text: Vec<String>,
    /// File with one text per line.
    #[arg(long, conflicts_with = "text")]
    pub file: Option<PathBuf>,
}

#[derive(Args)]
pub struct BenchEncoderArgs {
    #[command(flatten)]
    pub model: ModelArgs,
    /// JSON list of texts, repeated to fill a batch.
    #[arg(long, default_value = "tests/fixtures/encoder/titles.json")]
    pub texts: PathBuf,
    /// Batch sizes, comma separated.
    #[arg(long, value_delimiter = ',', default_value = "1,16,64")]
    pub batches: Vec<usize>,
    /// Seconds measured per batch size (after one warm-up batch).
    #[arg(long, default_value_t = 3.0)]
    pub seconds: f64,
}

pub fn embed(mut config: Config, args: EmbedArgs) -> Result<()> {
    let encoder = load_encoder(&mut config, &args.model)?;
    let texts = match &args.file {
        Some(path) => std::fs::read_to_string(path)
            .with_context(|| format!("reading {}", path.display()))?
            .lines()
            .map(str::to_string)
            .collect(),
        None => args.text.clone(),
    };
    if texts.iter().any(|t| t.trim().is_empty()) {
        bail!("empty text: every text to embed must have content");
    }
    for (text, vector) in texts.iter().zip(encoder.embed(&texts)?) {
        let line = serde_json::json!({ "text": text, "model": encoder.model_id(), "dim": vector.len(), "vector": vector });
        println!("{line}");
    }
    Ok(())
}

pub fn bench_encoder(mut config: Config, args: BenchEncoderArgs) -> Result<()> {
    config.encoder.cache_entries = 0; // every batch is embedded, never served from the cache
    let batch_max = args.batches.iter().copied().max().unwrap_or(1);
    config.encoder.max_batch = batch_max;
    let encoder = load_encoder(&mut config, &args.model)?;
    let texts: Vec<String> = serde_json::from_str(
        &std::fs::read_to_string(&args.texts)
            .with_context(|| format!("reading {}", args.texts.display()))?,
    )?;
    for &batch in &args.batches {
        let inputs: Vec<String> = texts.iter().cycle().take(batch).cloned().collect();
        encoder.embed(&inputs)?; // warm-up
        let (start, mut done) = (std::time::Instant::now(), 0usize);
        while start.elapsed().as_secs_f64() < args.seconds || done < 3 * batch {
            encoder.embed(&inputs)?;
            done += batch;
        }
        let rate = done as f64 / start.elapsed().as_secs_f64();
        let line = serde_json::json!({
            "runtime": format!("learn-stream {}", encoder.backend()),
            "model": encoder.model_id(), "prefix": encoder.prefix(), "batch": batch, "threads": encoder.threads(),
            "items_per_s": (rate * 100.0).round() / 100.0,
        });
        println!("{line}");
    }
    Ok(())
}
