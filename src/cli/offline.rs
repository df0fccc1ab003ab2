//! `learn train` and `learn eval`: the paper's offline protocol on a dataset.

use std::path::PathBuf;

use anyhow::Result;
use clap::Args;
use learn_stream::config::Config;
use learn_stream::experiment::{self, ModelKind};

use super::apply_model_dir;

#[derive(Args)]
pub struct DatasetArgs {
    /// Dataset directory: canonical (items.jsonl + interactions.csv), RecBole atomic files, or MovieLens 100K.
    #[arg(long)]
    pub dataset: PathBuf,
    /// Where checkpoints, results and the report go (default: runs/<dataset name>).
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Fraction of items removed from training entirely (cold-start evaluation).
    #[arg(long, default_value_t = 0.0)]
    pub cold_items: f64,
    /// Where content embeddings are cached.
    #[arg(long, default_value = "runs/cache")]
    pub cache_dir: PathBuf,
    /// Frozen encoder: a Hugging Face directory or a llama, qwen2 or nomic-bert .gguf file (overrides
    /// encoder.model_dir; LEARN__ENCODER__BACKEND / __THREADS set the backend and threads).
    #[arg(long)]
    pub model_dir: Option<PathBuf>,
}

impl DatasetArgs {
    fn out_dir(&self) -> PathBuf {
        self.out.clone().unwrap_or_else(|| {
            let name = self
                .dataset
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default();
            PathBuf::from("runs").join(name)
        })
    }
}

#[derive(Args)]
pub struct TrainArgs {
    #[command(flatten)]
    pub data: DatasetArgs,
    /// Which towers to train (the other models `learn eval` compares are not trained).
    #[arg(long, value_enum, default_value = "learn")]
    pub model: Trained,
    /// Overrides training.epochs.
    #[arg(long)]
    pub epochs: Option<usize>,
    /// Overrides training.loss.
    #[arg(long, value_enum)]
    pub loss: Option<learn_stream::train::Targets>,
    /// Overrides training.negatives.
    #[arg(long, value_enum)]
    pub negatives: Option<learn_stream::train::Negatives>,
    /// Overrides training.seed.
    #[arg(long)]
    pub seed: Option<u64>,
}

/// The models `learn train` trains.
#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub enum Trained {
    /// LEARN: frozen content embeddings → aligned towers.
    Learn,
    /// SASRec: trainable item-ID embeddings (`[sasrec]`).
    Sasrec,
}

impl From<Trained> for ModelKind {
    fn from(model: Trained) -> Self {
        match model {
            Trained::Learn => ModelKind::Learn,
            Trained::Sasrec => ModelKind::Sasrec,
        }
    }
}

#[derive(Args)]
pub struct EvalArgs {
    #[command(flatten)]
    pub data: DatasetArgs,
    /// Models to compare in one table (learn and sasrec need `learn train` first).
    #[arg(long, value_enum, num_args = 1.., default_values = ["learn", "sasrec", "content", "content-whitened", "popularity"])]
    pub model: Vec<ModelKind>,
}

fn command_line() -> String {
    std::env::args().collect::<Vec<_>>().join(" ")
}

pub fn train(mut config: Config, args: TrainArgs) -> Result<()> {
    apply_model_dir(&mut config, &args.data.model_dir);
    if let Some(epochs) = args.epochs {
        config.training.epochs = epochs;
    }
    if let Some(loss) = args.loss {
        config.training.loss = loss;
    }
    if let Some(negatives) = args.negatives {
        config.training.negatives = negatives;
    }
    if let Some(seed) = args.seed {
        config.training.seed = seed;
    }
    let options = experiment::TrainOptions {
        dataset: args.data.dataset.clone(),
        out: args.data.out_dir(),
        cache_dir: args.data.cache_dir.clone(),
        cold_fraction: args.data.cold_items,
        model: args.model.into(),
    };
    let report = experiment::train_command(&config, &options, None)?;
    println!(
        "{}: best epoch {} of {}, {} steps, {:.0} s; checkpoint in {}",
        options.model.name(),
        report.best_epoch,
        report.curve.len(),
        report.steps,
        report.seconds,
        options.out.display()
    );
    Ok(())
}

pub fn eval(mut config: Config, args: EvalArgs) -> Result<()> {
    apply_model_dir(&mut config, &args.data.model_dir);
    let options = experiment::EvalOptions {
        dataset: args.data.dataset.clone(),
        out: args.data.out_dir(),
        cache_dir: args.data.cache_dir.clone(),
        cold_fraction: args.data.cold_items,
        models: args.model.clone(),
        command: command_line(),
    };
    let results = experiment::eval_command(&config, &options)?;
    println!("{}", learn_stream::experiment::report::markdown(&results));
    println!(
        "written: {}/{{results.json,report.md,training.svg,training.png}}",
        options.out.display()
    );
    Ok(())
}
