//! String operators.

crate::attr::attr_enum! {
    /// StringNormalizer's `case_change_action`.
    pub enum CaseChange {
        None = "NONE",
        Lower = "LOWER",
        Upper = "UPPER",
    }
}

crate::attr::attr_enum! {
    /// TfIdfVectorizer's `mode`: term frequency, inverse document
    /// frequency (the weight of each present n-gram), or their product.
    pub enum TfIdfMode {
        Tf = "TF",
        Idf = "IDF",
        TfIdf = "TFIDF",
    }
}

crate::op_family! {
    /// String operators.
    pub enum TextOp {
        StringNormalizer { case_change_action: CaseChange = CaseChange::None, is_case_sensitive: i64 = 0,
               locale: Option<String>, stopwords: Option<Vec<String>> },
        StringConcat {},
        StringSplit { delimiter: Option<String>, maxsplit: Option<i64> },
        RegexFullMatch { pattern: Option<String> },
        TfIdfVectorizer { max_gram_length: i64, max_skip_count: i64, min_gram_length: i64, mode: TfIdfMode,
               ngram_counts: Vec<i64>, ngram_indexes: Vec<i64>, pool_int64s: Option<Vec<i64>>,
               pool_strings: Option<Vec<String>>, weights: Option<Vec<f32>> },
    }
}

impl TextOp {
    /// Shape inference: this family's output types stay unknown.
    #[deny(clippy::wildcard_enum_match_arm)]
    pub fn infer(&self, _ins: &[crate::shape::In]) -> crate::shape::Outs {
        match self {
            TextOp::StringNormalizer { .. }
            | TextOp::StringConcat { .. }
            | TextOp::StringSplit { .. }
            | TextOp::RegexFullMatch { .. }
            | TextOp::TfIdfVectorizer { .. } => Ok(vec![None]),
        }
    }
}
