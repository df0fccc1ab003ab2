//! The JSON Schemas in `schemas/` and the Rust types agree: every sample in
//! `tests/fixtures/samples/` is accepted by both or rejected by both; the example events and
//! dataset of `schemas/examples/` are valid, and the dataset's item texts are the service's.

use std::path::Path;

use learn_stream::schemas::{
    DeadLetter, Decode, ItemEmbedding, ItemUpload, Limits, UserAction, UserEmbedding,
};
use serde_json::Value;

fn schema(name: &str) -> jsonschema::Validator {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("schemas")
        .join(format!("{name}.schema.json"));
    let schema: Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    jsonschema::validator_for(&schema).expect("valid JSON Schema")
}

fn samples(name: &str) -> Vec<(bool, String, Value)> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/samples")
        .join(format!("{name}.json"));
    let file: Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    let mut out = Vec::new();
    for (valid, key) in [(true, "valid"), (false, "invalid")] {
        for sample in file[key].as_array().unwrap() {
            out.push((
                valid,
                sample["why"].as_str().unwrap().to_string(),
                sample["event"].clone(),
            ));
        }
    }
    assert!(
        out.iter().any(|s| s.0) && out.iter().any(|s| !s.0),
        "{name}: need valid and invalid samples"
    );
    out
}

fn check(name: &str, rust_accepts: impl Fn(&Value) -> bool) {
    let validator = schema(name);
    for (valid, why, event) in samples(name) {
        assert_eq!(
            validator.is_valid(&event),
            valid,
            "{name} schema on `{why}`: {event}"
        );
        assert_eq!(
            rust_accepts(&event),
            valid,
            "{name} Rust type on `{why}`: {event}"
        );
    }
}

const LIMITS: Limits = Limits {
    max_text_bytes: 16_384,
};

#[test]
fn user_action_schema_matches_decoder() {
    check("user_action", |v| {
        UserAction::decode(Some(v.to_string().as_bytes()), &LIMITS).is_ok()
    });
}

#[test]
fn item_upload_schema_matches_decoder() {
    check("item_upload", |v| {
        ItemUpload::decode(Some(v.to_string().as_bytes()), &LIMITS).is_ok()
    });
}

#[test]
fn output_schemas_match_types() {
    check("item_embedding", |v| {
        serde_json::from_value::<ItemEmbedding>(v.clone()).is_ok()
    });
    check("user_embedding", |v| {
        serde_json::from_value::<UserEmbedding>(v.clone()).is_ok_and(|e| e.history_len > 0)
    });
    check("dead_letter", |v| {
        serde_json::from_value::<DeadLetter>(v.clone()).is_ok()
    });
}

/// `key|json` lines of a file of sample events in `schemas/examples/`.
fn example_events(file: &str) -> Vec<(String, Vec<u8>)> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("schemas/examples")
        .join(file);
    std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .map(|line| {
            let (key, json) = line.split_once('|').expect("key|json");
            (key.to_string(), json.as_bytes().to_vec())
        })
        .collect()
}

#[test]
fn the_example_events_are_valid_and_keyed_as_the_service_expects() {
    let limits = LIMITS;
    let uploads = example_events("items.txt");
    let actions = example_events("actions.txt");
    assert!(uploads.len() >= 10 && actions.len() >= 40);
    let uploads: Vec<ItemUpload> = uploads
        .iter()
        .map(|(key, json)| {
            let upload = ItemUpload::decode(Some(json), &limits).expect("a valid upload");
            assert!(schema("item_upload").is_valid(&serde_json::from_slice(json).unwrap()));
            assert_eq!(&upload.item_id, key, "keyed by item id");
            upload
        })
        .collect();
    for (key, json) in &actions {
        let action = UserAction::decode(Some(json), &limits).expect("a valid action");
        assert!(schema("user_action").is_valid(&serde_json::from_slice(json).unwrap()));
        assert_eq!(&action.user_id, key, "keyed by user id");
        assert!(uploads.iter().any(|u| u.item_id == action.item_id));
    }

    // The example dataset is the same catalogue as `learn train` reads it, each item's text
    // exactly what the service embeds for its upload.
    let dataset = learn_stream::dataset::load(
        &Path::new(env!("CARGO_MANIFEST_DIR")).join("schemas/examples/dataset"),
    )
    .expect("the example dataset loads");
    assert_eq!(dataset.items.len(), uploads.len());
    for (item, upload) in dataset.items.iter().zip(&uploads) {
        assert_eq!((&item.id, &item.text), (&upload.item_id, &upload.text()));
    }
    assert_eq!(dataset.users.len(), 12);
}
