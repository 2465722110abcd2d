
// ---- shaders/common.wgsl: appended to every kernel file (src/gpu/shaders.rs), so each file's
// own line numbers stay as they are in messages.

// Threads per workgroup of the 1-D kernels (`@workgroup_size(WG, 1, 1)`), supplied by the
// pipeline from `WG` in src/gpu/mod.rs (`WG_CONSTANT` in each such kernel's `constants`).
override WG: u32;

// The flat index of a 1-D kernel's thread: grids wider than 65535 workgroups wrap into y
// (`grid_1d` in src/gpu/mod.rs), WG threads per workgroup.
fn linear_id(gid: vec3<u32>, nwg: vec3<u32>) -> u32 { return gid.x + gid.y * nwg.x * WG; }

// NaN or ±inf, tested on the bits: WGSL lets compilers assume float values are finite, so a
// float comparison cannot be trusted to see a NaN.
fn non_finite(v: f32) -> bool { return (bitcast<u32>(v) & 0x7f800000u) == 0x7f800000u; }

// The activation quantizer of docs/spec.md (twin: src/quant.rs), for quantize.wgsl's
// act_forward/act_backward and batch norm fused with its activation. Mode ACT_QUANT: levels
// q = clip(2·round(hs(v)·scale)/scale − 1, lo, hi), hs(v) = clip((v+1)/2, 0, 1), rounding half
// AWAY from zero (WGSL's round() is half to even, so it is not used); ACT_RELU, ACT_HARDTANH:
// float. ACT_NONE: none (a batch norm without one).
const ACT_QUANT: u32 = 0u;
const ACT_RELU: u32 = 1u;
const ACT_HARDTANH: u32 = 2u;
const ACT_NONE: u32 = 3u;

struct Act { mode: u32, scale: f32, lo: f32, hi: f32 }

fn round_half_away(v: f32) -> f32 {
    let t = trunc(v);
    if (abs(v - t) >= 0.5) { return t + sign(v); }
    return t;
}

fn act_unclipped(v: f32, a: Act) -> f32 {
    let hs = clamp((v + 1.0) * 0.5, 0.0, 1.0);
    return 2.0 * round_half_away(hs * a.scale) / a.scale - 1.0;
}

// act(v). A non-finite v is passed on as it is, not rounded to a finite level, so the run's
// checks downstream see it; the CPU twin gives NaN. (A NaN constant is not allowed in WGSL,
// hence the input itself.)
fn act_value(v: f32, a: Act) -> f32 {
    var q: f32;
    if (a.mode == ACT_QUANT) {
        q = clamp(act_unclipped(v, a), a.lo, a.hi);
    } else if (a.mode == ACT_RELU) {
        q = max(v, 0.0);
    } else {
        q = clamp(v, -1.0, 1.0);
    }
    return select(q, v, non_finite(v));
}

// The straight-through backward's mask at v: the gradient passes where −1 ≤ v ≤ 1 and the
// unclipped level lies in [lo, hi] (ACT_QUANT), where v > 0 (ACT_RELU), where −1 ≤ v ≤ 1
// (ACT_HARDTANH).
fn act_keeps(v: f32, a: Act) -> bool {
    if (a.mode == ACT_QUANT) {
        let u = act_unclipped(v, a);
        return v >= -1.0 && v <= 1.0 && u >= a.lo && u <= a.hi;
    } else if (a.mode == ACT_RELU) {
        return v > 0.0;
    }
    return v >= -1.0 && v <= 1.0;
}
