//! Signal processing: Fourier transforms, windows and mel filters.

use crate::dtype::DType;

crate::op_family! {
    /// Signal-processing operators.
    pub enum SignalOp {
        /// `axis` attribute is the opset-17 form (later an input).
        DFT { axis: Option<i64>, inverse: i64 = 0, onesided: i64 = 0 },
        STFT { onesided: i64 = 1 },
        HannWindow { output_datatype: DType = DType::F32, periodic: i64 = 1 },
        HammingWindow { output_datatype: DType = DType::F32, periodic: i64 = 1 },
        BlackmanWindow { output_datatype: DType = DType::F32, periodic: i64 = 1 },
        MelWeightMatrix { output_datatype: DType = DType::F32 },
    }
}
