// Per-channel sum over batch and space: out[c] = Σ_{n,hw} x[n,c,hw] (the gradients of the conv
// and dense biases). One workgroup per channel, fixed strides, a tree in workgroup memory.

struct Params { batch: u32, channels: u32, hw: u32, _pad: u32 }

@group(0) @binding(0) var<uniform> P: Params;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read_write> out: array<f32>;

var<workgroup> red: array<f32, 256>;

@compute @workgroup_size(256, 1, 1)
fn channel_sum(@builtin(local_invocation_id) lid3: vec3<u32>, @builtin(workgroup_id) wid: vec3<u32>) {
    let c = wid.x;
    let lid = lid3.x;
    let count = P.batch * P.hw;
    var s = 0.0;
    for (var j = lid; j < count; j += 256u) {
        let n = j / P.hw;
        s += x[(n * P.channels + c) * P.hw + j % P.hw];
    }
    red[lid] = s;
    workgroupBarrier();
    for (var st = 128u; st > 0u; st >>= 1u) {
        if (lid < st) { red[lid] += red[lid + st]; }
        workgroupBarrier();
    }
    if (lid == 0u) { out[c] = red[0]; }
}
