//! History entries as stored. Two forms live side by side in a user's list, told apart by the
//! first byte:
//! - **compact** (written since 2026-11): 14 bytes — the action's index (0–7, below any ASCII
//!   digit), the item id's xxh3-64 (8 bytes, big-endian) and the event time as milliseconds since
//!   2020-01-01 (40 bits, to 2054). 16 bytes in a Redis listpack: an 800-entry history is ~13 KB.
//!   The item id comes back through the item registry (`ih`: hash → id, see `store::redis`);
//! - **text** (`"{ts_ms}:{action code}:{item_id}"`, ~25 bytes): the former form, still read, and
//!   written for an event time the compact form cannot hold.

use crate::schemas::{Action, UserAction};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HistoryEntry {
    pub ts_ms: i64,
    pub action: Action,
    pub item_id: String,
}

/// Start of the compact form's clock: 2020-01-01T00:00:00Z in Unix milliseconds.
const COMPACT_EPOCH_MS: i64 = 1_577_836_800_000;
const COMPACT_LEN: usize = 14;

/// The item id's key in the compact form and the registry.
pub fn item_hash(item_id: &str) -> u64 {
    xxhash_rust::xxh3::xxh3_64(item_id.as_bytes())
}

/// A stored entry read back, before its item id is known (compact form) or with it (text form).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StoredEntry {
    Compact {
        ts_ms: i64,
        action: Action,
        item_hash: u64,
    },
    Text(HistoryEntry),
}

impl StoredEntry {
    pub fn decode(bytes: &[u8]) -> Option<Self> {
        match bytes.first() {
            Some(&index) if bytes.len() == COMPACT_LEN && (index as usize) < Action::ALL.len() => {
                let item_hash = u64::from_be_bytes(bytes[1..9].try_into().ok()?);
                let mut ts = [0u8; 8];
                ts[3..].copy_from_slice(&bytes[9..14]);
                Some(Self::Compact {
                    ts_ms: COMPACT_EPOCH_MS + i64::from_be_bytes(ts),
                    action: Action::ALL[index as usize],
                    item_hash,
                })
            }
            _ => HistoryEntry::decode(std::str::from_utf8(bytes).ok()?).map(Self::Text),
        }
    }
}

impl HistoryEntry {
    pub fn encode(&self) -> String {
        format!("{}:{}:{}", self.ts_ms, self.action.code(), self.item_id)
    }

    /// The stored form: compact when the event time fits its 40-bit clock, else text.
    pub fn encode_for_store(&self) -> Vec<u8> {
        let since = self.ts_ms - COMPACT_EPOCH_MS;
        if !(0..1 << 40).contains(&since) {
            return self.encode().into_bytes();
        }
        let index = Action::ALL
            .iter()
            .position(|a| *a == self.action)
            .expect("every action is in Action::ALL") as u8;
        let mut out = Vec::with_capacity(COMPACT_LEN);
        out.push(index);
        out.extend_from_slice(&item_hash(&self.item_id).to_be_bytes());
        out.extend_from_slice(&since.to_be_bytes()[3..]);
        out
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
    fn compact_form_round_trips_and_text_stays_readable() {
        let e = HistoryEntry {
            ts_ms: 1_700_000_000_123,
            action: Action::Skip,
            item_id: "i0000012345".into(),
        };
        let bytes = e.encode_for_store();
        assert_eq!(bytes.len(), 14);
        assert!(bytes[0] < b'0', "below any digit a text entry starts with");
        assert_eq!(
            StoredEntry::decode(&bytes),
            Some(StoredEntry::Compact {
                ts_ms: e.ts_ms,
                action: Action::Skip,
                item_hash: item_hash("i0000012345"),
            })
        );
        // Every action survives; an event time the 40-bit clock cannot hold is stored as text.
        for action in Action::ALL {
            let bytes = HistoryEntry {
                action,
                ..e.clone()
            }
            .encode_for_store();
            assert!(
                matches!(StoredEntry::decode(&bytes), Some(StoredEntry::Compact { action: a, .. }) if a == action)
            );
        }
        for ts_ms in [0, 1_577_836_799_999, 1_577_836_800_000 + (1 << 40)] {
            let old = HistoryEntry { ts_ms, ..e.clone() };
            assert_eq!(old.encode_for_store(), old.encode().into_bytes());
            assert_eq!(
                StoredEntry::decode(&old.encode_for_store()),
                Some(StoredEntry::Text(old))
            );
        }
        // A text entry of 14 bytes is still text (it starts with a digit).
        let text = HistoryEntry {
            ts_ms: 1,
            action: Action::View,
            item_id: "abcdefghij".into(),
        };
        assert_eq!(text.encode().len(), 14);
        assert_eq!(
            StoredEntry::decode(text.encode().as_bytes()),
            Some(StoredEntry::Text(text))
        );
        assert_eq!(StoredEntry::decode(&[9; 14]), None);
    }

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
