//! The continual trainer task. On the process that holds the leader lock (or has
//! `role = "trainer"`), it repeatedly takes a recent-weighted sample of users with fresh actions,
//! reads their histories and content embeddings, and runs one AdamW step off the async runtime.
//! Every `checkpoint_every_steps` steps or `checkpoint_interval_secs` it writes a checkpoint,
//! publishes it to the store (followers swap to it), serves it itself, and re-publishes the
//! aligned embeddings of the catalogue and of the recently active users with the new version.
//! A process that becomes leader first restores the newest checkpoint (local directory or store).
//!
//! Here: the loop, leadership and the step; [`error`]: what a round can fail with; [`models`]:
//! towers ↔ checkpoints; [`batch`]: batch assembly; [`publish`]: checkpoint and re-publication;
//! [`threads`]: the low-priority threads steps and re-publication run on.

mod batch;
mod error;
mod lease;
mod models;
mod policy;
mod publish;
mod threads;

pub use error::TrainerError;
pub use lease::{renew as renew_lease, Lease};
use models::newest_checkpoint;
pub use models::{initial_models, serving_model, warm_start, EncoderIdentity};
use policy::CheckpointPolicy;
use threads::TrainerThreads;

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use rand::rngs::StdRng;
use rand::SeedableRng;

use super::active::ActiveUsers;
use super::lag::Knobs;
use super::live::LiveModels;
use super::shared::TrainingState;
use super::signals::EncoderBusy;
use crate::checkpoint::{Checkpoint, CheckpointDir};
use crate::config::OnlineConfig;
use crate::metrics::{Event, Stats, TrainerStage};
use crate::publish::EmbeddingPublisher;
use crate::serving::ItemCounts;
use crate::shutdown::Shutdown;
use crate::store::{Fence, Store};
use crate::train::online::OnlineTrainer;
use crate::train::TrainingConfig;

/// What the trainer touches.
pub struct Context<S> {
    pub store: S,
    pub live: LiveModels,
    /// Users with fresh actions (taken for steps, re-published at checkpoints).
    pub active: Arc<ActiveUsers>,
    /// The popularity the log-Q correction reads.
    pub item_counts: Arc<ItemCounts>,
    pub stats: Arc<Stats>,
    pub training: Arc<TrainingState>,
    /// No step starts while the encoder is busy.
    pub encoder_busy: EncoderBusy,
    /// The training batch size lag control sets.
    pub knobs: Arc<Knobs>,
    pub config: TrainerConfig,
    /// This process's name in the leader lock.
    pub instance: String,
}

/// The settings the trainer reads.
pub struct TrainerConfig {
    pub training: TrainingConfig,
    pub online: OnlineConfig,
    /// Checkpoints record how far it has been read.
    pub actions_topic: String,
    /// The frozen encoder's id (in checkpoint manifests).
    pub model_id: String,
    /// The frozen encoder's resolved task prefix (a warm start is checked against it).
    pub prefix: String,
    /// `history.cap`: the most fresh actions of one user a step can read back.
    pub history_cap: usize,
}

/// Where re-published embeddings go.
pub struct Publishers {
    pub items: EmbeddingPublisher,
    pub users: EmbeddingPublisher,
}

/// What this process is doing about training; a leader owns the trainer and the fence of the
/// term it was taken in (a publication carries it).
enum Leadership {
    Following,
    Leading(Box<OnlineTrainer>, Fence),
}

struct Loop<S> {
    ctx: Context<S>,
    lease: Arc<Lease>,
    publishers: Publishers,
    dir: CheckpointDir,
    leadership: Leadership,
    /// Where steps and re-publication run (low priority).
    threads: Arc<TrainerThreads>,
    rng: StdRng,
    steps_since_checkpoint: u64,
    loss_since_checkpoint: f64,
    last_checkpoint: Instant,
    /// The store's version when this term began: a new lineage (after `learn model reset`)
    /// continues above the retired one's, so consumers keeping the highest version see it.
    version_floor: u64,
}

pub async fn run<S: Store>(
    ctx: Context<S>,
    lease: Arc<Lease>,
    publishers: Publishers,
    mut shutdown: Shutdown,
) -> Result<(), TrainerError> {
    let online = ctx.config.online.clone();
    let mut state = Loop {
        dir: CheckpointDir::new(&online.checkpoint_dir, online.keep_checkpoints),
        rng: StdRng::seed_from_u64(ctx.config.training.seed),
        ctx,
        lease,
        publishers,
        leadership: Leadership::Following,
        threads: Arc::new(TrainerThreads::new(online.trainer_priority)?),
        steps_since_checkpoint: 0,
        loss_since_checkpoint: 0.0,
        last_checkpoint: Instant::now(),
        version_floor: 0,
    };
    let interval = Duration::from_millis(online.step_interval_ms);
    let policy = CheckpointPolicy {
        every_steps: online.checkpoint_every_steps,
        interval: Duration::from_secs(online.checkpoint_interval_secs),
    };
    let mut backoff = SETBACK_BACKOFF.0;
    loop {
        tokio::select! {
            _ = shutdown.recv() => break,
            _ = tokio::time::sleep(interval) => {}
        }
        let round = async {
            state
                .renew_leadership()
                .await
                .map_err(|e| (TrainerStage::Leadership, e))?;
            if !state.leading() || state.ctx.encoder_busy.is_busy() {
                return Ok(());
            }
            state.step().await.map_err(|e| (TrainerStage::Step, e))?;
            if policy.due(
                state.steps_since_checkpoint,
                state.last_checkpoint.elapsed(),
            ) {
                state
                    .checkpoint()
                    .await
                    .map_err(|e| (TrainerStage::Checkpoint, e))?;
            }
            Ok::<(), (TrainerStage, TrainerError)>(())
        };
        match round.await {
            Ok(()) => backoff = SETBACK_BACKOFF.0,
            Err((stage, err)) => {
                // Contained: ingestion and serving go on. The in-memory trainer (possibly the
                // cause) is dropped; the next round takes over again from the newest checkpoint.
                state.ctx.stats.emit(Event::TrainerSetback {
                    stage,
                    error: &err.to_string(),
                    backoff,
                });
                state.leadership = Leadership::Following;
                state.steps_since_checkpoint = 0;
                state.loss_since_checkpoint = 0.0;
                tokio::select! {
                    _ = shutdown.recv() => break,
                    _ = tokio::time::sleep(backoff) => {}
                }
                backoff = (backoff * 2).min(SETBACK_BACKOFF.1);
            }
        }
    }
    if state.leading() && state.steps_since_checkpoint > 0 {
        if let Err(err) = state.checkpoint().await {
            tracing::error!(%err, "final checkpoint failed; the newest one stays");
        }
    }
    Ok(())
}

/// First and longest wait after a trainer error.
const SETBACK_BACKOFF: (Duration, Duration) = (Duration::from_secs(1), Duration::from_secs(30));

impl<S: Store> Loop<S> {
    fn leading(&self) -> bool {
        matches!(self.leadership, Leadership::Leading(..))
    }

    /// Follows the lease: takes over when it is held, steps down when it is not — or when it is
    /// held in a new epoch (the lease lapsed and was taken back: another trainer may have
    /// published meanwhile, so this term starts again from the newest checkpoint).
    async fn renew_leadership(&mut self) -> Result<(), TrainerError> {
        let fence = self.lease.held();
        if let Leadership::Leading(_, term) = &self.leadership {
            if fence.as_ref() != Some(term) {
                tracing::warn!(instance = %self.ctx.instance, epoch = term.epoch, "lost the leader lock: following");
                self.leadership = Leadership::Following;
            }
        }
        if let (Some(fence), false) = (&fence, self.leading()) {
            tracing::info!(instance = %self.ctx.instance, epoch = fence.epoch, "leading: this process trains");
            let (trainer, unpublished) = self.take_over().await?;
            self.leadership = Leadership::Leading(Box::new(trainer), fence.clone());
            if let Some(checkpoint) = unpublished {
                // A warm start's version 1, or a local version the store lacks: published like any
                // checkpoint, so followers and a later leader restore it from the store.
                self.persist(checkpoint, Instant::now()).await?;
            }
        }
        self.ctx
            .training
            .leading
            .store(fence.is_some(), Ordering::Relaxed);
        Ok(())
    }

    /// Becomes the trainer: restores the newest checkpoint; with none, imports `online.warm_start`
    /// or starts from the initial weights. Returns too what the store does not have yet (to be
    /// published).
    async fn take_over(&mut self) -> Result<(OnlineTrainer, Option<Checkpoint>), TrainerError> {
        let ctx = &self.ctx;
        let mut trainer = OnlineTrainer::new(
            &ctx.live.towers,
            ctx.live.catalogue.dim(),
            &ctx.config.training,
            ctx.config.online.recent_targets,
        )?;
        trainer.refit_whitening_until(ctx.config.online.whiten_refit_until);
        trainer.warm_up_over(ctx.config.online.warmup_steps);
        let (newest, published) = newest_checkpoint(&ctx.store, &self.dir).await?;
        self.version_floor = published;
        let (newest, unpublished) = match newest {
            Some((checkpoint, missing)) => (Some(checkpoint), missing),
            None => match &ctx.config.online.warm_start {
                Some(run) => {
                    tracing::info!(run = %run.display(), "no checkpoint yet: starting the lineage from the offline run (version 1); AdamW's moments start fresh");
                    let encoder = EncoderIdentity {
                        model_id: &ctx.config.model_id,
                        prefix: &ctx.config.prefix,
                        dim: ctx.live.catalogue.dim(),
                    };
                    let towers = &ctx.live.towers;
                    let mut imported = warm_start(run, towers, &ctx.config.training, &encoder)?;
                    imported.manifest.version =
                        imported.manifest.version.max(self.version_floor + 1);
                    (Some(imported), true)
                }
                None => (None, false),
            },
        };
        if let Some(checkpoint) = &newest {
            // Checks the checkpoint fits this configuration before anything is restored.
            let serving = ctx.live.load(checkpoint)?;
            trainer.restore(checkpoint)?;
            let version = checkpoint.manifest.version;
            if ctx.live.serve(serving).await? {
                ctx.stats.emit(Event::ModelServed { version });
            }
            ctx.training
                .last_checkpoint_ms
                .store(checkpoint.manifest.created_ms, Ordering::Relaxed);
            tracing::info!(
                version,
                step = checkpoint.manifest.step,
                optimizer = if checkpoint.optimizer.is_some() {
                    "restored"
                } else {
                    "fresh (a warm start, or the store's weights alone)"
                },
                "restored checkpoint"
            );
        }
        self.last_checkpoint = Instant::now();
        // Training lag counts from now until the first step.
        self.ctx
            .training
            .trained_through_ms
            .store(crate::schemas::now_ms(), Ordering::Relaxed);
        Ok((trainer, newest.filter(|_| unpublished)))
    }

    async fn step(&mut self) -> Result<(), TrainerError> {
        let limit = self.ctx.knobs.train_batch.load(Ordering::Relaxed);
        let online = &self.ctx.config.online;
        // Fresh actions beyond what a history holds are gone from it: at most the cap each.
        let taken = self.ctx.active.take_batch(
            limit,
            self.ctx.config.history_cap as u64,
            online.replay_users,
            &mut self.rng,
        );
        let Some(batch) = self.batch(&taken).await? else {
            // Fewer than two usable sequences: they wait for the next step.
            self.ctx.active.untake(&taken);
            return Ok(());
        };
        let Leadership::Leading(mut trainer, fence) =
            std::mem::replace(&mut self.leadership, Leadership::Following)
        else {
            return Ok(());
        };
        let started = Instant::now();
        let threads = self.threads.clone();
        let (trainer, stepped) = tokio::task::spawn_blocking(move || {
            threads.run(|| {
                let stepped = trainer.step(&batch, usize::MAX);
                (trainer, stepped)
            })
        })
        .await?;
        self.leadership = Leadership::Leading(trainer, fence);
        if let Some(stepped) = stepped? {
            if let Some(newest) = taken.newest_ms {
                self.ctx
                    .training
                    .trained_through_ms
                    .fetch_max(newest, Ordering::Relaxed);
            }
            self.ctx.stats.emit(Event::TrainStep {
                loss: stepped.loss as f64,
                seconds: started.elapsed().as_secs_f64(),
                users: taken.users.len(),
                pairs: stepped.pairs,
                actions: taken.actions(),
            });
            self.steps_since_checkpoint += 1;
            self.loss_since_checkpoint += stepped.loss as f64;
        }
        Ok(())
    }
}
