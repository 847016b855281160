//! String operators.

crate::op_family! {
    /// String operators.
    pub enum TextOp {
        StringNormalizer { case_change_action: String = "NONE".into(), is_case_sensitive: i64 = 0,
               locale: Option<String>, stopwords: Option<Vec<String>> },
        StringConcat {},
        StringSplit { delimiter: Option<String>, maxsplit: Option<i64> },
        RegexFullMatch { pattern: Option<String> },
        TfIdfVectorizer { max_gram_length: i64, max_skip_count: i64, min_gram_length: i64, mode: String,
               ngram_counts: Vec<i64>, ngram_indexes: Vec<i64>, pool_int64s: Option<Vec<i64>>,
               pool_strings: Option<Vec<String>>, weights: Option<Vec<f32>> },
    }
}
