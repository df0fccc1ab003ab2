//! Owns `learn replay`: a dataset with real timestamps (MovieLens 100K) produced into Kafka in
//! timestamp order (each item uploaded just before its first action), paced by `speed`, while a
//! running `learn serve` learns from it, with prequential evaluation ([`prequential`]) and a
//! report: `replay.json` (every probe and lag sample), `replay.md` (recall per window) and
//! `replay.svg` (prequential Recall@10 and consumer lag over the replay).

mod figure;
pub mod prequential;

use std::collections::{HashMap, HashSet};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use crate::config::Config;
use crate::eval::plot;
use crate::schemas::UserAction;
use crate::service::Status;
use crate::serving::recommend::Recommendation;
use crate::workload::{movielens_stream, EventProducer, Outgoing, ProduceError};
use prequential::{windows, LagSample, Popularity, Probe};

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
    /// Overall prequential Recall@10.
    pub online_recall_10: f64,
    pub frozen_recall_10: f64,
    pub popularity_recall_10: f64,
}

struct Client {
    agent: ureq::Agent,
    url: String,
    /// `Authorization` header value when the service wants a token (`serving.auth_token`).
    auth: Option<String>,
}

impl Client {
    fn get<T: serde::de::DeserializeOwned>(
        &self,
        path: &str,
        query: &[(&str, &str)],
    ) -> Result<T, ReplayError> {
        let url = format!("{}{path}", self.url);
        let failed = |reason: String| ReplayError::Service {
            url: url.clone(),
            reason,
        };
        let mut request = self.agent.get(&url).query_pairs(query.iter().copied());
        if let Some(auth) = &self.auth {
            request = request.header("Authorization", auth);
        }
        request
            .call()
            .map_err(|e| failed(e.to_string()))?
            .body_mut()
            .read_json()
            .map_err(|e| failed(e.to_string()))
    }

    fn hit(&self, user: &str, item: &str, model: &str) -> Result<(bool, u64), ReplayError> {
        let rec: Recommendation = self.get(
            "/v1/recommend",
            &[("user_id", user), ("k", "10"), ("model", model)],
        )?;
        Ok((rec.items.iter().any(|s| s.item_id == item), rec.version))
    }

    /// Waits (up to `timeout`) until the service has applied `actions` actions to histories, so a
    /// probe sees every earlier action of the stream; false if it timed out.
    fn wait_applied(&self, actions: u64, timeout: Duration) -> Result<bool, ReplayError> {
        let started = Instant::now();
        loop {
            let status: Status = self.get("/v1/status", &[])?;
            if status.actions_applied >= actions {
                return Ok(true);
            }
            if started.elapsed() >= timeout {
                return Ok(false);
            }
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    fn sample(&self, elapsed: f64, config: &Config) -> Result<LagSample, ReplayError> {
        let status: Status = self.get("/v1/status", &[])?;
        let lag = |topic: &str| status.lag.get(topic).map_or(0, |p| p.values().sum());
        Ok(LagSample {
            elapsed_secs: elapsed,
            actions_lag: lag(&config.kafka.actions_topic),
            uploads_lag: lag(&config.kafka.items_topic),
            model_version: status.model_version,
            train_steps: status.train_steps,
        })
    }
}

/// Longest wait for the service to apply every earlier action before a probe.
const SYNC_TIMEOUT: Duration = Duration::from_secs(5);

/// Produces the dataset and evaluates the service as it learns. Before each probe the replay waits
/// until the service has applied every action produced so far (the service must have started
/// fresh on these topics), so each prediction uses the whole past and none of the future:
/// test-then-train. Training itself runs at its own pace, as it would in production.
pub fn run(config: &Config, options: &ReplayOptions) -> Result<ReplayReport, ReplayError> {
    let mut stream =
        movielens_stream(&options.dataset).map_err(|e| ReplayError::Dataset(e.to_string()))?;
    if options.limit > 0 {
        stream.truncate(options.limit);
    }
    let producer = EventProducer::new(&config.kafka)?;
    let client = options.serve_url.as_ref().map(|url| Client {
        agent: ureq::Agent::config_builder()
            .timeout_global(Some(Duration::from_secs(30)))
            .build()
            .into(),
        url: url.trim_end_matches('/').to_string(),
        auth: config.serving.authorization(),
    });
    let started = Instant::now();
    let first_ts = stream.first().map_or(0, Outgoing::ts_ms);
    let mut evaluation = Evaluation::new(started);
    for (n, outgoing) in stream.iter().enumerate() {
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
            if let Some(client) = &client {
                evaluation.probe(client, &producer, action, config, options)?;
            }
            evaluation.observe(action);
        }
        producer.send(outgoing)?;
    }
    producer.finish()?;
    Ok(evaluation.report(stream.len()))
}

/// Prequential evaluation as the replay goes: each probed action is predicted before it is sent.
struct Evaluation {
    started: Instant,
    popularity: Popularity,
    /// Per user, the items acted on so far.
    seen: HashMap<String, HashSet<String>>,
    probes: Vec<Probe>,
    lag: Vec<LagSample>,
    actions: usize,
    unsynced: usize,
    last_sample: Instant,
}

impl Evaluation {
    fn new(started: Instant) -> Self {
        Self {
            started,
            popularity: Popularity::default(),
            seen: HashMap::new(),
            probes: Vec::new(),
            lag: Vec::new(),
            actions: 0,
            unsynced: 0,
            last_sample: Instant::now() - Duration::from_secs(10),
        }
    }

    /// Every `eval_every`th action of a user with history: is its item in the service's top 10
    /// (current and frozen model) and in the popularity baseline's? Plus a lag sample a second.
    fn probe(
        &mut self,
        client: &Client,
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
            if !client.wait_applied(self.actions as u64, SYNC_TIMEOUT)? {
                self.unsynced += 1;
            }
            let (online_hit, version) = client.hit(&action.user_id, &action.item_id, "current")?;
            let (frozen_hit, _) = client.hit(&action.user_id, &action.item_id, "frozen")?;
            let popularity_hit = self.popularity.top(10, user_seen).contains(&action.item_id);
            self.probes.push(Probe {
                action_index: self.actions,
                elapsed_secs: self.started.elapsed().as_secs_f64(),
                online_hit,
                frozen_hit,
                popularity_hit,
                version,
            });
        }
        if self.last_sample.elapsed() >= Duration::from_secs(1) {
            self.last_sample = Instant::now();
            let elapsed = self.started.elapsed().as_secs_f64();
            self.lag.push(client.sample(elapsed, config)?);
        }
        Ok(())
    }

    fn observe(&mut self, action: &UserAction) {
        self.popularity.observe(&action.item_id);
        let user_seen = self.seen.entry(action.user_id.clone()).or_default();
        user_seen.insert(action.item_id.clone());
        self.actions += 1;
    }

    fn report(self, events: usize) -> ReplayReport {
        let rate = |hit: fn(&Probe) -> bool| {
            self.probes.iter().filter(|p| hit(p)).count() as f64 / self.probes.len().max(1) as f64
        };
        ReplayReport {
            events,
            actions: self.actions,
            seconds: self.started.elapsed().as_secs_f64(),
            unsynced_probes: self.unsynced,
            online_recall_10: rate(|p| p.online_hit),
            frozen_recall_10: rate(|p| p.frozen_hit),
            popularity_recall_10: rate(|p| p.popularity_hit),
            probes: self.probes,
            lag: self.lag,
        }
    }
}

/// Markdown summary: overall and per-window prequential Recall@10.
pub fn markdown(report: &ReplayReport, window: usize) -> String {
    let mut md = format!(
        "Replayed {} events ({} actions) in {:.0} s; {} prequential probes ({} before the service caught up).\n\n\
         | model | prequential Recall@10 |\n|---|---|\n\
         | online LEARN | {:.4} |\n| frozen (never trained) | {:.4} |\n| popularity (so far) | {:.4} |\n\n\
         | actions replayed | online | frozen | popularity |\n|---|---|---|---|\n",
        report.events,
        report.actions,
        report.seconds,
        report.probes.len(),
        report.unsynced_probes,
        report.online_recall_10,
        report.frozen_recall_10,
        report.popularity_recall_10
    );
    for (at, online, frozen, pop) in windows(&report.probes, window) {
        let _ = writeln!(md, "| {at} | {online:.4} | {frozen:.4} | {pop:.4} |");
    }
    md
}

/// Writes replay.json, replay.md and replay.svg / replay.png into `dir`.
pub fn write(report: &ReplayReport, window: usize, dir: &Path) -> Result<(), ReplayError> {
    let io = |path: PathBuf| move |source| ReplayError::Write { path, source };
    std::fs::create_dir_all(dir).map_err(io(dir.to_path_buf()))?;
    let files = [
        (
            "replay.json",
            serde_json::to_string_pretty(report).expect("serialisable"),
        ),
        ("replay.md", markdown(report, window)),
    ];
    for (name, text) in files {
        let path = dir.join(name);
        std::fs::write(&path, text).map_err(io(path.clone()))?;
    }
    let stem = dir.join("replay");
    plot::write(&figure::panels(report, window), &stem).map_err(io(stem.with_extension("svg")))
}
