//! Running many cases in parallel and checking results against a manifest.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use strata::SessionOptions;

use crate::compare::Tolerance;
use crate::expectations::Expectations;
use crate::suite::{Case, CaseResult, Outcome, op_of_case, run_case};

/// A case's result with the operator it tests.
#[derive(Debug, Clone)]
pub struct Ran {
    pub result: CaseResult,
    pub op: String,
}

/// Run cases on `jobs` threads; `progress(done, total)` is called after each.
pub fn run_cases(
    cases: Vec<Case>,
    options: &SessionOptions,
    tol: Tolerance,
    jobs: usize,
    progress: &(dyn Fn(usize, usize) + Sync),
) -> Vec<Ran> {
    let total = cases.len();
    let next = AtomicUsize::new(0);
    let done = AtomicUsize::new(0);
    let results: Mutex<Vec<Ran>> = Mutex::new(Vec::with_capacity(total));
    let cases = Arc::new(cases);
    std::thread::scope(|s| {
        for _ in 0..jobs.max(1) {
            let (next, done, results, cases) = (&next, &done, &results, cases.clone());
            std::thread::Builder::new()
                .stack_size(64 << 20)
                .spawn_scoped(s, move || {
                    loop {
                        let i = next.fetch_add(1, Ordering::SeqCst);
                        if i >= cases.len() {
                            break;
                        }
                        let c = &cases[i];
                        let result = run_case(c, options, tol);
                        let op = op_of_case(c);
                        results.lock().unwrap_or_else(|e| e.into_inner()).push(Ran { result, op });
                        progress(done.fetch_add(1, Ordering::SeqCst) + 1, total);
                    }
                })
                .expect("spawn worker thread");
        }
    });
    let mut v = results.into_inner().unwrap_or_else(|e| e.into_inner());
    v.sort_by(|a, b| a.result.name.cmp(&b.result.name));
    v
}

/// How results compare with a manifest.
#[derive(Debug, Default)]
pub struct Check {
    pub passed: usize,
    pub total: usize,
    /// Not listed, but failed: (case, message).
    pub unexpected_failures: Vec<(String, String)>,
    /// Listed as failing, but passed.
    pub unexpected_passes: Vec<String>,
    /// Per case: "pass", "fail", "error" or "expected-fail".
    pub statuses: Vec<(String, &'static str)>,
}

impl Check {
    pub fn ok(&self) -> bool {
        self.unexpected_failures.is_empty() && self.unexpected_passes.is_empty()
    }
}

/// Compare results with the expected failures.
pub fn check(results: &[Ran], exp: &Expectations) -> Check {
    let mut c = Check { total: results.len(), ..Default::default() };
    for r in results {
        let listed = exp.failing.contains_key(&r.result.name);
        let status = match (&r.result.outcome, listed) {
            (Outcome::Pass, false) => "pass",
            (Outcome::Pass, true) => {
                c.unexpected_passes.push(r.result.name.clone());
                "pass"
            }
            (_, true) => "expected-fail",
            (o, false) => {
                c.unexpected_failures.push((r.result.name.clone(), o.message().to_string()));
                if matches!(o, Outcome::Fail(_)) { "fail" } else { "error" }
            }
        };
        if r.result.outcome.is_pass() {
            c.passed += 1;
        }
        c.statuses.push((r.result.name.clone(), status));
    }
    c
}
