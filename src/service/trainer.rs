//! The continual trainer task. On the process that holds the leader lock (or has
//! `role = "trainer"`), it repeatedly takes a recent-weighted sample of users with fresh actions,
//! reads their histories and content embeddings, and runs one AdamW step off the async runtime.
//! Every `checkpoint_every_steps` steps or `checkpoint_interval_secs` it writes a checkpoint,
//! publishes it to the store (followers swap to it), serves it itself, and re-publishes the
//! aligned embeddings of the catalogue and of the recently active users with the new version.
//! A process that becomes leader first restores the newest checkpoint (local directory or store).

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use rand::rngs::StdRng;
use rand::SeedableRng;

use super::{ServiceError, Shared};
use crate::checkpoint::{self, Checkpoint, CheckpointDir, CheckpointError, Manifest};
use crate::config::{Config, Role};
use crate::history::{Store, StoreError, StoredModel};
use crate::metrics::Event;
use crate::publish::EmbeddingPublisher;
use crate::schemas::{now_ms, UserEmbedding};
use crate::serving::{Models, ServingModel};
use crate::shutdown::Shutdown;
use crate::train::negatives::draw_uniform;
use crate::train::online::{inference_tower, OnlineBatch, OnlineTrainer};
use crate::train::Negatives;

#[derive(Debug, thiserror::Error)]
pub enum TrainerError {
    #[error("store: {0}")]
    Store(#[from] StoreError),
    #[error("checkpoint: {0}")]
    Checkpoint(#[from] CheckpointError),
    #[error("towers: {0}")]
    Tensor(#[from] candle_core::Error),
    #[error("kafka: {0}")]
    Kafka(#[from] rdkafka::error::KafkaError),
    #[error("checkpoint v{version} does not fit this configuration: {reason}")]
    Incompatible { version: u64, reason: String },
    #[error("training task failed: {0}")]
    Join(#[from] tokio::task::JoinError),
}

/// Where re-published embeddings go.
pub struct Publishers {
    pub items: EmbeddingPublisher,
    pub users: EmbeddingPublisher,
}

/// The models a process starts with: the initial towers (seeded, version 0) serve until a
/// checkpoint is found; the same weights are kept as the frozen baseline.
pub fn initial_models(
    config: &Config,
    content_dim: usize,
    model_id: &str,
) -> Result<Models, ServiceError> {
    let build = || -> Result<ServingModel, TrainerError> {
        Ok(ServingModel {
            version: 0,
            tower: inference_tower(&config.towers, content_dim, config.training.seed, None)?,
            created_ms: now_ms(),
        })
    };
    Ok(Models::new(
        build()?,
        build()?,
        format!("learn-towers/{model_id}"),
    ))
}

/// Hash of the settings the weights depend on.
fn config_hash(config: &Config) -> String {
    let text = serde_json::to_string(&(&config.towers, &config.training)).expect("serialisable");
    format!("{:016x}", xxhash_rust::xxh3::xxh3_64(text.as_bytes()))
}

/// A serving model from a checkpoint's weights.
pub fn serving_model(
    config: &Config,
    content_dim: usize,
    checkpoint: &Checkpoint,
) -> Result<ServingModel, TrainerError> {
    check_compatible(config, content_dim, &checkpoint.manifest)?;
    Ok(ServingModel {
        version: checkpoint.manifest.version,
        tower: inference_tower(
            &config.towers,
            content_dim,
            config.training.seed,
            Some(&checkpoint.weights),
        )?,
        created_ms: checkpoint.manifest.created_ms,
    })
}

fn check_compatible(
    config: &Config,
    content_dim: usize,
    manifest: &Manifest,
) -> Result<(), TrainerError> {
    let incompatible = |reason: String| TrainerError::Incompatible {
        version: manifest.version,
        reason,
    };
    if manifest.towers != config.towers {
        return Err(incompatible(format!(
            "[towers] {:?} vs configured {:?}",
            manifest.towers, config.towers
        )));
    }
    if manifest.content_dim != content_dim {
        return Err(incompatible(format!(
            "content dim {} (encoder {}) vs this encoder's {content_dim}",
            manifest.content_dim, manifest.model_id
        )));
    }
    Ok(())
}

/// The newest checkpoint: the local directory's or the store's, whichever is newer.
async fn newest_checkpoint<S: Store>(
    shared: &Shared<S>,
    dir: &CheckpointDir,
) -> Result<Option<Checkpoint>, TrainerError> {
    let local = {
        let dir = dir.clone();
        tokio::task::spawn_blocking(move || dir.latest()).await??
    };
    let remote = match shared.store.current_model().await? {
        Some(model)
            if local
                .as_ref()
                .is_none_or(|l| l.manifest.version < model.version) =>
        {
            Some(checkpoint::from_bytes(&model.manifest, &model.state)?)
        }
        _ => None,
    };
    Ok(remote.or(local))
}

struct Loop<S> {
    shared: Arc<Shared<S>>,
    publishers: Publishers,
    dir: CheckpointDir,
    trainer: Option<OnlineTrainer>,
    leading: bool,
    rng: StdRng,
    steps_since_checkpoint: u64,
    loss_since_checkpoint: f64,
    last_checkpoint: Instant,
}

pub async fn run<S: Store>(
    shared: Arc<Shared<S>>,
    publishers: Publishers,
    mut shutdown: Shutdown,
) -> Result<(), TrainerError> {
    let online = shared.config.online.clone();
    let mut state = Loop {
        dir: CheckpointDir::new(&online.checkpoint_dir, online.keep_checkpoints),
        rng: StdRng::seed_from_u64(shared.config.training.seed),
        shared,
        publishers,
        trainer: None,
        leading: false,
        steps_since_checkpoint: 0,
        loss_since_checkpoint: 0.0,
        last_checkpoint: Instant::now(),
    };
    let renew_every = Duration::from_millis((online.leader_ttl_ms / 3).max(100));
    let mut last_renewal: Option<Instant> = None;
    let interval = Duration::from_millis(online.step_interval_ms);
    loop {
        tokio::select! {
            _ = shutdown.recv() => break,
            _ = tokio::time::sleep(interval) => {}
        }
        if last_renewal.is_none_or(|t| t.elapsed() >= renew_every) {
            last_renewal = Some(Instant::now());
            state.renew_leadership().await?;
        }
        if !state.leading || state.shared.training.embedding.load(Ordering::SeqCst) > 0 {
            continue;
        }
        state.step().await?;
        let due = state.steps_since_checkpoint >= online.checkpoint_every_steps
            || (state.steps_since_checkpoint > 0
                && state.last_checkpoint.elapsed()
                    >= Duration::from_secs(online.checkpoint_interval_secs));
        if due {
            state.checkpoint().await?;
        }
    }
    if state.leading && state.steps_since_checkpoint > 0 {
        state.checkpoint().await?;
    }
    Ok(())
}

impl<S: Store> Loop<S> {
    async fn renew_leadership(&mut self) -> Result<(), TrainerError> {
        let config = &self.shared.config;
        let leading = match config.online.role {
            Role::Trainer => true,
            Role::Follower => false,
            Role::Auto => match self
                .shared
                .store
                .try_lead(&self.shared.instance, config.online.leader_ttl_ms)
                .await
            {
                Ok(held) => held,
                Err(err) => {
                    // Without the store nobody can confirm the lock: stop training until it is back.
                    tracing::warn!(%err, "leader lock unavailable");
                    false
                }
            },
        };
        if leading && !self.leading {
            tracing::info!(instance = %self.shared.instance, "leading: this process trains");
            self.take_over().await?;
        } else if !leading && self.leading {
            tracing::warn!(instance = %self.shared.instance, "lost the leader lock: following");
            self.trainer = None;
        }
        self.leading = leading;
        self.shared
            .training
            .leading
            .store(leading, Ordering::Relaxed);
        Ok(())
    }

    /// Becomes the trainer: restores the newest checkpoint, or starts from the initial weights.
    async fn take_over(&mut self) -> Result<(), TrainerError> {
        let config = self.shared.config.clone();
        let dim = self.shared.catalogue.dim();
        let mut trainer = OnlineTrainer::new(
            &config.towers,
            dim,
            &config.training,
            config.online.recent_targets,
        )?;
        if let Some(checkpoint) = newest_checkpoint(&self.shared, &self.dir).await? {
            check_compatible(&config, dim, &checkpoint.manifest)?;
            trainer.restore(&checkpoint)?;
            let version = checkpoint.manifest.version;
            if self
                .shared
                .models
                .swap(serving_model(&config, dim, &checkpoint)?)
            {
                self.shared.stats.emit(Event::ModelServed { version });
            }
            self.shared
                .training
                .last_checkpoint_ms
                .store(checkpoint.manifest.created_ms, Ordering::Relaxed);
            tracing::info!(
                version,
                step = checkpoint.manifest.step,
                "restored checkpoint"
            );
        }
        self.trainer = Some(trainer);
        self.last_checkpoint = Instant::now();
        Ok(())
    }

    /// Users' recent sequences as rows of a batch-local table: the batch's items plus uniform
    /// draws from the catalogue (`sampled`, `mixed`), or the whole catalogue (`all_items`).
    async fn batch(&mut self, users: &[String]) -> Result<Option<OnlineBatch>, TrainerError> {
        let shared = self.shared.clone();
        let training = &shared.config.training;
        let limit = shared.config.towers.max_len + shared.config.online.recent_targets;
        let histories =
            futures::future::try_join_all(users.iter().map(|u| shared.store.history(u, limit)))
                .await?;
        let ids: Vec<String> = histories
            .iter()
            .flatten()
            .map(|e| e.item_id.clone())
            .collect();
        shared.catalogue.fetch_missing(&shared.store, &ids).await?;
        let whole = training.negatives == Negatives::AllItems;
        let (mut local, mut rows) = (HashMap::new(), Vec::new());
        let mut local_row = |row: u32| {
            if whole {
                return row;
            }
            *local.entry(row).or_insert_with(|| {
                rows.push(row);
                rows.len() as u32 - 1
            })
        };
        let sequences: Vec<Vec<u32>> = histories
            .iter()
            .map(|h| {
                h.iter()
                    .filter_map(|e| shared.catalogue.row(&e.item_id))
                    .map(&mut local_row)
                    .collect::<Vec<u32>>()
            })
            .filter(|s| s.len() >= 2)
            .collect();
        if sequences.len() < 2 {
            return Ok(None);
        }
        // Read after the rows above: the catalogue only grows, so it covers every one of them.
        let catalogue_items = shared.catalogue.len();
        let drawn: Vec<u32> = if training.negatives.draws() {
            draw_uniform(catalogue_items, training.negative_samples, &mut self.rng)
                .into_iter()
                .map(|row| local_row(row as u32))
                .collect()
        } else {
            Vec::new()
        };
        if whole {
            rows = (0..catalogue_items as u32).collect();
        }
        let log_share = training.logq_correction.then(|| {
            let ids: Vec<String> = rows
                .iter()
                .filter_map(|&r| shared.catalogue.id(r))
                .collect();
            shared.item_counts.log_share(ids.iter().map(String::as_str))
        });
        Ok(Some(OnlineBatch {
            table: shared.catalogue.table(&rows)?,
            sequences,
            drawn,
            catalogue_items,
            log_share,
        }))
    }

    async fn step(&mut self) -> Result<(), TrainerError> {
        let shared = self.shared.clone();
        let limit = shared.knobs.train_batch.load(Ordering::Relaxed);
        let users = shared.active.take_batch(limit, &mut self.rng);
        shared
            .training
            .pending_users
            .store(shared.active.pending(), Ordering::Relaxed);
        let Some(batch) = self.batch(&users).await? else {
            return Ok(());
        };
        let mut trainer = self.trainer.take().expect("a leader has a trainer");
        let started = Instant::now();
        let (trainer, loss) = tokio::task::spawn_blocking(move || {
            let loss = trainer.step(&batch, limit);
            (trainer, loss)
        })
        .await?;
        self.trainer = Some(trainer);
        if let Some(loss) = loss? {
            shared.stats.emit(Event::TrainStep {
                loss: loss as f64,
                seconds: started.elapsed().as_secs_f64(),
                users: users.len(),
            });
            self.steps_since_checkpoint += 1;
            self.loss_since_checkpoint += loss as f64;
        }
        Ok(())
    }

    /// Writes, publishes and serves a new version, then re-publishes embeddings under it.
    async fn checkpoint(&mut self) -> Result<(), TrainerError> {
        let started = Instant::now();
        let shared = self.shared.clone();
        let config = &shared.config;
        let version = shared.models.current().version + 1;
        let offsets = BTreeMap::from([(
            config.kafka.actions_topic.clone(),
            shared.store.watermarks(&config.kafka.actions_topic).await?,
        )]);
        let manifest = Manifest {
            version,
            created_ms: now_ms(),
            step: 0,
            config_hash: config_hash(config),
            model_id: shared.encoder.model_id().to_string(),
            content_dim: shared.catalogue.dim(),
            towers: config.towers.clone(),
            loss: (self.steps_since_checkpoint > 0)
                .then(|| self.loss_since_checkpoint / self.steps_since_checkpoint as f64),
            offsets,
        };
        let trainer = self.trainer.as_ref().expect("a leader has a trainer");
        let checkpoint = trainer.checkpoint(manifest)?;
        let (dir, to_write) = (self.dir.clone(), checkpoint.clone());
        let (path, state) = tokio::task::spawn_blocking(move || -> Result<_, CheckpointError> {
            let path = dir.write(&to_write)?;
            let state = checkpoint::state_bytes(&path)?;
            Ok((path, state))
        })
        .await??;
        shared
            .store
            .publish_model(&StoredModel {
                version,
                manifest: serde_json::to_vec(&checkpoint.manifest).expect("serialisable"),
                state,
            })
            .await?;
        shared
            .models
            .swap(serving_model(config, shared.catalogue.dim(), &checkpoint)?);
        shared
            .training
            .last_checkpoint_ms
            .store(checkpoint.manifest.created_ms, Ordering::Relaxed);
        shared.stats.emit(Event::ModelServed { version });
        shared.stats.emit(Event::Checkpointed {
            version,
            seconds: started.elapsed().as_secs_f64(),
        });
        tracing::info!(version, step = checkpoint.manifest.step, loss = ?checkpoint.manifest.loss, path = %path.display(), "checkpoint");
        self.steps_since_checkpoint = 0;
        self.loss_since_checkpoint = 0.0;
        self.last_checkpoint = Instant::now();
        self.republish().await
    }

    /// Aligned embeddings of the whole catalogue and of the users active since the last checkpoint,
    /// under the serving version.
    async fn republish(&self) -> Result<(), TrainerError> {
        let shared = self.shared.clone();
        let model = shared.models.current();
        let towers_id = shared.models.towers_id().to_string();
        let all = shared.clone();
        let (version, vectors) =
            tokio::task::spawn_blocking(move || all.models.all_items(&all.catalogue)).await??;
        let rows: Vec<u32> = (0..vectors.len() as u32).collect();
        let embeddings = shared
            .models
            .records(&shared.catalogue, version, &rows, vectors);
        for chunk in embeddings.chunks(1024) {
            shared.store.put_item_embeddings(chunk).await?;
            self.publishers.items.publish(chunk).await?;
        }
        let users = shared.active.drain_since_checkpoint();
        let limit = shared.config.towers.max_len;
        let histories =
            futures::future::try_join_all(users.iter().map(|u| shared.store.history(u, limit)))
                .await?;
        let (shared2, model2) = (shared.clone(), model.clone());
        let embeddings =
            tokio::task::spawn_blocking(move || -> candle_core::Result<Vec<UserEmbedding>> {
                let mut out = Vec::new();
                for (user, history) in users.into_iter().zip(histories) {
                    let rows: Vec<u32> = history
                        .iter()
                        .filter_map(|e| shared2.catalogue.row(&e.item_id))
                        .collect();
                    if rows.is_empty() {
                        continue;
                    }
                    let vector = model2.user(&shared2.catalogue, &rows)?;
                    out.push(UserEmbedding {
                        user_id: user,
                        model: towers_id.clone(),
                        dim: vector.len(),
                        vector,
                        version: model2.version,
                        history_len: rows.len(),
                        ts_ms: now_ms(),
                    });
                }
                Ok(out)
            })
            .await??;
        for chunk in embeddings.chunks(1024) {
            shared.store.put_user_embeddings(chunk).await?;
            self.publishers.users.publish(chunk).await?;
        }
        Ok(())
    }
}
