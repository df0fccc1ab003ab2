//! Owns `learn replay`: a dataset with real timestamps (MovieLens 100K) produced into Kafka in
//! timestamp order (each item uploaded just before its first action), paced by `speed`, while a
//! running `learn serve` learns from it, with prequential evaluation ([`prequential`]) and a
//! report: `replay.json` (every probe and lag sample), `replay.md` (recall per window) and
//! `replay.svg` (prequential Recall@10 and consumer lag over the replay).

mod client;
mod figure;
pub mod prequential;
mod report;
mod split;

pub use report::{markdown, write};
pub use split::{export_history, SplitPoint};

use std::collections::{HashMap, HashSet};
use std::path::PathBuf;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use crate::config::Config;
use crate::schemas::UserAction;
use crate::workload::{movielens_stream, EventProducer, Outgoing, ProduceError};
use client::Client;
use prequential::{score, LagSample, Popularity, Probe, Score, COLD_BELOW};

#[derive(Debug, thiserror::Error)]
pub enum ReplayError {
    #[error("dataset: {0}")]
    Dataset(String),
    #[error(transparent)]
    Produce(#[from] ProduceError),
    #[error("service at {url}: {reason}")]
    Service { url: String, reason: String },
    #[error("{path}: {source}")]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
}

#[derive(Debug, Clone)]
pub struct ReplayOptions {
    /// MovieLens 100K directory (u.item, u.genre, u.data).
    pub dataset: PathBuf,
    /// Event-time seconds replayed per wall-clock second.
    pub speed: f64,
    /// Cap on events produced per second (0 = none), so a dense burst does not outrun the service.
    pub max_rate: f64,
    /// Replay only the first N events (0 = all).
    pub limit: usize,
    /// The running service's HTTP API, e.g. http://127.0.0.1:8080 (None: produce only).
    pub serve_url: Option<String>,
    /// Evaluate every Nth action of a user with history.
    pub eval_every: usize,
    /// Probes per window of the recall-over-time curve.
    pub window: usize,
    pub out: PathBuf,
    /// Where the history ends: events before it are produced unevaluated and as fast as the
    /// service takes them (the history a warm start was trained on), the rest is streamed and
    /// evaluated. None: everything is evaluated.
    pub split: Option<SplitPoint>,
    /// A second service, trained from scratch on the same topics (another consumer group): its
    /// online model is one more arm.
    pub scratch_url: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ReplayReport {
    pub events: usize,
    pub actions: usize,
    pub seconds: f64,
    pub probes: Vec<Probe>,
    pub lag: Vec<LagSample>,
    /// Probes taken before the service had applied every earlier action (sync timed out).
    pub unsynced_probes: usize,
    /// The arms, in each probe's `ranks` order.
    pub arms: Vec<String>,
    /// Events produced as history before the evaluated stream (0 without `--split`).
    pub history_events: usize,
    /// Per arm: overall, on cold targets and on warm ones.
    pub scores: Vec<ArmScores>,
}

/// One arm's prequential scores.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ArmScores {
    pub arm: String,
    pub overall: Score,
    /// Targets with fewer than [`prequential::COLD_BELOW`] interactions before the probe.
    pub cold: Score,
    pub warm: Score,
}

/// Longest wait for the service to apply every earlier action before a probe.
const SYNC_TIMEOUT: Duration = Duration::from_secs(5);

/// Longest wait for the services to apply the whole history before the evaluated stream.
const HISTORY_TIMEOUT: Duration = Duration::from_secs(600);

/// Produces the dataset and evaluates the service as it learns. Before each probe the replay waits
/// until the service has applied every action produced so far (the service must have started
/// fresh on these topics), so each prediction uses the whole past and none of the future:
/// test-then-train. Training itself runs at its own pace, as it would in production. With a
/// split, the history before it is produced first, unevaluated and unpaced.
pub fn run(config: &Config, options: &ReplayOptions) -> Result<ReplayReport, ReplayError> {
    let mut stream =
        movielens_stream(&options.dataset).map_err(|e| ReplayError::Dataset(e.to_string()))?;
    if options.limit > 0 {
        stream.truncate(options.limit);
    }
    let history = options.split.map_or(0, |split| split.index(&stream));
    let producer = EventProducer::new(&config.kafka)?;
    let clients: Vec<Client> = options
        .serve_url
        .iter()
        .chain(&options.scratch_url)
        .map(|url| Client::new(url, config))
        .collect();
    let mut evaluation = Evaluation::new(Instant::now(), options.scratch_url.is_some());
    for outgoing in &stream[..history] {
        if let Outgoing::Action(action) = outgoing {
            evaluation.observe(action);
        }
        producer.send(outgoing)?;
    }
    producer.flush(Duration::from_secs(60))?;
    for client in &clients {
        if !client.wait_applied(evaluation.actions as u64, HISTORY_TIMEOUT)? {
            return Err(ReplayError::Service {
                url: client.url.clone(),
                reason: format!("did not apply the {} history actions", evaluation.actions),
            });
        }
    }
    let started = Instant::now();
    evaluation.started = started;
    let streamed = &stream[history..];
    let first_ts = streamed.first().map_or(0, Outgoing::ts_ms);
    for (n, outgoing) in streamed.iter().enumerate() {
        let due = Duration::from_secs_f64(
            ((outgoing.ts_ms() - first_ts) as f64 / 1000.0 / options.speed).max(0.0),
        );
        let capped = if options.max_rate > 0.0 {
            Duration::from_secs_f64(n as f64 / options.max_rate)
        } else {
            Duration::ZERO
        };
        if let Some(wait) = due.max(capped).checked_sub(started.elapsed()) {
            std::thread::sleep(wait);
        }
        if let Outgoing::Action(action) = outgoing {
            if !clients.is_empty() {
                evaluation.probe(&clients, &producer, action, config, options)?;
            }
            evaluation.observe(action);
        }
        producer.send(outgoing)?;
    }
    producer.finish()?;
    Ok(evaluation.report(stream.len(), history))
}

/// Prequential evaluation as the replay goes: each probed action is predicted before it is sent.
struct Evaluation {
    started: Instant,
    popularity: Popularity,
    /// Per user, the items acted on so far.
    seen: HashMap<String, HashSet<String>>,
    /// Whether a from-scratch service is the last arm.
    scratch: bool,
    probes: Vec<Probe>,
    lag: Vec<LagSample>,
    actions: usize,
    unsynced: usize,
    last_sample: Instant,
}

impl Evaluation {
    fn new(started: Instant, scratch: bool) -> Self {
        Self {
            started,
            popularity: Popularity::default(),
            seen: HashMap::new(),
            scratch,
            probes: Vec::new(),
            lag: Vec::new(),
            actions: 0,
            unsynced: 0,
            last_sample: Instant::now() - Duration::from_secs(10),
        }
    }

    /// The arms, in each probe's order.
    fn arms(&self) -> Vec<String> {
        let mut arms: Vec<String> = ["online", "online-alone", "frozen", "popularity"]
            .map(String::from)
            .to_vec();
        if self.scratch {
            arms.extend(["scratch", "scratch-alone"].map(String::from));
        }
        arms
    }

    /// Every `eval_every`th action of a user with history: where is its item in each arm's top 10?
    /// Plus a lag sample a second (of the first service).
    fn probe(
        &mut self,
        clients: &[Client],
        producer: &EventProducer,
        action: &UserAction,
        config: &Config,
        options: &ReplayOptions,
    ) -> Result<(), ReplayError> {
        let user_seen = self
            .seen
            .get(&action.user_id)
            .filter(|seen| !seen.is_empty());
        if let Some(user_seen) =
            user_seen.filter(|_| self.actions.is_multiple_of(options.eval_every.max(1)))
        {
            producer.flush(Duration::from_secs(30))?;
            for client in clients {
                if !client.wait_applied(self.actions as u64, SYNC_TIMEOUT)? {
                    self.unsynced += 1;
                }
            }
            let (user, item) = (&action.user_id, &action.item_id);
            let (online, version) = clients[0].rank(user, item, "current", false)?;
            let (alone, _) = clients[0].rank(user, item, "current", true)?;
            let (frozen, _) = clients[0].rank(user, item, "frozen", false)?;
            let popular = self.popularity.top(10, user_seen);
            let popularity = popular.iter().position(|i| i == item).map(|r| r as u8);
            let mut ranks = vec![online, alone, frozen, popularity];
            if let Some(scratch) = clients.get(1) {
                ranks.push(scratch.rank(user, item, "current", false)?.0);
                ranks.push(scratch.rank(user, item, "current", true)?.0);
            }
            self.probes.push(Probe {
                action_index: self.actions,
                elapsed_secs: self.started.elapsed().as_secs_f64(),
                ranks,
                cold: self.popularity.count(item) < COLD_BELOW,
                version,
            });
        }
        if self.last_sample.elapsed() >= Duration::from_secs(1) {
            self.last_sample = Instant::now();
            let elapsed = self.started.elapsed().as_secs_f64();
            self.lag.push(clients[0].sample(elapsed, config)?);
        }
        Ok(())
    }

    fn observe(&mut self, action: &UserAction) {
        self.popularity.observe(&action.item_id);
        let user_seen = self.seen.entry(action.user_id.clone()).or_default();
        user_seen.insert(action.item_id.clone());
        self.actions += 1;
    }

    fn report(self, events: usize, history_events: usize) -> ReplayReport {
        let arms = self.arms();
        let scores = arms
            .iter()
            .enumerate()
            .map(|(i, arm)| ArmScores {
                arm: arm.clone(),
                overall: score(&self.probes, i),
                cold: score(self.probes.iter().filter(|p| p.cold), i),
                warm: score(self.probes.iter().filter(|p| !p.cold), i),
            })
            .collect();
        ReplayReport {
            events,
            actions: self.actions,
            seconds: self.started.elapsed().as_secs_f64(),
            unsynced_probes: self.unsynced,
            arms,
            history_events,
            scores,
            probes: self.probes,
            lag: self.lag,
        }
    }
}
