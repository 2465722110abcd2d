// Parameter updates. The learning rate and Adam's bias correction come from `step`
// ([adam_step, lr, momentum, 0], written each step), so a schedule needs no new pipeline.
//   Adam (Lasagne): m = β1·m + (1−β1)·g; v = β2·v + (1−β2)·g²; p' = p − adam_step·m/(√v + ε),
//     adam_step = lr·√(1−β2^t)/(1−β1^t).
//   SGD with momentum (Lasagne): vel = μ·vel − lr·g; p' = p + vel.
//   rule 1 (BinaryNet's quantized weights): p ← clip(p + scale·(p' − p), −1, 1); rule 0: p ← p'.

struct Params {
    n: u32, rule: u32, scale: f32, beta1: f32,
    beta2: f32, eps: f32, _pad0: u32, _pad1: u32,
}

@group(0) @binding(0) var<uniform> P: Params;
@group(0) @binding(1) var<storage, read> g: array<f32>;
@group(0) @binding(2) var<storage, read> step: array<f32>;
@group(0) @binding(3) var<storage, read_write> p: array<f32>;
@group(0) @binding(4) var<storage, read_write> m: array<f32>;   // Adam's first moment, or SGD's velocity
@group(0) @binding(5) var<storage, read_write> v: array<f32>;


fn apply_rule(old: f32, new_value: f32) -> f32 {
    if (P.rule == 1u) { return clamp(old + P.scale * (new_value - old), -1.0, 1.0); }
    return new_value;
}

@compute @workgroup_size(WG, 1, 1)
fn adam(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = linear_id(gid, nwg);
    if (i >= P.n) { return; }
    let gi = g[i];
    let mi = P.beta1 * m[i] + (1.0 - P.beta1) * gi;
    let vi = P.beta2 * v[i] + (1.0 - P.beta2) * gi * gi;
    m[i] = mi;
    v[i] = vi;
    let old = p[i];
    p[i] = apply_rule(old, old - step[0] * mi / (sqrt(vi) + P.eps));
}

@compute @workgroup_size(WG, 1, 1)
fn sgd(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = linear_id(gid, nwg);
    if (i >= P.n) { return; }
    let vel = step[2] * m[i] - step[1] * g[i];
    m[i] = vel;
    let old = p[i];
    p[i] = apply_rule(old, old + vel);
}
