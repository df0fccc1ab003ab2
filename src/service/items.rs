//! Sink of the uploads pipeline: embeds every new item with the frozen encoder at once (cold
//! start), adds it to the catalogue, runs the current item tower on it, and stores and publishes
//! both vectors (content, version 0; aligned, the serving model's version).

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Instant;

use super::Shared;
use crate::encode::item_text;
use crate::history::Store;
use crate::metrics::Event;
use crate::publish::EmbeddingPublisher;
use crate::schemas::{now_ms, EmbeddingSpace, ItemEmbedding, ItemUpload};
use crate::source::{Record, Sink, SinkError};

pub struct ItemSink<S> {
    shared: Arc<Shared<S>>,
    publisher: EmbeddingPublisher,
}

impl<S: Store> ItemSink<S> {
    pub fn new(shared: Arc<Shared<S>>, publisher: EmbeddingPublisher) -> Self {
        Self { shared, publisher }
    }

    /// Encoder and item tower, off the async runtime (both are CPU-bound).
    async fn embed(&self, items: Vec<(String, String)>) -> Result<Vec<ItemEmbedding>, SinkError> {
        let shared = self.shared.clone();
        let _embedding = EmbeddingInFlight::enter(&self.shared.training.embedding);
        tokio::task::spawn_blocking(move || {
            let texts: Vec<String> = items.iter().map(|(_, text)| text.clone()).collect();
            let started = Instant::now();
            let content = shared
                .encoder
                .embed(&texts)
                .map_err(|e| SinkError::Fatal(e.to_string()))?;
            shared.stats.emit(Event::ItemsEmbedded {
                count: texts.len() as u64,
                seconds: started.elapsed().as_secs_f64(),
            });
            let rows: Vec<u32> = items
                .iter()
                .zip(&content)
                .filter_map(|((id, _), v)| shared.catalogue.insert(id, v))
                .collect();
            let (version, aligned) = shared
                .models
                .embed_items(&shared.catalogue, &rows)
                .map_err(|e| SinkError::Fatal(format!("item tower: {e}")))?;
            let ts_ms = now_ms();
            let mut out = Vec::with_capacity(2 * items.len());
            for ((id, _), vector) in items.iter().zip(content) {
                out.push(ItemEmbedding {
                    item_id: id.clone(),
                    model: shared.encoder.model_id().to_string(),
                    space: EmbeddingSpace::Content,
                    dim: vector.len(),
                    vector,
                    version: 0,
                    ts_ms,
                });
            }
            out.extend(
                shared
                    .models
                    .records(&shared.catalogue, version, &rows, aligned),
            );
            Ok(out)
        })
        .await
        .map_err(|e| SinkError::Fatal(format!("encoder task: {e}")))?
    }
}

impl<S: Store> Sink<ItemUpload> for ItemSink<S> {
    async fn write(
        &mut self,
        _topic: &str,
        records: &[Record<ItemUpload>],
    ) -> Result<(), SinkError> {
        let items = records
            .iter()
            .map(|r| (r.event.item_id.clone(), item_text(&r.event)))
            .collect();
        let embeddings = self.embed(items).await?;
        self.shared
            .store
            .put_item_embeddings(&embeddings)
            .await
            .map_err(|e| SinkError::Transient(e.to_string()))?;
        let written = now_ms();
        let mut slowest = 0;
        for r in records {
            if let Some(produced) = r.timestamp_ms {
                let latency = (written - produced).max(0);
                slowest = slowest.max(latency as u64);
                self.shared.stats.emit(Event::Fresh {
                    seconds: latency as f64 / 1000.0,
                });
            }
        }
        self.shared
            .knobs
            .upload_latency_ms
            .fetch_max(slowest, Ordering::Relaxed);
        self.publisher
            .publish(&embeddings)
            .await
            .map_err(|e| SinkError::Transient(e.to_string()))?;
        Ok(())
    }
}

/// Marks an embedding in progress for as long as it lives: the trainer does not start a step
/// while one is running, so the two never share the cores and an upload waits for at most one
/// step.
struct EmbeddingInFlight<'a>(&'a std::sync::atomic::AtomicUsize);

impl<'a> EmbeddingInFlight<'a> {
    fn enter(counter: &'a std::sync::atomic::AtomicUsize) -> Self {
        counter.fetch_add(1, Ordering::SeqCst);
        Self(counter)
    }
}

impl Drop for EmbeddingInFlight<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}
