// Strata GPU: float functions beyond elementwise.wgsl's set, and SwiGLU.
//
// unary_math: params [n]; OP 0 acos, 1 acosh, 2 asin, 3 asinh, 4 atanh,
//   5 sinh, 6 cosh (float32 words).
// swiglu: params [n, alpha (f32)]; out = a * sigmoid(alpha * a) * b.

override OP: u32 = 0u;

@group(0) @binding(1) var<storage, read_write> out: array<f32>;
@group(0) @binding(2) var<storage, read> a: array<f32>;
@group(0) @binding(3) var<storage, read> b: array<f32>;

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

@compute @workgroup_size(64)
fn unary_math(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
              @builtin(local_invocation_index) lidx: u32) {
    let i = linear_index(wid, nwg, lidx);
    if i >= P(0u) {
        return;
    }
    let x = a[i];
    var y: f32;
    switch OP {
        case 0u: {
            y = acos(x);
        }
        case 1u: {
            y = log(x + sqrt(x * x - 1.0));
        }
        case 2u: {
            y = asin(x);
        }
        case 3u: {
            y = asinh_f(x);
        }
        case 4u: {
            y = atanh_f(x);
        }
        case 5u: {
            y = sinh_f(x);
        }
        default: {
            y = cosh(x);
        }
    }
    out[i] = y;
}

@compute @workgroup_size(64)
fn swiglu(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
          @builtin(local_invocation_index) lidx: u32) {
    let i = linear_index(wid, nwg, lidx);
    if i >= P(0u) {
        return;
    }
    let alpha = bitcast<f32>(P(1u));
    let x = a[i];
    let z = alpha * x;
    var s: f32;
    if z >= 0.0 {
        s = 1.0 / (1.0 + exp(-z));
    } else {
        let e = exp(z);
        s = e / (1.0 + e);
    }
    out[i] = x * s * b[i];
}
