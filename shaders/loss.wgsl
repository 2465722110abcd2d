// Squared hinge loss over scores y [batch, classes] with targets t = ±1 (2·onehot − 1):
//   loss = mean_{b,k} max(0, 1 − t·y)²,  ∂loss/∂y = −2·t·max(0, 1 − t·y)/(batch·classes).
// acc[0] += Σ_b mean_k(...) and acc[1] += #(argmax y ≠ label): running sums over an epoch that
// stay on the device. acc[2] counts calls; acc[4] counts rows whose scores or loss are NaN or
// infinite and acc[3] keeps the number of the first call that saw one (0: none yet), so the host
// learns at its next read which step went non-finite (layout: LossAcc in src/backend.rs).
// One workgroup; rows summed by a fixed tree, so results are deterministic.

struct Params { batch: u32, write_grad: u32, classes: u32, _pad: u32 }

@group(0) @binding(0) var<uniform> P: Params;
@group(0) @binding(1) var<storage, read> y: array<f32>;
@group(0) @binding(2) var<storage, read> labels: array<u32>;
@group(0) @binding(3) var<storage, read_write> dy: array<f32>;
@group(0) @binding(4) var<storage, read_write> acc: array<f32>;

var<workgroup> red_loss: array<f32, 256>;
var<workgroup> red_wrong: array<f32, 256>;
var<workgroup> red_bad: array<f32, 256>;

@compute @workgroup_size(256, 1, 1)
fn squared_hinge(@builtin(local_invocation_id) lid3: vec3<u32>) {
    let lid = lid3.x;
    let classes = P.classes;
    let grad_scale = -2.0 / f32(P.batch * classes);
    var loss = 0.0;
    var wrong = 0.0;
    var bad = 0.0;
    for (var b = lid; b < P.batch; b += 256u) {
        let label = labels[b];
        var row = 0.0;
        var row_bad = false;
        var best = y[b * classes];
        var arg = 0u;
        for (var k = 0u; k < classes; k++) {
            let v = y[b * classes + k];
            if (v > best) { best = v; arg = k; }
            let t = select(-1.0, 1.0, k == label);
            let h = max(0.0, 1.0 - t * v);
            row += h * h;
            row_bad = row_bad || non_finite(v);
            if (P.write_grad != 0u) { dy[b * classes + k] = grad_scale * t * h; }
        }
        loss += row / f32(classes);
        wrong += select(0.0, 1.0, arg != label);
        bad += select(0.0, 1.0, row_bad || non_finite(row));
    }
    red_loss[lid] = loss;
    red_wrong[lid] = wrong;
    red_bad[lid] = bad;
    workgroupBarrier();
    for (var s = 128u; s > 0u; s >>= 1u) {
        if (lid < s) {
            red_loss[lid] += red_loss[lid + s];
            red_wrong[lid] += red_wrong[lid + s];
            red_bad[lid] += red_bad[lid + s];
        }
        workgroupBarrier();
    }
    if (lid == 0u) {
        acc[0] += red_loss[0];
        acc[1] += red_wrong[0];
        acc[2] += 1.0;
        if (red_bad[0] > 0.0 && acc[3] == 0.0) { acc[3] = acc[2]; }
        acc[4] += red_bad[0];
    }
}
