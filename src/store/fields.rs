//! Each stored record's Redis hash fields, written (`to_fields`) and read (`from_fields`) side by
//! side, so every field name is spelled once per direction in one place.

use std::collections::HashMap;

use super::{StoreError, StoredModel};
use crate::schemas::{EmbeddingSpace, ItemEmbedding, UserEmbedding};

/// Field name → bytes, as `HSET` takes them.
pub(super) type FieldList = Vec<(&'static str, Vec<u8>)>;

pub(super) fn corrupt(key: &str, reason: impl Into<String>) -> StoreError {
    StoreError::Corrupt {
        key: key.to_string(),
        reason: reason.into(),
    }
}

/// The fields of one stored hash, read with the key for error messages.
pub(super) struct Fields<'a> {
    pub key: &'a str,
    pub fields: HashMap<String, Vec<u8>>,
}

impl Fields<'_> {
    fn bytes(&self, name: &str) -> Result<&Vec<u8>, StoreError> {
        self.fields
            .get(name)
            .ok_or_else(|| corrupt(self.key, format!("missing field {name}")))
    }

    fn text(&self, name: &str) -> Result<String, StoreError> {
        String::from_utf8(self.bytes(name)?.clone())
            .map_err(|_| corrupt(self.key, format!("field {name} is not UTF-8")))
    }

    fn number(&self, name: &str) -> Result<i64, StoreError> {
        self.text(name)?
            .parse()
            .map_err(|_| corrupt(self.key, format!("field {name} is not a number")))
    }

    fn vector(&self) -> Result<Vec<f32>, StoreError> {
        let raw = self.bytes("vec")?;
        if raw.len() % 4 != 0 {
            return Err(corrupt(self.key, "vec length is not a multiple of 4"));
        }
        Ok(raw
            .chunks_exact(4)
            .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
            .collect())
    }
}

fn vector_bytes(v: &[f32]) -> Vec<u8> {
    v.iter().flat_map(|x| x.to_le_bytes()).collect()
}

fn text(value: impl ToString) -> Vec<u8> {
    value.to_string().into_bytes()
}

pub(super) fn item_to_fields(e: &ItemEmbedding) -> FieldList {
    vec![
        ("model", text(&e.model)),
        ("space", text(e.space.as_str())),
        ("version", text(e.version)),
        ("dim", text(e.dim)),
        ("ts_ms", text(e.ts_ms)),
        ("vec", vector_bytes(&e.vector)),
    ]
}

pub(super) fn item_from_fields(
    item_id: &str,
    space: EmbeddingSpace,
    f: &Fields<'_>,
) -> Result<ItemEmbedding, StoreError> {
    let stored = f.text("space")?;
    if stored != space.as_str() {
        let reason = format!("space {stored} under a {} key", space.as_str());
        return Err(corrupt(f.key, reason));
    }
    Ok(ItemEmbedding {
        item_id: item_id.to_string(),
        model: f.text("model")?,
        space,
        dim: f.number("dim")? as usize,
        vector: f.vector()?,
        version: f.number("version")? as u64,
        ts_ms: f.number("ts_ms")?,
    })
}

pub(super) fn user_to_fields(e: &UserEmbedding) -> FieldList {
    vec![
        ("model", text(&e.model)),
        ("version", text(e.version)),
        ("dim", text(e.dim)),
        ("history_len", text(e.history_len)),
        ("ts_ms", text(e.ts_ms)),
        ("vec", vector_bytes(&e.vector)),
    ]
}

pub(super) fn user_from_fields(user_id: &str, f: &Fields<'_>) -> Result<UserEmbedding, StoreError> {
    Ok(UserEmbedding {
        user_id: user_id.to_string(),
        model: f.text("model")?,
        dim: f.number("dim")? as usize,
        vector: f.vector()?,
        version: f.number("version")? as u64,
        history_len: f.number("history_len")? as usize,
        ts_ms: f.number("ts_ms")?,
    })
}

pub(super) const MODEL_VERSION: &str = "version";

pub(super) fn model_to_fields(m: &StoredModel) -> FieldList {
    vec![
        (MODEL_VERSION, text(m.version)),
        ("manifest", m.manifest.clone()),
        ("state", m.state.clone()),
    ]
}

pub(super) fn model_from_fields(f: &Fields<'_>) -> Result<StoredModel, StoreError> {
    Ok(StoredModel {
        version: f.number(MODEL_VERSION)? as u64,
        manifest: f.bytes("manifest")?.clone(),
        state: f.bytes("state")?.clone(),
    })
}
