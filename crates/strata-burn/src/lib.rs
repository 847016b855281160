//! The `burn` backend: Strata IR graphs run on a [burn] tensor backend.
//!
//! This crate owns the engine that compiles one partition of an IR graph
//! into steps over `burn_backend::Backend` primitives and runs them
//! ([`BurnBackend`], [`CompiledGraph`]), the support query answering per
//! node with a reason (operator, attribute or element type), the tensors
//! it holds ([`BurnTensor`]: burn's float primitive beside Strata's logical
//! shape, a rank-0 tensor being burn shape `[1]`), the adapters between
//! ONNX semantics and burn's operations (numpy broadcasting reshaped to
//! equal ranks, 1-D convolution and pooling as 2-D, window geometry from
//! `strata_ir::window`), and its typed errors ([`BurnError`]), which name
//! the node; a panic inside burn becomes such an error.
//!
//! Everything is behind the `flex` feature, which instantiates the engine
//! with burn-flex, burn's portable CPU backend ([`FlexBackend`]). Without
//! it this crate is empty, so default workspace builds compile nothing of
//! burn. It depends on the IR only, never on the `strata` facade (whose
//! `burn` feature adapts it to the facade's `Backend` trait).
//!
//! Phase 1 runs float32 only: elementwise arithmetic and activations,
//! MatMul/Gemm, 1-D and 2-D Conv, pooling, Softmax, BatchNormalization
//! (inference) and the layout operators whose shape operands are weights.
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
