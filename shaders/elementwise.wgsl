// Strata GPU: elementwise kernels.
//
// Every tensor is an array of 32-bit words; the override DT says how to read
// them (0 = f32, 1 = i32, 2 = bool stored as u32 0/1). OP selects the
// operation. Parameters live in a uniform block of u32 words (see `P`).
// Invocations are numbered over a 2-D grid of 64-wide workgroups so that
// tensors larger than 65,535 * 64 elements stay within dispatch limits.

override OP: u32 = 0u;
override DT: u32 = 0u;

@group(0) @binding(0) var<uniform> params: array<vec4<u32>, 32>;
@group(0) @binding(1) var<storage, read_write> out: array<u32>;
@group(0) @binding(2) var<storage, read> a: array<u32>;
@group(0) @binding(3) var<storage, read> b: array<u32>;
@group(0) @binding(4) var<storage, read> c: array<u32>;

fn P(i: u32) -> u32 {
    return params[i / 4u][i % 4u];
}

fn PF(i: u32) -> f32 {
    return bitcast<f32>(P(i));
}

fn linear_index(wid: vec3<u32>, nwg: vec3<u32>, lidx: u32) -> u32 {
    return (wid.y * nwg.x + wid.x) * 64u + lidx;
}

const SQRT_PI_INV2: f32 = 1.1283791670955126;

fn erf_f(x: f32) -> f32 {
    let ax = abs(x);
    if ax < 2.0 {
        // Maclaurin series: 2/sqrt(pi) * sum (-1)^n x^(2n+1) / (n! (2n+1)).
        let x2 = x * x;
        var term = x;
        var sum = x;
        for (var n = 1u; n < 40u; n = n + 1u) {
            term = -term * x2 / f32(n);
            let t = term / f32(2u * n + 1u);
            sum = sum + t;
            if abs(t) < 1e-9 * abs(sum) {
                break;
            }
        }
        return SQRT_PI_INV2 * sum;
    }
    // Continued fraction for erfc, evaluated bottom-up (converges fast for |x| >= 2).
    var f = 0.0;
    for (var k = 60u; k >= 1u; k = k - 1u) {
        f = (f32(k) * 0.5) / (ax + f);
    }
    let erfc = exp(-ax * ax) / (ax + f) * 0.5641895835477563;
    return sign(x) * (1.0 - erfc);
}

fn sigmoid_f(x: f32) -> f32 {
    if x >= 0.0 {
        return 1.0 / (1.0 + exp(-x));
    }
    let e = exp(x);
    return e / (1.0 + e);
}

// exp(y) - 1 without cancellation near 0 (Kahan: the rounding error of
// exp(y) is cancelled by dividing by log of the rounded value).
fn expm1_f(y: f32) -> f32 {
    let u = exp(y);
    if u == 1.0 {
        return y;
    }
    let um1 = u - 1.0;
    if um1 == -1.0 {
        return -1.0;
    }
    if abs(y) < 1.0 {
        return um1 * y / log(u);
    }
    return um1;
}

// tanh(x) = expm1(2x) / (expm1(2x) + 2): accurate for small |x| (the
// built-in may cancel there) and saturating cleanly for large |x|.
fn tanh_f(x: f32) -> f32 {
    let cx = clamp(x, -15.0, 15.0);
    let e = expm1_f(2.0 * cx);
    return e / (e + 2.0);
}

// log(1 + e) without losing small e (the rounding error of 1 + e is
// cancelled by dividing by the rounded increment).
fn log1p_f(e: f32) -> f32 {
    let u = 1.0 + e;
    if u == 1.0 {
        return e;
    }
    return log(u) * e / (u - 1.0);
}

fn softplus_f(x: f32) -> f32 {
    return max(x, 0.0) + log1p_f(exp(-abs(x)));
}

fn is_nan_f(x: f32) -> bool {
    let bits = bitcast<u32>(x);
    return (bits & 0x7f800000u) == 0x7f800000u && (bits & 0x007fffffu) != 0u;
}

fn is_inf_f(x: f32) -> bool {
    return (bitcast<u32>(x) & 0x7fffffffu) == 0x7f800000u;
}

fn unary_f32(x: f32, alpha: f32, beta: f32) -> f32 {
    switch OP {
        case 0u: { return x; }
        case 1u: { return abs(x); }
        case 2u: { return -x; }
        case 3u: { return max(x, 0.0); }
        case 4u: { return sigmoid_f(x); }
        case 5u: { return tanh_f(x); }
        case 6u: { return exp(x); }
        case 7u: { return log(x); }
        case 8u: { return sqrt(x); }
        case 9u: { return erf_f(x); }
        case 10u: { return 0.5 * x * (1.0 + erf_f(x * 0.7071067811865476)); }
        case 11u: {
            let inner = 0.7978845608028654 * (x + 0.044715 * x * x * x);
            return 0.5 * x * (1.0 + tanh_f(inner));
        }
        case 12u: { return select(x, alpha * x, x < 0.0); }
        case 13u: { return clamp(alpha * x + beta, 0.0, 1.0); }
        case 14u: { return x * clamp(x / 6.0 + 0.5, 0.0, 1.0); }
        case 15u: { return min(max(x, alpha), beta); }
        case 16u: { return softplus_f(x); }
        case 17u: { return 1.0 / x; }
        case 18u: { return floor(x); }
        case 19u: { return ceil(x); }
        case 20u: { return round(x); }
        case 21u: { return sin(x); }
        case 22u: { return cos(x); }
        case 23u: { return select(x, alpha * (exp(x) - 1.0), x < 0.0); }
        case 24u: { return beta * select(x, alpha * (exp(x) - 1.0), x <= 0.0); }
        case 25u: { return x / (1.0 + abs(x)); }
        case 26u: { return sign(x); }
        case 27u: { return x * tanh_f(softplus_f(x)); }
        case 28u: { return x * sigmoid_f(alpha * x); }
        case 29u: { return max(0.0, x) + min(0.0, alpha * (exp(x / alpha) - 1.0)); }
        case 30u: { return select(0.0, x, x > alpha); }
        case 31u: { return x * alpha; }
        case 32u: {
            if x < -beta { return x + alpha; }
            if x > beta { return x - alpha; }
            return 0.0;
        }
        case 33u: { return atan(x); }
        case 34u: { return tan(x); }
        default: { return x; }
    }
}

fn unary_i32(x: i32, alpha: i32, beta: i32) -> i32 {
    switch OP {
        case 1u: { return abs(x); }
        case 2u: { return -x; }
        case 3u: { return max(x, 0); }
        case 15u: { return min(max(x, alpha), beta); }
        case 26u: { return sign(x); }
        default: { return x; }
    }
}

// Unary map: params [n, alpha, beta]. OP >= 100 are conversions and
// predicates whose output type differs from DT:
// 100 f32->i32 (truncate), 101 i32->f32, 102 f32->bool, 103 i32/bool->bool,
// 104 bool->f32, 105 logical not, 106 IsNaN, 107 IsInf (alpha: neg, beta: pos).
@compute @workgroup_size(64)
fn unary(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
         @builtin(local_invocation_index) lidx: u32) {
    let i = linear_index(wid, nwg, lidx);
    if i >= P(0u) {
        return;
    }
    let w = a[i];
    if OP >= 100u {
        var r = 0u;
        switch OP {
            case 100u: { r = bitcast<u32>(i32(trunc(bitcast<f32>(w)))); }
            case 101u: { r = bitcast<u32>(f32(bitcast<i32>(w))); }
            case 102u: { r = select(0u, 1u, bitcast<f32>(w) != 0.0); }
            case 103u: { r = select(0u, 1u, w != 0u); }
            case 104u: { r = bitcast<u32>(select(0.0, 1.0, w != 0u)); }
            case 105u: { r = select(1u, 0u, w != 0u); }
            case 106u: { r = select(0u, 1u, is_nan_f(bitcast<f32>(w))); }
            case 107u: {
                let x = bitcast<f32>(w);
                let hit = is_inf_f(x) && ((x < 0.0 && P(1u) != 0u) || (x > 0.0 && P(2u) != 0u));
                r = select(0u, 1u, hit);
            }
            default: { r = w; }
        }
        out[i] = r;
        return;
    }
    if DT == 0u {
        out[i] = bitcast<u32>(unary_f32(bitcast<f32>(w), PF(1u), PF(2u)));
    } else {
        out[i] = bitcast<u32>(unary_i32(bitcast<i32>(w), bitcast<i32>(P(1u)), bitcast<i32>(P(2u))));
    }
}

fn pow_f(x: f32, y: f32) -> f32 {
    if y == 0.0 {
        return 1.0;
    }
    if x < 0.0 {
        if y == trunc(y) {
            let m = pow(-x, y);
            let odd = abs(y % 2.0) == 1.0;
            return select(m, -m, odd);
        }
        return bitcast<f32>(0x7fc00000u);
    }
    if x == 0.0 {
        return select(0.0, bitcast<f32>(0x7f800000u), y < 0.0);
    }
    return pow(x, y);
}

// 0 add, 1 sub, 2 mul, 3 div, 4 pow, 5 max, 6 min, 7 eq, 8 gt, 9 ge, 10 lt,
// 11 le, 12 fmod, 13 prelu, 14 and, 15 or, 16 xor.
fn binary_f32(x: f32, y: f32) -> u32 {
    switch OP {
        case 0u: { return bitcast<u32>(x + y); }
        case 1u: { return bitcast<u32>(x - y); }
        case 2u: { return bitcast<u32>(x * y); }
        case 3u: { return bitcast<u32>(x / y); }
        case 4u: { return bitcast<u32>(pow_f(x, y)); }
        case 5u: {
            if is_nan_f(x) || is_nan_f(y) { return 0x7fc00000u; }
            return bitcast<u32>(max(x, y));
        }
        case 6u: {
            if is_nan_f(x) || is_nan_f(y) { return 0x7fc00000u; }
            return bitcast<u32>(min(x, y));
        }
        case 7u: { return select(0u, 1u, x == y); }
        case 8u: { return select(0u, 1u, x > y); }
        case 9u: { return select(0u, 1u, x >= y); }
        case 10u: { return select(0u, 1u, x < y); }
        case 11u: { return select(0u, 1u, x <= y); }
        case 12u: { return bitcast<u32>(x - y * trunc(x / y)); }
        case 13u: { return bitcast<u32>(select(x, x * y, x < 0.0)); }
        default: { return 0u; }
    }
}

fn binary_i32(x: i32, y: i32) -> u32 {
    switch OP {
        case 0u: { return bitcast<u32>(x + y); }
        case 1u: { return bitcast<u32>(x - y); }
        case 2u: { return bitcast<u32>(x * y); }
        case 5u: { return bitcast<u32>(max(x, y)); }
        case 6u: { return bitcast<u32>(min(x, y)); }
        case 7u: { return select(0u, 1u, x == y); }
        case 8u: { return select(0u, 1u, x > y); }
        case 9u: { return select(0u, 1u, x >= y); }
        case 10u: { return select(0u, 1u, x < y); }
        case 11u: { return select(0u, 1u, x <= y); }
        case 14u: { return select(0u, 1u, x != 0 && y != 0); }
        case 15u: { return select(0u, 1u, x != 0 || y != 0); }
        case 16u: { return select(0u, 1u, (x != 0) != (y != 0)); }
        default: { return 0u; }
    }
}

// Broadcast offsets: params [n, rank, shape[8] @2, a_strides[8] @10,
// b_strides[8] @18, c_strides[8] @26]; strides are 0 along broadcast axes.
fn offsets(i: u32) -> vec3<u32> {
    let rank = P(1u);
    var rem = i;
    var oa = 0u;
    var ob = 0u;
    var oc = 0u;
    for (var d = rank; d > 0u; d = d - 1u) {
        let k = d - 1u;
        let dim = P(2u + k);
        let coord = rem % dim;
        rem = rem / dim;
        oa = oa + coord * P(10u + k);
        ob = ob + coord * P(18u + k);
        oc = oc + coord * P(26u + k);
    }
    return vec3<u32>(oa, ob, oc);
}

@compute @workgroup_size(64)
fn binary(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
          @builtin(local_invocation_index) lidx: u32) {
    let i = linear_index(wid, nwg, lidx);
    if i >= P(0u) {
        return;
    }
    let o = offsets(i);
    if DT == 0u {
        out[i] = binary_f32(bitcast<f32>(a[o.x]), bitcast<f32>(b[o.y]));
    } else {
        out[i] = binary_i32(bitcast<i32>(a[o.x]), bitcast<i32>(b[o.y]));
    }
}

// Where: a = condition (bool words), b = when true, c = when false.
@compute @workgroup_size(64)
fn where_select(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
                @builtin(local_invocation_index) lidx: u32) {
    let i = linear_index(wid, nwg, lidx);
    if i >= P(0u) {
        return;
    }
    let o = offsets(i);
    out[i] = select(c[o.z], b[o.y], a[o.x] != 0u);
}
