//! The standard-ONNX spelling of qnn's quantizers (opset 13, no custom operators).
//!
//! **Weights**: the integers k (int8, or int32 past int8's range: 16-bit, 8-bit symmetric)
//! with Wq = k·step → `DequantizeLinear(k, step)` (zero point 0): (k − 0)·step is exact, the
//! step being a power of two.
//!
//! **Activation** q = clip(2·round(hs·S)/S − 1, lo, hi), hs = clip((u + 1)·½, 0, 1), S = 2^nb,
//! rounding half away from zero (quant.rs `act_unclipped`), with the same f32 operations in the
//! same order; the rounding of t = hs·S ≥ 0 as floor(t) + (t − floor(t) ≥ ½), which is exact
//! (t − floor(t) is), where floor(t + ½) would round t + ½ first:
//!
//! ```text
//! a = Add(u, 1) → Mul(·, 0.5) → Clip(·, 0, 1) → t = Mul(·, S)
//! f = Floor(t);  r = Add(f, Cast<float>(GreaterOrEqual(Sub(t, f), 0.5)))
//! q = Clip(Sub(Mul(r, 2/S), 1), lo, hi)
//! ```
//!
//! Binary activations (nb = 0, S = 1) take the same nodes and give ±1.

use super::onnx_proto::data_type;
use super::{attr_int, Graph, IntLevels};
use crate::quant::ActLevels;

/// Integer weights and their step → the f32 weights, through `DequantizeLinear`.
pub(crate) fn weight(g: &mut Graph, dims: &[usize], levels: &IntLevels) -> String {
    let k = g.int_init("weight_int", dims, &levels.ints);
    let step = g.scalar(levels.step);
    g.node("DequantizeLinear", &[&k, &step], vec![])
}

/// The quantized activation of `u` (module doc).
pub(crate) fn activation(g: &mut Graph, u: &str, l: ActLevels) -> String {
    let (one, half, zero) = (g.scalar(1.0), g.scalar(0.5), g.scalar(0.0));
    let s = g.scalar(l.scale);
    let a = g.node("Add", &[u, &one], vec![]);
    let a = g.node("Mul", &[&a, &half], vec![]);
    let hs = g.node("Clip", &[&a, &zero, &one], vec![]);
    let t = g.node("Mul", &[&hs, &s], vec![]);
    let f = g.node("Floor", &[&t], vec![]);
    let frac = g.node("Sub", &[&t, &f], vec![]);
    let up = g.node("GreaterOrEqual", &[&frac, &half], vec![]);
    let up = g.node(
        "Cast",
        &[&up],
        vec![attr_int("to", data_type::FLOAT as i64)],
    );
    let r = g.node("Add", &[&f, &up], vec![]);
    let step = g.scalar(2.0 / l.scale);
    let v = g.node("Mul", &[&r, &step], vec![]);
    let v = g.node("Sub", &[&v, &one], vec![]);
    let (lo, hi) = (g.scalar(l.lo), g.scalar(l.hi));
    g.node("Clip", &[&v, &lo, &hi], vec![])
}
