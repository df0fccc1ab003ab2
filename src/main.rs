//! The `learn` binary: a dispatcher over the command families in `cli/` (anyhow errors, logging
//! set-up, the allocator).

mod cli;

use std::path::PathBuf;

use anyhow::Result;
use clap::{Parser, Subcommand};
use learn_stream::config::Config;

use cli::{encoder, ingest, model, offline, ops, run, stream};

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
    Serve(cli::ModelArgs),
    /// Run the whole path in one process with no servers (mock Kafka cluster, in-process store).
    Demo(run::DemoArgs),
    /// Print the frozen encoder's embedding of texts as JSON lines.
    Embed(encoder::EmbedArgs),
    /// Measure the frozen encoder's throughput (items/s) per batch size as JSON lines
    /// (`scripts/bench-encoder.sh` runs it beside the onnxruntime reference).
    BenchEncoder(encoder::BenchEncoderArgs),
    /// Train the towers (LEARN or the SASRec baseline) offline on a dataset.
    Train(offline::TrainArgs),
    /// Evaluate models on a dataset's test split (leave-one-out, full ranking) and write a report.
    Eval(offline::EvalArgs),
    /// Produce a timestamped dataset (MovieLens 100K) into Kafka in time order while a running
    /// `learn serve` learns, with prequential evaluation against popularity and the frozen model.
    Replay(stream::ReplayArgs),
    /// Produce a steady synthetic load (uploads and actions at fixed rates) for measuring a service.
    Loadgen(stream::LoadArgs),
    /// Measure the service's ingest rate and CPU cost against a bare consumer and redis-benchmark.
    BenchIngest(ingest::IngestArgs),
    /// Print a running service's state at a glance: lag per partition, rates, model, checkpoint.
    Status(ops::StatusArgs),
    /// Work with checkpoints.
    #[command(subcommand)]
    Checkpoint(ops::CheckpointCommand),
    /// Work with the published model lineage.
    #[command(subcommand)]
    Model(model::ModelCommand),
}

fn main() -> Result<()> {
    hold_freed_memory();
    let cli = Cli::parse();
    cli::logging::init(matches!(cli.command, Command::Demo(_)));
    let config = Config::load(cli.config.as_deref())?;
    match cli.command {
        Command::Embed(args) => encoder::embed(config, args),
        Command::BenchEncoder(args) => encoder::bench_encoder(config, args),
        Command::Train(args) => offline::train(config, args),
        Command::Eval(args) => offline::eval(config, args),
        Command::Serve(args) => tokio::runtime::Runtime::new()?.block_on(run::serve(config, args)),
        Command::Demo(args) => tokio::runtime::Runtime::new()?.block_on(run::demo(config, args)),
        Command::Replay(args) => stream::replay(config, args),
        Command::Status(args) => ops::status(config, args),
        Command::Loadgen(args) => stream::loadgen(config, args),
        Command::BenchIngest(args) => ingest::bench_ingest(config, args),
        Command::Checkpoint(ops::CheckpointCommand::Inspect { path }) => ops::inspect(config, path),
        Command::Checkpoint(ops::CheckpointCommand::Import { run, dir }) => {
            ops::import(config, run, dir)
        }
        Command::Model(model::ModelCommand::Reset { force, model }) => {
            tokio::runtime::Runtime::new()?.block_on(model::reset(config, force, model))
        }
    }
}
