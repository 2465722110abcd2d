//! Load a `.safetensors` model and classify one 28×28 image: a PNG (grey or colour; white
//! digit on black, as MNIST) or raw 784 bytes. Prints a score per class (the model's classes).
//!
//!     cargo run --release --example classify -- MODEL.safetensors IMAGE.png
//! Without arguments it trains nothing: it uses a fresh (untrained) model and a digit from
//! mnist-mini, to show the calls.

use qnn::data::DatasetKind;
use qnn::run::{Run, RunSettings, Start};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let mut b = qnn::CpuBackend::new();
    let data = qnn::data::mnist_mini()?;
    let (model, pixels) = match args.as_slice() {
        [model, image] => (Some(std::fs::read(model)?), read_image(image)?),
        _ => (None, data.test.pixels[..784].to_vec()),
    };
    // a run built from the model's own configuration, started from its weights
    let mut settings = RunSettings::new(DatasetKind::MnistMini);
    let start = match &model {
        Some(bytes) => {
            let (_, meta) = qnn::checkpoint::model_from_bytes(bytes, "the model")?;
            settings.net = meta.config;
            Start::Init(bytes)
        }
        None => Start::Fresh,
    };
    let run = pollster::block_on(Run::new(&mut b, settings, &data, start))?;
    let scores = pollster::block_on(run.predict(&mut b, &pixels))?;
    // the first highest score, as the loss counts errors
    let best = (0..scores.len()).fold(0, |m, k| if scores[k] > scores[m] { k } else { m });
    for (k, s) in scores.iter().enumerate() {
        println!("{k}: {s:+.3}{}", if k == best { "  ←" } else { "" });
    }
    Ok(())
}

/// 784 grey pixels from a 28×28 PNG, or from a raw file of 784 bytes.
fn read_image(path: &str) -> Result<Vec<u8>, Box<dyn std::error::Error>> {
    let bytes = std::fs::read(path)?;
    if bytes.len() == 784 {
        return Ok(bytes);
    }
    let img = image::load_from_memory(&bytes)?.to_luma8();
    if img.dimensions() != (28, 28) {
        return Err(format!(
            "{path}: {:?} pixels, the model takes 28×28",
            img.dimensions()
        )
        .into());
    }
    Ok(img.into_raw())
}
