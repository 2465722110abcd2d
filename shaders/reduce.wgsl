// Per-channel sum over batch and space: out[c] = Σ_{n,hw} x[n,c,hw] (the gradients of the conv
// and dense biases). `channel_sum_partial` sums each of `slices` chunks of a channel (a fixed
// tree in workgroup memory) so that many workgroups share a channel; `channel_sum` adds a
// channel's chunks in order — deterministic.

struct Params {
    batch: u32, channels: u32, hw: u32, slices: u32,
    chunk: u32, act: u32, act_scale: f32, act_lo: f32,
    act_hi: f32, pool_h: u32, pool_w: u32, _pad0: u32,
}

@group(0) @binding(0) var<uniform> P: Params;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read_write> out: array<f32>;
@group(0) @binding(3) var<storage, read_write> part: array<f32>;   // [C][slices]

var<workgroup> red: array<f32, 256>;

@compute @workgroup_size(256, 1, 1)
fn channel_sum_partial(@builtin(local_invocation_id) lid3: vec3<u32>, @builtin(workgroup_id) wid: vec3<u32>) {
    let c = wid.y;
    let lid = lid3.x;
    let begin = wid.x * P.chunk;
    let end = min(P.batch * P.hw, begin + P.chunk);
    var s = 0.0;
    for (var j = begin + lid; j < end; j += 256u) {
        let n = j / P.hw;
        s += x[(n * P.channels + c) * P.hw + j % P.hw];
    }
    red[lid] = s;
    workgroupBarrier();
    for (var st = 128u; st > 0u; st >>= 1u) {
        if (lid < st) { red[lid] += red[lid + st]; }
        workgroupBarrier();
    }
    if (lid == 0u) { part[c * P.slices + wid.x] = red[0]; }
}

@compute @workgroup_size(64, 1, 1)
fn channel_sum(@builtin(global_invocation_id) gid: vec3<u32>) {
    let c = gid.x;
    if (c >= P.channels) { return; }
    var s = 0.0;
    for (var k = 0u; k < P.slices; k++) { s += part[c * P.slices + k]; }
    out[c] = s;
}
