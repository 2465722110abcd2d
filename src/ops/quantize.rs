//! Activation and weight quantizers — shaders/quantize.wgsl (the activation itself in
//! shaders/common.wgsl, shared with the fused batch norm); the scalar definitions are in
//! `crate::quant`.

use crate::backend::{Buf, Family};
use crate::gpu::{grid_1d, shaders, Access, GpuBackend, Kernel, WG_CONSTANT};
use crate::par;
use crate::quant::{ActFn, ActQuant, Nonlinearity, WeightQuant};

const CHUNK: usize = 1 << 14;

/// y = act(x), element-wise over x's length.
pub fn act_forward(a: ActQuant, x: &[f32], y: &mut [f32]) {
    let n = x.len();
    let f = a.compile();
    par::for_each_chunk(&mut y[..n], CHUNK, |c, out| {
        let xs = &x[c * CHUNK..c * CHUNK + out.len()];
        // one loop per variant, so each is monomorphic and vectorizes
        match f {
            ActFn::Quantized(l) => out
                .iter_mut()
                .zip(xs)
                .for_each(|(o, &v)| *o = ActFn::Quantized(l).forward(v)),
            ActFn::Relu => out
                .iter_mut()
                .zip(xs)
                .for_each(|(o, &v)| *o = ActFn::Relu.forward(v)),
            ActFn::Hardtanh => out
                .iter_mut()
                .zip(xs)
                .for_each(|(o, &v)| *o = ActFn::Hardtanh.forward(v)),
        }
    });
}

/// dx = dy · act'(x) (straight-through mask), element-wise over x's length.
pub fn act_backward(a: ActQuant, x: &[f32], dy: &[f32], dx: &mut [f32]) {
    let n = x.len();
    let f = a.compile();
    par::for_each_chunk(&mut dx[..n], CHUNK, |c, out| {
        let base = c * CHUNK;
        let (xs, dys) = (&x[base..base + out.len()], &dy[base..base + out.len()]);
        match f {
            ActFn::Quantized(l) => {
                for ((o, &v), &g) in out.iter_mut().zip(xs).zip(dys) {
                    *o = g * ActFn::Quantized(l).grad_mask(v);
                }
            }
            other => {
                for ((o, &v), &g) in out.iter_mut().zip(xs).zip(dys) {
                    *o = g * other.grad_mask(v);
                }
            }
        }
    });
}

/// max|w| (0 for an empty slice).
#[inline(always)]
pub fn abs_max(w: &[f32]) -> f32 {
    w.iter().fold(0.0f32, |m, v| m.max(v.abs()))
}

/// wq = quantize(w); returns max|w|.
#[multiversion::multiversion(targets(
    "x86_64+avx512f+avx512vl+avx512bw",
    "x86_64+avx2+fma+sse4.1",
    "aarch64+neon"
))]
pub fn weight_quantize(q: WeightQuant, w: &[f32], wq: &mut [f32]) -> f32 {
    let m = abs_max(w);
    q.apply_all(w, m, wq);
    m
}

// ---- GPU ----------------------------------------------------------------------------------

const RW: &[Access] = &[Access::Read, Access::Read, Access::ReadWrite];
pub(crate) static ACT_FORWARD: Kernel = Kernel {
    name: "act_forward",
    family: Family::Quantizers,
    shader: &shaders::QUANTIZE,
    entry: "act_forward",
    constants: &[WG_CONSTANT],
    storage: RW,
    params_bytes: size_of::<Params>(),
};
pub(crate) static ACT_BACKWARD: Kernel = Kernel {
    name: "act_backward",
    family: Family::Quantizers,
    shader: &shaders::QUANTIZE,
    entry: "act_backward",
    constants: &[WG_CONSTANT],
    storage: RW,
    params_bytes: size_of::<Params>(),
};
pub(crate) static ABS_MAX: Kernel = Kernel {
    name: "abs_max",
    family: Family::Quantizers,
    shader: &shaders::QUANTIZE,
    entry: "abs_max",
    constants: &[],
    storage: RW,
    params_bytes: size_of::<Params>(),
};
pub(crate) static WEIGHT: Kernel = Kernel {
    name: "weight_quantize",
    family: Family::Quantizers,
    shader: &shaders::QUANTIZE,
    entry: "weight_quantize",
    constants: &[WG_CONSTANT],
    storage: RW,
    params_bytes: size_of::<Params>(),
};

/// The uniform parameters of quantize.wgsl — the twin of its `struct Params`, field by field.
#[repr(C)]
#[derive(Clone, Copy, bytemuck::Pod, bytemuck::Zeroable)]
struct Params {
    n: u32,
    mode: u32,
    scale: f32,
    lo: f32,
    hi: f32,
    bits: u32,
    /// Elements per workgroup of `abs_max`.
    chunk: u32,
    _pad: u32,
}

/// The activation as the WGSL `Act` (common.wgsl) takes it: (mode, scale, lo, hi), mode
/// ACT_QUANT = 0 with its levels, ACT_RELU = 1, ACT_HARDTANH = 2.
pub(crate) fn gpu_act(a: ActQuant) -> (u32, f32, f32, f32) {
    match (a, a.levels()) {
        (_, Some(l)) => (0, l.scale, l.lo, l.hi),
        (ActQuant::Float(Nonlinearity::Relu), None) => (1, 1.0, 0.0, 0.0),
        _ => (2, 1.0, 0.0, 0.0),
    }
}

fn act_params(a: ActQuant, n: usize) -> Params {
    let (mode, scale, lo, hi) = gpu_act(a);
    Params {
        n: n as u32,
        mode,
        scale,
        lo,
        hi,
        bits: 0,
        chunk: 0,
        _pad: 0,
    }
}

/// Elements one `abs_max` workgroup takes at least.
const ABS_MAX_CHUNK: usize = 8192;

pub(crate) fn gpu_act_forward(g: &mut GpuBackend, a: ActQuant, n: usize, x: Buf, y: Buf) {
    g.dispatch(&ACT_FORWARD, &act_params(a, n), &[x, x, y], grid_1d(n));
}

pub(crate) fn gpu_act_backward(
    g: &mut GpuBackend,
    a: ActQuant,
    n: usize,
    x: Buf,
    dy: Buf,
    dx: Buf,
) {
    g.dispatch(&ACT_BACKWARD, &act_params(a, n), &[x, dy, dx], grid_1d(n));
}

pub(crate) fn gpu_weight_quantize(
    g: &mut GpuBackend,
    q: WeightQuant,
    w: Buf,
    absmax: Buf,
    wq: Buf,
) {
    let n = w.len;
    let (mode, bits, lo, hi) = match q {
        WeightQuant::None => (0, 0, 0.0f32, 0.0f32),
        WeightQuant::Binary => (1, 0, -1.0, 1.0),
        WeightQuant::Bits { bits, sym } => {
            let lo = -(2.0f32).powi(bits as i32 - 1);
            (2, bits, lo, if sym { -lo } else { -lo - 1.0 })
        }
    };
    // max|w| in two steps so that a large tensor is read by many workgroups: the maxima of
    // chunks, then the maximum of those (max is exact in any order)
    let slices = n.div_ceil(ABS_MAX_CHUNK).clamp(1, 1024);
    let p = Params {
        n: n as u32,
        mode,
        scale: 1.0,
        lo,
        hi,
        bits,
        chunk: n.div_ceil(slices) as u32,
        _pad: 0,
    };
    let part = g.scratch("abs_max_partials", slices);
    g.dispatch(&ABS_MAX, &p, &[w, w, part], [slices as u32, 1, 1]);
    let merge = Params {
        n: slices as u32,
        chunk: slices as u32,
        ..p
    };
    g.dispatch(&ABS_MAX, &merge, &[part, part, absmax], [1, 1, 1]);
    g.dispatch(&WEIGHT, &p, &[w, absmax, wq], grid_1d(n));
}
