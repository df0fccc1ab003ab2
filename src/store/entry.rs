//! History entries as stored. Three forms live side by side in a user's list, told apart by
//! length and first byte:
//! - **compact** (written now): 12 bytes — the action's index (0–7, below any ASCII digit), the
//!   item's [`ItemKey`] (48 bits, big-endian) and the event time as milliseconds since 2020-01-01
//!   (40 bits, to 2054). 14 bytes in a Redis listpack: an 800-entry history is ~12 KB. The item
//!   id comes back through the item registry (`ih`: key → id, `registry.rs`);
//! - **compact-64** (the first compact form, 14 bytes with the full 64-bit hash): still read;
//! - **text** (`"{ts_ms}:{action code}:{item_id}"`, ~25 bytes): the original form, still read,
//!   and written for an event time the compact form cannot hold or an item whose key another id
//!   registered first (a 48-bit collision).
//!
//! An entry is the event's identity in a history: the store recognises a resend by an equal entry
//! among the user's last few (same item, action and millisecond).

use crate::schemas::{Action, UserAction};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HistoryEntry {
    pub ts_ms: i64,
    pub action: Action,
    pub item_id: String,
}

/// Start of the compact form's clock: 2020-01-01T00:00:00Z in Unix milliseconds.
const COMPACT_EPOCH_MS: i64 = 1_577_836_800_000;
const COMPACT_LEN: usize = 12;
const COMPACT_64_LEN: usize = 14;

/// An item id's key in compact entries and the registry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ItemKey {
    /// The top 48 bits of the id's xxh3-64 (compact entries).
    Short(u64),
    /// The full xxh3-64 (compact-64 entries).
    Long(u64),
}

impl ItemKey {
    /// The key compact entries are written with.
    pub fn of(item_id: &str) -> Self {
        Self::Short(xxhash_rust::xxh3::xxh3_64(item_id.as_bytes()) >> 16)
    }

    /// The registry's field: the key's 6 or 8 bytes, big-endian.
    pub fn field(self) -> Vec<u8> {
        match self {
            Self::Short(h) => h.to_be_bytes()[2..].to_vec(),
            Self::Long(h) => h.to_be_bytes().to_vec(),
        }
    }
}

/// A stored entry read back, before its item id is known (compact forms) or with it (text form).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StoredEntry {
    Compact {
        ts_ms: i64,
        action: Action,
        item: ItemKey,
    },
    Text(HistoryEntry),
}

/// Reads `N` big-endian bytes as the low bytes of a u64.
fn be(bytes: &[u8]) -> u64 {
    let mut out = [0u8; 8];
    out[8 - bytes.len()..].copy_from_slice(bytes);
    u64::from_be_bytes(out)
}

impl StoredEntry {
    pub fn decode(bytes: &[u8]) -> Option<Self> {
        let compact = |key_len: usize| {
            let item = match key_len {
                6 => ItemKey::Short(be(&bytes[1..7])),
                _ => ItemKey::Long(be(&bytes[1..9])),
            };
            Self::Compact {
                ts_ms: COMPACT_EPOCH_MS + be(&bytes[1 + key_len..]) as i64,
                action: Action::ALL[bytes[0] as usize],
                item,
            }
        };
        match bytes.first() {
            Some(&index) if (index as usize) < Action::ALL.len() => match bytes.len() {
                COMPACT_LEN => Some(compact(6)),
                COMPACT_64_LEN => Some(compact(8)),
                _ => None,
            },
            _ => HistoryEntry::decode(std::str::from_utf8(bytes).ok()?).map(Self::Text),
        }
    }
}

impl HistoryEntry {
    pub fn encode(&self) -> String {
        format!("{}:{}:{}", self.ts_ms, self.action.code(), self.item_id)
    }

    /// The stored form: compact when `compact` (the item's key is registered to this item) and
    /// the event time fits the 40-bit clock, else text.
    pub fn encode_for_store(&self, compact: bool) -> Vec<u8> {
        let since = self.ts_ms - COMPACT_EPOCH_MS;
        if !compact || !(0..1 << 40).contains(&since) {
            return self.encode().into_bytes();
        }
        let index = Action::ALL
            .iter()
            .position(|a| *a == self.action)
            .expect("every action is in Action::ALL") as u8;
        let mut out = Vec::with_capacity(COMPACT_LEN);
        out.push(index);
        out.extend_from_slice(&ItemKey::of(&self.item_id).field());
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
    fn compact_form_round_trips_and_older_forms_stay_readable() {
        let e = HistoryEntry {
            ts_ms: 1_700_000_000_123,
            action: Action::Skip,
            item_id: "i0000012345".into(),
        };
        let bytes = e.encode_for_store(true);
        assert_eq!(bytes.len(), 12);
        assert!(bytes[0] < b'0', "below any digit a text entry starts with");
        let key = ItemKey::of("i0000012345");
        assert_eq!(key.field().len(), 6);
        assert_eq!(
            StoredEntry::decode(&bytes),
            Some(StoredEntry::Compact {
                ts_ms: e.ts_ms,
                action: Action::Skip,
                item: key,
            })
        );
        // Every action survives; an event time the 40-bit clock cannot hold, or an item whose
        // key is not its own, is stored as text.
        for action in Action::ALL {
            let bytes = HistoryEntry {
                action,
                ..e.clone()
            }
            .encode_for_store(true);
            assert!(
                matches!(StoredEntry::decode(&bytes), Some(StoredEntry::Compact { action: a, .. }) if a == action)
            );
        }
        for (ts_ms, compact) in [
            (0, true),
            (1_577_836_799_999, true),
            (1_577_836_800_000 + (1 << 40), true),
            (e.ts_ms, false),
        ] {
            let old = HistoryEntry { ts_ms, ..e.clone() };
            assert_eq!(old.encode_for_store(compact), old.encode().into_bytes());
            assert_eq!(
                StoredEntry::decode(&old.encode_for_store(compact)),
                Some(StoredEntry::Text(old))
            );
        }
        // The first compact form: 14 bytes with the full 64-bit hash.
        let mut first = vec![1u8];
        first.extend_from_slice(&0x0123_4567_89ab_cdefu64.to_be_bytes());
        first.extend_from_slice(&[0, 0, 0, 1, 0]);
        assert_eq!(
            StoredEntry::decode(&first),
            Some(StoredEntry::Compact {
                ts_ms: 1_577_836_800_000 + 256,
                action: Action::ALL[1],
                item: ItemKey::Long(0x0123_4567_89ab_cdef),
            })
        );
        assert_eq!(ItemKey::Long(7).field(), 7u64.to_be_bytes());
        // Text entries of 12 or 14 bytes are still text (they start with a digit).
        for id in ["abcdefgh", "abcdefghij"] {
            let text = HistoryEntry {
                ts_ms: 1,
                action: Action::View,
                item_id: id.into(),
            };
            assert_eq!(
                StoredEntry::decode(text.encode().as_bytes()),
                Some(StoredEntry::Text(text))
            );
        }
        assert_eq!(StoredEntry::decode(&[9; 12]), None);
        assert_eq!(StoredEntry::decode(&[1; 13]), None);
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
