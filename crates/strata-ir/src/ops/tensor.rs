//! Data movement and tensor construction: reshaping, indexing, gathering and
//! scattering, padding, constants, ranges and random generators.

use crate::dtype::DType;
use crate::tensor::TensorData;

crate::op_family! {
    /// Data-movement and tensor-construction operators.
    pub enum TensorOp {
        /// `shape` attribute is the opset-1 form.
        Reshape { allowzero: i64 = 0, shape: Option<Vec<i64>> },
        Flatten { axis: i64 = 1 },
        Squeeze { axes: Option<Vec<i64>> },
        Unsqueeze { axes: Option<Vec<i64>> },
        Transpose { perm: Option<Vec<i64>> },
        Concat { axis: i64 },
        Split { axis: i64 = 0, num_outputs: Option<i64>, split: Option<Vec<i64>> },
        /// `starts`/`ends`/`axes` attributes are the pre-opset-10 form.
        Slice { starts: Option<Vec<i64>>, ends: Option<Vec<i64>>, axes: Option<Vec<i64>> },
        Gather { axis: i64 = 0 },
        GatherElements { axis: i64 = 0 },
        GatherND { batch_dims: i64 = 0 },
        Scatter { axis: i64 = 0 },
        ScatterElements { axis: i64 = 0, reduction: String = "none".into() },
        ScatterND { reduction: String = "none".into() },
        /// Inputs: past cache, update, optional write indices (one per batch entry).
        TensorScatter { axis: i64 = -2, mode: String = "linear".into() },
        Expand {},
        Tile {},
        /// `pads`/`value` attributes are the pre-opset-11 form.
        Pad { mode: String = "constant".into(), pads: Option<Vec<i64>>, value: Option<f32> },
        CenterCropPad { axes: Option<Vec<i64>> },
        Shape { start: i64 = 0, end: Option<i64> },
        Size {},
        ConstantOfShape { value: Option<TensorData> },
        /// A constant; importers fold every `value_*` form into `value`.
        Constant { value: TensorData },
        Range {},
        EyeLike { dtype: Option<DType>, k: i64 = 0 },
        OneHot { axis: i64 = -1 },
        NonZero {},
        Compress { axis: Option<i64> },
        ReverseSequence { batch_axis: i64 = 1, time_axis: i64 = 0 },
        DepthToSpace { blocksize: i64, mode: String = "DCR".into() },
        SpaceToDepth { blocksize: i64, mode: String = "DCR".into() },
        Trilu { upper: i64 = 1 },
        Unique { axis: Option<i64>, sorted: i64 = 1 },
        RandomNormal { dtype: DType = DType::F32, mean: f32 = 0.0, scale: f32 = 1.0, seed: Option<f32>, shape: Vec<i64> },
        RandomUniform { dtype: DType = DType::F32, high: f32 = 1.0, low: f32 = 0.0, seed: Option<f32>, shape: Vec<i64> },
        RandomNormalLike { dtype: Option<DType>, mean: f32 = 0.0, scale: f32 = 1.0, seed: Option<f32> },
        RandomUniformLike { dtype: Option<DType>, high: f32 = 1.0, low: f32 = 0.0, seed: Option<f32> },
        Bernoulli { dtype: Option<DType>, seed: Option<f32> },
        Multinomial { dtype: DType = DType::I32, sample_size: i64 = 1, seed: Option<f32> },
        ImageDecoder { pixel_format: String = "RGB".into() },
    }
}
