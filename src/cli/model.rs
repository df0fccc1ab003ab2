//! `learn model reset`: retires the published model lineage when the configuration changed under it
//! (another encoder, another `[towers]`), so the trainer starts a new lineage instead of refusing
//! the old one forever.

use anyhow::{bail, Context, Result};
use clap::Subcommand;
use learn_stream::checkpoint;
use learn_stream::config::Config;
use learn_stream::service::serving_model;
use learn_stream::store::{HistoryPolicy, RedisStore, Store};

use super::{load_encoder, ModelArgs};

#[derive(Subcommand)]
pub enum ModelCommand {
    /// Retire the published model lineage in Redis (`redis.key_prefix`). Refused while the
    /// published model still fits this configuration, unless --force. The model is kept under
    /// `<prefix>{control}:retired`; the next lineage's versions continue above its version;
    /// local checkpoints up to it are passed over.
    Reset {
        /// Retire it even though it fits this configuration.
        #[arg(long)]
        force: bool,
        #[command(flatten)]
        model: ModelArgs,
    },
}

pub async fn reset(mut config: Config, force: bool, model: ModelArgs) -> Result<()> {
    let store = RedisStore::open(&config.redis, HistoryPolicy::from(&config.history))
        .await
        .context("connecting to Redis")?;
    let Some(published) = store.current_model().await? else {
        match store.model_version().await? {
            Some(version) => println!("the lineage is already retired (at version {version})"),
            None => println!("no model is published: nothing to retire"),
        }
        return Ok(());
    };
    if !force {
        let encoder = load_encoder(&mut config, &model)?;
        let checkpoint = checkpoint::from_bytes(&published.manifest, &published.state)
            .context("reading the published model")?;
        let identity = (encoder.model_id(), encoder.dim());
        if serving_model(&config.towers, config.training.seed, identity, &checkpoint).is_ok() {
            bail!(
                "version {} fits this configuration (its [towers] and encoder): nothing to reset \
                 (--force retires it anyway)",
                published.version
            );
        }
    }
    match store.retire_model().await? {
        Some(version) => println!(
            "retired version {version} (kept under {}{{control}}:retired); the trainer starts a \
             new lineage at version {} — from online.warm_start when set, else the initial weights",
            config.redis.key_prefix,
            version + 1
        ),
        None => println!("nothing to retire: the lineage was retired meanwhile"),
    }
    Ok(())
}
