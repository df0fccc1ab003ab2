//! The value checks [`Config::load`] runs after parsing: each failure names its key.

use super::{redacted_url, Config, ConfigError};

impl Config {
    pub(super) fn validate(&self) -> Result<(), ConfigError> {
        fn positive(key: &'static str, value: usize) -> Result<(), ConfigError> {
            if value == 0 {
                return Err(ConfigError::Invalid {
                    key,
                    reason: "must be greater than 0".into(),
                });
            }
            Ok(())
        }
        fn non_empty(key: &'static str, value: &str) -> Result<(), ConfigError> {
            if value.trim().is_empty() {
                return Err(ConfigError::Invalid {
                    key,
                    reason: "must not be empty".into(),
                });
            }
            Ok(())
        }
        non_empty("kafka.brokers", &self.kafka.brokers)?;
        non_empty("kafka.group_id", &self.kafka.group_id)?;
        non_empty("kafka.actions_topic", &self.kafka.actions_topic)?;
        non_empty("kafka.items_topic", &self.kafka.items_topic)?;
        non_empty("kafka.dead_letter_topic", &self.kafka.dead_letter_topic)?;
        non_empty(
            "kafka.item_embeddings_topic",
            &self.kafka.item_embeddings_topic,
        )?;
        non_empty(
            "kafka.user_embeddings_topic",
            &self.kafka.user_embeddings_topic,
        )?;
        if !matches!(self.kafka.auto_offset_reset.as_str(), "earliest" | "latest") {
            return Err(ConfigError::Invalid {
                key: "kafka.auto_offset_reset",
                reason: format!(
                    "must be `earliest` or `latest`, got `{}`",
                    self.kafka.auto_offset_reset
                ),
            });
        }
        // The delivery guarantees rest on these: the pass-through may not change them.
        const PROTECTED: [&str; 4] = [
            "group.id",
            "enable.auto.offset.store",
            "enable.auto.commit",
            "bootstrap.servers",
        ];
        if let Some(key) = PROTECTED
            .iter()
            .find(|k| self.kafka.librdkafka.contains_key(**k))
        {
            return Err(ConfigError::Invalid {
                key: "kafka.librdkafka",
                reason: format!(
                    "`{key}` cannot be overridden here: offsets are stored only after the \
                     downstream write (use kafka.brokers / kafka.group_id for the others)"
                ),
            });
        }
        let urls: Vec<&str> = if self.redis.cluster {
            self.redis.url.split(',').map(str::trim).collect()
        } else {
            vec![self.redis.url.as_str()]
        };
        if let Some(url) = urls
            .iter()
            .find(|url| !url.starts_with("redis://") && !url.starts_with("rediss://"))
        {
            return Err(ConfigError::Invalid {
                key: "redis.url",
                reason: format!(
                    "must start with redis:// or rediss://, got `{}`",
                    redacted_url(url)
                ),
            });
        }
        if self.redis.cluster {
            if self.redis.key_prefix.contains(['{', '}']) {
                return Err(ConfigError::Invalid {
                    key: "redis.key_prefix",
                    reason: "must not contain `{` or `}` with redis.cluster = true: a hash tag in \
                             the prefix would put every key in one slot"
                        .into(),
                });
            }
            if self.redis.tls_ca_file.is_some() || self.redis.tls_cert_file.is_some() {
                return Err(ConfigError::Invalid {
                    key: "redis.tls_ca_file",
                    reason: "private CA and client certificate files are for a single node; a \
                             cluster over rediss:// verifies against the system store"
                        .into(),
                });
            }
        }
        let tls = [
            ("redis.tls_ca_file", &self.redis.tls_ca_file),
            ("redis.tls_cert_file", &self.redis.tls_cert_file),
            ("redis.tls_key_file", &self.redis.tls_key_file),
        ];
        for (key, file) in tls {
            let Some(file) = file else { continue };
            if !self.redis.url.starts_with("rediss://") {
                return Err(ConfigError::Invalid {
                    key,
                    reason: "is for TLS: the URL must start with rediss://".into(),
                });
            }
            if !file.is_file() {
                return Err(ConfigError::Invalid {
                    key,
                    reason: format!("no such file: {}", file.display()),
                });
            }
        }
        if self.redis.tls_cert_file.is_some() != self.redis.tls_key_file.is_some() {
            return Err(ConfigError::Invalid {
                key: "redis.tls_key_file",
                reason: "a client certificate needs its key (tls_cert_file and tls_key_file go together)"
                    .into(),
            });
        }
        if self.kafka.topic_replication == 0 || self.kafka.topic_replication < -1 {
            return Err(ConfigError::Invalid {
                key: "kafka.topic_replication",
                reason: "must be -1 (the broker's default) or at least 1".into(),
            });
        }
        if self.kafka.create_topics && self.kafka.topic_partitions < 1 {
            return Err(ConfigError::Invalid {
                key: "kafka.topic_partitions",
                reason: "must be at least 1".into(),
            });
        }
        positive("history.cap", self.history.cap)?;
        positive("ingest.max_batch", self.ingest.max_batch)?;
        positive("ingest.max_text_bytes", self.ingest.max_text_bytes)?;
        positive("encoder.max_tokens", self.encoder.max_tokens)?;
        positive("encoder.max_batch", self.encoder.max_batch)?;
        positive("towers.d_model", self.towers.d_model)?;
        positive("towers.heads", self.towers.heads)?;
        positive("towers.out_dim", self.towers.out_dim)?;
        positive("towers.max_len", self.towers.max_len)?;
        if !self.towers.d_model.is_multiple_of(self.towers.heads) {
            return Err(ConfigError::Invalid {
                key: "towers.heads",
                reason: "must divide towers.d_model".into(),
            });
        }
        if !self.towers.output_head && self.towers.out_dim != self.towers.d_model {
            return Err(ConfigError::Invalid {
                key: "towers.out_dim",
                reason:
                    "must equal towers.d_model without an output head (towers.output_head = false)"
                        .into(),
            });
        }
        self.sasrec
            .check()
            .map_err(|(key, reason)| ConfigError::Invalid {
                key,
                reason: reason.into(),
            })?;
        for (key, p) in [
            ("towers.dropout", self.towers.dropout),
            ("towers.attn_dropout", self.towers.attn_dropout),
            ("towers.id_dropout", self.towers.id_dropout),
        ] {
            if !(0.0..1.0).contains(&p) {
                return Err(ConfigError::Invalid {
                    key,
                    reason: "must be in [0, 1)".into(),
                });
            }
        }
        positive("online.batch_size", self.online.batch_size)?;
        positive("online.min_batch_size", self.online.min_batch_size)?;
        positive("online.recent_targets", self.online.recent_targets)?;
        positive("online.pending_users", self.online.pending_users)?;
        positive("online.keep_checkpoints", self.online.keep_checkpoints)?;
        positive("serving.max_k", self.serving.max_k)?;
        positive(
            "serving.popularity_sync_ms",
            self.serving.popularity_sync_ms as usize,
        )?;
        if let Some(token) = &self.serving.auth_token {
            if token.expose().len() < 16 {
                return Err(ConfigError::Invalid {
                    key: "serving.auth_token",
                    reason: "must be at least 16 characters (use a random token)".into(),
                });
            }
        }
        positive(
            "serving.max_concurrent_requests",
            self.serving.max_concurrent_requests,
        )?;
        positive(
            "serving.request_timeout_ms",
            self.serving.request_timeout_ms as usize,
        )?;
        positive("lag.embed_batch_min", self.lag.embed_batch_min)?;
        if self.online.min_batch_size > self.online.batch_size {
            return Err(ConfigError::Invalid {
                key: "online.min_batch_size",
                reason: "must not exceed online.batch_size".into(),
            });
        }
        if self.lag.embed_batch_min > self.lag.embed_batch_max {
            return Err(ConfigError::Invalid {
                key: "lag.embed_batch_min",
                reason: "must not exceed lag.embed_batch_max".into(),
            });
        }
        if self.serving.addr.parse::<std::net::SocketAddr>().is_err() {
            return Err(ConfigError::Invalid {
                key: "serving.addr",
                reason: format!("`{}` is not an ip:port address", self.serving.addr),
            });
        }
        positive("training.batch_size", self.training.batch_size)?;
        positive("training.patience_window", self.training.patience_window)?;
        positive("training.epochs", self.training.epochs)?;
        if self.training.negatives.draws() {
            positive("training.negative_samples", self.training.negative_samples)?;
        }
        if self.training.lr <= 0.0 {
            return Err(ConfigError::Invalid {
                key: "training.lr",
                reason: "must be greater than 0".into(),
            });
        }
        Ok(())
    }
}
