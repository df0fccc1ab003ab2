//! Owns the events on every topic. Inputs: [`UserAction`] and [`ItemUpload`]; outputs:
//! [`ItemEmbedding`], [`UserEmbedding`] and [`DeadLetter`]. The JSON Schemas in `schemas/` describe the same shapes
//! (a test keeps the two in agreement). [`decode`] turns a raw payload into an input event or a
//! [`Rejection`] with a machine-readable reason.
//!
//! Unknown fields are accepted and ignored on inputs: producers can add fields without a
//! coordinated deploy, and nothing about an event's meaning is lost by ignoring them.

mod dead_letter;
mod decode;
mod text;

pub use dead_letter::{DeadLetter, Origin, DEAD_LETTER_PAYLOAD_BYTES};
pub use decode::{id_problem, Decode, Limits, RejectReason, Rejection, MAX_ID_BYTES};

use serde::{Deserialize, Serialize};

/// What a user did with an item.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Action {
    View,
    Click,
    Like,
    Share,
    Comment,
    Follow,
    Complete,
    Skip,
}

impl Action {
    pub const ALL: [Action; 8] = [
        Action::View,
        Action::Click,
        Action::Like,
        Action::Share,
        Action::Comment,
        Action::Follow,
        Action::Complete,
        Action::Skip,
    ];

    /// The name used on the wire.
    pub fn as_str(self) -> &'static str {
        match self {
            Action::View => "view",
            Action::Click => "click",
            Action::Like => "like",
            Action::Share => "share",
            Action::Comment => "comment",
            Action::Follow => "follow",
            Action::Complete => "complete",
            Action::Skip => "skip",
        }
    }

    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|a| a.as_str() == name)
    }

    /// One-byte code used in the compact history encoding.
    pub fn code(self) -> char {
        match self {
            Action::View => 'v',
            Action::Click => 'c',
            Action::Like => 'l',
            Action::Share => 's',
            Action::Comment => 'm',
            Action::Follow => 'f',
            Action::Complete => 'p',
            Action::Skip => 'k',
        }
    }

    pub fn from_code(code: char) -> Option<Self> {
        Self::ALL.into_iter().find(|a| a.code() == code)
    }
}

/// Topic `actions`: one user interaction, keyed by `user_id`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct UserAction {
    /// Unique per event; producers reuse it when they retry.
    pub event_id: String,
    pub user_id: String,
    pub item_id: String,
    pub action: Action,
    /// Event time, milliseconds since the Unix epoch.
    pub ts_ms: i64,
    /// How long the item was watched, when the client knows.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub watch_ms: Option<u64>,
}

/// What the `items` topic carries: an upload (the same id again is an edit), or a tombstone — a
/// message keyed by the item id with no payload — that deletes the item.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(untagged)]
pub enum ItemEvent {
    Upload(ItemUpload),
    Deleted { item_id: String },
}

impl ItemEvent {
    pub fn item_id(&self) -> &str {
        match self {
            ItemEvent::Upload(upload) => &upload.item_id,
            ItemEvent::Deleted { item_id } => item_id,
        }
    }
}

/// Topic `items`: a newly uploaded (or edited) item, keyed by `item_id`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ItemUpload {
    pub item_id: String,
    pub title: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tags: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub category: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub brand: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub author_id: Option<String>,
    pub ts_ms: i64,
}

/// Which space an embedding lives in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EmbeddingSpace {
    /// The frozen LLM's content embedding (mean-pooled, L2-normalised).
    Content,
    /// The preference-aligned item tower output.
    Aligned,
}

impl EmbeddingSpace {
    pub fn as_str(self) -> &'static str {
        match self {
            EmbeddingSpace::Content => "content",
            EmbeddingSpace::Aligned => "aligned",
        }
    }
}

/// Topic `item-embeddings` (and the Redis item hash): one item's vector. Outputs are strict: we
/// write them, so an unknown field means a version mismatch.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ItemEmbedding {
    pub item_id: String,
    /// Id of the model that produced `vector`.
    pub model: String,
    pub space: EmbeddingSpace,
    pub dim: usize,
    pub vector: Vec<f32>,
    /// Model version: 0 for the frozen encoder, the checkpoint version for aligned towers.
    pub version: u64,
    /// When the embedding was computed, milliseconds since the Unix epoch.
    pub ts_ms: i64,
}

/// Topic `user-embeddings` (and the Redis user hash): a user tower output.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UserEmbedding {
    pub user_id: String,
    pub model: String,
    pub dim: usize,
    pub vector: Vec<f32>,
    /// Checkpoint version of the towers.
    pub version: u64,
    /// How many actions of the history went in.
    pub history_len: usize,
    pub ts_ms: i64,
}

/// Milliseconds since the Unix epoch, now.
pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}
