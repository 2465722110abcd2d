// Dense layer y = x·Wᵀ + b with x [batch, inputs], W [outputs, inputs], y [batch, outputs].
// The classifier is small (1024→10 in the seed's example), so each thread owns one output element
// and sums in a fixed order: deterministic and exact enough.

struct Params { batch: u32, inputs: u32, outputs: u32, _pad: u32 }

@group(0) @binding(0) var<uniform> P: Params;
@group(0) @binding(1) var<storage, read> src_a: array<f32>;
@group(0) @binding(2) var<storage, read> src_b: array<f32>;
@group(0) @binding(3) var<storage, read> bias: array<f32>;
@group(0) @binding(4) var<storage, read_write> dst: array<f32>;


// y[n,o] = b[o] + Σ_i x[n,i]·W[o,i]        src_a = x, src_b = W
@compute @workgroup_size(WG, 1, 1)
fn dense_forward(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let t = linear_id(gid, nwg);
    if (t >= P.batch * P.outputs) { return; }
    let n = t / P.outputs;
    let o = t % P.outputs;
    var s = 0.0;
    for (var i = 0u; i < P.inputs; i++) { s = fma(src_a[n * P.inputs + i], src_b[o * P.inputs + i], s); }
    dst[t] = s + bias[o];
}

// dx[n,i] = Σ_o dy[n,o]·W[o,i]              src_a = dy, src_b = W
@compute @workgroup_size(WG, 1, 1)
fn dense_grad_input(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let t = linear_id(gid, nwg);
    if (t >= P.batch * P.inputs) { return; }
    let n = t / P.inputs;
    let i = t % P.inputs;
    var s = 0.0;
    for (var o = 0u; o < P.outputs; o++) { s = fma(src_a[n * P.outputs + o], src_b[o * P.inputs + i], s); }
    dst[t] = s;
}

// dW[o,i] = Σ_n dy[n,o]·x[n,i]              src_a = dy, src_b = x
@compute @workgroup_size(WG, 1, 1)
fn dense_grad_weight(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let t = linear_id(gid, nwg);
    if (t >= P.outputs * P.inputs) { return; }
    let o = t / P.inputs;
    let i = t % P.inputs;
    var s = 0.0;
    for (var n = 0u; n < P.batch; n++) { s = fma(src_a[n * P.outputs + o], src_b[n * P.inputs + i], s); }
    dst[t] = s;
}
