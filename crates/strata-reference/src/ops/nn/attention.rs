//! Reference kernels for part of `strata_ir::ops::NnOp` (see `nn.rs`).

use strata_ir::ops::NnOp;

use crate::bail;
use crate::error::KResult;
use crate::ops::{Args, Ctx};
use crate::value::Value;

/// Run one operator of this part of the family.
pub fn run(op: &NnOp, _args: &Args, _ctx: &dyn Ctx) -> KResult<Vec<Value>> {
    #[allow(clippy::match_single_binding)]
    match op {
        other => bail!("no reference kernel for {}", other.name()),
    }
}
