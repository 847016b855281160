//! Classical machine-learning operators (the `ai.onnx.ml` domain).

use crate::tensor::TensorData;

crate::attr::attr_enum! {
    /// Normalizer's `norm`: divide each row by its largest value, its L1 or
    /// its L2 norm.
    pub enum RowNorm {
        Max = "MAX",
        L1 = "L1",
        L2 = "L2",
    }
}

crate::op_family! {
    /// `ai.onnx.ml` operators.
    pub enum MlOp {
        ArrayFeatureExtractor {},
        Binarizer { threshold: f32 = 0.0 },
        LabelEncoder { default_float: f32 = -0.0, default_int64: i64 = -1, default_string: String = "_Unused".into(),
               default_tensor: Option<TensorData>, keys_floats: Option<Vec<f32>>, keys_int64s: Option<Vec<i64>>,
               keys_strings: Option<Vec<String>>, keys_tensor: Option<TensorData>, values_floats: Option<Vec<f32>>,
               values_int64s: Option<Vec<i64>>, values_strings: Option<Vec<String>>, values_tensor: Option<TensorData> },
        TreeEnsemble { aggregate_function: i64 = 1, leaf_targetids: Vec<i64>, leaf_weights: TensorData,
               membership_values: Option<TensorData>, n_targets: Option<i64>, nodes_falseleafs: Vec<i64>,
               nodes_falsenodeids: Vec<i64>, nodes_featureids: Vec<i64>, nodes_hitrates: Option<TensorData>,
               nodes_missing_value_tracks_true: Option<Vec<i64>>, nodes_modes: TensorData, nodes_splits: TensorData,
               nodes_trueleafs: Vec<i64>, nodes_truenodeids: Vec<i64>, post_transform: i64 = 0, tree_roots: Vec<i64> },
        Normalizer { norm: RowNorm = RowNorm::Max },
        Scaler { offset: Option<Vec<f32>>, scale: Option<Vec<f32>> },
    }
}

impl MlOp {
    /// Shape inference: this family's output types stay unknown.
    #[deny(clippy::wildcard_enum_match_arm)]
    pub fn infer(&self, _ins: &[crate::shape::In]) -> crate::shape::Outs {
        match self {
            MlOp::ArrayFeatureExtractor { .. }
            | MlOp::Binarizer { .. }
            | MlOp::LabelEncoder { .. }
            | MlOp::TreeEnsemble { .. }
            | MlOp::Normalizer { .. }
            | MlOp::Scaler { .. } => Ok(vec![None]),
        }
    }
}
