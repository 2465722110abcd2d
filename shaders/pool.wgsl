// Max pool 2×2, stride 2, floor: x [planes, h, w] → y [planes, h/2, w/2]. The window's first
// maximum in row-major order wins (ties are common after quantization); backward sends the
// gradient to that one input, and rows/columns dropped by the floor get zero.
// Global average pool: x [planes, h, w] → y [planes] = (Σ of the plane in pixel order)·scale,
// scale = 1/(h·w) rounded to f32 on the Rust side (as the CPU computes it, bit for bit);
// backward dx [planes, h, w] = dy[plane]·scale.

struct Params { planes: u32, h: u32, w: u32, scale: f32 }

@group(0) @binding(0) var<uniform> P: Params;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read> dy: array<f32>;
@group(0) @binding(3) var<storage, read_write> out: array<f32>;


// Index (0..3) of the first maximum of the window at output (plane, oy, ox), and its value.
fn window_max(plane: u32, oy: u32, ox: u32) -> vec2<f32> {
    let base = (plane * P.h + 2u * oy) * P.w + 2u * ox;
    var best = x[base];
    var arg = 0u;
    let v1 = x[base + 1u];
    if (v1 > best) { best = v1; arg = 1u; }
    let v2 = x[base + P.w];
    if (v2 > best) { best = v2; arg = 2u; }
    let v3 = x[base + P.w + 1u];
    if (v3 > best) { best = v3; arg = 3u; }
    return vec2<f32>(best, f32(arg));
}

@compute @workgroup_size(WG, 1, 1)
fn pool_forward(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = linear_id(gid, nwg);
    let oh = P.h / 2u;
    let ow = P.w / 2u;
    if (i >= P.planes * oh * ow) { return; }
    let plane = i / (oh * ow);
    let r = i % (oh * ow);
    out[i] = window_max(plane, r / ow, r % ow).x;
}

// One thread per input element: dx = dy of its window if it is the window's winner, else 0.
@compute @workgroup_size(WG, 1, 1)
fn pool_backward(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = linear_id(gid, nwg);
    if (i >= P.planes * P.h * P.w) { return; }
    let oh = P.h / 2u;
    let ow = P.w / 2u;
    let plane = i / (P.h * P.w);
    let y = (i / P.w) % P.h;
    let xx = i % P.w;
    let oy = y / 2u;
    let ox = xx / 2u;
    var g = 0.0;
    if (oy < oh && ox < ow) {
        let arg = u32(window_max(plane, oy, ox).y);
        if (arg == (y % 2u) * 2u + (xx % 2u)) { g = dy[(plane * oh + oy) * ow + ox]; }
    }
    out[i] = g;
}

// One thread per plane: the plane's values added one by one in pixel order (the CPU's order),
// then multiplied by the scale. `x` at binding 1, y [planes] in `out`.
@compute @workgroup_size(WG, 1, 1)
fn global_pool_forward(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let plane = linear_id(gid, nwg);
    if (plane >= P.planes) { return; }
    let hw = P.h * P.w;
    let base = plane * hw;
    var s = 0.0;
    for (var p = 0u; p < hw; p++) { s += x[base + p]; }
    out[plane] = s * P.scale;
}

// One thread per input element: dx [planes, h, w] = dy[plane]·scale, dy [planes] at binding 2.
@compute @workgroup_size(WG, 1, 1)
fn global_pool_backward(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = linear_id(gid, nwg);
    let hw = P.h * P.w;
    if (i >= P.planes * hw) { return; }
    out[i] = dy[i / hw] * P.scale;
}
