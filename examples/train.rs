//! The smallest complete use of the library: train the default network on the embedded
//! mnist-mini through the library's training run, printing each epoch, and save the best model.
//!
//!     cargo run --release --example train [-- EPOCHS]

use std::sync::atomic::AtomicBool;

use qnn::data::{self, DatasetKind};
use qnn::run::{EpochOutcome, Run, RunSettings, Start};

fn main() -> Result<(), qnn::Error> {
    let epochs = std::env::args()
        .nth(1)
        .and_then(|e| e.parse().ok())
        .unwrap_or(3);
    let mut b = qnn::CpuBackend::new(); // or qnn::GpuBackend::new()?
    let data = data::mnist_mini()?;
    let mut settings = RunSettings::new(DatasetKind::MnistMini); // 4-bit relu, 1×32 / 1×64 / 1×64
    settings.options.epochs = epochs;
    let mut run = pollster::block_on(Run::new(&mut b, settings, &data, Start::Fresh))?;
    println!("{}", run.summary());
    let stop = AtomicBool::new(false); // a front end raises it to stop after the current step
    while !run.is_finished() {
        if let EpochOutcome::Finished(r) =
            pollster::block_on(run.next_epoch(&mut b, &stop, |_| false))?
        {
            println!(
                "epoch {}: training loss {:.4}, validation error {:.2}%, test error {:.2}% ({:.0} images/s)",
                r.epoch, r.train_loss, r.val_error, r.test_error, r.images_per_second
            );
        }
    }
    let path = std::env::temp_dir().join("qnn-example.safetensors");
    qnn::files::write_atomic(&path, run.best_model().expect("a best epoch"))?;
    println!("best model: {} (qnn eval --model {0})", path.display());
    Ok(())
}
