//! The Redis side of `learn bench-ingest`: every history checked exact, bytes per history entry,
//! and `redis-benchmark`'s pipelined LPUSH on the same server.

use std::process::Command;

use anyhow::{bail, Context, Result};
use learn_stream::config::{Config, RedisConfig};
use learn_stream::store::{HistoryPolicy, RedisStore, Store};

use super::IngestArgs;

/// Every user's history holds exactly its actions, in order, once.
pub fn check_histories(
    redis: &RedisConfig,
    tag: &str,
    config: &Config,
    args: &IngestArgs,
) -> Result<()> {
    let mut redis = redis.clone();
    redis.key_prefix = format!("{tag}:");
    let policy = HistoryPolicy::from(&config.history);
    tokio::runtime::Runtime::new()?.block_on(async {
        let store = RedisStore::open(&redis, policy).await?;
        let mut wrong = 0;
        for user in 0..args.users {
            let history = store
                .history(&format!("u{user:06}"), config.history.cap)
                .await?;
            let expected: Vec<i64> = (user..args.actions)
                .step_by(args.users)
                .map(|n| 1_700_000_000_000 + n as i64)
                .collect();
            let expected = &expected[expected.len().saturating_sub(config.history.cap)..];
            let got: Vec<i64> = history.iter().map(|e| e.ts_ms).collect();
            wrong += usize::from(got != expected);
        }
        if wrong > 0 {
            bail!(
                "{wrong} of {} histories differ from the actions produced",
                args.users
            );
        }
        println!(
            "histories exact: {} users, each its actions once, in order",
            args.users
        );
        memory_per_entry(&redis.url, &redis.key_prefix, args).await
    })
}

/// Redis memory per history entry (`MEMORY USAGE` of the first 20 users' history lists and their
/// watermark hashes over their entries; layout in docs/architecture.md, "Redis layout").
async fn memory_per_entry(url: &str, prefix: &str, args: &IngestArgs) -> Result<()> {
    let client = redis::Client::open(url)?;
    let mut conn = client.get_multiplexed_async_connection().await?;
    let (mut bytes, mut entries) = (0u64, 0u64);
    for user in 0..args.users.min(20) {
        let key = format!("{prefix}h:{{u{user:06}}}");
        for key in [key.clone(), format!("{prefix}hw:{{u{user:06}}}")] {
            let usage: Option<u64> = redis::cmd("MEMORY")
                .arg("USAGE")
                .arg(&key)
                .arg("SAMPLES")
                .arg(0)
                .query_async(&mut conn)
                .await?;
            bytes += usage.unwrap_or(0);
        }
        let n: u64 = redis::cmd("LLEN").arg(&key).query_async(&mut conn).await?;
        entries += n;
    }
    println!(
        "redis memory: {:.1} bytes per history entry at {:.0} entries per user",
        bytes as f64 / entries.max(1) as f64,
        entries as f64 / args.users.clamp(1, 20) as f64
    );
    Ok(())
}

/// The Redis server's CPU time so far (`INFO cpu`: user + system seconds, all its threads).
pub fn redis_cpu_seconds(url: &str) -> Result<f64> {
    let mut conn = redis::Client::open(url)?.get_connection()?;
    let info: String = redis::cmd("INFO").arg("cpu").query(&mut conn)?;
    let field = |name: &str| -> Result<f64> {
        info.lines()
            .find_map(|l| l.strip_prefix(name)?.strip_prefix(':'))
            .with_context(|| format!("INFO cpu has no {name}: {info}"))?
            .trim()
            .parse()
            .with_context(|| format!("INFO cpu {name}"))
    };
    Ok(field("used_cpu_user")? + field("used_cpu_sys")?)
}

/// `redis-benchmark -t lpush -P 16` against the same Redis: requests per second.
pub fn redis_benchmark(url: &str) -> Result<f64> {
    use redis::ConnectionAddr;
    let client = redis::Client::open(url)?;
    let target = match client.get_connection_info().addr() {
        ConnectionAddr::Tcp(host, port) => [
            "-h".to_string(),
            host.clone(),
            "-p".into(),
            port.to_string(),
        ]
        .to_vec(),
        ConnectionAddr::Unix(path) => ["-s".to_string(), path.display().to_string()].to_vec(),
        other => bail!("redis-benchmark is run over plain TCP or a socket, not {other:?}"),
    };
    let out = Command::new("redis-benchmark")
        .args(&target)
        .args(["-t", "lpush", "-n", "1000000", "-P", "16", "-q"])
        .output()
        .context("run redis-benchmark (Debian: redis-tools)")?;
    let text = String::from_utf8_lossy(&out.stdout);
    // "LPUSH: 912408.75 requests per second, p50=…" (after carriage-return progress lines).
    let line = text.rsplit('\r').next().unwrap_or(&text);
    let rate = line
        .split_once(':')
        .and_then(|(_, rest)| rest.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .with_context(|| format!("redis-benchmark said: {text}"))?;
    Ok(rate)
}
