//! Topic `dead-letter`: an input event that could not be processed, why, and enough of its bytes
//! to inspect it. The copy is capped ([`DEAD_LETTER_PAYLOAD_BYTES`]) so that a dead letter always
//! fits the producer's message size, whatever arrived: the full length and an xxh3 hash of the
//! original stay, and `truncated` says when the copy is partial.

use serde::{Deserialize, Serialize};

use super::{now_ms, RejectReason};

/// Most payload bytes copied into a dead letter (64 KiB; librdkafka's default limit is 1 MB).
pub const DEAD_LETTER_PAYLOAD_BYTES: usize = 64 * 1024;
/// Most key bytes copied into a dead letter (it is also the dead letter's own Kafka key).
pub const DEAD_LETTER_KEY_BYTES: usize = 1024;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DeadLetter {
    pub source_topic: String,
    pub partition: i32,
    pub offset: i64,
    pub reason: RejectReason,
    /// Human-readable detail (the parser's message, the offending field).
    pub detail: String,
    /// The original key (lossy UTF-8, at most [`DEAD_LETTER_KEY_BYTES`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key: Option<String>,
    /// The original payload (or its first [`DEAD_LETTER_PAYLOAD_BYTES`]) when that is valid UTF-8 ...
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub payload_text: Option<String>,
    /// ... otherwise base64 of those bytes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub payload_base64: Option<String>,
    /// Length of the original payload in bytes (0 for a tombstone).
    pub payload_bytes: u64,
    /// xxh3-64 of the original payload, hex.
    pub payload_xxh3: String,
    /// True when the payload or the key copied here is a prefix of the original.
    pub truncated: bool,
    pub ts_ms: i64,
}

/// Where a rejected message came from.
#[derive(Debug, Clone, Copy)]
pub struct Origin<'a> {
    pub topic: &'a str,
    pub partition: i32,
    pub offset: i64,
    pub key: Option<&'a [u8]>,
}

impl DeadLetter {
    /// The dead letter of `payload` read at `origin`, rejected for `reason`.
    pub fn new(
        origin: Origin<'_>,
        payload: Option<&[u8]>,
        reason: RejectReason,
        detail: impl Into<String>,
    ) -> Self {
        let payload = payload.unwrap_or_default();
        let copied = &payload[..payload.len().min(DEAD_LETTER_PAYLOAD_BYTES)];
        // A cut inside a UTF-8 character leaves valid text up to the cut.
        let text = match std::str::from_utf8(copied) {
            Ok(text) => Some(text),
            Err(e) if copied.len() < payload.len() && e.error_len().is_none() => {
                std::str::from_utf8(&copied[..e.valid_up_to()]).ok()
            }
            Err(_) => None,
        };
        let key = origin.key.map(|k| {
            let cut = &k[..k.len().min(DEAD_LETTER_KEY_BYTES)];
            String::from_utf8_lossy(cut).into_owned()
        });
        let key_cut = origin.key.is_some_and(|k| k.len() > DEAD_LETTER_KEY_BYTES);
        Self {
            source_topic: origin.topic.to_string(),
            partition: origin.partition,
            offset: origin.offset,
            reason,
            detail: truncate_detail(detail.into()),
            key,
            payload_text: text.filter(|t| !t.is_empty()).map(str::to_string),
            payload_base64: match text {
                Some(_) => None,
                None => Some(base64::Engine::encode(
                    &base64::engine::general_purpose::STANDARD,
                    copied,
                )),
            },
            payload_bytes: payload.len() as u64,
            payload_xxh3: format!("{:016x}", xxhash_rust::xxh3::xxh3_64(payload)),
            truncated: copied.len() < payload.len() || key_cut,
            ts_ms: now_ms(),
        }
    }
}

impl DeadLetter {
    /// Drops the payload copy (kept: length, hash, reason), for a broker that refuses the letter.
    pub fn strip_payload(&mut self) {
        self.payload_text = None;
        self.payload_base64 = None;
        self.truncated = true;
    }
}

/// Parser messages quote input; keep them short.
fn truncate_detail(mut detail: String) -> String {
    const MAX: usize = 1024;
    if detail.len() > MAX {
        let mut cut = MAX;
        while !detail.is_char_boundary(cut) {
            cut -= 1;
        }
        detail.truncate(cut);
        detail.push('…');
    }
    detail
}

#[cfg(test)]
mod tests {
    use super::*;

    fn origin(key: Option<&[u8]>) -> Origin<'_> {
        Origin {
            topic: "actions",
            partition: 2,
            offset: 7,
            key,
        }
    }

    #[test]
    fn small_payloads_are_copied_whole() {
        let letter = DeadLetter::new(
            origin(Some(b"u1")),
            Some(b"{oops"),
            RejectReason::MalformedJson,
            "eof",
        );
        assert_eq!(letter.payload_text.as_deref(), Some("{oops"));
        assert_eq!((letter.payload_bytes, letter.truncated), (5, false));
        assert_eq!(letter.key.as_deref(), Some("u1"));
        let binary = DeadLetter::new(
            origin(None),
            Some(&[0xff, 0xfe]),
            RejectReason::MalformedJson,
            "x",
        );
        assert_eq!(binary.payload_base64.as_deref(), Some("//4="));
        assert_eq!(binary.payload_text, None);
    }

    #[test]
    fn big_payloads_keep_length_hash_and_a_prefix_that_fits() {
        // 5 MB of quotes: escaped in JSON each byte doubles, the reason a full copy overflowed.
        let payload = vec![b'"'; 5 << 20];
        let key = vec![b'k'; 4096];
        let letter = DeadLetter::new(
            origin(Some(&key)),
            Some(&payload),
            RejectReason::MalformedJson,
            "x".repeat(5000),
        );
        assert!(letter.truncated);
        assert_eq!(letter.payload_bytes, 5 << 20);
        assert_eq!(
            letter.payload_text.as_ref().unwrap().len(),
            DEAD_LETTER_PAYLOAD_BYTES
        );
        assert_eq!(letter.key.as_ref().unwrap().len(), DEAD_LETTER_KEY_BYTES);
        assert_eq!(
            letter.payload_xxh3,
            format!("{:016x}", xxhash_rust::xxh3::xxh3_64(&payload))
        );
        assert!(serde_json::to_vec(&letter).unwrap().len() < 200 * 1024);
    }

    #[test]
    fn a_cut_inside_a_character_keeps_the_text_before_it() {
        let mut payload = vec![b'a'; DEAD_LETTER_PAYLOAD_BYTES - 1];
        payload.extend("é and more".as_bytes());
        let letter = DeadLetter::new(
            origin(None),
            Some(&payload),
            RejectReason::SchemaViolation,
            "",
        );
        assert_eq!(
            letter.payload_text.unwrap().len(),
            DEAD_LETTER_PAYLOAD_BYTES - 1
        );
    }

    #[test]
    fn a_tombstone_has_no_payload_copy() {
        let letter = DeadLetter::new(origin(None), None, RejectReason::EmptyPayload, "no payload");
        assert_eq!(
            (letter.payload_text, letter.payload_bytes, letter.truncated),
            (None, 0, false)
        );
    }
}
