//! A team of threads for the fork-joins inside one forward pass. A layer of a single upload is a
//! few microseconds of work per thread, so handing it out must cost far less: the caller takes
//! part as member 0, the other members spin on an epoch counter between jobs (a `spin_loop` hint,
//! for at most [`SPIN`]) and only then park. A thread pool that parks at once (rayon) pays a
//! futex wake-up per fork, which cost a single upload a fifth of its time on 2 cores.

use std::cell::UnsafeCell;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering::SeqCst};
use std::sync::{Arc, Condvar, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// How long an idle member spins before it parks.
const SPIN: Duration = Duration::from_micros(300);
/// Spins (≈ a few microseconds) before a waiter starts yielding its core.
const YIELD_AFTER: u32 = 2_000;

type Job = *const (dyn Fn(usize) + Sync);

struct Shared {
    epoch: AtomicU64,
    /// The current job; written by `run` before it bumps `epoch`, read by members after.
    job: UnsafeCell<Option<Job>>,
    remaining: AtomicUsize,
    panicked: AtomicBool,
    parked: AtomicUsize,
    stop: AtomicBool,
    lock: Mutex<()>,
    wake: Condvar,
}

// SAFETY: `job` is written only by `run` (serialised by `Team::running`) while no member reads
// it: members read it after observing the new epoch and finish before `remaining` reaches 0.
unsafe impl Sync for Shared {}
unsafe impl Send for Shared {}

pub struct Team {
    shared: Arc<Shared>,
    members: Vec<JoinHandle<()>>,
    running: Mutex<()>,
}

impl Team {
    /// A team of `size` threads (the caller plus `size − 1` spawned); 0 means one per CPU core.
    pub fn new(size: usize) -> Self {
        let size = match size {
            0 => std::thread::available_parallelism().map_or(1, |n| n.get()),
            n => n,
        };
        let shared = Arc::new(Shared {
            epoch: AtomicU64::new(0),
            job: UnsafeCell::new(None),
            remaining: AtomicUsize::new(0),
            panicked: AtomicBool::new(false),
            parked: AtomicUsize::new(0),
            stop: AtomicBool::new(false),
            lock: Mutex::new(()),
            wake: Condvar::new(),
        });
        let members = (1..size)
            .map(|index| {
                let shared = shared.clone();
                std::thread::Builder::new()
                    .name(format!("encoder-{index}"))
                    .spawn(move || member(&shared, index))
                    .expect("spawn encoder thread")
            })
            .collect();
        Self {
            shared,
            members,
            running: Mutex::new(()),
        }
    }

    pub fn size(&self) -> usize {
        self.members.len() + 1
    }

    /// Runs `job(i)` for every member `i` in `0..size()` (0 on the calling thread) and returns
    /// when all are done. Concurrent callers take turns.
    pub fn run(&self, job: &(dyn Fn(usize) + Sync)) {
        if self.members.is_empty() {
            return job(0);
        }
        let _turn = self.running.lock().unwrap_or_else(|e| e.into_inner());
        let s = &*self.shared;
        // SAFETY: the pointer is only dereferenced until `remaining` reaches 0, below, while
        // `job` is borrowed; the lifetime is erased to store it.
        unsafe {
            let ptr: *const (dyn Fn(usize) + Sync + '_) = job;
            *s.job.get() =
                Some(std::mem::transmute::<*const (dyn Fn(usize) + Sync + '_), Job>(ptr));
        }
        s.remaining.store(self.members.len(), SeqCst);
        s.epoch.fetch_add(1, SeqCst);
        if s.parked.load(SeqCst) > 0 {
            let _guard = s.lock.lock().unwrap_or_else(|e| e.into_inner());
            s.wake.notify_all();
        }
        let mine = catch_unwind(AssertUnwindSafe(|| job(0)));
        let mut spins = 0u32;
        while s.remaining.load(SeqCst) != 0 {
            spins = spins.saturating_add(1);
            backoff(spins);
        }
        // SAFETY: every member is done with the job.
        unsafe { *s.job.get() = None };
        if let Err(panic) = mine {
            std::panic::resume_unwind(panic);
        }
        if s.panicked.swap(false, SeqCst) {
            panic!("an encoder thread panicked");
        }
    }
}

fn member(s: &Shared, index: usize) {
    let mut seen = 0u64;
    loop {
        let idle = Instant::now();
        let mut spins = 0u32;
        while s.epoch.load(SeqCst) == seen && !s.stop.load(SeqCst) {
            spins = spins.saturating_add(1);
            if !spins.is_multiple_of(256) || idle.elapsed() < SPIN {
                backoff(spins);
                continue;
            }
            s.parked.fetch_add(1, SeqCst);
            let mut guard = s.lock.lock().unwrap_or_else(|e| e.into_inner());
            while s.epoch.load(SeqCst) == seen && !s.stop.load(SeqCst) {
                guard = s.wake.wait(guard).unwrap_or_else(|e| e.into_inner());
            }
            drop(guard);
            s.parked.fetch_sub(1, SeqCst);
        }
        if s.stop.load(SeqCst) {
            return;
        }
        seen = s.epoch.load(SeqCst);
        // SAFETY: set by `run` before the epoch moved; valid until we decrement `remaining`.
        let job = unsafe { (*s.job.get()).expect("job set before epoch") };
        if catch_unwind(AssertUnwindSafe(|| unsafe { (*job)(index) })).is_err() {
            s.panicked.store(true, SeqCst);
        }
        s.remaining.fetch_sub(1, SeqCst);
    }
}

impl Drop for Team {
    fn drop(&mut self) {
        self.shared.stop.store(true, SeqCst);
        {
            let _guard = self.shared.lock.lock().unwrap_or_else(|e| e.into_inner());
            self.shared.wake.notify_all();
        }
        for member in self.members.drain(..) {
            let _ = member.join();
        }
    }
}

/// Busy-wait step: a `spin_loop` hint at first, then `yield_now`, so that when the machine is
/// oversubscribed (the trainer's threads share the cores) a waiter hands its core to the member it
/// waits for instead of spinning through that member's time slice.
fn backoff(spins: u32) {
    if spins < YIELD_AFTER {
        std::hint::spin_loop();
    } else {
        std::thread::yield_now();
    }
}

/// `[start, end)` of part `part` of `total` items split into `parts` near-equal ranges.
pub fn share(total: usize, parts: usize, part: usize) -> std::ops::Range<usize> {
    let per = total.div_ceil(parts.max(1));
    (part * per).min(total)..((part + 1) * per).min(total)
}

/// A raw pointer members may share; each writes a disjoint part of what it points to.
#[derive(Clone, Copy)]
pub struct SharedMut(pub *mut f32);
// SAFETY: users guarantee disjoint writes (documented at each use).
unsafe impl Send for SharedMut {}
unsafe impl Sync for SharedMut {}

impl SharedMut {
    /// The pointer `offset` floats in (a method, so closures capture the `Sync` wrapper).
    pub fn at(self, offset: usize) -> *mut f32 {
        self.0.wrapping_add(offset)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_member_runs_each_job_once_even_after_parking() {
        let team = Team::new(3);
        let hits: Vec<AtomicUsize> = (0..3).map(|_| AtomicUsize::new(0)).collect();
        for round in 0..200 {
            team.run(&|i| {
                hits[i].fetch_add(1, SeqCst);
            });
            if round % 50 == 0 {
                std::thread::sleep(SPIN * 3); // members park, then must wake
            }
        }
        assert!(hits.iter().all(|h| h.load(SeqCst) == 200));
    }

    #[test]
    fn a_panicking_member_is_reported_not_hung() {
        let team = Team::new(2);
        let result = catch_unwind(AssertUnwindSafe(|| {
            team.run(&|i| assert!(i == 0, "member {i} fails"))
        }));
        assert!(result.is_err());
        let count = AtomicUsize::new(0);
        team.run(&|_| {
            count.fetch_add(1, SeqCst);
        });
        assert_eq!(count.load(SeqCst), 2, "the team still works");
    }
}
