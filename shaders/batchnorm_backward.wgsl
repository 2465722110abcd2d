// Batch norm backward, per channel c over M = batch·hw values, x̂ = (x − mean)·inv_std:
//   dβ = Σ dy,  dγ = Σ dy·x̂,  dx = γ·inv_std·(dy − dβ/M − x̂·dγ/M).

struct Params { batch: u32, channels: u32, hw: u32, _pad: u32 }

@group(0) @binding(0) var<uniform> P: Params;
@group(0) @binding(1) var<storage, read> dy: array<f32>;
@group(0) @binding(2) var<storage, read> x: array<f32>;
@group(0) @binding(3) var<storage, read> gamma: array<f32>;
@group(0) @binding(4) var<storage, read> stats: array<f32>;   // [mean 0..C, inv_std C..2C]
@group(0) @binding(5) var<storage, read_write> dx: array<f32>;
@group(0) @binding(6) var<storage, read_write> dgamma: array<f32>;
@group(0) @binding(7) var<storage, read_write> dbeta: array<f32>;

var<workgroup> red_a: array<f32, 256>;
var<workgroup> red_b: array<f32, 256>;

fn at(c: u32, j: u32) -> u32 {
    let n = j / P.hw;
    return (n * P.channels + c) * P.hw + j % P.hw;
}

@compute @workgroup_size(256, 1, 1)
fn bn_backward_reduce(@builtin(local_invocation_id) lid3: vec3<u32>, @builtin(workgroup_id) wid: vec3<u32>) {
    let c = wid.x;
    let lid = lid3.x;
    let count = P.batch * P.hw;
    let m = stats[c];
    let istd = stats[P.channels + c];
    var sa = 0.0;
    var sb = 0.0;
    for (var j = lid; j < count; j += 256u) {
        let i = at(c, j);
        sa += dy[i];
        sb += dy[i] * ((x[i] - m) * istd);
    }
    red_a[lid] = sa;
    red_b[lid] = sb;
    workgroupBarrier();
    for (var s = 128u; s > 0u; s >>= 1u) {
        if (lid < s) {
            red_a[lid] += red_a[lid + s];
            red_b[lid] += red_b[lid + s];
        }
        workgroupBarrier();
    }
    if (lid == 0u) {
        dbeta[c] = red_a[0];
        dgamma[c] = red_b[0];
    }
}

@compute @workgroup_size(256, 1, 1)
fn bn_backward_apply(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = gid.x + gid.y * nwg.x * 256u;
    if (i >= P.batch * P.channels * P.hw) { return; }
    let c = (i / P.hw) % P.channels;
    let inv_m = 1.0 / f32(P.batch * P.hw);
    let istd = stats[P.channels + c];
    let xh = (x[i] - stats[c]) * istd;
    dx[i] = gamma[c] * istd * (dy[i] - dbeta[c] * inv_m - xh * dgamma[c] * inv_m);
}
