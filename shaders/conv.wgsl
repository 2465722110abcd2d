// 3×3 convolution, stride 1, pad 1, as an implicit GEMM: the im2col matrix is never stored, each
// tile loader computes the pixel it needs. One kernel, three products, chosen by MODE:
//   MODE 0 forward      Y[n,co,p]        = Σ_{ci,r} W[co,ci,r]·X[n,ci,p+r] + b[co]    M=cout N=batch·hw K=cin·9
//   MODE 1 grad input   dX[n,ci,p]       = Σ_{co,r} W[co,ci,r]·dY[n,co,p−r]           M=cin  N=batch·hw K=cout·9
//   MODE 2 grad weight  dW[co,ci,r]      = Σ_{n,p} dY[n,co,p]·X[n,ci,p+r]             M=cout N=cin·9    K=batch·hw
// (r = (kh,kw) offsets −1..1). MODE 2 splits K over workgroup_id.z; each slice writes its own
// partial product, and `sum_slices` adds them in slice order, so results are deterministic.
//
// Tiling: a 16×16 workgroup computes a 64×64 output tile, 4×4 per thread, stepping K by 16 through
// workgroup memory. Loads are coalesced along K for A (MODE 0/1) and along pixels for B.

override MODE: u32 = 0u;

struct Params {
    batch: u32, cin: u32, cout: u32, h: u32,
    w: u32, m: u32, n: u32, k: u32,
    k_per_slice: u32, _pad0: u32, _pad1: u32, _pad2: u32,
}

@group(0) @binding(0) var<uniform> P: Params;
@group(0) @binding(1) var<storage, read> src_a: array<f32>;     // W (MODE 0, 1) or dY (MODE 2)
@group(0) @binding(2) var<storage, read> src_b: array<f32>;     // X (MODE 0, 2) or dY (MODE 1)
@group(0) @binding(3) var<storage, read> bias: array<f32>;      // MODE 0 only
@group(0) @binding(4) var<storage, read_write> dst: array<f32>;

const BM: u32 = 64u;
const BN: u32 = 64u;
const BK: u32 = 16u;

var<workgroup> tile_a: array<f32, 1024>; // [BK][BM]
var<workgroup> tile_b: array<f32, 1024>; // [BK][BN]

// Pixel (n, c, y+dy, x+dx) of a [batch, channels, h, w] tensor, zero outside the image.
fn pixel(t: u32, n: u32, c: u32, channels: u32, y: i32, x: i32) -> f32 {
    if (y < 0 || x < 0 || y >= i32(P.h) || x >= i32(P.w)) { return 0.0; }
    let idx = ((n * channels + c) * P.h + u32(y)) * P.w + u32(x);
    if (t == 0u) { return src_a[idx]; }
    return src_b[idx];
}

fn load_a(row: u32, col: u32) -> f32 {
    if (row >= P.m || col >= P.k) { return 0.0; }
    if (MODE == 0u) {
        return src_a[row * P.k + col];
    } else if (MODE == 1u) {
        // row = ci, col = co·9 + r
        let co = col / 9u;
        let r = col % 9u;
        return src_a[(co * P.cin + row) * 9u + r];
    }
    // MODE 2: row = co, col = n·hw + p
    let hw = P.h * P.w;
    let n = col / hw;
    let p = col % hw;
    return src_a[(n * P.cout + row) * hw + p];
}

fn load_b(row: u32, col: u32) -> f32 {
    if (row >= P.k || col >= P.n) { return 0.0; }
    let hw = P.h * P.w;
    if (MODE == 0u) {
        // row = ci·9 + r, col = n·hw + p
        let ci = row / 9u;
        let r = row % 9u;
        let n = col / hw;
        let p = col % hw;
        let y = i32(p / P.w) + i32(r / 3u) - 1;
        let x = i32(p % P.w) + i32(r % 3u) - 1;
        return pixel(1u, n, ci, P.cin, y, x);
    } else if (MODE == 1u) {
        // row = co·9 + r, col = n·hw + p; dX[p] gathers dY[p − r]
        let co = row / 9u;
        let r = row % 9u;
        let n = col / hw;
        let p = col % hw;
        let y = i32(p / P.w) - i32(r / 3u) + 1;
        let x = i32(p % P.w) - i32(r % 3u) + 1;
        return pixel(1u, n, co, P.cout, y, x);
    }
    // MODE 2: row = n·hw + p, col = ci·9 + r
    let n = row / hw;
    let p = row % hw;
    let ci = col / 9u;
    let r = col % 9u;
    let y = i32(p / P.w) + i32(r / 3u) - 1;
    let x = i32(p % P.w) + i32(r % 3u) - 1;
    return pixel(1u, n, ci, P.cin, y, x);
}

fn store(row: u32, col: u32, slice: u32, v: f32) {
    if (row >= P.m || col >= P.n) { return; }
    if (MODE == 2u) {
        dst[(slice * P.m + row) * P.n + col] = v;
        return;
    }
    let hw = P.h * P.w;
    let n = col / hw;
    let p = col % hw;
    if (MODE == 0u) {
        dst[(n * P.cout + row) * hw + p] = v + bias[row];
    } else {
        dst[(n * P.cin + row) * hw + p] = v;
    }
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
    var acc: array<array<f32, 4>, 4>;
    for (var i = 0u; i < 4u; i++) {
        for (var j = 0u; j < 4u; j++) { acc[i][j] = 0.0; }
    }
    for (var k0 = k_begin; k0 < k_end; k0 += BK) {
        for (var e = 0u; e < 4u; e++) {
            let idx = tid + e * 256u;
            // A: consecutive threads walk K, the contiguous axis of W (MODE 0, 1) and of dY (MODE 2)
            let kk = idx % BK;
            let mm = idx / BK;
            var a = 0.0;
            if (k0 + kk < k_end) { a = load_a(row0 + mm, k0 + kk); }
            tile_a[kk * BM + mm] = a;
            // B: consecutive threads walk the output columns (pixels in MODE 0/1)
            let kb = idx / BN;
            let nb = idx % BN;
            var b = 0.0;
            if (k0 + kb < k_end) { b = load_b(k0 + kb, col0 + nb); }
            tile_b[kb * BN + nb] = b;
        }
        workgroupBarrier();
        for (var kk = 0u; kk < BK; kk++) {
            var a: array<f32, 4>;
            var b: array<f32, 4>;
            for (var i = 0u; i < 4u; i++) { a[i] = tile_a[kk * BM + lid.y + 16u * i]; }
            for (var j = 0u; j < 4u; j++) { b[j] = tile_b[kk * BN + lid.x + 16u * j]; }
            for (var i = 0u; i < 4u; i++) {
                for (var j = 0u; j < 4u; j++) { acc[i][j] = fma(a[i], b[j], acc[i][j]); }
            }
        }
        workgroupBarrier();
    }
    for (var i = 0u; i < 4u; i++) {
        for (var j = 0u; j < 4u; j++) {
            store(row0 + lid.y + 16u * i, col0 + lid.x + 16u * j, wid.z, acc[i][j]);
        }
    }
}

// dW[i] = Σ_s partial[s, i] over the k-slices, in slice order. Params.m·Params.n elements,
// Params.k_per_slice holds the slice count here.
@compute @workgroup_size(256, 1, 1)
fn sum_slices(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = gid.x + gid.y * nwg.x * 256u;
    let total = P.m * P.n;
    if (i >= total) { return; }
    var s = 0.0;
    for (var z = 0u; z < P.k_per_slice; z++) { s += src_a[z * total + i]; }
    dst[i] = s;
}
