// Strata GPU: index-driven copies (dtype-agnostic 32-bit words).
//
// gather_nd: output element i copies element (i % slice) of the slice
//   addressed by index tuple i / slice (negative indices count from the
//   end, clamped). Parameters: `GatherNdParams`.
// reverse_sequence: the first lens[b] time steps of batch entry b are
//   reversed. Parameters: `ReverseSequenceParams`.

fn gather_nd_at(i: u32, p: GatherNdParams) {
    let k = p.k;
    let slice = p.slice;
    let e = i % slice;
    let t = i / slice;
    var off = (t / p.per_batch) * p.batch_stride;
    for (var j = 0u; j < k; j = j + 1u) {
        off = off + norm_index(idx[t * k + j], gather_nd_params_dims(j)) * gather_nd_params_strides(j);
    }
    out[i] = src[off + e];
}

fn reverse_sequence_at(i: u32, p: ReverseSequenceParams) {
    let b = (i / p.batch_stride) % p.batch_len;
    let ts = p.time_stride;
    let t = (i / ts) % p.time_len;
    let len = u32(clamp(idx[b], 0, i32(p.time_len)));
    var s = t;
    if t < len {
        s = len - 1u - t;
    }
    out[i] = src[i - t * ts + s * ts];
}
