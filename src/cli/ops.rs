//! `learn status` (a running service at a glance) and `learn checkpoint inspect`.

use std::path::PathBuf;

use anyhow::{bail, Context, Result};
use clap::{Args, Subcommand};
use learn_stream::config::Config;

#[derive(Args)]
pub struct StatusArgs {
    /// The service's HTTP API. Default: http://<serving.addr>.
    #[arg(long)]
    pub url: Option<String>,
    /// Print the raw JSON.
    #[arg(long)]
    pub json: bool,
}

#[derive(Subcommand)]
pub enum CheckpointCommand {
    /// Print the manifests of a checkpoint directory (one version) or of all versions under it.
    Inspect {
        /// A checkpoint (v00000012/) or the directory holding them. Default: online.checkpoint_dir.
        path: Option<PathBuf>,
    },
}

pub fn status(config: Config, args: StatusArgs) -> Result<()> {
    let url = args
        .url
        .unwrap_or_else(|| format!("http://{}", config.serving.addr));
    let url = format!("{}/v1/status", url.trim_end_matches('/'));
    let mut request = ureq::get(&url);
    if let Some(token) = &config.serving.auth_token {
        request = request.header("Authorization", format!("Bearer {}", token.expose()));
    }
    let status: learn_stream::service::Status = request
        .call()
        .with_context(|| format!("GET {url} (is `learn serve` running there?)"))?
        .body_mut()
        .read_json()
        .with_context(|| format!("reading {url}"))?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&status)?);
        return Ok(());
    }
    print!("{status}");
    Ok(())
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
