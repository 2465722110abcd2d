//! The command line: its flags (`args.rs`) and what each subcommand does, a file each.

pub mod args;
mod bench;
mod download;
mod energy;
mod export;
mod import_npz;
mod sweep;
pub mod train_cmd;

use anyhow::Result;
use qnn::gpu::best_adapter;
use qnn::{CpuBackend, GpuBackend};

use args::{Cli, Command, DeviceChoice};

/// A backend picked at run time. Code that works on either is generic over `Backend` and is
/// called through [`with_backend!`].
pub enum AnyBackend {
    Cpu(CpuBackend),
    Gpu(Box<GpuBackend>),
}

/// Runs `$body` with `$b` bound to the concrete backend inside `$dev`.
#[macro_export]
macro_rules! with_backend {
    ($dev:expr, |$b:ident| $body:expr) => {
        match $dev {
            $crate::cli::AnyBackend::Cpu($b) => $body,
            $crate::cli::AnyBackend::Gpu($b) => {
                let $b = &mut **$b;
                $body
            }
        }
    };
}

/// Opens the backend asked for; `auto` takes a hardware GPU and otherwise the CPU, saying why.
pub fn open_device(choice: DeviceChoice) -> Result<AnyBackend> {
    match choice {
        DeviceChoice::Cpu => Ok(AnyBackend::Cpu(CpuBackend::new())),
        DeviceChoice::Gpu => {
            let adapter = pollster::block_on(best_adapter())?;
            Ok(AnyBackend::Gpu(Box::new(pollster::block_on(
                GpuBackend::with_adapter(&adapter),
            )?)))
        }
        DeviceChoice::Auto => match pollster::block_on(best_adapter()) {
            Ok(a) if !a.is_software() => Ok(AnyBackend::Gpu(Box::new(pollster::block_on(
                GpuBackend::with_adapter(&a),
            )?))),
            Ok(a) => {
                eprintln!("device auto: the only GPU adapter is a software rasterizer ({}), so the CPU backend is used (--device gpu forces wgpu)", a.describe());
                Ok(AnyBackend::Cpu(CpuBackend::new()))
            }
            Err(_) => {
                eprintln!("device auto: no GPU adapter found, using the CPU backend");
                Ok(AnyBackend::Cpu(CpuBackend::new()))
            }
        },
    }
}

pub fn run(cli: Cli) -> Result<()> {
    match cli.command {
        Command::Train(args) => train_cmd::train(args),
        Command::Eval(args) => train_cmd::eval(args),
        Command::Info { file } => train_cmd::info(&file),
        Command::Bench(args) => bench::bench(args),
        Command::Download { dataset, data_dir } => download::download(&dataset, &data_dir),
        Command::ImportNpz(args) => import_npz::import(args),
        Command::Energy(args) => energy::energy(args),
        Command::Sweep(args) => sweep::sweep(args),
        Command::Export(args) => export::export(args),
        #[cfg(feature = "gui")]
        Command::Gui(_) => anyhow::bail!("the window is opened by main, not here"),
    }
}

/// A run stopped by Ctrl-C or SIGTERM: `main` exits with 130 and prints the message, which says
/// what was and was not saved.
#[derive(Debug)]
pub struct Interrupted(pub String);

impl std::fmt::Display for Interrupted {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for Interrupted {}

/// Adds the command-line flag to a library error that names a setting (the library's messages
/// name settings, not flags).
pub fn with_flag(e: qnn::Error) -> anyhow::Error {
    let msg = e.to_string();
    let flag = [
        ("momentum", "--momentum"),
        ("final learning rate", "--lr-final"),
        ("learning rate", "-lr"),
        ("the number of epochs", "-ne"),
        ("the batch size", "--batch-size"),
        ("a batch of", "--batch-size"),
        ("crop padding", "--crop-pad"),
    ]
    .iter()
    .find(|(k, _)| msg.starts_with(k))
    .map(|(_, f)| *f);
    match flag {
        Some(f) => anyhow::anyhow!("{f}: {msg}"),
        None => e.into(),
    }
}

/// Parses the data set flag with the accepted spellings in the message.
pub fn dataset_kind(s: &str) -> Result<qnn::data::DatasetKind> {
    s.parse().map_err(|e: String| anyhow::anyhow!(e))
}
