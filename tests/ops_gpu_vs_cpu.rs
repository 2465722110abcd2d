//! Every op: the GPU (wgpu, lavapipe in CI) against the CPU twin on fresh random inputs, at odd
//! shapes too. Tolerances are relative to the largest magnitude of the reference tensor:
//! 1e-4 for the matrix products and reductions (sums in another order), exact for
//! element-wise ops whose arithmetic is the same on both sides.

mod common;
use common::*;
use qnn::backend::*;
use qnn::quant::WeightQuant;
use qnn::{Backend, Dtype};

const MATMUL_TOL: f32 = 1e-4;

fn conv_all<B: Backend>(
    b: &mut B,
    s: ConvShape,
    x: &[f32],
    w: &[f32],
    bias: &[f32],
    dy: &[f32],
) -> [Vec<f32>; 3] {
    let (xb, wb, bb, dyb) = (upload(b, x), upload(b, w), upload(b, bias), upload(b, dy));
    let (y, dx, dw) = (
        zeros(b, s.y_len()),
        zeros(b, s.x_len()),
        zeros(b, s.w_len()),
    );
    b.conv_forward(s, xb, wb, bb, y);
    b.conv_grad_input(s, dyb, wb, dx);
    b.conv_grad_weight(s, dyb, xb, dw);
    [read(b, y), read(b, dx), read(b, dw)]
}

#[test]
fn conv_forward_and_gradients_match_cpu() {
    let shapes = [
        ConvShape {
            batch: 1,
            cin: 3,
            cout: 8,
            h: 5,
            w: 5,
            ..ConvShape::SAME_3X3
        },
        ConvShape {
            batch: 65,
            cin: 3,
            cout: 7,
            h: 7,
            w: 7,
            ..ConvShape::SAME_3X3
        },
        ConvShape {
            batch: 2,
            cin: 70,
            cout: 66,
            h: 9,
            w: 9,
            ..ConvShape::SAME_3X3
        },
        ConvShape {
            batch: 3,
            cin: 16,
            cout: 16,
            h: 32,
            w: 32,
            ..ConvShape::SAME_3X3
        },
        ConvShape {
            batch: 16,
            cin: 8,
            cout: 8,
            h: 16,
            w: 16,
            ..ConvShape::SAME_3X3
        }, // weight gradient split over K
        ConvShape {
            batch: 2,
            cin: 1,
            cout: 4,
            h: 28,
            w: 28,
            ..ConvShape::SAME_3X3
        },
    ];
    let Some(mut g) = gpu() else { return };
    let mut c = cpu();
    for (i, s) in shapes.into_iter().enumerate() {
        let mut r = rng(100 + i as u64);
        let x = uniform(&mut r, s.x_len(), -1.0, 1.0);
        let w = uniform(&mut r, s.w_len(), -1.0, 1.0);
        let bias = uniform(&mut r, s.cout, -1.0, 1.0);
        let dy = uniform(&mut r, s.y_len(), -1.0, 1.0);
        let got = conv_all(&mut g, s, &x, &w, &bias, &dy);
        let want = conv_all(&mut c, s, &x, &w, &bias, &dy);
        for (k, name) in ["forward", "grad input", "grad weight"].iter().enumerate() {
            assert_close(&format!("conv {name} {s:?}"), &got[k], &want[k], MATMUL_TOL);
        }
    }
}

/// The CPU's forward, input gradient and weight gradient.
fn conv_cpu(s: ConvShape, x: &[f32], wt: &[f32], bias: &[f32], dy: &[f32]) -> [Vec<f32>; 3] {
    let (mut y, mut dx, mut dw) = (
        vec![0.0; s.y_len()],
        vec![9.0; s.x_len()],
        vec![9.0; s.w_len()],
    );
    qnn::ops::conv::forward(s, x, wt, bias, &mut y);
    qnn::ops::conv::grad_input(s, dy, wt, &mut dx);
    qnn::ops::conv::grad_weight(s, dy, x, &mut dw);
    [y, dx, dw]
}

/// (name, the CPU's result, the f64 loops' result) for y, dx and dw.
fn cpu_and_direct(
    s: ConvShape,
    x: &[f32],
    wt: &[f32],
    bias: &[f32],
    dy: &[f32],
) -> impl Iterator<Item = (&'static str, Vec<f32>, Vec<f64>)> {
    let got = conv_cpu(s, x, wt, bias, dy);
    // the textbook loops in f64 (tests/common/reference.rs)
    let (x, wt, bias, dy) = (
        reference::f64s(x),
        reference::f64s(wt),
        reference::f64s(bias),
        reference::f64s(dy),
    );
    let want = [
        reference::conv_forward(s, &x, &wt, &bias),
        reference::conv_grad_input(s, &dy, &wt),
        reference::conv_grad_weight(s, &dy, &x),
    ];
    ["y", "dx", "dw"]
        .into_iter()
        .zip(got)
        .zip(want)
        .map(|((n, g), w)| (n, g, w))
}

#[test]
fn conv_cpu_matches_direct_definition() {
    // the CPU twin against the textbook loops in f64, forward and both gradients, so the
    // oracle itself is checked. im2col + GEMM (pixel blocks for large images): small and odd;
    // 40 → 3 channels of 20×33 (two pixel blocks whose boundary falls inside a row); 600 → 2
    // of 2×70 (blocks of 16 pixels, shorter than a row); a one-row image; a 1×1 image (every
    // tap but the centre in the padding). The input gradient takes both of its paths: col2im
    // where cin < cout (first and fourth shapes), a turned-filter convolution otherwise.
    // Winograd F(2×2, 3×3) (16+ channels, 8+ pixels a side): odd height and width (tiles
    // half outside the image); 300 channels of 14×30 (a block per row of tiles); five small
    // images, several to a block; cin < cout and cin > cout; the smallest image it takes.
    let shapes = [
        (2, 3, 4, 5, 6),
        (1, 40, 3, 20, 33),
        (1, 600, 2, 2, 70),
        (2, 2, 3, 1, 7),
        (1, 5, 2, 1, 1),
        (2, 20, 17, 13, 15),
        (1, 300, 300, 14, 30),
        (5, 16, 24, 12, 13),
        (3, 24, 16, 16, 12),
        (4, 16, 20, 8, 9),
    ];
    for (i, (batch, cin, cout, h, w)) in shapes.into_iter().enumerate() {
        let s = ConvShape {
            batch,
            cin,
            cout,
            h,
            w,
            ..ConvShape::SAME_3X3
        };
        let mut r = rng(7 + i as u64);
        let x = uniform(&mut r, s.x_len(), -1.0, 1.0);
        let wt = uniform(&mut r, s.w_len(), -1.0, 1.0);
        let bias = uniform(&mut r, cout, -1.0, 1.0);
        let dy = uniform(&mut r, s.y_len(), -1.0, 1.0);
        for (name, got, want) in cpu_and_direct(s, &x, &wt, &bias, &dy) {
            let scale = want.iter().fold(1.0f64, |m, v| m.max(v.abs()));
            for (j, (g, w)) in got.iter().zip(want.iter()).enumerate() {
                assert!(
                    (*g as f64 - w).abs() <= 1e-5 * scale,
                    "{s:?} {name}[{j}]: {g} vs {w}"
                );
            }
        }
    }
}

/// A conv of `(batch, cin, cout, h, w)` with this (kernel, stride, pad).
fn geometry(
    (batch, cin, cout, h, w): (usize, usize, usize, usize, usize),
    (kernel, stride, pad): (usize, usize, usize),
) -> ConvShape {
    ConvShape {
        batch,
        cin,
        cout,
        h,
        w,
        kernel,
        stride,
        pad,
    }
}

/// Every geometry but the seed's: kernel 1 "same", kernel 5 "same" and "valid", kernel 3
/// stride 2 "same" on an odd 7×9 image, kernel 1 stride 2, kernel 3 "valid", at odd sizes; 70
/// output channels (two row tiles of the GPU's 64); kernel 5 stride 2 with 40 channels of 20×33
/// (K = 1000: the CPU's output pixels in two blocks whose boundary falls inside a row; the
/// GPU's weight-gradient columns cin·25 over 16 tiles); 3×3 "valid" at 16+ channels and 8+
/// pixels (the seed's Winograd size); a batch of 64 whose weight gradient (K = 64·8·8 = 4096
/// over a single 64×64 output tile) the GPU splits into 16 slices of K.
fn geometries() -> Vec<ConvShape> {
    vec![
        geometry((3, 13, 70, 7, 5), (1, 1, 0)),
        geometry((2, 5, 4, 9, 7), (5, 1, 2)),
        geometry((2, 4, 3, 9, 11), (5, 1, 0)),
        geometry((2, 6, 5, 7, 9), (3, 2, 1)),
        geometry((3, 7, 4, 7, 9), (1, 2, 0)),
        geometry((2, 5, 6, 9, 7), (3, 1, 0)),
        geometry((1, 40, 3, 20, 33), (5, 2, 2)),
        geometry((2, 16, 17, 9, 11), (3, 1, 0)),
        geometry((64, 3, 8, 15, 15), (3, 2, 1)),
    ]
}

/// The GPU's forward, input and weight gradient against the CPU's for every geometry of
/// [`geometries`], within MATMUL_TOL (1e-4) of each tensor's largest value: the same products
/// summed in another order (and the GPU's split K added slice by slice).
#[test]
fn conv_of_any_geometry_matches_cpu() {
    let Some(mut g) = gpu() else { return };
    let mut c = cpu();
    for (i, s) in geometries().into_iter().enumerate() {
        let mut r = rng(150 + i as u64);
        let x = uniform(&mut r, s.x_len(), -1.0, 1.0);
        let w = uniform(&mut r, s.w_len(), -1.0, 1.0);
        let bias = uniform(&mut r, s.cout, -1.0, 1.0);
        let dy = uniform(&mut r, s.y_len(), -1.0, 1.0);
        let got = conv_all(&mut g, s, &x, &w, &bias, &dy);
        let want = conv_all(&mut c, s, &x, &w, &bias, &dy);
        for (k, name) in ["forward", "grad input", "grad weight"].iter().enumerate() {
            assert_close(&format!("conv {name} {s:?}"), &got[k], &want[k], MATMUL_TOL);
        }
    }
}

/// The CPU's general im2col / col2im path against the f64 loops for every geometry of
/// [`geometries`] (so the oracle of the test above is itself checked), within 1e-5 of each
/// tensor's largest value (and of 1): f32 sums of up to K = 4096 products of values ≤ 1, whose
/// error is √K·2⁻²⁴ ≈ 4e-6 in practice.
#[test]
fn conv_cpu_of_any_geometry_matches_direct_definition() {
    for (i, s) in geometries().into_iter().enumerate() {
        let mut r = rng(170 + i as u64);
        let x = uniform(&mut r, s.x_len(), -1.0, 1.0);
        let wt = uniform(&mut r, s.w_len(), -1.0, 1.0);
        let bias = uniform(&mut r, s.cout, -1.0, 1.0);
        let dy = uniform(&mut r, s.y_len(), -1.0, 1.0);
        for (name, got, want) in cpu_and_direct(s, &x, &wt, &bias, &dy) {
            let scale = want.iter().fold(1.0f64, |m, v| m.max(v.abs()));
            for (j, (g, w)) in got.iter().zip(want.iter()).enumerate() {
                assert!(
                    (*g as f64 - w).abs() <= 1e-5 * scale,
                    "{s:?} {name}[{j}]: {g} vs {w}"
                );
            }
        }
    }
}

/// conv_forward_binary on a geometry other than the seed's takes the float path: on ±1
/// inputs and weights it equals conv_forward bit for bit, on the CPU and on the GPU.
#[test]
fn binary_convolution_of_any_geometry_is_the_float_one() {
    check_binary_is_float(&mut cpu());
    let Some(mut g) = gpu() else { return };
    check_binary_is_float(&mut g);
}

/// conv_forward_binary == conv_forward, bit for bit, on ±1 values for every geometry of
/// [`geometries`].
fn check_binary_is_float<B: Backend>(b: &mut B) {
    let bits = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
    let sign = |v: Vec<f32>| -> Vec<f32> {
        v.into_iter()
            .map(|v| if v < 0.0 { -1.0 } else { 1.0 })
            .collect()
    };
    for (i, s) in geometries().into_iter().enumerate() {
        let mut r = rng(190 + i as u64);
        let x = sign(uniform(&mut r, s.x_len(), -1.0, 1.0));
        let wt = sign(uniform(&mut r, s.w_len(), -1.0, 1.0));
        let bias = uniform(&mut r, s.cout, -0.7, 0.7);
        let (xb, wb, bb) = (upload(b, &x), upload(b, &wt), upload(b, &bias));
        let (y_binary, y_float) = (zeros(b, s.y_len()), zeros(b, s.y_len()));
        b.conv_forward_binary(s, xb, wb, bb, y_binary);
        b.conv_forward(s, xb, wb, bb, y_float);
        assert_eq!(bits(&read(b, y_binary)), bits(&read(b, y_float)), "{s:?}");
    }
}

#[test]
fn winograd_convolution_is_exact_on_quantized_values() {
    // Winograd's transforms only add, subtract and halve, so on quantized values (4-bit levels
    // k/8, their products k/64) every step is exact and so is the result: equal to the f64
    // textbook sum bit for bit (that sum is exact too: at most a few thousand sixty-fourths),
    // for the forward pass, the input gradient and the weight gradient alike.
    let levels = |r: &mut _, n: usize, lo: i32| -> Vec<f32> {
        uniform(r, n, lo as f32, 9.0)
            .into_iter()
            .map(|v| v.floor() / 8.0)
            .collect()
    };
    for (i, (batch, cin, cout, h, w)) in [(2, 32, 24, 16, 15), (3, 16, 16, 13, 12)]
        .into_iter()
        .enumerate()
    {
        let s = ConvShape {
            batch,
            cin,
            cout,
            h,
            w,
            ..ConvShape::SAME_3X3
        };
        let mut r = rng(90 + i as u64);
        let x = levels(&mut r, s.x_len(), 0);
        let wt = levels(&mut r, s.w_len(), -8);
        let bias = levels(&mut r, cout, -8);
        let dy = levels(&mut r, s.y_len(), -8);
        for (name, got, want) in cpu_and_direct(s, &x, &wt, &bias, &dy) {
            assert!(
                want.iter().any(|v| v.fract() != 0.0),
                "{name}: no fractions"
            );
            for (j, (g, w)) in got.iter().zip(want.iter()).enumerate() {
                assert_eq!(*g as f64, *w, "{s:?} {name}[{j}]");
            }
        }
    }
}

#[test]
fn dense_forward_and_gradients_match_cpu() {
    let shapes = [
        DenseShape {
            batch: 1,
            inputs: 9,
            outputs: 10,
        },
        DenseShape {
            batch: 65,
            inputs: 1024,
            outputs: 10,
        },
        DenseShape {
            batch: 16,
            inputs: 72,
            outputs: 10,
        },
    ];
    let Some(mut g) = gpu() else { return };
    let mut c = cpu();
    for (i, s) in shapes.into_iter().enumerate() {
        let mut r = rng(200 + i as u64);
        let x = uniform(&mut r, s.batch * s.inputs, -1.0, 1.0);
        let w = uniform(&mut r, s.outputs * s.inputs, -1.0, 1.0);
        let bias = uniform(&mut r, s.outputs, -1.0, 1.0);
        let dy = uniform(&mut r, s.batch * s.outputs, -1.0, 1.0);
        let got = run_dense(&mut g, s, &x, &w, &bias, &dy);
        let want = run_dense(&mut c, s, &x, &w, &bias, &dy);
        for (k, name) in ["forward", "grad input", "grad weight", "grad bias"]
            .iter()
            .enumerate()
        {
            assert_close(
                &format!("dense {name} {s:?}"),
                &got[k],
                &want[k],
                MATMUL_TOL,
            );
        }
    }
}

/// A batch norm over `s` with γ, β = `params` and batch, running statistics = `stats`.
fn batch_norm(s: ChannelShape, [gamma, beta]: [Buf; 2], [batch, running]: [Buf; 2]) -> BatchNorm {
    BatchNorm {
        shape: s,
        params: BnParams { gamma, beta },
        stats: BnStats { batch, running },
    }
}

fn grads(dgamma: Buf, dbeta: Buf) -> BnGrads {
    BnGrads { dgamma, dbeta }
}

fn bn_all<B: Backend>(
    b: &mut B,
    s: ChannelShape,
    x: &[f32],
    gamma: &[f32],
    beta: &[f32],
    dy: &[f32],
    running: &[f32],
) -> [Vec<f32>; 8] {
    let (xb, gb, bb, dyb, rb) = (
        upload(b, x),
        upload(b, gamma),
        upload(b, beta),
        upload(b, dy),
        upload(b, running),
    );
    let (y, stats, ye) = (
        zeros(b, s.len()),
        zeros(b, 2 * s.channels),
        zeros(b, s.len()),
    );
    let (dx, dg, db) = (
        zeros(b, s.len()),
        zeros(b, s.channels),
        zeros(b, s.channels),
    );
    let bn = batch_norm(s, [gb, bb], [stats, rb]);
    b.bn_train(bn, xb, y);
    b.bn_eval(bn, xb, ye);
    b.bn_backward(bn, xb, dyb, dx, grads(dg, db));
    let sums = zeros(b, s.channels);
    b.channel_sum(s, dyb, sums);
    [
        read(b, y),
        read(b, stats),
        read(b, rb),
        read(b, ye),
        read(b, dx),
        read(b, dg),
        read(b, db),
        read(b, sums),
    ]
}

#[test]
fn batchnorm_train_eval_backward_match_cpu() {
    let shapes = [
        ChannelShape {
            batch: 1,
            channels: 3,
            hw: 25,
        },
        ChannelShape {
            batch: 65,
            channels: 7,
            hw: 49,
        },
        ChannelShape {
            batch: 16,
            channels: 10,
            hw: 1,
        },
        ChannelShape {
            batch: 8,
            channels: 64,
            hw: 256,
        },
        // more than 4096 values per channel: the reductions split each channel into chunks
        // (here 4, the last one shorter) and merge them
        ChannelShape {
            batch: 33,
            channels: 5,
            hw: 401,
        },
    ];
    let Some(mut g) = gpu() else { return };
    let mut c = cpu();
    for (i, s) in shapes.into_iter().enumerate() {
        let mut r = rng(300 + i as u64);
        // an offset and a spread per tensor, like conv outputs
        let x: Vec<f32> = uniform(&mut r, s.len(), -3.0, 5.0);
        let gamma = uniform(&mut r, s.channels, 0.5, 1.5);
        let beta = uniform(&mut r, s.channels, -0.5, 0.5);
        let dy = uniform(&mut r, s.len(), -1.0, 1.0);
        let mut running = uniform(&mut r, s.channels, -0.1, 0.1);
        running.extend(uniform(&mut r, s.channels, 0.5, 2.0));
        let got = bn_all(&mut g, s, &x, &gamma, &beta, &dy, &running);
        let want = bn_all(&mut c, s, &x, &gamma, &beta, &dy, &running);
        let names = [
            "train y",
            "batch stats",
            "running stats",
            "eval y",
            "dx",
            "dgamma",
            "dbeta",
            "channel sum",
        ];
        for (k, name) in names.iter().enumerate() {
            assert_close(
                &format!("batchnorm {name} {s:?}"),
                &got[k],
                &want[k],
                MATMUL_TOL,
            );
        }
    }
}

#[test]
fn maxpool_matches_cpu_with_ties_and_odd_sizes() {
    let Some(mut g) = gpu() else { return };
    let mut c = cpu();
    for (i, s) in [
        PoolShape {
            planes: 3,
            h: 7,
            w: 7,
        },
        PoolShape {
            planes: 130,
            h: 5,
            w: 6,
        },
        PoolShape {
            planes: 64,
            h: 32,
            w: 32,
        },
    ]
    .into_iter()
    .enumerate()
    {
        let mut r = rng(400 + i as u64);
        // quantized-looking inputs: few levels, many ties
        let x: Vec<f32> = uniform(&mut r, s.x_len(), 0.0, 4.0)
            .iter()
            .map(|v| v.floor() / 4.0)
            .collect();
        let dy = uniform(&mut r, s.y_len(), -1.0, 1.0);
        let got = run_pool(&mut g, s, &x, &dy);
        let want = run_pool(&mut c, s, &x, &dy);
        assert_eq!(got[0], want[0], "pool forward {s:?}");
        assert_eq!(got[1], want[1], "pool backward {s:?}");
        // each window sends its gradient to exactly one input; dropped rows/cols get none
        let nonzero = want[1].iter().filter(|v| **v != 0.0).count();
        assert_eq!(nonzero, dy.iter().filter(|v| **v != 0.0).count());
    }
}

/// The global average pool and its backward on the GPU equal the CPU's bit for bit: both sum
/// each plane in pixel order in f32 and multiply by the same f32 1/(h·w). Odd h·w (3×5, 11×13),
/// 1×1, a one-row plane, more planes than a workgroup has threads.
#[test]
fn global_pool_matches_cpu_exactly() {
    let shapes = [(7, 3, 5), (4, 1, 1), (5, 11, 13), (2, 1, 7), (300, 8, 8)];
    let Some(mut g) = gpu() else { return };
    let mut c = cpu();
    let bits = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
    for (i, (planes, h, w)) in shapes.into_iter().enumerate() {
        let p = PoolShape { planes, h, w };
        let mut r = rng(450 + i as u64);
        let x = uniform(&mut r, p.x_len(), -1.0, 1.0);
        let dy = uniform(&mut r, planes, -1.0, 1.0);
        let got = global_pool_all(&mut g, p, &x, &dy);
        let want = global_pool_all(&mut c, p, &x, &dy);
        for (k, name) in ["forward", "backward"].iter().enumerate() {
            assert_eq!(bits(&got[k]), bits(&want[k]), "global pool {name} {p:?}");
        }
    }
}

/// [y, dx] of the global average pool.
fn global_pool_all<B: Backend>(b: &mut B, p: PoolShape, x: &[f32], dy: &[f32]) -> [Vec<f32>; 2] {
    let (xb, dyb) = (upload(b, x), upload(b, dy));
    let (y, dx) = (zeros(b, p.planes), zeros(b, p.x_len()));
    b.global_pool_forward(p, xb, y);
    b.global_pool_backward(p, dyb, dx);
    [read(b, y), read(b, dx)]
}

#[test]
fn activations_match_cpu_exactly() {
    let Some(mut g) = gpu() else { return };
    let mut c = cpu();
    let mut r = rng(500);
    let mut x = uniform(&mut r, 4099, -1.6, 1.6);
    // rounding ties of every width and the mask edges
    for k in -64..=64 {
        x.push(k as f32 / 64.0);
        x.push(k as f32 / 64.0 + 1.0 / 512.0);
    }
    x.extend([-1.0, 1.0, -1.0000001, 1.0000001, 0.0, -0.0]);
    let dy = uniform(&mut r, x.len(), -1.0, 1.0);
    for a in all_activations() {
        let got = run_act(&mut g, a, &x, &dy);
        let want = run_act(&mut c, a, &x, &dy);
        assert_eq!(got[0], want[0], "{a:?} forward");
        assert_eq!(got[1], want[1], "{a:?} backward");
    }
}

fn wq_all<B: Backend>(b: &mut B, q: WeightQuant, w: &[f32]) -> [Vec<f32>; 2] {
    let wb = upload(b, w);
    let (m, out) = (zeros(b, 1), zeros(b, w.len()));
    b.weight_quantize(q, wb, m, out);
    [read(b, m), read(b, out)]
}

#[test]
fn weight_quantizer_matches_cpu_exactly() {
    let Some(mut g) = gpu() else { return };
    let mut c = cpu();
    let qs = [
        WeightQuant::None,
        WeightQuant::Binary,
        WeightQuant::Bits { bits: 1, sym: true },
        WeightQuant::Bits {
            bits: 2,
            sym: false,
        },
        WeightQuant::Bits { bits: 4, sym: true },
        WeightQuant::Bits {
            bits: 4,
            sym: false,
        },
        WeightQuant::Bits { bits: 8, sym: true },
        WeightQuant::Bits {
            bits: 16,
            sym: false,
        },
    ];
    let mut r = rng(600);
    for (n, scale) in [(27usize, 1.0f32), (36_864, 0.3), (1, 0.01), (5000, 0.0)] {
        let w: Vec<f32> = uniform(&mut r, n, -1.0, 1.0)
            .iter()
            .map(|v| v * scale)
            .collect();
        for q in qs {
            let got = wq_all(&mut g, q, &w);
            let want = wq_all(&mut c, q, &w);
            assert_eq!(got, want, "{q:?} n={n} scale={scale}");
        }
    }
}

fn loss_all<B: Backend>(b: &mut B, s: LossShape, y: &[f32], labels: &[u32]) -> [Vec<f32>; 3] {
    let (yb, lb) = (upload(b, y), upload_u32(b, labels));
    let (dy, acc, acc_eval) = (
        zeros(b, y.len()),
        zeros(b, LossAcc::LEN),
        zeros(b, LossAcc::LEN),
    );
    b.loss(s, yb, lb, Some(dy), acc);
    b.loss(s, yb, lb, Some(dy), acc); // accumulates
    b.loss(s, yb, lb, None, acc_eval);
    [read(b, dy), read(b, acc), read(b, acc_eval)]
}

/// At 10 classes, and at 2, 37 and 1,000. The gradient is the same two or three f32 roundings
/// on both sides (1e-6); each row's sum of squares is summed in the same order on both, the
/// rows in another (the CPU in f64, the GPU's tree in f32: a few 2⁻²⁴ of the sum at 300 rows),
/// so the loss sums agree within 1e-5 at every class count; the error count exactly.
#[test]
fn loss_gradient_and_error_count_match_cpu() {
    let Some(mut g) = gpu() else { return };
    let mut c = cpu();
    for (classes, seed) in [(10usize, 700u64), (2, 720), (37, 740), (1000, 760)] {
        for (i, batch) in [1usize, 16, 65, 300].into_iter().enumerate() {
            let s = LossShape { batch, classes };
            let mut r = rng(seed + i as u64);
            let y = uniform(&mut r, batch * classes, -2.0, 2.0);
            let labels: Vec<u32> = (0..batch)
                .map(|_| r.random_range(0..classes as u32))
                .collect();
            let got = loss_all(&mut g, s, &y, &labels);
            let want = loss_all(&mut c, s, &y, &labels);
            assert_close(&format!("loss gradient {s:?}"), &got[0], &want[0], 1e-6);
            assert_close(&format!("loss sums {s:?}"), &got[1], &want[1], 1e-5);
            assert_eq!(got[1][1], want[1][1], "error count {s:?}");
            assert_eq!(got[2][1] * 2.0, got[1][1], "evaluation adds once {s:?}");
        }
    }
}

use rand::Rng;

fn update_all<B: Backend>(
    b: &mut B,
    rule: UpdateRule,
    sgd: bool,
    p: &[f32],
    g: &[f32],
    steps: usize,
) -> [Vec<f32>; 3] {
    let (pb, gb) = (upload(b, p), upload(b, g));
    let (m, v) = (zeros(b, p.len()), zeros(b, p.len()));
    let step = b.alloc(StepScalars::LEN, Dtype::F32);
    for t in 1..=steps {
        let s = if sgd {
            StepScalars::sgd(0.01, 0.9)
        } else {
            StepScalars::adam(0.003, t as u64, AdamConfig::default())
        };
        b.write_f32(step, &s.to_vec());
        let tensors = ParamTensors {
            value: pb,
            grad: gb,
            m,
            v,
        };
        if sgd {
            b.sgd(rule, tensors, step);
        } else {
            b.adam(rule, AdamConfig::default(), tensors, step);
        }
    }
    [read(b, pb), read(b, m), read(b, v)]
}

#[test]
fn optimizers_match_cpu() {
    let Some(mut gp) = gpu() else { return };
    let mut c = cpu();
    let mut r = rng(800);
    let p = uniform(&mut r, 1000, -1.0, 1.0);
    let g = uniform(&mut r, 1000, -0.1, 0.1);
    for rule in [UpdateRule::Plain, UpdateRule::ScaledClip { scale: 27.71 }] {
        for sgd in [false, true] {
            let got = update_all(&mut gp, rule, sgd, &p, &g, 3);
            let want = update_all(&mut c, rule, sgd, &p, &g, 3);
            for k in 0..3 {
                assert_close(
                    &format!("{rule:?} sgd={sgd} tensor {k}"),
                    &got[k],
                    &want[k],
                    1e-5,
                );
            }
            if let UpdateRule::ScaledClip { .. } = rule {
                assert!(
                    got[0].iter().all(|v| (-1.0..=1.0).contains(v)),
                    "clipped to [-1, 1]"
                );
            }
        }
    }
}

fn gather_all<B: Backend>(
    b: &mut B,
    pixels: &[u8],
    labels: &[u16],
    chw: (usize, usize, usize),
    idx: &[u32],
    shifts: &[Shift],
) -> (Vec<f32>, Vec<u32>) {
    let set = b.upload_images(pixels, labels, chw).unwrap();
    // a buffer as the model's: room for twice the batch, the shifts right after the indices
    let mut words = vec![u32::MAX; 2 * idx.len() + 3];
    words[..idx.len()].copy_from_slice(idx);
    for (k, s) in shifts.iter().enumerate() {
        words[idx.len() + k] = s.pack();
    }
    let ib = upload_u32(b, &words);
    let len = chw.0 * chw.1 * chw.2;
    let (x, l) = (zeros(b, idx.len() * len), b.alloc(idx.len(), Dtype::U32));
    let batch = BatchIndices {
        indices: ib,
        batch: idx.len(),
        shifted: !shifts.is_empty(),
    };
    b.gather_batch(&set, batch, x, l);
    (read(b, x), read_u32(b, l))
}

#[test]
fn batch_gather_scales_and_flips_like_cpu() {
    let Some(mut g) = gpu() else { return };
    let mut c = cpu();
    let mut r = rng(900);
    for chw in [(3usize, 5usize, 7usize), (1, 28, 28)] {
        let n = 37;
        let len = chw.0 * chw.1 * chw.2;
        let pixels: Vec<u8> = (0..n * len).map(|_| r.random()).collect();
        let labels: Vec<u16> = (0..n).map(|_| r.random_range(0..1000)).collect();
        let idx: Vec<u32> = (0..13).map(|_| r.random_range(0..2 * n as u32)).collect();
        let got = gather_all(&mut g, &pixels, &labels, chw, &idx, &[]);
        let want = gather_all(&mut c, &pixels, &labels, chw, &idx, &[]);
        assert_close("gathered pixels", &got.0, &want.0, 1e-6);
        assert_eq!(got.1, want.1, "labels");
        // spot-check the definition: first entry, first row
        let (img, flip) = if idx[0] as usize >= n {
            (idx[0] as usize - n, true)
        } else {
            (idx[0] as usize, false)
        };
        let src = if flip {
            pixels[img * len + chw.2 - 1]
        } else {
            pixels[img * len]
        };
        assert_eq!(want.0[0], src as f32 * 2.0 / 255.0 - 1.0);
    }
}

/// Random crops (zero padding) on flipped and plain images, at odd sizes and paddings up to
/// past the side: the GPU's batch is the CPU's bit for bit, and all-zero shifts give the
/// uncropped batch bit for bit on both.
#[test]
fn batch_gather_crops_like_cpu_bit_for_bit() {
    let Some(mut g) = gpu() else { return };
    let mut c = cpu();
    let mut r = rng(901);
    let bits = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
    for chw in [
        (3usize, 5usize, 7usize),
        (1, 28, 28),
        (2, 1, 9),
        (3, 32, 32),
    ] {
        let n = 23;
        let len = chw.0 * chw.1 * chw.2;
        let pixels: Vec<u8> = (0..n * len).map(|_| r.random()).collect();
        let labels: Vec<u16> = (0..n).map(|_| r.random_range(0..1000)).collect();
        let idx: Vec<u32> = (0..17).map(|_| r.random_range(0..2 * n as u32)).collect();
        let plain = gather_all(&mut c, &pixels, &labels, chw, &idx, &[]);
        let zero = vec![Shift::default(); idx.len()];
        for z in [
            gather_all(&mut c, &pixels, &labels, chw, &idx, &zero),
            gather_all(&mut g, &pixels, &labels, chw, &idx, &zero),
        ] {
            assert_eq!(bits(&z.0), bits(&plain.0), "{chw:?} zero shifts: pixels");
            assert_eq!(z.1, plain.1, "{chw:?} zero shifts: labels");
        }
        let side = chw.1.max(chw.2) as i32;
        for pad in [1, 4, side / 2, side] {
            let shifts: Vec<Shift> = (0..idx.len())
                .map(|_| Shift {
                    dy: r.random_range(-pad..=pad),
                    dx: r.random_range(-pad..=pad),
                })
                .collect();
            let got = gather_all(&mut g, &pixels, &labels, chw, &idx, &shifts);
            let want = gather_all(&mut c, &pixels, &labels, chw, &idx, &shifts);
            assert_eq!(bits(&got.0), bits(&want.0), "{chw:?} ±{pad}: pixels");
            assert_eq!(got.1, want.1, "{chw:?} ±{pad}: labels");
        }
    }
}

#[test]
fn same_inputs_give_identical_bits_run_after_run() {
    let s = ConvShape {
        batch: 16,
        cin: 8,
        cout: 8,
        h: 16,
        w: 16,
        ..ConvShape::SAME_3X3
    };
    let mut r = rng(1000);
    let x = uniform(&mut r, s.x_len(), -1.0, 1.0);
    let w = uniform(&mut r, s.w_len(), -1.0, 1.0);
    let bias = uniform(&mut r, 8, -1.0, 1.0);
    let dy = uniform(&mut r, s.y_len(), -1.0, 1.0);
    let Some(mut g) = gpu() else { return };
    let a = conv_all(&mut g, s, &x, &w, &bias, &dy);
    let b = conv_all(&mut g, s, &x, &w, &bias, &dy);
    assert_eq!(a, b);
}

/// Both backends fuse a conv layer's batch norm and its activation — the CPU into one pass
/// forward and two backward, the GPU into bn_apply and the batch norm backward's kernels
/// (shaders/batchnorm*.wgsl with `act`) — and recompute u = bn(z) instead of storing it: each
/// must give exactly what its own two separate ops give, bit for bit, for every activation,
/// at odd sizes (5 channels of 7×7, a 1×1 plane). On lavapipe for the GPU.
#[test]
fn fused_batchnorm_activation_equals_the_two_ops() {
    fused_equals_two_ops(&mut cpu(), "cpu");
    if let Some(mut g) = gpu() {
        fused_equals_two_ops(&mut g, "gpu");
    }
}

fn fused_equals_two_ops<B: Backend>(b: &mut B, dev: &str) {
    let shapes = [
        ChannelShape {
            batch: 3,
            channels: 5,
            hw: 49,
        },
        ChannelShape {
            batch: 8,
            channels: 16,
            hw: 256,
        },
        ChannelShape {
            batch: 2,
            channels: 3,
            hw: 1,
        },
    ];
    for (i, s) in shapes.into_iter().enumerate() {
        let mut r = rng(900 + i as u64);
        let z = uniform(&mut r, s.len(), -3.0, 3.0);
        let gamma = uniform(&mut r, s.channels, 0.5, 1.5);
        let beta = uniform(&mut r, s.channels, -0.5, 0.5);
        let da = uniform(&mut r, s.len(), -1.0, 1.0);
        let mut running = uniform(&mut r, s.channels, -0.1, 0.1);
        running.extend(uniform(&mut r, s.channels, 0.5, 2.0));
        for act in all_activations() {
            let mut results = Vec::new();
            for fused in [true, false] {
                let (zb, gb, bb, dab, rb) = (
                    upload(b, &z),
                    upload(b, &gamma),
                    upload(b, &beta),
                    upload(b, &da),
                    upload(b, &running),
                );
                let (u, a, ae, stats) = (
                    zeros(b, s.len()),
                    zeros(b, s.len()),
                    zeros(b, s.len()),
                    zeros(b, 2 * s.channels),
                );
                let (du, dz, dg, db) = (
                    zeros(b, s.len()),
                    zeros(b, s.len()),
                    zeros(b, s.channels),
                    zeros(b, s.channels),
                );
                let bn = batch_norm(s, [gb, bb], [stats, rb]);
                let l = BnAct { bn, act };
                let g = BnActGrads {
                    da: dab,
                    du,
                    dz,
                    params: grads(dg, db),
                };
                if fused {
                    b.bn_act_train(l, BnActTensors { z: zb, u, a });
                    b.bn_act_eval(l, BnActTensors { z: zb, u, a: ae });
                    b.act_bn_backward(l, BnActTensors { z: zb, u, a }, g);
                } else {
                    b.bn_train(bn, zb, u);
                    b.act_forward(act, s.len(), u, a);
                    b.act_backward(act, s.len(), u, dab, du);
                    b.bn_backward(bn, zb, du, dz, grads(dg, db));
                    b.bn_eval(bn, zb, u);
                    b.act_forward(act, s.len(), u, ae);
                }
                results.push([a, ae, stats, rb, dz, dg, db].map(|buf| read(b, buf)));
            }
            let names = ["a", "eval a", "stats", "running", "dz", "dgamma", "dbeta"];
            for (k, name) in names.iter().enumerate() {
                assert_eq!(results[0][k], results[1][k], "{dev} {act:?} {s:?} {name}");
            }
        }
    }
}

/// The CPU backend's binary convolution (XNOR-popcount on packed bits) against its float path,
/// bit for bit: channel counts around the 64-bit words (1, 63, 64, 65, 130, 257), images down
/// to 1×1 (every tap in the padding), all +1 and all −1 (the largest sums), random biases;
/// inputs that are not all ±1 (a NaN, a 0) and weights that are not take the float path.
#[test]
fn binary_convolution_is_exactly_the_float_one() {
    let shapes = [
        (2, 1, 3, 1, 1),
        (3, 63, 5, 5, 7),
        (2, 64, 4, 8, 8),
        (2, 65, 3, 3, 5),
        (1, 130, 2, 4, 4),
        (1, 257, 2, 2, 3),
        (2, 32, 16, 12, 14), // the float path by Winograd
    ];
    let bits = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
    for (i, (batch, cin, cout, h, w)) in shapes.into_iter().enumerate() {
        let s = ConvShape {
            batch,
            cin,
            cout,
            h,
            w,
            ..ConvShape::SAME_3X3
        };
        let mut r = rng(1000 + i as u64);
        let sign = |r: &mut rand::rngs::SmallRng, n: usize| -> Vec<f32> {
            uniform(r, n, -1.0, 1.0)
                .into_iter()
                .map(|v| if v < 0.0 { -1.0 } else { 1.0 })
                .collect()
        };
        let mut cases = vec![
            (sign(&mut r, s.x_len()), sign(&mut r, s.w_len())),
            (vec![1.0; s.x_len()], vec![1.0; s.w_len()]),
            (vec![-1.0; s.x_len()], vec![1.0; s.w_len()]),
        ];
        // not binary: a NaN and a zero in the last image's input; a weight of 0.5
        let mut odd = sign(&mut r, s.x_len());
        let last = s.x_len() - 1;
        odd[last] = f32::NAN;
        odd[last / 2 + (batch - 1) * cin * h * w / 2] = 0.0;
        cases.push((odd, sign(&mut r, s.w_len())));
        let mut half = sign(&mut r, s.w_len());
        half[0] = 0.5;
        cases.push((sign(&mut r, s.x_len()), half));
        let bias = uniform(&mut r, cout, -0.7, 0.7);
        for (k, (x, wt)) in cases.iter().enumerate() {
            let mut out = Vec::new();
            for binary in [true, false] {
                let b = &mut cpu();
                let (xb, wb, bb, y) = (
                    upload(b, x),
                    upload(b, wt),
                    upload(b, &bias),
                    zeros(b, s.y_len()),
                );
                if binary {
                    b.conv_forward_binary(s, xb, wb, bb, y);
                } else {
                    b.conv_forward(s, xb, wb, bb, y);
                }
                out.push(read(b, y));
            }
            assert_eq!(bits(&out[0]), bits(&out[1]), "{s:?} case {k}");
        }
    }
}

/// Batch norm + activation + 2×2 pool in one pass — the CPU's, and the GPU's `bn_apply_pool`
/// (and their backwards, which route the pooled gradient into dz through a byte per window and
/// mask it there) — against each backend's separate ops, bit for bit: odd sizes (the last row
/// and column outside every window), a 1-pixel-wide image (nothing to pool), every activation;
/// quantized activations give many ties inside a window. On lavapipe for the GPU.
#[test]
fn fused_batchnorm_activation_pool_equals_the_separate_ops() {
    fused_pool_equals_separate_ops(&mut cpu(), "cpu");
    if let Some(mut g) = gpu() {
        fused_pool_equals_separate_ops(&mut g, "gpu");
    }
}

fn fused_pool_equals_separate_ops<B: Backend>(b: &mut B, dev: &str) {
    for (i, (batch, channels, h, w)) in [(3, 5, 7, 7), (2, 4, 5, 6), (8, 16, 16, 16), (2, 3, 1, 5)]
        .into_iter()
        .enumerate()
    {
        let s = ChannelShape {
            batch,
            channels,
            hw: h * w,
        };
        let p = PoolShape {
            planes: batch * channels,
            h,
            w,
        };
        let mut r = rng(950 + i as u64);
        let z = uniform(&mut r, s.len(), -3.0, 3.0);
        let gamma = uniform(&mut r, channels, 0.5, 1.5);
        let beta = uniform(&mut r, channels, -0.5, 0.5);
        let dpooled = uniform(&mut r, p.y_len().max(1), -1.0, 1.0);
        let mut running = uniform(&mut r, channels, -0.1, 0.1);
        running.extend(uniform(&mut r, channels, 0.5, 2.0));
        for act in all_activations() {
            let mut results = Vec::new();
            for fused in [true, false] {
                let (zb, gb, bb, dpb, rb) = (
                    upload(b, &z),
                    upload(b, &gamma),
                    upload(b, &beta),
                    upload(b, &dpooled),
                    upload(b, &running),
                );
                let [u, a, da, du, dz] = [(); 5].map(|_| zeros(b, s.len()));
                let (pooled, stats) = (zeros(b, p.y_len().max(1)), zeros(b, 2 * channels));
                let window = b.alloc(p.y_len().div_ceil(4).max(1), Dtype::U32);
                let [dg, db, dbias] = [(); 3].map(|_| zeros(b, channels));
                let l = BnAct {
                    bn: batch_norm(s, [gb, bb], [stats, rb]),
                    act,
                };
                let t = BnActTensors { z: zb, u, a };
                let g = BnActGrads {
                    da,
                    du,
                    dz,
                    params: grads(dg, db),
                };
                if fused {
                    let pool = Pooled {
                        shape: p,
                        out: pooled,
                        window,
                    };
                    b.bn_act_pool_train(l, t, pool);
                    b.pool_act_bn_backward(l, t, pool, dpb, g, dbias);
                } else {
                    b.bn_act_train(l, t);
                    b.pool_forward(p, a, pooled);
                    b.pool_backward(p, a, dpb, da);
                    b.act_bn_backward(l, t, g);
                    b.channel_sum(s, dz, dbias);
                }
                // the fused op leaves a unwritten (the window maxima stand in for it) except
                // where nothing is pooled
                let outs = [pooled, stats, rb, dz, dg, db, dbias];
                let mut got = outs.map(|buf| read(b, buf)).to_vec();
                if p.y_len() == 0 {
                    got.push(read(b, a));
                }
                results.push(got);
            }
            let names = [
                "pooled", "stats", "running", "dz", "dgamma", "dbeta", "dbias", "a",
            ];
            for (k, name) in names.iter().enumerate().take(results[0].len()) {
                let (f, sep) = (&results[0][k], &results[1][k]);
                assert!(
                    f.iter().zip(sep).all(|(x, y)| x.to_bits() == y.to_bits()),
                    "{dev} {act:?} {s:?} {name}: {f:?} vs {sep:?}"
                );
            }
        }
    }
}
