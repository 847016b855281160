//! The `burn` backend: Strata IR graphs run on a [burn] tensor backend.
//!
//! This crate owns the engine that compiles one partition of an IR graph
//! into steps over `burn_backend::Backend` primitives and runs them
//! ([`BurnBackend`], [`CompiledGraph`]), the support query answering per
//! node with a reason (operator, attribute or element type), the tensors
//! it holds ([`BurnTensor`]: one of burn's float, int or bool primitives
//! beside Strata's logical shape and element type, a rank-0 tensor being
//! burn shape `[1]`), the adapters between ONNX semantics and burn's
//! operations (numpy broadcasting reshaped to equal ranks, 1-D convolution
//! and pooling as 2-D, window geometry from `strata_ir::window`, Resize's
//! sampling plan from `strata_ir::resample`, small integer operands —
//! shapes, axes, pads, starts/ends, repeats — read back from the device
//! when they are computed), and its typed errors ([`BurnError`]), which
//! name the node; a panic inside burn becomes such an error.
//!
//! Everything is behind the `flex` feature, which instantiates the engine
//! with burn-flex, burn's portable CPU backend ([`FlexBackend`]). Without
//! it this crate is empty, so default workspace builds compile nothing of
//! burn. It depends on the IR only, never on the `strata` facade (whose
//! `burn` feature adapts it to the facade's `Backend` trait).
//!
//! Held element types: float32 (float64, float16 and bfloat16 too, for
//! data movement, casts and comparisons), int64 and int32 (burn ints), bool. Kernels
//! per family in `ops/`: elementwise, typed (comparisons, logic, Where,
//! Cast), activations, MatMul/Gemm, Conv/ConvTranspose, pooling,
//! normalisations, Resize, reductions and softmax, losses, recurrent
//! layers, layout and indexing operators.
//!
//! [burn]: https://burn.dev

#[cfg(feature = "flex")]
mod engine;
#[cfg(feature = "flex")]
mod error;
#[cfg(feature = "flex")]
mod ops;
#[cfg(feature = "flex")]
mod tensor;

#[cfg(feature = "flex")]
pub use engine::{BurnBackend, CompiledGraph};
#[cfg(feature = "flex")]
pub use error::{BurnError, Result};
#[cfg(feature = "flex")]
pub use tensor::BurnTensor;

/// The engine on burn-flex, burn's portable CPU backend.
#[cfg(feature = "flex")]
pub type FlexBackend = BurnBackend<burn_flex::Flex>;
/// A tensor held by [`FlexBackend`].
#[cfg(feature = "flex")]
pub type FlexTensor = BurnTensor<burn_flex::Flex>;
/// A graph compiled by [`FlexBackend`].
#[cfg(feature = "flex")]
pub type FlexGraph = CompiledGraph<burn_flex::Flex>;
