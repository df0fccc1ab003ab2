//! Owns the value checks of the sections [`Config`] holds itself (Kafka, Redis, ingest, online,
//! serving, lag), each beside its section's type as `validate`, and the checks across sections.
//! `[towers]`, `[training]`, `[sasrec]` and `[encoder]` validate themselves in their owners' modules.

use super::{
    redacted_url, Config, HistoryConfig, IngestConfig, KafkaConfig, LagConfig, OnlineConfig,
    RedisConfig, ServingConfig,
};
use crate::checks::{non_empty, ordered, positive, Invalid};

impl Config {
    /// The first invalid value, section by section.
    pub(super) fn validate(&self) -> Result<(), Invalid> {
        self.kafka.validate()?;
        self.redis.validate()?;
        self.history.validate()?;
        self.ingest.validate()?;
        self.encoder.validate()?;
        self.towers.validate("towers")?;
        self.sasrec.validate()?;
        self.online.validate()?;
        self.serving.validate()?;
        self.lag.validate()?;
        self.training.validate()
    }
}

impl KafkaConfig {
    pub fn validate(&self) -> Result<(), Invalid> {
        for (key, value) in [
            ("kafka.brokers", &self.brokers),
            ("kafka.group_id", &self.group_id),
            ("kafka.actions_topic", &self.actions_topic),
            ("kafka.items_topic", &self.items_topic),
            ("kafka.dead_letter_topic", &self.dead_letter_topic),
            ("kafka.item_embeddings_topic", &self.item_embeddings_topic),
            ("kafka.catalogue_topic", &self.catalogue_topic),
            ("kafka.user_embeddings_topic", &self.user_embeddings_topic),
        ] {
            non_empty(key, value)?;
        }
        // The delivery guarantees rest on these: the pass-through may not change them.
        const PROTECTED: [&str; 4] = [
            "group.id",
            "enable.auto.offset.store",
            "enable.auto.commit",
            "bootstrap.servers",
        ];
        if let Some(key) = PROTECTED.iter().find(|k| self.librdkafka.contains_key(**k)) {
            return Err(Invalid::new(
                "kafka.librdkafka",
                format!(
                    "`{key}` cannot be overridden here: offsets are stored only after the \
                     downstream write (use kafka.brokers / kafka.group_id for the others)"
                ),
            ));
        }
        if self.topic_replication == 0 || self.topic_replication < -1 {
            return Err(Invalid::new(
                "kafka.topic_replication",
                "must be -1 (the broker's default) or at least 1",
            ));
        }
        if self.create_topics && self.topic_partitions < 1 {
            return Err(Invalid::new("kafka.topic_partitions", "must be at least 1"));
        }
        Ok(())
    }
}

impl RedisConfig {
    pub fn validate(&self) -> Result<(), Invalid> {
        let urls: Vec<&str> = if self.cluster {
            self.url.split(',').map(str::trim).collect()
        } else {
            vec![self.url.as_str()]
        };
        if let Some(url) = urls
            .iter()
            .find(|url| !url.starts_with("redis://") && !url.starts_with("rediss://"))
        {
            return Err(Invalid::new(
                "redis.url",
                format!(
                    "must start with redis:// or rediss://, got `{}`",
                    redacted_url(url)
                ),
            ));
        }
        if self.cluster && self.key_prefix.contains(['{', '}']) {
            return Err(Invalid::new(
                "redis.key_prefix",
                "must not contain `{` or `}` with redis.cluster = true: a hash tag in the prefix \
                 would put every key in one slot",
            ));
        }
        if self.cluster && (self.tls_ca_file.is_some() || self.tls_cert_file.is_some()) {
            return Err(Invalid::new(
                "redis.tls_ca_file",
                "private CA and client certificate files are for a single node; a cluster over \
                 rediss:// verifies against the system store",
            ));
        }
        self.validate_tls_files()
    }

    fn validate_tls_files(&self) -> Result<(), Invalid> {
        let tls = [
            ("redis.tls_ca_file", &self.tls_ca_file),
            ("redis.tls_cert_file", &self.tls_cert_file),
            ("redis.tls_key_file", &self.tls_key_file),
        ];
        for (key, file) in tls {
            let Some(file) = file else { continue };
            if !self.url.starts_with("rediss://") {
                return Err(Invalid::new(
                    key,
                    "is for TLS: the URL must start with rediss://",
                ));
            }
            if !file.is_file() {
                return Err(Invalid::new(
                    key,
                    format!("no such file: {}", file.display()),
                ));
            }
        }
        if self.tls_cert_file.is_some() != self.tls_key_file.is_some() {
            return Err(Invalid::new(
                "redis.tls_key_file",
                "a client certificate needs its key (tls_cert_file and tls_key_file go together)",
            ));
        }
        Ok(())
    }
}

impl HistoryConfig {
    pub fn validate(&self) -> Result<(), Invalid> {
        positive("history.cap", self.cap)
    }
}

impl IngestConfig {
    pub fn validate(&self) -> Result<(), Invalid> {
        positive("ingest.max_batch", self.max_batch)?;
        positive("ingest.max_text_bytes", self.max_text_bytes)
    }
}

impl OnlineConfig {
    pub fn validate(&self) -> Result<(), Invalid> {
        positive("online.batch_size", self.batch_size)?;
        positive("online.min_batch_size", self.min_batch_size)?;
        positive("online.recent_targets", self.recent_targets)?;
        positive("online.pending_users", self.pending_users)?;
        positive("online.keep_checkpoints", self.keep_checkpoints)?;
        ordered(
            "online.min_batch_size",
            self.min_batch_size,
            "online.batch_size",
            self.batch_size,
        )
    }
}

impl ServingConfig {
    pub fn validate(&self) -> Result<(), Invalid> {
        positive("serving.max_k", self.max_k)?;
        positive(
            "serving.popularity_sync_ms",
            self.popularity_sync_ms as usize,
        )?;
        if self
            .auth_token
            .as_ref()
            .is_some_and(|token| token.expose().len() < 16)
        {
            return Err(Invalid::new(
                "serving.auth_token",
                "must be at least 16 characters (use a random token)",
            ));
        }
        positive(
            "serving.max_concurrent_requests",
            self.max_concurrent_requests,
        )?;
        positive(
            "serving.request_timeout_ms",
            self.request_timeout_ms as usize,
        )?;
        let Ok(addr) = self.addr.parse::<std::net::SocketAddr>() else {
            return Err(Invalid::new(
                "serving.addr",
                format!("`{}` is not an ip:port address", self.addr),
            ));
        };
        if !addr.ip().is_loopback() && self.auth_token.is_none() && !self.allow_unauthenticated {
            return Err(Invalid::new(
                "serving.auth_token",
                format!(
                    "unset while serving on {addr}, beyond loopback: anyone who reaches it could \
                     read every user's recommendations. Set LEARN__SERVING__AUTH_TOKEN (the \
                     Kubernetes Secret), or serving.allow_unauthenticated = true where a proxy or \
                     the network authenticates"
                ),
            ));
        }
        Ok(())
    }
}

impl LagConfig {
    pub fn validate(&self) -> Result<(), Invalid> {
        positive("lag.embed_batch_min", self.embed_batch_min)?;
        ordered(
            "lag.embed_batch_min",
            self.embed_batch_min,
            "lag.embed_batch_max",
            self.embed_batch_max,
        )
    }
}
