//! What a front end shows of a network while it trains: the first layer's filters at their
//! quantized levels, how each layer's activations fall on the 2^nb levels, a confusion matrix,
//! and the predictions behind a grid of test images or a drawn digit. Everything is computed
//! here, from plain numbers, so the desktop window only draws it (and the tests check it).
//!
//! ```
//! use qnn::inspect::{ConfusionMatrix, LevelHistogram};
//! use qnn::quant::{ActQuant, Nonlinearity};
//! // 2-bit relu: levels {0, 0.5}
//! let act = ActQuant::Quantized { nl: Nonlinearity::Relu, bits: 2, sym: false };
//! let h = LevelHistogram::new("conv0", &[0.0, 0.5, 0.5, 0.0, 0.5], act);
//! assert_eq!(h.levels, vec![0.0, 0.5]);
//! assert_eq!(h.counts, vec![2, 3]);
//! // two images of class 3, one predicted as 5
//! let scores = [[0.0f32; 10], [0.0; 10]].concat();
//! let mut s = scores.clone();
//! s[3] = 1.0;
//! s[10 + 5] = 1.0;
//! let m = ConfusionMatrix::new(10, &s, &[3, 3]);
//! assert_eq!((m.get(3, 3), m.get(3, 5)), (1, 1));
//! ```

use std::cmp::Ordering;

use crate::backend::Backend;
use crate::model::{Mode, Model, NetConfig, Op};
use crate::ops::loss::argmax;
use crate::ops::quantize::abs_max;
use crate::quant::ActQuant;
use crate::Error;

/// Most bins a histogram keeps: wider quantizers (nb > 8) and float activations are binned.
pub const MAX_BINS: usize = 256;

/// The first conv layer's weights as the forward pass uses them: quantized to their levels
/// (binary ±1, n-bit k·2^−e) or the float weights in float mode.
#[derive(Clone, Debug, PartialEq)]
pub struct Filters {
    /// Filters (output channels).
    pub cout: usize,
    /// Input channels of each filter.
    pub cin: usize,
    /// Side of each kernel (3 for the seed's layers).
    pub size: usize,
    /// The effective weights, `[cout, cin, size, size]`.
    pub values: Vec<f32>,
    /// Every level the quantizer can give this tensor, ascending; `None` in float mode.
    pub levels: Option<Vec<f32>>,
    /// Weights on each level (same order as `levels`); empty in float mode.
    pub level_counts: Vec<u64>,
    /// max|w| of the effective weights (the scale of float-mode shades).
    pub absmax: f32,
}

impl Filters {
    /// Quantizes the float weights `w [cout, cin, k, k]` of the first conv layer of `config`
    /// exactly as the forward pass does (max|W| of the whole tensor sets the scale).
    pub fn new(config: &NetConfig, w: &[f32]) -> Result<Self, Error> {
        let first = config
            .layers()
            .into_iter()
            .find_map(|l| match l.op {
                Op::Conv(c) => Some(c),
                _ => None,
            })
            .ok_or_else(|| Error::Model("the network has no conv layer".into()))?;
        let (cout, cin, size) = (first.shape.cout, first.shape.cin, first.shape.kernel);
        if w.len() != cout * cin * size * size {
            return Err(Error::Shape(format!(
                "the first layer's weights hold {} values, [{cout}, {cin}, {size}, {size}] needs {}",
                w.len(),
                cout * cin * size * size
            )));
        }
        let q = first.quant.weight_quant();
        // exactly as the forward pass quantizes them
        let mut values = vec![0.0f32; w.len()];
        let absmax = crate::ops::quantize::weight_quantize(q, w, &mut values);
        let levels = q.levels(absmax);
        let level_counts = match &levels {
            Some(l) => {
                let mut counts = vec![0u64; l.len()];
                for v in &values {
                    if let Ok(i) =
                        l.binary_search_by(|x| x.partial_cmp(v).unwrap_or(Ordering::Less))
                    {
                        counts[i] += 1;
                    }
                }
                counts
            }
            None => Vec::new(),
        };
        Ok(Filters {
            cout,
            cin,
            size,
            absmax: abs_max(&values),
            values,
            levels,
            level_counts,
        })
    }

    /// The `size`×`size` kernel of filter `f` on input channel `c`, row-major.
    pub fn kernel(&self, f: usize, c: usize) -> &[f32] {
        let taps = self.size * self.size;
        let at = (f * self.cin + c) * taps;
        &self.values[at..at + taps]
    }

    /// A shade in [0, 1] for a weight: its level's rank among the levels (so binary weights
    /// are black and white and 2-bit weights four greys), or, in float mode, 0.5 + w/(2·max|W|).
    pub fn shade(&self, w: f32) -> f32 {
        match &self.levels {
            Some(l) if l.len() > 1 => {
                let i = l
                    .binary_search_by(|x| x.partial_cmp(&w).unwrap_or(Ordering::Less))
                    .unwrap_or(0);
                i as f32 / (l.len() - 1) as f32
            }
            Some(_) => 0.5,
            None if self.absmax > 0.0 => 0.5 + 0.5 * w / self.absmax,
            None => 0.5,
        }
    }

    /// Levels holding at least one weight.
    pub fn levels_used(&self) -> usize {
        self.level_counts.iter().filter(|&&c| c > 0).count()
    }

    /// The line above the filters, as the window and the page write it: "8 filters × 1
    /// channels, levels {-0.5, …, 0.5}: 5 used" (more than nine levels as a range), or "(float
    /// weights)".
    pub fn caption(&self) -> String {
        match &self.levels {
            Some(levels) => {
                let shown: Vec<String> = if levels.len() <= 9 {
                    levels.iter().map(|l| format!("{l}")).collect()
                } else {
                    vec![format!(
                        "{} levels from {} to {}",
                        levels.len(),
                        levels[0],
                        levels[levels.len() - 1]
                    )]
                };
                format!(
                    "{} filters × {} channels, levels {{{}}}: {} used",
                    self.cout,
                    self.cin,
                    shown.join(", "),
                    self.levels_used()
                )
            }
            None => format!(
                "{} filters × {} channels (float weights)",
                self.cout, self.cin
            ),
        }
    }
}

/// How the values of one layer's activations fall on the quantizer's levels.
#[derive(Clone, Debug, PartialEq)]
pub struct LevelHistogram {
    /// The layer, e.g. `conv0 (A)`.
    pub layer: String,
    /// One value per bin: the level itself, or the lowest level of a bin of several (wide
    /// quantizers), or the left edge of a float bin.
    pub levels: Vec<f32>,
    /// Values per bin.
    pub counts: Vec<u64>,
    /// Levels the quantizer has (bins are levels when this equals `levels.len()`); `None` in
    /// float mode.
    pub quantizer_levels: Option<usize>,
    /// Values that were NaN or infinite (counted in no bin).
    pub non_finite: u64,
}

impl LevelHistogram {
    /// Counts `values` per level of `act` (binning wide quantizers into [`MAX_BINS`]); float
    /// activations get 32 equal bins between their smallest and largest value.
    pub fn new(layer: &str, values: &[f32], act: ActQuant) -> Self {
        let non_finite = values.iter().filter(|v| !v.is_finite()).count() as u64;
        let finite = values.iter().copied().filter(|v| v.is_finite());
        let (levels, counts, quantizer_levels) = match act.level_values() {
            Some(all) => {
                let n = all.len();
                let per_bin = n.div_ceil(MAX_BINS);
                let bins = n.div_ceil(per_bin);
                let mut counts = vec![0u64; bins];
                let l = act.levels().expect("quantized");
                let step = 2.0 / l.scale;
                for v in finite {
                    // levels are lo + k·step exactly; rounding finds k for any value near one
                    let k = ((v - l.lo) / step).round().clamp(0.0, (n - 1) as f32) as usize;
                    counts[k / per_bin] += 1;
                }
                let levels = all.iter().step_by(per_bin).copied().collect();
                (levels, counts, Some(n))
            }
            None => {
                const FLOAT_BINS: usize = 32;
                let (lo, hi) = finite
                    .clone()
                    .fold((f32::INFINITY, f32::NEG_INFINITY), |(a, b), v| {
                        (a.min(v), b.max(v))
                    });
                if lo > hi {
                    (Vec::new(), Vec::new(), None)
                } else {
                    let width = ((hi - lo) / FLOAT_BINS as f32).max(f32::MIN_POSITIVE);
                    let mut counts = vec![0u64; FLOAT_BINS];
                    for v in finite {
                        let i = (((v - lo) / width) as usize).min(FLOAT_BINS - 1);
                        counts[i] += 1;
                    }
                    let levels = (0..FLOAT_BINS).map(|i| lo + i as f32 * width).collect();
                    (levels, counts, None)
                }
            }
        };
        LevelHistogram {
            layer: layer.to_string(),
            levels,
            counts,
            quantizer_levels,
            non_finite,
        }
    }

    /// Bins holding at least one value: for a quantized layer, how many levels the network
    /// really uses.
    pub fn used(&self) -> usize {
        self.counts.iter().filter(|&&c| c > 0).count()
    }

    /// Values counted.
    pub fn total(&self) -> u64 {
        self.counts.iter().sum()
    }

    /// The line above the histogram, as the window and the page write it: "conv0 (A): 6 of 8
    /// levels used", or "conv0 (A): float".
    pub fn caption(&self) -> String {
        match self.quantizer_levels {
            Some(n) => format!("{}: {} of {n} levels used", self.layer, self.used()),
            None => format!("{}: float", self.layer),
        }
    }
}

/// Counts of (true class, predicted class) over a set of images.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConfusionMatrix {
    /// Classes: the matrix is classes × classes.
    pub classes: usize,
    /// `counts[t * classes + p]`: images of class t predicted as p.
    pub counts: Vec<u64>,
}

impl ConfusionMatrix {
    /// From scores `[n, classes]` and n labels; the prediction is the first highest score, as
    /// the loss kernel counts errors. A label of no class (≥ `classes`) is not counted.
    pub fn new(classes: usize, scores: &[f32], labels: &[u16]) -> Self {
        let mut counts = vec![0u64; classes * classes];
        if classes > 0 {
            for (row, &t) in scores.chunks_exact(classes).zip(labels) {
                if (t as usize) < classes {
                    counts[t as usize * classes + argmax(row)] += 1;
                }
            }
        }
        ConfusionMatrix { classes, counts }
    }

    /// Images of class `truth` predicted as `predicted`.
    pub fn get(&self, truth: usize, predicted: usize) -> u64 {
        self.counts[truth * self.classes + predicted]
    }

    /// Images counted.
    pub fn total(&self) -> u64 {
        self.counts.iter().sum()
    }

    /// Misclassified images in percent (0 for an empty matrix).
    pub fn error_percent(&self) -> f64 {
        let total = self.total();
        if total == 0 {
            return 0.0;
        }
        let right: u64 = (0..self.classes).map(|c| self.get(c, c)).sum();
        100.0 * (total - right) as f64 / total as f64
    }

    /// The most frequent confusions (truth, predicted, count), largest first, at most `n`.
    pub fn worst(&self, n: usize) -> Vec<(usize, usize, u64)> {
        let k = self.classes;
        let mut off: Vec<(usize, usize, u64)> = (0..k * k)
            .map(|i| (i / k, i % k, self.counts[i]))
            .filter(|&(t, p, c)| t != p && c > 0)
            .collect();
        off.sort_by(|a, b| b.2.cmp(&a.2).then((a.0, a.1).cmp(&(b.0, b.1))));
        off.truncate(n);
        off
    }

    /// The line above the matrix, as the window and the page write it.
    pub fn caption(&self) -> String {
        format!(
            "{:.2}% error on {} images; rows: true class, columns: predicted",
            self.error_percent(),
            self.total()
        )
    }

    /// The line below it: "most confused: 4 as 9 ×3, …" (the three most frequent confusions,
    /// classes by `names`, numbered where a name is missing), or `None` without a mistake.
    pub fn most_confused(&self, names: &[String]) -> Option<String> {
        let name = |c: usize| names.get(c).cloned().unwrap_or_else(|| c.to_string());
        let worst: Vec<String> = self
            .worst(3)
            .iter()
            .map(|&(t, p, c)| format!("{} as {} ×{c}", name(t), name(p)))
            .collect();
        (!worst.is_empty()).then(|| format!("most confused: {}", worst.join(", ")))
    }
}

/// The class of each row of scores `[n, classes]` (the first highest score).
pub fn predicted_classes(classes: usize, scores: &[f32]) -> Vec<u16> {
    scores
        .chunks_exact(classes.max(1))
        .map(|r| argmax(r) as u16)
        .collect()
}

/// The `n` highest scores of one row, (class, score), highest first (the first class of equal
/// scores first): what a front end lists of many classes.
pub fn top_classes(row: &[f32], n: usize) -> Vec<(usize, f32)> {
    let mut order: Vec<(usize, f32)> = row.iter().copied().enumerate().collect();
    order.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
    order.truncate(n);
    order
}

/// Softmax of one row of scores, for showing the scores as shares that add up to 1.
pub fn softmax(row: &[f32]) -> Vec<f32> {
    let m = row.iter().fold(f32::NEG_INFINITY, |m, &v| m.max(v));
    let e: Vec<f32> = row.iter().map(|&v| (v - m).exp()).collect();
    let s: f32 = e.iter().sum();
    e.iter().map(|v| v / s).collect()
}

/// A drawn digit (28×28 intensities in [0, 1]) as MNIST presents digits: u8 pixels with the
/// centre of mass moved to the middle (whole pixels; what falls off the edge is dropped).
pub fn center_digit(ink: &[f32]) -> Vec<u8> {
    const S: usize = 28;
    let mass: f32 = ink.iter().sum();
    let mut out = vec![0u8; S * S];
    if ink.len() != S * S || mass <= 0.0 {
        return out;
    }
    let (mut cy, mut cx) = (0.0f32, 0.0f32);
    for (i, &v) in ink.iter().enumerate() {
        cy += v * (i / S) as f32;
        cx += v * (i % S) as f32;
    }
    // the middle of a 28-pixel image lies between pixels 13 and 14
    let dy = (13.5 - cy / mass).round() as isize;
    let dx = (13.5 - cx / mass).round() as isize;
    for (i, &v) in ink.iter().enumerate() {
        let (y, x) = ((i / S) as isize + dy, (i % S) as isize + dx);
        if (0..S as isize).contains(&y) && (0..S as isize).contains(&x) {
            out[y as usize * S + x as usize] = (v.clamp(0.0, 1.0) * 255.0).round() as u8;
        }
    }
    out
}

/// A look inside the network on a few images: its first layer's filters and each conv layer's
/// activation histogram.
#[derive(Clone, Debug, PartialEq)]
pub struct Probe {
    /// The first conv layer's effective weights.
    pub filters: Filters,
    /// One histogram per conv layer, in network order.
    pub activations: Vec<LevelHistogram>,
    /// Images the activations were measured on.
    pub images: usize,
}

impl Probe {
    /// Runs the forward pass (evaluation mode) over the `n` images already in the model's input
    /// buffer and reads the first layer's weights and every conv layer's activations. Between
    /// two training steps this changes nothing the next step reads.
    pub async fn measure<B: Backend>(b: &mut B, model: &Model, n: usize) -> Result<Self, Error> {
        model.forward(b, n, Mode::Eval);
        // each conv layer's own activation, in the order `activations` reads them
        let acts: Vec<ActQuant> = model
            .config
            .layers()
            .iter()
            .filter(|l| matches!(l.op, Op::Conv(_)))
            .filter_map(|l| l.activation())
            .collect();
        let mut activations = Vec::new();
        for ((name, values), act) in model.activations(b, n).await?.into_iter().zip(acts) {
            activations.push(LevelHistogram::new(&name, &values, act));
        }
        let w = model.first_layer_weights(b).await?;
        Ok(Probe {
            filters: Filters::new(&model.config, &w)?,
            activations,
            images: n,
        })
    }
}

#[cfg(not(target_arch = "wasm32"))]
pub use explorer::Explorer;

#[cfg(not(target_arch = "wasm32"))]
mod explorer {
    use super::*;
    use crate::checkpoint;
    use crate::ops::data::scale_pixel;

    /// A saved model on the CPU backend, to explore without a training run: scores for images,
    /// probes, a confusion matrix. (The desktop window's draw pad and loaded models use it.)
    pub struct Explorer {
        backend: crate::CpuBackend,
        model: Model,
        /// The model file's description: data set, network, epoch and errors.
        pub meta: checkpoint::ModelMeta,
    }

    impl Explorer {
        /// Builds the model of a `.safetensors` file (as `qnn train` saves it) on the CPU.
        pub fn from_model_bytes(bytes: &[u8], what: &str) -> Result<Self, Error> {
            let (tensors, meta) = checkpoint::model_from_bytes(bytes, what)?;
            let mut backend = crate::CpuBackend::new();
            let model = Model::new(&mut backend, meta.config.clone(), 64, 0)?;
            model.import(&mut backend, &tensors)?;
            Ok(Explorer {
                backend,
                model,
                meta,
            })
        }

        /// The network.
        pub fn config(&self) -> &NetConfig {
            &self.model.config
        }

        /// Classes the network scores.
        pub fn classes(&self) -> usize {
            self.model.classes()
        }

        /// The classes' names: the model file's, else "0" … "classes − 1".
        pub fn class_names(&self) -> Vec<String> {
            self.meta.class_names_or_numbers()
        }

        /// Scores `[n, classes]` for n images of u8 pixels `[n, c, h, w]`.
        pub fn scores(&mut self, pixels: &[u8]) -> Result<Vec<f32>, Error> {
            pollster::block_on(self.model.predict_pixels(&mut self.backend, pixels))
        }

        /// A probe on up to 64 of these images.
        pub fn probe(&mut self, pixels: &[u8]) -> Result<Probe, Error> {
            let len: usize = self.model.config.input.iter().product();
            let n = (pixels.len() / len).min(self.model.max_batch);
            if n == 0 {
                return Err(Error::Shape("a probe needs at least one image".into()));
            }
            let x: Vec<f32> = pixels[..n * len].iter().map(|&p| scale_pixel(p)).collect();
            self.backend.write_f32(self.model.input(), &x);
            pollster::block_on(Probe::measure(&mut self.backend, &self.model, n))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::quant::Nonlinearity;

    fn config(bits: u32, quantized: bool) -> NetConfig {
        NetConfig {
            input: [1, 8, 8],
            classes: 10,
            blocks: [(1, 2), (1, 2), (0, 2)],
            quantized,
            bits,
            nonlinearity: Nonlinearity::Hardtanh,
            sym: true,
            net: None,
        }
    }

    #[test]
    fn binary_filters_are_two_shades() {
        // 2 filters × 1 channel × 9 weights; sign: +1 for w ≥ 0 (−0 included)
        let w: Vec<f32> = (0..18).map(|i| i as f32 - 8.5).collect();
        let f = Filters::new(&config(0, true), &w).unwrap();
        assert_eq!(f.levels, Some(vec![-1.0, 1.0]));
        assert_eq!(f.level_counts, vec![9, 9]);
        assert_eq!(f.kernel(0, 0), &[-1.0; 9]);
        assert_eq!(f.kernel(1, 0), &[1.0; 9]);
        assert_eq!((f.shade(-1.0), f.shade(1.0)), (0.0, 1.0));
        assert_eq!(f.levels_used(), 2);
    }

    #[test]
    fn two_bit_filters_fall_on_the_quantizers_levels() {
        // max|W| = 0.3 → f = floor(log2(1/0.3)) = 1, scale 2^(nb−1+f) = 4, levels k/4, k ∈ −2..=2 (sym)
        let mut w = vec![0.0f32; 18];
        w[0] = 0.3; // 1.2 → round → 1 → 0.25
        w[1] = -0.3; // −1.2 → −1 → −0.25
        w[2] = 0.1; // 0.4 → 0
        w[3] = 0.13; // 0.52 → 1 → 0.25
        let f = Filters::new(&config(2, true), &w).unwrap();
        assert_eq!(f.levels, Some(vec![-0.5, -0.25, 0.0, 0.25, 0.5]));
        assert_eq!(&f.values[..4], &[0.25, -0.25, 0.0, 0.25]);
        assert_eq!(f.level_counts, vec![0, 1, 15, 2, 0]);
        assert_eq!(f.levels_used(), 3);
        assert_eq!(f.shade(0.0), 0.5);
        assert_eq!(
            f.caption(),
            "2 filters × 1 channels, levels {-0.5, -0.25, 0, 0.25, 0.5}: 3 used"
        );
    }

    #[test]
    fn float_filters_keep_their_values() {
        let w: Vec<f32> = (0..18).map(|i| (i as f32 - 9.0) / 10.0).collect();
        let f = Filters::new(&config(4, false), &w).unwrap();
        assert_eq!(f.values, w);
        assert_eq!(f.levels, None);
        assert_eq!(f.shade(-0.9), 0.0);
        assert_eq!(f.caption(), "2 filters × 1 channels (float weights)");
        assert!(Filters::new(&config(4, false), &w[..17]).is_err());
    }

    #[test]
    fn histograms_count_each_level() {
        // binary hardtanh: {−1, 1}
        let bin = ActQuant::Quantized {
            nl: Nonlinearity::Hardtanh,
            bits: 0,
            sym: true,
        };
        let h = LevelHistogram::new("a", &[-1.0, 1.0, 1.0, f32::NAN], bin);
        assert_eq!(
            (h.levels.clone(), h.counts.clone()),
            (vec![-1.0, 1.0], vec![1, 2])
        );
        assert_eq!((h.non_finite, h.used(), h.total()), (1, 2, 3));
        // 4-bit relu: 8 levels k/8, k = 0..8; every value the quantizer gives lands on its level
        let r4 = ActQuant::Quantized {
            nl: Nonlinearity::Relu,
            bits: 4,
            sym: false,
        };
        let xs: Vec<f32> = (-300..300).map(|i| i as f32 / 200.0).collect();
        let q: Vec<f32> = xs.iter().map(|&x| r4.forward(x)).collect();
        let h = LevelHistogram::new("b", &q, r4);
        assert_eq!(h.levels, (0..8).map(|k| k as f32 / 8.0).collect::<Vec<_>>());
        assert_eq!(h.quantizer_levels, Some(8));
        for (level, count) in h.levels.iter().zip(&h.counts) {
            let expect = q.iter().filter(|&&v| v == *level).count() as u64;
            assert_eq!(*count, expect, "level {level}");
        }
        assert_eq!(h.total(), q.len() as u64);
        assert_eq!(h.caption(), "b: 8 of 8 levels used");
        // 12-bit hardtanh sym: 4097 levels binned into at most MAX_BINS
        let wide = ActQuant::Quantized {
            nl: Nonlinearity::Hardtanh,
            bits: 12,
            sym: true,
        };
        let h = LevelHistogram::new("c", &[-1.0, 1.0, 0.0], wide);
        assert!(h.levels.len() <= MAX_BINS);
        assert_eq!(h.quantizer_levels, Some(4097));
        assert_eq!(
            (h.counts[0], *h.counts.last().unwrap(), h.total()),
            (1, 1, 3)
        );
        // float: 32 bins over [min, max]
        let h = LevelHistogram::new("d", &[0.0, 1.0, 0.5], ActQuant::Float(Nonlinearity::Relu));
        assert_eq!(
            (h.counts.len(), h.counts[0], h.counts[16], h.counts[31]),
            (32, 1, 1, 1)
        );
        assert_eq!(h.quantizer_levels, None);
        assert_eq!(h.caption(), "d: float");
    }

    #[test]
    fn a_drawn_digit_is_centred() {
        // a 2×2 blot in the top-left corner moves to the middle
        let mut ink = vec![0.0f32; 28 * 28];
        for (y, x) in [(0, 0), (0, 1), (1, 0), (1, 1)] {
            ink[y * 28 + x] = 1.0;
        }
        let img = center_digit(&ink);
        let at: Vec<usize> = (0..784).filter(|&i| img[i] > 0).collect();
        // centre of mass 0.5 → 13.5: shift by 13 (13.0 rounds to 13)
        assert_eq!(
            at,
            vec![13 * 28 + 13, 13 * 28 + 14, 14 * 28 + 13, 14 * 28 + 14]
        );
        assert!(at.iter().all(|&i| img[i] == 255));
        assert_eq!(center_digit(&vec![0.0; 784]), vec![0u8; 784]);
    }

    #[test]
    fn confusion_matrix_counts_pairs() {
        const CLASSES: usize = 10;
        let mut scores = vec![0.0f32; 4 * CLASSES];
        scores[2] = 1.0; // image 0 → 2
        scores[CLASSES + 2] = 1.0; // image 1 → 2
        scores[2 * CLASSES + 7] = 1.0; // image 2 → 7
                                       // image 3: all equal → class 0 (the first highest, as the loss kernel counts)
        let m = ConfusionMatrix::new(CLASSES, &scores, &[2, 7, 7, 0]);
        assert_eq!(
            (m.get(2, 2), m.get(7, 2), m.get(7, 7), m.get(0, 0)),
            (1, 1, 1, 1)
        );
        assert_eq!(m.total(), 4);
        assert_eq!(m.error_percent(), 25.0);
        assert_eq!(m.worst(3), vec![(7, 2, 1)]);
        assert_eq!(
            m.caption(),
            "25.00% error on 4 images; rows: true class, columns: predicted"
        );
        let names: Vec<String> = (0..CLASSES).map(|c| format!("c{c}")).collect();
        assert_eq!(
            m.most_confused(&names).as_deref(),
            Some("most confused: c7 as c2 ×1")
        );
        assert_eq!(
            ConfusionMatrix::new(CLASSES, &scores, &[2]).most_confused(&names),
            None
        );
        assert_eq!(predicted_classes(CLASSES, &scores), vec![2, 2, 7, 0]);
        let p = softmax(&scores[..CLASSES]);
        assert!((p.iter().sum::<f32>() - 1.0).abs() < 1e-6);
        assert_eq!(argmax(&p), 2);
    }

    /// Three classes (and 1,000): the matrix, the predictions and the top scores follow the
    /// count; a label of no class is not counted.
    #[test]
    fn confusion_matrix_of_other_class_counts() {
        let scores = [0.1f32, 0.9, 0.0, 0.5, 0.2, 0.3, 0.0, 0.0, 2.0];
        let m = ConfusionMatrix::new(3, &scores, &[1, 2, 2]);
        assert_eq!(m.counts.len(), 9);
        assert_eq!((m.get(1, 1), m.get(2, 0), m.get(2, 2)), (1, 1, 1));
        assert_eq!(m.worst(5), vec![(2, 0, 1)]);
        assert_eq!(predicted_classes(3, &scores), vec![1, 0, 2]);
        assert_eq!(ConfusionMatrix::new(3, &scores, &[1, 7, 2]).total(), 2);
        let mut row = vec![0.0f32; 1000];
        row[999] = 3.0;
        row[500] = 2.0;
        row[7] = 2.0;
        assert_eq!(top_classes(&row, 3), vec![(999, 3.0), (7, 2.0), (500, 2.0)]);
        assert_eq!(predicted_classes(1000, &row), vec![999]);
        assert_eq!(ConfusionMatrix::new(1000, &row, &[999]).get(999, 999), 1);
    }
}
