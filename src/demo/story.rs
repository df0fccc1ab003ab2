//! The walkthrough `learn demo` prints once the stream has settled, from the running service's
//! real state: one user's top 5; a brand-new upload, how many milliseconds it took to become
//! recommendable, and the users it already reaches (cold start); the same user's top 5 after a
//! burst of their actions (the history moves the user vector at once); and the trainer's progress.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::sync::Arc;
use std::time::{Duration, Instant};

use rdkafka::producer::FutureProducer;

use super::{send, DemoError, OfflinePass};
use crate::schemas::{now_ms, Action, ItemUpload, UserAction};
use crate::service::Shared;
use crate::serving::recommend::{score, user_rows, Recommendation};
use crate::serving::Which;
use crate::store::{MemoryStore, Store};
use crate::workload::Outgoing;

/// Users scanned for who the new upload reaches.
const AUDIENCE_SCAN: usize = 200;
/// Training the story waits for once the stream is over: this many steps, or this long.
const CATCH_UP_STEPS: u64 = 300;
const CATCH_UP_WAIT: Duration = Duration::from_secs(15);

fn loss(l: Option<f64>) -> String {
    l.map_or("-".into(), |l| format!("{l:.3}"))
}

pub(super) struct Story<'a> {
    pub shared: &'a Arc<Shared<MemoryStore>>,
    /// The offline pass the towers were warm-started from, if any.
    pub offline: Option<OfflinePass>,
    /// The stream's uploads by item id (titles, and what a sequel shares with its prequel).
    pub uploads: HashMap<String, ItemUpload>,
    pub users: Vec<String>,
    /// Connected before the story starts, so latencies do not include a connection set-up.
    pub producer: FutureProducer,
}

impl Story<'_> {
    /// Tells the story; returns the text to print.
    pub async fn tell(mut self) -> Result<String, DemoError> {
        let mut out = String::new();
        // During the burst the trainer yields the cores to ingestion; now it catches up on the
        // users who acted (their histories are the training data), for a few seconds.
        let (before, started) = (self.shared.stats.snapshot(), Instant::now());
        while self.shared.stats.snapshot().train_steps < before.train_steps + CATCH_UP_STEPS
            && started.elapsed() < CATCH_UP_WAIT
        {
            if self.shared.active.pending() == 0 {
                self.shared
                    .active
                    .touch(self.users.iter().map(String::as_str));
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let after = self.shared.stats.snapshot();
        if let Some(pass) = &self.offline {
            let _ = writeln!(
                out,
                "\n0. Before the stream, as a platform would, the towers were trained offline on its history \
                 (the first {:.0} % of the events: {} items, {} actions; `learn train`, {} epochs, the best \
                 on validation #{} at NDCG@10 {:.3}; {:.0} s) and imported as version 1 (`online.warm_start`).",
                super::offline::HISTORY_SHARE * 100.0,
                pass.items,
                pass.interactions,
                pass.epochs,
                pass.best_epoch,
                pass.valid_ndcg_10,
                pass.elapsed.as_secs_f64()
            );
        }
        let _ = writeln!(
            out,
            "\n{}hile the stream poured in, the trainer yielded the cores to ingestion ({} contrastive \
             steps). Now it catches up on the users who acted: {} steps in {:.1} s, loss {} → {} \
             (ln of the catalogue size, {:.2}, is chance), serving model version {}.",
            if self.offline.is_some() { "   Then, w" } else { "0. W" },
            before.train_steps,
            after.train_steps - before.train_steps,
            started.elapsed().as_secs_f64(),
            loss(before.train_loss),
            loss(after.train_loss),
            (self.shared.catalogue.len().max(1) as f64).ln(),
            self.shared.models.current().version
        );
        let Some(user) = self.most_active_user().await? else {
            return Ok("no user has a history yet: nothing to walk through".into());
        };
        let before = self.top(&user, 5).await?;
        let _ = writeln!(
            out,
            "\n1. {user}'s top 5 now ({} actions in their history):",
            self.history_len(&user).await?
        );
        self.list(&mut out, &before, None);

        // Cold start: a new upload, recommendable within milliseconds of arriving.
        let new_item = format!("new-{}", now_ms());
        let sequel = self.sequel(&before, &new_item);
        let title = sequel.title.clone();
        self.users.retain(|u| *u != user);
        self.users.insert(0, user.clone());
        let (waited, audience) = self.upload(sequel).await?;
        let _ = writeln!(
            out,
            "\n2. A creator uploads \"{title}\" ({new_item}). Embedded by the frozen encoder, aligned by the \
             item tower and recommendable {} ms after it was produced — no interaction needed.",
            waited.as_millis()
        );
        let full = self.ranked(&user, self.shared.catalogue.len(), 0.0).await?;
        let rank_of = |item: &str| full.items.iter().position(|s| s.item_id == item);
        if let Some(rank) = rank_of(&new_item) {
            let prequel = before.items.first().map(|s| s.item_id.as_str());
            let _ =
                writeln!(
                out,
                "   For {user}, by the embeddings alone, it ranks #{} of {} (its prequel: #{}).",
                rank + 1,
                full.items.len(),
                prequel.and_then(rank_of).map_or("-".into(), |r| (r + 1).to_string())
            );
        }
        if audience.is_empty() {
            let _ = writeln!(
                out,
                "   Not yet in the top 10 of the {AUDIENCE_SCAN} users scanned."
            );
        } else {
            let _ = writeln!(
                out,
                "   Already in the top 10 of {} of {} users scanned, e.g.: {}",
                audience.len(),
                AUDIENCE_SCAN.min(self.users.len()),
                audience
                    .iter()
                    .take(5)
                    .map(|(u, rank)| format!("{u} (#{rank})"))
                    .collect::<Vec<_>>()
                    .join(", ")
            );
        }

        // A burst of the user's actions on what the model ranked lowest for them.
        let burst = self.lowest(&user, 8).await?;
        self.act(&user, &burst).await?;
        let after = self.top(&user, 5).await?;
        let _ = writeln!(
            out,
            "\n3. {user} watches {} videos the model ranked lowest for them; their next request already \
             reflects it (the user tower reads the history at request time):",
            burst.len()
        );
        self.list(&mut out, &after, Some(&before));

        let stats = self.shared.stats.snapshot();
        let _ = writeln!(
            out,
            "\n4. Meanwhile the trainer took {} contrastive steps on the live stream (last loss {}; it \
             yields the cores to ingestion and trains on users with new actions); the service serves \
             model version {} (a checkpoint every {} steps).",
            stats.train_steps,
            loss(stats.train_loss),
            self.shared.models.current().version,
            self.shared.config.online.checkpoint_every_steps
        );
        Ok(out)
    }

    async fn most_active_user(&mut self) -> Result<Option<String>, DemoError> {
        let mut best = None;
        for user in self.users.iter().take(AUDIENCE_SCAN) {
            let len = self.history_len(user).await?;
            if best.as_ref().is_none_or(|(_, l)| len > *l) {
                best = Some((user.clone(), len));
            }
        }
        Ok(best.filter(|(_, len)| *len > 0).map(|(u, _)| u))
    }

    async fn history_len(&self, user: &str) -> Result<usize, DemoError> {
        let cap = self.shared.config.history.cap;
        Ok(self.shared.store.history(user, cap).await?.len())
    }

    /// The top `k` as `/v1/recommend` answers it (the configured popularity prior).
    async fn top(&self, user: &str, k: usize) -> Result<Recommendation, DemoError> {
        self.ranked(user, k, self.shared.config.serving.popularity_weight)
            .await
    }

    async fn ranked(
        &self,
        user: &str,
        k: usize,
        popularity_weight: f32,
    ) -> Result<Recommendation, DemoError> {
        let handles = self.shared.recommend_handles();
        let sources = handles.sources(popularity_weight);
        let rows = user_rows(&sources, user).await.map_err(recommend_error)?;
        score(&sources, rows, k, Which::Current).map_err(recommend_error)
    }

    /// The `n` catalogue items the model ranks lowest for `user`.
    async fn lowest(&self, user: &str, n: usize) -> Result<Vec<String>, DemoError> {
        let all = self.top(user, self.shared.catalogue.len()).await?;
        Ok(all
            .items
            .iter()
            .rev()
            .take(n)
            .map(|s| s.item_id.clone())
            .collect())
    }

    fn title(&self, item: &str) -> &str {
        self.uploads.get(item).map_or("", |u| u.title.as_str())
    }

    /// One line per item; with `previous`, items new since then are marked `+`.
    fn list(&self, out: &mut String, rec: &Recommendation, previous: Option<&Recommendation>) {
        let is_new =
            |item: &str| previous.is_some_and(|p| p.items.iter().all(|s| s.item_id != item));
        for s in &rec.items {
            let mark = if is_new(&s.item_id) { '+' } else { ' ' };
            let _ = writeln!(
                out,
                "   {mark} {:<12} {:.3}  {}",
                s.item_id,
                s.score,
                self.title(&s.item_id)
            );
        }
    }

    /// A title in the spirit of the user's current favourite, so the new item has an audience.
    /// A sequel to the user's top item, as its creator would upload it: "…, part 2", with the
    /// prequel's category, tags and creator.
    fn sequel(&self, top: &Recommendation, item: &str) -> ItemUpload {
        let prequel = top.items.first().and_then(|s| self.uploads.get(&s.item_id));
        ItemUpload {
            item_id: item.to_string(),
            title: format!("{}, part 2", prequel.map_or("", |p| p.title.as_str())),
            description: None,
            tags: prequel.map_or_else(Vec::new, |p| p.tags.clone()),
            category: prequel.and_then(|p| p.category.clone()),
            brand: None,
            author_id: prequel.and_then(|p| p.author_id.clone()),
            ts_ms: now_ms(),
        }
    }

    /// Produces the upload, waits until it is recommendable; (latency, users whose top 10 has it
    /// with its rank).
    async fn upload(
        &mut self,
        upload: ItemUpload,
    ) -> Result<(Duration, Vec<(String, usize)>), DemoError> {
        let item = upload.item_id.clone();
        let item = item.as_str();
        self.uploads.insert(item.to_string(), upload.clone());
        let started = Instant::now();
        send(
            &self.producer,
            &self.shared.config,
            &Outgoing::Upload(upload),
        )
        .await?;
        while self.shared.catalogue.row(item).is_none() {
            if started.elapsed() > Duration::from_secs(30) {
                return Err(DemoError::Walkthrough(format!(
                    "upload {item} not embedded within 30 s"
                )));
            }
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        let waited = started.elapsed();
        let mut audience = Vec::new();
        // By the embeddings alone: the popularity prior ranks an item nobody has acted on yet last.
        for user in self.users.iter().take(AUDIENCE_SCAN) {
            let top = self.ranked(user, 10, 0.0).await?;
            if let Some(rank) = top.items.iter().position(|s| s.item_id == item) {
                audience.push((user.clone(), rank + 1));
            }
        }
        Ok((waited, audience))
    }

    /// Produces `user` acting on `items` and waits until their history has them.
    async fn act(&self, user: &str, items: &[String]) -> Result<(), DemoError> {
        let before = self.history_len(user).await?;
        let events: Vec<Outgoing> = items
            .iter()
            .enumerate()
            .map(|(n, item)| {
                Outgoing::Action(UserAction {
                    event_id: format!("demo-burst-{}-{n}", now_ms()),
                    user_id: user.to_string(),
                    item_id: item.clone(),
                    action: Action::Complete,
                    ts_ms: now_ms() + n as i64,
                    watch_ms: Some(30_000),
                })
            })
            .collect();
        for event in &events {
            send(&self.producer, &self.shared.config, event).await?;
        }
        let started = Instant::now();
        let cap = self.shared.config.history.cap;
        while self.history_len(user).await? < (before + items.len()).min(cap) {
            if started.elapsed() > Duration::from_secs(30) {
                return Err(DemoError::Walkthrough(format!(
                    "{user}'s burst not applied within 30 s"
                )));
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        Ok(())
    }
}

fn recommend_error(e: crate::serving::recommend::RecommendError) -> DemoError {
    DemoError::Walkthrough(format!("recommend: {e}"))
}
