//! Checkpoint a new version (write, publish to the store, serve it) and re-publish the aligned
//! embeddings of the catalogue and of recently active users under it.

use std::collections::BTreeMap;
use std::sync::atomic::Ordering;
use std::time::Instant;

use super::models::config_hash;
use super::{Loop, TrainerError};
use crate::checkpoint::Manifest;
use crate::metrics::Event;
use crate::schemas::{now_ms, UserEmbedding};
use crate::store::{Publication, Store, StoredModel};

impl<S: Store> Loop<S> {
    /// Writes, publishes and serves a new version, then re-publishes embeddings under it.
    pub(super) async fn checkpoint(&mut self) -> Result<(), TrainerError> {
        let started = Instant::now();
        let ctx = &self.ctx;
        let (config, live) = (&ctx.config, &ctx.live);
        let version = live.models.current().version.max(self.version_floor) + 1;
        let offsets = BTreeMap::from([(
            config.actions_topic.clone(),
            ctx.store.watermarks(&config.actions_topic).await?,
        )]);
        let manifest = Manifest {
            version,
            created_ms: now_ms(),
            step: 0,
            config_hash: config_hash(&live.towers, &config.training),
            model_id: config.model_id.clone(),
            content_dim: live.catalogue.dim(),
            towers: live.towers.clone(),
            loss: (self.steps_since_checkpoint > 0)
                .then(|| self.loss_since_checkpoint / self.steps_since_checkpoint as f64),
            offsets,
            state_sha256: None, // set by the write
        };
        let super::Leadership::Leading(trainer, _) = &self.leadership else {
            return Ok(()); // only a leader checkpoints
        };
        let checkpoint = trainer.checkpoint(manifest)?;
        self.persist(checkpoint, started).await
    }

    /// Writes `checkpoint` (its manifest's version) to the directory, publishes it to the store
    /// under this term's fence, serves it and re-publishes the embeddings under it.
    pub(super) async fn persist(
        &mut self,
        checkpoint: crate::checkpoint::Checkpoint,
        started: Instant,
    ) -> Result<(), TrainerError> {
        let (ctx, live) = (&self.ctx, &self.ctx.live);
        let version = checkpoint.manifest.version;
        let super::Leadership::Leading(_, fence) = &self.leadership else {
            return Ok(()); // only a leader publishes
        };
        let (dir, to_write) = (self.dir.clone(), checkpoint.clone());
        let written = tokio::task::spawn_blocking(move || dir.write(&to_write)).await??;
        let path = written.dir;
        // Re-checked right before publishing: a lease that lapsed during the round, or another
        // trainer that published this version first, means ours must never be served. The setback
        // drops this trainer; the next round restores the published one.
        let lapsed = TrainerError::LeaseLapsed {
            version,
            epoch: fence.epoch,
        };
        let refused = if self.lease.held().as_ref() != Some(fence) {
            Some(lapsed)
        } else {
            // Followers get the weights alone; the moments stay in the checkpoint directory.
            let (manifest, state) = crate::checkpoint::published(&checkpoint)?;
            let model = StoredModel {
                version,
                manifest,
                state,
            };
            match ctx.store.publish_model(&model, fence).await? {
                Publication::Published => None,
                Publication::Superseded => Some(TrainerError::Fenced { version }),
                Publication::NotLeader => Some(lapsed),
            }
        };
        if let Some(err) = refused {
            let _ = std::fs::remove_dir_all(&path);
            return Err(err);
        }
        live.serve(live.load(&checkpoint)?).await?;
        ctx.training
            .last_checkpoint_ms
            .store(checkpoint.manifest.created_ms, Ordering::Relaxed);
        ctx.stats.emit(Event::ModelServed { version });
        ctx.stats.emit(Event::Checkpointed {
            version,
            seconds: started.elapsed().as_secs_f64(),
        });
        tracing::debug!(step = checkpoint.manifest.step, loss = ?checkpoint.manifest.loss, path = %path.display(), "checkpoint files");
        self.steps_since_checkpoint = 0;
        self.loss_since_checkpoint = 0.0;
        self.last_checkpoint = Instant::now();
        self.republish().await
    }

    /// Aligned embeddings of the whole catalogue and of the users active since the last checkpoint,
    /// under the serving version.
    async fn republish(&self) -> Result<(), TrainerError> {
        let (ctx, live) = (&self.ctx, self.ctx.live.clone());
        let model = live.models.current();
        let towers_id = live.models.towers_id().to_string();
        let (all, threads) = (live.clone(), self.threads.clone());
        let (version, vectors) = tokio::task::spawn_blocking(move || {
            threads.run(|| all.models.all_items(&all.catalogue))
        })
        .await??;
        let rows: Vec<u32> = (0..vectors.len() as u32).collect();
        let embeddings = live
            .models
            .records(&live.catalogue, version, &rows, vectors);
        for chunk in embeddings.chunks(1024) {
            ctx.store.put_item_embeddings(chunk).await?;
            self.publishers.items.publish(chunk).await?;
        }
        let users = ctx.active.drain_since_checkpoint();
        let limit = live.towers.max_len;
        let histories =
            futures::future::try_join_all(users.iter().map(|u| ctx.store.history(u, limit)))
                .await?;
        let (catalogue, model2, threads) =
            (live.catalogue.clone(), model.clone(), self.threads.clone());
        let embeddings = tokio::task::spawn_blocking(move || {
            threads.run(|| -> candle_core::Result<Vec<UserEmbedding>> {
                let mut out = Vec::new();
                for (user, history) in users.into_iter().zip(histories) {
                    let rows: Vec<u32> = history
                        .iter()
                        .filter_map(|e| catalogue.row(&e.item_id))
                        .collect();
                    if rows.is_empty() {
                        continue;
                    }
                    let vector = model2.user(&catalogue, &rows)?;
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
        })
        .await??;
        for chunk in embeddings.chunks(1024) {
            ctx.store.put_user_embeddings(chunk).await?;
            self.publishers.users.publish(chunk).await?;
        }
        Ok(())
    }
}
