//! Reference kernels for `strata_ir::ops::ReduceOp`.

use strata_ir::ops::ReduceOp;

use super::{Args, Ctx};
use crate::bail;
use crate::error::KResult;
use crate::value::Value;

/// Run one operator of this family.
pub fn run(op: &ReduceOp, _args: &Args, _ctx: &dyn Ctx) -> KResult<Vec<Value>> {
    #[allow(clippy::match_single_binding)]
    match op {
        other => bail!("no reference kernel for {}", other.name()),
    }
}
