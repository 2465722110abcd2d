// Batch norm (Lasagne's BatchNormLayer) over tensors seen as [batch, channels, hw]:
// per channel c, over batch and hw: mean, biased variance, inv_std = 1/sqrt(var + EPS);
// y = (x − mean)·γ·inv_std + β; running stats move by ALPHA. EPS (1e-4) and ALPHA (0.1) are
// the pipeline's override constants, from `EPS` and `ALPHA` in src/ops/batchnorm.rs.
// Statistics in two dispatches, so that a channel is read by many workgroups at once (one
// workgroup per channel left most of a large GPU idle): `bn_partial` gives each of `slices`
// chunks of a channel its count, mean and M2 (a two-pass over the chunk, a fixed tree in
// workgroup memory); `bn_stats` merges a channel's chunks in order (Chan et al.'s pairwise
// update). Fixed order throughout: the same inputs give the same bits every run.
// Fused (src/gpu/backend.rs's bn_act_train, bn_act_pool_train): `bn_apply` with P.act applies
// the activation too; `bn_apply_pool` also takes the 2×2 max pool, keeping a byte per window
// instead of the activations (batchnorm_backward.wgsl routes the pooled gradient by it).

struct Params {
    batch: u32, channels: u32, hw: u32, slices: u32,
    chunk: u32, act: u32, act_scale: f32, act_lo: f32,
    act_hi: f32, pool_h: u32, pool_w: u32, _pad0: u32,
}

@group(0) @binding(0) var<uniform> P: Params;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read> gamma: array<f32>;
@group(0) @binding(3) var<storage, read> beta: array<f32>;
@group(0) @binding(4) var<storage, read_write> y: array<f32>;
@group(0) @binding(5) var<storage, read_write> stats: array<f32>;   // [mean 0..C, inv_std C..2C]
@group(0) @binding(6) var<storage, read_write> running: array<f32>; // the same, running averages
@group(0) @binding(7) var<storage, read_write> part: array<f32>;    // [C][slices][count, mean, M2]
// bn_apply_pool: which of each window's four inputs was the maximum, a byte per pooled value
@group(0) @binding(8) var<storage, read_write> window: array<u32>;

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

// u = (x − mean)·γ·inv_std + β of element i (channel c); `stats` holds the batch or the running
// statistics.
fn bn_at(i: u32, c: u32) -> f32 {
    return (x[i] - stats[c]) * (gamma[c] * stats[P.channels + c]) + beta[c];
}

fn act() -> Act { return Act(P.act, P.act_scale, P.act_lo, P.act_hi); }

// y = u element-wise, or y = act(u) with the activation fused (P.act ≠ ACT_NONE: one pass
// instead of two, u not stored; the backward recomputes it the same way).
@compute @workgroup_size(WG, 1, 1)
fn bn_apply(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = linear_id(gid, nwg);
    if (i >= P.batch * P.channels * P.hw) { return; }
    let c = (i / P.hw) % P.channels;
    let u = bn_at(i, c);
    if (P.act == ACT_NONE) {
        y[i] = u;
    } else {
        y[i] = act_value(u, act());
    }
}

// Batch norm, the activation and the 2×2 max pool (stride 2, floor) in one pass: planes of
// P.pool_h × P.pool_w in x, y [planes, pool_h/2, pool_w/2] the pooled act(u), and window the
// first maximum's place in each window (0..3, row-major; pool.wgsl's rule), a byte per pooled
// value, four to a word — what the backward routes the pooled gradient by, instead of act(u)
// itself, which is not stored. One thread per word: four windows.
@compute @workgroup_size(WG, 1, 1)
fn bn_apply_pool(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let q = linear_id(gid, nwg);
    let oh = P.pool_h / 2u;
    let ow = P.pool_w / 2u;
    let total = P.batch * P.channels * oh * ow;
    if (q * 4u >= total) { return; }
    var word = 0u;
    for (var k = 0u; k < 4u; k++) {
        let o = q * 4u + k;
        if (o >= total) { break; }
        let plane = o / (oh * ow);
        let r = o % (oh * ow);
        let c = plane % P.channels;
        let base = (plane * P.pool_h + 2u * (r / ow)) * P.pool_w + 2u * (r % ow);
        var best = act_value(bn_at(base, c), act());
        var arg = 0u;
        let v1 = act_value(bn_at(base + 1u, c), act());
        if (v1 > best) { best = v1; arg = 1u; }
        let v2 = act_value(bn_at(base + P.pool_w, c), act());
        if (v2 > best) { best = v2; arg = 2u; }
        let v3 = act_value(bn_at(base + P.pool_w + 1u, c), act());
        if (v3 > best) { best = v3; arg = 3u; }
        y[o] = best;
        word |= arg << (8u * k);
    }
    window[q] = word;
}
