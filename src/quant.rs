//! The quantizers of docs/spec.md as scalar functions: the definition both backends follow.
//! `shaders/quantize.wgsl` (the activation in `shaders/common.wgsl`) is the GPU twin;
//! tests/quantizers.rs pins the level tables.

use serde::{Deserialize, Serialize};

/// The nonlinearity after each conv batch norm.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Nonlinearity {
    /// max(x, 0); quantized, its levels start at 0.
    Relu,
    /// clip(x, −1, 1); quantized, its levels start at −1.
    Hardtanh,
}

impl Nonlinearity {
    /// The lower-case name: `"relu"` or `"hardtanh"`.
    pub fn name(self) -> &'static str {
        match self {
            Nonlinearity::Relu => "relu",
            Nonlinearity::Hardtanh => "hardtanh",
        }
    }
}

// saved in model metadata by its name
impl Serialize for Nonlinearity {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.name())
    }
}

impl<'de> Deserialize<'de> for Nonlinearity {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

impl std::str::FromStr for Nonlinearity {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s.to_ascii_lowercase().as_str() {
            "relu" => Ok(Nonlinearity::Relu),
            "hardtanh" => Ok(Nonlinearity::Hardtanh),
            other => Err(format!(
                "unknown nonlinearity '{other}' (use relu or hardtanh)"
            )),
        }
    }
}

/// An activation function as the network applies it.
///
/// Quantized, q = clip(2·round(hs(x)·2^nb)/2^nb − 1, lo, hi) with hs(x) = clip((x+1)/2, 0, 1),
/// rounding half away from zero: levels a step of 2^(1−nb) apart, from lo to hi.
///
/// | activation            | lo | hi           | number of levels       |
/// |-----------------------|----|--------------|------------------------|
/// | relu, nb ≥ 1          | 0  | 1 − 2^(1−nb) | 2^(nb−1)               |
/// | hardtanh sym, nb ≥ 1  | −1 | 1            | 2^nb + 1               |
/// | hardtanh asym, nb ≥ 1 | −1 | 1 − 2^(1−nb) | 2^nb                   |
/// | any, nb = 0           | −1 | 1            | 2 (sign, +1 for x ≥ 0) |
///
/// For example:
///
/// | nb | relu                 | hardtanh sym            | hardtanh asym        |
/// |----|----------------------|-------------------------|----------------------|
/// | 0  | {−1, 1} (refused)    | {−1, 1}                 | {−1, 1} (refused)    |
/// | 1  | {0} (refused)        | {−1, 0, 1}              | {−1, 0}              |
/// | 2  | {0, 0.5}             | {−1, −0.5, 0, 0.5, 1}   | {−1, −0.5, 0, 0.5}   |
/// | 3  | {0, 0.25, 0.5, 0.75} | {−1, −0.75, …, 0.75, 1} | {−1, −0.75, …, 0.75} |
/// | 4  | {0, 1/8, …, 7/8}     | {−1, −7/8, …, 7/8, 1}   | {−1, −7/8, …, 7/8}   |
///
/// ("refused": [`check_combination`] rejects it, as the seed would train nothing.)
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ActQuant {
    /// Float mode (-q 0): plain ReLU or clip(x, −1, 1).
    Float(Nonlinearity),
    /// Quantized with `bits` bits (0 = BinaryNet's sign). `sym` only matters for hardtanh.
    Quantized {
        /// The nonlinearity whose range is quantized.
        nl: Nonlinearity,
        /// Bits nb, 0 to 16 (0 = binary ±1).
        bits: u32,
        /// Symmetric clipping: hardtanh reaches +1 (levels −1 .. 1, not −1 .. 1 − 2^(1−nb)).
        sym: bool,
    },
}

/// Why a (nonlinearity, bits, sym) combination is refused: the seed accepts them and trains garbage.
pub fn check_combination(
    nl: Nonlinearity,
    bits: u32,
    sym: bool,
    quantized: bool,
) -> Result<(), String> {
    if !quantized {
        return Ok(());
    }
    if bits > 16 {
        return Err(format!(
            "{bits} bits: widths from 0 (binary) to 16 are supported"
        ));
    }
    match nl {
        Nonlinearity::Relu if bits <= 1 => Err(format!(
            "relu with {bits} bits: the quantized relu has levels 0 .. 1 − 2^(1−nb), so with nb ≤ 1 every \
             activation is 0 (the seed trains nothing). Use 2 bits or more with relu, or hardtanh with \
             symmetric clipping for a binary net"
        )),
        Nonlinearity::Hardtanh if bits == 0 && !sym => Err(
            "hardtanh with 0 bits and asymmetric clipping: binary activations are all −1 (the seed \
             trains nothing). Use symmetric clipping for BinaryNet's ±1 activations"
                .to_string(),
        ),
        _ => Ok(()),
    }
}

/// Constants of the quantized activation: q = clip(2·round(hs(x)·scale)/scale − 1, lo, hi).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct ActLevels {
    /// 2^nb (1 for binary).
    pub scale: f32,
    /// The lowest level: 0 for relu, −1 otherwise.
    pub lo: f32,
    /// The highest level: 1 for binary and symmetric hardtanh, else 1 − 2^(1−nb).
    pub hi: f32,
}

impl ActQuant {
    /// The quantizer's constants; `None` in float mode.
    ///
    /// | activation            | scale | lo | hi           |
    /// |-----------------------|-------|----|--------------|
    /// | any, nb = 0           | 1     | −1 | 1            |
    /// | relu, nb ≥ 1          | 2^nb  | 0  | 1 − 2^(1−nb) |
    /// | hardtanh sym, nb ≥ 1  | 2^nb  | −1 | 1            |
    /// | hardtanh asym, nb ≥ 1 | 2^nb  | −1 | 1 − 2^(1−nb) |
    ///
    /// E.g. relu at nb = 2: scale 4, lo 0, hi 0.5, levels {0, 0.5}.
    pub fn levels(self) -> Option<ActLevels> {
        match self {
            ActQuant::Float(_) => None,
            ActQuant::Quantized { nl, bits, sym } => {
                let scale = (2.0f32).powi(bits as i32);
                let top = 1.0 - (2.0f32).powi(1 - bits as i32);
                let (lo, hi) = match (nl, bits) {
                    (_, 0) => (-1.0, 1.0),
                    (Nonlinearity::Relu, _) => (0.0, top),
                    (Nonlinearity::Hardtanh, _) if sym => (-1.0, 1.0),
                    (Nonlinearity::Hardtanh, _) => (-1.0, top),
                };
                Some(ActLevels { scale, lo, hi })
            }
        }
    }

    /// Every level the quantizer gives, ascending (lo, lo + 2/scale, …, hi); `None` in float
    /// mode. E.g. 2-bit relu: [0, 0.5]; binary: [−1, 1].
    pub fn level_values(self) -> Option<Vec<f32>> {
        let l = self.levels()?;
        let step = 2.0 / l.scale;
        let n = ((l.hi - l.lo) / step).round() as usize + 1;
        Some((0..n).map(|k| l.lo + k as f32 * step).collect())
    }

    /// The forward value: one of the levels in the table of [`ActQuant`] when quantized.
    pub fn forward(self, x: f32) -> f32 {
        self.compile().forward(x)
    }

    /// The straight-through derivative: 1 or 0.
    pub fn grad_mask(self, x: f32) -> f32 {
        self.compile().grad_mask(x)
    }

    /// The function with its constants worked out, for element loops.
    pub fn compile(self) -> ActFn {
        match (self, self.levels()) {
            (_, Some(l)) => ActFn::Quantized(l),
            (ActQuant::Float(Nonlinearity::Relu), None) => ActFn::Relu,
            _ => ActFn::Hardtanh,
        }
    }
}

/// An activation ready to apply element by element.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum ActFn {
    /// A quantized activation with these constants.
    Quantized(ActLevels),
    /// Float ReLU, max(x, 0).
    Relu,
    /// Float hardtanh, clip(x, −1, 1).
    Hardtanh,
}

impl ActFn {
    /// The activation of `x`; a NaN or infinite `x` gives NaN, so a broken value upstream
    /// reaches the loss instead of being rounded to a finite level.
    #[inline]
    pub fn forward(self, x: f32) -> f32 {
        // x − x is 0 for finite x and NaN otherwise: NaN propagation without a branch, so the
        // element loops still vectorize
        #[allow(clippy::eq_op)] // deliberate: 0 for finite x, NaN for NaN and ±inf
        let poison = x - x;
        let q = match self {
            ActFn::Quantized(l) => {
                // clip with selects rather than f32::max/min, whose NaN handling defeats vectorization
                let v = act_unclipped(x, l.scale);
                let v = if v < l.lo { l.lo } else { v };
                if v > l.hi {
                    l.hi
                } else {
                    v
                }
            }
            ActFn::Relu => {
                if x > 0.0 {
                    x
                } else {
                    0.0
                }
            }
            ActFn::Hardtanh => x.clamp(-1.0, 1.0),
        };
        q + poison
    }

    /// The straight-through derivative at `x`: 1 where the gradient passes, else 0.
    /// Quantized, it passes for x in [−1, 1] whose unclipped level lies in [lo, hi].
    #[inline]
    pub fn grad_mask(self, x: f32) -> f32 {
        // `&` rather than `&&`: no branches, so element loops vectorize (NaN fails every test)
        let pass = match self {
            ActFn::Quantized(l) => {
                let v = act_unclipped(x, l.scale);
                (-1.0..=1.0).contains(&x) & (v >= l.lo) & (v <= l.hi)
            }
            ActFn::Relu => x > 0.0,
            ActFn::Hardtanh => (-1.0..=1.0).contains(&x),
        };
        pass as u32 as f32
    }
}

/// 2·round(hs(x)·scale)/scale − 1 with hs(x) = clip((x+1)/2, 0, 1), rounding half away from zero
/// (the seed's C round()).
///
/// ```
/// // nb = 2 (scale 4): hs(0.25)·4 = 2.5 rounds away from zero to 3 → 2·3/4 − 1 = 0.5
/// assert_eq!(qnn::quant::act_unclipped(0.25, 4.0), 0.5);
/// // half to even would have given 2 → 0.0
/// assert_ne!(qnn::quant::act_unclipped(0.25, 4.0), 0.0);
/// ```
#[inline]
pub fn act_unclipped(x: f32, scale: f32) -> f32 {
    let hs = ((x + 1.0) * 0.5).clamp(0.0, 1.0);
    // 2/scale is a power of two, so multiplying by it is exact: the same value as dividing
    // by scale, without a division per element (a loop-invariant one, hoisted)
    round_half_away_nonneg(hs * scale) * (2.0 / scale) - 1.0
}

/// [`round_half_away`] for 0 ≤ v < 2^23, in float operations only (no float→int conversion,
/// whose saturating form keeps element loops scalar), so that they vectorize: adding and
/// removing 2^23 rounds v to an integer, a compare makes it the floor, and v − floor(v) is
/// exact (Sterbenz). The quantizers call it with v = hs·2^nb ≤ 2^16.
#[inline]
fn round_half_away_nonneg(v: f32) -> f32 {
    const TWO_23: f32 = 8_388_608.0;
    let nearest = (v + TWO_23) - TWO_23;
    let floor = nearest - (nearest > v) as u32 as f32;
    floor + ((v - floor) >= 0.5) as u32 as f32
}

/// Round half away from zero for |v| < 2^31, exactly (v − trunc(v) is exact in f32). Same result
/// as `f32::round`, without the library call it becomes on baseline x86-64; the WGSL twin is
/// written the same way.
#[inline]
pub fn round_half_away(v: f32) -> f32 {
    let t = v as i32 as f32;
    if (v - t).abs() >= 0.5 {
        t + v.signum()
    } else {
        t
    }
}

/// How conv weights are quantized.
///
/// With nb ≥ 1 bits, a tensor with max|W| in (2^−(f+1), 2^−f], i.e. f = floor(log2(1/max|W|))
/// (see [`weight_exponent`]), gets the levels k/2^(nb−1+f) for k in −2^(nb−1) ..= U, with
/// U = 2^(nb−1) when symmetric, else 2^(nb−1) − 1; w·2^(nb−1+f) is rounded half to even and
/// clipped to that range of k. At f = 0 (max|W| in (0.5, 1]):
///
/// | nb | sym                      | asym                     |
/// |----|--------------------------|--------------------------|
/// | 0  | {−1, 1} (sign)           | {−1, 1} (sign)           |
/// | 1  | {−1, 0, 1}               | {−1, 0}                  |
/// | 2  | {−1, −0.5, 0, 0.5, 1}    | {−1, −0.5, 0, 0.5}       |
/// | 3  | {−1, −0.75, …, 0.75, 1}  | {−1, −0.75, …, 0.75}     |
/// | 8  | k/128, k in −128 ..= 128 | k/128, k in −128 ..= 127 |
///
/// Each further f halves the levels (f = 1, nb = 2, asym: {−0.5, −0.25, 0, 0.25}).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum WeightQuant {
    /// Real-valued weights are used as they are (float mode).
    None,
    /// nb = 0: sign, +1 for W ≥ 0.
    Binary,
    /// nb ≥ 1: per-tensor power-of-two scale, levels −2^(nb−1) .. U.
    Bits {
        /// Bits nb per weight, at least 1.
        bits: u32,
        /// Symmetric: U = 2^(nb−1) (one level more than the nb bits hold) instead of 2^(nb−1) − 1.
        sym: bool,
    },
}

impl WeightQuant {
    /// The weight quantizer of a run: [`None`](WeightQuant::None) unless `quantized`,
    /// [`Binary`](WeightQuant::Binary) for 0 bits, else [`Bits`](WeightQuant::Bits).
    pub fn new(quantized: bool, bits: u32, sym: bool) -> Self {
        match (quantized, bits) {
            (false, _) => WeightQuant::None,
            (true, 0) => WeightQuant::Binary,
            (true, b) => WeightQuant::Bits { bits: b, sym },
        }
    }

    /// Bits stored per weight (32 for float).
    pub fn storage_bits(self) -> u32 {
        match self {
            WeightQuant::None => 32,
            WeightQuant::Binary => 1,
            WeightQuant::Bits { bits, .. } => bits,
        }
    }

    /// Every level [`WeightQuant::apply`] can give a tensor whose max|W| is `absmax`,
    /// ascending; `None` in float mode. E.g. 2 bits, sym, max|W| 0.3: k/4 for k in −2..=2.
    pub fn levels(self, absmax: f32) -> Option<Vec<f32>> {
        match self {
            WeightQuant::None => None,
            WeightQuant::Binary => Some(vec![-1.0, 1.0]),
            WeightQuant::Bits { bits, sym } => {
                let scale = ldexp(1.0, bits as i32 - 1 + weight_exponent(absmax));
                let lo = -(1i64 << (bits - 1));
                let hi = if sym { -lo } else { -lo - 1 };
                Some((lo..=hi).map(|k| k as f32 / scale).collect())
            }
        }
    }

    /// Quantizes one weight given the tensor's max|W|, to a level of the table of
    /// [`WeightQuant`] (binary: +1 for w ≥ 0, including −0, else −1). A NaN or infinite weight gives NaN
    /// (not a finite level), so the run's finiteness checks see it.
    pub fn apply(self, w: f32, absmax: f32) -> f32 {
        #[allow(clippy::eq_op)] // deliberate: 0 for finite w, NaN for NaN and ±inf
        let poison = w - w;
        poison
            + match self {
                WeightQuant::None => w,
                WeightQuant::Binary => {
                    if w >= 0.0 {
                        1.0
                    } else {
                        -1.0
                    }
                }
                WeightQuant::Bits { bits, sym } => {
                    let (scale, lo, hi) = bits_constants(bits, sym, absmax);
                    (w * scale).round_ties_even().clamp(lo, hi) / scale
                }
            }
    }

    /// [`apply`](WeightQuant::apply) over a whole tensor whose max|W| is `absmax`, with the
    /// constants worked out once (the same values, element by element).
    #[inline(always)]
    pub fn apply_all(self, w: &[f32], absmax: f32, out: &mut [f32]) {
        #[allow(clippy::eq_op)] // as in `apply`: 0 for finite v, NaN for NaN and ±inf
        match self {
            WeightQuant::Bits { bits, sym } => {
                let (scale, lo, hi) = bits_constants(bits, sym, absmax);
                for (o, &v) in out.iter_mut().zip(w) {
                    *o = (v - v) + (v * scale).round_ties_even().clamp(lo, hi) / scale;
                }
            }
            other => {
                for (o, &v) in out.iter_mut().zip(w) {
                    *o = other.apply(v, absmax);
                }
            }
        }
    }
}

/// (scale, lo, hi) of the n-bit weight quantizer for a tensor whose max|W| is `absmax`:
/// scale = 2^(nb−1+f), levels k/scale for k in lo ..= hi (see [`WeightQuant`]).
fn bits_constants(bits: u32, sym: bool, absmax: f32) -> (f32, f32, f32) {
    let scale = ldexp(1.0, bits as i32 - 1 + weight_exponent(absmax));
    let lo = -ldexp(1.0, bits as i32 - 1);
    let hi = if sym { -lo } else { -lo - 1.0 };
    (scale, lo, hi)
}

/// f = floor(log2(1/max|W|)), exactly: the binary exponent of the f32 value 1/max|W|.
/// An all-zero tensor gives 0.
pub fn weight_exponent(absmax: f32) -> i32 {
    if absmax == 0.0 || !absmax.is_finite() {
        return 0;
    }
    let r = 1.0 / absmax;
    if !r.is_finite() {
        return 127;
    }
    let bits = r.to_bits();
    let exp = ((bits >> 23) & 0xff) as i32;
    if exp == 0 {
        // subnormal 1/max: only for max|W| > 2^126, impossible for clipped weights
        -127
    } else {
        exp - 127
    }
}

/// x·2^e for the exponents quantizers use (|e| < 150), computed exactly.
pub fn ldexp(x: f32, e: i32) -> f32 {
    (x as f64 * 2f64.powi(e)) as f32
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_half_away_matches_std_round() {
        for i in -70000..70000 {
            let v = i as f32 / 256.0 + 1e-3 * (i % 7) as f32;
            assert_eq!(round_half_away(v), v.round(), "{v}");
        }
        for v in [0.49999997f32, 0.5, 1.5, 2.5, -0.5, -2.5, 65535.5, 0.0] {
            assert_eq!(round_half_away(v), v.round(), "{v}");
        }
    }

    #[test]
    fn float_only_rounding_matches_round_half_away() {
        // every quarter and its neighbours one ulp away, up to 2^16 (the largest hs·2^nb)
        for i in 0..=(1u32 << 18) {
            let v = i as f32 / 4.0;
            for x in [
                v,
                f32::from_bits(v.to_bits().saturating_sub(1)),
                f32::from_bits(v.to_bits() + 1),
            ] {
                if x >= 0.0 {
                    assert_eq!(round_half_away_nonneg(x), x.round(), "{x}");
                }
            }
        }
        for x in [0.49999997f32, 0.5, 1.4999999, 2.5, 65535.5, 65536.0, 0.0] {
            assert_eq!(round_half_away_nonneg(x), x.round(), "{x}");
        }
    }

    #[test]
    fn exponent_matches_log2_away_from_powers_of_two() {
        for &m in &[1.0f32, 0.9, 0.5, 0.3, 0.25, 0.126, 1e-3] {
            let expect = (1.0f64 / m as f64).log2().floor() as i32;
            assert_eq!(weight_exponent(m), expect, "max {m}");
        }
    }
}
