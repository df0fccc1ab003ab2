//! Sink of the uploads pipeline: embeds every new item with the frozen encoder at once (cold
//! start), adds it to the catalogue, runs the current item tower on it, and stores and publishes
//! both vectors (content, version 0, to the catalogue changelog; aligned, the serving model's
//! version, to `item-embeddings`). A tombstone deletes the item: out of the store and the
//! catalogue, and a tombstone on both topics (the other processes' catalogues read the changelog).

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::Instant;

use super::signals::{EncoderBusy, UploadLatency};
use crate::encode::ContentEncoder;
use crate::metrics::{Event, Stage, Stats};
use crate::publish::ItemPublisher;
use crate::schemas::{now_ms, EmbeddingSpace, ItemEmbedding, ItemEvent, ItemUpload, RejectReason};
use crate::serving::{Catalogue, Models};
use crate::source::{Record, Refusal, Sink, SinkError, WatermarkReader};
use crate::store::Store;

/// What the uploads sink touches.
pub struct ItemSink<S> {
    pub store: S,
    pub encoder: Arc<ContentEncoder>,
    pub catalogue: Arc<Catalogue>,
    /// The item tower of the serving version, and its aligned index.
    pub models: Arc<Models>,
    pub stats: Arc<Stats>,
    /// Held while the encoder runs.
    pub busy: EncoderBusy,
    /// Each batch's slowest upload → store latency.
    pub latency: UploadLatency,
    pub publisher: ItemPublisher,
}

impl<S: Store> ItemSink<S> {
    /// Encoder and item tower, off the async runtime (both are CPU-bound). When the encoder fails
    /// on the batch, each item is embedded alone and the ones that still fail are returned as
    /// failures (`(index, error)`), so one bad item cannot hold up the others.
    async fn embed(&self, items: Vec<(String, String)>) -> Result<Embedded, SinkError> {
        let (encoder, catalogue, models, stats) = (
            self.encoder.clone(),
            self.catalogue.clone(),
            self.models.clone(),
            self.stats.clone(),
        );
        let _busy = self.busy.enter();
        let handed = Instant::now();
        tokio::task::spawn_blocking(move || {
            stats.emit(Stage::Queue.since(handed));
            let texts: Vec<String> = items.iter().map(|(_, text)| text.clone()).collect();
            let started = Instant::now();
            let mut failures = Vec::new();
            let content: Vec<Option<Vec<f32>>> = match encoder.embed(&texts) {
                Ok(vectors) => vectors.into_iter().map(Some).collect(),
                Err(err) => {
                    tracing::warn!(%err, items = texts.len(), "encoder failed on a batch; embedding its items one by one");
                    (0..texts.len())
                        .map(|i| match encoder.embed(&texts[i..=i]) {
                            Ok(mut v) => v.pop(),
                            Err(err) => {
                                failures.push((i, err.to_string()));
                                None
                            }
                        })
                        .collect()
                }
            };
            stats.emit(Event::ItemsEmbedded {
                count: (texts.len() - failures.len()) as u64,
                seconds: started.elapsed().as_secs_f64(),
            });
            let embedded: Vec<(&String, Vec<f32>)> = items
                .iter()
                .zip(content)
                .filter_map(|((id, _), v)| Some((id, v?)))
                .collect();
            if embedded.is_empty() {
                return Ok(Embedded {
                    embeddings: Vec::new(),
                    failures,
                });
            }
            stats.emit(Stage::Encode.since(started));
            let started = Instant::now();
            let rows: Vec<u32> = embedded
                .iter()
                .filter_map(|(id, v)| catalogue.insert(id, v))
                .collect();
            let (version, aligned) = models
                .embed_items(&catalogue, &rows)
                .map_err(|e| SinkError::fatal("item tower", e))?;
            stats.emit(Stage::ItemTower.since(started));
            let ts_ms = now_ms();
            let mut embeddings = Vec::with_capacity(2 * embedded.len());
            for (id, vector) in embedded {
                embeddings.push(ItemEmbedding {
                    item_id: id.clone(),
                    model: encoder.model_id().to_string(),
                    space: EmbeddingSpace::Content,
                    dim: vector.len(),
                    vector,
                    version: 0,
                    ts_ms,
                });
            }
            embeddings.extend(
                models.records(&catalogue, version, &rows, aligned),
            );
            Ok(Embedded {
                embeddings,
                failures,
            })
        })
        .await
        .map_err(|e| SinkError::fatal("encoder task", e))?
    }

    /// How long each record took to be read and to reach the sink (`handed`, Unix ms).
    fn record_arrival(&self, records: &[Record<ItemEvent>], handed: i64) {
        let seconds = |from: i64, to: i64| (to - from).max(0) as f64 / 1000.0;
        for r in records {
            if let Some(produced) = r.timestamp_ms {
                self.stats.emit(Event::FreshnessStage {
                    stage: Stage::Delivery,
                    seconds: seconds(produced, r.received_ms),
                });
            }
            self.stats.emit(Event::FreshnessStage {
                stage: Stage::Batching,
                seconds: seconds(r.received_ms, handed),
            });
        }
    }

    /// Upload → aligned embedding latency of each record (from its Kafka timestamp).
    fn record_freshness(&self, records: &[Record<ItemEvent>]) {
        let written = now_ms();
        let mut slowest = 0;
        for r in records
            .iter()
            .filter(|r| matches!(r.event, ItemEvent::Upload(_)))
        {
            if let Some(produced) = r.timestamp_ms {
                let latency = (written - produced).max(0);
                slowest = slowest.max(latency as u64);
                self.stats.emit(Event::Fresh {
                    seconds: latency as f64 / 1000.0,
                });
            }
        }
        self.latency.record(slowest);
    }
}

/// A batch's embeddings (content and aligned) and the items the encoder failed on.
struct Embedded {
    embeddings: Vec<ItemEmbedding>,
    failures: Vec<(usize, String)>,
}

impl<S: Store> ItemSink<S> {
    /// Deleted items: out of the store and this catalogue, then tombstones for every other process
    /// (a replay deletes again: idempotent).
    async fn delete(&self, item_ids: &[String]) -> Result<(), SinkError> {
        self.store
            .delete_items(item_ids)
            .await
            .map_err(|e| SinkError::transient("store", e))?;
        for id in item_ids {
            self.catalogue.remove(id);
        }
        self.publisher
            .publish_tombstones(item_ids)
            .await
            .map_err(|e| SinkError::transient("item topics", e))?;
        tracing::info!(items = item_ids.len(), "items deleted");
        Ok(())
    }
}

impl<S: Store> Sink<ItemEvent> for ItemSink<S> {
    /// Embeddings to Redis, then to Kafka, then the watermark (a replay after a crash in between
    /// embeds and publishes again: same vectors, at-least-once). Of several events of one item in
    /// a batch, the last one counts.
    async fn write(
        &mut self,
        topic: &str,
        records: &[Record<ItemEvent>],
        read_up_to: &BTreeMap<i32, i64>,
    ) -> Result<Vec<Refusal>, SinkError> {
        let last: HashMap<&str, usize> = records
            .iter()
            .enumerate()
            .map(|(i, r)| (r.event.item_id(), i))
            .collect();
        let (mut uploads, mut deleted): (Vec<(usize, &ItemUpload)>, Vec<String>) =
            Default::default();
        for (i, r) in records.iter().enumerate() {
            match &r.event {
                _ if last[r.event.item_id()] != i => {}
                ItemEvent::Upload(upload) => uploads.push((i, upload)),
                ItemEvent::Deleted { item_id } => deleted.push(item_id.clone()),
            }
        }
        let mut refusals = Vec::new();
        if !uploads.is_empty() {
            self.record_arrival(records, now_ms());
            let items = uploads
                .iter()
                .map(|(_, u)| (u.item_id.clone(), u.text()))
                .collect();
            let Embedded {
                embeddings,
                failures,
            } = self.embed(items).await?;
            refusals.extend(failures.into_iter().map(|(index, detail)| Refusal {
                index: uploads[index].0,
                reason: RejectReason::EncoderFailed,
                detail,
            }));
            if !embeddings.is_empty() {
                let started = Instant::now();
                self.store
                    .put_item_embeddings(&embeddings)
                    .await
                    .map_err(|e| SinkError::transient("store", e))?;
                self.stats.emit(Stage::Store.since(started));
                self.record_freshness(records);
                self.publisher
                    .publish(&embeddings)
                    .await
                    .map_err(|e| SinkError::transient("item topics", e))?;
            }
        }
        if !deleted.is_empty() {
            self.delete(&deleted).await?;
        }
        self.store
            .advance_watermarks(topic, read_up_to)
            .await
            .map_err(|e| SinkError::transient("store", e))?;
        Ok(refusals)
    }

    fn watermarks(&self, topic: &str) -> WatermarkReader {
        super::watermark_reader(&self.store, topic)
    }
}
