// Batch norm (Lasagne's BatchNormLayer) over tensors seen as [batch, channels, hw]:
// per channel c, over batch and hw: mean, biased variance, inv_std = 1/sqrt(var + 1e-4);
// y = (x − mean)·γ·inv_std + β; running stats move by α = 0.1. Reductions: one workgroup per channel, fixed strides, a tree in workgroup
// memory — the same inputs give the same bits every run.

struct Params { batch: u32, channels: u32, hw: u32, _pad: u32 }

@group(0) @binding(0) var<uniform> P: Params;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read> gamma: array<f32>;
@group(0) @binding(3) var<storage, read> beta: array<f32>;
@group(0) @binding(4) var<storage, read_write> y: array<f32>;
@group(0) @binding(5) var<storage, read_write> stats: array<f32>;   // [mean 0..C, inv_std C..2C]
@group(0) @binding(6) var<storage, read_write> running: array<f32>; // the same, running averages

const EPS: f32 = 1e-4;
const ALPHA: f32 = 0.1;

var<workgroup> red_a: array<f32, 256>;
var<workgroup> red_b: array<f32, 256>;

fn at(c: u32, j: u32) -> u32 {
    // j runs over batch·hw for channel c
    let n = j / P.hw;
    return (n * P.channels + c) * P.hw + j % P.hw;
}

fn reduce_pair(lid: u32) {
    for (var s = 128u; s > 0u; s >>= 1u) {
        if (lid < s) {
            red_a[lid] += red_a[lid + s];
            red_b[lid] += red_b[lid + s];
        }
        workgroupBarrier();
    }
}

// Training statistics of channel wid.x: batch mean and inv_std, running stats updated.
@compute @workgroup_size(256, 1, 1)
fn bn_stats(@builtin(local_invocation_id) lid3: vec3<u32>, @builtin(workgroup_id) wid: vec3<u32>) {
    let c = wid.x;
    let lid = lid3.x;
    let count = P.batch * P.hw;
    var s = 0.0;
    for (var j = lid; j < count; j += 256u) { s += x[at(c, j)]; }
    red_a[lid] = s;
    red_b[lid] = 0.0;
    workgroupBarrier();
    reduce_pair(lid);
    let m = red_a[0] / f32(count);
    workgroupBarrier();
    var q = 0.0;
    for (var j = lid; j < count; j += 256u) { let d = x[at(c, j)] - m; q += d * d; }
    red_a[lid] = q;
    workgroupBarrier();
    reduce_pair(lid);
    if (lid == 0u) {
        let istd = 1.0 / sqrt(red_a[0] / f32(count) + EPS);
        stats[c] = m;
        stats[P.channels + c] = istd;
        running[c] = (1.0 - ALPHA) * running[c] + ALPHA * m;
        running[P.channels + c] = (1.0 - ALPHA) * running[P.channels + c] + ALPHA * istd;
    }
}

// y = (x − mean)·γ·inv_std + β, element-wise; `stats` holds the batch or the running statistics.
@compute @workgroup_size(256, 1, 1)
fn bn_apply(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = gid.x + gid.y * nwg.x * 256u;
    if (i >= P.batch * P.channels * P.hw) { return; }
    let c = (i / P.hw) % P.channels;
    y[i] = (x[i] - stats[c]) * (gamma[c] * stats[P.channels + c]) + beta[c];
}
