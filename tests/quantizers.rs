//! The quantizers level by level against docs/spec.md. Every expected value here is written out from
//! the spec's formulas by hand, not computed by the code under test.

use qnn::quant::{check_combination, ActQuant, Nonlinearity, WeightQuant};

use Nonlinearity::{Hardtanh, Relu};

/// Distinct outputs over a fine sweep of x ∈ [−1.5, 1.5].
fn levels(a: ActQuant) -> Vec<f32> {
    let mut v: Vec<f32> = (-30000..=30000)
        .map(|i| a.forward(i as f32 / 20000.0))
        .collect();
    v.sort_by(f32::total_cmp);
    v.dedup();
    v
}

fn q(nl: Nonlinearity, bits: u32, sym: bool) -> ActQuant {
    ActQuant::Quantized { nl, bits, sym }
}

#[test]
fn activation_level_tables() {
    // nb = 0 (BinaryNet): ±1
    assert_eq!(levels(q(Hardtanh, 0, true)), vec![-1.0, 1.0]);
    // nb = 1: 2·round(hs·2)/2 − 1 ∈ {−1, 0, 1}; asym clips at 1 − 2^0 = 0
    assert_eq!(levels(q(Hardtanh, 1, true)), vec![-1.0, 0.0, 1.0]);
    assert_eq!(levels(q(Hardtanh, 1, false)), vec![-1.0, 0.0]);
    // nb = 2: steps of 0.5; asym top 1 − 2^−1 = 0.5; relu [0, 0.5]
    assert_eq!(
        levels(q(Hardtanh, 2, true)),
        vec![-1.0, -0.5, 0.0, 0.5, 1.0]
    );
    assert_eq!(levels(q(Hardtanh, 2, false)), vec![-1.0, -0.5, 0.0, 0.5]);
    assert_eq!(levels(q(Relu, 2, false)), vec![0.0, 0.5]);
    // nb = 4: steps of 1/8; asym top 7/8; relu 0 .. 7/8
    let eighths = |a: i32, b: i32| (a..=b).map(|k| k as f32 / 8.0).collect::<Vec<_>>();
    assert_eq!(levels(q(Hardtanh, 4, true)), eighths(-8, 8));
    assert_eq!(levels(q(Hardtanh, 4, false)), eighths(-8, 7));
    assert_eq!(levels(q(Relu, 4, false)), eighths(0, 7));
    // nb = 8: steps of 1/128; asym top 127/128; relu 0 .. 127/128
    let steps = |a: i32, b: i32| (a..=b).map(|k| k as f32 / 128.0).collect::<Vec<_>>();
    assert_eq!(levels(q(Hardtanh, 8, true)), steps(-128, 128));
    assert_eq!(levels(q(Hardtanh, 8, false)), steps(-128, 127));
    assert_eq!(levels(q(Relu, 8, false)), steps(0, 127));
    // relu ignores sym (it is forced off)
    assert_eq!(levels(q(Relu, 4, true)), eighths(0, 7));
}

#[test]
fn activation_rounds_half_away_from_zero() {
    // nb = 2: hs(−0.75)·4 = 0.5 exactly → 1 (half to even would give 0) → 2·1/4 − 1 = −0.5
    assert_eq!(q(Hardtanh, 2, true).forward(-0.75), -0.5);
    // hs(0.25)·4 = 2.5 → 3 → 0.5 (half to even: 2 → 0)
    assert_eq!(q(Hardtanh, 2, true).forward(0.25), 0.5);
    assert_eq!(q(Relu, 2, false).forward(0.25), 0.5);
    // binary: x = 0 → hs = 0.5 → 1 → +1; just below → −1
    assert_eq!(q(Hardtanh, 0, true).forward(0.0), 1.0);
    assert_eq!(q(Hardtanh, 0, true).forward(-1e-7), -1.0);
    // nb = 4: hs(x)·16 = 4.5 at x = −0.4375 → 5 → 2·5/16 − 1 = −0.375
    assert_eq!(q(Hardtanh, 4, true).forward(-0.4375), -0.375);
}

#[test]
fn float_activations() {
    assert_eq!(
        ActQuant::Float(Relu).forward(3.5),
        3.5,
        "float relu is unbounded"
    );
    assert_eq!(ActQuant::Float(Relu).forward(-0.1), 0.0);
    assert_eq!(ActQuant::Float(Hardtanh).forward(3.5), 1.0);
    assert_eq!(ActQuant::Float(Hardtanh).forward(-0.3), -0.3);
    assert_eq!(ActQuant::Float(Relu).grad_mask(0.5), 1.0);
    assert_eq!(ActQuant::Float(Relu).grad_mask(-0.5), 0.0);
    assert_eq!(ActQuant::Float(Hardtanh).grad_mask(1.0), 1.0);
    assert_eq!(ActQuant::Float(Hardtanh).grad_mask(1.01), 0.0);
}

#[test]
fn straight_through_mask_edges() {
    let ht = q(Hardtanh, 2, true);
    // −1 ≤ x ≤ 1, inclusive
    assert_eq!(ht.grad_mask(1.0), 1.0);
    assert_eq!(ht.grad_mask(-1.0), 1.0);
    assert_eq!(ht.grad_mask(1.0000001), 0.0);
    assert_eq!(ht.grad_mask(-1.0000001), 0.0);
    // relu nb = 2: value before the clip must lie in [0, 0.5]
    let relu = q(Relu, 2, false);
    assert_eq!(
        relu.grad_mask(-0.3),
        0.0,
        "hs=0.35 → round(1.4)=1 → −0.5 < 0"
    );
    assert_eq!(relu.grad_mask(-0.2), 1.0, "hs=0.4 → round(1.6)=2 → 0");
    assert_eq!(relu.grad_mask(0.6), 1.0, "hs=0.8 → round(3.2)=3 → 0.5");
    assert_eq!(relu.grad_mask(0.8), 0.0, "hs=0.9 → round(3.6)=4 → 1 > 0.5");
    // hardtanh asym nb = 2 (top 0.5): x = 0.8 → 1 > 0.5
    assert_eq!(q(Hardtanh, 2, false).grad_mask(0.8), 0.0);
    assert_eq!(q(Hardtanh, 2, false).grad_mask(0.6), 1.0);
    // binary: the whole of [−1, 1]
    assert_eq!(q(Hardtanh, 0, true).grad_mask(0.999), 1.0);
    assert_eq!(q(Hardtanh, 0, true).grad_mask(1.5), 0.0);
}

fn wq(q: WeightQuant, w: &[f32]) -> Vec<f32> {
    let m = w.iter().fold(0.0f32, |m, v| m.max(v.abs()));
    w.iter().map(|&v| q.apply(v, m)).collect()
}

#[test]
fn weight_quantizer_tables() {
    let w = [1.0, 0.25, 0.75, -0.25, -0.75, -1.0];
    // max 1 → f = 0; nb = 2 → scale 2^(1+0) = 2; W·2 rounds half to even: 0.5 → 0, 1.5 → 2, −1.5 → −2
    // sym: clip to [−2, 2] then /2
    assert_eq!(
        wq(WeightQuant::Bits { bits: 2, sym: true }, &w),
        vec![1.0, 0.0, 1.0, -0.0, -1.0, -1.0]
    );
    // asym: clip to [−2, 1]
    assert_eq!(
        wq(
            WeightQuant::Bits {
                bits: 2,
                sym: false
            },
            &w
        ),
        vec![0.5, 0.0, 0.5, -0.0, -1.0, -1.0]
    );
    // max 0.3 → 1/0.3 = 3.33 → f = 1; nb = 4 → scale 2^(3+1) = 16: 0.3·16 = 4.8 → 5 → 0.3125
    let w = [0.3, -0.3, 0.1, 0.03125, 0.09375];
    // 0.1·16 = 1.6 → 2 → 0.125; 0.03125·16 = 0.5 → 0 (even); 0.09375·16 = 1.5 → 2 → 0.125
    assert_eq!(
        wq(WeightQuant::Bits { bits: 4, sym: true }, &w),
        vec![0.3125, -0.3125, 0.125, 0.0, 0.125]
    );
    // max 0.5 → 1/0.5 = 2 → f = 1 exactly; nb = 2 → scale 4: 0.5·4 = 2 → clip: sym 2 → 0.5, asym 1 → 0.25
    let w = [0.5, -0.5, 0.125];
    assert_eq!(
        wq(WeightQuant::Bits { bits: 2, sym: true }, &w),
        vec![0.5, -0.5, 0.0]
    );
    assert_eq!(
        wq(
            WeightQuant::Bits {
                bits: 2,
                sym: false
            },
            &w
        ),
        vec![0.25, -0.5, 0.0]
    );
    // nb = 1 sym: scale 2^(0+f); levels −1, 0, 1 (·2^−f); max 1: 0.5 → 0 (even), 0.7 → 1
    assert_eq!(
        wq(
            WeightQuant::Bits { bits: 1, sym: true },
            &[1.0, 0.5, 0.7, -0.7]
        ),
        vec![1.0, 0.0, 1.0, -1.0]
    );
    // binary: sign with W = 0 → +1
    assert_eq!(
        wq(WeightQuant::Binary, &[0.3, 0.0, -0.0, -1e-9]),
        vec![1.0, 1.0, 1.0, -1.0]
    );
    // all-zero tensor: f = 0, everything 0
    assert_eq!(
        wq(WeightQuant::Bits { bits: 4, sym: true }, &[0.0, 0.0]),
        vec![0.0, 0.0]
    );
    // float: unchanged
    assert_eq!(wq(WeightQuant::None, &[0.123, -4.0]), vec![0.123, -4.0]);
}

#[test]
fn weight_levels_at_nb_8() {
    // max 1 → scale 2^7: levels k/128, k ∈ [−128, 128] (sym) or [−128, 127] (asym)
    let w: Vec<f32> = (-2000..=2000).map(|i| i as f32 / 2000.0).collect();
    for (sym, top) in [(true, 128), (false, 127)] {
        let mut got = wq(WeightQuant::Bits { bits: 8, sym }, &w);
        got.sort_by(f32::total_cmp);
        got.dedup_by(|a, b| a == b);
        let want: Vec<f32> = (-128..=top).map(|k| k as f32 / 128.0).collect();
        assert_eq!(got, want, "sym {sym}");
    }
}

#[test]
fn degenerate_combinations_are_refused() {
    assert!(check_combination(Relu, 1, false, true)
        .unwrap_err()
        .contains("relu"));
    assert!(check_combination(Relu, 0, false, true).is_err());
    assert!(check_combination(Hardtanh, 0, false, true)
        .unwrap_err()
        .contains("symmetric clipping"));
    assert!(check_combination(Hardtanh, 17, true, true)
        .unwrap_err()
        .contains("16"));
    assert!(check_combination(Hardtanh, 0, true, true).is_ok());
    assert!(check_combination(Relu, 2, false, true).is_ok());
    assert!(
        check_combination(Relu, 0, false, false).is_ok(),
        "float mode ignores bits"
    );
}
