//! Results of the per-operator and staged phases, and the combined
//! [`Report`] (serialised as JSON here; its HTML page is `html.rs`, writing
//! both to disk `output.rs`).

use serde::{Deserialize, Serialize};
use strata_conformance::tolerance::Comparison;

use crate::MigrateError;
use crate::third::{ThirdOpinion, ThirdSummary};

/// Verdict for one node.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
#[non_exhaustive]
pub enum Status {
    /// Every output within its rule.
    Pass,
    /// Some output outside its rule.
    Fail,
    /// The target does not support the node (not a failure).
    Unsupported,
    /// Host work by design, on every target: control flow or shape
    /// bookkeeping (not a target kernel, not a gap).
    Host,
    /// Upload, compile, run or download failed.
    Error,
}

impl Status {
    /// The lowercase name used in reports.
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Pass => "pass",
            Status::Fail => "fail",
            Status::Unsupported => "unsupported",
            Status::Host => "host",
            Status::Error => "error",
        }
    }
}

/// The comparison of one output value.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OutputReport {
    /// The value's name.
    pub name: String,
    /// Rule applied, errors and verdict.
    pub comparison: Comparison,
}

/// The result for one node of the main graph.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NodeReport {
    /// Position in topological order.
    pub index: usize,
    /// Node name.
    pub node: String,
    /// Operator name.
    pub op: String,
    /// Backend the node ran on.
    pub backend: String,
    /// Verdict.
    pub status: Status,
    /// Why the node is unsupported or errored.
    pub reason: Option<String>,
    /// Rule of the first output (all outputs of a node share the operator's policy).
    pub rule: String,
    /// Largest absolute error over the outputs.
    pub max_abs: f64,
    /// Largest relative error over the outputs.
    pub max_rel: f64,
    /// Largest ULP distance over the outputs.
    pub max_ulp: u64,
    /// Per-output comparisons.
    pub outputs: Vec<OutputReport>,
    /// Where the target failed and a third backend was asked: whom it sides with.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub third_opinion: Option<ThirdOpinion>,
}

impl NodeReport {
    /// A passing report without outputs (filled by `set_outputs`).
    pub(crate) fn new(index: usize, node: &str, op: &str, backend: &str) -> Self {
        NodeReport {
            index,
            node: node.to_string(),
            op: op.to_string(),
            backend: backend.to_string(),
            status: Status::Pass,
            reason: None,
            rule: String::new(),
            max_abs: 0.0,
            max_rel: 0.0,
            max_ulp: 0,
            outputs: Vec::new(),
            third_opinion: None,
        }
    }

    /// Record output comparisons and derive the verdict and worst errors.
    pub(crate) fn set_outputs(&mut self, outputs: Vec<OutputReport>) {
        self.rule = outputs.first().map(|o| o.comparison.rule.clone()).unwrap_or_default();
        for o in &outputs {
            let c = &o.comparison;
            self.max_abs = self.max_abs.max(c.max_abs);
            self.max_rel = self.max_rel.max(c.max_rel);
            self.max_ulp = self.max_ulp.max(c.max_ulp);
            if !c.pass {
                self.status = Status::Fail;
                if self.reason.is_none() {
                    self.reason = c.message.as_ref().map(|m| format!("{}: {m}", o.name));
                }
            }
        }
        self.outputs = outputs;
    }
}

/// Where a run first diverged from the reference.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Divergence {
    /// Stage index (`None` for the per-operator phase).
    pub stage: Option<usize>,
    /// Node position in topological order.
    pub index: usize,
    /// Node name.
    pub node: String,
    /// Operator name.
    pub op: String,
}

impl Divergence {
    pub(crate) fn at(r: &NodeReport, stage: Option<usize>) -> Self {
        Divergence { stage, index: r.index, node: r.node.clone(), op: r.op.clone() }
    }
}

/// The result of one stage of the staged phase.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StageReport {
    /// Stage number.
    pub index: usize,
    /// Label of the stage (`nodes 0..141`, `+Conv`).
    pub label: String,
    /// Nodes the stage asked to move to the target.
    pub requested: usize,
    /// Nodes actually placed on the target (others were unsupported).
    pub on_target: usize,
    /// Every node's outputs compared with the reference run, in topological order.
    pub nodes: Vec<NodeReport>,
    /// The model's final outputs compared with the reference run.
    pub outputs: Vec<OutputReport>,
    /// First node (topological order) whose outputs diverge.
    pub first_divergence: Option<Divergence>,
    /// Why the stage could not run (session creation or run failed).
    pub error: Option<String>,
}

impl StageReport {
    /// True if the stage ran and every value matched.
    pub fn pass(&self) -> bool {
        self.error.is_none() && self.first_divergence.is_none() && self.outputs.iter().all(|o| o.comparison.pass)
    }
}

/// Counts and first divergences of a report.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct Summary {
    /// Nodes in the main graph.
    pub nodes: usize,
    /// Per-operator phase: nodes that passed.
    pub passed: usize,
    /// Per-operator phase: nodes that failed (including errors).
    pub failed: usize,
    /// Per-operator phase: nodes the target does not support.
    pub unsupported: usize,
    /// Per-operator phase: nodes that are host work by design.
    #[serde(default)]
    pub host: usize,
    /// Per-operator phase: the first failing node.
    pub first_failing_operator: Option<Divergence>,
    /// Staged phase: stages run and stages that passed.
    pub stages: usize,
    /// Staged phase: stages in which every value matched.
    pub stages_passed: usize,
    /// Staged phase: the first stage that diverged and its first diverging node.
    pub first_divergence: Option<Divergence>,
    /// Staged phase: the first stage that could not run, with the reason.
    pub first_stage_error: Option<(usize, String)>,
    /// Per-operator phase: how a third backend's opinions on the failing
    /// nodes split (`--third-opinion`; absent without one).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub third_opinion: Option<ThirdSummary>,
}

/// Both phases of a bring-up run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Report {
    /// The model (path or name).
    pub model: String,
    /// The target backend's name.
    pub target: String,
    /// The stage plan, as text (`4 ranges`, `by op`).
    pub plan: String,
    /// Counts and first divergences.
    pub summary: Summary,
    /// Per-operator phase, one entry per node.
    pub per_operator: Vec<NodeReport>,
    /// Staged phase, one entry per stage.
    pub stages: Vec<StageReport>,
}

impl Report {
    /// Assemble a report and compute its summary.
    pub fn new(
        model: impl Into<String>,
        target: impl Into<String>,
        plan: impl Into<String>,
        per_operator: Vec<NodeReport>,
        stages: Vec<StageReport>,
    ) -> Self {
        let count = |s: &[Status]| per_operator.iter().filter(|r| s.contains(&r.status)).count();
        let summary = Summary {
            nodes: per_operator.len().max(stages.first().map_or(0, |s| s.nodes.len())),
            passed: count(&[Status::Pass]),
            failed: count(&[Status::Fail, Status::Error]),
            unsupported: count(&[Status::Unsupported]),
            host: count(&[Status::Host]),
            first_failing_operator: per_operator
                .iter()
                .find(|r| matches!(r.status, Status::Fail | Status::Error))
                .map(|r| Divergence::at(r, None)),
            stages: stages.len(),
            stages_passed: stages.iter().filter(|s| s.pass()).count(),
            first_divergence: stages.iter().find_map(|s| s.first_divergence.clone()),
            first_stage_error: stages.iter().find_map(|s| s.error.clone().map(|e| (s.index, e))),
            third_opinion: ThirdSummary::of(&per_operator),
        };
        Report { model: model.into(), target: target.into(), plan: plan.into(), summary, per_operator, stages }
    }

    /// True if every node passed or is unsupported and every stage matched.
    pub fn pass(&self) -> bool {
        self.summary.failed == 0 && self.stages.iter().all(|s| s.pass())
    }

    /// The report as pretty-printed JSON.
    pub fn to_json(&self) -> Result<String, MigrateError> {
        serde_json::to_string_pretty(self).map_err(|e| MigrateError::Io(format!("serialising the report: {e}")))
    }
}
