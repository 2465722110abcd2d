
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
