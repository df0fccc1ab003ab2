//! Decoding raw payloads into input events, with a reason for every rejection.

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::{Action, ItemEvent, ItemUpload, UserAction};

/// Why an event was dead-lettered. The string form is the `reason` label of the DLQ counter.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RejectReason {
    /// The message has no payload (a tombstone).
    EmptyPayload,
    /// The payload is not UTF-8 or not JSON.
    MalformedJson,
    /// Valid JSON that does not match the topic's schema (missing field, wrong type, bad value).
    SchemaViolation,
    /// An `action` outside the enum.
    UnknownAction,
    /// An upload whose title is empty or blank.
    EmptyText,
    /// An upload whose item text exceeds `ingest.max_text_bytes`.
    OversizeText,
    /// The store refused the record for good (e.g. its Redis key holds another type).
    StoreRejected,
    /// The frozen encoder failed on this item alone.
    EncoderFailed,
}

impl RejectReason {
    pub const ALL: [RejectReason; 8] = [
        RejectReason::EmptyPayload,
        RejectReason::MalformedJson,
        RejectReason::SchemaViolation,
        RejectReason::UnknownAction,
        RejectReason::EmptyText,
        RejectReason::OversizeText,
        RejectReason::StoreRejected,
        RejectReason::EncoderFailed,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            RejectReason::EmptyPayload => "empty_payload",
            RejectReason::MalformedJson => "malformed_json",
            RejectReason::SchemaViolation => "schema_violation",
            RejectReason::UnknownAction => "unknown_action",
            RejectReason::EmptyText => "empty_text",
            RejectReason::OversizeText => "oversize_text",
            RejectReason::StoreRejected => "store_rejected",
            RejectReason::EncoderFailed => "encoder_failed",
        }
    }
}

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{}: {detail}", reason.as_str())]
pub struct Rejection {
    pub reason: RejectReason,
    pub detail: String,
}

impl Rejection {
    fn new(reason: RejectReason, detail: impl Into<String>) -> Self {
        Self {
            reason,
            detail: detail.into(),
        }
    }
}

/// Limits applied while decoding.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    pub max_text_bytes: usize,
}

/// Longest id accepted (bytes); ids are Redis key parts and Kafka keys.
pub const MAX_ID_BYTES: usize = 256;

/// An input event that can be decoded from a Kafka payload.
pub trait Decode: Sized + Serialize + Send + Sync + 'static {
    fn decode(payload: Option<&[u8]>, limits: &Limits) -> Result<Self, Rejection>;

    /// Decodes a message with its key; events that give a key-only message (a tombstone) a
    /// meaning override it.
    fn decode_keyed(
        _key: Option<&[u8]>,
        payload: Option<&[u8]>,
        limits: &Limits,
    ) -> Result<Self, Rejection> {
        Self::decode(payload, limits)
    }
}

fn parse_json(payload: Option<&[u8]>) -> Result<Value, Rejection> {
    let bytes = payload
        .filter(|p| !p.is_empty())
        .ok_or_else(|| Rejection::new(RejectReason::EmptyPayload, "message has no payload"))?;
    serde_json::from_slice(bytes)
        .map_err(|e| Rejection::new(RejectReason::MalformedJson, e.to_string()))
}

fn typed<T: DeserializeOwned>(value: Value) -> Result<T, Rejection> {
    serde_json::from_value(value)
        .map_err(|e| Rejection::new(RejectReason::SchemaViolation, e.to_string()))
}

/// What an id may be, on the topics and in the API (ids are Redis key parts, Kafka keys and log
/// fields): 1..=[`MAX_ID_BYTES`] bytes, not blank, no control characters. The reason otherwise.
pub fn id_problem(field: &str, value: &str) -> Option<String> {
    if value.trim().is_empty() || value.len() > MAX_ID_BYTES {
        return Some(format!(
            "`{field}` must be 1..={MAX_ID_BYTES} bytes, not blank; got {}",
            value.len()
        ));
    }
    value
        .chars()
        .any(char::is_control)
        .then(|| format!("`{field}` must not contain control characters"))
}

fn check_id(field: &str, value: &str) -> Result<(), Rejection> {
    match id_problem(field, value) {
        Some(detail) => Err(Rejection::new(RejectReason::SchemaViolation, detail)),
        None => Ok(()),
    }
}

fn check_ts(ts_ms: i64) -> Result<(), Rejection> {
    if ts_ms < 0 {
        return Err(Rejection::new(
            RejectReason::SchemaViolation,
            "`ts_ms` must be >= 0",
        ));
    }
    Ok(())
}

impl Decode for UserAction {
    fn decode(payload: Option<&[u8]>, _limits: &Limits) -> Result<Self, Rejection> {
        // Fast path: straight into the struct. Anything it refuses goes the slow way, through
        // a JSON value, which tells malformed JSON, an unknown action and a schema violation
        // apart (and accepts what the struct accepts from a value, e.g. a repeated key).
        let action = match payload.map(serde_json::from_slice::<UserAction>) {
            Some(Ok(action)) => action,
            _ => Self::decode_slowly(payload)?,
        };
        check_id("event_id", &action.event_id)?;
        check_id("user_id", &action.user_id)?;
        if action.user_id.starts_with('}') {
            // The id is the hash tag of the user's Redis keys: `{}…}` would be an empty tag.
            return Err(Rejection::new(
                RejectReason::SchemaViolation,
                "`user_id` must not begin with `}`",
            ));
        }
        check_id("item_id", &action.item_id)?;
        check_ts(action.ts_ms)?;
        Ok(action)
    }
}

impl UserAction {
    fn decode_slowly(payload: Option<&[u8]>) -> Result<Self, Rejection> {
        let value = parse_json(payload)?;
        if let Some(name) = value.get("action").and_then(Value::as_str) {
            if Action::from_name(name).is_none() {
                return Err(Rejection::new(
                    RejectReason::UnknownAction,
                    format!("unknown action `{name}`"),
                ));
            }
        }
        typed(value)
    }
}

impl Decode for ItemUpload {
    fn decode(payload: Option<&[u8]>, limits: &Limits) -> Result<Self, Rejection> {
        let upload: ItemUpload = typed(parse_json(payload)?)?;
        check_id("item_id", &upload.item_id)?;
        check_ts(upload.ts_ms)?;
        if upload.title.trim().is_empty() {
            return Err(Rejection::new(RejectReason::EmptyText, "`title` is empty"));
        }
        let text_len = upload.text().len();
        if text_len > limits.max_text_bytes {
            return Err(Rejection::new(
                RejectReason::OversizeText,
                format!(
                    "item text is {text_len} bytes, limit {}",
                    limits.max_text_bytes
                ),
            ));
        }
        Ok(upload)
    }
}

impl Decode for ItemEvent {
    fn decode(payload: Option<&[u8]>, limits: &Limits) -> Result<Self, Rejection> {
        ItemUpload::decode(payload, limits).map(ItemEvent::Upload)
    }

    /// A message with a key and no payload deletes the item the key names.
    fn decode_keyed(
        key: Option<&[u8]>,
        payload: Option<&[u8]>,
        limits: &Limits,
    ) -> Result<Self, Rejection> {
        let (None, Some(key)) = (payload, key) else {
            return Self::decode(payload, limits);
        };
        let item_id = std::str::from_utf8(key).map_err(|_| {
            Rejection::new(
                RejectReason::SchemaViolation,
                "a tombstone's key (the item id) is not UTF-8",
            )
        })?;
        check_id("item_id", item_id)?;
        Ok(ItemEvent::Deleted {
            item_id: item_id.to_string(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const LIMITS: Limits = Limits {
        max_text_bytes: 200,
    };

    fn action(json: &str) -> Result<UserAction, Rejection> {
        UserAction::decode(Some(json.as_bytes()), &LIMITS)
    }

    fn upload(json: &str) -> Result<ItemUpload, Rejection> {
        ItemUpload::decode(Some(json.as_bytes()), &LIMITS)
    }

    #[test]
    fn valid_action_decodes_and_ignores_unknown_fields() {
        let a = action(
            r#"{"event_id":"e1","user_id":"u","item_id":"i","action":"like","ts_ms":5,"extra":1}"#,
        )
        .unwrap();
        assert_eq!(a.action, Action::Like);
        assert_eq!(a.watch_ms, None);
    }

    #[test]
    fn a_keyed_tombstone_on_items_deletes_and_anything_else_is_an_upload() {
        let deleted = ItemEvent::decode_keyed(Some(b"v7"), None, &LIMITS).unwrap();
        assert_eq!(
            deleted,
            ItemEvent::Deleted {
                item_id: "v7".into()
            }
        );
        let upload = r#"{"item_id":"v7","title":"t","ts_ms":1}"#;
        let event = ItemEvent::decode_keyed(Some(b"v7"), Some(upload.as_bytes()), &LIMITS).unwrap();
        assert!(matches!(event, ItemEvent::Upload(u) if u.item_id == "v7"));
        let reason = |key: Option<&[u8]>| {
            ItemEvent::decode_keyed(key, None, &LIMITS)
                .unwrap_err()
                .reason
        };
        assert_eq!(
            reason(None),
            RejectReason::EmptyPayload,
            "no key: nothing to delete"
        );
        assert_eq!(reason(Some(&[0xff])), RejectReason::SchemaViolation);
        assert_eq!(reason(Some(b"")), RejectReason::SchemaViolation);
        // Actions have no tombstones.
        assert_eq!(
            UserAction::decode_keyed(Some(b"u1"), None, &LIMITS)
                .unwrap_err()
                .reason,
            RejectReason::EmptyPayload
        );
    }

    #[test]
    fn each_bad_action_gets_its_reason() {
        let reason = |json: &str| action(json).unwrap_err().reason;
        assert_eq!(reason("{not json"), RejectReason::MalformedJson);
        assert_eq!(
            reason(r#"{"event_id":"e","user_id":"u","item_id":"i","action":"dance","ts_ms":1}"#),
            RejectReason::UnknownAction
        );
        assert_eq!(
            reason(r#"{"event_id":"e","user_id":"u","action":"view","ts_ms":1}"#),
            RejectReason::SchemaViolation
        );
        assert_eq!(
            reason(r#"{"event_id":"e","user_id":"","item_id":"i","action":"view","ts_ms":1}"#),
            RejectReason::SchemaViolation
        );
        assert_eq!(
            reason(r#"{"event_id":"e","user_id":"}u","item_id":"i","action":"view","ts_ms":1}"#),
            RejectReason::SchemaViolation
        );
        assert_eq!(
            reason(r#"{"event_id":"e","user_id":"u","item_id":"i","action":"view","ts_ms":-1}"#),
            RejectReason::SchemaViolation
        );
        assert_eq!(
            UserAction::decode(None, &LIMITS).unwrap_err().reason,
            RejectReason::EmptyPayload
        );
        assert_eq!(
            UserAction::decode(Some(&[0xff, 0xfe]), &LIMITS)
                .unwrap_err()
                .reason,
            RejectReason::MalformedJson
        );
    }

    #[test]
    fn the_fast_path_accepts_what_the_value_path_accepts() {
        for json in [
            r#"{"event_id":"e","user_id":"u","item_id":"i","action":"like","ts_ms":5}"#,
            r#"{"event_id":"e","user_id":"u","item_id":"i","action":"view","ts_ms":5,"watch_ms":9}"#,
            r#"{"event_id":"e","user_id":"u","item_id":"i","item_id":"j","action":"view","ts_ms":5}"#,
            r#"{"event_id":"e","user_id":"u","item_id":"i","action":"view","ts_ms":5.5}"#,
            r#"{"event_id":"e","user_id":"u","item_id":"i","action":"view","ts_ms":"5"}"#,
            r#"{"event_id":"e","user_id":"u","item_id":"i","action":"view","ts_ms":5,"watch_ms":-1}"#,
            r#"[1,2]"#,
            "",
        ] {
            let slow = UserAction::decode_slowly(Some(json.as_bytes()));
            match (action(json), slow) {
                (Ok(fast), Ok(slow)) => assert_eq!(fast, slow, "{json}"),
                (Err(fast), Err(slow)) => assert_eq!(fast.reason, slow.reason, "{json}"),
                (fast, slow) => panic!("{json}: fast {fast:?}, value path {slow:?}"),
            }
        }
        // A repeated key: the struct refuses it, the value path keeps the last one.
        let twice = r#"{"event_id":"e","user_id":"u","item_id":"i","item_id":"j","action":"view","ts_ms":5}"#;
        assert_eq!(action(twice).unwrap().item_id, "j");
    }

    #[test]
    fn uploads_reject_empty_and_oversize_text() {
        assert!(upload(r#"{"item_id":"i","title":"Cat video","ts_ms":1}"#).is_ok());
        assert_eq!(
            upload(r#"{"item_id":"i","title":"  ","ts_ms":1}"#)
                .unwrap_err()
                .reason,
            RejectReason::EmptyText
        );
        let long = "x".repeat(300);
        let json = format!(r#"{{"item_id":"i","title":"{long}","ts_ms":1}}"#);
        assert_eq!(
            upload(&json).unwrap_err().reason,
            RejectReason::OversizeText
        );
    }

    #[test]
    fn action_codes_round_trip() {
        for a in Action::ALL {
            assert_eq!(Action::from_code(a.code()), Some(a));
            assert_eq!(Action::from_name(a.as_str()), Some(a));
        }
    }
}
