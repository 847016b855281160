// Strata GPU: integer kernels.
//
// Integer tensors are arrays of 32-bit words. DT 1 reads them as i32 (int32;
// int2 to int16 and uint2 to uint16, whose values always fit; int64 values
// range-checked into i32 on upload), DT 3 as u32 (uint32; uint64 values
// range-checked into u32). Types narrower than 32 bits are computed in 32
// bits and wrapped to their width afterwards by `narrow` (elementwise.wgsl);
// int32 and uint32 wrap as the reference does.
//
// CHECK makes results that do not fit the 32-bit storage an error instead of
// a wrong value: 1 = the exact result must fit in i32 (int64), 2 = in u32
// (uint64). A failing element sets a bit in `status` (1 overflow, 2 division
// by zero, which is checked for every type) and the lowest failing node
// index; the host reads `status` after the run and reports the error.
//
// Parameters live in a uniform block of u32 words (see `P`).

override OP: u32 = 0u;
override DT: u32 = DT_I32;
override CHECK: u32 = 0u;

const ERR_OVERFLOW: u32 = 1u;
const ERR_DIV_ZERO: u32 = 2u;
const I32_MIN: i32 = -2147483647 - 1;

// Record an error of node `node`.
fn fail(code: u32, node: u32) {
    atomicOr(&status[0], code);
    atomicMin(&status[1], node);
}

// ---------------------------------------------------------------- binary

// 0 add, 1 sub, 2 mul, 3 div (truncating), 4 pow (x^min(y, 128) by
// repeated wrapping multiplication, 0 for y < 0, as the reference), 5 max, 6 min, 7 eq, 8 gt, 9 ge,
// 10 lt, 11 le, 12 fmod (remainder with the dividend's sign), 17 mod (with
// the divisor's sign), 18 bitwise and, 19 or, 20 xor, 21 shift left,
// 22 shift right. `bits` is the element type's width (shift amounts outside
// [0, bits) give 0, or -1 for a right shift of a negative value).
fn binary_i32(x: i32, y: i32, bits: u32, node: u32) -> u32 {
    switch OP {
        case BINARY_ADD: {
            let r = x + y;
            if CHECK == 1u && ((x ^ r) & (y ^ r)) < 0 { fail(ERR_OVERFLOW, node); }
            return bitcast<u32>(r);
        }
        case BINARY_SUB: {
            let r = x - y;
            if CHECK == 1u && ((x ^ y) & (x ^ r)) < 0 { fail(ERR_OVERFLOW, node); }
            return bitcast<u32>(r);
        }
        case BINARY_MUL: {
            let r = x * y;
            if CHECK == 1u && x != 0 && (r / x != y || (x == -1 && y == I32_MIN)) { fail(ERR_OVERFLOW, node); }
            return bitcast<u32>(r);
        }
        case BINARY_DIV: {
            if y == 0 { fail(ERR_DIV_ZERO, node); return 0u; }
            if x == I32_MIN && y == -1 {
                if CHECK == 1u { fail(ERR_OVERFLOW, node); }
                return bitcast<u32>(I32_MIN);
            }
            return bitcast<u32>(x / y);
        }
        case BINARY_POW: {
            if y < 0 { return 0u; }
            var r = 1;
            for (var k = 0; k < min(y, 128); k = k + 1) {
                let p = r * x;
                if CHECK == 1u && r != 0 && (p / r != x || (r == -1 && x == I32_MIN)) { fail(ERR_OVERFLOW, node); }
                r = p;
            }
            return bitcast<u32>(r);
        }
        case BINARY_MAX: { return bitcast<u32>(max(x, y)); }
        case BINARY_MIN: { return bitcast<u32>(min(x, y)); }
        case BINARY_EQ, BINARY_GT, BINARY_GE, BINARY_LT, BINARY_LE: { return compare_i32(x, y); }
        case BINARY_FMOD, BINARY_MOD: {
            if y == 0 { fail(ERR_DIV_ZERO, node); return 0u; }
            if y == -1 { return 0u; }
            var r = x % y;
            if OP == BINARY_MOD && r != 0 && ((r < 0) != (y < 0)) { r = r + y; }
            return bitcast<u32>(r);
        }
        case BINARY_BIT_AND: { return bitcast<u32>(x & y); }
        case BINARY_BIT_OR: { return bitcast<u32>(x | y); }
        case BINARY_BIT_XOR: { return bitcast<u32>(x ^ y); }
        case BINARY_SHIFT_LEFT: {
            if y < 0 || u32(y) >= bits || x == 0 { return 0u; }
            if y >= 32 {
                if CHECK == 1u { fail(ERR_OVERFLOW, node); }
                return 0u;
            }
            let r = x << u32(y);
            if CHECK == 1u && (r >> u32(y)) != x { fail(ERR_OVERFLOW, node); }
            return bitcast<u32>(r);
        }
        case BINARY_SHIFT_RIGHT: {
            if y < 0 || u32(y) >= bits || y >= 32 { return select(0u, 0xffffffffu, x < 0); }
            return bitcast<u32>(x >> u32(y));
        }
        default: { return 0u; }
    }
}

fn binary_u32(x: u32, y: u32, bits: u32, node: u32) -> u32 {
    switch OP {
        case BINARY_ADD: {
            let r = x + y;
            if CHECK == 2u && r < x { fail(ERR_OVERFLOW, node); }
            return r;
        }
        case BINARY_SUB: {
            if CHECK == 2u && y > x { fail(ERR_OVERFLOW, node); }
            return x - y;
        }
        case BINARY_MUL: {
            let r = x * y;
            if CHECK == 2u && x != 0u && r / x != y { fail(ERR_OVERFLOW, node); }
            return r;
        }
        case BINARY_DIV: {
            if y == 0u { fail(ERR_DIV_ZERO, node); return 0u; }
            return x / y;
        }
        case BINARY_POW: {
            var r = 1u;
            for (var k = 0u; k < min(y, 128u); k = k + 1u) {
                let p = r * x;
                if CHECK == 2u && r != 0u && p / r != x { fail(ERR_OVERFLOW, node); }
                r = p;
            }
            return r;
        }
        case BINARY_MAX: { return max(x, y); }
        case BINARY_MIN: { return min(x, y); }
        case BINARY_EQ, BINARY_GT, BINARY_GE, BINARY_LT, BINARY_LE: { return compare_u32(x, y); }
        case BINARY_FMOD, BINARY_MOD: {
            if y == 0u { fail(ERR_DIV_ZERO, node); return 0u; }
            return x % y;
        }
        case BINARY_BIT_AND: { return x & y; }
        case BINARY_BIT_OR: { return x | y; }
        case BINARY_BIT_XOR: { return x ^ y; }
        case BINARY_SHIFT_LEFT: {
            if y >= bits || x == 0u { return 0u; }
            if y >= 32u {
                if CHECK == 2u { fail(ERR_OVERFLOW, node); }
                return 0u;
            }
            let r = x << y;
            if CHECK == 2u && (r >> y) != x { fail(ERR_OVERFLOW, node); }
            return r;
        }
        case BINARY_SHIFT_RIGHT: {
            if y >= bits || y >= 32u { return 0u; }
            return x >> y;
        }
        default: { return 0u; }
    }
}

fn binary_at(i: u32, p: BroadcastParams) {
    let o = offsets(i);
    if DT == DT_U32 {
        out[i] = binary_u32(a[o.x], b[o.y], p.bits, p.node);
    } else {
        out[i] = binary_i32(bitcast<i32>(a[o.x]), bitcast<i32>(b[o.y]), p.bits, p.node);
    }
}

// ---------------------------------------------------------------- unary

fn unary_i32(x: i32, alpha: i32, beta: i32, node: u32) -> u32 {
    switch OP {
        case UNARY_ABS, UNARY_NEG: {
            if CHECK == 1u && x == I32_MIN { fail(ERR_OVERFLOW, node); }
            return bitcast<u32>(select(-x, abs(x), OP == UNARY_ABS));
        }
        case UNARY_RELU: { return bitcast<u32>(max(x, 0)); }
        case UNARY_CLIP: { return bitcast<u32>(min(max(x, alpha), beta)); }
        case UNARY_SIGN: { return bitcast<u32>(sign(x)); }
        case UNARY_BITWISE_NOT: { return bitcast<u32>(~x); }
        default: { return bitcast<u32>(x); }
    }
}

fn unary_u32(x: u32, alpha: u32, beta: u32, node: u32) -> u32 {
    switch OP {
        case UNARY_NEG: {
            if CHECK == 2u && x != 0u { fail(ERR_OVERFLOW, node); }
            return 0u - x;
        }
        case UNARY_CLIP: { return min(max(x, alpha), beta); }
        case UNARY_SIGN: { return select(0u, 1u, x != 0u); }
        case UNARY_BITWISE_NOT: {
            if CHECK == 2u { fail(ERR_OVERFLOW, node); }
            return ~x;
        }
        default: { return x; }
    }
}

// Unary map; `UnaryParams`' a and b are Clip's bounds.
fn unary_at(i: u32, p: UnaryParams) {
    if DT == DT_U32 {
        out[i] = unary_u32(a[i], p.a, p.b, p.node);
    } else {
        out[i] = unary_i32(bitcast<i32>(a[i]), bitcast<i32>(p.a), bitcast<i32>(p.b), p.node);
    }
}
