//! Fusion of a producer and the elementwise nodes that consume its output
//! (and of elementwise chains on their own) into one [`FusedOp`] node.
//!
//! The pass is backend-neutral: a backend says, through [`FuseRules`],
//! which nodes it can run as a producer and which as a step of a fused
//! program, and runs the pass on the partitions it compiles. A group is
//! grown from a root node (in graph order) by adding elementwise consumers
//! of the group's values whose other inputs are computed before the root;
//! it is kept only in a state where exactly one of its values is read
//! outside the group (or is a graph output), so no value another node needs
//! disappears, and the fused node takes that value as its output. The
//! output is then the last member's output, and the fused node stands where
//! that member stood (every input of the group is computed before it).
//! Diamonds such as `x * clip(x + 3, 0, 6) / 6` (HardSwish written out)
//! form one group, since `x` is read only inside it.

use std::collections::{HashMap, HashSet};

use crate::graph::{Graph, Model, Node, ValueId};
use crate::ops::Op;
use crate::ops::fused::{FusedOp, Operand, Step};

/// What a backend can run fused.
pub struct FuseRules<'a> {
    /// Whether a node may be a group's producer (its one output feeding the
    /// program): typically Conv, Gemm, MatMul.
    pub producer: &'a dyn Fn(&Graph, &Node) -> bool,
    /// Whether an elementwise node may be a step of a program.
    pub step: &'a dyn Fn(&Graph, &Node) -> bool,
    /// Most steps in one group.
    pub max_steps: usize,
}

fn single_output(n: &Node) -> Option<ValueId> {
    match n.outputs.as_slice() {
        [Some(v)] => Some(*v),
        _ => None,
    }
}

/// Fuse groups in the main graph of `model`; returns how many fused nodes
/// were made.
pub fn fuse(model: &mut Model, rules: &FuseRules) -> usize {
    let main = model.main;
    // Values read from inside subgraphs count as read outside any group.
    let captured = super::captured_values(model, main);
    let g = model.graph(main);
    let n = g.nodes.len();
    let mut producer_of: HashMap<ValueId, usize> = HashMap::new();
    let mut consumers: HashMap<ValueId, Vec<usize>> = HashMap::new();
    for (i, node) in g.nodes.iter().enumerate() {
        for v in node.outputs.iter().flatten() {
            producer_of.insert(*v, i);
        }
        for v in node.inputs.iter().flatten() {
            consumers.entry(*v).or_default().push(i);
        }
    }
    let outputs: HashSet<ValueId> = g.outputs.iter().copied().collect();
    let is_step = |i: usize| {
        let node = &g.nodes[i];
        matches!(node.op, Op::Elementwise(_)) && single_output(node).is_some() && (rules.step)(g, node)
    };
    let mut taken = vec![false; n];
    // (members in graph order, fused node) per group.
    let mut groups: Vec<(Vec<usize>, Node)> = Vec::new();
    for root in 0..n {
        if taken[root] || single_output(&g.nodes[root]).is_none() {
            continue;
        }
        let root_step = is_step(root);
        if !root_step && !(rules.producer)(g, &g.nodes[root]) {
            continue;
        }
        let mut members = vec![root];
        let mut in_group: HashSet<usize> = HashSet::from([root]);
        let mut best = 1;
        loop {
            let steps = members.len() - usize::from(!root_step);
            if steps >= rules.max_steps {
                break;
            }
            // The earliest node that reads a group value and can join.
            let candidate = members
                .iter()
                .filter_map(|&m| single_output(&g.nodes[m]))
                .flat_map(|v| consumers.get(&v).into_iter().flatten().copied())
                .filter(|&c| c > root && !taken[c] && !in_group.contains(&c) && is_step(c))
                .filter(|&c| {
                    g.nodes[c].inputs.iter().flatten().all(|v| match producer_of.get(v) {
                        Some(p) => in_group.contains(p) || *p < root,
                        None => true,
                    })
                })
                .min();
            let Some(c) = candidate else { break };
            members.push(c);
            in_group.insert(c);
            // Values read outside the group (or dead, or graph outputs).
            let frontier = members
                .iter()
                .filter_map(|&m| single_output(&g.nodes[m]))
                .filter(|v| {
                    let cs = consumers.get(v).map(Vec::as_slice).unwrap_or(&[]);
                    outputs.contains(v)
                        || captured.contains(v)
                        || cs.is_empty()
                        || cs.iter().any(|c| !in_group.contains(c))
                })
                .count();
            if frontier == 1 {
                best = members.len();
            }
        }
        if best < 2 {
            continue;
        }
        members.truncate(best);
        members.sort_unstable();
        for &m in &members {
            taken[m] = true;
        }
        groups.push((members.clone(), fused_node(g, &members, root_step)));
    }
    let made = groups.len();
    if made == 0 {
        return 0;
    }
    // Each fused node replaces its last member; other members go.
    let mut at: HashMap<usize, Node> = HashMap::new();
    for (members, node) in groups {
        if let Some(&last) = members.last() {
            at.insert(last, node);
        }
    }
    let g = model.graph_mut(main);
    let old = std::mem::take(&mut g.nodes);
    for (i, node) in old.into_iter().enumerate() {
        if let Some(f) = at.remove(&i) {
            g.nodes.push(f);
        } else if !taken[i] {
            g.nodes.push(node);
        }
    }
    made
}

/// The fused node for `members` (graph order; the first is the root).
fn fused_node(g: &Graph, members: &[usize], root_step: bool) -> Node {
    let root = &g.nodes[members[0]];
    let (producer, mut inputs, step_members) = if root_step {
        (None, Vec::new(), members)
    } else {
        (Some(Box::new(root.op.clone())), root.inputs.clone(), &members[1..])
    };
    let producer_inputs = inputs.len() as u32;
    let producer_out = if root_step { None } else { single_output(root) };
    let mut step_of: HashMap<ValueId, u32> = HashMap::new();
    let mut external: Vec<ValueId> = Vec::new();
    let mut steps = Vec::with_capacity(step_members.len());
    for (si, &m) in step_members.iter().enumerate() {
        let node = &g.nodes[m];
        let Op::Elementwise(op) = &node.op else { continue };
        let args = node
            .inputs
            .iter()
            .map(|v| match v {
                None => Operand::Absent,
                Some(v) if Some(*v) == producer_out => Operand::Producer,
                Some(v) => match step_of.get(v) {
                    Some(&s) => Operand::Step(s),
                    None => {
                        let k = external.iter().position(|e| e == v).unwrap_or_else(|| {
                            external.push(*v);
                            external.len() - 1
                        });
                        Operand::Input(k as u32)
                    }
                },
            })
            .collect();
        steps.push(Step { op: op.clone(), args });
        if let Some(o) = single_output(node) {
            step_of.insert(o, si as u32);
        }
    }
    inputs.extend(external.into_iter().map(Some));
    let names: Vec<String> = members.iter().map(|&m| g.nodes[m].name.clone()).collect();
    let last = &g.nodes[*members.last().unwrap_or(&members[0])];
    Node {
        name: names.join("+"),
        op: Op::Fused(FusedOp { producer, producer_inputs, steps, members: names }),
        inputs,
        outputs: last.outputs.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dtype::DType;
    use crate::graph::{Graph, ValueType};
    use crate::ops::{ElementwiseOp as E, NnOp, TensorOp};

    /// A graph from (name, op, inputs, outputs) rows; `x` is its input.
    fn model(rows: &[(&str, Op, &[&str], &str)], outputs: &[&str]) -> Model {
        let mut g = Graph { name: "t".into(), ..Default::default() };
        let val =
            |g: &mut Graph, n: &str| g.find_value(n).unwrap_or_else(|| g.add_value(n, ValueType::tensor(DType::F32)));
        let x = val(&mut g, "x");
        g.inputs.push(x);
        for (name, op, ins, out) in rows {
            let inputs = ins.iter().map(|i| Some(val(&mut g, i))).collect();
            let outputs = vec![Some(val(&mut g, out))];
            g.add_node(Node { name: name.to_string(), op: op.clone(), inputs, outputs });
        }
        for o in outputs {
            let v = val(&mut g, o);
            g.outputs.push(v);
        }
        Model { graphs: vec![g], main: crate::GraphId(0), opsets: vec![], producer: String::new(), metadata: vec![] }
    }

    fn names(m: &Model) -> Vec<String> {
        m.main_graph().nodes.iter().map(|n| n.name.clone()).collect()
    }

    fn fuse_all(m: &mut Model, max_steps: usize) -> usize {
        let producer = |_: &Graph, n: &Node| matches!(n.op, Op::Nn(_));
        let step = |_: &Graph, _: &Node| true;
        fuse(m, &FuseRules { producer: &producer, step: &step, max_steps })
    }

    fn relu() -> Op {
        Op::Elementwise(E::Relu {})
    }

    #[test]
    fn a_producer_and_its_elementwise_consumers_become_one_node_in_the_last_ones_place() {
        let pool = Op::Nn(NnOp::GlobalAveragePool {});
        let mut m = model(
            &[
                ("p", pool, &["x"], "a"),
                ("r", relu(), &["a"], "b"),
                ("add", Op::Elementwise(E::Add {}), &["b", "a"], "c"),
            ],
            &["c"],
        );
        assert_eq!(fuse_all(&mut m, 8), 1);
        assert_eq!(names(&m), ["p+r+add"]);
        let n = &m.main_graph().nodes[0];
        let Op::Fused(f) = &n.op else { panic!("not fused") };
        assert_eq!(f.kinds(), "GlobalAveragePool+Relu+Add");
        assert_eq!(f.steps[1].args, [Operand::Step(0), Operand::Producer]);
        assert_eq!(n.outputs, m.main_graph().outputs.iter().map(|v| Some(*v)).collect::<Vec<_>>());
        f.check(n.inputs.len()).expect("consistent");
    }

    #[test]
    fn a_value_read_outside_the_group_is_never_fused_away() {
        let pool = Op::Nn(NnOp::GlobalAveragePool {});
        let shape = Op::Tensor(TensorOp::Shape { start: 0, end: None });
        // `b` is read by a Shape node: the group may end at `b`, not hide it.
        let mut m = model(
            &[
                ("p", pool.clone(), &["x"], "a"),
                ("r", relu(), &["a"], "b"),
                ("s", shape, &["b"], "s"),
                ("r2", relu(), &["b"], "c"),
            ],
            &["c", "s"],
        );
        assert_eq!(fuse_all(&mut m, 8), 1);
        assert_eq!(names(&m), ["p+r", "s", "r2"]);
        // A graph output inside a chain ends the group there too.
        let mut m =
            model(&[("p", pool, &["x"], "a"), ("r", relu(), &["a"], "b"), ("r2", relu(), &["b"], "c")], &["c", "a"]);
        assert_eq!(fuse_all(&mut m, 8), 1);
        assert_eq!(names(&m), ["p", "r+r2"]);
    }

    #[test]
    fn groups_respect_the_step_limit_and_leave_lone_nodes_alone() {
        let rows: Vec<(String, String, String)> = (0..5)
            .map(|i| (format!("r{i}"), if i == 0 { "x".into() } else { format!("v{}", i - 1) }, format!("v{i}")))
            .collect();
        let table: Vec<(&str, Op, [&str; 1], &str)> =
            rows.iter().map(|(n, i, o)| (n.as_str(), relu(), [i.as_str()], o.as_str())).collect();
        let refs: Vec<(&str, Op, &[&str], &str)> =
            table.iter().map(|(n, op, i, o)| (*n, op.clone(), &i[..], *o)).collect();
        let mut m = model(&refs, &["v4"]);
        assert_eq!(fuse_all(&mut m, 2), 2);
        assert_eq!(names(&m), ["r0+r1", "r2+r3", "r4"]);
    }
}
