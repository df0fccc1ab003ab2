//! Owns `learn loadgen`: a steady synthetic load (uploads and actions at fixed rates, Kafka timestamps
//! = send time) for measuring a running service, e.g. upload → aligned-embedding freshness at
//! 20 uploads/s while actions stream in (`scripts/bench-freshness.sh`); and a large synthetic
//! catalogue published straight to the catalogue changelog ([`seed_catalogue`]) for serving benchmarks
//! (`scripts/bench-http.sh`: 100,000 items without embedding 100,000 texts first). [`probe`]
//! measures freshness from outside the service.

pub mod probe;

use std::time::{Duration, Instant};

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use crate::config::Config;
use crate::publish::EmbeddingPublisher;
use crate::schemas::{now_ms, EmbeddingSpace, ItemEmbedding};
use crate::workload::{synthetic_stream, EventProducer, ProduceError, SyntheticOptions, Topic};
use probe::FreshnessProbe;

#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    #[error(transparent)]
    Produce(#[from] ProduceError),
    #[error("freshness probe: {0}")]
    Probe(String),
}

#[derive(Debug, Clone)]
pub struct LoadOptions {
    pub uploads_per_sec: f64,
    pub actions_per_sec: f64,
    pub seconds: f64,
    pub seed: u64,
}

/// Produces the load; returns (uploads, actions) sent. With a `probe`, each upload's clock starts
/// right before it is produced.
pub fn run(
    config: &Config,
    options: &LoadOptions,
    probe: Option<&FreshnessProbe>,
) -> Result<(usize, usize), LoadError> {
    let uploads_total = (options.uploads_per_sec * options.seconds).round() as usize;
    let actions_total = (options.actions_per_sec * options.seconds).round() as usize;
    let stream = synthetic_stream(&SyntheticOptions {
        items: uploads_total.max(1),
        users: 500,
        actions: actions_total,
        bad_fraction: 0.0,
        seed: options.seed,
    });
    let (uploads, actions): (Vec<_>, Vec<_>) =
        stream.iter().partition(|o| o.topic() == Topic::Items);
    // Each message's send time: uploads and actions evenly spaced at their own rates.
    let mut schedule: Vec<(f64, _)> = uploads
        .iter()
        .enumerate()
        .map(|(i, o)| (i as f64 / options.uploads_per_sec, *o))
        .chain(
            actions
                .iter()
                .enumerate()
                .map(|(i, o)| (i as f64 / options.actions_per_sec.max(1e-9), *o)),
        )
        .collect();
    schedule.sort_by(|a, b| a.0.total_cmp(&b.0));
    let producer = EventProducer::new(&config.kafka)?;
    let started = Instant::now();
    for (at, outgoing) in schedule {
        if let Some(wait) = Duration::from_secs_f64(at).checked_sub(started.elapsed()) {
            std::thread::sleep(wait);
        }
        if let (Some(probe), Topic::Items) = (probe, outgoing.topic()) {
            probe.sent(outgoing.key());
        }
        producer.send(outgoing)?;
    }
    producer.finish()?;
    Ok((uploads.len(), actions.len()))
}

/// Publishes `items` random unit content vectors of width `dim` (ids `bulk-<n>`) to the
/// catalogue changelog, as the uploads path would; every process's catalogue reads them there.
pub async fn seed_catalogue(
    publisher: &EmbeddingPublisher,
    items: usize,
    dim: usize,
    seed: u64,
) -> Result<(), rdkafka::error::KafkaError> {
    let mut rng = StdRng::seed_from_u64(seed);
    let ids: Vec<usize> = (0..items).collect();
    for chunk in ids.chunks(2000) {
        let batch: Vec<ItemEmbedding> = chunk
            .iter()
            .map(|n| {
                let mut vector: Vec<f32> = (0..dim).map(|_| rng.random_range(-1.0..1.0)).collect();
                let norm = vector.iter().map(|x| x * x).sum::<f32>().sqrt().max(1e-12);
                vector.iter_mut().for_each(|x| *x /= norm);
                ItemEmbedding {
                    item_id: format!("bulk-{n}"),
                    model: "synthetic".into(),
                    space: EmbeddingSpace::Content,
                    dim,
                    vector,
                    version: 0,
                    ts_ms: now_ms(),
                }
            })
            .collect();
        publisher.publish(&batch).await?;
    }
    Ok(())
}
