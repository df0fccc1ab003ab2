//! Keeps this process's catalogue complete and current from the catalogue topic
//! (`kafka.catalogue_topic`) read as a changelog (the GlobalKTable pattern): every partition from
//! the beginning, outside any consumer group (no commits; every process reads everything). A
//! content vector adds its item's row or replaces it — an item edited through any process is
//! replaced everywhere — and the item joins the aligned index at once, off the request path; a
//! tombstone (key, no payload) deletes the item. Only content vectors are written there (aligned
//! ones go to `item-embeddings`: each process derives its own from its serving model), so the
//! topic, compacted with no time-based deletion, holds exactly one record per live item.
//! `/readyz` waits for the first catch-up: the high watermarks seen at start.

use std::collections::HashMap;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use rdkafka::consumer::{Consumer, StreamConsumer};
use rdkafka::message::{BorrowedMessage, Message};
use rdkafka::{Offset, TopicPartitionList};

use super::shared::Warmup;
use super::ServiceError;
use crate::config::KafkaConfig;
use crate::schemas::{EmbeddingSpace, ItemEmbedding};
use crate::serving::{Catalogue, Models, Upsert};
use crate::shutdown::Shutdown;

/// Records applied before the aligned index is extended; a quiet topic flushes at once.
const MAX_PENDING: usize = 512;
/// Longest a fetch waits on the broker: the other processes' uploads arrive within it, and a quiet
/// changelog costs ten fetches a second instead of the input streams' hundred.
const FETCH_WAIT_MS: u32 = 100;
const IDLE: Duration = Duration::from_millis(20);
const RETRY: Duration = Duration::from_secs(1);

/// What the changelog touches.
pub struct Changelog {
    pub kafka: KafkaConfig,
    pub catalogue: Arc<Catalogue>,
    pub models: Arc<Models>,
    /// `catalogue_synced` once caught up.
    pub warmup: Arc<Warmup>,
}

pub async fn run(ctx: Changelog, mut shutdown: Shutdown) -> Result<(), ServiceError> {
    let Some((consumer, mut behind)) = assign(&ctx.kafka, &mut shutdown).await? else {
        return Ok(());
    };
    let mut pending = Pending::default();
    let mut synced = false;
    loop {
        if !synced && behind.is_empty() {
            pending.flush(&ctx).await;
            synced = true;
            ctx.warmup.catalogue_synced.store(true, Ordering::Relaxed);
            tracing::info!(
                items = ctx.catalogue.len(),
                "catalogue caught up with the changelog"
            );
        }
        let wait = if pending.is_empty() { RETRY } else { IDLE };
        let message = tokio::select! {
            _ = shutdown.recv() => return Ok(()),
            m = tokio::time::timeout(wait, consumer.recv()) => m,
        };
        let message = match message {
            Err(_) => {
                pending.flush(&ctx).await;
                continue;
            }
            Ok(Err(err)) => {
                tracing::warn!(%err, "catalogue changelog: consume error");
                tokio::time::sleep(IDLE).await;
                continue;
            }
            Ok(Ok(message)) => message,
        };
        if behind
            .get(&message.partition())
            .is_some_and(|&high| message.offset() + 1 >= high)
        {
            behind.remove(&message.partition());
        }
        pending.apply(&ctx.catalogue, &message);
        if pending.len() >= MAX_PENDING {
            pending.flush(&ctx).await;
        }
    }
}

/// A consumer outside any group assigned every partition of the changelog from the beginning,
/// and each partition's high watermark at start (where the catalogue is caught up; empty ones
/// left out). `None` on shutdown while the metadata is not there yet.
async fn assign(
    kafka: &KafkaConfig,
    shutdown: &mut Shutdown,
) -> Result<Option<(Arc<StreamConsumer>, HashMap<i32, i64>)>, ServiceError> {
    let topic = kafka.catalogue_topic.clone();
    let consumer: StreamConsumer = crate::kafka::client_config(
        kafka,
        &[
            ("group.id", format!("{}-catalogue", kafka.group_id)),
            ("enable.auto.commit", "false".into()),
            ("enable.auto.offset.store", "false".into()),
            (
                "fetch.wait.max.ms",
                kafka.fetch_wait_max_ms.max(FETCH_WAIT_MS).to_string(),
            ),
        ],
    )
    .create()?;
    let consumer = Arc::new(consumer);
    // The partitions and where the catalogue is caught up (blocking metadata calls).
    let mut behind = loop {
        let (c, t) = (consumer.clone(), topic.clone());
        match tokio::task::spawn_blocking(move || crate::kafka::high_watermarks(&*c, &t)).await {
            Ok(Ok(highs)) => break highs,
            Ok(Err(err)) => tracing::warn!(%err, %topic, "catalogue changelog: no metadata yet"),
            Err(err) => tracing::warn!(%err, "catalogue changelog: metadata task failed"),
        }
        tokio::select! {
            _ = shutdown.recv() => return Ok(None),
            _ = tokio::time::sleep(RETRY) => {}
        }
    };
    let mut assignment = TopicPartitionList::new();
    for &partition in behind.keys() {
        assignment.add_partition_offset(&topic, partition, Offset::Beginning)?;
    }
    consumer.assign(&assignment)?;
    behind.retain(|_, high| *high > 0);
    Ok(Some((consumer, behind)))
}

/// Rows changed since the aligned index was last brought up to date.
#[derive(Default)]
struct Pending {
    edited: Vec<u32>,
    new: usize,
}

impl Pending {
    /// One changelog record into the catalogue: a content vector adds or replaces its item's
    /// row (noted here for the aligned index), a tombstone deletes the item; anything else is
    /// skipped.
    fn apply(&mut self, catalogue: &Catalogue, message: &BorrowedMessage<'_>) {
        let Some(payload) = message.payload() else {
            if let Some(item_id) = message.key().and_then(|k| std::str::from_utf8(k).ok()) {
                catalogue.remove(item_id);
            }
            return;
        };
        match serde_json::from_slice::<ItemEmbedding>(payload) {
            Ok(e) if e.space == EmbeddingSpace::Content => {
                match catalogue.upsert(&e.item_id, &e.vector) {
                    Some(Upsert::Edited(row)) => self.edited.push(row),
                    Some(Upsert::New(_)) => self.new += 1,
                    Some(Upsert::Same(_)) | None => {}
                }
            }
            Ok(_) => {}
            Err(err) => tracing::warn!(
                %err,
                partition = message.partition(),
                offset = message.offset(),
                "catalogue changelog: record skipped"
            ),
        }
    }

    fn len(&self) -> usize {
        self.edited.len() + self.new
    }

    fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Re-embeds edited rows and extends the index by the new ones (item tower, off the runtime).
    async fn flush(&mut self, ctx: &Changelog) {
        if self.is_empty() {
            return;
        }
        let edited = std::mem::take(&mut self.edited);
        self.new = 0;
        let (models, catalogue) = (ctx.models.clone(), ctx.catalogue.clone());
        let done = tokio::task::spawn_blocking(move || {
            if !edited.is_empty() {
                models.embed_items(&catalogue, &edited)?;
            }
            models.warm(&catalogue)
        })
        .await;
        if let Ok(Err(err)) = done {
            tracing::warn!(%err, "aligned index not extended from the changelog");
        }
    }
}
