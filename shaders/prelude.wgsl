// Strata GPU: the prelude of every kernel module (`Shader::source` puts it
// first, then the family's generated parameter structs and op codes from
// `shaders/generated/`, then the family's own file).
//
// Parameters live in one uniform block of 32-bit words; kernels read them
// through the generated loaders by name, which read words with `P`.
// Invocations are numbered over a 2-D grid of 64-wide workgroups so that
// tensors larger than 65,535 * 64 elements stay within dispatch limits.

@group(0) @binding(0) var<uniform> params: array<vec4<u32>, 32>;

fn P(i: u32) -> u32 {
    return params[i / 4u][i % 4u];
}

fn linear_index(wid: vec3<u32>, nwg: vec3<u32>, lidx: u32) -> u32 {
    return (wid.y * nwg.x + wid.x) * 64u + lidx;
}

// One step of splitting a flat index into coordinates, innermost axis
// first: the coordinate along an axis of length `dim`; `rem` keeps the
// index over the axes outside it.
fn next_coord(rem: ptr<function, u32>, dim: u32) -> u32 {
    let c = *rem % dim;
    *rem = *rem / dim;
    return c;
}

// Infinity and NaN as runtime values: a WGSL constant expression must not
// evaluate to them (browsers' WebGPU compilers reject the whole shader), and
// calls of user functions are never constant expressions.
fn f32_bits(b: u32) -> f32 {
    return bitcast<f32>(b);
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
        return f32_bits(0x7fc00000u);
    }
    if x == 0.0 {
        return select(0.0, f32_bits(0x7f800000u), y < 0.0);
    }
    return pow(x, y);
}

// sinh without cancellation near 0 (series for small |x|).
fn sinh_f(x: f32) -> f32 {
    if abs(x) < 0.1 {
        let x2 = x * x;
        return x * (1.0 + x2 / 6.0 * (1.0 + x2 / 20.0 * (1.0 + x2 / 42.0)));
    }
    return sinh(x);
}

// asinh, odd and accurate for negative and small arguments.
fn asinh_f(x: f32) -> f32 {
    let ax = abs(x);
    var r: f32;
    if ax < 0.1 {
        let x2 = ax * ax;
        r = ax * (1.0 - x2 / 6.0 + 3.0 * x2 * x2 / 40.0);
    } else {
        r = log(ax + sqrt(ax * ax + 1.0));
    }
    return select(r, -r, x < 0.0);
}

// atanh, accurate for small arguments.
fn atanh_f(x: f32) -> f32 {
    if abs(x) < 0.1 {
        let x2 = x * x;
        return x * (1.0 + x2 / 3.0 + x2 * x2 / 5.0);
    }
    return 0.5 * log((1.0 + x) / (1.0 - x));
}

// Resize's source coordinate of output index `o` along an axis of `in_len`
// inputs and `out_len` outputs (resize.wgsl and resize_taps.wgsl). `mode`:
// 0 half_pixel, 1 asymmetric, 2 align_corners, 3 pytorch_half_pixel,
// 4 tf_half_pixel_for_nn, 5 half_pixel_symmetric. `resized` is scale *
// in_len before rounding; `unit`: it is exactly 1 (decided in f64 on the host).
fn resize_source_coord(mode: u32, o: u32, in_len: u32, out_len: u32, scale: f32, resized: f32, unit: bool) -> f32 {
    let xo = f32(o);
    switch mode {
        case 1u: { return xo / scale; }
        case 2u: {
            if unit {
                return 0.0;
            }
            return xo * f32(in_len - 1u) / (resized - 1.0);
        }
        case 3u: {
            if unit {
                return -0.5;
            }
            return (xo + 0.5) / scale - 0.5;
        }
        case 4u: { return (xo + 0.5) / scale; }
        case 5u: {
            let adj = f32(out_len) / resized;
            let center = f32(in_len) * 0.5;
            return center * (1.0 - adj) + (xo + 0.5) / scale - 0.5;
        }
        default: { return (xo + 0.5) / scale - 0.5; }
    }
}

// log with IEEE results at the edges WGSL leaves undefined (some
// implementations return ln(FLT_MIN) for 0): -inf at 0, NaN below 0.
fn log_ieee(x: f32) -> f32 {
    if x == 0.0 {
        return f32_bits(0xff800000u);
    }
    if x < 0.0 {
        return f32_bits(0x7fc00000u);
    }
    return log(x);
}

// An index along an axis of length `dim` (the gathers and scatters):
// negative counts from the end, then clamped into [0, dim).
fn norm_index(v: i32, dim: u32) -> u32 {
    var k = v;
    if k < 0 {
        k = k + i32(dim);
    }
    return u32(clamp(k, 0, i32(dim) - 1));
}
