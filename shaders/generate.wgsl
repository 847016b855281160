// Strata GPU: tensors generated from parameters (ConstantOfShape, Range,
// EyeLike). DT says how words are written: 0 f32, 1 i32 (and int64 as i32),
// 2 bool (u32 0/1).
//
// fill: every element is `word`. Parameters: `FillParams`.
// range: out[i] = start + i * delta (as DT). Parameters: `RangeParams`.
// eye: `one` where col - row == k, else 0. Parameters: `EyeParams`.
// window: Hann, Hamming or Blackman window values (f32). Parameters: `WindowParams`.

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

const PI: f32 = 3.141592653589793;

// Each window in a form without cancellation near its zeros, from the
// fraction t = m / denom of the period with m = min(i, denom - i) (the
// windows are symmetric about half the period): Hann sin^2(pi t);
// Hamming 25/46 - 21/46 cos(2 pi t); Blackman 0.42 - 0.5 cos(2 pi t) +
// 0.08 cos(4 pi t) = 0.32 sin^2(pi t) (2.125 - cos(2 pi t)).
fn window_at(i: u32, p: WindowParams) {
    if p.denom == 0u {
        out[i] = 0x7fc00000u;
        return;
    }
    let m = select(p.denom - i, i, 2u * i <= p.denom);
    let t = f32(m) / f32(p.denom);
    let s = sin(PI * t);
    var v: f32;
    switch p.kind {
        case 0u: { v = s * s; }
        case 1u: { v = 25.0 / 46.0 - (21.0 / 46.0) * cos(2.0 * PI * t); }
        default: { v = 0.32 * s * s * (2.125 - cos(2.0 * PI * t)); }
    }
    out[i] = bitcast<u32>(v);
}
