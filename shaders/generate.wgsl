// Strata GPU: tensors generated from parameters (ConstantOfShape, Range,
// EyeLike). DT says how words are written: 0 f32, 1 i32 (and int64 as i32),
// 2 bool (u32 0/1).
//
// fill: every element is `word`. Parameters: `FillParams`.
// range: out[i] = start + i * delta (as DT). Parameters: `RangeParams`.
// eye: `one` where col - row == k, else 0. Parameters: `EyeParams`.

override DT: u32 = DT_F32;

fn fill_at(i: u32, p: FillParams) {
    out[i] = p.word;
}

fn range_at(i: u32, p: RangeParams) {
    if DT == DT_F32 {
        out[i] = bitcast<u32>(p.start + f32(i) * p.delta);
    } else {
        out[i] = bitcast<u32>(p.start_int + i32(i) * p.delta_int);
    }
}

fn eye_at(i: u32, p: EyeParams) {
    let r = i32(i / p.cols);
    let c = i32(i % p.cols);
    out[i] = select(0u, p.one, c - r == p.k);
}
