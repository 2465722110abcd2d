//! The QONNX spelling of qnn's quantizers: `Quant` and `BipolarQuant` of the domain
//! `qonnx.custom_op.general`, as FINN and hls4ml read them; everything else is standard ONNX.
//!
//! `Quant(x, scale, zeropt, bitwidth)` computes clip(round(x/scale + zeropt), min, max) −
//! zeropt, times scale, with [min, max] = [0, 2^b − 1] unsigned, [−2^(b−1), 2^(b−1) − 1]
//! signed (narrow: min + 1); `BipolarQuant(x, scale)` is +scale for x ≥ 0, else −scale.
//!
//! **Weights**: an f32 initializer holding qnn's quantized levels Wq, then
//! - binary: `BipolarQuant(Wq, 1)` (Wq is ±1);
//! - nb bits: `Quant(Wq, step, 0, b)` signed, rounding `ROUND` (half to even, as qnn's weight
//!   quantizer), b = nb (asymmetric: −2^(nb−1) … 2^(nb−1) − 1) or b = nb + 1 narrow
//!   (symmetric, whose 2^(nb−1) + 1 positive levels need the extra bit; ternary too, since qonnx
//!   treats a signed 1-bit Quant as bipolar). The levels are the quantizer's fixed points, so
//!   `Quant` returns them unchanged and the file still says how many bits each weight takes.
//!
//! **Activations** (S = 2^nb, levels v = lo … hi a step of 2/S apart, v = 2k/S − 1 with
//! k = round(hs·S) rounded half away from zero, hs = clip(fl(u + 1)·½, 0, 1)):
//! - binary (nb = 0): qnn gives +1 where fl(u + 1) ≥ 1, i.e. u ≥ −2^−25 (u + 1 rounds to 1
//!   from there on), so `BipolarQuant(Add(u, 2^−25), 1)`, exact: u + 2^−25 rounds to ≥ 0 exactly
//!   when it is ≥ 0;
//! - nb ≥ 1: with j = k − S/2 the level is v = j·(2/S), and j = floor((fl(u + 1) − 1)·S/2 + ½)
//!   clipped to [lo·S/2, hi·S/2] (the tie of k at half away from zero, k ≥ 0, is j's tie
//!   upwards). So y = `Sub(Add(u, 1), 1 − 1/S)`, exactly fl(u + 1) − 1 + 1/S wherever the
//!   result is not clipped (|y| ≤ 2: fl(u + 1) − 1 is a multiple of 2^−24, or is u itself, and
//!   so is the sum, which is then a float; beyond, a rounded y still lands past the clip) →
//!   `Quant(y, 2/S, 0, b)` with `rounding_mode` `FLOOR`,
//!   whose output j·(2/S) is qnn's level itself. Its range [min, max] is j's:
//!   - relu, j ∈ [0, S/2 − 1]: unsigned, b = nb − 1;
//!   - asymmetric hardtanh, j ∈ [−S/2, S/2 − 1]: signed, b = nb (ternary, nb = 1: unsigned
//!     b = 1 with zero point 1, since qonnx reads a signed 1-bit Quant as bipolar);
//!   - symmetric hardtanh, j ∈ [−S/2, S/2] (S + 1 levels, no power of two): signed narrow,
//!     b = 2 at nb = 1; from nb = 2 a `Clip(y, −1, 1)` first and b = nb + 1 narrow, whose
//!     range holds j's.
//!
//!   A relu or asymmetric hardtanh activation is thus Add, Sub, Quant: no Clip, which hls4ml
//!   does not read.

use super::{attr_int, attr_str, Graph, IntLevels, QONNX_DOMAIN};
use crate::quant::{ActLevels, WeightQuant};

/// 2^−25: below it, u + 1 rounds to less than 1 in f32 (see the module doc).
const BINARY_OFFSET: f32 = 1.0 / 33_554_432.0;

/// The quantized levels as f32 and the `Quant` / `BipolarQuant` node that declares them.
pub(crate) fn weight(g: &mut Graph, dims: &[usize], levels: &IntLevels, q: WeightQuant) -> String {
    let values: Vec<f32> = levels
        .ints
        .iter()
        .map(|&k| k as f32 * levels.step)
        .collect();
    let w = g.f32_init("weight", dims, &values);
    let one = g.scalar(1.0);
    match q {
        WeightQuant::Bits { bits, sym } => {
            let wide = sym || bits == 1;
            let step = g.scalar(levels.step);
            let zero = g.scalar(0.0);
            let b = g.scalar((bits + wide as u32) as f32);
            g.node_in(
                QONNX_DOMAIN,
                "Quant",
                &[&w, &step, &zero, &b],
                vec![
                    attr_int("signed", 1),
                    attr_int("narrow", wide as i64),
                    attr_str("rounding_mode", "ROUND"),
                ],
            )
        }
        _ => g.node_in(QONNX_DOMAIN, "BipolarQuant", &[&w, &one], vec![]),
    }
}

/// The quantized activation of `u` (module doc).
pub(crate) fn activation(g: &mut Graph, u: &str, l: ActLevels) -> String {
    let one = g.scalar(1.0);
    if l.scale == 1.0 {
        let offset = g.scalar(BINARY_OFFSET);
        let shifted = g.node("Add", &[u, &offset], vec![]);
        return g.node_in(QONNX_DOMAIN, "BipolarQuant", &[&shifted, &one], vec![]);
    }
    let s = l.scale;
    let a = g.node("Add", &[u, &one], vec![]);
    let shift = g.scalar(1.0 - 1.0 / s);
    let mut y = g.node("Sub", &[&a, &shift], vec![]);
    // j's range, and the Quant whose range it is
    let (jlo, jhi) = ((l.lo * s / 2.0) as i64, (l.hi * s / 2.0) as i64);
    let n = (jhi - jlo + 1) as u64;
    let log2 = |v: u64| v.trailing_zeros() as i64;
    let (signed, narrow, bits, zeropt) = if n.is_power_of_two() && jlo == 0 {
        (0, 0, log2(n), 0)
    } else if n.is_power_of_two() && n >= 4 && jlo == -(n as i64) / 2 {
        (1, 0, log2(n), 0)
    } else if n.is_power_of_two() {
        (0, 0, log2(n), -jlo)
    } else if jlo == -jhi && (n + 1).is_power_of_two() {
        (1, 1, log2(n + 1), 0)
    } else {
        let (lo, hi) = (g.scalar(l.lo), g.scalar(l.hi));
        y = g.node("Clip", &[&y, &lo, &hi], vec![]);
        let wide = (jlo.unsigned_abs().max(jhi.unsigned_abs()) + 1).next_power_of_two();
        (1, 1, log2(wide) + 1, 0)
    };
    let step = g.scalar(2.0 / s);
    let zp = g.scalar(zeropt as f32);
    let b = g.scalar(bits as f32);
    g.node_in(
        QONNX_DOMAIN,
        "Quant",
        &[&y, &step, &zp, &b],
        vec![
            attr_int("signed", signed),
            attr_int("narrow", narrow),
            attr_str("rounding_mode", "FLOOR"),
        ],
    )
}
