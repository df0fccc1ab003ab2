//! The `learn` binary: command-line edge of learn-stream (anyhow errors, logging set-up, signals).

use std::path::PathBuf;
use std::sync::Arc;

use anyhow::{bail, Context, Result};
use clap::{Args, Parser, Subcommand};
use learn_stream::config::Config;
use learn_stream::demo::{self, SyntheticOptions};
use learn_stream::encode::ContentEncoder;
use learn_stream::experiment::{self, ModelKind};
use learn_stream::history::{HistoryPolicy, RedisStore};
use learn_stream::metrics::Stats;
use learn_stream::service::Shared;
use learn_stream::shutdown::ShutdownTrigger;

/// Training allocates and frees large tensors every step; glibc's malloc returns them to the OS
/// (munmap) and page-faults them back in, a fifth of a training step. mimalloc reuses them, once
/// told to keep freed memory ([`hold_freed_memory`]).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Never purge freed memory back to the OS: the process's footprint stays at its peak (one
/// training step's tensors), and steps stop faulting their pages in again. Measured on
/// Scientific, one epoch: 28.8 s with mimalloc's default (purge after 10 ms; 2 s made no
/// difference), 20.5 s without purging.
const PURGE_DELAY_MS: std::ffi::c_long = -1;

fn hold_freed_memory() {
    /// `mi_option_purge_delay` in `mimalloc.h` (v2 and v3; libmimalloc-sys lists no constant).
    const MI_OPTION_PURGE_DELAY: libmimalloc_sys::mi_option_t = 15;
    // SAFETY: sets a process-wide allocator option; no memory is touched.
    unsafe { libmimalloc_sys::mi_option_set(MI_OPTION_PURGE_DELAY, PURGE_DELAY_MS) };
}

#[derive(Parser)]
#[command(
    name = "learn",
    version,
    about = "LEARN (LLM-to-Rec) online: Kafka → frozen LLM embeddings → Redis histories"
)]
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
    /// Measure the frozen encoder's throughput (items/s) per batch size as JSON lines
    /// (`scripts/bench-encoder.sh` runs it beside the onnxruntime reference).
    BenchEncoder(BenchEncoderArgs),
    /// Train the towers (LEARN or the SASRec baseline) offline on a dataset.
    Train(TrainArgs),
    /// Evaluate models on a dataset's test split (leave-one-out, full ranking) and write a report.
    Eval(EvalArgs),
    /// Produce a timestamped dataset (MovieLens 100K) into Kafka in time order while a running
    /// `learn serve` learns, with prequential evaluation against popularity and the frozen model.
    Replay(ReplayArgs),
    /// Produce a steady synthetic load (uploads and actions at fixed rates) for measuring a service.
    Loadgen(LoadArgs),
    /// Print a running service's state at a glance: lag per partition, rates, model, checkpoint.
    Status(StatusArgs),
    /// Work with checkpoints.
    #[command(subcommand)]
    Checkpoint(CheckpointCommand),
}

#[derive(Args)]
struct ReplayArgs {
    /// MovieLens 100K directory (u.item, u.genre, u.data).
    #[arg(long)]
    dataset: PathBuf,
    /// Event-time seconds replayed per wall-clock second.
    #[arg(long, default_value_t = 1e6)]
    speed: f64,
    /// Most events produced per second (0 = no cap).
    #[arg(long, default_value_t = 300.0)]
    max_rate: f64,
    /// Replay only the first N events (0 = all).
    #[arg(long, default_value_t = 0)]
    limit: usize,
    /// The service's HTTP API; prequential evaluation needs it. Default: http://<serving.addr>.
    #[arg(long)]
    serve_url: Option<String>,
    /// Produce only, no evaluation.
    #[arg(long)]
    no_eval: bool,
    /// Evaluate every Nth action.
    #[arg(long, default_value_t = 5)]
    eval_every: usize,
    /// Probes per point of the recall-over-time curve.
    #[arg(long, default_value_t = 500)]
    window: usize,
    /// Where replay.json, replay.md and replay.svg go.
    #[arg(long, default_value = "runs/replay")]
    out: PathBuf,
}

#[derive(Args)]
struct LoadArgs {
    #[arg(long, default_value_t = 20.0)]
    uploads_per_sec: f64,
    #[arg(long, default_value_t = 500.0)]
    actions_per_sec: f64,
    #[arg(long, default_value_t = 60.0)]
    seconds: f64,
    #[arg(long, default_value_t = 7)]
    seed: u64,
}

#[derive(Args)]
struct StatusArgs {
    /// The service's HTTP API. Default: http://<serving.addr>.
    #[arg(long)]
    url: Option<String>,
    /// Print the raw JSON.
    #[arg(long)]
    json: bool,
}

#[derive(Subcommand)]
enum CheckpointCommand {
    /// Print the manifests of a checkpoint directory (one version) or of all versions under it.
    Inspect {
        /// A checkpoint (v00000012/) or the directory holding them. Default: online.checkpoint_dir.
        path: Option<PathBuf>,
    },
}

#[derive(Args)]
struct DatasetArgs {
    /// Dataset directory: canonical (items.jsonl + interactions.csv), RecBole atomic files, or MovieLens 100K.
    #[arg(long)]
    dataset: PathBuf,
    /// Where checkpoints, results and the report go (default: runs/<dataset name>).
    #[arg(long)]
    out: Option<PathBuf>,
    /// Fraction of items removed from training entirely (cold-start evaluation).
    #[arg(long, default_value_t = 0.0)]
    cold_items: f64,
    /// Where content embeddings are cached.
    #[arg(long, default_value = "runs/cache")]
    cache_dir: PathBuf,
    /// Frozen encoder: a Hugging Face directory or a llama/qwen2 .gguf file (overrides
    /// encoder.model_dir; LEARN__ENCODER__BACKEND / __THREADS set the backend and threads).
    #[arg(long)]
    model_dir: Option<PathBuf>,
}

impl DatasetArgs {
    fn out_dir(&self) -> PathBuf {
        self.out.clone().unwrap_or_else(|| {
            let name = self
                .dataset
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default();
            PathBuf::from("runs").join(name)
        })
    }
}

#[derive(Args)]
struct TrainArgs {
    #[command(flatten)]
    data: DatasetArgs,
    /// Which towers to train.
    #[arg(long, value_enum, default_value = "learn")]
    model: ModelKind,
    /// Overrides training.epochs.
    #[arg(long)]
    epochs: Option<usize>,
    /// Overrides training.loss.
    #[arg(long, value_enum)]
    loss: Option<learn_stream::train::Targets>,
    /// Overrides training.negatives.
    #[arg(long, value_enum)]
    negatives: Option<learn_stream::train::Negatives>,
    /// Overrides training.seed.
    #[arg(long)]
    seed: Option<u64>,
}

#[derive(Args)]
struct EvalArgs {
    #[command(flatten)]
    data: DatasetArgs,
    /// Models to compare in one table (learn and sasrec need `learn train` first).
    #[arg(long, value_enum, num_args = 1.., default_values = ["learn", "sasrec", "content", "popularity"])]
    model: Vec<ModelKind>,
}

#[derive(Args)]
struct ModelArgs {
    /// Frozen encoder: a Hugging Face directory or a llama/qwen2 .gguf file (overrides
    /// encoder.model_dir; LEARN__ENCODER__BACKEND / __THREADS set the backend and threads).
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

#[derive(Args)]
struct BenchEncoderArgs {
    #[command(flatten)]
    model: ModelArgs,
    /// JSON list of texts, repeated to fill a batch.
    #[arg(long, default_value = "tests/fixtures/encoder/titles.json")]
    texts: PathBuf,
    /// Batch sizes, comma separated.
    #[arg(long, value_delimiter = ',', default_value = "1,16,64")]
    batches: Vec<usize>,
    /// Seconds measured per batch size (after one warm-up batch).
    #[arg(long, default_value_t = 3.0)]
    seconds: f64,
}

fn load_encoder(config: &mut Config, args: &ModelArgs) -> Result<Arc<ContentEncoder>> {
    if let Some(dir) = &args.model_dir {
        config.encoder.model_dir = dir.clone();
    }
    let encoder = ContentEncoder::from_config(&config.encoder)?;
    tracing::info!(
        model = encoder.model_id(),
        dim = encoder.dim(),
        backend = encoder.backend(),
        threads = encoder.threads(),
        "frozen encoder loaded"
    );
    Ok(Arc::new(encoder))
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

async fn serve(mut config: Config, args: ModelArgs) -> Result<()> {
    let encoder = load_encoder(&mut config, &args)?;
    let policy = HistoryPolicy::from(&config.history);
    let store = RedisStore::connect(&config.redis.url, &config.redis.key_prefix, policy)
        .await
        .with_context(|| format!("connecting to Redis at {}", config.redis.url))?;
    let shutdown = ShutdownTrigger::default();
    shutdown_on_signals(shutdown.clone());
    let stats = Arc::new(Stats::default());
    let shared = Arc::new(Shared::new(config, store, encoder, stats.clone())?);
    learn_stream::service::run(shared, &shutdown).await?;
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
    eprintln!(
        "demo: {} events, encoder {} ({}-d)",
        stream.len(),
        encoder.model_id(),
        encoder.dim()
    );
    let summary = demo::run(config, stream, encoder).await?;
    println!("{summary}");
    Ok(())
}

fn bench_encoder(mut config: Config, args: BenchEncoderArgs) -> Result<()> {
    config.encoder.cache_entries = 0; // every batch is embedded, never served from the cache
    let batch_max = args.batches.iter().copied().max().unwrap_or(1);
    config.encoder.max_batch = batch_max;
    let encoder = load_encoder(&mut config, &args.model)?;
    let texts: Vec<String> = serde_json::from_str(
        &std::fs::read_to_string(&args.texts)
            .with_context(|| format!("reading {}", args.texts.display()))?,
    )?;
    for &batch in &args.batches {
        let inputs: Vec<String> = texts.iter().cycle().take(batch).cloned().collect();
        encoder.embed(&inputs)?; // warm-up
        let (start, mut done) = (std::time::Instant::now(), 0usize);
        while start.elapsed().as_secs_f64() < args.seconds || done < 3 * batch {
            encoder.embed(&inputs)?;
            done += batch;
        }
        let rate = done as f64 / start.elapsed().as_secs_f64();
        let line = serde_json::json!({
            "runtime": format!("learn-stream {}", encoder.backend()),
            "model": encoder.model_id(), "batch": batch, "threads": encoder.threads(),
            "items_per_s": (rate * 100.0).round() / 100.0,
        });
        println!("{line}");
    }
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

fn apply_model_dir(config: &mut Config, dir: &Option<PathBuf>) {
    if let Some(dir) = dir {
        config.encoder.model_dir = dir.clone();
    }
}

fn command_line() -> String {
    std::env::args().collect::<Vec<_>>().join(" ")
}

fn train(mut config: Config, args: TrainArgs) -> Result<()> {
    apply_model_dir(&mut config, &args.data.model_dir);
    if let Some(epochs) = args.epochs {
        config.training.epochs = epochs;
    }
    if let Some(loss) = args.loss {
        config.training.loss = loss;
    }
    if let Some(negatives) = args.negatives {
        config.training.negatives = negatives;
    }
    if let Some(seed) = args.seed {
        config.training.seed = seed;
    }
    let options = experiment::TrainOptions {
        dataset: args.data.dataset.clone(),
        out: args.data.out_dir(),
        cache_dir: args.data.cache_dir.clone(),
        cold_fraction: args.data.cold_items,
        model: args.model,
    };
    let report = experiment::train_command(&config, &options)?;
    println!(
        "{}: best epoch {} of {}, {} steps, {:.0} s; checkpoint in {}",
        args.model.name(),
        report.best_epoch,
        report.curve.len(),
        report.steps,
        report.seconds,
        options.out.display()
    );
    Ok(())
}

fn eval(mut config: Config, args: EvalArgs) -> Result<()> {
    apply_model_dir(&mut config, &args.data.model_dir);
    let options = experiment::EvalOptions {
        dataset: args.data.dataset.clone(),
        out: args.data.out_dir(),
        cache_dir: args.data.cache_dir.clone(),
        cold_fraction: args.data.cold_items,
        models: args.model.clone(),
        command: command_line(),
    };
    let results = experiment::eval_command(&config, &options)?;
    println!("{}", learn_stream::eval::report::markdown(&results));
    println!(
        "written: {}/{{results.json,report.md,training.svg}}",
        options.out.display()
    );
    Ok(())
}

fn replay(config: Config, args: ReplayArgs) -> Result<()> {
    let serve_url = (!args.no_eval).then(|| {
        args.serve_url
            .clone()
            .unwrap_or_else(|| format!("http://{}", config.serving.addr))
    });
    let options = learn_stream::replay::ReplayOptions {
        dataset: args.dataset,
        speed: args.speed,
        max_rate: args.max_rate,
        limit: args.limit,
        serve_url,
        eval_every: args.eval_every,
        window: args.window,
        out: args.out,
    };
    let report = learn_stream::replay::run(&config, &options)?;
    learn_stream::replay::write(&report, options.window, &options.out)?;
    println!(
        "{}",
        learn_stream::replay::markdown(&report, options.window)
    );
    println!(
        "written: {}/{{replay.json,replay.md,replay.svg}}",
        options.out.display()
    );
    Ok(())
}

fn loadgen(config: Config, args: LoadArgs) -> Result<()> {
    let options = learn_stream::replay::load::LoadOptions {
        uploads_per_sec: args.uploads_per_sec,
        actions_per_sec: args.actions_per_sec,
        seconds: args.seconds,
        seed: args.seed,
    };
    let started = std::time::Instant::now();
    let (uploads, actions) = learn_stream::replay::load::run(&config, &options)?;
    println!(
        "sent {uploads} uploads and {actions} actions in {:.1} s",
        started.elapsed().as_secs_f64()
    );
    Ok(())
}

fn status(config: Config, args: StatusArgs) -> Result<()> {
    let url = args
        .url
        .unwrap_or_else(|| format!("http://{}", config.serving.addr));
    let url = format!("{}/v1/status", url.trim_end_matches('/'));
    let status: learn_stream::serving::Status = ureq::get(&url)
        .call()
        .with_context(|| format!("GET {url} (is `learn serve` running there?)"))?
        .body_mut()
        .read_json()
        .with_context(|| format!("reading {url}"))?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&status)?);
        return Ok(());
    }
    let role = if status.leading {
        "trainer (leader)"
    } else {
        "follower"
    };
    println!(
        "instance        {} — {role}, up {:.0} s",
        status.instance, status.uptime_secs
    );
    println!(
        "model           version {}, last checkpoint {}",
        status.model_version,
        status
            .checkpoint_age_secs
            .map_or("never".into(), |a| format!("{a:.0} s ago"))
    );
    println!(
        "training        {} steps, loss {}, {} users pending, batch limit {}",
        status.train_steps,
        status.train_loss.map_or("-".into(), |l| format!("{l:.4}")),
        status.pending_users,
        status.train_batch_limit
    );
    println!(
        "ingest          {} events ({:.1}/s average), {} actions applied, {} items embedded (embed batch limit {})",
        status.events_received,
        status.events_per_sec,
        status.actions_applied,
        status.items_embedded,
        status.embed_batch_limit
    );
    println!("catalogue       {} items", status.catalogue_items);
    println!("dead letters    {:?}", status.dead_letters);
    println!("consumer lag    (messages behind, per partition)");
    for (topic, partitions) in &status.lag {
        let total: i64 = partitions.values().sum();
        let each: Vec<String> = partitions
            .iter()
            .map(|(p, l)| format!("p{p}={l}"))
            .collect();
        println!("  {topic:<20} {total:>8}   {}", each.join(" "));
    }
    Ok(())
}

fn inspect(config: Config, path: Option<PathBuf>) -> Result<()> {
    use learn_stream::checkpoint::{read_manifest, CheckpointDir};
    let path = path.unwrap_or_else(|| config.online.checkpoint_dir.clone());
    let dirs = if path.join("manifest.json").exists() {
        vec![path.clone()]
    } else {
        CheckpointDir::new(&path, usize::MAX)
            .list()?
            .into_iter()
            .map(|(_, p)| p)
            .collect()
    };
    if dirs.is_empty() {
        bail!("no checkpoints under {}", path.display());
    }
    for dir in dirs {
        let manifest = read_manifest(&dir)?;
        let size = std::fs::metadata(dir.join("state.safetensors"))
            .map(|m| m.len())
            .unwrap_or(0);
        println!(
            "{}  ({} bytes of state)\n{}",
            dir.display(),
            size,
            serde_json::to_string_pretty(&manifest)?
        );
    }
    Ok(())
}

fn main() -> Result<()> {
    hold_freed_memory();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| "info,rdkafka=warn".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    let cli = Cli::parse();
    let config = Config::load(cli.config.as_deref())?;
    match cli.command {
        Command::Embed(args) => embed(config, args),
        Command::BenchEncoder(args) => bench_encoder(config, args),
        Command::Train(args) => train(config, args),
        Command::Eval(args) => eval(config, args),
        Command::Serve(args) => tokio::runtime::Runtime::new()?.block_on(serve(config, args)),
        Command::Demo(args) => tokio::runtime::Runtime::new()?.block_on(run_demo(config, args)),
        Command::Replay(args) => replay(config, args),
        Command::Status(args) => status(config, args),
        Command::Loadgen(args) => loadgen(config, args),
        Command::Checkpoint(CheckpointCommand::Inspect { path }) => inspect(config, path),
    }
}
