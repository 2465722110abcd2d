// Batch norm (Lasagne's BatchNormLayer) over tensors seen as [batch, channels, hw]:
// per channel c, over batch and hw: mean, biased variance, inv_std = 1/sqrt(var + EPS);
// y = (x − mean)·γ·inv_std + β; running stats move by ALPHA. EPS (1e-4) and ALPHA (0.1) are
// the pipeline's override constants, from `EPS` and `ALPHA` in src/ops/batchnorm.rs.
// Statistics in two dispatches, so that a channel is read by many workgroups at once (one
// workgroup per channel left most of a large GPU idle): `bn_partial` gives each of `slices`
// chunks of a channel its count, mean and M2 (a two-pass over the chunk, a fixed tree in
// workgroup memory); `bn_stats` merges a channel's chunks in order (Chan et al.'s pairwise
// update). Fixed order throughout: the same inputs give the same bits every run.

struct Params {
    batch: u32, channels: u32, hw: u32, slices: u32,
    chunk: u32, act: u32, act_scale: f32, act_lo: f32,
    act_hi: f32, _pad0: u32, _pad1: u32, _pad2: u32,
}

@group(0) @binding(0) var<uniform> P: Params;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read> gamma: array<f32>;
@group(0) @binding(3) var<storage, read> beta: array<f32>;
@group(0) @binding(4) var<storage, read_write> y: array<f32>;
@group(0) @binding(5) var<storage, read_write> stats: array<f32>;   // [mean 0..C, inv_std C..2C]
@group(0) @binding(6) var<storage, read_write> running: array<f32>; // the same, running averages
@group(0) @binding(7) var<storage, read_write> part: array<f32>;    // [C][slices][count, mean, M2]

// Added to the variance; the weight of the batch statistics in the running averages.
override EPS: f32;
override ALPHA: f32;

var<workgroup> red: array<f32, 256>;

fn at(c: u32, j: u32) -> u32 {
    // j runs over batch·hw for channel c
    let n = j / P.hw;
    return (n * P.channels + c) * P.hw + j % P.hw;
}

// red[0] = Σ red[0..256] by a fixed tree.
fn reduce(lid: u32) {
    workgroupBarrier();
    for (var s = 128u; s > 0u; s >>= 1u) {
        if (lid < s) { red[lid] += red[lid + s]; }
        workgroupBarrier();
    }
}

// Chunk wid.x of channel wid.y: count, mean and M2 = Σ (x − mean)².
@compute @workgroup_size(256, 1, 1)
fn bn_partial(@builtin(local_invocation_id) lid3: vec3<u32>, @builtin(workgroup_id) wid: vec3<u32>) {
    let c = wid.y;
    let lid = lid3.x;
    let begin = wid.x * P.chunk;
    let end = min(P.batch * P.hw, begin + P.chunk);
    let count = f32(max(end, begin) - begin);
    var s = 0.0;
    for (var j = begin + lid; j < end; j += 256u) { s += x[at(c, j)]; }
    red[lid] = s;
    reduce(lid);
    let m = red[0] / max(count, 1.0);
    workgroupBarrier();
    var q = 0.0;
    for (var j = begin + lid; j < end; j += 256u) { let d = x[at(c, j)] - m; q += d * d; }
    red[lid] = q;
    reduce(lid);
    if (lid == 0u) {
        let o = (c * P.slices + wid.x) * 3u;
        part[o] = count;
        part[o + 1u] = m;
        part[o + 2u] = red[0];
    }
}

// One thread per channel: merge the chunks in order, write the batch statistics and move the
// running ones.
@compute @workgroup_size(64, 1, 1)
fn bn_stats(@builtin(global_invocation_id) gid: vec3<u32>) {
    let c = gid.x;
    if (c >= P.channels) { return; }
    var n = 0.0;
    var m = 0.0;
    var m2 = 0.0;
    for (var s = 0u; s < P.slices; s++) {
        let o = (c * P.slices + s) * 3u;
        let nb = part[o];
        if (nb == 0.0) { continue; }
        let nab = n + nb;
        let d = part[o + 1u] - m;
        m = m + d * (nb / nab);
        m2 = m2 + part[o + 2u] + d * d * (n * nb / nab);
        n = nab;
    }
    let istd = 1.0 / sqrt(m2 / n + EPS);
    stats[c] = m;
    stats[P.channels + c] = istd;
    running[c] = (1.0 - ALPHA) * running[c] + ALPHA * m;
    running[P.channels + c] = (1.0 - ALPHA) * running[P.channels + c] + ALPHA * istd;
}

// u = (x − mean)·γ·inv_std + β, element-wise; `stats` holds the batch or the running statistics.
// y = u, or y = act(u) with the activation fused (P.act ≠ ACT_NONE: one pass instead of two, u
// not stored; the backward recomputes it the same way).
@compute @workgroup_size(WG, 1, 1)
fn bn_apply(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = linear_id(gid, nwg);
    if (i >= P.batch * P.channels * P.hw) { return; }
    let c = (i / P.hw) % P.channels;
    let u = (x[i] - stats[c]) * (gamma[c] * stats[P.channels + c]) + beta[c];
    if (P.act == ACT_NONE) {
        y[i] = u;
    } else {
        y[i] = act_value(u, Act(P.act, P.act_scale, P.act_lo, P.act_hi));
    }
}
