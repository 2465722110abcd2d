//! Energy per inference, in the hardware-independent model of Moons et al. ("Minimum Energy
//! Quantized Neural Networks", 2017): for a layer computing at Q bits with N_c multiply-
//! accumulates, N_s weights and A_s activations written,
//!
//! ```text
//! E   = E_C + E_W + E_A
//! E_C = E_MAC(Q)·(N_c + 3·A_s)                      compute (+ batch norm, activation, pooling as 3 ops per output)
//! E_W = E_M(Q)·N_s + E_L(Q)·N_c/√p                  weights: fetched once from main memory, reused from the local buffer
//! E_A = 2·E_M(Q)·A_s + E_L(Q)·N_c/√p                activations: written and read back, reused from the local buffer
//! E_MAC(Q) = E_MAC,16·(Q/16)^1.25,  E_M(Q) = E_M,16·Q/16,  E_L(Q) = E_L,16·Q/16,  p = p_16·16/Q
//! ```
//!
//! The constants come from an [`EnergyProfile`] (the default, `assets/energy/horowitz-45nm.json`,
//! from Horowitz's ISSCC 2014 table; each constant carries its source). What the model assumes is
//! in [`Energy::footnotes`].

use serde::Deserialize;

use super::config::NetConfig;
use super::layers::Op;
use crate::Error;

/// A constant of the profile with where it comes from.
#[derive(Clone, Debug, PartialEq, Deserialize)]
pub struct Constant {
    /// The value, in the unit its field's name gives (pJ, bits, or a count).
    pub value: f64,
    /// Where the value comes from.
    pub source: String,
}

/// The energy constants, at 16 bits.
#[derive(Clone, Debug, PartialEq, Deserialize)]
pub struct EnergyProfile {
    /// The profile's name, for the output's footnotes.
    pub name: String,
    /// One 16-bit multiply-accumulate, pJ.
    pub e_mac16_pj: Constant,
    /// One 16-bit word from the local on-chip buffer, pJ.
    pub e_local16_pj: Constant,
    /// One 16-bit word from main memory, pJ.
    pub e_main16_pj: Constant,
    /// MACs sharing a fetched word at 16 bits.
    pub parallelism16: Constant,
    /// Width of float layers, bits.
    pub float_bits: Constant,
    /// Width of the input pixels, bits.
    pub input_bits: Constant,
}

const DEFAULT_PROFILE: &str = include_str!("../../assets/energy/horowitz-45nm.json");

impl Default for EnergyProfile {
    fn default() -> Self {
        Self::from_json(DEFAULT_PROFILE, "the built-in profile").expect("valid built-in profile")
    }
}

impl EnergyProfile {
    /// Parses a profile (the format of `assets/energy/horowitz-45nm.json`); `what` names it in
    /// messages. Every constant must be a positive number.
    pub fn from_json(text: &str, what: &str) -> Result<Self, Error> {
        let p: EnergyProfile = serde_json::from_str(text).map_err(|e| {
            Error::Config(format!(
                "{what}: not an energy profile ({e}); see assets/energy/horowitz-45nm.json for the format"
            ))
        })?;
        for (name, c) in p.constants() {
            if !(c.value.is_normal() && c.value > 0.0) {
                return Err(Error::Config(format!(
                    "{what}: {name} is {:?}, it must be a positive number",
                    c.value
                )));
            }
        }
        if p.parallelism16.value < 1.0 {
            return Err(Error::Config(format!(
                "{what}: parallelism16 is {:?}: a fetched word serves at least one MAC (give 1 or more)",
                p.parallelism16.value
            )));
        }
        // every result finite: each operation's energy at the widest width, for a network of up
        // to 10^15 of them
        let widest = 32f64.max(p.float_bits.value).max(p.input_bits.value);
        for (name, c, e) in [
            ("e_mac16_pj", &p.e_mac16_pj, p.e_mac(widest)),
            (
                "e_local16_pj",
                &p.e_local16_pj,
                p.e_local(widest) / p.parallelism(widest).sqrt(),
            ),
            ("e_main16_pj", &p.e_main16_pj, p.e_main(widest)),
        ] {
            if !(e * 1e15).is_finite() {
                return Err(Error::Config(format!(
                    "{what}: {name} is {:?} pJ: so large that the energies overflow (a network's total must stay a finite number)",
                    c.value
                )));
            }
        }
        Ok(p)
    }

    /// (name, constant) of every constant.
    pub fn constants(&self) -> [(&'static str, &Constant); 6] {
        [
            ("e_mac16_pj", &self.e_mac16_pj),
            ("e_local16_pj", &self.e_local16_pj),
            ("e_main16_pj", &self.e_main16_pj),
            ("parallelism16", &self.parallelism16),
            ("float_bits", &self.float_bits),
            ("input_bits", &self.input_bits),
        ]
    }

    /// One multiply-accumulate at `q` bits, pJ.
    pub fn e_mac(&self, q: f64) -> f64 {
        self.e_mac16_pj.value * (q / 16.0).powf(1.25)
    }
    /// One `q`-bit word from main memory, pJ.
    pub fn e_main(&self, q: f64) -> f64 {
        self.e_main16_pj.value * q / 16.0
    }
    /// One `q`-bit word from the local buffer, pJ.
    pub fn e_local(&self, q: f64) -> f64 {
        self.e_local16_pj.value * q / 16.0
    }
    /// MACs sharing a fetched `q`-bit word.
    pub fn parallelism(&self, q: f64) -> f64 {
        self.parallelism16.value * 16.0 / q
    }
}

/// One layer's counts and energies (pJ).
#[derive(Clone, Debug, PartialEq)]
pub struct LayerEnergy {
    /// The layer's name: `conv0 (A)`, … (the seed's block in brackets), `dense0` (hidden),
    /// then `dense`.
    pub name: String,
    /// Bits of its weights (Q of the weight terms).
    pub bits: f64,
    /// Bits of the activations it writes (Q of the activation terms; float for the scores).
    pub act_bits: f64,
    /// Bits of its multiply-accumulates (the first layer's: at least the input pixels' width).
    pub mac_bits: f64,
    /// Multiply-accumulates (N_c).
    pub macs: u64,
    /// Weights (N_s).
    pub weights: u64,
    /// Activations it writes (A_s).
    pub activations: u64,
    /// Compute energy E_C, pJ.
    pub compute_pj: f64,
    /// Weight energy E_W, pJ.
    pub weights_pj: f64,
    /// Activation energy E_A, pJ.
    pub activations_pj: f64,
}

impl LayerEnergy {
    /// E_C + E_W + E_A, pJ.
    pub fn total_pj(&self) -> f64 {
        self.compute_pj + self.weights_pj + self.activations_pj
    }
}

/// A network's energy per inference, layer by layer.
#[derive(Clone, Debug, PartialEq)]
pub struct Energy {
    /// Every layer: the conv layers in order, then the dense one.
    pub layers: Vec<LayerEnergy>,
}

impl Energy {
    /// Compute energy of all layers, pJ.
    pub fn compute_pj(&self) -> f64 {
        self.layers.iter().map(|l| l.compute_pj).sum()
    }
    /// Weight energy of all layers, pJ.
    pub fn weights_pj(&self) -> f64 {
        self.layers.iter().map(|l| l.weights_pj).sum()
    }
    /// Activation energy of all layers, pJ.
    pub fn activations_pj(&self) -> f64 {
        self.layers.iter().map(|l| l.activations_pj).sum()
    }
    /// Total per inference in pJ.
    pub fn total_pj(&self) -> f64 {
        self.compute_pj() + self.weights_pj() + self.activations_pj()
    }
    /// Total per inference in µJ.
    pub fn total_uj(&self) -> f64 {
        self.total_pj() * 1e-6
    }

    /// What the numbers assume, for the output's footnote.
    pub fn footnotes(profile: &EnergyProfile) -> Vec<String> {
        vec![
            format!("constants: {} (another profile: a JSON file of the same form)", profile.name),
            "Q = a layer's bit width (binary: Q = 1, its MACs are XNOR-popcounts): weight terms at its weights' Q, activation terms at its activations' Q, MACs at the wider of its weights and what it reads".into(),
            format!("the first layer reads {}-bit pixels: its MACs run at max({}, Q) bits", profile.input_bits.value, profile.input_bits.value),
            format!("float weights and activations (the seed's dense layer, its scores) count at {} bits", profile.float_bits.value),
            "batch norm and the bias fold into the activation thresholds, pooling into the layer before it: they cost nothing beyond the 3·A_s operations of E_C".into(),
            "A_s counts the activations a layer writes (after its pooling, where one follows)".into(),
        ]
    }
}

/// The energy per inference of `config` under `profile`, each layer at its own widths: its
/// weight terms at its weights' Q, its activation terms at its activations' Q, its MACs at the
/// wider of its weights and what it reads (the input pixels for the first layer, else the
/// previous layer's activations). A pool folds into the layer before it (its A_s counts the
/// pooled outputs); for the seed's one-width networks this is the formula of the module's doc.
pub fn estimate(config: &NetConfig, profile: &EnergyProfile) -> Energy {
    let float = profile.float_bits.value;
    let resolved = config.layers();
    let mut reads_bits = profile.input_bits.value;
    let mut layers = Vec::new();
    for (i, l) in resolved.iter().enumerate() {
        let (Some(q), true) = (l.quant(), l.weights() > 0) else {
            continue; // pools: folded into the layer before
        };
        let q_w = q.w_bits.energy_q(float);
        let q_a = l.output_bits(q.a_bits).energy_q(float);
        let mac_bits = q_w.max(reads_bits);
        // what it writes: after the pool that follows it, if one does
        let written = resolved
            .get(i + 1)
            .filter(|n| matches!(n.op, Op::MaxPool | Op::GlobalAvgPool))
            .map_or(l.output, |p| p.output);
        let (nc, ns, a) = (
            l.macs() as u64,
            l.weights() as u64,
            written.iter().product::<usize>() as u64,
        );
        let (nc_f, ns_f, a_f) = (nc as f64, ns as f64, a as f64);
        let reuse = |bits: f64| profile.e_local(bits) * nc_f / profile.parallelism(bits).sqrt();
        layers.push(LayerEnergy {
            name: l.label.clone(),
            bits: q_w,
            act_bits: q_a,
            mac_bits,
            macs: nc,
            weights: ns,
            activations: a,
            compute_pj: profile.e_mac(mac_bits) * (nc_f + 3.0 * a_f),
            weights_pj: profile.e_main(q_w) * ns_f + reuse(q_w),
            activations_pj: 2.0 * profile.e_main(q_a) * a_f + reuse(q_a),
        });
        reads_bits = q_a;
    }
    Energy { layers }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::quant::Nonlinearity;

    /// A 4-bit net on 1×8×8 input with one conv layer of 2 filters (then empty blocks that still
    /// pool: 8 → 4 → 2 → 1, so 2 features), worked out by hand with the default profile:
    ///
    /// conv0: Q = 4, MACs at max(4, 8) = 8 bits; N_c = 2·1·9·64 = 1152, N_s = 18, A_s = 2·4·4 = 32
    ///   E_MAC(8) = 0.85·0.5^1.25 = 0.357381 pJ; E_C = 0.357381·(1152 + 96) = 446.011 pJ
    ///   E_M(4) = 325·4/16 = 81.25 pJ; E_L(4) = 2.5/4 = 0.625 pJ; p(4) = 64·4 = 256, √p = 16
    ///   reuse = 0.625·1152/16 = 45 pJ; E_W = 81.25·18 + 45 = 1507.5 pJ; E_A = 2·81.25·32 + 45 = 5245 pJ
    /// dense: Q = 32; N_c = N_s = 20, A_s = 10
    ///   E_MAC(32) = 0.85·2^1.25 = 2.021652 pJ; E_C = 2.021652·(20 + 30) = 101.083 pJ
    ///   E_M(32) = 650 pJ; E_L(32) = 5 pJ; p = 32, √p = 5.656854; reuse = 5·20/5.656854 = 17.6777 pJ
    ///   E_W = 650·20 + 17.6777 = 13017.678 pJ; E_A = 2·650·10 + 17.6777 = 13017.678 pJ
    #[test]
    fn the_formula_on_a_small_network_worked_by_hand() {
        let config = NetConfig {
            input: [1, 8, 8],
            classes: 10,
            blocks: [(1, 2), (0, 2), (0, 2)],
            quantized: true,
            bits: 4,
            nonlinearity: Nonlinearity::Relu,
            sym: false,
            net: None,
        };
        let e = estimate(&config, &EnergyProfile::default());
        let close = |got: f64, want: f64| (got - want).abs() <= 1e-5 * want.abs().max(1.0);
        let c = &e.layers[0];
        assert_eq!((c.macs, c.weights, c.activations), (1152, 18, 32));
        assert_eq!((c.bits, c.mac_bits), (4.0, 8.0));
        assert!(close(c.compute_pj, 446.011), "{}", c.compute_pj);
        assert!(close(c.weights_pj, 1507.5), "{}", c.weights_pj);
        assert!(close(c.activations_pj, 5245.0), "{}", c.activations_pj);
        let d = &e.layers[1];
        assert_eq!((d.macs, d.weights, d.activations), (20, 20, 10));
        assert!(close(d.compute_pj, 101.083), "{}", d.compute_pj);
        assert!(close(d.weights_pj, 13017.678), "{}", d.weights_pj);
        assert!(close(d.activations_pj, 13017.678), "{}", d.activations_pj);
        assert!(close(
            e.total_pj(),
            446.011 + 1507.5 + 5245.0 + 101.083 + 2.0 * 13017.678
        ));
        assert_eq!(e.layers.len(), 2);
    }

    #[test]
    fn binary_is_cheaper_per_layer_than_eight_bits() {
        let mut config = NetConfig {
            input: [3, 32, 32],
            classes: 10,
            blocks: [(1, 64), (1, 64), (1, 64)],
            quantized: true,
            bits: 8,
            nonlinearity: Nonlinearity::Hardtanh,
            sym: true,
            net: None,
        };
        let p = EnergyProfile::default();
        let eight = estimate(&config, &p);
        config.bits = 0;
        let binary = estimate(&config, &p);
        // every conv layer (the float dense layer is the same in both)
        let n = binary.layers.len() - 1;
        for (b, e) in binary.layers.iter().zip(&eight.layers).take(n) {
            assert!(b.total_pj() < e.total_pj(), "{}", b.name);
        }
    }

    #[test]
    fn bad_profiles_are_refused() {
        assert!(EnergyProfile::from_json("{}", "p.json").is_err());
        let text = DEFAULT_PROFILE.replace("\"value\": 0.85", "\"value\": -1");
        let e = EnergyProfile::from_json(&text, "p.json").unwrap_err();
        assert!(e.to_string().contains("e_mac16_pj"), "{e}");
    }
}
