//! Where logs go: `RUST_LOG` (default: info, rdkafka at warn) on stderr. `learn demo` tells a
//! story on the terminal, so there the screen shows warnings and errors but not one line per
//! dead-lettered event (the demo prints their one-line summary), and every line goes to
//! [`demo_log`] as well; with `RUST_LOG` set, the screen follows it.

use std::path::PathBuf;

use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{EnvFilter, Layer};

const DEFAULT: &str = "info,rdkafka=warn";

/// The demo's full log.
pub fn demo_log() -> PathBuf {
    std::env::temp_dir().join("learn-demo.log")
}

pub fn init(demo: bool) {
    let from_env = || EnvFilter::try_from_default_env().ok();
    if !demo {
        tracing_subscriber::fmt()
            .with_env_filter(from_env().unwrap_or_else(|| DEFAULT.into()))
            .with_writer(std::io::stderr)
            .init();
        return;
    }
    let screen =
        from_env().unwrap_or_else(|| "warn,rdkafka=warn,learn_stream::metrics::event=error".into());
    let file = std::fs::File::create(demo_log()).ok();
    let full = file.map(|file| {
        tracing_subscriber::fmt::layer()
            .with_ansi(false)
            .with_writer(std::sync::Mutex::new(file))
            .with_filter(from_env().unwrap_or_else(|| DEFAULT.into()))
    });
    tracing_subscriber::registry()
        .with(
            tracing_subscriber::fmt::layer()
                .with_writer(std::io::stderr)
                .with_filter(screen),
        )
        .with(full)
        .init();
}
