//! `learn replay` (a timestamped dataset into Kafka, with prequential evaluation) and `learn loadgen`.

use std::path::PathBuf;

use anyhow::Result;
use clap::Args;
use learn_stream::config::Config;

#[derive(Args)]
pub struct ReplayArgs {
    /// MovieLens 100K directory (u.item, u.genre, u.data).
    #[arg(long)]
    pub dataset: PathBuf,
    /// Event-time seconds replayed per wall-clock second.
    #[arg(long, default_value_t = 1e6)]
    pub speed: f64,
    /// Most events produced per second (0 = no cap).
    #[arg(long, default_value_t = 300.0)]
    pub max_rate: f64,
    /// Replay only the first N events (0 = all).
    #[arg(long, default_value_t = 0)]
    pub limit: usize,
    /// The service's HTTP API; prequential evaluation needs it. Default: http://<serving.addr>.
    #[arg(long)]
    pub serve_url: Option<String>,
    /// Produce only, no evaluation.
    #[arg(long)]
    pub no_eval: bool,
    /// Evaluate every Nth action.
    #[arg(long, default_value_t = 5)]
    pub eval_every: usize,
    /// Probes per point of the recall-over-time curve.
    #[arg(long, default_value_t = 500)]
    pub window: usize,
    /// Where replay.json, replay.md and replay.svg / replay.png go.
    #[arg(long, default_value = "runs/replay")]
    pub out: PathBuf,
    /// Where the history ends: a fraction of the events (0.5) or a Unix time in seconds. The
    /// events before it are produced first, unevaluated and unpaced; the rest is streamed and
    /// evaluated test-then-train.
    #[arg(long, value_parser = learn_stream::replay::SplitPoint::parse)]
    pub split: Option<learn_stream::replay::SplitPoint>,
    /// Write the history before --split as a canonical dataset (items.jsonl, interactions.csv)
    /// into this directory for `learn train`, and exit without producing anything.
    #[arg(long, requires = "split")]
    pub export: Option<PathBuf>,
    /// A second service on the same topics (its own consumer group, keys and checkpoints) that
    /// trains from scratch: its online model is evaluated as one more arm.
    #[arg(long)]
    pub scratch_url: Option<String>,
}

#[derive(Args)]
pub struct LoadArgs {
    /// Item uploads produced per second (synthetic items, keyed by item id).
    #[arg(long, default_value_t = 20.0)]
    pub uploads_per_sec: f64,
    /// User actions produced per second (on the items uploaded so far, keyed by user id).
    #[arg(long, default_value_t = 500.0)]
    pub actions_per_sec: f64,
    /// How long to produce, in seconds.
    #[arg(long, default_value_t = 60.0)]
    pub seconds: f64,
    /// Seed of the synthetic stream (same seed, same events).
    #[arg(long, default_value_t = 7)]
    pub seed: u64,
    /// First publish this many random content vectors (`bulk-<n>`) to the catalogue changelog: a large
    /// catalogue for serving benchmarks.
    #[arg(long, default_value_t = 0)]
    pub catalogue: usize,
    /// Width of those vectors (the encoder's: 384 for MiniLM-L6).
    #[arg(long, default_value_t = 384)]
    pub catalogue_dim: usize,
    /// Also measure freshness from outside: poll Redis for each upload's aligned embedding and
    /// print produce → readable percentiles.
    #[arg(long)]
    pub probe: bool,
    /// Also print how many records the service wrote to its output topics during the run
    /// (catalogue changelog, item-embeddings, user-embeddings; high watermarks before and after).
    #[arg(long)]
    pub topic_growth: bool,
}

pub fn replay(config: Config, args: ReplayArgs) -> Result<()> {
    if let (Some(dir), Some(split)) = (&args.export, args.split) {
        let written = learn_stream::replay::export_history(&args.dataset, split, args.limit, dir)?;
        println!(
            "history before the split: {} items, {} interactions -> {}/{{items.jsonl,interactions.csv}}",
            written.items,
            written.interactions,
            dir.display()
        );
        return Ok(());
    }
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
        split: args.split,
        scratch_url: args.scratch_url,
    };
    let report = learn_stream::replay::run(&config, &options)?;
    learn_stream::replay::write(&report, options.window, &options.out)?;
    println!(
        "{}",
        learn_stream::replay::markdown(&report, options.window)
    );
    println!(
        "written: {}/{{replay.json,replay.md,replay.svg,replay.png}}",
        options.out.display()
    );
    Ok(())
}

pub fn loadgen(config: Config, args: LoadArgs) -> Result<()> {
    use learn_stream::loadgen::probe::FreshnessProbe;
    let options = learn_stream::loadgen::LoadOptions {
        uploads_per_sec: args.uploads_per_sec,
        actions_per_sec: args.actions_per_sec,
        seconds: args.seconds,
        seed: args.seed,
    };
    if args.catalogue > 0 {
        let started = std::time::Instant::now();
        tokio::runtime::Runtime::new()?.block_on(async {
            let publisher = learn_stream::publish::EmbeddingPublisher::new(
                learn_stream::kafka::producer(&config.kafka)?,
                config.kafka.catalogue_topic.clone(),
            );
            learn_stream::loadgen::seed_catalogue(
                &publisher,
                args.catalogue,
                args.catalogue_dim,
                args.seed,
            )
            .await
        })?;
        println!(
            "wrote {} catalogue items in {:.1} s",
            args.catalogue,
            started.elapsed().as_secs_f64()
        );
    }
    let outputs = [
        &config.kafka.catalogue_topic,
        &config.kafka.item_embeddings_topic,
        &config.kafka.user_embeddings_topic,
    ];
    let written = || -> Result<Vec<i64>> {
        outputs
            .iter()
            .map(|t| Ok(learn_stream::kafka::records_written(&config.kafka, t)?))
            .collect()
    };
    let before = args.topic_growth.then(written).transpose()?;
    let started = std::time::Instant::now();
    let probe = args
        .probe
        .then(|| FreshnessProbe::start(&config, std::time::Duration::from_secs(10)));
    let (uploads, actions) = learn_stream::loadgen::run(&config, &options, probe.as_ref())?;
    println!(
        "sent {uploads} uploads and {actions} actions in {:.1} s",
        started.elapsed().as_secs_f64()
    );
    if let Some(before) = before {
        let grown: Vec<String> = outputs
            .iter()
            .zip(written()?.iter().zip(&before))
            .map(|(topic, (after, before))| format!("{topic} +{}", after - before))
            .collect();
        println!("records written during the run: {}", grown.join(", "));
    }
    if let Some(probe) = probe {
        let report = probe.finish()?;
        let ms = |q| {
            report
                .quantile_ms(q)
                .map_or("-".into(), |v| format!("{v:.0} ms"))
        };
        println!(
            "external probe (upload produced → aligned embedding readable in Redis, {} uploads, {} never appeared): p50 {}, p90 {}, p99 {}, max {}",
            report.latencies.len(),
            report.missing,
            ms(0.5),
            ms(0.9),
            ms(0.99),
            ms(1.0)
        );
    }
    Ok(())
}
