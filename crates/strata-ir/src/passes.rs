//! Graph passes.

use crate::graph::{Model, ValueId};

/// Remove nodes whose outputs are never used (dead-code elimination), in
/// every graph of the model. Returns the number of nodes removed.
pub fn eliminate_dead_code(model: &mut Model) -> usize {
    let mut removed = 0;
    for gi in 0..model.graphs.len() {
        let g = &model.graphs[gi];
        let mut live = vec![false; g.values.len()];
        for &o in &g.outputs {
            live[o.0 as usize] = true;
        }
        let mut keep = vec![false; g.nodes.len()];
        for (ni, n) in g.nodes.iter().enumerate().rev() {
            let used = n.outputs.iter().flatten().any(|v| live[v.0 as usize]);
            if used {
                keep[ni] = true;
                for v in n.inputs.iter().flatten() {
                    live[v.0 as usize] = true;
                }
                for sg in n.op.subgraphs() {
                    for (outer, _) in &model.graphs[sg.0 as usize].captures {
                        live[outer.0 as usize] = true;
                    }
                }
            }
        }
        let g = &mut model.graphs[gi];
        let before = g.nodes.len();
        let mut i = 0;
        g.nodes.retain(|_| {
            let k = keep[i];
            i += 1;
            k
        });
        let live_ids: Vec<ValueId> = (0..live.len()).filter(|&i| live[i]).map(|i| ValueId(i as u32)).collect();
        g.initializers.retain(|(v, _)| live_ids.binary_search(v).is_ok());
        removed += before - g.nodes.len();
    }
    removed
}
