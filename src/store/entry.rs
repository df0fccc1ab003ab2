//! The compact history entry: `"{ts_ms}:{action code}:{item_id}"`, ~25 bytes for typical ids,
//! so a full 800-entry history is ~20 KB.

use crate::schemas::{Action, UserAction};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HistoryEntry {
    pub ts_ms: i64,
    pub action: Action,
    pub item_id: String,
}

impl HistoryEntry {
    pub fn encode(&self) -> String {
        format!("{}:{}:{}", self.ts_ms, self.action.code(), self.item_id)
    }

    pub fn decode(text: &str) -> Option<Self> {
        let mut parts = text.splitn(3, ':');
        let ts_ms = parts.next()?.parse().ok()?;
        let mut code = parts.next()?.chars();
        let action = Action::from_code(code.next()?)?;
        if code.next().is_some() {
            return None;
        }
        let item_id = parts.next()?.to_string();
        Some(Self {
            ts_ms,
            action,
            item_id,
        })
    }
}

impl From<&UserAction> for HistoryEntry {
    fn from(a: &UserAction) -> Self {
        Self {
            ts_ms: a.ts_ms,
            action: a.action,
            item_id: a.item_id.clone(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_ids_with_colons() {
        let e = HistoryEntry {
            ts_ms: 1_700_000_000_000,
            action: Action::Complete,
            item_id: "video:42".into(),
        };
        assert_eq!(e.encode(), "1700000000000:p:video:42");
        assert_eq!(HistoryEntry::decode(&e.encode()), Some(e));
        assert_eq!(HistoryEntry::decode("12:zz:x"), None);
        assert_eq!(HistoryEntry::decode("nope"), None);
    }
}
