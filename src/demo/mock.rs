//! librdkafka's built-in mock cluster, owned by a thread of its own (it is not `Send`) and kept
//! alive until the [`MockBroker`] is dropped.

use std::sync::mpsc;
use std::thread::JoinHandle;

use rdkafka::mocking::MockCluster;

use super::DemoError;

pub struct MockBroker {
    bootstrap: String,
    stop: Option<mpsc::Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

impl MockBroker {
    /// Starts a 1-broker mock cluster with `topics` created, each with `partitions` partitions.
    pub fn start(topics: &[String], partitions: i32) -> Result<Self, DemoError> {
        let (ready_tx, ready_rx) = mpsc::channel::<Result<String, String>>();
        let (stop_tx, stop_rx) = mpsc::channel::<()>();
        let topics = topics.to_vec();
        let thread = std::thread::Builder::new()
            .name("mock-kafka".into())
            .spawn(move || {
                let cluster = match MockCluster::new(1) {
                    Ok(cluster) => cluster,
                    Err(e) => {
                        let _ = ready_tx.send(Err(e.to_string()));
                        return;
                    }
                };
                for topic in &topics {
                    if let Err(e) = cluster.create_topic(topic, partitions, 1) {
                        let _ = ready_tx.send(Err(format!("create topic {topic}: {e}")));
                        return;
                    }
                }
                let _ = ready_tx.send(Ok(cluster.bootstrap_servers()));
                // Blocks until the broker handle is dropped (sender dropped or a stop message).
                let _ = stop_rx.recv();
            })
            .map_err(|e| DemoError::Mock(e.to_string()))?;
        let bootstrap = ready_rx
            .recv()
            .map_err(|_| DemoError::Mock("mock cluster thread died".into()))?
            .map_err(DemoError::Mock)?;
        Ok(Self {
            bootstrap,
            stop: Some(stop_tx),
            thread: Some(thread),
        })
    }

    pub fn bootstrap_servers(&self) -> &str {
        &self.bootstrap
    }
}

impl Drop for MockBroker {
    fn drop(&mut self) {
        drop(self.stop.take());
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}
