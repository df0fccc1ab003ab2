//! The trainer's threads: a rayon pool of its own whose workers run at a lower CPU priority
//! (`online.trainer_priority`). A training step — its rayon work too (candle's matrix products,
//! the GELU kernels) — runs on them, so an upload's encoder pass, the ingest loops and the HTTP
//! API preempt a step already running instead of sharing the cores with it: the trainer gets
//! what they leave. (The trainer also never *starts* a step while an upload is being embedded.)

use crate::config::TrainerPriority;

/// A pool of low-priority threads for training work.
pub struct TrainerThreads {
    pool: rayon::ThreadPool,
}

impl TrainerThreads {
    /// One thread per core, each at `priority`.
    pub fn new(priority: TrainerPriority) -> Result<Self, rayon::ThreadPoolBuildError> {
        let pool = rayon::ThreadPoolBuilder::new()
            .thread_name(|i| format!("trainer-{i}"))
            .start_handler(move |_| lower_priority(priority))
            .build()?;
        Ok(Self { pool })
    }

    /// Runs `f` on the pool, blocking the caller (call it from a blocking thread).
    pub fn run<R: Send>(&self, f: impl FnOnce() -> R + Send) -> R {
        self.pool.install(f)
    }
}

/// Lowers the calling thread's priority (Linux: per thread; lowering needs no privilege).
/// Failures are logged, and the thread keeps its priority.
fn lower_priority(priority: TrainerPriority) {
    #[cfg(target_os = "linux")]
    {
        // SAFETY: plain syscalls on the calling thread's own id.
        let result = unsafe {
            let tid = libc::syscall(libc::SYS_gettid) as libc::pid_t;
            match priority {
                TrainerPriority::Normal => 0,
                TrainerPriority::Low => {
                    libc::setpriority(libc::PRIO_PROCESS, tid as libc::id_t, 19)
                }
                TrainerPriority::Idle => {
                    let param = libc::sched_param { sched_priority: 0 };
                    libc::sched_setscheduler(tid, libc::SCHED_IDLE, &param)
                }
            }
        };
        if result != 0 {
            tracing::warn!(?priority, error = %std::io::Error::last_os_error(), "could not lower the trainer thread's priority");
        }
    }
    #[cfg(not(target_os = "linux"))]
    let _ = priority;
}

#[cfg(all(test, target_os = "linux"))]
mod tests {
    use super::*;

    /// (niceness, scheduling policy) of the calling thread.
    fn own_priority() -> (i32, i32) {
        // SAFETY: reads the calling thread's own scheduling attributes.
        unsafe {
            let tid = libc::syscall(libc::SYS_gettid) as libc::pid_t;
            (
                libc::getpriority(libc::PRIO_PROCESS, tid as libc::id_t),
                libc::sched_getscheduler(tid),
            )
        }
    }

    fn on_pool(priority: TrainerPriority) -> Vec<(i32, i32)> {
        use rayon::prelude::*;
        let threads = TrainerThreads::new(priority).unwrap();
        threads.run(|| {
            let mut seen: Vec<(i32, i32)> =
                (0..64).into_par_iter().map(|_| own_priority()).collect();
            seen.push(own_priority());
            seen
        })
    }

    #[test]
    fn work_and_its_rayon_tasks_run_at_the_lower_priority() {
        let base = own_priority();
        assert!(on_pool(TrainerPriority::Low)
            .iter()
            .all(|&p| p == (19, base.1)));
        assert!(on_pool(TrainerPriority::Idle)
            .iter()
            .all(|&p| p.1 == libc::SCHED_IDLE));
        assert!(on_pool(TrainerPriority::Normal).iter().all(|&p| p == base));
        assert_eq!(own_priority(), base, "the caller keeps its priority");
    }
}
