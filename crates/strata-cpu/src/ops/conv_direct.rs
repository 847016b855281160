//! The direct convolution's input layout (part of the `nn` family, beside
//! `conv.rs`): which output lines suit it, the zero-padded input with rows
//! stored by stride phase ([`Phases`] copies a row so), each reduction
//! index's offset in it, and the run of the direct kernel over it. The
//! depthwise planes (`depthwise.rs`) use the same layout, one channel at a time.

use super::conv::Win3;
use crate::gemm::{Epilogue, NR, PackedA};
use crate::pool::Pool;

/// Whether output lines of `ow` positions suit the direct path, whose runs
/// of `NR` outputs never cross a line: at least three quarters of the lanes
/// of a line's runs hold outputs (a 4×4 map would fill a quarter: the
/// im2col panels, whose columns run on across lines, fill them all).
pub(super) fn direct_fits(ow: usize) -> bool {
    4 * ow >= 3 * ow.div_ceil(NR) * NR
}

/// The padded width of `w`'s rows, as stored for the direct path: the row
/// split into its `s` phases along the innermost axis (stride `s`; column
/// `c` of the padded row at `(c % s)·pl + c / s`, with `pl` the phase
/// length), so an output run reads each tap's inputs consecutively. Returns
/// `(pl, stored row length s·pl)`; stride 1 keeps the row as it is.
pub(super) fn phased_row(w: &Win3) -> (usize, usize) {
    let wp = w.input[2] + w.pad_begin[2].max(0) as usize + w.pad_end[2].max(0) as usize;
    let s = w.strides[2].max(1);
    let pl = wp.div_ceil(s);
    (pl, s * pl)
}

/// `c = epi(a · patches of x)` by the direct kernel: `x` (`channels`
/// channels) padded as [`padded`] lays it out, `offsets` from
/// [`direct_offsets`] for the same window and channel count.
#[allow(clippy::too_many_arguments)]
pub(super) fn run_direct(
    pool: &Pool,
    w: &Win3,
    x: &[f32],
    channels: usize,
    offsets: &[usize],
    a: &PackedA,
    c: &mut [f32],
    epi: &Epilogue,
) {
    let (xp, hp, wp) = padded(w, x, channels);
    let d = crate::direct::Direct { xp: &xp, offsets, out: w.out, stride: [w.strides[0], w.strides[1]], hp, wp };
    crate::direct::conv(pool, a, &d, c, w.out_size(), epi);
}

/// How an input row goes into a padded row stored by phase (see [`phased_row`]):
/// the stored row holds `s` phases of `pl` values each; phase `ph` value
/// `j` is padded column `ph + j·s`, i.e. input column `ph + j·s − pw`. Per
/// phase: the first stored index that reads the input, the input column it
/// reads, and how many consecutive stored values read the input.
#[derive(Debug, Clone)]
pub(super) struct Phases {
    s: usize,
    pl: usize,
    spans: Vec<(usize, usize, usize)>,
}

impl Phases {
    /// The layout of `w`'s rows (as [`phased_row`] gives it).
    pub(super) fn new(w: &Win3) -> Phases {
        Phases::of_row(w.input[2], w.pad_begin[2].max(0) as usize, w.strides[2].max(1), phased_row(w).0)
    }

    /// Rows of `wd` inputs after `pw` padding columns, stride `s`, phases of `pl`.
    fn of_row(wd: usize, pw: usize, s: usize, pl: usize) -> Phases {
        let spans = (0..s)
            .map(|ph| {
                let j0 = pw.saturating_sub(ph).div_ceil(s);
                let c0 = ph + j0 * s - pw;
                let n = if c0 < wd { (wd - c0).div_ceil(s).min(pl.saturating_sub(j0)) } else { 0 };
                (j0.min(pl), c0, n)
            })
            .collect();
        Phases { s, pl, spans }
    }

    /// Copy input row `src` into stored row `dst` (`s·pl` values): only the
    /// values that read the input are written (the padding keeps its zeros).
    #[inline(always)]
    pub(super) fn copy(&self, src: &[f32], dst: &mut [f32]) {
        let (s, pl) = (self.s, self.pl);
        if s == 2 {
            // Both phases from the same pairs of input values.
            let [(ja, ca, na), (jb, _, nb)] = [self.spans[0], self.spans[1]];
            let (first, second) = dst[..2 * pl].split_at_mut(pl);
            let (even, odd) =
                if ca == 0 { ((first, ja, na), (second, jb, nb)) } else { ((second, jb, nb), (first, ja, na)) };
            let pairs = even.2.min(odd.2);
            let (e, o) = (&mut even.0[even.1..even.1 + pairs], &mut odd.0[odd.1..odd.1 + pairs]);
            for ((p, a), b) in src.chunks_exact(2).zip(e.iter_mut()).zip(o.iter_mut()) {
                *a = p[0];
                *b = p[1];
            }
            if even.2 > pairs {
                even.0[even.1 + pairs] = src[2 * pairs];
            }
            if odd.2 > pairs {
                odd.0[odd.1 + pairs] = src[2 * pairs + 1];
            }
            return;
        }
        for (phase, &(j0, c0, n)) in dst.chunks_exact_mut(pl).zip(&self.spans) {
            if n == 0 {
                continue;
            }
            for (d, x) in phase[j0..j0 + n].iter_mut().zip(src[c0..].iter().step_by(s)) {
                *d = *x;
            }
        }
    }
}

/// The input of `channels` channels copied into a zero-padded buffer (the
/// padding of every axis added, rows stored by phase as [`phased_row`]
/// says, plus `NR` zeros at the end), with its padded height and stored
/// row length.
pub(super) fn padded(w: &Win3, x: &[f32], channels: usize) -> (Vec<f32>, usize, usize) {
    let pad = |i: usize| (w.pad_begin[i].max(0) as usize, w.pad_end[i].max(0) as usize);
    let (dp, hp) = (w.input[0] + pad(0).0 + pad(0).1, w.input[1] + pad(1).0 + pad(1).1);
    let rl = phased_row(w).1;
    let (s, phases) = (w.strides[2].max(1), Phases::new(w));
    let mut xp = vec![0.0f32; channels * dp * hp * rl + NR];
    let [d, h, wd] = w.input;
    for ci in 0..channels {
        for z in 0..d {
            for y in 0..h {
                let src = &x[((ci * d + z) * h + y) * wd..][..wd];
                let at = ((ci * dp + z + pad(0).0) * hp + y + pad(1).0) * rl;
                if s == 1 {
                    xp[at + pad(2).0..at + pad(2).0 + wd].copy_from_slice(src);
                } else {
                    phases.copy(src, &mut xp[at..at + rl]);
                }
            }
        }
    }
    (xp, hp, rl)
}

/// For the direct convolution: the offset in the padded input of reduction
/// index `k = ci · taps + tap` from a run's base position.
pub(super) fn direct_offsets(w: &Win3, channels: usize) -> Vec<usize> {
    let pad = |i: usize| (w.pad_begin[i].max(0) + w.pad_end[i].max(0)) as usize;
    let hp = w.input[1] + pad(1);
    let (pl, rl) = phased_row(w);
    let s = w.strides[2].max(1);
    let plane = (w.input[0] + pad(0)) * hp * rl;
    let mut offs = Vec::with_capacity(channels * w.taps());
    for ci in 0..channels {
        for kd in 0..w.kernel[0] {
            for kh in 0..w.kernel[1] {
                for kw in 0..w.kernel[2] {
                    let c = kw * w.dilations[2];
                    offs.push(
                        ci * plane + kd * w.dilations[0] * hp * rl + kh * w.dilations[1] * rl + (c % s) * pl + c / s,
                    );
                }
            }
        }
    }
    offs
}

#[cfg(test)]
mod tests {
    use super::super::conv::im2col_fill;
    use super::*;
    use crate::gemm::{Rhs, gemm_with};
    use strata_ir::window::{AutoPad, WindowAttrs};

    #[test]
    fn rows_split_by_phase_hold_each_padded_column_once() {
        for s in 2usize..5 {
            for wd in 1usize..40 {
                for (pw, pe) in [(0usize, 0usize), (1, 1), (2, 1), (3, 0), (0, 3), (5, 4)] {
                    let src: Vec<f32> = (0..wd).map(|i| i as f32 + 1.0).collect();
                    let pl = (pw + wd + pe).div_ceil(s);
                    // Padding is left as it was.
                    let mut dst = vec![-7.0; s * pl];
                    Phases::of_row(wd, pw, s, pl).copy(&src, &mut dst);
                    for ph in 0..s {
                        for j in 0..pl {
                            let c = (ph + j * s).wrapping_sub(pw);
                            let want = if c < wd { src[c] } else { -7.0 };
                            assert_eq!(dst[ph * pl + j], want, "s {s} wd {wd} pads {pw},{pe} phase {ph} j {j}");
                        }
                    }
                }
            }
        }
    }

    #[test]
    fn direct_convolution_gives_the_bits_of_im2col() {
        if !crate::direct::available() {
            return;
        }
        // (input spatial, kernel, strides, dilations, pads begin+end)
        type Case = ([usize; 2], [usize; 2], [i64; 2], [i64; 2], [i64; 4]);
        // (Lines of 32 or more outputs take the 32-wide kernel on AVX-512.)
        let cases: [Case; 8] = [
            ([9, 21], [3, 3], [1, 1], [1, 1], [1, 1, 1, 1]),
            // Strides along the rows: stored by phase.
            ([12, 75], [7, 7], [2, 2], [1, 1], [3, 3, 3, 3]),
            ([5, 40], [3, 3], [1, 3], [1, 2], [1, 0, 2, 1]),
            ([6, 37], [3, 2], [2, 2], [1, 1], [0, 1, 0, 0]),
            ([75, 1], [5, 1], [1, 1], [1, 1], [2, 0, 2, 0]),
            ([7, 40], [5, 3], [2, 1], [1, 2], [2, 0, 1, 2]),
            ([12, 1], [5, 1], [1, 1], [1, 1], [0, 0, 0, 0]),
            ([4, 17], [1, 4], [1, 1], [1, 1], [0, 2, 0, 1]),
        ];
        for (sp, ks, st, dil, pads) in cases {
            let geo = WindowAttrs {
                auto_pad: AutoPad::NotSet,
                ceil_mode: false,
                kernel_shape: None,
                strides: Some(st.to_vec()),
                dilations: Some(dil.to_vec()),
                pads: Some(pads.to_vec()),
            };
            let w = Win3::new(&geo, &sp, ks.to_vec()).expect("window");
            // 130 rows: two row blocks when the columns are few.
            for (ch, m) in [(5, 13), (3, 130)] {
                let k = ch * w.taps();
                let x: Vec<f32> = (0..ch * w.in_size()).map(|i| ((i * 37 % 101) as f32 - 50.0) / 17.0).collect();
                let wv: Vec<f32> = (0..m * k).map(|i| ((i * 53 % 89) as f32 - 44.0) / 23.0).collect();
                let a = PackedA::pack(&wv, m, k, k, 1);
                let cols = w.out_size();
                let bias: Vec<f32> = (0..m).map(|i| i as f32 * 0.1).collect();
                let epi = Epilogue { row_bias: Some(&bias), ..Default::default() };
                for threads in [1, 2] {
                    let pool = Pool::new(threads);
                    let fill = |j0: usize, width: usize, dst: &mut [f32]| im2col_fill(&w, &x, ch, j0, width, dst);
                    let mut want = vec![f32::NAN; m * cols];
                    gemm_with(&pool, &a, Rhs::Fill { k, n: cols, fill: &fill }, &mut want, cols, &epi);
                    let mut got = vec![f32::NAN; m * cols];
                    run_direct(&pool, &w, &x, ch, &direct_offsets(&w, ch), &a, &mut got, &epi);
                    let bits = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
                    assert_eq!(bits(&got), bits(&want), "{sp:?} {ks:?}, {m} rows on {threads} threads");
                }
            }
        }
    }
}
