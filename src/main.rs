//! The `learn` binary: command-line edge of learn-stream (anyhow errors, logging set-up, signals).

use std::path::PathBuf;
use std::sync::Arc;

use anyhow::{bail, Context, Result};
use clap::{Args, Parser, Subcommand};
use learn_stream::config::Config;
use learn_stream::demo::{self, SyntheticOptions};
use learn_stream::encode::ContentEncoder;
use learn_stream::history::{HistoryPolicy, RedisStore};
use learn_stream::metrics::Stats;
use learn_stream::shutdown::ShutdownTrigger;

#[derive(Parser)]
#[command(name = "learn", version, about = "LEARN (LLM-to-Rec) online: Kafka → frozen LLM embeddings → Redis histories")]
struct Cli {
    /// TOML file merged over config/default.toml (LEARN__SECTION__KEY env vars override both).
    #[arg(long, global = true, env = "LEARN_CONFIG")]
    config: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the service against the configured Kafka brokers and Redis until Ctrl-C / SIGTERM.
    Serve(ModelArgs),
    /// Run the whole path in one process with no servers (mock Kafka cluster, in-process store).
    Demo(DemoArgs),
    /// Print the frozen encoder's embedding of texts as JSON lines.
    Embed(EmbedArgs),
}

#[derive(Args)]
struct ModelArgs {
    /// Encoder model directory (overrides encoder.model_dir).
    #[arg(long)]
    model_dir: Option<PathBuf>,
}

#[derive(Args)]
struct DemoArgs {
    #[command(flatten)]
    model: ModelArgs,
    /// Replay MovieLens 100K from this directory (u.item, u.genre, u.data) instead of a synthetic stream.
    #[arg(long)]
    movielens: Option<PathBuf>,
    /// Synthetic stream: number of items uploaded.
    #[arg(long, default_value_t = 1000)]
    items: usize,
    /// Synthetic stream: number of users.
    #[arg(long, default_value_t = 500)]
    users: usize,
    /// Synthetic stream: number of user actions.
    #[arg(long, default_value_t = 50_000)]
    actions: usize,
    /// Synthetic stream: fraction of events made malformed on purpose (they go to the dead-letter topic).
    #[arg(long, default_value_t = 0.002)]
    bad_fraction: f64,
    /// Synthetic stream: random seed.
    #[arg(long, default_value_t = 42)]
    seed: u64,
}

#[derive(Args)]
struct EmbedArgs {
    #[command(flatten)]
    model: ModelArgs,
    /// Text to embed (repeatable).
    #[arg(long, required_unless_present = "file")]
    text: Vec<String>,
    /// File with one text per line.
    #[arg(long, conflicts_with = "text")]
    file: Option<PathBuf>,
}

fn load_encoder(config: &mut Config, args: &ModelArgs) -> Result<Arc<ContentEncoder>> {
    if let Some(dir) = &args.model_dir {
        config.encoder.model_dir = dir.clone();
    }
    let e = &config.encoder;
    let encoder = ContentEncoder::load(&e.model_dir, e.resolved_model_id(), e.max_tokens, e.max_batch)?;
    Ok(Arc::new(encoder))
}

/// Triggers `shutdown` on Ctrl-C or SIGTERM.
fn shutdown_on_signals(shutdown: ShutdownTrigger) {
    tokio::spawn(async move {
        let ctrl_c = tokio::signal::ctrl_c();
        #[cfg(unix)]
        {
            let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
                .expect("install SIGTERM handler");
            tokio::select! { _ = ctrl_c => {}, _ = term.recv() => {} }
        }
        #[cfg(not(unix))]
        let _ = ctrl_c.await;
        tracing::info!("shutdown requested");
        shutdown.trigger();
    });
}

async fn serve(mut config: Config, args: ModelArgs) -> Result<()> {
    let encoder = load_encoder(&mut config, &args)?;
    let policy = HistoryPolicy { cap: config.history.cap, ttl_ms: config.history.ttl_secs * 1000 };
    let store = RedisStore::connect(&config.redis.url, &config.redis.key_prefix, policy)
        .await
        .with_context(|| format!("connecting to Redis at {}", config.redis.url))?;
    let shutdown = ShutdownTrigger::default();
    shutdown_on_signals(shutdown.clone());
    let stats = Arc::new(Stats::default());
    learn_stream::service::run(&config, store, encoder, stats.clone(), &shutdown).await?;
    tracing::info!(totals = ?stats.snapshot(), "stopped");
    Ok(())
}

async fn run_demo(mut config: Config, args: DemoArgs) -> Result<()> {
    let encoder = load_encoder(&mut config, &args.model)?;
    let stream = match &args.movielens {
        Some(dir) => demo::movielens_stream(dir)?,
        None => demo::synthetic_stream(&SyntheticOptions {
            items: args.items,
            users: args.users,
            actions: args.actions,
            bad_fraction: args.bad_fraction,
            seed: args.seed,
        }),
    };
    eprintln!("demo: {} events, encoder {} ({}-d)", stream.len(), encoder.model_id(), encoder.dim());
    let summary = demo::run(config, stream, encoder).await?;
    println!("{summary}");
    Ok(())
}

fn embed(mut config: Config, args: EmbedArgs) -> Result<()> {
    let encoder = load_encoder(&mut config, &args.model)?;
    let texts = match &args.file {
        Some(path) => std::fs::read_to_string(path)
            .with_context(|| format!("reading {}", path.display()))?
            .lines()
            .map(str::to_string)
            .collect(),
        None => args.text.clone(),
    };
    if texts.iter().any(|t| t.trim().is_empty()) {
        bail!("empty text: every text to embed must have content");
    }
    for (text, vector) in texts.iter().zip(encoder.embed(&texts)?) {
        let line = serde_json::json!({ "text": text, "model": encoder.model_id(), "dim": vector.len(), "vector": vector });
        println!("{line}");
    }
    Ok(())
}

fn main() -> Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info,rdkafka=warn".into()))
        .with_writer(std::io::stderr)
        .init();
    let cli = Cli::parse();
    let config = Config::load(cli.config.as_deref())?;
    match cli.command {
        Command::Embed(args) => embed(config, args),
        Command::Serve(args) => tokio::runtime::Runtime::new()?.block_on(serve(config, args)),
        Command::Demo(args) => tokio::runtime::Runtime::new()?.block_on(run_demo(config, args)),
    }
}
