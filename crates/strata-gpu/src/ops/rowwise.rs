//! The parameter blocks of `rowwise.wgsl`, whose kernels run one
//! invocation per line of `len` elements `inner` apart; planned with their
//! operators: Hardmax and LpNormalization in `norm.rs`, CumSum / CumProd
//! and TopK in `reduce.rs`.

use crate::wgsl::wgsl_params;

wgsl_params! {
    /// `hardmax`: 1 at the first maximum of each line, 0 elsewhere.
    pub(crate) struct HardmaxParams { lines: u32, len: u32, inner: u32 }
    /// `lp_norm`: each line divided by its L`p` norm (`p` 1 or 2).
    pub(crate) struct LpNormParams { lines: u32, len: u32, inner: u32, p: u32 }
    /// `cumulate`: CumSum (or CumProd when `product`), flags 0 or 1.
    pub(crate) struct CumulateParams {
        lines: u32, len: u32, inner: u32, product: u32, exclusive: u32, reverse: u32,
    }
    /// `top_k`: the `k` largest (`largest` 1) or smallest of each line.
    pub(crate) struct TopKParams { lines: u32, len: u32, inner: u32, k: u32, largest: u32 }
}
