// The quantizers of docs/spec.md (twin: src/quant.rs).
// Activations: q = clip(2·round(hs(x)·scale)/scale − 1, lo, hi), hs(x) = clip((x+1)/2, 0, 1),
// rounding half AWAY from zero (WGSL's round() is half to even, so it is not used here);
// straight-through backward: keep where −1 ≤ x ≤ 1 and the unclipped value lies in [lo, hi].
// Weights: per-tensor f = floor(log2(1/max|W|)), Wq = clip(round(W·2^(nb−1+f)), lo, hi)/2^(nb−1+f)
// rounding half to EVEN (Theano's T.round), or sign for nb = 0.

struct Params {
    n: u32, mode: u32, scale: f32, lo: f32,
    hi: f32, bits: u32, chunk: u32, _pad: u32,
}

@group(0) @binding(0) var<uniform> P: Params;
@group(0) @binding(1) var<storage, read> x: array<f32>;       // activations' input, or W
@group(0) @binding(2) var<storage, read> aux: array<f32>;     // dy (activation backward) or max|W|
@group(0) @binding(3) var<storage, read_write> out: array<f32>;

// activation modes: ACT_QUANT, ACT_RELU, ACT_HARDTANH (common.wgsl, with the quantizer itself)
// weight modes
const W_FLOAT: u32 = 0u;
const W_BINARY: u32 = 1u;
const W_BITS: u32 = 2u;


// The activation of P.mode (act_value, act_keeps: common.wgsl).
fn act() -> Act { return Act(P.mode, P.scale, P.lo, P.hi); }

@compute @workgroup_size(WG, 1, 1)
fn act_forward(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = linear_id(gid, nwg);
    if (i >= P.n) { return; }
    out[i] = act_value(x[i], act());
}

@compute @workgroup_size(WG, 1, 1)
fn act_backward(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = linear_id(gid, nwg);
    if (i >= P.n) { return; }
    out[i] = select(0.0, aux[i], act_keeps(x[i], act()));
}

var<workgroup> red: array<f32, 256>;

// out[wid.x] = max|x| over elements [wid.x·chunk, (wid.x+1)·chunk) of P.n: a tree in each
// workgroup. Run over chunks, then once more over their maxima (max is exact in any order).
@compute @workgroup_size(256, 1, 1)
fn abs_max(@builtin(local_invocation_id) lid3: vec3<u32>, @builtin(workgroup_id) wid: vec3<u32>) {
    let lid = lid3.x;
    let begin = wid.x * P.chunk;
    let end = min(P.n, begin + P.chunk);
    var m = 0.0;
    for (var i = begin + lid; i < end; i += 256u) { m = max(m, abs(x[i])); }
    red[lid] = m;
    workgroupBarrier();
    for (var s = 128u; s > 0u; s >>= 1u) {
        if (lid < s) { red[lid] = max(red[lid], red[lid + s]); }
        workgroupBarrier();
    }
    if (lid == 0u) { out[wid.x] = red[0]; }
}

// f = floor(log2(1/m)) exactly: the binary exponent of the f32 1/m (0 for an all-zero tensor).
fn weight_exponent(m: f32) -> i32 {
    if (m == 0.0) { return 0; }
    let r = 1.0 / m;
    let e = i32((bitcast<u32>(r) >> 23u) & 0xffu);
    if (e == 255) { return 127; }
    if (e == 0) { return -127; }
    return e - 127;
}

@compute @workgroup_size(WG, 1, 1)
fn weight_quantize(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = linear_id(gid, nwg);
    if (i >= P.n) { return; }
    let w = x[i];
    var q: f32;
    if (P.mode == W_FLOAT) {
        q = w;
    } else if (P.mode == W_BINARY) {
        q = select(-1.0, 1.0, w >= 0.0);
    } else {
        let scale = ldexp(1.0, i32(P.bits) - 1 + weight_exponent(aux[0]));
        q = clamp(round(w * scale), P.lo, P.hi) / scale;
    }
    out[i] = select(q, w, non_finite(w));
}
