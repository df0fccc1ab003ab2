//! `learn status` (a running service at a glance), `learn checkpoint inspect` and `learn
//! checkpoint import` (a `learn train` run as version 1 of a new online lineage).

use std::path::PathBuf;

use anyhow::{bail, Context, Result};
use clap::{Args, Subcommand};
use learn_stream::config::Config;
use learn_stream::service::status::share;
use learn_stream::service::Status;

#[derive(Args)]
pub struct StatusArgs {
    /// The service's HTTP API. Default: http://<serving.addr>.
    #[arg(long)]
    pub url: Option<String>,
    /// Print the raw JSON.
    #[arg(long)]
    pub json: bool,
    /// Refresh in place every SECS seconds (default 2) with rates over the interval and freshness
    /// percentiles, until Ctrl-C.
    #[arg(long, value_name = "SECS", num_args = 0..=1, default_missing_value = "2")]
    pub watch: Option<f64>,
}

#[derive(Subcommand)]
pub enum CheckpointCommand {
    /// Print the manifests of a checkpoint directory (one version) or of all versions under it.
    Inspect {
        /// A checkpoint (v00000012/) or the directory holding them. Default: online.checkpoint_dir.
        path: Option<PathBuf>,
    },
    /// Start a new online lineage from a `learn train` run: check it against this configuration
    /// ([towers], the encoder's id, prefix and width) and write it as version 1 into the
    /// checkpoint directory, where `learn serve`'s trainer restores (and publishes) it.
    Import {
        /// The `learn train --out` directory (learn.json + learn.safetensors).
        run: PathBuf,
        /// The checkpoint directory to write into (must hold no version yet). Default:
        /// online.checkpoint_dir.
        #[arg(long)]
        dir: Option<PathBuf>,
    },
}

pub fn status(config: Config, args: StatusArgs) -> Result<()> {
    let base = args
        .url
        .unwrap_or_else(|| format!("http://{}", config.serving.addr));
    let base = base.trim_end_matches('/').to_string();
    let get = |path: &str| -> Result<ureq::Body> {
        let url = format!("{base}{path}");
        let mut request = ureq::get(&url);
        if let Some(auth) = config.serving.authorization() {
            request = request.header("Authorization", auth);
        }
        Ok(request
            .call()
            .with_context(|| format!("GET {url} (is `learn serve` running there?)"))?
            .into_body())
    };
    let read = || -> Result<Status> {
        get("/v1/status")?
            .read_json()
            .with_context(|| format!("reading {base}/v1/status"))
    };
    let Some(every) = args.watch else {
        let status = read()?;
        if args.json {
            println!("{}", serde_json::to_string_pretty(&status)?);
        } else {
            print!("{status}");
            let metrics = get("/metrics")?.read_to_string().unwrap_or_default();
            println!(
                "freshness (upload → aligned embedding in Redis): {}",
                freshness(&metrics)
            );
        }
        return Ok(());
    };
    let every = std::time::Duration::from_secs_f64(every.max(0.2));
    let mut previous = read()?;
    loop {
        std::thread::sleep(every);
        let status = read()?;
        let seconds = (status.uptime_secs - previous.uptime_secs).max(1e-9);
        let rate = |now: u64, before: u64| now.saturating_sub(before) as f64 / seconds;
        let metrics = get("/metrics")?.read_to_string().unwrap_or_default();
        // Clear the screen and go home, then one frame.
        print!("\x1b[2J\x1b[H{status}");
        println!(
            "over the last {seconds:.1} s: {:.0} events/s, {:.0} actions/s, {:.1} items/s, {:.2} steps/s, {:.0} training pairs/s, actions trained on: {}",
            rate(status.events_received, previous.events_received),
            rate(status.actions_applied, previous.actions_applied),
            rate(status.items_embedded, previous.items_embedded),
            rate(status.train_steps, previous.train_steps),
            rate(status.train_pairs, previous.train_pairs),
            share(
                status.train_actions.saturating_sub(previous.train_actions),
                status.actions_applied.saturating_sub(previous.actions_applied)
            ),
        );
        println!(
            "freshness (upload → aligned embedding in Redis): {}",
            freshness(&metrics)
        );
        previous = status;
    }
}

/// Freshness percentiles (from `learn_freshness_seconds`'s buckets) and where the time goes (the
/// median of each `learn_freshness_stage_seconds` stage), in milliseconds.
fn freshness(metrics: &str) -> String {
    use learn_stream::metrics::exposition::{buckets, percentiles_ms, quantile};
    use learn_stream::metrics::Stage;
    let Some(total) = percentiles_ms(&buckets(metrics, "learn_freshness_seconds", &[])) else {
        return "no uploads yet".into();
    };
    let stages: Vec<String> = Stage::ALL
        .iter()
        .filter_map(|stage| {
            let series = buckets(
                metrics,
                "learn_freshness_stage_seconds",
                &[("stage", stage.as_str())],
            );
            let ms = |q| quantile(&series, q).map(|s| s * 1000.0);
            Some(format!(
                "{} {:.0}/{:.0}",
                stage.as_str(),
                ms(0.5)?,
                ms(0.99)?
            ))
        })
        .collect();
    format!("{total}; stages p50/p99 ms: {}", stages.join(", "))
}

pub fn inspect(config: Config, path: Option<PathBuf>) -> Result<()> {
    use learn_stream::checkpoint::{is_checkpoint, read_manifest, state_size, CheckpointDir};
    let path = path.unwrap_or_else(|| config.online.checkpoint_dir.clone());
    let dirs = if is_checkpoint(&path) {
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
        println!(
            "{}  ({} bytes of state)\n{}",
            dir.display(),
            state_size(&dir),
            serde_json::to_string_pretty(&manifest)?
        );
    }
    Ok(())
}

pub fn import(config: Config, run: PathBuf, dir: Option<PathBuf>) -> Result<()> {
    use learn_stream::checkpoint::CheckpointDir;
    use learn_stream::encode::ContentEncoder;
    use learn_stream::service::{warm_start, EncoderIdentity};
    let encoder = ContentEncoder::from_config(&config.encoder)
        .with_context(|| format!("loading the encoder {}", config.encoder.model_dir.display()))?;
    let identity = EncoderIdentity {
        model_id: encoder.model_id(),
        prefix: encoder.prefix(),
        dim: encoder.dim(),
    };
    let checkpoint = warm_start(&run, &config.towers, &config.training, &identity)?;
    let dir = dir.unwrap_or_else(|| config.online.checkpoint_dir.clone());
    let checkpoints = CheckpointDir::new(&dir, config.online.keep_checkpoints);
    if let Some((version, _)) = checkpoints.list()?.last() {
        bail!(
            "{} already holds version {version}: an import starts a new lineage; give an empty --dir (and a fresh Redis key_prefix), or retire the old lineage first",
            dir.display()
        );
    }
    let written = checkpoints.write(&checkpoint)?;
    println!(
        "imported {} as version 1 into {} ({} tensors; AdamW's moments start fresh)",
        run.display(),
        written.dir.display(),
        checkpoint.weights.len()
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn freshness_reads_the_histograms() {
        let metrics = "learn_freshness_seconds_bucket{le=\"0.05\"} 50\n\
            learn_freshness_seconds_bucket{le=\"0.1\"} 100\n\
            learn_freshness_seconds_bucket{le=\"+Inf\"} 100\n\
            learn_freshness_stage_seconds_bucket{stage=\"encode\",le=\"0.02\"} 100\n\
            learn_freshness_stage_seconds_bucket{stage=\"encode\",le=\"+Inf\"} 100\n";
        assert_eq!(
            freshness(metrics),
            "p50 50 ms, p90 90 ms, p99 99 ms; stages p50/p99 ms: encode 10/20"
        );
        assert_eq!(freshness(""), "no uploads yet");
    }
}
