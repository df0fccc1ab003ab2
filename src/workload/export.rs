//! A stream's history as an offline dataset: the uploads and actions of a slice of events written
//! in the canonical format (`items.jsonl` with each upload's text exactly as the service embeds
//! it, `interactions.csv`), so `learn train` trains on what the stream had before a point in time
//! and its towers read the same content vectors the service computes.

use std::fmt::Write as _;
use std::path::Path;

use super::Outgoing;

/// What [`export`] wrote.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Exported {
    pub items: usize,
    pub interactions: usize,
}

/// Writes `events`' uploads and actions into `dir` (created); malformed events are left out.
pub fn export(events: &[Outgoing], dir: &Path) -> std::io::Result<Exported> {
    let (mut items, mut interactions) = (String::new(), String::from("user,item,timestamp\n"));
    let mut exported = Exported {
        items: 0,
        interactions: 0,
    };
    for event in events {
        match event {
            Outgoing::Upload(upload) => {
                let row = serde_json::json!({"item_id": upload.item_id, "text": upload.text()});
                let _ = writeln!(items, "{row}");
                exported.items += 1;
            }
            Outgoing::Action(a) => {
                let _ = writeln!(interactions, "{},{},{}", a.user_id, a.item_id, a.ts_ms);
                exported.interactions += 1;
            }
            Outgoing::Malformed { .. } => {}
        }
    }
    std::fs::create_dir_all(dir)?;
    std::fs::write(dir.join("items.jsonl"), items)?;
    std::fs::write(dir.join("interactions.csv"), interactions)?;
    Ok(exported)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::schemas::{Action, ItemUpload, UserAction};

    #[test]
    fn the_exported_history_loads_as_a_dataset_with_the_services_item_text() {
        let upload = |id: &str, title: &str| {
            Outgoing::Upload(ItemUpload {
                item_id: id.into(),
                title: title.into(),
                description: None,
                tags: vec!["cats".into()],
                category: Some("Pets".into()),
                brand: None,
                author_id: None,
                ts_ms: 1,
            })
        };
        let action = |user: &str, item: &str, ts_ms| {
            Outgoing::Action(UserAction {
                event_id: format!("{user}-{item}-{ts_ms}"),
                user_id: user.into(),
                item_id: item.into(),
                action: Action::View,
                ts_ms,
                watch_ms: None,
            })
        };
        let mut events = vec![upload("a", "Kitten tips"), upload("b", "Corgi, puppy")];
        for (ts, item) in [(2, "a"), (3, "b"), (4, "a")] {
            events.push(action("u1", item, ts));
        }
        let dir = tempfile::tempdir().unwrap();
        let written = export(&events, dir.path()).unwrap();
        assert_eq!(
            written,
            Exported {
                items: 2,
                interactions: 3
            }
        );
        let dataset = crate::dataset::load(dir.path()).unwrap();
        let Outgoing::Upload(b) = &events[1] else {
            unreachable!()
        };
        assert_eq!(
            dataset.items[1].text,
            b.text(),
            "the text the service embeds"
        );
        assert_eq!(dataset.sequences, vec![vec![0, 1, 0]]);
    }
}
