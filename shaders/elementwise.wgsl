// Strata GPU: elementwise kernels.
//
// Every tensor is an array of 32-bit words; the override DT says how to read
// them (DT_F32, DT_I32, DT_BOOL: u32 0/1, DT_U32). Narrow
// types live widened in these words (float16, bfloat16 and float8 as f32,
// int8/16 and uint8/16 as i32); after a kernel computes such an output,
// `narrow` rounds or wraps it in place to the type. Integer arithmetic is in
// integer.wgsl. OP selects the operation (the UNARY_ / BINARY_ codes).
// Invocations are numbered over a 2-D grid of 64-wide workgroups so that
// tensors larger than 65,535 * 64 elements stay within dispatch limits.

override OP: u32 = 0u;
override DT: u32 = DT_F32;

// f32 to an integer word: truncate toward zero, then wrap modulo 2^32 (the
// integer types narrower than 32 bits are wrapped further by `narrow`).
// NaN gives 0; magnitudes of 2^127 and more (and infinities) give all ones
// when positive and 0 when negative, as the reference's saturating 128-bit
// conversion does before it wraps.
fn f32_to_int_bits(x: f32) -> u32 {
    let w = bitcast<u32>(x);
    let mag = w & 0x7fffffffu;
    if mag > 0x7f800000u {
        return 0u;
    }
    let neg = (w >> 31u) != 0u;
    let e = i32(mag >> 23u) - 127;
    if e < 0 {
        return 0u;
    }
    if e >= 127 {
        return select(0xffffffffu, 0u, neg);
    }
    let m = (mag & 0x7fffffu) | 0x800000u;
    var v = 0u;
    if e <= 23 {
        v = m >> u32(23 - e);
    } else if e < 55 {
        v = m << u32(e - 23);
    }
    return select(v, 0u - v, neg);
}

// Unary map of float words: `unary_f32` (generated from strata-gpu's
// `UNARY_F32` table) with the operator's two parameters; codes from
// UNARY_F32_TO_I32 on are conversions and predicates whose output type
// differs from the input's (IsInf: alpha detects negative, beta positive).
fn unary_at(i: u32, p: UnaryParams) {
    let w = a[i];
    if OP >= UNARY_F32_TO_I32 {
        var r = 0u;
        switch OP {
            case UNARY_F32_TO_I32: { r = f32_to_int_bits(bitcast<f32>(w)); }
            case UNARY_I32_TO_F32: { r = bitcast<u32>(f32(bitcast<i32>(w))); }
            case UNARY_F32_TO_BOOL: { r = select(0u, 1u, bitcast<f32>(w) != 0.0); }
            case UNARY_WORD_TO_BOOL: { r = select(0u, 1u, w != 0u); }
            case UNARY_BOOL_TO_F32: { r = bitcast<u32>(select(0.0, 1.0, w != 0u)); }
            case UNARY_NOT: { r = select(1u, 0u, w != 0u); }
            case UNARY_IS_NAN: { r = select(0u, 1u, is_nan_f(bitcast<f32>(w))); }
            case UNARY_IS_INF: {
                let x = bitcast<f32>(w);
                let hit = is_inf_f(x) && ((x < 0.0 && p.a != 0u) || (x > 0.0 && p.b != 0u));
                r = select(0u, 1u, hit);
            }
            case UNARY_U32_TO_F32: { r = bitcast<u32>(f32(w)); }
            default: { r = w; }
        }
        out[i] = r;
        return;
    }
    out[i] = bitcast<u32>(unary_f32(bitcast<f32>(w), bitcast<f32>(p.a), bitcast<f32>(p.b)));
}

// C's fmod (the remainder takes the dividend's sign); a finite x modulo an
// infinite y is x.
fn fmod_f(x: f32, y: f32) -> f32 {
    if is_inf_f(y) && !is_inf_f(x) && !is_nan_f(x) {
        return x;
    }
    return x - y * trunc(x / y);
}

// How `binary` reads its second operand when DT is DT_F32: as f32, or
// converted from DT_I32 / DT_U32 words (Pow with an integer exponent).
override DTB: u32 = DT_F32;

fn read_b_f32(w: u32) -> f32 {
    switch DTB {
        case DT_I32: { return f32(bitcast<i32>(w)); }
        case DT_U32: { return f32(w); }
        default: { return bitcast<f32>(w); }
    }
}

// 0 add, 1 sub, 2 mul, 3 div, 4 pow, 5 max, 6 min, 7 eq, 8 gt, 9 ge, 10 lt,
// 11 le, 12 fmod, 13 prelu, 14 and, 15 or, 16 xor, 17 mod (Python's).
fn binary_f32(x: f32, y: f32) -> u32 {
    switch OP {
        case BINARY_ADD: { return bitcast<u32>(x + y); }
        case BINARY_SUB: { return bitcast<u32>(x - y); }
        case BINARY_MUL: { return bitcast<u32>(x * y); }
        case BINARY_DIV: { return bitcast<u32>(x / y); }
        case BINARY_POW: { return bitcast<u32>(pow_f(x, y)); }
        case BINARY_MAX: {
            if is_nan_f(x) || is_nan_f(y) { return 0x7fc00000u; }
            return bitcast<u32>(max(x, y));
        }
        case BINARY_MIN: {
            if is_nan_f(x) || is_nan_f(y) { return 0x7fc00000u; }
            return bitcast<u32>(min(x, y));
        }
        case BINARY_EQ, BINARY_GT, BINARY_GE, BINARY_LT, BINARY_LE: { return compare_f32(x, y); }
        case BINARY_FMOD: { return bitcast<u32>(fmod_f(x, y)); }
        case BINARY_PRELU: { return bitcast<u32>(select(x, x * y, x < 0.0)); }
        case BINARY_MOD: {
            // Python's modulo: the remainder takes the divisor's sign.
            let r = fmod_f(x, y);
            if y == 0.0 || is_nan_f(r) { return bitcast<u32>(r); }
            if r == 0.0 { return select(0u, 0x80000000u, y < 0.0); }
            return bitcast<u32>(select(r, r + y, (y < 0.0) != (r < 0.0)));
        }
        default: { return 0u; }
    }
}

fn binary_i32(x: i32, y: i32) -> u32 {
    switch OP {
        case BINARY_ADD: { return bitcast<u32>(x + y); }
        case BINARY_SUB: { return bitcast<u32>(x - y); }
        case BINARY_MUL: { return bitcast<u32>(x * y); }
        case BINARY_MAX: { return bitcast<u32>(max(x, y)); }
        case BINARY_MIN: { return bitcast<u32>(min(x, y)); }
        case BINARY_EQ, BINARY_GT, BINARY_GE, BINARY_LT, BINARY_LE: { return compare_i32(x, y); }
        case BINARY_AND: { return select(0u, 1u, x != 0 && y != 0); }
        case BINARY_OR: { return select(0u, 1u, x != 0 || y != 0); }
        case BINARY_XOR: { return select(0u, 1u, (x != 0) != (y != 0)); }
        default: { return 0u; }
    }
}

fn binary_at(i: u32, p: BroadcastParams) {
    let o = offsets(i);
    if DT == DT_F32 {
        out[i] = binary_f32(bitcast<f32>(a[o.x]), read_b_f32(b[o.y]));
    } else {
        out[i] = binary_i32(bitcast<i32>(a[o.x]), bitcast<i32>(b[o.y]));
    }
}

// Where: a = condition (bool words), b = when true, c = when false.
fn where_select_at(i: u32, p: BroadcastParams) {
    let o = offsets(i);
    out[i] = select(c[o.z], b[o.y], a[o.x] != 0u);
}

// ---------------------------------------------------------------- narrowing

// Wrap a 32-bit integer word to `bits` bits (two's complement when signed).
fn wrap_int(w: u32, bits: u32, signed: bool) -> u32 {
    if bits >= 32u {
        return w;
    }
    let sh = 32u - bits;
    if signed {
        return bitcast<u32>(bitcast<i32>(w << sh) >> sh);
    }
    return (w << sh) >> sh;
}

// Round an f32 (as bits) to the nearest bfloat16, ties to even; overflow
// gives infinity, NaN stays NaN.
fn round_bf16(w: u32) -> u32 {
    if (w & 0x7fffffffu) > 0x7f800000u {
        return (w | 0x00400000u) & 0xffff0000u;
    }
    return (w + 0x7fffu + ((w >> 16u) & 1u)) & 0xffff0000u;
}

// Round an f32 (as bits) to the nearest value of a small float format
// (float16, the float8 kinds, float4e2m1), ties to even, with integer
// arithmetic only. `man`: mantissa bits; `emin`: exponent of the smallest
// normal value; `maxbits`: f32 bits of the largest finite value; flags:
// 1 the format has infinities, 2 it has no negative zero (fnuz), 4 saturate
// (overflow and infinities give the largest finite value), 8 it has neither
// NaN nor infinity (float4e2m1: overflow saturates, NaN becomes a zero of
// the opposite sign, as ONNX does).
fn round_small(w: u32, man: u32, emin: i32, maxbits: u32, flags: u32) -> u32 {
    let sign = w & 0x80000000u;
    let mag = w & 0x7fffffffu;
    if mag > 0x7f800000u {
        if (flags & 8u) != 0u {
            return sign ^ 0x80000000u;
        }
        return 0x7fc00000u;
    }
    var r = mag;
    if mag < 0x7f800000u {
        // value = m * 2^(e - 23), e the unbiased exponent (f32 subnormals: -126).
        let field = mag >> 23u;
        var e = -126;
        var m = mag & 0x7fffffu;
        if field != 0u {
            e = i32(field) - 127;
            m = m | 0x800000u;
        }
        // The result is a multiple of the quantum 2^qe.
        let qe = max(e, emin) - i32(man);
        let shift = u32(qe - (e - 23));
        var q = 0u;
        if shift < 32u {
            q = m >> shift;
            let rem = m & ((1u << shift) - 1u);
            let half = 1u << (shift - 1u);
            if rem > half || (rem == half && (q & 1u) == 1u) {
                q = q + 1u;
            }
        }
        r = bitcast<u32>(ldexp(f32(q), qe));
    }
    if r > maxbits {
        if (flags & 12u) != 0u {
            r = maxbits;
        } else if (flags & 1u) != 0u {
            r = 0x7f800000u;
        } else {
            return 0x7fc00000u;
        }
    }
    if r == 0u && (flags & 2u) != 0u {
        return 0u;
    }
    return sign | r;
}

// Round an f32 (as bits) to float8e8m0, a power of two or NaN, as ONNX
// does: the sign is ignored, the f32 exponent is the code, rounded up by one
// per `mode` (0 up unless exact, 1 down, 2 nearest: guard bit set and round
// or sticky bits or a normal input); with `saturate` never past 2^127.
// Code 0 is 2^-127 (an f32 subnormal, kept as bits), 0xff NaN.
fn round_e8m0(w: u32, mode: u32, saturate: bool) -> u32 {
    let e = (w >> 23u) & 0xffu;
    if e == 0xffu {
        return 0x7fc00000u;
    }
    var up = false;
    switch mode {
        case 0u: { up = (w & 0x7fffffu) != 0u; }
        case 2u: { up = (w & 0x400000u) != 0u && ((w & 0x200000u) != 0u || (w & 0x1fffffu) != 0u || e > 0u); }
        default: {}
    }
    var code = e;
    if up && !(saturate && e == 0xfeu) {
        code = e + 1u;
    }
    if code == 0xffu {
        return 0x7fc00000u;
    }
    if code == 0u {
        return 0x00400000u;
    }
    return code << 23u;
}

// In-place narrowing of computed values to their element type; what is
// done is `NarrowParams::kind` (the NARROW_ codes).
fn narrow_at(i: u32, p: NarrowParams) {
    let w = out[i];
    switch p.kind {
        case NARROW_WRAP: { out[i] = wrap_int(w, p.bits, p.signed != 0u); }
        case NARROW_BF16: { out[i] = round_bf16(w); }
        case NARROW_SMALL: { out[i] = round_small(w, p.man, p.emin, p.max_bits, p.flags); }
        case NARROW_E8M0: { out[i] = round_e8m0(w, p.mode, p.saturate != 0u); }
        // Test-only fault injection (strata_gpu::inject_fault): a deliberate,
        // clearly wrong result (floats moved by 0.5 + 25%, integers' low bit flipped).
        case NARROW_FAULT: {
            if p.float != 0u {
                let f = bitcast<f32>(w);
                out[i] = bitcast<u32>(f + 0.5 + 0.25 * abs(f));
            } else {
                out[i] = w ^ 1u;
            }
        }
        default: {}
    }
}

// ---------------------------------------------------------------- quantisation

// x / y correctly rounded (WGSL's division may be off by 2.5 ulp): the
// quotient's neighbours are compared by their exact residual x - q * y
// (Dekker's product, no fused multiply-add needed).
fn split_f(a: f32) -> vec2<f32> {
    let c = 4097.0 * a;
    let hi = c - (c - a);
    return vec2<f32>(hi, a - hi);
}

fn residual(x: f32, q: f32, y: f32) -> f32 {
    let p = q * y;
    let qs = split_f(q);
    let ys = split_f(y);
    let err = ((qs.x * ys.x - p) + qs.x * ys.y + qs.y * ys.x) + qs.y * ys.y;
    return (x - p) - err;
}

fn div_rn(x: f32, y: f32) -> f32 {
    let q = x / y;
    let aq = abs(q);
    let ay = abs(y);
    if !(aq > 1e-30 && aq < 1e30 && ay > 1e-30 && ay < 1e30) {
        return q;
    }
    let qb = bitcast<u32>(q);
    let lo = bitcast<f32>(qb - 1u);
    let hi = bitcast<f32>(qb + 1u);
    var best = q;
    var err = abs(residual(x, q, y));
    let el = abs(residual(x, lo, y));
    if el < err {
        best = lo;
        err = el;
    }
    let eh = abs(residual(x, hi, y));
    if eh < err {
        best = hi;
    }
    return best;
}

// Round to the working precision of QuantizeLinear: 0 f32, 1 f16, 2 bf16.
fn round_work(w: u32, wk: u32) -> u32 {
    switch wk {
        case 1u: { return round_small(w, 10u, -14, 0x477fe000u, 1u); }
        case 2u: { return round_bf16(w); }
        default: { return w; }
    }
}

// Index into the scale (or the zero point) for element i of x, from
// `QuantParams`' [inner, dim, block, outer stride, block stride, inner
// stride] (x's elements after the axis, the axis' size, the block size; a
// scalar has all strides 0, per axis only the block stride is 1).
fn qparam_index(i: u32, zero: bool) -> u32 {
    let inner = qparam(0u, zero);
    let dim = qparam(1u, zero);
    let c = (i / inner) % dim;
    let o = i / (inner * dim);
    return o * qparam(3u, zero) + (c / qparam(2u, zero)) * qparam(4u, zero) + (i % inner) * qparam(5u, zero);
}

// Word k of the zero point's index block, or of the scale's.
fn qparam(k: u32, zero: bool) -> u32 {
    if zero {
        return quant_params_zero_index(k);
    }
    return quant_params_scale_index(k);
}

// A zero point or quantised value word as f32: DT 1 i32 words, else f32.
fn q_word_f32(w: u32) -> f32 {
    if DT == DT_I32 {
        return f32(bitcast<i32>(w));
    }
    return bitcast<f32>(w);
}

// QuantizeLinear: a = x (f32 words), b = scale, c = zero point (DT says
// how to read it). Parameters: `QuantParams`.
// Integer outputs: round half to even, add the zero point, saturate; float
// outputs: x / scale + zero point (narrowed to the float8 type afterwards).
fn quantize_at(i: u32, p: QuantParams) {
    let wk = p.work;
    let x = bitcast<f32>(round_work(a[i], wk));
    let s = bitcast<f32>(round_work(b[qparam_index(i, false)], wk));
    let v = bitcast<f32>(round_work(bitcast<u32>(div_rn(x, s)), wk));
    var z = 0.0;
    if p.has_zero != 0u {
        z = q_word_f32(c[qparam_index(i, true)]);
    }
    if p.float_out != 0u {
        out[i] = round_work(bitcast<u32>(v + z), wk);
        return;
    }
    var r = 0.0;
    if !is_nan_f(v) {
        r = round(v);
    }
    let lo = f32(p.lo);
    let hi = f32(p.hi);
    out[i] = bitcast<u32>(i32(clamp(r + z, lo, hi)));
}

// DequantizeLinear: (x - zero point) * scale in f32. a = x, b = scale,
// c = zero point (x and the zero point read per DT).
fn dequantize_at(i: u32, p: QuantParams) {
    var z = 0.0;
    if p.has_zero != 0u {
        z = q_word_f32(c[qparam_index(i, true)]);
    }
    let s = bitcast<f32>(b[qparam_index(i, false)]);
    out[i] = bitcast<u32>((q_word_f32(a[i]) - z) * s);
}
