// Convolution (any square kernel, stride, zero padding) as an implicit GEMM: the im2col matrix
// is never stored, each tile loader computes the pixel it needs. One kernel, three products,
// chosen by MODE. Shapes: X [batch, cin, h, w], W [cout, cin, kernel, kernel], b [cout],
// Y [batch, cout, out_h, out_w] with out_h = (h + 2·pad − kernel)/stride + 1 (out_w likewise);
// taps = kernel², r = kh·kernel + kw, and tap r of output pixel (oy, ox) reads input pixel
// (iy, ix) = (oy·stride + kh − pad, ox·stride + kw − pad), zero outside the image.
//   MODE 0 forward      Y[n,co,oy,ox]  = Σ_{ci,r} W[co,ci,r]·X[n,ci,iy,ix] + b[co]
//                       M=cout N=batch·out_h·out_w K=cin·taps    (columns: output pixels)
//   MODE 1 grad input   dX[n,ci,iy,ix] = Σ_{co,r} W[co,ci,r]·dY[n,co,oy,ox], over the (oy, ox)
//                       with oy·stride + kh − pad = iy and ox·stride + kw − pad = ix (where
//                       iy + pad − kh divides by stride and 0 ≤ oy < out_h; x alike)
//                       M=cin  N=batch·h·w          K=cout·taps   (columns: input pixels)
//   MODE 2 grad weight  dW[co,ci,r]    = Σ_{n,oy,ox} dY[n,co,oy,ox]·X[n,ci,iy,ix]
//                       M=cout N=cin·taps           K=batch·out_h·out_w (columns: (ci, r))
// K runs in the order ci·taps + r (MODE 0), co·taps + r (MODE 1), n·out_h·out_w + oy·out_w + ox
// (MODE 2): the seed's 3×3, stride 1, pad 1 layers sum exactly as before the geometry was
// general. MODE 2 splits K over workgroup_id.z; each slice writes its own partial product, and
// `sum_slices` adds them in slice order, so results are deterministic.
//
// Tiling: a 16×16 workgroup computes a 64×64 output tile, 4×4 per thread held in four vec4
// registers (rows 4·ty..4·ty+3, columns 4·tx..4·tx+3), stepping K by 16 through workgroup memory
// stored as vec4s, so the inner loop is two 16-byte shared loads and four vec4 FMAs. Nothing is
// indexed dynamically in function memory (a dynamically indexed accumulator array is spilled to
// local memory by GPU compilers, which made the first version run at ~1% of an H200's peak).
// Each thread loads one K index of 4 consecutive rows of A and one K index of 4 consecutive
// columns of B per step; the column decomposition (image, y, x — or channel, tap in MODE 2) is
// worked out once per tile, so the K loop divides only by a few uniform values per thread
// (taps and kernel, or out_h·out_w and out_w; MODE 1 also by stride).

override MODE: u32 = 0u;

struct Params {
    batch: u32, cin: u32, cout: u32, h: u32,
    w: u32, m: u32, n: u32, k: u32,
    k_per_slice: u32, kernel: u32, stride: u32, pad: u32,
    out_h: u32, out_w: u32, _pad0: u32, _pad1: u32,
}

@group(0) @binding(0) var<uniform> P: Params;
@group(0) @binding(1) var<storage, read> src_a: array<f32>;     // W (MODE 0, 1) or dY (MODE 2)
@group(0) @binding(2) var<storage, read> src_b: array<f32>;     // X (MODE 0, 2) or dY (MODE 1)
@group(0) @binding(3) var<storage, read> bias: array<f32>;      // MODE 0 only
@group(0) @binding(4) var<storage, read_write> dst: array<f32>;

const BM: u32 = 64u;
const BN: u32 = 64u;
const BK: u32 = 16u;

var<workgroup> tile_a: array<vec4<f32>, 256>; // [BK][BM/4]: rows 4i..4i+3 of A at one k
var<workgroup> tile_b: array<vec4<f32>, 256>; // [BK][BN/4]: columns 4j..4j+3 of B at one k

// src_a[idx] where `ok`, else 0 (the index is replaced by 0 so nothing out of range is read).
fn read_a(idx: vec4<u32>, ok: vec4<bool>) -> vec4<f32> {
    let i = select(vec4<u32>(0u), idx, ok);
    let v = vec4<f32>(src_a[i.x], src_a[i.y], src_a[i.z], src_a[i.w]);
    return select(vec4<f32>(0.0), v, ok);
}

fn read_b(idx: vec4<u32>, ok: vec4<bool>) -> vec4<f32> {
    let i = select(vec4<u32>(0u), idx, ok);
    let v = vec4<f32>(src_b[i.x], src_b[i.y], src_b[i.z], src_b[i.w]);
    return select(vec4<f32>(0.0), v, ok);
}

// The pixels of one image's plane that the columns of MODE 0 and 1 run over, (pixels, row
// width): the output's in MODE 0, the input's in MODE 1.
fn col_plane() -> vec2<u32> {
    if (MODE == 1u) { return vec2<u32>(P.h * P.w, P.w); }
    return vec2<u32>(P.out_h * P.out_w, P.out_w);
}

fn store(row: u32, col: u32, slice: u32, v: f32) {
    if (row >= P.m || col >= P.n) { return; }
    if (MODE == 2u) {
        dst[(slice * P.m + row) * P.n + col] = v;
        return;
    }
    let hw = col_plane().x;
    let n = col / hw;
    let p = col % hw;
    if (MODE == 0u) {
        dst[(n * P.cout + row) * hw + p] = v + bias[row];
    } else {
        dst[(n * P.cin + row) * hw + p] = v;
    }
}

fn store4(row: u32, col: u32, slice: u32, v: vec4<f32>) {
    store(row, col, slice, v.x);
    store(row, col + 1u, slice, v.y);
    store(row, col + 2u, slice, v.z);
    store(row, col + 3u, slice, v.w);
}

@compute @workgroup_size(16, 16, 1)
fn conv_gemm(@builtin(local_invocation_id) lid: vec3<u32>, @builtin(workgroup_id) wid: vec3<u32>) {
    let tid = lid.y * 16u + lid.x;
    let row0 = wid.y * BM;
    let col0 = wid.x * BN;
    var k_begin = 0u;
    var k_end = P.k;
    if (MODE == 2u) {
        k_begin = wid.z * P.k_per_slice;
        k_end = min(P.k, k_begin + P.k_per_slice);
    }
    let taps = P.kernel * P.kernel;
    let ohw = P.out_h * P.out_w;
    let h = i32(P.h);
    let w = i32(P.w);
    let pad = i32(P.pad);
    let stride = i32(P.stride);
    let lane = vec4<u32>(0u, 1u, 2u, 3u);
    // A loader: k offset tid % 16, rows 4·(tid / 16) + 0..3
    let a_k = tid % BK;
    let a_rows = vec4<u32>(row0 + 4u * (tid / BK)) + lane;
    let a_rows_ok = a_rows < vec4<u32>(P.m);
    // B loader: k offset tid / 16, columns 4·(tid % 16) + 0..3, decomposed once
    let b_k = tid / 16u;
    let b_cols = vec4<u32>(col0 + 4u * (tid % 16u)) + lane;
    let b_cols_ok = b_cols < vec4<u32>(P.n);
    // MODE 0: a column is an output pixel (image n, oy, ox); MODE 1 an input pixel (n, iy, ix);
    // MODE 2 a (channel ci, tap kh·kernel + kw)
    let plane_dims = col_plane();
    let c_n = b_cols / vec4<u32>(plane_dims.x);
    let c_p = b_cols % vec4<u32>(plane_dims.x);
    let c_y = vec4<i32>(c_p / vec4<u32>(plane_dims.y));
    let c_x = vec4<i32>(c_p % vec4<u32>(plane_dims.y));
    let c_ci = b_cols / vec4<u32>(taps);
    let c_r = b_cols % vec4<u32>(taps);
    let c_kh = vec4<i32>(c_r / vec4<u32>(P.kernel));
    let c_kw = vec4<i32>(c_r % vec4<u32>(P.kernel));

    var acc0 = vec4<f32>(0.0);
    var acc1 = vec4<f32>(0.0);
    var acc2 = vec4<f32>(0.0);
    var acc3 = vec4<f32>(0.0);
    for (var k0 = k_begin; k0 < k_end; k0 += BK) {
        // ---- A: 4 rows at k = k0 + a_k
        let ka = k0 + a_k;
        let a_ok = a_rows_ok & vec4<bool>(ka < k_end);
        var a_idx: vec4<u32>;
        if (MODE == 0u) {
            a_idx = a_rows * P.k + vec4<u32>(ka);                      // W[co, ci·taps + r]
        } else if (MODE == 1u) {
            a_idx = (vec4<u32>(ka / taps * P.cin) + a_rows) * taps + vec4<u32>(ka % taps); // W[co, ci, r]
        } else {
            let n = ka / ohw;
            a_idx = (vec4<u32>(n * P.cout) + a_rows) * ohw + vec4<u32>(ka % ohw);      // dY[n, co, p]
        }
        tile_a[a_k * 16u + tid / BK] = read_a(a_idx, a_ok);
        // ---- B: 4 columns at k = k0 + b_k
        let kb = k0 + b_k;
        var b_ok = b_cols_ok & vec4<bool>(kb < k_end);
        var y: vec4<i32>;
        var x: vec4<i32>;
        var plane: vec4<u32>;
        var b_idx: vec4<u32>;
        if (MODE == 0u) {
            // X[n, ci, oy·stride + kh − pad, ox·stride + kw − pad] with k = ci·taps + kh·kernel + kw
            let r = kb % taps;
            y = c_y * stride + vec4<i32>(i32(r / P.kernel) - pad);
            x = c_x * stride + vec4<i32>(i32(r % P.kernel) - pad);
            plane = c_n * P.cin + vec4<u32>(kb / taps);
            b_ok = b_ok & (y >= vec4<i32>(0)) & (y < vec4<i32>(h)) & (x >= vec4<i32>(0)) & (x < vec4<i32>(w));
            b_idx = (plane * P.h + vec4<u32>(y)) * P.w + vec4<u32>(x);
        } else if (MODE == 1u) {
            // dX[n, ci, iy, ix] gathers dY[n, co, oy, ox] with k = co·taps + kh·kernel + kw,
            // oy = (iy + pad − kh)/stride where that divides exactly and 0 ≤ oy < out_h (x alike)
            let r = kb % taps;
            let ty = c_y + vec4<i32>(pad - i32(r / P.kernel));
            let tx = c_x + vec4<i32>(pad - i32(r % P.kernel));
            y = ty / vec4<i32>(stride);
            x = tx / vec4<i32>(stride);
            plane = c_n * P.cout + vec4<u32>(kb / taps);
            b_ok = b_ok & (ty >= vec4<i32>(0)) & (tx >= vec4<i32>(0))
                & (ty % vec4<i32>(stride) == vec4<i32>(0)) & (tx % vec4<i32>(stride) == vec4<i32>(0))
                & (y < vec4<i32>(i32(P.out_h))) & (x < vec4<i32>(i32(P.out_w)));
            b_idx = (plane * P.out_h + vec4<u32>(y)) * P.out_w + vec4<u32>(x);
        } else {
            // X[n, ci, oy·stride + kh − pad, ox·stride + kw − pad] with k = n·out_h·out_w +
            // oy·out_w + ox, column = ci·taps + kh·kernel + kw
            let n = kb / ohw;
            let p = kb % ohw;
            y = vec4<i32>(i32(p / P.out_w) * stride - pad) + c_kh;
            x = vec4<i32>(i32(p % P.out_w) * stride - pad) + c_kw;
            plane = vec4<u32>(n * P.cin) + c_ci;
            b_ok = b_ok & (y >= vec4<i32>(0)) & (y < vec4<i32>(h)) & (x >= vec4<i32>(0)) & (x < vec4<i32>(w));
            b_idx = (plane * P.h + vec4<u32>(y)) * P.w + vec4<u32>(x);
        }
        tile_b[b_k * 16u + tid % 16u] = read_b(b_idx, b_ok);
        workgroupBarrier();
        for (var kk = 0u; kk < BK; kk++) {
            let a = tile_a[kk * 16u + lid.y];
            let b = tile_b[kk * 16u + lid.x];
            acc0 = fma(vec4<f32>(a.x), b, acc0);
            acc1 = fma(vec4<f32>(a.y), b, acc1);
            acc2 = fma(vec4<f32>(a.z), b, acc2);
            acc3 = fma(vec4<f32>(a.w), b, acc3);
        }
        workgroupBarrier();
    }
    let row = row0 + 4u * lid.y;
    let col = col0 + 4u * lid.x;
    store4(row, col, wid.z, acc0);
    store4(row + 1u, col, wid.z, acc1);
    store4(row + 2u, col, wid.z, acc2);
    store4(row + 3u, col, wid.z, acc3);
}

// dW[i] = Σ_s partial[s, i] over the k-slices, in slice order. Params.m·Params.n elements,
// Params.k_per_slice holds the slice count here.
@compute @workgroup_size(WG, 1, 1)
fn sum_slices(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = linear_id(gid, nwg);
    let total = P.m * P.n;
    if (i >= total) { return; }
    var s = 0.0;
    for (var z = 0u; z < P.k_per_slice; z++) { s += src_a[z * total + i]; }
    dst[i] = s;
}
