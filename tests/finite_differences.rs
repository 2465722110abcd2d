//! The CPU float ops' backward passes against central finite differences of their forward
//! passes. Each check picks coordinates at random and compares ∂L/∂θ for L = Σ r·f(θ), r random.
//! Tolerance: 1e-2 relative (f32 forward passes, step 1e-2 for linear ops, 1e-3 elsewhere).

mod common;
use common::*;
use qnn::backend::*;
use qnn::ops;
use rand::Rng;

fn dot(a: &[f32], b: &[f32]) -> f64 {
    a.iter().zip(b).map(|(x, y)| *x as f64 * *y as f64).sum()
}

/// Compares `grad` with the central difference of `loss` at `n_checks` random coordinates of `theta`.
fn check(name: &str, theta: &[f32], grad: &[f32], eps: f32, loss: impl Fn(&[f32]) -> f64) {
    let mut r = rng(name.len() as u64);
    let scale = grad.iter().fold(1e-3f32, |m, v| m.max(v.abs())) as f64;
    for _ in 0..24 {
        let i = r.random_range(0..theta.len());
        let mut t = theta.to_vec();
        t[i] = theta[i] + eps;
        let up = loss(&t);
        t[i] = theta[i] - eps;
        let down = loss(&t);
        let fd = (up - down) / (2.0 * eps as f64);
        let err = (fd - grad[i] as f64).abs() / scale;
        assert!(
            err < 1e-2,
            "{name}[{i}]: analytic {} vs finite difference {fd} (rel {err:.2e})",
            grad[i]
        );
    }
}

#[test]
fn conv_gradients() {
    let s = ConvShape {
        batch: 2,
        cin: 3,
        cout: 4,
        h: 5,
        w: 7,
        ..ConvShape::SAME_3X3
    };
    let mut r = rng(1);
    let (x, w, b) = (
        uniform(&mut r, s.x_len(), -1.0, 1.0),
        uniform(&mut r, s.w_len(), -1.0, 1.0),
        uniform(&mut r, 4, -1.0, 1.0),
    );
    let rr = uniform(&mut r, s.y_len(), -1.0, 1.0);
    let fwd = |x: &[f32], w: &[f32], b: &[f32]| {
        let mut y = vec![0.0; s.y_len()];
        ops::conv::forward(s, x, w, b, &mut y);
        dot(&y, &rr)
    };
    let (mut dx, mut dw, mut db) = (vec![0.0; s.x_len()], vec![0.0; s.w_len()], vec![0.0; 4]);
    ops::conv::grad_input(s, &rr, &w, &mut dx);
    ops::conv::grad_weight(s, &rr, &x, &mut dw);
    ops::batchnorm::channel_sum(
        ChannelShape {
            batch: 2,
            channels: 4,
            hw: 35,
        },
        &rr,
        &mut db,
    );
    check("conv dx", &x, &dx, 1e-2, |t| fwd(t, &w, &b));
    check("conv dw", &w, &dw, 1e-2, |t| fwd(&x, t, &b));
    check("conv db", &b, &db, 1e-2, |t| fwd(&x, &w, t));
}

/// The input, weight and bias gradients of strided and "valid" convolutions (the CPU's general
/// im2col / col2im path): 3×3 stride 2 "same" on an odd 7×9 image, 5×5 "valid", 1×1 stride 2
/// (input pixels no output reads: gradient 0), against central differences within 1e-2.
#[test]
fn conv_gradients_of_other_geometries() {
    for (i, (kernel, stride, pad)) in [(3, 2, 1), (5, 1, 0), (1, 2, 0)].into_iter().enumerate() {
        let s = ConvShape {
            batch: 2,
            cin: 3,
            cout: 4,
            h: 7,
            w: 9,
            kernel,
            stride,
            pad,
        };
        let mut r = rng(10 + i as u64);
        let (x, w, b) = (
            uniform(&mut r, s.x_len(), -1.0, 1.0),
            uniform(&mut r, s.w_len(), -1.0, 1.0),
            uniform(&mut r, 4, -1.0, 1.0),
        );
        let rr = uniform(&mut r, s.y_len(), -1.0, 1.0);
        let fwd = |x: &[f32], w: &[f32], b: &[f32]| {
            let mut y = vec![0.0; s.y_len()];
            ops::conv::forward(s, x, w, b, &mut y);
            dot(&y, &rr)
        };
        let (mut dx, mut dw, mut db) = (vec![0.0; s.x_len()], vec![0.0; s.w_len()], vec![0.0; 4]);
        ops::conv::grad_input(s, &rr, &w, &mut dx);
        ops::conv::grad_weight(s, &rr, &x, &mut dw);
        let cs = ChannelShape {
            batch: 2,
            channels: 4,
            hw: s.out_h() * s.out_w(),
        };
        ops::batchnorm::channel_sum(cs, &rr, &mut db);
        let name = |t: &str| format!("conv {kernel}×{kernel} stride {stride} pad {pad} {t}");
        check(&name("dx"), &x, &dx, 1e-2, |t| fwd(t, &w, &b));
        check(&name("dw"), &w, &dw, 1e-2, |t| fwd(&x, t, &b));
        check(&name("db"), &b, &db, 1e-2, |t| fwd(&x, &w, t));
    }
}

#[test]
fn dense_gradients() {
    let s = DenseShape {
        batch: 3,
        inputs: 13,
        outputs: 10,
    };
    let mut r = rng(2);
    let (x, w, b) = (
        uniform(&mut r, 39, -1.0, 1.0),
        uniform(&mut r, 130, -1.0, 1.0),
        uniform(&mut r, 10, -1.0, 1.0),
    );
    let rr = uniform(&mut r, 30, -1.0, 1.0);
    let fwd = |x: &[f32], w: &[f32], b: &[f32]| {
        let mut y = vec![0.0; 30];
        ops::dense::forward(s, x, w, b, &mut y);
        dot(&y, &rr)
    };
    let (mut dx, mut dw, mut db) = (vec![0.0; 39], vec![0.0; 130], vec![0.0; 10]);
    ops::dense::grad_input(s, &rr, &w, &mut dx);
    ops::dense::grad_weight(s, &rr, &x, &mut dw);
    ops::batchnorm::channel_sum(
        ChannelShape {
            batch: 3,
            channels: 10,
            hw: 1,
        },
        &rr,
        &mut db,
    );
    check("dense dx", &x, &dx, 1e-2, |t| fwd(t, &w, &b));
    check("dense dw", &w, &dw, 1e-2, |t| fwd(&x, t, &b));
    check("dense db", &b, &db, 1e-2, |t| fwd(&x, &w, t));
}

#[test]
fn batchnorm_gradients() {
    let s = ChannelShape {
        batch: 4,
        channels: 3,
        hw: 6,
    };
    let mut r = rng(3);
    let x = uniform(&mut r, s.len(), -2.0, 3.0);
    let (gamma, beta) = (uniform(&mut r, 3, 0.5, 1.5), uniform(&mut r, 3, -0.5, 0.5));
    let rr = uniform(&mut r, s.len(), -1.0, 1.0);
    let fwd = |x: &[f32], g: &[f32], b: &[f32]| {
        let (mut y, mut st, mut run) = (vec![0.0; s.len()], vec![0.0; 6], vec![0.0; 6]);
        ops::batchnorm::train(s, None, x, g, b, &mut y, &mut st, &mut run);
        dot(&y, &rr)
    };
    let (mut y, mut st, mut run) = (vec![0.0; s.len()], vec![0.0; 6], vec![0.0; 6]);
    ops::batchnorm::train(s, None, &x, &gamma, &beta, &mut y, &mut st, &mut run);
    let (mut dx, mut dg, mut db) = (vec![0.0; s.len()], vec![0.0; 3], vec![0.0; 3]);
    ops::batchnorm::backward(
        s,
        None,
        &rr,
        &x,
        &gamma,
        &[],
        &st,
        &mut dx,
        &mut dg,
        &mut db,
    );
    check("bn dx", &x, &dx, 1e-3, |t| fwd(t, &gamma, &beta));
    check("bn dgamma", &gamma, &dg, 1e-3, |t| fwd(&x, t, &beta));
    check("bn dbeta", &beta, &db, 1e-3, |t| fwd(&x, &gamma, t));
}

#[test]
fn maxpool_gradient() {
    let s = PoolShape {
        planes: 3,
        h: 5,
        w: 7,
    };
    let mut r = rng(4);
    let x = uniform(&mut r, s.x_len(), -1.0, 1.0); // continuous: no ties
    let rr = uniform(&mut r, s.y_len(), -1.0, 1.0);
    let fwd = |x: &[f32]| {
        let mut y = vec![0.0; s.y_len()];
        ops::pool::forward(s, x, &mut y);
        dot(&y, &rr)
    };
    let mut dx = vec![0.0; s.x_len()];
    ops::pool::backward(s, &x, &rr, &mut dx);
    check("pool dx", &x, &dx, 1e-4, fwd);
}

/// The global average pool's gradient (dy/(h·w) at every pixel) against central differences,
/// on an odd 3×5 plane and a 1×1 one.
#[test]
fn global_pool_gradient() {
    for (planes, h, w) in [(3, 3, 5), (2, 1, 1)] {
        let s = PoolShape { planes, h, w };
        let mut r = rng(6);
        let x = uniform(&mut r, s.x_len(), -1.0, 1.0);
        let rr = uniform(&mut r, planes, -1.0, 1.0);
        let fwd = |x: &[f32]| {
            let mut y = vec![0.0; planes];
            ops::pool::global_forward(s, x, &mut y);
            dot(&y, &rr)
        };
        let mut dx = vec![0.0; s.x_len()];
        ops::pool::global_backward(s, &rr, &mut dx);
        check(&format!("global pool {h}×{w} dx"), &x, &dx, 1e-2, fwd);
    }
}

#[test]
fn squared_hinge_gradient() {
    let batch = 5;
    for (classes, seed) in [(DEFAULT_CLASSES, 5), (2, 6), (37, 7)] {
        let s = LossShape { batch, classes };
        let mut r = rng(seed);
        let y = uniform(&mut r, batch * classes, -2.0, 2.0);
        let labels: Vec<u32> = (0..batch)
            .map(|_| r.random_range(0..classes as u32))
            .collect();
        let loss = |y: &[f32]| {
            let mut acc = [0.0f32; qnn::backend::LossAcc::LEN];
            ops::loss::squared_hinge(s, y, &labels, None, &mut acc);
            acc[0] as f64 / batch as f64 // the batch mean, whose gradient dy is
        };
        let mut dy = vec![0.0; y.len()];
        let mut acc = [0.0f32; qnn::backend::LossAcc::LEN];
        ops::loss::squared_hinge(s, &y, &labels, Some(&mut dy), &mut acc);
        check(&format!("hinge dy, {classes} classes"), &y, &dy, 1e-3, loss);
    }
}
