// Batch norm backward, per channel c over M = batch·hw values, x̂ = (x − mean)·inv_std:
//   dβ = Σ dy,  dγ = Σ dy·x̂,  dx = γ·inv_std·(dy − dβ/M − x̂·dγ/M).
// With the activation fused (P.act ≠ ACT_NONE), `dy` is the activation's gradient da and each
// dy above is da·act'(u), u = (x − mean)·γ·inv_std + β recomputed exactly as bn_apply computed
// it: no u and no du buffer, two passes over da and x instead of act_backward's three.
// With the 2×2 pool fused too (P.pool_w > 0: planes of P.pool_h × P.pool_w), `dy` is the pooled
// gradient and da of element i is its window's dy where i is the window's maximum (the byte
// bn_apply_pool kept), 0 elsewhere and outside every window: pool_backward's routing.

// The two sums run in two dispatches, so that many workgroups read a channel at once:
// `bn_backward_partial` sums each of `slices` chunks of a channel (a fixed tree in workgroup
// memory), `bn_backward_reduce` adds a channel's chunks in order — deterministic.

struct Params {
    batch: u32, channels: u32, hw: u32, slices: u32,
    chunk: u32, act: u32, act_scale: f32, act_lo: f32,
    act_hi: f32, pool_h: u32, pool_w: u32, _pad0: u32,
}

@group(0) @binding(0) var<uniform> P: Params;
@group(0) @binding(1) var<storage, read> dy: array<f32>;
@group(0) @binding(2) var<storage, read> x: array<f32>;
@group(0) @binding(3) var<storage, read> gamma: array<f32>;
@group(0) @binding(4) var<storage, read> stats: array<f32>;   // [mean 0..C, inv_std C..2C]
@group(0) @binding(5) var<storage, read_write> dx: array<f32>;
@group(0) @binding(6) var<storage, read_write> dgamma: array<f32>;
@group(0) @binding(7) var<storage, read_write> dbeta: array<f32>;
// [C][slices][Σdy, Σdy·x̂], then with the activation fused β [C], then with the pool the window
// words (both copied in by the launcher: a binding of their own would pass WebGPU's limit of 8
// storage buffers a stage)
@group(0) @binding(8) var<storage, read_write> part: array<f32>;

var<workgroup> red_a: array<f32, 256>;
var<workgroup> red_b: array<f32, 256>;

fn at(c: u32, j: u32) -> u32 {
    let n = j / P.hw;
    return (n * P.channels + c) * P.hw + j % P.hw;
}

fn act() -> Act { return Act(P.act, P.act_scale, P.act_lo, P.act_hi); }

// The gradient at u of element i (channel c): dy[i], or da·act'(u) with the activation fused.
fn grad_u(i: u32, c: u32) -> f32 {
    if (P.act == ACT_NONE) { return dy[i]; }
    let beta = part[2u * P.channels * P.slices + c];
    let u = (x[i] - stats[c]) * (gamma[c] * stats[P.channels + c]) + beta;
    return select(0.0, grad_a(i), act_keeps(u, act()));
}

// da of element i: dy[i], or with the pool fused the pooled gradient routed to i.
fn grad_a(i: u32) -> f32 {
    if (P.pool_w == 0u) { return dy[i]; }
    let oh = P.pool_h / 2u;
    let ow = P.pool_w / 2u;
    let plane = i / P.hw;
    let yy = (i % P.hw) / P.pool_w;
    let xx = i % P.pool_w;
    if (yy / 2u >= oh || xx / 2u >= ow) { return 0.0; }
    let o = (plane * oh + yy / 2u) * ow + xx / 2u;
    let words = 2u * P.channels * P.slices + P.channels;
    let arg = (bitcast<u32>(part[words + o / 4u]) >> (8u * (o % 4u))) & 0xffu;
    return select(0.0, dy[o], arg == (yy % 2u) * 2u + (xx % 2u));
}

// Chunk wid.x of channel wid.y: Σ dy and Σ dy·x̂.
@compute @workgroup_size(256, 1, 1)
fn bn_backward_partial(@builtin(local_invocation_id) lid3: vec3<u32>, @builtin(workgroup_id) wid: vec3<u32>) {
    let c = wid.y;
    let lid = lid3.x;
    let begin = wid.x * P.chunk;
    let end = min(P.batch * P.hw, begin + P.chunk);
    let m = stats[c];
    let istd = stats[P.channels + c];
    var sa = 0.0;
    var sb = 0.0;
    for (var j = begin + lid; j < end; j += 256u) {
        let i = at(c, j);
        let g = grad_u(i, c);
        sa += g;
        sb += g * ((x[i] - m) * istd);
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
        let o = (c * P.slices + wid.x) * 2u;
        part[o] = red_a[0];
        part[o + 1u] = red_b[0];
    }
}

// One thread per channel: dβ and dγ, the chunks added in order.
@compute @workgroup_size(64, 1, 1)
fn bn_backward_reduce(@builtin(global_invocation_id) gid: vec3<u32>) {
    let c = gid.x;
    if (c >= P.channels) { return; }
    var sa = 0.0;
    var sb = 0.0;
    for (var s = 0u; s < P.slices; s++) {
        let o = (c * P.slices + s) * 2u;
        sa += part[o];
        sb += part[o + 1u];
    }
    dbeta[c] = sa;
    dgamma[c] = sb;
}

@compute @workgroup_size(WG, 1, 1)
fn bn_backward_apply(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = linear_id(gid, nwg);
    if (i >= P.batch * P.channels * P.hw) { return; }
    let c = (i / P.hw) % P.channels;
    let inv_m = 1.0 / f32(P.batch * P.hw);
    let istd = stats[P.channels + c];
    let xh = (x[i] - stats[c]) * istd;
    dx[i] = gamma[c] * istd * (grad_u(i, c) - dbeta[c] * inv_m - xh * dgamma[c] * inv_m);
}
