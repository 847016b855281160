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
//! Everything is behind features: `flex` instantiates the engine with
//! burn-flex, burn's portable CPU backend ([`FlexBackend`]); `wgpu` with
//! burn-wgpu, burn's GPU backend through CubeCL ([`WgpuBackend`]). Without
//! either this crate is empty, so default workspace builds compile nothing
//! of burn. It depends on the IR only, never on the `strata` facade (whose
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

#[cfg(any(feature = "flex", feature = "wgpu"))]
mod engine;
#[cfg(any(feature = "flex", feature = "wgpu"))]
mod error;
#[cfg(any(feature = "flex", feature = "wgpu"))]
mod ops;
#[cfg(any(feature = "flex", feature = "wgpu"))]
mod tensor;

/// burn's backend trait, which the engine is generic over.
#[cfg(any(feature = "flex", feature = "wgpu"))]
pub use burn_backend::Backend as TensorBackend;
/// burn-flex's backend type (burn's portable CPU backend).
#[cfg(feature = "flex")]
pub use burn_flex::Flex;
/// burn-wgpu's backend type (burn's GPU backend on wgpu).
#[cfg(feature = "wgpu")]
pub use burn_wgpu::Wgpu;
#[cfg(any(feature = "flex", feature = "wgpu"))]
pub use engine::{BurnBackend, CompiledGraph};
#[cfg(any(feature = "flex", feature = "wgpu"))]
pub use error::{BurnError, Result};
#[cfg(any(feature = "flex", feature = "wgpu"))]
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

/// The engine on burn-wgpu, burn's GPU backend (CubeCL kernels on wgpu).
#[cfg(feature = "wgpu")]
pub type WgpuBackend = BurnBackend<burn_wgpu::Wgpu>;
/// A tensor held by [`WgpuBackend`].
#[cfg(feature = "wgpu")]
pub type WgpuTensor = BurnTensor<burn_wgpu::Wgpu>;
/// A graph compiled by [`WgpuBackend`].
#[cfg(feature = "wgpu")]
pub type WgpuGraph = CompiledGraph<burn_wgpu::Wgpu>;
