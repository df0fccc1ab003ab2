//! A synthetic short-video stream: creators upload items over time, users with a few favourite
//! categories act on items already uploaded (mostly on their favourites), and a small fraction of
//! events is malformed on purpose to exercise the dead-letter path.

use rand::rngs::StdRng;
use rand::seq::IndexedRandom;
use rand::{Rng, SeedableRng};

use super::{Outgoing, Topic};
use crate::schemas::{Action, ItemUpload, UserAction};

#[derive(Debug, Clone)]
pub struct SyntheticOptions {
    pub items: usize,
    pub users: usize,
    pub actions: usize,
    /// Fraction of events replaced by malformed ones.
    pub bad_fraction: f64,
    pub seed: u64,
}

const CATEGORIES: [(&str, &[&str]); 8] = [
    (
        "Cooking",
        &[
            "ramen",
            "sourdough",
            "dumplings",
            "curry",
            "tacos",
            "pancakes",
        ],
    ),
    (
        "Fitness",
        &[
            "kettlebell",
            "yoga flow",
            "HIIT",
            "marathon",
            "deadlift",
            "stretching",
        ],
    ),
    (
        "Gaming",
        &[
            "speedrun",
            "boss fight",
            "Minecraft build",
            "esports final",
            "retro console",
            "RPG",
        ],
    ),
    (
        "Music",
        &[
            "guitar cover",
            "piano",
            "drum solo",
            "a cappella",
            "beat making",
            "violin",
        ],
    ),
    (
        "Travel",
        &[
            "Kyoto",
            "Iceland road trip",
            "night market",
            "Alps hike",
            "island hopping",
            "desert camp",
        ],
    ),
    (
        "Pets",
        &[
            "golden retriever",
            "kitten",
            "parrot",
            "corgi",
            "hamster",
            "rescue dog",
        ],
    ),
    (
        "Comedy",
        &[
            "prank",
            "stand-up",
            "sketch",
            "parody",
            "bloopers",
            "impressions",
        ],
    ),
    (
        "Science",
        &[
            "chemistry demo",
            "telescope",
            "robot",
            "volcano model",
            "physics trick",
            "microscope",
        ],
    ),
];
const ADJECTIVES: [&str; 8] = [
    "Amazing",
    "Quick",
    "Beginner",
    "Epic",
    "Relaxing",
    "Daily",
    "Ultimate",
    "Hilarious",
];
const FORMATS: [&str; 6] = [
    "in 60 seconds",
    "challenge",
    "tutorial",
    "vlog",
    "tips",
    "reaction",
];
/// (action, weight): views dominate, as on short-video platforms.
const ACTIONS: [(Action, u32); 8] = [
    (Action::View, 50),
    (Action::Click, 15),
    (Action::Complete, 12),
    (Action::Like, 10),
    (Action::Skip, 8),
    (Action::Share, 2),
    (Action::Comment, 2),
    (Action::Follow, 1),
];
const START_MS: i64 = 1_767_225_600_000; // 2026-01-01

fn upload(rng: &mut StdRng, id: usize, ts_ms: i64) -> ItemUpload {
    let (category, nouns) = CATEGORIES[id % CATEGORIES.len()];
    let noun = nouns.choose(rng).expect("non-empty");
    let title = format!(
        "{} {noun} {}",
        ADJECTIVES.choose(rng).expect("non-empty"),
        FORMATS.choose(rng).expect("non-empty")
    );
    ItemUpload {
        item_id: format!("v{id}"),
        title,
        description: rng
            .random_bool(0.3)
            .then(|| format!("All about {noun}. Follow for more {category}!")),
        tags: vec![category.to_lowercase(), noun.replace(' ', "")],
        category: Some(category.to_string()),
        brand: None,
        author_id: Some(format!("creator{}", rng.random_range(0..200))),
        ts_ms,
    }
}

fn pick_action(rng: &mut StdRng) -> Action {
    ACTIONS
        .choose_weighted(rng, |(_, w)| *w)
        .expect("weights are positive")
        .0
}

fn malformed(rng: &mut StdRng, ts_ms: i64) -> Outgoing {
    let (topic, payload) = match rng.random_range(0..4) {
        0 => (Topic::Actions, "{\"event_id\": \"broken".to_string()),
        1 => (
            Topic::Actions,
            format!(
                r#"{{"event_id":"bad-{ts_ms}","user_id":"u1","item_id":"v0","action":"teleport","ts_ms":{ts_ms}}}"#
            ),
        ),
        2 => (
            Topic::Actions,
            format!(r#"{{"event_id":"bad-{ts_ms}","user_id":"u1","ts_ms":{ts_ms}}}"#),
        ),
        _ => (
            Topic::Items,
            format!(r#"{{"item_id":"bad-{ts_ms}","title":"   ","ts_ms":{ts_ms}}}"#),
        ),
    };
    Outgoing::Malformed {
        topic,
        key: format!("bad-{ts_ms}"),
        payload: payload.into_bytes(),
        ts_ms,
    }
}

/// A time-ordered stream of uploads and actions.
pub fn synthetic_stream(options: &SyntheticOptions) -> Vec<Outgoing> {
    let mut rng = StdRng::seed_from_u64(options.seed);
    let favourites: Vec<[usize; 2]> = (0..options.users)
        .map(|_| {
            [
                rng.random_range(0..CATEGORIES.len()),
                rng.random_range(0..CATEGORIES.len()),
            ]
        })
        .collect();
    // A fifth of the catalogue exists up front; the rest is uploaded while users are active.
    let initial = (options.items / 5).max(1).min(options.items);
    let total = options.items - initial + options.actions;
    let mut out = Vec::with_capacity(options.items + options.actions);
    let mut uploaded = 0;
    let mut ts = START_MS;
    let push_upload = |rng: &mut StdRng, id: usize, ts: i64, out: &mut Vec<Outgoing>| {
        out.push(Outgoing::Upload(upload(rng, id, ts)));
    };
    while uploaded < initial {
        push_upload(&mut rng, uploaded, ts, &mut out);
        uploaded += 1;
    }
    let mut actions_left = options.actions;
    for _ in 0..total {
        ts += rng.random_range(1..500);
        if rng.random_bool(options.bad_fraction.clamp(0.0, 1.0)) {
            out.push(malformed(&mut rng, ts));
            continue;
        }
        let uploads_left = options.items - uploaded;
        if uploads_left > 0
            && (actions_left == 0
                || rng.random_range(0..uploads_left + actions_left) < uploads_left)
        {
            push_upload(&mut rng, uploaded, ts, &mut out);
            uploaded += 1;
            continue;
        }
        actions_left = actions_left.saturating_sub(1);
        let user = rng.random_range(0..options.users);
        let category = if rng.random_bool(0.8) {
            *favourites[user].choose(&mut rng).expect("two")
        } else {
            rng.random_range(0..CATEGORIES.len())
        };
        // Items of a category are ids ≡ category (mod 8); pick one already uploaded.
        let per_category = uploaded
            .saturating_sub(category)
            .div_ceil(CATEGORIES.len())
            .max(1);
        let item =
            (rng.random_range(0..per_category) * CATEGORIES.len() + category).min(uploaded - 1);
        let action = UserAction {
            // Unique per seed: two runs with different seeds are different events.
            event_id: format!("s{}-e{}", options.seed, out.len()),
            user_id: format!("u{user}"),
            item_id: format!("v{item}"),
            action: pick_action(&mut rng),
            ts_ms: ts,
            watch_ms: Some(rng.random_range(500..60_000)),
        };
        out.push(Outgoing::Action(action));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::schemas::{Decode, Limits};

    #[test]
    fn actions_only_reference_uploaded_items_and_bad_events_are_bad() {
        let options = SyntheticOptions {
            items: 50,
            users: 10,
            actions: 500,
            bad_fraction: 0.05,
            seed: 7,
        };
        let stream = synthetic_stream(&options);
        let limits = Limits {
            max_text_bytes: 16_384,
        };
        let mut seen_items = std::collections::HashSet::new();
        let (mut bad, mut actions) = (0, 0);
        for o in &stream {
            let payload = o.payload();
            match o.topic() {
                Topic::Items => match ItemUpload::decode(Some(&payload), &limits) {
                    Ok(item) => {
                        seen_items.insert(item.item_id);
                    }
                    Err(_) => bad += 1,
                },
                Topic::Actions => match UserAction::decode(Some(&payload), &limits) {
                    Ok(a) => {
                        actions += 1;
                        assert!(
                            seen_items.contains(&a.item_id),
                            "{} acted on before upload",
                            a.item_id
                        );
                    }
                    Err(_) => bad += 1,
                },
            }
        }
        assert!(bad > 0 && bad < stream.len() / 5, "bad = {bad}");
        assert_eq!(seen_items.len() + actions + bad, stream.len());
        assert_eq!(
            stream,
            synthetic_stream(&options),
            "deterministic for a seed"
        );
    }
}
