//! Work splitting over a fixed number of threads.
//!
//! Work is cut into items whose boundaries depend only on the problem (never
//! on the thread count), and every item is computed by the same code in the
//! same order whichever thread runs it: results are bit-identical for any
//! thread count. Threads are scoped (`std::thread::scope`), so kernels
//! borrow their inputs without `unsafe`; a kernel asks for parallelism only
//! when its work dwarfs the cost of starting a thread. On targets without
//! threads (wasm32) everything runs on the calling thread.

use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};

/// Floating-point operations below which a kernel runs on one thread.
pub const MIN_PARALLEL_WORK: usize = 1 << 20;

/// How many threads kernels may use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Pool {
    threads: usize,
}

impl Pool {
    /// A pool of `threads` threads (the caller's included); 0 means one per
    /// available core. Clamped to 1 where threads do not exist.
    pub fn new(threads: usize) -> Pool {
        let threads = if cfg!(target_family = "wasm") {
            1
        } else if threads == 0 {
            std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1)
        } else {
            threads
        };
        Pool { threads: threads.clamp(1, 256) }
    }

    /// Number of threads (at least 1).
    pub fn threads(&self) -> usize {
        self.threads
    }

    /// Threads worth using for `items` items of `work` flops in total.
    fn workers(&self, items: usize, work: usize) -> usize {
        if work < MIN_PARALLEL_WORK { 1 } else { self.threads.min(items).max(1) }
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
        let workers = self.workers(items, work);
        if workers <= 1 {
            for (i, c) in out.chunks_mut(chunk_len).enumerate() {
                f(i, c);
            }
            return;
        }
        // Chunks are handed out one at a time from a shared queue.
        let queue = Mutex::new(out.chunks_mut(chunk_len).enumerate());
        let next = || queue.lock().map(|mut q| q.next()).unwrap_or(None);
        std::thread::scope(|s| {
            for _ in 1..workers {
                s.spawn(|| {
                    while let Some((i, c)) = next() {
                        f(i, c);
                    }
                });
            }
            while let Some((i, c)) = next() {
                f(i, c);
            }
        });
    }

    /// `f(i)` for `i` in `0..items`, results in order. `work` as above.
    pub fn map<R: Send>(&self, items: usize, work: usize, f: impl Fn(usize) -> R + Sync) -> Vec<R> {
        let workers = self.workers(items, work);
        if workers <= 1 {
            return (0..items).map(f).collect();
        }
        let next = AtomicUsize::new(0);
        let results: Mutex<Vec<Option<R>>> = Mutex::new((0..items).map(|_| None).collect());
        let run = || {
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= items {
                    break;
                }
                let r = f(i);
                if let Ok(mut v) = results.lock() {
                    v[i] = Some(r);
                }
            }
        };
        std::thread::scope(|s| {
            for _ in 1..workers {
                s.spawn(run);
            }
            run();
        });
        results.into_inner().unwrap_or_default().into_iter().flatten().collect()
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
}
