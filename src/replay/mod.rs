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
use crate::workload::{export, movielens_stream, EventProducer, Exported, Outgoing, ProduceError};
use prequential::{score, windows, LagSample, Popularity, Probe, Score, COLD_BELOW};

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

/// `learn replay --split`: a fraction of the events, or an event time.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum SplitPoint {
    Fraction(f64),
    /// Milliseconds since the epoch.
    Time(i64),
}

impl SplitPoint {
    /// A value in (0, 1) is a fraction of the events; a larger one, a Unix time in seconds.
    pub fn parse(value: &str) -> Result<Self, String> {
        let x: f64 = value
            .parse()
            .map_err(|_| format!("{value:?}: a fraction (0.5) or a Unix time in seconds"))?;
        match x {
            x if x > 0.0 && x < 1.0 => Ok(SplitPoint::Fraction(x)),
            x if x >= 1.0 => Ok(SplitPoint::Time((x * 1000.0) as i64)),
            _ => Err(format!("{value}: must be above 0")),
        }
    }

    /// The index of the first streamed event of `stream` (time-ordered).
    pub fn index(self, stream: &[Outgoing]) -> usize {
        match self {
            SplitPoint::Fraction(f) => (stream.len() as f64 * f).round() as usize,
            SplitPoint::Time(ms) => stream.partition_point(|o| o.ts_ms() < ms),
        }
    }
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

    /// The rank of `item` in the user's top 10 under `model` (None: not there), and the version;
    /// `alone`: by the embeddings alone (no popularity prior).
    fn rank(
        &self,
        user: &str,
        item: &str,
        model: &str,
        alone: bool,
    ) -> Result<(Option<u8>, u64), ReplayError> {
        let mut query = vec![("user_id", user), ("k", "10"), ("model", model)];
        if alone {
            query.push(("popularity_weight", "0"));
        }
        let rec: Recommendation = self.get("/v1/recommend", &query)?;
        let rank = rec.items.iter().position(|s| s.item_id == item);
        Ok((rank.map(|r| r as u8), rec.version))
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
    let client = |url: &String| Client {
        agent: ureq::Agent::config_builder()
            .timeout_global(Some(Duration::from_secs(30)))
            .build()
            .into(),
        url: url.trim_end_matches('/').to_string(),
        auth: config.serving.authorization(),
    };
    let clients: Vec<Client> = options
        .serve_url
        .iter()
        .chain(&options.scratch_url)
        .map(client)
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

/// Writes the events before `split` as a canonical dataset for `learn train` ([`export`]).
pub fn export_history(
    dataset: &Path,
    split: SplitPoint,
    limit: usize,
    dir: &Path,
) -> Result<Exported, ReplayError> {
    let mut stream =
        movielens_stream(dataset).map_err(|e| ReplayError::Dataset(e.to_string()))?;
    if limit > 0 {
        stream.truncate(limit);
    }
    export(&stream[..split.index(&stream)], dir).map_err(|source| ReplayError::Write {
        path: dir.to_path_buf(),
        source,
    })
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

/// What each arm is, in words, for the report (with a split, the service was warm-started).
fn describe(arm: &str, split: bool) -> &'static str {
    match (arm, split) {
        ("online", true) => "offline model + online updates (the default service), + prior",
        ("online", false) => "online LEARN (towers trained on the stream), + prior",
        ("online-alone", true) => "offline model + online updates, by the embeddings alone",
        ("online-alone", false) => "online LEARN, by the embeddings alone",
        ("frozen", true) => "offline model, frozen (never updated online), + prior",
        ("frozen", false) => "frozen (initial weights, never trained), + prior",
        ("scratch", _) => "online from scratch (a second service, no warm start), + prior",
        ("scratch-alone", _) => "online from scratch, by the embeddings alone",
        _ => "popularity so far (the replay's own counts)",
    }
}

/// Markdown summary: each arm's prequential Recall@10 and NDCG@10, overall, on cold and warm
/// targets, and Recall@10 per window.
pub fn markdown(report: &ReplayReport, window: usize) -> String {
    let split = report.history_events > 0;
    let mut md = format!(
        "Replayed {} events ({} actions; the first {} events as unevaluated history) in {:.0} s; \
         {} prequential probes ({} before the service caught up; {} on cold targets, fewer than \
         {COLD_BELOW} interactions before the probe).\n\n\
         | arm | Recall@10 | NDCG@10 | cold R@10 | warm R@10 | cold / warm |\n|---|---|---|---|---|---|\n",
        report.events,
        report.actions,
        report.history_events,
        report.seconds,
        report.probes.len(),
        report.unsynced_probes,
        report.probes.iter().filter(|p| p.cold).count(),
    );
    for s in &report.scores {
        let ratio = if s.warm.recall_10 > 0.0 {
            format!("{:.2}", s.cold.recall_10 / s.warm.recall_10)
        } else {
            "-".into()
        };
        let _ = writeln!(
            md,
            "| {} | {:.4} | {:.4} | {:.4} | {:.4} | {ratio} |",
            describe(&s.arm, split),
            s.overall.recall_10,
            s.overall.ndcg_10,
            s.cold.recall_10,
            s.warm.recall_10,
        );
    }
    let _ = write!(
        md,
        "\nRecall@10 per window of {window} probes:\n\n| actions replayed | {} |\n|---{}|\n",
        report.arms.join(" | "),
        "|---".repeat(report.arms.len())
    );
    for (at, scores) in windows(&report.probes, report.arms.len(), window) {
        let cells: Vec<String> = scores.iter().map(|s| format!("{:.4}", s.recall_10)).collect();
        let _ = writeln!(md, "| {at} | {} |", cells.join(" | "));
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
