//! How a [`Status`] reads to a person (`learn status`): role, model, training, ingest, lag per
//! partition.

use std::fmt;

use super::Status;

/// `part` of `whole` as a percentage ("-" before anything was applied).
pub fn share(part: u64, whole: u64) -> String {
    if whole == 0 {
        return "-".into();
    }
    format!(
        "{:.0} % of those applied",
        100.0 * part as f64 / whole as f64
    )
}

impl fmt::Display for Status {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let role = if self.leading {
            "trainer (leader)"
        } else {
            "follower"
        };
        writeln!(
            f,
            "instance        {} — {role}, up {:.0} s",
            self.instance, self.uptime_secs
        )?;
        writeln!(
            f,
            "model           version {}, last checkpoint {}",
            self.model_version,
            self.checkpoint_age_secs
                .map_or("never".into(), |a| format!("{a:.0} s ago"))
        )?;
        writeln!(
            f,
            "training        {} steps, loss {}, {} users pending, batch limit {}",
            self.train_steps,
            self.train_loss.map_or("-".into(), |l| format!("{l:.4}")),
            self.pending_users,
            self.train_batch_limit
        )?;
        writeln!(
            f,
            "keeping up      {} pairs trained, {} actions trained on ({}), lag {:.1} s",
            self.train_pairs,
            self.train_actions,
            share(self.train_actions, self.actions_applied),
            self.train_lag_secs
        )?;
        writeln!(
            f,
            "ingest          {} events ({:.1}/s average), {} actions applied, {} items embedded (embed batch limit {})",
            self.events_received,
            self.events_per_sec,
            self.actions_applied,
            self.items_embedded,
            self.embed_batch_limit
        )?;
        writeln!(f, "catalogue       {} items", self.catalogue_items)?;
        writeln!(f, "dead letters    {:?}", self.dead_letters)?;
        writeln!(f, "consumer lag    (messages behind, per partition)")?;
        for (topic, partitions) in &self.lag {
            let total: i64 = partitions.values().sum();
            let each: Vec<String> = partitions
                .iter()
                .map(|(p, l)| format!("p{p}={l}"))
                .collect();
            writeln!(f, "  {topic:<20} {total:>8}   {}", each.join(" "))?;
        }
        Ok(())
    }
}
