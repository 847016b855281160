//! Work splitting over a persistent set of worker threads.
//!
//! Work is cut into items whose boundaries depend only on the problem (never
//! on the thread count), and every item is computed by the same code in the
//! same order whichever thread runs it: results are bit-identical for any
//! thread count.
//!
//! The workers are started once, with the pool, and live until it is
//! dropped. Between jobs a worker spins briefly (a kernel usually follows
//! another within microseconds) and then sleeps on a condition variable, so
//! starting a parallel kernel costs a few microseconds instead of a thread
//! spawn. A job borrows the kernel's data: the caller takes part in it and
//! returns only when no worker is still inside it. If another run holds the
//! pool (several threads sharing one session), the job runs on the calling
//! thread alone, which gives the same bits. On targets without threads
//! (wasm32) everything runs on the calling thread.

use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::thread::JoinHandle;

/// Floating-point operations below which a kernel runs on one thread (with
/// persistent workers a job costs microseconds, so ~64K multiply-adds pay).
pub const MIN_PARALLEL_WORK: usize = 1 << 17;

/// Spins of an idle worker (each a pause instruction) before it sleeps,
/// when no run is in progress ([`Pool::busy`]); during a run it keeps
/// spinning (yielding now and then), so a kernel never waits for a thread
/// to wake up, and after the run it soon sleeps, leaving the cores to
/// other work.
const SPINS_BEFORE_SLEEP: u32 = 1 << 14;
/// Spins between yields of a worker waiting during a run.
const SPINS_PER_YIELD: u32 = 1 << 12;

/// A job as the workers see it: the caller's closure with its lifetime
/// erased. Only dereferenced between a worker's check that the job is open
/// and its exit from the job, while the caller waits (see [`Shared::enter`]).
#[derive(Clone, Copy)]
struct JobPtr(*const (dyn Fn() + Sync + 'static));
// SAFETY: the pointee is `Sync` and outlives every use (the submitting call
// does not return while a worker may still read it).
unsafe impl Send for JobPtr {}

struct Shared {
    /// `epoch << 1 | open`: a new epoch per job; `open` while workers may join.
    state: AtomicU64,
    /// Workers inside the current (or a just-closed) job.
    active: AtomicUsize,
    job: Mutex<Option<JobPtr>>,
    /// Wakes sleeping workers.
    sleep: Mutex<()>,
    wake: Condvar,
    sleepers: AtomicUsize,
    shutdown: AtomicBool,
    /// A worker's job panicked (re-raised on the caller).
    panicked: AtomicBool,
    /// Runs in progress (see [`Pool::busy`]).
    runs: AtomicUsize,
    /// The core the caller of the latest run or job was on (`usize::MAX`:
    /// unknown), see [`cpu::current`].
    caller_cpu: AtomicUsize,
}

impl Shared {
    /// Run the job of `epoch` if it is still open.
    fn enter(&self, epoch: u64) {
        self.active.fetch_add(1, Ordering::SeqCst);
        if self.state.load(Ordering::SeqCst) == (epoch << 1 | 1) {
            let job = self.job.lock().ok().and_then(|j| *j);
            if let Some(JobPtr(f)) = job {
                // SAFETY: the job is open, so its submitter is still inside
                // `Pool::run` and will not return before `active` drops to 0.
                let f = unsafe { &*f };
                if std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)).is_err() {
                    self.panicked.store(true, Ordering::SeqCst);
                }
            }
        }
        self.active.fetch_sub(1, Ordering::SeqCst);
    }

    fn worker(&self) {
        let mut seen = self.state.load(Ordering::SeqCst) >> 1;
        loop {
            let mut spins = 0u32;
            let state = loop {
                let s = self.state.load(Ordering::SeqCst);
                if s >> 1 != seen || self.shutdown.load(Ordering::SeqCst) {
                    break s;
                }
                if self.runs.load(Ordering::Relaxed) > 0 {
                    spins = spins.wrapping_add(1);
                    if spins.is_multiple_of(SPINS_PER_YIELD) {
                        std::thread::yield_now();
                    } else {
                        std::hint::spin_loop();
                    }
                    continue;
                }
                if spins < SPINS_BEFORE_SLEEP {
                    spins += 1;
                    std::hint::spin_loop();
                    continue;
                }
                let Ok(guard) = self.sleep.lock() else { return };
                self.sleepers.fetch_add(1, Ordering::SeqCst);
                // Re-check under the lock: a submitter notifies under it.
                let s = self.state.load(Ordering::SeqCst);
                let guard = if s >> 1 == seen && !self.shutdown.load(Ordering::SeqCst) {
                    self.wake.wait(guard).ok()
                } else {
                    Some(guard)
                };
                self.sleepers.fetch_sub(1, Ordering::SeqCst);
                drop(guard);
                spins = 0;
                // The system may wake a thread on the core of the thread that
                // woke it (the caller, busy with the run's kernels) while
                // another core idles: the two would then share one core for
                // the whole run. Move off it.
                cpu::avoid(self.caller_cpu.load(Ordering::Relaxed));
            };
            if self.shutdown.load(Ordering::SeqCst) {
                return;
            }
            seen = state >> 1;
            if state & 1 == 1 {
                self.enter(seen);
            }
        }
    }
}

struct Workers {
    shared: Arc<Shared>,
    /// One job at a time; a caller that finds it taken works alone.
    submit: Mutex<()>,
    handles: Vec<JoinHandle<()>>,
}

impl Drop for Workers {
    fn drop(&mut self) {
        self.shared.shutdown.store(true, Ordering::SeqCst);
        if let Ok(_g) = self.shared.sleep.lock() {
            self.shared.wake.notify_all();
        }
        for h in self.handles.drain(..) {
            let _ = h.join();
        }
    }
}

/// A run in progress on a pool ([`Pool::busy`]).
pub struct Busy<'a>(&'a Pool);

impl Drop for Busy<'_> {
    fn drop(&mut self) {
        if let Some(w) = &self.0.workers {
            w.shared.runs.fetch_sub(1, Ordering::SeqCst);
        }
    }
}

/// The start of a slice whose disjoint chunks threads write
/// ([`Pool::for_each_chunk`]).
struct SharedMut<T>(*mut T);
// SAFETY: only used to hand disjoint chunks of a `&mut [T]` (T: Send) to
// the threads of one job, which ends before the borrow does.
unsafe impl<T: Send> Sync for SharedMut<T> {}

/// Threads kernels use: the caller plus `threads - 1` persistent workers.
pub struct Pool {
    threads: usize,
    workers: Option<Workers>,
}

impl std::fmt::Debug for Pool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pool").field("threads", &self.threads).finish()
    }
}

impl Pool {
    /// A pool of `threads` threads (the caller's included); 0 means one per
    /// available core. Clamped to 1 where threads do not exist. If the
    /// system refuses to start a worker, the pool uses those it has.
    pub fn new(threads: usize) -> Pool {
        let threads = if cfg!(target_family = "wasm") {
            1
        } else if threads == 0 {
            std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1)
        } else {
            threads
        };
        let threads = threads.clamp(1, 256);
        if threads == 1 {
            return Pool { threads, workers: None };
        }
        let shared = Arc::new(Shared {
            state: AtomicU64::new(0),
            active: AtomicUsize::new(0),
            job: Mutex::new(None),
            sleep: Mutex::new(()),
            wake: Condvar::new(),
            sleepers: AtomicUsize::new(0),
            shutdown: AtomicBool::new(false),
            panicked: AtomicBool::new(false),
            runs: AtomicUsize::new(0),
            caller_cpu: AtomicUsize::new(usize::MAX),
        });
        let mut handles = Vec::with_capacity(threads - 1);
        for i in 1..threads {
            let s = shared.clone();
            match std::thread::Builder::new().name(format!("strata-cpu-{i}")).spawn(move || s.worker()) {
                Ok(h) => handles.push(h),
                Err(_) => break,
            }
        }
        let threads = handles.len() + 1;
        Pool { threads, workers: Some(Workers { shared, submit: Mutex::new(()), handles }) }
    }

    /// Mark a run in progress until the guard is dropped: sleeping workers
    /// are woken now (while the caller starts on the run's first nodes) and
    /// spin between the run's kernels instead of sleeping.
    pub fn busy(&self) -> Busy<'_> {
        if let Some(w) = &self.workers {
            let sh = &w.shared;
            sh.caller_cpu.store(cpu::current(), Ordering::Relaxed);
            sh.runs.fetch_add(1, Ordering::SeqCst);
            if sh.sleepers.load(Ordering::SeqCst) > 0
                && let Ok(_g) = sh.sleep.lock()
            {
                sh.wake.notify_all();
            }
        }
        Busy(self)
    }

    /// Number of threads (at least 1).
    pub fn threads(&self) -> usize {
        self.threads
    }

    /// Threads worth using for `items` items of `work` flops in total.
    fn workers(&self, items: usize, work: usize) -> usize {
        if work < MIN_PARALLEL_WORK { 1 } else { self.threads.min(items).max(1) }
    }

    /// Run `f` on the caller and on the workers; `f` takes work items from
    /// a shared queue until none is left, so any number of participants
    /// (one included) computes the same items the same way.
    fn run(&self, f: &(dyn Fn() + Sync)) {
        let Some(w) = &self.workers else { return f() };
        let Ok(_turn) = w.submit.try_lock() else { return f() };
        let sh = &w.shared;
        // SAFETY (lifetime erasure): workers dereference the pointer only
        // while the job is open or while counted in `active`; this function
        // closes the job and waits for `active` to reach 0 before returning.
        let erased: *const (dyn Fn() + Sync + 'static) = unsafe { std::mem::transmute(f as *const (dyn Fn() + Sync)) };
        if let Ok(mut j) = sh.job.lock() {
            *j = Some(JobPtr(erased));
        }
        sh.caller_cpu.store(cpu::current(), Ordering::Relaxed);
        let epoch = (sh.state.load(Ordering::SeqCst) >> 1) + 1;
        sh.state.store(epoch << 1 | 1, Ordering::SeqCst);
        if sh.sleepers.load(Ordering::SeqCst) > 0
            && let Ok(_g) = sh.sleep.lock()
        {
            sh.wake.notify_all();
        }
        let mine = std::panic::catch_unwind(std::panic::AssertUnwindSafe(f));
        sh.state.store(epoch << 1, Ordering::SeqCst);
        let mut spins = 0u32;
        while sh.active.load(Ordering::SeqCst) != 0 {
            spins += 1;
            if spins < 1 << 12 {
                std::hint::spin_loop();
            } else {
                std::thread::yield_now();
            }
        }
        if let Ok(mut j) = sh.job.lock() {
            *j = None;
        }
        if let Err(p) = mine {
            std::panic::resume_unwind(p);
        }
        if sh.panicked.swap(false, Ordering::SeqCst) {
            panic!("a strata-cpu worker panicked in a kernel");
        }
    }

    /// Call `f(i, chunk)` for every `chunk_len`-long chunk of `out` (the last
    /// may be shorter). `work` is the total flops, to decide on threads.
    pub fn for_each_chunk<T: Send>(
        &self,
        out: &mut [T],
        chunk_len: usize,
        work: usize,
        f: impl Fn(usize, &mut [T]) + Sync,
    ) {
        let chunk_len = chunk_len.max(1);
        let items = out.len().div_ceil(chunk_len);
        if self.workers(items, work) <= 1 {
            for (i, c) in out.chunks_mut(chunk_len).enumerate() {
                f(i, c);
            }
            return;
        }
        // Chunks are handed out in runs of consecutive chunks (about four
        // runs per thread), each taken with one atomic increment: many
        // small chunks handed out one by one under a lock had the threads
        // queue on it (a Resize of rows of 128 values ran 6x slower on two
        // threads than on one). Each chunk is still computed by `f` alone.
        let n = out.len();
        let per = (items / (4 * self.threads)).max(1);
        let base = SharedMut(out.as_mut_ptr());
        let base = &base;
        self.for_each_index(items.div_ceil(per), work, |run| {
            for i in run * per..((run + 1) * per).min(items) {
                let start = i * chunk_len;
                // SAFETY: chunks `start .. start + len` are disjoint parts of
                // `out`, each handed to exactly one call (`for_each_index`
                // runs every run once), and `out` outlives this call.
                let chunk = unsafe { std::slice::from_raw_parts_mut(base.0.add(start), chunk_len.min(n - start)) };
                f(i, chunk);
            }
        });
    }

    /// `f(i)` for every `i` in `0..items`, each exactly once, on any thread.
    /// `work` as above.
    pub fn for_each_index(&self, items: usize, work: usize, f: impl Fn(usize) + Sync) {
        if self.workers(items, work) <= 1 {
            (0..items).for_each(f);
            return;
        }
        let next = AtomicUsize::new(0);
        self.run(&|| {
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= items {
                    break;
                }
                f(i);
            }
        });
    }

    /// `f(i)` for `i` in `0..items`, results in order. `work` as above.
    pub fn map<R: Send>(&self, items: usize, work: usize, f: impl Fn(usize) -> R + Sync) -> Vec<R> {
        if self.workers(items, work) <= 1 {
            return (0..items).map(f).collect();
        }
        let results: Mutex<Vec<Option<R>>> = Mutex::new((0..items).map(|_| None).collect());
        self.for_each_index(items, work, |i| {
            let r = f(i);
            if let Ok(mut v) = results.lock() {
                v[i] = Some(r);
            }
        });
        results.into_inner().unwrap_or_default().into_iter().flatten().collect()
    }
}

/// Which core a thread runs on, and moving off one (Linux; elsewhere the
/// core is unknown and nothing moves).
mod cpu {
    /// The core the calling thread runs on, `usize::MAX` if unknown.
    pub(super) fn current() -> usize {
        #[cfg(target_os = "linux")]
        {
            // SAFETY: sched_getcpu takes no arguments and only reads.
            let c = unsafe { libc::sched_getcpu() };
            if c >= 0 {
                return c as usize;
            }
        }
        usize::MAX
    }

    /// If the calling thread runs on core `busy`, move it to another core
    /// it may run on (its affinity is narrowed for a moment, then restored,
    /// so the system is free to place it anywhere later).
    pub(super) fn avoid(busy: usize) {
        #[cfg(target_os = "linux")]
        if busy != usize::MAX && current() == busy && busy < libc::CPU_SETSIZE as usize {
            // SAFETY: the sets are plain bit sets of the size passed; pid 0
            // is the calling thread.
            unsafe {
                let mut allowed: libc::cpu_set_t = std::mem::zeroed();
                let size = std::mem::size_of::<libc::cpu_set_t>();
                if libc::sched_getaffinity(0, size, &mut allowed) != 0 || libc::CPU_COUNT(&allowed) < 2 {
                    return;
                }
                let mut elsewhere = allowed;
                libc::CPU_CLR(busy, &mut elsewhere);
                if libc::sched_setaffinity(0, size, &elsewhere) == 0 {
                    libc::sched_setaffinity(0, size, &allowed);
                }
            }
        }
        #[cfg(not(target_os = "linux"))]
        let _ = busy;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chunks_cover_everything_once_for_any_thread_count() {
        for threads in [1, 2, 3, 8] {
            let pool = Pool::new(threads);
            let mut v = vec![0u32; 1000];
            pool.for_each_chunk(&mut v, 7, usize::MAX, |i, c| {
                for (j, x) in c.iter_mut().enumerate() {
                    *x += (i * 7 + j) as u32;
                }
            });
            assert!(v.iter().enumerate().all(|(i, &x)| x == i as u32));
            let m = pool.map(100, usize::MAX, |i| i * 2);
            assert_eq!(m, (0..100).map(|i| i * 2).collect::<Vec<_>>());
        }
    }

    // Spawns threads (none on wasm).
    #[cfg(not(target_family = "wasm"))]
    #[test]
    fn many_jobs_in_a_row_and_from_many_threads_all_complete() {
        let pool = Arc::new(Pool::new(3));
        std::thread::scope(|s| {
            for t in 0..4 {
                let pool = pool.clone();
                s.spawn(move || {
                    for round in 0..500 {
                        let mut v = vec![0usize; 257];
                        pool.for_each_chunk(&mut v, 16, usize::MAX, |i, c| {
                            for (j, x) in c.iter_mut().enumerate() {
                                *x = i * 16 + j + round + t;
                            }
                        });
                        assert!(v.iter().enumerate().all(|(i, &x)| x == i + round + t));
                        // Let workers fall asleep now and then.
                        if round % 100 == 0 {
                            std::thread::sleep(std::time::Duration::from_millis(2));
                        }
                    }
                });
            }
        });
    }

    // Needs unwinding (wasm builds abort on panic).
    #[cfg(panic = "unwind")]
    #[test]
    fn a_panicking_item_reaches_the_caller_and_the_pool_keeps_working() {
        let pool = Pool::new(2);
        let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            pool.map(64, usize::MAX, |i| if i == 63 { panic!("boom") } else { i })
        }));
        assert!(r.is_err());
        assert_eq!(pool.map(10, usize::MAX, |i| i + 1), (1..=10).collect::<Vec<_>>());
    }
}
