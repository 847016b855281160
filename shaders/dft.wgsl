// Strata GPU: DFT along one axis (direct O(n^2) sums in f32), one
// invocation per output value. The last axis holds (re) or (re, im).
//
// Parameters: `DftParams`. Inverse transforms divide by len; irfft
// rebuilds the Hermitian spectrum.

const TWO_PI: f32 = 6.283185307179586;

// (cos, sin) of 2 pi r / len, exact at multiples of a quarter turn (so
// spectra of real or symmetric signals keep their exact zeros).
fn twiddle(r: u32, len: u32) -> vec2<f32> {
    if (4u * r) % len == 0u {
        switch (4u * r) / len {
            case 0u: { return vec2<f32>(1.0, 0.0); }
            case 1u: { return vec2<f32>(0.0, 1.0); }
            case 2u: { return vec2<f32>(-1.0, 0.0); }
            default: { return vec2<f32>(0.0, -1.0); }
        }
    }
    let angle = TWO_PI * f32(r) / f32(len);
    return vec2<f32>(cos(angle), sin(angle));
}

fn dft_at(i: u32, p: DftParams) {
    let rank = p.rank;
    let axis = p.axis;
    let len = p.len;
    let n_in = p.n_in;
    let complex_in = p.complex_in != 0u;
    let irfft = p.irfft != 0u;
    let sign = f32(p.sign);
    let out_last = p.out_last;
    let comp = i % out_last;
    var rem = i / out_last;
    var base = 0u;
    var k = 0u;
    for (var d = rank; d > 0u; d = d - 1u) {
        let a = d - 1u;
        let c = next_coord(&rem, dft_params_out_shape(a));
        if a == axis {
            k = c;
        } else {
            base = base + c * dft_params_in_strides(a);
        }
    }
    let st = dft_params_in_strides(axis);
    var acc = 0.0;
    if irfft {
        // k is the output sample; sum over the one-sided bins.
        let half = len / 2u + 1u;
        let bins = min(n_in, half);
        for (var b = 0u; b < bins; b = b + 1u) {
            let edge = b == 0u || (len % 2u == 0u && b == len / 2u);
            let re = x[base + b * st];
            var im = 0.0;
            var w = 1.0;
            if !edge {
                w = 2.0;
                if complex_in {
                    im = x[base + b * st + 1u];
                }
            }
            let t = twiddle((b * k) % len, len);
            acc = acc + w * (re * t.x - im * t.y);
        }
        out[i] = acc / f32(len);
        return;
    }
    let used = min(n_in, len);
    for (var n = 0u; n < used; n = n + 1u) {
        let re = x[base + n * st];
        var im = 0.0;
        if complex_in {
            im = x[base + n * st + 1u];
        }
        let t = twiddle((k * n) % len, len);
        let c = t.x;
        let s = sign * t.y;
        if comp == 0u {
            acc = acc + re * c - im * s;
        } else {
            acc = acc + re * s + im * c;
        }
    }
    if sign > 0.0 {
        acc = acc / f32(len);
    }
    out[i] = acc;
}
