//! One op on the GPU and on the CPU, compared — how to start when adding a kernel: here a 4-bit
//! quantized activation (exact on both) and a 3×3 convolution (within a float tolerance).
//!
//!     cargo run --release --example ops

use qnn::backend::ConvShape;
use qnn::quant::{ActQuant, Nonlinearity};
use qnn::{Backend, Dtype};

fn upload<B: Backend>(b: &mut B, v: &[f32]) -> qnn::Buf {
    let buf = b.alloc(v.len(), Dtype::F32);
    b.write_f32(buf, v);
    buf
}

/// (activation output, convolution output) on backend `b`.
fn run<B: Backend>(b: &mut B, x: &[f32], w: &[f32], s: ConvShape) -> (Vec<f32>, Vec<f32>) {
    let a = ActQuant::Quantized {
        nl: Nonlinearity::Relu,
        bits: 4,
        sym: false,
    };
    let (xb, wb, bias) = (upload(b, x), upload(b, w), upload(b, &vec![0.1; s.cout]));
    let (act, conv) = (b.alloc(x.len(), Dtype::F32), b.alloc(s.y_len(), Dtype::F32));
    b.act_forward(a, x.len(), xb, act);
    b.conv_forward(s, xb, wb, bias, conv);
    let act = pollster::block_on(b.read_f32(act)).expect("read back");
    let conv = pollster::block_on(b.read_f32(conv)).expect("read back");
    (act, conv)
}

fn main() -> Result<(), qnn::Error> {
    // odd sizes, so tile edges are exercised: x [3, 5, 9, 7], w [11, 5, 3, 3]
    let s = ConvShape {
        batch: 3,
        cin: 5,
        cout: 11,
        h: 9,
        w: 7,
        ..ConvShape::SAME_3X3
    };
    let x: Vec<f32> = (0..s.x_len())
        .map(|i| ((i * 7919) % 200) as f32 / 100.0 - 1.0)
        .collect();
    let w: Vec<f32> = (0..s.w_len())
        .map(|i| ((i * 104729) % 200) as f32 / 100.0 - 1.0)
        .collect();
    let (cpu_act, cpu_conv) = run(&mut qnn::CpuBackend::new(), &x, &w, s);
    let mut gpu = qnn::GpuBackend::new()?;
    let (gpu_act, gpu_conv) = run(&mut gpu, &x, &w, s);
    let scale = cpu_conv.iter().fold(1e-6f32, |m, v| m.max(v.abs()));
    let conv_err = cpu_conv
        .iter()
        .zip(&gpu_conv)
        .map(|(c, g)| (c - g).abs())
        .fold(0.0, f32::max)
        / scale;
    println!("GPU: {}", gpu.describe());
    println!(
        "4-bit activation: {} values, identical on both: {}",
        x.len(),
        cpu_act == gpu_act
    );
    println!(
        "conv forward: {} outputs, max relative difference {conv_err:.2e} (tolerance 1e-4)",
        s.y_len()
    );
    assert!(
        cpu_act == gpu_act && conv_err <= 1e-4,
        "the GPU differs from the CPU twin"
    );
    Ok(())
}
