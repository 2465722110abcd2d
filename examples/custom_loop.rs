//! Your own epoch loop: a `Model` on the backend of your choice, one training step at a time,
//! the running loss read back, evaluation — for a schedule of your own (here: a constant LR).
//!
//!     cargo run --release --example custom_loop [-- cpu|gpu]

use qnn::backend::LossAcc;
use qnn::model::{Model, NetConfig, Update};
use qnn::quant::Nonlinearity;
use qnn::Backend;

fn train<B: Backend>(b: &mut B) -> Result<(), qnn::Error> {
    let data = qnn::data::mnist_mini()?;
    let config = NetConfig {
        input: [1, 28, 28],
        classes: data.classes(),
        blocks: [(1, 16), (1, 32), (1, 32)],
        quantized: true,
        bits: 2,
        nonlinearity: Nonlinearity::Relu,
        sym: false,
        net: None,
    };
    let batch = 50;
    let model = Model::new(b, config, batch, 7)?;
    let train = b.upload_images(&data.train.pixels, &data.train.labels, data.chw)?;
    let test = b.upload_images(&data.test.pixels, &data.test.labels, data.chw)?;
    let mut t = 0;
    for epoch in 1..=2 {
        b.fill_zero(model.acc);
        let steps = train.count / batch;
        for step in 0..steps {
            t += 1;
            // images step·batch .. (step+1)·batch, in order (indices ≥ count would be flipped)
            let idx: Vec<u32> = (0..batch as u32)
                .map(|i| (step * batch) as u32 + i)
                .collect();
            // gathers the batch, then records forward, loss, backward and the Adam update
            model.train_step(b, &train, &idx, Update::Adam { lr: 3e-3, t })?;
        }
        let acc = LossAcc::from_slice(&pollster::block_on(b.read_f32(model.acc))?);
        let eval = pollster::block_on(qnn::train::evaluate_set(b, &model, &test, batch))?;
        println!(
            "epoch {epoch}: training loss {:.4}, test loss {:.4}, test error {:.2}% on {}",
            acc.loss_sum / (steps * batch) as f64,
            eval.loss,
            eval.error,
            b.describe()
        );
    }
    Ok(())
}

fn main() -> Result<(), qnn::Error> {
    match std::env::args().nth(1).as_deref() {
        Some("gpu") => train(&mut qnn::GpuBackend::new()?),
        _ => train(&mut qnn::CpuBackend::new()),
    }
}
