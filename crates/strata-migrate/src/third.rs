//! The tie-breaker: a third backend's opinion where the target and the
//! reference disagree.
//!
//! When a node's outputs on the target differ from the reference run beyond
//! the tolerance policy, nobody can tell which of the two is wrong without
//! reading kernels. A third, independent implementation (in practice the
//! `burn` backend, reached through [`strata::create_backend`] so this crate
//! never depends on burn) runs the node alone on the same carved inputs;
//! its outputs are compared, under the same per-operator rule, with the
//! reference's and with the target's, and [`ThirdOpinion`] records which
//! of the two it agrees with.

use serde::{Deserialize, Serialize};
use strata::Backend;
use strata::Value;
use strata::ir::{Model, NodeId};

use crate::report::NodeReport;
use crate::{Carved, compare_node, run_alone, supports_alone};

/// Whom the third backend sides with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
#[non_exhaustive]
pub enum Side {
    /// It agrees with the target: look at the reference (or the spec).
    Target,
    /// It agrees with the reference: the target is wrong.
    Reference,
    /// It agrees with neither.
    Neither,
    /// It does not run the node (the reason is given).
    Unsupported,
    /// It failed to run the node (the reason is given).
    Error,
}

impl Side {
    /// The lowercase name used in reports.
    pub fn as_str(self) -> &'static str {
        match self {
            Side::Target => "target",
            Side::Reference => "reference",
            Side::Neither => "neither",
            Side::Unsupported => "unsupported",
            Side::Error => "error",
        }
    }

    /// A sentence for summaries: what this opinion means for the target.
    pub fn meaning(self) -> &'static str {
        match self {
            Side::Target => "agrees with the target: suspect the reference (or the spec)",
            Side::Reference => "agrees with the reference: the target is wrong",
            Side::Neither => "agrees with neither",
            Side::Unsupported => "does not run this node",
            Side::Error => "failed on this node",
        }
    }
}

/// A third backend's verdict on one node where target and reference disagree.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ThirdOpinion {
    /// The third backend's name.
    pub backend: String,
    /// Whom it agrees with.
    pub agrees_with: Side,
    /// Why it is unsupported or failed.
    pub reason: Option<String>,
    /// Largest absolute difference between its outputs and the reference's
    /// (`None` when it did not run).
    pub vs_reference: Option<f64>,
    /// Largest absolute difference between its outputs and the target's.
    pub vs_target: Option<f64>,
}

impl ThirdOpinion {
    /// One line for terminal output.
    pub fn describe(&self) -> String {
        let mut s = format!("{} {}", self.backend, self.agrees_with.meaning());
        if let (Some(r), Some(t)) = (self.vs_reference, self.vs_target) {
            s.push_str(&format!(" (max abs vs reference {r:.3e}, vs target {t:.3e})"));
        }
        if let Some(why) = &self.reason {
            s.push_str(&format!(": {why}"));
        }
        s
    }
}

/// How the third opinions of a report split.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct ThirdSummary {
    /// The third backend's name.
    pub backend: String,
    /// Disagreeing nodes it was asked about.
    pub asked: usize,
    /// It agrees with the reference (the target is blamed).
    pub reference: usize,
    /// It agrees with the target (the reference is suspect).
    pub target: usize,
    /// It agrees with neither.
    pub neither: usize,
    /// It does not run the node, or failed on it.
    pub unsupported: usize,
}

impl ThirdSummary {
    /// The split over `nodes` (`None` when no node carries an opinion).
    pub fn of(nodes: &[NodeReport]) -> Option<ThirdSummary> {
        let mut s: Option<ThirdSummary> = None;
        for o in nodes.iter().filter_map(|r| r.third_opinion.as_ref()) {
            let s = s.get_or_insert_with(|| ThirdSummary { backend: o.backend.clone(), ..Default::default() });
            s.asked += 1;
            match o.agrees_with {
                Side::Reference => s.reference += 1,
                Side::Target => s.target += 1,
                Side::Neither => s.neither += 1,
                Side::Unsupported | Side::Error => s.unsupported += 1,
            }
        }
        s
    }
}

/// Run node `n` alone on `judge` with its carved inputs and compare its
/// outputs, under the node's tolerance rule, with the reference run's
/// (`carved`) and with the target's (`target_out`, by position).
pub(crate) fn judge(
    model: &Model,
    carved: &Carved,
    n: NodeId,
    judge: &dyn Backend,
    target_out: &[Option<Value>],
) -> ThirdOpinion {
    let mut o = ThirdOpinion {
        backend: judge.name().to_string(),
        agrees_with: Side::Unsupported,
        reason: None,
        vs_reference: None,
        vs_target: None,
    };
    if let Err(why) = supports_alone(model, n, judge) {
        o.reason = Some(why);
        return o;
    }
    let ours = match run_alone(model, carved, n, judge) {
        Ok(v) => v,
        Err(e) => {
            o.agrees_with = Side::Error;
            o.reason = Some(e);
            return o;
        }
    };
    let g = model.main_graph();
    let carved_in = carved.node_inputs(g, n);
    let worst = |expected: &[Option<Value>]| {
        let outs = compare_node(g, n, &carved_in, expected, &ours, false);
        let pass = outs.iter().all(|c| c.comparison.pass);
        (pass, outs.iter().map(|c| c.comparison.max_abs).fold(0.0, f64::max))
    };
    let (with_ref, d_ref) = worst(&carved.node_outputs(g, n));
    let (with_target, d_target) = worst(target_out);
    o.vs_reference = Some(d_ref);
    o.vs_target = Some(d_target);
    o.agrees_with = match (with_ref, with_target) {
        // Both within tolerance (the disagreement was at its edge): the closer one.
        (true, true) if d_target < d_ref => Side::Target,
        (true, _) => Side::Reference,
        (false, true) => Side::Target,
        (false, false) => Side::Neither,
    };
    o
}
