
// ---- shaders/common.wgsl: appended to every kernel file (src/gpu/shaders.rs), so each file's
// own line numbers stay as they are in messages.

// The flat index of a 1-D kernel's thread: grids wider than 65535 workgroups wrap into y
// (`grid_1d` in src/gpu/mod.rs), 256 threads per workgroup.
fn linear_id(gid: vec3<u32>, nwg: vec3<u32>) -> u32 { return gid.x + gid.y * nwg.x * 256u; }

// NaN or ±inf, tested on the bits: WGSL lets compilers assume float values are finite, so a
// float comparison cannot be trusted to see a NaN.
fn non_finite(v: f32) -> bool { return (bitcast<u32>(v) & 0x7f800000u) == 0x7f800000u; }
