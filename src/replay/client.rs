//! The replay's HTTP client of a running service: recommendations (the rank of a probed item),
//! the applied-actions sync before each probe, and lag samples.

use std::time::{Duration, Instant};

use super::prequential::LagSample;
use super::ReplayError;
use crate::config::Config;
use crate::service::Status;
use crate::serving::recommend::Recommendation;

pub(super) struct Client {
    agent: ureq::Agent,
    pub(super) url: String,
    /// `Authorization` header value when the service wants a token (`serving.auth_token`).
    auth: Option<String>,
}

impl Client {
    pub(super) fn new(url: &str, config: &Config) -> Self {
        Self {
            agent: ureq::Agent::config_builder()
                .timeout_global(Some(Duration::from_secs(30)))
                .build()
                .into(),
            url: url.trim_end_matches('/').to_string(),
            auth: config.serving.authorization(),
        }
    }

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
    pub(super) fn rank(
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
    pub(super) fn wait_applied(
        &self,
        actions: u64,
        timeout: Duration,
    ) -> Result<bool, ReplayError> {
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

    pub(super) fn sample(&self, elapsed: f64, config: &Config) -> Result<LagSample, ReplayError> {
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
