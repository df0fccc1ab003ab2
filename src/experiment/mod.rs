//! Owns the offline experiments behind `learn train` and `learn eval`: a dataset with its
//! leave-one-out split and cold items, the models (LEARN, SASRec, raw content, popularity), and
//! tower checkpoints (`<out>/<model>.safetensors` + `<out>/<model>.json`); [`report`] writes
//! `results.json`, `report.md` and `training.svg`.

pub mod report;
mod saved;
pub mod warm_start;

use saved::checkpoint_error;
pub use saved::{load_checkpoint_meta, load_weights, save_checkpoint, CheckpointMeta};

use std::collections::HashSet;
use std::path::{Path, PathBuf};

use candle_core::{Device, Tensor};
use candle_nn::VarMap;
use serde::{Deserialize, Serialize};

use crate::config::Config;
use crate::dataset::{self, content::content_table, Dataset};
use crate::encode::ContentEncoder;
use crate::eval::split::{cold_items, without_items};
use crate::eval::{leave_one_out, Split};
use crate::towers::{Tower, TowerInput, TowerSpec};
use crate::train::TrainReport;

#[derive(Debug, thiserror::Error)]
pub enum ExperimentError {
    #[error("dataset: {0}")]
    Dataset(#[from] dataset::DatasetError),
    #[error("content embeddings: {0}")]
    Content(#[from] dataset::content::ContentError),
    #[error("encoder: {0}")]
    Encode(#[from] crate::encode::EncodeError),
    #[error("model: {0}")]
    Candle(#[from] candle_core::Error),
    #[error("{path}: {reason}")]
    Checkpoint { path: PathBuf, reason: String },
}

/// The recommenders `learn train` / `learn eval` know.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "snake_case")]
pub enum ModelKind {
    /// LEARN: frozen content embeddings → aligned towers.
    Learn,
    /// LEARN's ranking blended with the whitened raw-content ranking (`learn` + w · `content-whitened`,
    /// w chosen on validation): evaluated from the `learn` checkpoint, not trained on its own.
    LearnFused,
    /// SASRec: trainable item-ID embeddings, same towers and loss.
    Sasrec,
    /// Paper variant (c): raw content embeddings, no alignment (not trained).
    Content,
    /// Variant (c) over whitened content (the `towers.whiten` transform, fitted on the catalogue):
    /// what whitening alone buys, without alignment (not trained).
    ContentWhitened,
    /// Most popular items (not trained).
    Popularity,
}

impl ModelKind {
    pub fn name(self) -> &'static str {
        match self {
            ModelKind::Learn => "learn",
            ModelKind::LearnFused => "learn-fused",
            ModelKind::Sasrec => "sasrec",
            ModelKind::Content => "content",
            ModelKind::ContentWhitened => "content-whitened",
            ModelKind::Popularity => "popularity",
        }
    }
}

/// A dataset prepared for training and evaluation.
pub struct Experiment {
    pub dataset: Dataset,
    pub split: Split,
    pub cold: HashSet<u32>,
    /// Training sequences with the cold items removed.
    pub train: Vec<Vec<u32>>,
}

impl Experiment {
    pub fn prepare(dir: &Path, cold_fraction: f64, seed: u64) -> Result<Self, ExperimentError> {
        let dataset = dataset::load(dir)?;
        let split = leave_one_out(&dataset.sequences);
        let cold = cold_items(dataset.items.len(), cold_fraction, seed);
        let train = without_items(&split.train, &cold);
        Ok(Self {
            dataset,
            split,
            cold,
            train,
        })
    }

    /// The frozen content table (cached under `cache_dir`).
    pub fn content(&self, config: &Config, cache_dir: &Path) -> Result<Tensor, ExperimentError> {
        let encoder = ContentEncoder::from_config(&config.encoder)?;
        Ok(content_table(&self.dataset, &encoder, cache_dir)?)
    }

    /// A fresh tower for `kind` (Learn or Sasrec) with its variables in `varmap`.
    pub fn tower(
        &self,
        kind: ModelKind,
        spec: &TowerSpec,
        content: Option<&Tensor>,
        varmap: &VarMap,
        seed: u64,
    ) -> Result<Tower, ExperimentError> {
        let input = match (kind, content) {
            (ModelKind::Learn, Some(table)) => {
                let mut trained = vec![false; self.dataset.items.len()];
                for &item in self.train.iter().flatten() {
                    trained[item as usize] = true;
                }
                TowerInput::Content {
                    table: table.clone(),
                    trained,
                }
            }
            _ => TowerInput::Ids {
                items: self.dataset.items.len(),
            },
        };
        Ok(Tower::new(spec, input, varmap, seed, &Device::Cpu)?)
    }

    /// The `kind` tower trained under `options.out`, with its checkpoint's metadata (refused when
    /// it was trained with another cold fraction).
    fn trained_tower(
        &self,
        kind: ModelKind,
        options: &EvalOptions,
        content: Option<&Tensor>,
    ) -> Result<(Tower, CheckpointMeta), ExperimentError> {
        let meta = load_checkpoint_meta(&options.out, kind)?;
        if (meta.cold_fraction - options.cold_fraction).abs() > 1e-12 {
            return Err(checkpoint_error(
                &options.out,
                format!(
                    "{} was trained with --cold-items {}, not {}",
                    kind.name(),
                    meta.cold_fraction,
                    options.cold_fraction
                ),
            ));
        }
        let mut varmap = VarMap::new();
        let tower = self.tower(kind, &meta.towers, content, &varmap, meta.training.seed)?;
        load_weights(&options.out, kind, &mut varmap)?;
        Ok((tower, meta))
    }
}

/// `learn train`.
pub struct TrainOptions {
    pub dataset: PathBuf,
    pub out: PathBuf,
    pub cache_dir: PathBuf,
    pub cold_fraction: f64,
    pub model: ModelKind,
}

/// `encoder`: one already loaded (its text cache then holds the dataset's vectors), else the
/// configured one is loaded.
pub fn train_command(
    config: &Config,
    options: &TrainOptions,
    encoder: Option<&ContentEncoder>,
) -> Result<TrainReport, ExperimentError> {
    let exp = Experiment::prepare(
        &options.dataset,
        options.cold_fraction,
        config.training.seed,
    )?;
    let (content, prefix) = match options.model {
        ModelKind::Learn => {
            let loaded;
            let encoder = match encoder {
                Some(encoder) => encoder,
                None => {
                    loaded = ContentEncoder::from_config(&config.encoder)?;
                    &loaded
                }
            };
            let table = content_table(&exp.dataset, encoder, &options.cache_dir)?;
            (Some(table), Some(encoder.prefix().to_string()))
        }
        ModelKind::Sasrec => (None, None),
        other => {
            return Err(checkpoint_error(
                &options.out,
                format!("{} is not trained", other.name()),
            ))
        }
    };
    let (towers, training) = match options.model {
        ModelKind::Sasrec => (
            config.sasrec.towers(),
            config.sasrec.training(&config.training),
        ),
        _ => (config.towers.clone(), config.training.clone()),
    };
    let varmap = VarMap::new();
    let tower = exp.tower(
        options.model,
        &towers,
        content.as_ref(),
        &varmap,
        training.seed,
    )?;
    let report = crate::train::train(
        &tower,
        &varmap,
        &exp.train,
        &exp.split.valid,
        exp.dataset.items.len(),
        &training,
    )?;
    let meta = CheckpointMeta {
        model: options.model,
        dataset: exp.dataset.name.clone(),
        encoder_model: content.as_ref().map(|_| config.encoder.resolved_model_id()),
        encoder_prefix: prefix,
        towers,
        training,
        cold_fraction: options.cold_fraction,
        report: report.clone(),
    };
    save_checkpoint(&options.out, &varmap, &meta)?;
    Ok(report)
}

/// `learn eval`.
pub struct EvalOptions {
    pub dataset: PathBuf,
    pub out: PathBuf,
    pub cache_dir: PathBuf,
    pub cold_fraction: f64,
    pub models: Vec<ModelKind>,
    pub command: String,
}

pub fn eval_command(
    config: &Config,
    options: &EvalOptions,
) -> Result<report::Results, ExperimentError> {
    use report::Results;

    let exp = Experiment::prepare(
        &options.dataset,
        options.cold_fraction,
        config.training.seed,
    )?;
    let items = exp.dataset.items.len();
    let needs_content = options.models.iter().any(|m| {
        matches!(
            m,
            ModelKind::Learn
                | ModelKind::LearnFused
                | ModelKind::Content
                | ModelKind::ContentWhitened
        )
    });
    let content = if needs_content {
        Some(exp.content(config, &options.cache_dir)?)
    } else {
        None
    };
    let mut models = std::collections::BTreeMap::new();
    for &kind in &options.models {
        let result = model_result(&exp, kind, config, options, content.as_ref())?;
        models.insert(kind.name().to_string(), result);
    }
    let results = Results {
        dataset: exp.dataset.name.clone(),
        items,
        users: exp.dataset.sequences.len(),
        test_cases: exp.split.test.len(),
        cold_fraction: options.cold_fraction,
        cold_items: exp.cold.len(),
        command: options.command.clone(),
        models,
    };
    report::write(&results, &options.out).map_err(|e| checkpoint_error(&options.out, e))?;
    Ok(results)
}

/// One model of `learn eval`, trained (or built) and evaluated on the test split.
fn model_result(
    exp: &Experiment,
    kind: ModelKind,
    config: &Config,
    options: &EvalOptions,
    content: Option<&Tensor>,
) -> Result<report::ModelResult, ExperimentError> {
    use crate::eval::scorers::{ContentScorer, PopularityScorer, TowerScorer};
    use crate::eval::{evaluate, fusion};

    let items = exp.dataset.items.len();
    let (evaluation, training, fusion) = match kind {
        ModelKind::Learn | ModelKind::Sasrec => {
            let (tower, meta) = exp.trained_tower(kind, options, content)?;
            let scorer = TowerScorer::new(&tower, items)?;
            (
                evaluate(&scorer, &exp.split.test, &exp.cold)?,
                Some(meta.report),
                None,
            )
        }
        ModelKind::LearnFused => {
            let (tower, meta) = exp.trained_tower(ModelKind::Learn, options, content)?;
            let towers = TowerScorer::new(&tower, items)?;
            let table = content.expect("loaded for every model that reads content");
            let raw = ContentScorer::whitened(table, meta.towers.max_len)?;
            let (weight, valid_ndcg_10) = fusion::select_weight(&towers, &raw, &exp.split.valid)?;
            let fused = fusion::FusedScorer {
                first: &towers,
                second: &raw,
                weight,
            };
            (
                evaluate(&fused, &exp.split.test, &exp.cold)?,
                Some(meta.report),
                Some(report::Fusion {
                    weight,
                    valid_ndcg_10,
                }),
            )
        }
        ModelKind::Content | ModelKind::ContentWhitened => {
            let table = content.expect("loaded for every model that reads content");
            let max_len = config.towers.max_len;
            let scorer = if kind == ModelKind::Content {
                ContentScorer::new(table, max_len)?
            } else {
                ContentScorer::whitened(table, max_len)?
            };
            (evaluate(&scorer, &exp.split.test, &exp.cold)?, None, None)
        }
        ModelKind::Popularity => {
            let scorer = PopularityScorer::new(&exp.train, items)?;
            (evaluate(&scorer, &exp.split.test, &exp.cold)?, None, None)
        }
    };
    Ok(report::ModelResult {
        evaluation,
        training,
        fusion,
    })
}
