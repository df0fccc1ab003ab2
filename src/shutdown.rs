//! Owns graceful shutdown (as in mini-redis): one [`ShutdownTrigger`] broadcasts, every task holds a
//! [`Shutdown`] listener, finishes its current batch, commits, and returns.

use tokio::sync::broadcast;

/// Sends the shutdown signal to every [`Shutdown`] made from it.
#[derive(Clone)]
pub struct ShutdownTrigger {
    sender: broadcast::Sender<()>,
}

impl Default for ShutdownTrigger {
    fn default() -> Self {
        Self {
            sender: broadcast::channel(1).0,
        }
    }
}

impl ShutdownTrigger {
    pub fn trigger(&self) {
        // No receiver left means every task already stopped.
        let _ = self.sender.send(());
    }

    pub fn subscribe(&self) -> Shutdown {
        Shutdown {
            received: false,
            receiver: self.sender.subscribe(),
        }
    }
}

/// Listens for the shutdown signal.
pub struct Shutdown {
    received: bool,
    receiver: broadcast::Receiver<()>,
}

impl Shutdown {
    pub fn is_shutdown(&self) -> bool {
        self.received
    }

    /// Waits for the signal (returns at once if it was already received).
    pub async fn recv(&mut self) {
        if self.received {
            return;
        }
        // A closed channel (trigger dropped) also means shut down.
        let _ = self.receiver.recv().await;
        self.received = true;
    }
}
