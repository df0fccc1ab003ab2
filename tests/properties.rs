//! Property tests.
//!
//! - Fuzzing the input edge: arbitrary bytes, and JSON-shaped mutations of valid events, through
//!   the action and upload decoders and the upload → item-text path: never a panic, every
//!   rejection has a reason and a detail, every accepted upload has a bounded item text.
//!   `LEARN_FUZZ_CASES` sets the count per property (`scripts/chaos.sh`: 1,000,000; CI: 20,000).
//! - Model-based: random sequences of action batches — with redelivered ranges (what a crash or
//!   a rebalance before the commit causes), producer resends of recent events, and batches that
//!   fail half-way and are retried whole — applied to the Redis store (a real redis-server) and to a plain in-memory model;
//!   the histories must be identical (`LEARN_MODEL_CASES` sequences, default 64).

mod common;

use std::collections::{BTreeMap, HashMap};

use learn_stream::schemas::{Action, Decode, ItemUpload, Limits, UserAction};
use learn_stream::store::{HistoryPolicy, PartitionBatch, RedisStore, Store};
use proptest::prelude::*;

const LIMITS: Limits = Limits {
    max_text_bytes: 4096,
};

/// `default` cases, or the number in the environment variable `var`.
fn cases(var: &str, default: u32) -> ProptestConfig {
    let cases = std::env::var(var)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default);
    ProptestConfig {
        cases,
        failure_persistence: None,
        ..ProptestConfig::default()
    }
}

/// Checks one payload against both decoders.
fn check_payload(payload: Option<&[u8]>) {
    match UserAction::decode(payload, &LIMITS) {
        Ok(a) => assert!(!a.user_id.is_empty() && !a.item_id.is_empty() && a.ts_ms >= 0),
        Err(r) => assert!(!r.detail.is_empty(), "{:?} without detail", r.reason),
    }
    match ItemUpload::decode(payload, &LIMITS) {
        Ok(u) => {
            let text = u.text();
            assert!(text.starts_with("Title: "));
            assert!(
                text.len() <= 4 * LIMITS.max_text_bytes,
                "{} bytes",
                text.len()
            );
        }
        Err(r) => assert!(!r.detail.is_empty(), "{:?} without detail", r.reason),
    }
}

/// A valid action or upload as JSON, then mangled: fields dropped, values swapped for other
/// JSON types, strings with control characters, numbers out of range, truncation.
fn mangled_json() -> impl Strategy<Value = Vec<u8>> {
    let value = prop_oneof![
        Just(serde_json::json!(null)),
        any::<i64>().prop_map(|n| serde_json::json!(n)),
        any::<f64>().prop_map(|n| serde_json::json!(n)),
        ".{0,40}".prop_map(|s| serde_json::json!(s)),
        Just(serde_json::json!([1, "a"])),
        Just(serde_json::json!({"x": {}})),
        Just(serde_json::json!("view")),
        Just(serde_json::json!("")),
    ];
    let fields = [
        "event_id",
        "user_id",
        "item_id",
        "action",
        "ts_ms",
        "watch_ms",
        "title",
        "description",
        "tags",
        "category",
        "brand",
        "author_id",
    ];
    (
        proptest::collection::vec((0..fields.len(), value), 0..8),
        proptest::collection::vec(0..fields.len(), 0..3),
        any::<bool>(),
        0usize..400,
    )
        .prop_map(move |(sets, drops, upload, cut)| {
            let mut event = if upload {
                serde_json::json!({"item_id": "v1", "title": "A video", "ts_ms": 5, "tags": ["a"]})
            } else {
                serde_json::json!({"event_id": "e", "user_id": "u", "item_id": "i", "action": "like", "ts_ms": 5})
            };
            let object = event.as_object_mut().unwrap();
            for (field, value) in sets {
                object.insert(fields[field].to_string(), value);
            }
            for field in drops {
                object.remove(fields[field]);
            }
            let mut bytes = serde_json::to_vec(&event).unwrap();
            if cut < bytes.len() && cut % 3 == 0 {
                bytes.truncate(cut);
            }
            bytes
        })
}

proptest! {
    #![proptest_config(cases("LEARN_FUZZ_CASES", 20_000))]

    #[test]
    fn decoders_never_panic_on_bytes(bytes in proptest::collection::vec(any::<u8>(), 0..300)) {
        check_payload(Some(&bytes));
    }

    #[test]
    fn decoders_never_panic_on_mangled_events(bytes in mangled_json()) {
        check_payload(Some(&bytes));
    }
}

#[test]
fn decoders_reject_a_tombstone_with_a_reason() {
    check_payload(None);
    assert!(UserAction::decode(None, &LIMITS).is_err());
}

/// One step of the model-based test.
#[derive(Debug, Clone)]
enum Step {
    /// The next `len` messages of `partition` (redelivering `back` already-written ones first),
    /// of which the first `fail_after` are written before the write fails and is retried whole.
    Batch {
        partition: i32,
        len: usize,
        back: usize,
        fail_after: Option<usize>,
    },
    /// A producer resends one recent event of `partition` (same event id, new offset).
    Resend { partition: i32, back: usize },
}

fn step() -> impl Strategy<Value = Step> {
    prop_oneof![
        4 => (0..3i32, 1usize..12, 0usize..8, proptest::option::of(0usize..12)).prop_map(
            |(partition, len, back, fail_after)| Step::Batch { partition, len, back, fail_after }
        ),
        1 => (0..3i32, 0usize..6).prop_map(|(partition, back)| Step::Resend { partition, back }),
    ]
}

const CAP: usize = 7;
const WINDOW: usize = 4;

/// The plain model: per partition the log of events; per user the history (capped; an event
/// among its last `WINDOW` entries is a resend); per partition the highest offset applied.
#[derive(Default)]
struct Model {
    log: BTreeMap<i32, Vec<UserAction>>,
    written: BTreeMap<i32, i64>,
    histories: HashMap<String, Vec<String>>,
    next_event: usize,
}

impl Model {
    fn new_event(&mut self, partition: i32) -> UserAction {
        self.next_event += 1;
        let n = self.next_event;
        UserAction {
            event_id: format!("e{n}"),
            user_id: format!("u{}", (n * 7 + partition as usize) % 4),
            item_id: format!("i{n}"),
            action: Action::View,
            ts_ms: 1_700_000_000_000 + n as i64,
            watch_ms: None,
        }
    }

    /// What a correct store does with `offset` of `partition`.
    fn apply(&mut self, partition: i32, offset: i64) {
        if offset <= *self.written.get(&partition).unwrap_or(&-1) {
            return;
        }
        self.written.insert(partition, offset);
        let a = self.log[&partition][offset as usize].clone();
        let history = self.histories.entry(a.user_id.clone()).or_default();
        if history[history.len().saturating_sub(WINDOW)..].contains(&a.item_id) {
            return;
        }
        history.push(a.item_id.clone());
        if history.len() > CAP {
            history.remove(0);
        }
    }
}

fn batch(model: &Model, partition: i32, offsets: std::ops::Range<i64>) -> PartitionBatch {
    PartitionBatch {
        topic: "actions".into(),
        partition,
        read_up_to: offsets.end - 1,
        actions: offsets
            .map(|o| (o, model.log[&partition][o as usize].clone()))
            .collect(),
    }
}

#[test]
fn redis_histories_match_a_plain_model_under_replays_resends_and_retries() {
    let Some(url) = common::redis() else {
        return;
    };
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let config = cases("LEARN_MODEL_CASES", 64);
    let sequences = config.cases;
    let mut runner = proptest::test_runner::TestRunner::new(config);
    runner
        .run(&proptest::collection::vec(step(), 1..40), |steps| {
            runtime.block_on(async {
                let policy = HistoryPolicy {
                    cap: CAP,
                    ttl_ms: 0,
                    dedupe_window: WINDOW,
                };
                let prefix = format!("{}:", common::unique("model"));
                let store = RedisStore::connect(&url, &prefix, policy).await.unwrap();
                let mut model = Model::default();
                for step in steps {
                    match step {
                        Step::Batch {
                            partition,
                            len,
                            back,
                            fail_after,
                        } => {
                            let log_len = model.log.get(&partition).map_or(0, Vec::len);
                            for _ in 0..len {
                                let a = model.new_event(partition);
                                model.log.entry(partition).or_default().push(a);
                            }
                            let end = (log_len + len) as i64;
                            let start = (log_len.saturating_sub(back)) as i64;
                            if let Some(k) = fail_after {
                                // A write that got through part of the batch before failing:
                                // the source retries the whole batch.
                                let cut = (start + k as i64).min(end);
                                if cut > start {
                                    store
                                        .apply_actions(&batch(&model, partition, start..cut))
                                        .await
                                        .unwrap();
                                }
                            }
                            store
                                .apply_actions(&batch(&model, partition, start..end))
                                .await
                                .unwrap();
                            for o in start..end {
                                model.apply(partition, o);
                            }
                        }
                        Step::Resend { partition, back } => {
                            let Some(log) = model.log.get(&partition).filter(|l| !l.is_empty())
                            else {
                                continue;
                            };
                            let original = log[log.len().saturating_sub(back + 1)].clone();
                            let offset = log.len() as i64;
                            model.log.get_mut(&partition).unwrap().push(original);
                            store
                                .apply_actions(&batch(&model, partition, offset..offset + 1))
                                .await
                                .unwrap();
                            model.apply(partition, offset);
                        }
                    }
                }
                for user in 0..4 {
                    let user = format!("u{user}");
                    let got: Vec<String> = store
                        .history(&user, 100)
                        .await
                        .unwrap()
                        .into_iter()
                        .map(|e| e.item_id)
                        .collect();
                    let want = model.histories.get(&user).cloned().unwrap_or_default();
                    prop_assert_eq!(got, want, "history of {}", user);
                }
                Ok(())
            })
        })
        .unwrap();
    eprintln!("chaos|model-based store|random replays, resends, partial writes retried whole|{sequences} random sequences of ≤ 40 batches|0|0");
}
