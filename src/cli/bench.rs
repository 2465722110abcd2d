//! `qnn bench ops` and `qnn bench train`: the seed's CIFAR-10 example shapes (batch 64;
//! 3→64 and 64→64 convs at 32×32, 16×16, 8×8; dense 1024→10), per backend, side by side in
//! one run. Where the backend can time kernels (the GPU with timestamp queries), each op also
//! gets its GPU time, and a training step its share per kernel family.

use std::time::Instant;

use anyhow::Result;
use qnn::backend::*;
use qnn::model::{Model, NetConfig, Update};
use qnn::quant::{ActQuant, Nonlinearity, WeightQuant};
use qnn::Backend;
use serde::Serialize;

use super::args::{BenchArgs, BenchWhat, DeviceChoice, NetArgs};
use super::dataset_kind;
use super::train_cmd::net_config;
use super::{open_device, AnyBackend};
use crate::with_backend;

const BATCH: usize = 64;

#[derive(Serialize)]
struct OpRow {
    backend: String,
    op: String,
    shape: String,
    /// Wall time per call (recording, submit and the device's work).
    ms_per_call: f64,
    /// The kernels' own time per step: GPU timestamps, or each op's wall time on the CPU.
    kernel_ms_per_call: Option<f64>,
    /// GFLOP/s for matrix ops, GB/s (bytes read + written) for element-wise ops; from the
    /// kernel time when there is one, else from the wall time.
    rate: f64,
    unit: &'static str,
}

/// One kernel family's part of a training step (GPU timestamps or CPU wall time).
#[derive(Serialize)]
struct FamilyShare {
    family: &'static str,
    ms_per_step: f64,
    share: f64,
    /// For the convolution families: the rate their kernels reached.
    gflops: Option<f64>,
}

/// FLOPs per training step of each convolution pass: forward and weight gradient for every
/// layer, input gradient for all but the first (the image needs none).
fn conv_flops(config: &NetConfig, batch: usize) -> [(&'static str, f64); 3] {
    let layers = config.conv_layers();
    let flops = |l: &qnn::model::ConvLayer| 2.0 * (batch * l.cout * l.cin * 9 * l.h * l.w) as f64;
    let all: f64 = layers.iter().map(flops).sum();
    let first = layers.first().map_or(0.0, flops);
    [
        (Family::ConvForward.label(), all),
        (Family::ConvGradInput.label(), all - first),
        (Family::ConvGradWeight.label(), all),
    ]
}

#[derive(Serialize)]
struct StepCounts {
    backend: String,
    dispatches_per_step: u64,
    submits_per_step: u64,
}

#[derive(Serialize)]
struct TrainRow {
    backend: String,
    device: String,
    network: String,
    batch: usize,
    images_per_second: f64,
    ms_per_step: f64,
    steps_timed: usize,
    dispatches_per_step: u64,
    submits_per_step: u64,
    /// Sum of the kernels' GPU times per step (timestamps), where available.
    kernel_ms_per_step: Option<f64>,
    families: Vec<FamilyShare>,
}

/// The seed's CIFAR-10 example network: 1-64 ×3, 4-bit relu.
pub fn seed_network() -> NetConfig {
    NetConfig {
        input: [3, 32, 32],
        classes: qnn::backend::DEFAULT_CLASSES,
        blocks: [(1, 64), (1, 64), (1, 64)],
        quantized: true,
        bits: 4,
        nonlinearity: Nonlinearity::Relu,
        sym: false,
        net: None,
    }
}

/// The network the flags describe, on the input shape of `--dataset` (CIFAR-10's by default).
fn bench_network(n: &NetArgs) -> Result<NetConfig> {
    let kind = dataset_kind(&n.dataset)?;
    net_config(n, kind.chw(), kind.classes())
}

/// "1-64 ×3" for equal blocks, else "1-64 / 2-128 / 3-128", with the bits.
fn network_label(c: &NetConfig) -> String {
    let [a, b, d] = c.blocks;
    let blocks = if a == b && b == d {
        format!("{}-{} ×3", a.0, a.1)
    } else {
        format!("{}-{} / {}-{} / {}-{}", a.0, a.1, b.0, b.1, d.0, d.1)
    };
    if c.quantized {
        format!("{blocks}, {}-bit {}", c.bits, c.nonlinearity.name())
    } else {
        format!("{blocks}, float {}", c.nonlinearity.name())
    }
}

fn backends(choice: Option<DeviceChoice>) -> Result<Vec<AnyBackend>> {
    Ok(match choice {
        Some(c) => vec![open_device(c)?],
        None => {
            let mut v = vec![AnyBackend::Cpu(qnn::CpuBackend::new())];
            match open_device(DeviceChoice::Gpu) {
                Ok(g) => v.push(g),
                Err(e) => eprintln!("bench: no GPU backend ({e:#}); measuring the CPU only"),
            }
            v
        }
    })
}

pub fn bench(args: BenchArgs) -> Result<()> {
    let mut devs = backends(args.device)?;
    match args.what {
        BenchWhat::Ops => {
            let mut rows = Vec::new();
            let mut counts = Vec::new();
            for dev in &mut devs {
                with_backend!(dev, |b| {
                    eprintln!("bench ops on {}", b.describe());
                    rows.extend(bench_ops(b, args.reps.max(1))?);
                    counts.push(step_counts(b)?);
                });
            }
            if args.json {
                println!(
                    "{}",
                    serde_json::json!({"ops": rows, "training_step": counts})
                );
            } else {
                println!(
                    "{:<10} {:<26} {:<22} {:>10} {:>10} {:>12}",
                    "backend", "op", "shape (batch 64)", "ms/call", "kernel ms", "rate"
                );
                for r in &rows {
                    let k = r
                        .kernel_ms_per_call
                        .map_or("-".to_string(), |k| format!("{k:.4}"));
                    println!(
                        "{:<10} {:<26} {:<22} {:>10.3} {:>10} {:>8.2} {}",
                        r.backend, r.op, r.shape, r.ms_per_call, k, r.rate, r.unit
                    );
                }
                for c in &counts {
                    println!("{}: one training step of the seed's CIFAR-10 network = {} dispatches, {} queue submits", c.backend, c.dispatches_per_step, c.submits_per_step);
                }
            }
        }
        BenchWhat::Train => {
            let config = bench_network(&args.net)?;
            if args.batch_size == 0 {
                anyhow::bail!("--batch-size 0: use at least 1");
            }
            let mut rows = Vec::new();
            for dev in &mut devs {
                with_backend!(dev, |b| {
                    eprintln!("bench train on {}", b.describe());
                    rows.push(bench_train(b, &config, args.batch_size, args.seconds)?);
                });
            }
            if args.json {
                println!("{}", serde_json::to_string(&rows)?);
            } else {
                println!(
                    "{} (CIFAR-10 shape), batch {}, generated data:",
                    network_label(&config),
                    args.batch_size
                );
                for r in &rows {
                    println!(
                        "{:<10} {:>9.1} images/s  {:>9.2} ms/step  ({} steps timed; {} dispatches, {} submits per step)",
                        r.backend, r.images_per_second, r.ms_per_step, r.steps_timed, r.dispatches_per_step, r.submits_per_step
                    );
                    if let Some(k) = r.kernel_ms_per_step {
                        let how = if r.backend == "cpu" {
                            "wall time of each op"
                        } else {
                            "GPU timestamps"
                        };
                        println!("           kernels: {k:.3} ms per step ({how}); by family:");
                        for f in &r.families {
                            let rate = f
                                .gflops
                                .map_or(String::new(), |g| format!("  {g:.1} GFLOP/s"));
                            println!(
                                "             {:<18} {:>8.3} ms {:>6.1}%{rate}",
                                f.family,
                                f.ms_per_step,
                                100.0 * f.share
                            );
                        }
                    }
                }
            }
        }
    }
    Ok(())
}

fn short_name<B: Backend>(b: &B) -> String {
    if b.is_gpu() {
        "gpu".into()
    } else {
        "cpu".into()
    }
}

fn random_buf<B: Backend>(b: &mut B, n: usize, seed: u32) -> Buf {
    // cheap deterministic values in [-1, 1)
    let data: Vec<f32> = (0..n as u32)
        .map(|i| {
            ((i.wrapping_mul(2654435761).wrapping_add(seed) >> 8) as f32 / (1u32 << 24) as f32)
                * 2.0
                - 1.0
        })
        .collect();
    let buf = b.alloc(n, Dtype::F32);
    b.write_f32(buf, &data);
    buf
}

/// (wall seconds, kernel seconds where timed) per call of `op`: one warm-up call, then `reps`
/// calls recorded back to back and one read-back to wait for them; then, where the backend can
/// time kernels, `reps` more calls with timestamps.
fn time_op<B: Backend>(
    b: &mut B,
    reps: usize,
    sync: Buf,
    mut op: impl FnMut(&mut B),
) -> Result<(f64, Option<f64>)> {
    op(b);
    pollster::block_on(b.read_f32(sync))?;
    let t = Instant::now();
    for _ in 0..reps {
        op(b);
    }
    pollster::block_on(b.read_f32(sync))?;
    let wall = t.elapsed().as_secs_f64() / reps as f64;
    let mut kernel = None;
    if b.set_profiling(true) {
        for _ in 0..reps {
            op(b);
        }
        let samples = b.take_profile();
        b.set_profiling(false);
        if !samples.is_empty() {
            kernel = Some(samples.iter().map(|s| s.seconds).sum::<f64>() / reps as f64);
        }
    }
    Ok((wall, kernel))
}

fn bench_ops<B: Backend>(b: &mut B, reps: usize) -> Result<Vec<OpRow>> {
    let name = short_name(b);
    let mut rows = Vec::new();
    let mut push = |op: &str, shape: String, secs: (f64, Option<f64>), amount: f64, unit| {
        let (wall, kernel) = secs;
        rows.push(OpRow {
            backend: name.clone(),
            op: op.into(),
            shape,
            ms_per_call: wall * 1e3,
            kernel_ms_per_call: kernel.map(|k| k * 1e3),
            rate: amount / kernel.unwrap_or(wall) / 1e9,
            unit,
        });
    };
    for (cin, cout, hw) in [(3, 64, 32), (64, 64, 32), (64, 64, 16), (64, 64, 8)] {
        let s = ConvShape {
            batch: BATCH,
            cin,
            cout,
            h: hw,
            w: hw,
            ..ConvShape::SAME_3X3
        };
        let (x, w, bias, y) = (
            random_buf(b, s.x_len(), 1),
            random_buf(b, s.w_len(), 2),
            random_buf(b, cout, 3),
            b.alloc(s.y_len(), Dtype::F32),
        );
        let (dy, dx, dw) = (
            random_buf(b, s.y_len(), 4),
            b.alloc(s.x_len(), Dtype::F32),
            b.alloc(s.w_len(), Dtype::F32),
        );
        let flops = 2.0 * s.macs() as f64;
        let shape = format!("{cin}→{cout} {hw}×{hw}");
        let t = time_op(b, reps, y, |b| b.conv_forward(s, x, w, bias, y))?;
        push("conv forward", shape.clone(), t, flops, "GFLOP/s");
        let t = time_op(b, reps, dx, |b| b.conv_grad_input(s, dy, w, dx))?;
        push("conv grad input", shape.clone(), t, flops, "GFLOP/s");
        let t = time_op(b, reps, dw, |b| b.conv_grad_weight(s, dy, x, dw))?;
        push("conv grad weight", shape, t, flops, "GFLOP/s");
    }
    let ds = DenseShape {
        batch: BATCH,
        inputs: 1024,
        outputs: 10,
    };
    let (x, w, bias, y) = (
        random_buf(b, 64 * 1024, 5),
        random_buf(b, 10240, 6),
        random_buf(b, 10, 7),
        b.alloc(640, Dtype::F32),
    );
    let (dy, dx, dw) = (
        random_buf(b, 640, 8),
        b.alloc(64 * 1024, Dtype::F32),
        b.alloc(10240, Dtype::F32),
    );
    let flops = 2.0 * 64.0 * 1024.0 * 10.0;
    let t = time_op(b, reps, y, |b| b.dense_forward(ds, x, w, bias, y))?;
    push("dense forward", "1024→10".into(), t, flops, "GFLOP/s");
    let t = time_op(b, reps, dx, |b| b.dense_grad_input(ds, dy, w, dx))?;
    push("dense grad input", "1024→10".into(), t, flops, "GFLOP/s");
    let t = time_op(b, reps, dw, |b| b.dense_grad_weight(ds, dy, x, dw))?;
    push("dense grad weight", "1024→10".into(), t, flops, "GFLOP/s");

    let cs = ChannelShape {
        batch: BATCH,
        channels: 64,
        hw: 1024,
    };
    let n = cs.len();
    let bytes = 4.0 * n as f64;
    let (x, g, be, y, st, run) = (
        random_buf(b, n, 9),
        random_buf(b, 64, 10),
        random_buf(b, 64, 11),
        b.alloc(n, Dtype::F32),
        b.alloc(128, Dtype::F32),
        random_buf(b, 128, 12),
    );
    let (dy, dx, dg, db) = (
        random_buf(b, n, 13),
        b.alloc(n, Dtype::F32),
        b.alloc(64, Dtype::F32),
        b.alloc(64, Dtype::F32),
    );
    let shape = "64ch 32×32".to_string();
    let bn = BatchNorm {
        shape: cs,
        params: BnParams { gamma: g, beta: be },
        stats: BnStats {
            batch: st,
            running: run,
        },
    };
    let grads = BnGrads {
        dgamma: dg,
        dbeta: db,
    };
    let t = time_op(b, reps, y, |b| b.bn_train(bn, x, y))?;
    push("batchnorm train", shape.clone(), t, 3.0 * bytes, "GB/s");
    let t = time_op(b, reps, dx, |b| b.bn_backward(bn, x, dy, dx, grads))?;
    push("batchnorm backward", shape.clone(), t, 5.0 * bytes, "GB/s");
    let t = time_op(b, reps, db, |b| b.channel_sum(cs, dy, db))?;
    push("bias grad (channel sum)", shape.clone(), t, bytes, "GB/s");
    let act = ActQuant::Quantized {
        nl: Nonlinearity::Relu,
        bits: 4,
        sym: false,
    };
    let t = time_op(b, reps, y, |b| b.act_forward(act, n, x, y))?;
    push(
        "activation 4-bit relu",
        shape.clone(),
        t,
        2.0 * bytes,
        "GB/s",
    );
    let t = time_op(b, reps, dx, |b| b.act_backward(act, n, x, dy, dx))?;
    push("activation backward", shape.clone(), t, 3.0 * bytes, "GB/s");
    let ps = PoolShape {
        planes: BATCH * 64,
        h: 32,
        w: 32,
    };
    let yp = b.alloc(ps.y_len(), Dtype::F32);
    let dyp = random_buf(b, ps.y_len(), 14);
    let t = time_op(b, reps, yp, |b| b.pool_forward(ps, x, yp))?;
    push("maxpool", shape.clone(), t, 1.25 * bytes, "GB/s");
    let t = time_op(b, reps, dx, |b| b.pool_backward(ps, x, dyp, dx))?;
    push("maxpool backward", shape, t, 2.25 * bytes, "GB/s");
    let nw = 64 * 64 * 9;
    let (w, m, wq) = (
        random_buf(b, nw, 15),
        b.alloc(1, Dtype::F32),
        b.alloc(nw, Dtype::F32),
    );
    let t = time_op(b, reps, wq, |b| {
        b.weight_quantize(
            WeightQuant::Bits {
                bits: 4,
                sym: false,
            },
            w,
            m,
            wq,
        )
    })?;
    push(
        "weight quantize",
        "64×64×3×3".into(),
        t,
        3.0 * 4.0 * nw as f64,
        "GB/s",
    );
    let (gr, mm, vv, step) = (
        random_buf(b, nw, 16),
        b.alloc(nw, Dtype::F32),
        b.alloc(nw, Dtype::F32),
        b.alloc(StepScalars::LEN, Dtype::F32),
    );
    b.write_f32(
        step,
        &StepScalars::adam(1e-3, 1, AdamConfig::default()).to_vec(),
    );
    let tensors = ParamTensors {
        value: w,
        grad: gr,
        m: mm,
        v: vv,
    };
    let t = time_op(b, reps, w, |b| {
        b.adam(
            UpdateRule::ScaledClip { scale: 27.71 },
            AdamConfig::default(),
            tensors,
            step,
        )
    })?;
    push(
        "adam (quantized rule)",
        "64×64×3×3".into(),
        t,
        7.0 * 4.0 * nw as f64,
        "GB/s",
    );
    let loss = qnn::backend::LossShape {
        batch: 64,
        classes: qnn::backend::DEFAULT_CLASSES,
    };
    let scores = loss.batch * loss.classes;
    let (ys, labels, dys, acc) = (
        random_buf(b, scores, 17),
        b.alloc(loss.batch, Dtype::U32),
        b.alloc(scores, Dtype::F32),
        b.alloc(qnn::backend::LossAcc::LEN, Dtype::F32),
    );
    let t = time_op(b, reps, acc, |b| b.loss(loss, ys, labels, Some(dys), acc))?;
    push(
        "squared hinge loss",
        format!("{}×{}", loss.batch, loss.classes),
        t,
        3.0 * 4.0 * scores as f64,
        "GB/s",
    );
    Ok(rows)
}

/// A model of `config` on generated data, ready to step.
fn setup<B: Backend>(b: &mut B, config: &NetConfig, batch: usize) -> Result<(Model, ImageSet)> {
    let model = Model::new(b, config.clone(), batch, 1)?;
    let n = 256.max(batch);
    let len = config.input.iter().product::<usize>() as u32;
    let pixels: Vec<u8> = (0..n as u32 * len)
        .map(|i| (i.wrapping_mul(2654435761) >> 24) as u8)
        .collect();
    let labels: Vec<u16> = (0..n).map(|i| (i % config.classes) as u16).collect();
    let [c, h, w] = config.input;
    let set = b.upload_images(&pixels, &labels, (c, h, w))?;
    Ok((model, set))
}

/// One Adam training step at step number `step + 1`, with no read-back.
fn one_step<B: Backend>(
    b: &mut B,
    model: &Model,
    set: &ImageSet,
    batch: usize,
    step: usize,
) -> Result<()> {
    let idx: Vec<u32> = (0..batch as u32)
        .map(|i| (i * 7 + step as u32 * batch as u32) % (2 * set.count as u32))
        .collect();
    let update = Update::Adam {
        lr: 1e-3,
        t: step as u64 + 1,
    };
    Ok(model.train_step(b, set, &idx, update)?)
}

fn step_counts<B: Backend>(b: &mut B) -> Result<StepCounts> {
    let (model, set) = setup(b, &seed_network(), BATCH)?;
    one_step(b, &model, &set, BATCH, 0)?;
    b.flush();
    let before = b.counters();
    one_step(b, &model, &set, BATCH, 1)?;
    b.flush();
    let after = b.counters();
    Ok(StepCounts {
        backend: short_name(b),
        dispatches_per_step: after.dispatches - before.dispatches,
        submits_per_step: after.submits - before.submits,
    })
}

fn bench_train<B: Backend>(
    b: &mut B,
    config: &NetConfig,
    batch: usize,
    seconds: f64,
) -> Result<TrainRow> {
    let (model, set) = setup(b, config, batch)?;
    for s in 0..3 {
        one_step(b, &model, &set, batch, s)?;
    }
    pollster::block_on(b.read_f32(model.acc))?;
    let t = Instant::now();
    let mut steps = 0;
    // at least 3 steps, then until `seconds` have passed (software GPUs take seconds per step);
    // a read-back every 16 steps keeps the queue from running far ahead of the clock
    while steps < 3 || (t.elapsed().as_secs_f64() < seconds && steps < 100_000) {
        one_step(b, &model, &set, batch, steps + 3)?;
        steps += 1;
        if steps % 16 == 0 {
            pollster::block_on(b.read_f32(model.acc))?;
        }
    }
    pollster::block_on(b.read_f32(model.acc))?;
    let secs = t.elapsed().as_secs_f64();
    b.flush();
    let before = b.counters();
    one_step(b, &model, &set, batch, steps + 3)?;
    b.flush();
    let after = b.counters();
    // the share of each kernel family, from a few timed steps
    let mut families: Vec<FamilyShare> = Vec::new();
    let mut kernel_ms_per_step = None;
    if b.set_profiling(true) {
        let timed = 5;
        for s in 0..timed {
            one_step(b, &model, &set, batch, steps + 4 + s)?;
        }
        let samples = b.take_profile();
        b.set_profiling(false);
        let total: f64 = samples.iter().map(|s| s.seconds).sum();
        let flops = conv_flops(config, batch);
        families = family_seconds(&samples)
            .into_iter()
            .map(|(family, seconds)| {
                let (family, ms_per_step) = (family.label(), seconds * 1e3 / timed as f64);
                FamilyShare {
                    family,
                    ms_per_step,
                    share: ms_per_step / (total * 1e3 / timed as f64).max(1e-12),
                    gflops: flops
                        .iter()
                        .find(|(n, _)| *n == family)
                        .map(|(_, fl)| fl / (ms_per_step * 1e-3) / 1e9),
                }
            })
            .collect();
        kernel_ms_per_step = (total > 0.0).then_some(total * 1e3 / timed as f64);
    }
    Ok(TrainRow {
        backend: short_name(b),
        device: b.describe(),
        network: network_label(config),
        batch,
        images_per_second: (steps * batch) as f64 / secs,
        ms_per_step: secs * 1e3 / steps as f64,
        steps_timed: steps,
        dispatches_per_step: after.dispatches - before.dispatches,
        submits_per_step: after.submits - before.submits,
        kernel_ms_per_step,
        families,
    })
}
