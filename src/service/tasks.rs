//! The service's tasks under one supervisor: each has a name; whichever ends first (normally
//! because of shutdown, otherwise because it failed) stops the others, and every outcome is
//! collected — a panic is reported with the task's name.

use std::collections::HashMap;
use std::future::Future;

use tokio::task::{Id, JoinSet};

use super::ServiceError;
use crate::shutdown::ShutdownTrigger;

#[derive(Default)]
pub(super) struct Tasks {
    set: JoinSet<Result<(), ServiceError>>,
    names: HashMap<Id, &'static str>,
}

impl Tasks {
    pub fn spawn(
        &mut self,
        name: &'static str,
        task: impl Future<Output = Result<(), ServiceError>> + Send + 'static,
    ) {
        let handle = self.set.spawn(task);
        self.names.insert(handle.id(), name);
    }

    /// Waits for every task; the first to end triggers `shutdown`. The first error wins.
    pub async fn supervise(mut self, shutdown: &ShutdownTrigger) -> Result<(), ServiceError> {
        let mut outcome = Ok(());
        while let Some(joined) = self.set.join_next_with_id().await {
            shutdown.trigger();
            let (id, result) = match joined {
                Ok((id, result)) => (id, result),
                Err(err) => {
                    let name = self.names.get(&err.id()).copied().unwrap_or("unnamed");
                    (err.id(), Err(ServiceError::Panicked(name)))
                }
            };
            let name = self.names.get(&id).copied().unwrap_or("unnamed");
            match &result {
                Ok(()) => tracing::debug!(task = name, "task ended"),
                Err(err) => tracing::error!(task = name, %err, "task failed; stopping the service"),
            }
            outcome = outcome.and(result);
        }
        outcome
    }
}
