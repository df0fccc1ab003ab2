//! `learn serve` (the service against Kafka and Redis) and `learn demo` (everything in one process).

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Result;
use clap::Args;
use learn_stream::config::{redacted_url, Config};
use learn_stream::demo;
use learn_stream::metrics::Stats;
use learn_stream::service::Shared;
use learn_stream::shutdown::ShutdownTrigger;
use learn_stream::store::{HistoryPolicy, RedisStore};
use learn_stream::workload::{self, SyntheticOptions};

use super::{load_encoder, ModelArgs};

#[derive(Args)]
pub struct DemoArgs {
    #[command(flatten)]
    pub model: ModelArgs,
    /// Replay MovieLens 100K from this directory (u.item, u.genre, u.data) instead of a synthetic stream.
    #[arg(long)]
    pub movielens: Option<PathBuf>,
    /// Synthetic stream: number of items uploaded.
    #[arg(long, default_value_t = 1000)]
    pub items: usize,
    /// Synthetic stream: number of users.
    #[arg(long, default_value_t = 500)]
    pub users: usize,
    /// Synthetic stream: number of user actions.
    #[arg(long, default_value_t = 50_000)]
    pub actions: usize,
    /// Synthetic stream: fraction of events made malformed on purpose (they go to the dead-letter topic).
    #[arg(long, default_value_t = 0.002)]
    pub bad_fraction: f64,
    /// Synthetic stream: random seed.
    #[arg(long, default_value_t = 42)]
    pub seed: u64,
    /// Skip the walkthrough printed after the stream (counters only).
    #[arg(long)]
    pub no_walkthrough: bool,
    /// Keep the HTTP API up on serving.addr after the stream, until Ctrl-C.
    #[arg(long)]
    pub serve: bool,
    /// Skip the offline pass: the towers start from their initial weights and learn from the
    /// stream alone (by default they are first trained offline on the stream's first 60 %).
    #[arg(long)]
    pub no_offline: bool,
}

/// Triggers `shutdown` on Ctrl-C or SIGTERM.
fn shutdown_on_signals(shutdown: ShutdownTrigger) {
    tokio::spawn(async move {
        let ctrl_c = tokio::signal::ctrl_c();
        #[cfg(unix)]
        {
            let mut term =
                tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
                    .expect("install SIGTERM handler");
            tokio::select! { _ = ctrl_c => {}, _ = term.recv() => {} }
        }
        #[cfg(not(unix))]
        let _ = ctrl_c.await;
        tracing::info!("shutdown requested");
        shutdown.trigger();
    });
}

/// Connects to Redis, retrying with backoff (1 s → 30 s) until it answers: a service started
/// before its Redis waits for it instead of crash-looping. None when shutdown came first.
async fn connect_redis(config: &Config, shutdown: &ShutdownTrigger) -> Option<RedisStore> {
    let url = redacted_url(&config.redis.url);
    let mut stop = shutdown.subscribe();
    let mut backoff = Duration::from_secs(1);
    loop {
        let policy = HistoryPolicy::from(&config.history);
        match RedisStore::open(&config.redis, policy).await {
            Ok(store) => return Some(store),
            Err(err) => tracing::warn!(%url, %err, ?backoff, "Redis unavailable; retrying"),
        }
        tokio::select! {
            _ = stop.recv() => return None,
            _ = tokio::time::sleep(backoff) => {}
        }
        backoff = (backoff * 2).min(Duration::from_secs(30));
    }
}

pub async fn serve(mut config: Config, args: ModelArgs) -> Result<()> {
    let encoder = load_encoder(&mut config, &args)?;
    let shutdown = ShutdownTrigger::default();
    shutdown_on_signals(shutdown.clone());
    let Some(store) = connect_redis(&config, &shutdown).await else {
        return Ok(()); // stopped while waiting for Redis
    };
    let stats = Arc::new(Stats::default());
    let shared = Arc::new(Shared::new(config, store, encoder, stats.clone())?);
    learn_stream::service::run(shared, &shutdown).await?;
    tracing::info!(totals = ?stats.snapshot(), "stopped");
    Ok(())
}

pub async fn demo(mut config: Config, args: DemoArgs) -> Result<()> {
    let encoder = load_encoder(&mut config, &args.model)?;
    let stream = match &args.movielens {
        Some(dir) => workload::movielens_stream(dir)?,
        None => workload::synthetic_stream(&SyntheticOptions {
            items: args.items,
            users: args.users,
            actions: args.actions,
            bad_fraction: args.bad_fraction,
            seed: args.seed,
        }),
    };
    eprintln!(
        "demo: {} events, encoder {} ({}-d)",
        stream.len(),
        encoder.model_id(),
        encoder.dim()
    );
    let addr = config.serving.addr.clone();
    let options = demo::DemoOptions {
        walkthrough: !args.no_walkthrough,
        serve: args.serve,
        offline: !args.no_offline,
    };
    let on_offline = |pass: &demo::OfflinePass| {
        eprintln!(
            "offline pass: {} epochs on {} actions in {:.0} s; imported as version 1, now streaming",
            pass.epochs,
            pass.interactions,
            pass.elapsed.as_secs_f64()
        );
    };
    demo::run(config, stream, encoder, options, on_offline, |summary, walkthrough| {
        println!("{summary}");
        println!(
            "full log (each dead letter's reason): {}",
            super::logging::demo_log().display()
        );
        if let Some(text) = walkthrough {
            println!("{text}");
        }
        if !args.serve {
            println!("\nRun it with --serve to keep the HTTP API up afterwards and query it with curl.");
        }
        if args.serve {
            println!("\nThe HTTP API stays up on {addr} (Ctrl-C stops it). Try:");
            println!("  curl -s 'http://{addr}/v1/recommend?user_id=u1&k=5'");
            println!("  curl -s 'http://{addr}/v1/recommend?user_id=u1&k=5&model=frozen'   # the towers as first served, never updated online");
            println!("  curl -s http://{addr}/v1/status");
            println!("  curl -s http://{addr}/metrics | grep ^learn_");
            println!("  curl -s http://{addr}/openapi.json");
        }
    })
    .await?;
    Ok(())
}
