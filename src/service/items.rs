//! Sink of the uploads pipeline: embeds every new item with the frozen encoder at once (cold start),
//! stores the vector and publishes it.

use std::sync::Arc;
use std::time::Instant;

use crate::encode::{item_text, ContentEncoder};
use crate::history::Store;
use crate::metrics::{Event, Stats};
use crate::publish::EmbeddingPublisher;
use crate::schemas::{now_ms, EmbeddingSpace, ItemEmbedding, ItemUpload};
use crate::source::{Record, Sink, SinkError};

pub struct ItemSink<S> {
    encoder: Arc<ContentEncoder>,
    store: S,
    publisher: EmbeddingPublisher,
    stats: Arc<Stats>,
}

impl<S: Store> ItemSink<S> {
    pub fn new(
        encoder: Arc<ContentEncoder>,
        store: S,
        publisher: EmbeddingPublisher,
        stats: Arc<Stats>,
    ) -> Self {
        Self {
            encoder,
            store,
            publisher,
            stats,
        }
    }

    /// Runs the encoder off the async runtime (it is CPU-bound).
    async fn embed(&self, texts: Vec<String>) -> Result<Vec<Vec<f32>>, SinkError> {
        let encoder = self.encoder.clone();
        tokio::task::spawn_blocking(move || encoder.embed(&texts))
            .await
            .map_err(|e| SinkError::Fatal(format!("encoder task: {e}")))?
            .map_err(|e| SinkError::Fatal(e.to_string()))
    }
}

impl<S: Store> Sink<ItemUpload> for ItemSink<S> {
    async fn write(
        &mut self,
        _topic: &str,
        records: &[Record<ItemUpload>],
    ) -> Result<(), SinkError> {
        let texts: Vec<String> = records.iter().map(|r| item_text(&r.event)).collect();
        let started = Instant::now();
        let vectors = self.embed(texts).await?;
        let seconds = started.elapsed().as_secs_f64();

        let ts_ms = now_ms();
        let embeddings: Vec<ItemEmbedding> = records
            .iter()
            .zip(vectors)
            .map(|(r, vector)| ItemEmbedding {
                item_id: r.event.item_id.clone(),
                model: self.encoder.model_id().to_string(),
                space: EmbeddingSpace::Content,
                dim: vector.len(),
                vector,
                version: 0,
                ts_ms,
            })
            .collect();
        self.store
            .put_item_embeddings(&embeddings)
            .await
            .map_err(|e| SinkError::Transient(e.to_string()))?;
        self.publisher
            .publish(&embeddings)
            .await
            .map_err(|e| SinkError::Transient(e.to_string()))?;
        self.stats.emit(Event::ItemsEmbedded {
            count: records.len() as u64,
            seconds,
        });
        Ok(())
    }
}
