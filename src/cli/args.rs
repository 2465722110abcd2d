//! The command line's flags: one clap struct per subcommand, the network flags (`NetArgs`) that
//! `train`, `bench`, `energy`, `sweep`, `import-npz` and `gui` share, and the rewriting of the
//! seed's single-dash flags.

use std::path::PathBuf;

use qnn::model::Bits;

use clap::{Args, Parser, Subcommand, ValueEnum};
use qnn::data::DatasetKind;
use qnn::run::RunSettings;

#[cfg(feature = "gui")]
use crate::gui::settings::{Device, Settings};

#[derive(Parser, Debug)]
#[command(name = "qnn", version, about = "Train quantized (binary / n-bit) neural networks on WebGPU or the CPU", long_about = None, args_override_self = true)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Train the seed's A/B/C network (accepts train_quantized.py's flags as written).
    Train(TrainArgs),
    /// Test loss and error of a saved model.
    Eval(EvalArgs),
    /// A saved model's configuration and layer summary.
    Info {
        /// The .safetensors model file.
        file: PathBuf,
    },
    /// Benchmarks: `ops` (per-op time and GFLOP/s) or `train` (training images/s).
    Bench(BenchArgs),
    /// Download MNIST or CIFAR-10 (official archives, checksums verified).
    Download {
        /// mnist or cifar-10
        dataset: String,
        #[arg(long, default_value = "data")]
        data_dir: PathBuf,
    },
    /// Convert a model saved by the seed (np.savez, Lasagne order) into a qnn model.
    ImportNpz(ImportArgs),
    /// Energy per inference of a model (or of the network the flags describe), layer by layer.
    Energy(EnergyArgs),
    /// Train a grid of bit widths × network sizes and find the minimum-energy networks.
    Sweep(SweepArgs),
    /// Write a saved model as an ONNX file (onnxruntime) or a QONNX file (FINN, hls4ml).
    Export(ExportArgs),
    /// Open the desktop window: train and watch the network learn (accepts `qnn train`'s flags).
    #[cfg(feature = "gui")]
    Gui(GuiArgs),
}

#[cfg(feature = "gui")]
#[derive(Args, Debug)]
pub struct GuiArgs {
    /// Settings for the window (they replace the remembered ones when any is given).
    #[command(flatten)]
    pub train: TrainArgs,
    /// Start training as soon as the window opens (with --resume: continue the saved run).
    #[arg(long)]
    pub start: bool,
    /// Close the window when the run ends (a scripted run: prints each epoch, exits 0 when it
    /// trained, 1 when it failed).
    #[arg(long)]
    pub exit_when_done: bool,
    /// Save a PNG of the window just before it closes.
    #[arg(long, value_name = "PNG")]
    pub screenshot: Option<PathBuf>,
    /// Open this saved model to explore (filters, histograms, test images, draw pad), evaluate
    /// or fine-tune.
    #[arg(long, value_name = "FILE")]
    pub model: Option<PathBuf>,
}

#[derive(Args, Debug)]
pub struct EnergyArgs {
    /// A .safetensors model; without one, the network of the flags below.
    pub model: Option<PathBuf>,
    /// Energy constants (JSON, the format of assets/energy/horowitz-45nm.json).
    #[arg(long)]
    pub profile: Option<PathBuf>,
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub net: NetArgs,
}

#[derive(Args, Debug)]
pub struct SweepArgs {
    /// Bit widths to train: 0 (binary, hardtanh ±1), 2 … 16, or `float`.
    #[arg(long, value_delimiter = ',', default_value = "0,2,4,8")]
    pub bits: Vec<String>,
    /// Filters per layer, the same in blocks A, B and C.
    #[arg(long, value_delimiter = ',', default_value = "16,32")]
    pub filters: Vec<usize>,
    /// Layers per block.
    #[arg(long, value_delimiter = ',', default_value = "1")]
    pub layers: Vec<usize>,
    /// Bits of the first and the output layers' weights, apart from the body's: each value
    /// repeats the grid with `--first-bits V --last-bits V` (`same`: the body's and the seed's
    /// float output layer). E.g. `same,8` compares uniform networks with 8-bit ends.
    #[arg(long, value_delimiter = ',', default_value = "same", value_parser = ends_value)]
    pub first_last_bits: Vec<String>,
    /// A grid file instead of --bits/--filters/--layers: one point per line, `qnn train` flags
    /// (e.g. `-nb 4 -nla 2 -nfa 32 -nlb 2 -nfb 64 -nlc 2 -nfc 64`); # starts a comment.
    #[arg(long)]
    pub grid: Option<PathBuf>,
    /// The sweep's folder: one folder per point, and the results.
    #[arg(long, default_value = "sweep")]
    pub out: PathBuf,
    /// Points trained at once (on the CPU each gets its share of the cores).
    #[arg(long, default_value_t = 1)]
    pub jobs: usize,
    /// Test errors (%) for the minimum-energy table, each above 0 and at most 100.
    #[arg(long, value_delimiter = ',', default_value = "2,5,10", value_parser = error_percent)]
    pub targets: Vec<f64>,
    /// Energy constants (JSON).
    #[arg(long)]
    pub profile: Option<PathBuf>,
    /// Write a Slurm job array for the grid (and a job that collects it) instead of training.
    #[arg(long, value_enum)]
    pub emit: Option<EmitChoice>,
    /// Build the results, plot and table from the finished point folders in DIR, wherever they ran.
    #[arg(long, value_name = "DIR")]
    pub collect: Option<PathBuf>,
    /// `qnn train` flags for every point, after `--` (e.g. `-- -ds mnist-mini -ne 3`).
    #[arg(last = true, allow_hyphen_values = true)]
    pub train: Vec<String>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum EmitChoice {
    Slurm,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum DeviceChoice {
    /// A hardware GPU if there is one, else the CPU backend.
    Auto,
    /// wgpu, even on a software adapter (llvmpipe, SwiftShader, WARP).
    Gpu,
    /// The multi-threaded CPU backend.
    Cpu,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum OptimizerChoice {
    Adam,
    Sgd,
}

/// The library's default run ([`RunSettings::new`] on mnist-mini): the flags' defaults are read
/// from it, so `qnn train`, the window and the page start from one set of values.
fn lib() -> RunSettings {
    RunSettings::new(DatasetKind::MnistMini)
}

/// The network flags shared by train and import-npz (the seed's names are the short aliases).
#[derive(Args, Debug, Clone)]
pub struct NetArgs {
    /// Data set: MNIST, CIFAR-10 or mnist-mini (embedded). [seed: -ds]
    #[arg(long = "dataset", alias = "ds", default_value = lib().dataset.name())]
    pub dataset: String,
    /// Bits of weights and activations, 0 (binary) to 16. [seed: -nb]
    #[arg(long = "bits", alias = "nb", default_value_t = lib().net.bits)]
    pub bits: u32,
    /// 1: quantized network, 0: float. [seed: -q]
    #[arg(long = "quantized", alias = "q", default_value_t = lib().net.quantized as u8, value_parser = clap::value_parser!(u8).range(0..=1))]
    pub quantized: u8,
    /// Layers in block A. [seed: -nla]
    #[arg(long = "layers-a", alias = "nla", default_value_t = lib().net.blocks[0].0)]
    pub nla: usize,
    /// Filters per layer in block A. [seed: -nfa]
    #[arg(long = "filters-a", alias = "nfa", default_value_t = lib().net.blocks[0].1)]
    pub nfa: usize,
    /// Layers in block B. [seed: -nlb]
    #[arg(long = "layers-b", alias = "nlb", default_value_t = lib().net.blocks[1].0)]
    pub nlb: usize,
    /// Filters per layer in block B. [seed: -nfb]
    #[arg(long = "filters-b", alias = "nfb", default_value_t = lib().net.blocks[1].1)]
    pub nfb: usize,
    /// Layers in block C. [seed: -nlc]
    #[arg(long = "layers-c", alias = "nlc", default_value_t = lib().net.blocks[2].0)]
    pub nlc: usize,
    /// Filters per layer in block C. [seed: -nfc]
    #[arg(long = "filters-c", alias = "nfc", default_value_t = lib().net.blocks[2].1)]
    pub nfc: usize,
    /// Nonlinearity: relu or hardtanh. [seed: -nl]
    #[arg(long = "nonlinearity", alias = "nl", default_value = lib().net.nonlinearity.name())]
    pub nl: String,
    /// 1: symmetric clipping (hardtanh; forced off for relu). [seed: -sym]
    #[arg(long = "sym", default_value_t = lib().net.sym as u8, value_parser = clap::value_parser!(u8).range(0..=1))]
    pub sym: u8,
    /// A net file (TOML): the network as a list of layers with bits per layer, instead of the
    /// seed's blocks (README: "Writing a net file"; examples/nets/).
    #[arg(long = "net", conflicts_with_all = ["bits", "quantized", "nla", "nfa", "nlb", "nfb", "nlc", "nfc", "nl", "sym"])]
    pub net: Option<PathBuf>,
    /// Bits of the first layer's weights (1 = binary … 16, float), apart from the rest: the
    /// minimum-energy design's 8-bit first layer. Makes the network a layer list.
    #[arg(long, value_parser = bits_value)]
    pub first_bits: Option<Bits>,
    /// Bits of the output layer's weights (the seed keeps them float).
    #[arg(long, value_parser = bits_value)]
    pub last_bits: Option<Bits>,
}

fn bits_value(s: &str) -> Result<Bits, String> {
    s.parse()
}

fn ends_value(s: &str) -> Result<String, String> {
    if s == "same" {
        return Ok(s.into());
    }
    s.parse::<Bits>().map(|_| s.to_string())
}

#[derive(Args, Debug)]
pub struct TrainArgs {
    #[command(flatten)]
    pub net: NetArgs,
    /// Epochs. [seed: -ne]
    #[arg(long = "epochs", alias = "ne", default_value_t = lib().options.epochs)]
    pub epochs: usize,
    /// Starting learning rate. [seed: -lr]
    #[arg(long = "lr", default_value_t = lib().options.lr_start)]
    pub lr: f32,
    /// Learning rate reached after the last epoch (exponential decay).
    #[arg(long, default_value_t = lib().options.lr_final)]
    pub lr_final: f32,
    /// 1: start from the saved model {out}/{name}.safetensors (the seed's fine-tuning). [seed: -ft]
    #[arg(long = "finetune", alias = "ft", default_value_t = 0, value_parser = clap::value_parser!(u8).range(0..=1))]
    pub finetune: u8,
    /// Folder with the data set's files (-ds folder: your own pictures, one sub-folder per class,
    /// or a .zip of such a folder).
    #[arg(long, default_value = "data")]
    pub data_dir: PathBuf,
    /// -ds folder: the network's input, CxHxW (e.g. 1x28x28, 3x32x32) [default: the most common picture size; grey if all are grey, else RGB].
    #[arg(long)]
    pub input: Option<String>,
    /// -ds folder: how other sizes become the input: stretch (bilinear) or crop (the centre at the input's aspect, then bilinear) [default: stretch].
    #[arg(long)]
    pub resize: Option<String>,
    /// -ds folder: skip (and list) pictures that cannot be decoded instead of stopping.
    #[arg(long)]
    pub skip_bad_images: bool,
    /// -ds folder without train/test sub-folders: the seed of the split into 80 % training, 10 % validation, 10 % test [default: 1234].
    #[arg(long)]
    pub split_seed: Option<u64>,
    #[arg(long, default_value_t = lib().options.batch)]
    pub batch_size: usize,
    /// Validation images taken from the end of the training file [default: 10000 MNIST, 5000 CIFAR-10, 1000 mnist-mini].
    #[arg(long)]
    pub valid: Option<usize>,
    /// Do not double the training split with left-right flips.
    #[arg(long)]
    pub no_flip: bool,
    /// Random crops: shift each training image by up to N pixels each way (zero padding, drawn
    /// per image and step from the seed; CIFAR's is 4 for 32×32); 0: off. Less than the
    /// images' side, at most 15.
    #[arg(long, value_name = "N", default_value_t = lib().options.crop_pad)]
    pub crop_pad: usize,
    /// Keep the training order fixed.
    #[arg(long)]
    pub no_shuffle: bool,
    #[arg(long, default_value_t = lib().options.seed)]
    pub seed: u64,
    #[arg(long, value_enum, default_value_t = DeviceChoice::Auto)]
    pub device: DeviceChoice,
    #[arg(long, value_enum, default_value_t = OptimizerChoice::Adam)]
    pub optimizer: OptimizerChoice,
    /// Momentum of --optimizer sgd.
    #[arg(long, default_value_t = 0.9, value_parser = momentum)]
    pub momentum: f32,
    /// Folder for the model, metrics, plot and training state.
    #[arg(long, default_value = "models")]
    pub out: PathBuf,
    /// Start from this saved model (any compatible one).
    #[arg(long)]
    pub init: Option<PathBuf>,
    /// Continue an interrupted run from {out}/{name}.state.safetensors.
    #[arg(long)]
    pub resume: bool,
    /// Stop after this many epochs of this invocation; --resume continues the run later.
    #[arg(long)]
    pub stop_after: Option<usize>,
    /// Print a JSON summary as the last line.
    #[arg(long)]
    pub json: bool,
    /// Replace a model (and training state) already in --out that this run did not produce.
    #[arg(long)]
    pub overwrite: bool,
}

#[cfg(feature = "gui")]
impl TrainArgs {
    /// The window's settings for these flags: `qnn gui` takes `qnn train`'s. `--net FILE` is
    /// read into the layer list, as is the network `--first-bits` / `--last-bits` make (the
    /// reasons it can fail: a file that cannot be read, ends that do not fit the network).
    pub fn gui_settings(&self) -> anyhow::Result<Settings> {
        let a = self;
        let kind: Option<DatasetKind> = a.net.dataset.parse().ok();
        let net_text = if a.net.first_bits.is_some() || a.net.last_bits.is_some() {
            // the layer list qnn train would build (its text has every key written out)
            let kind = kind.unwrap_or(DatasetKind::MnistMini);
            let net = crate::cli::train_cmd::net_config(&a.net, kind.chw(), kind.classes())?;
            net.net.map(|def| def.to_toml())
        } else if let Some(path) = &a.net.net {
            // as written, so that a file with a mistake opens with its line shown in red
            let text = qnn::files::read_text(path, qnn::files::TEXT_MAX_BYTES, "a net file")?;
            Some(crate::gui::settings::named_net_text(text, path))
        } else {
            None
        };
        Ok(Settings {
            dataset: kind.map_or(a.net.dataset.clone(), |k| k.name().to_string()),
            data_path: (kind != Some(DatasetKind::MnistMini))
                .then(|| a.data_dir.clone())
                .filter(|p| p.exists()),
            bits: a.net.bits,
            quantized: a.net.quantized == 1,
            relu: a.net.nl != "hardtanh",
            sym: a.net.sym == 1,
            blocks: [
                (a.net.nla, a.net.nfa),
                (a.net.nlb, a.net.nfb),
                (a.net.nlc, a.net.nfc),
            ],
            net_text,
            epochs: a.epochs,
            lr: a.lr,
            lr_final: a.lr_final,
            batch: a.batch_size,
            valid: a.valid,
            flip: !a.no_flip,
            crop_pad: a.crop_pad,
            shuffle: !a.no_shuffle,
            seed: a.seed,
            device: match a.device {
                DeviceChoice::Auto => Device::Auto,
                DeviceChoice::Gpu => Device::Gpu,
                DeviceChoice::Cpu => Device::Cpu,
            },
            adam: a.optimizer == OptimizerChoice::Adam,
            momentum: a.momentum,
            out: a.out.clone(),
            // a folder of pictures is read by the window, on a thread of its own with a
            // progress bar (and --start waits for it): the network follows its shape and classes
            pictures: None,
        })
    }
}

#[derive(Args, Debug)]
pub struct EvalArgs {
    /// The .safetensors model file.
    #[arg(long)]
    pub model: PathBuf,
    /// Data set (default: the one the model was trained on). [seed: -ds]
    #[arg(long = "dataset", alias = "ds")]
    pub dataset: Option<String>,
    /// Folder with the data set's files (a folder of pictures, or a .zip of one, for -ds folder).
    #[arg(long, default_value = "data")]
    pub data_dir: PathBuf,
    #[arg(long, default_value_t = 64)]
    pub batch_size: usize,
    #[arg(long, value_enum, default_value_t = DeviceChoice::Auto)]
    pub device: DeviceChoice,
    #[arg(long)]
    pub json: bool,
}

/// `qnn bench`: its network flags are `qnn train`'s, with the seed's CIFAR-10 example network
/// (3×32×32 input, 1-64 ×3, 4-bit relu) as defaults.
#[derive(Args, Debug)]
#[command(
    mut_arg("dataset", |a| a.default_value("cifar-10").help("Data set whose image shape the network takes (no data is read). [seed: -ds]")),
    mut_arg("nfa", |a| a.default_value("64"))
)]
pub struct BenchArgs {
    /// ops or train
    pub what: BenchWhat,
    /// Backends to measure (default: cpu, and gpu when an adapter exists).
    #[arg(long, value_enum)]
    pub device: Option<DeviceChoice>,
    #[arg(long)]
    pub json: bool,
    /// Repetitions per measurement (ops).
    #[arg(long, default_value_t = 5)]
    pub reps: usize,
    /// Batch size (train; ops use the seed's 64).
    #[arg(long, default_value_t = 64)]
    pub batch_size: usize,
    /// Seconds to time training steps for, per backend (train).
    #[arg(long, default_value_t = 6.0, value_parser = seconds)]
    pub seconds: f64,
    /// The network to train (train): the seed's CIFAR-10 example by default, 3×32×32 input.
    #[command(flatten)]
    pub net: NetArgs,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum BenchWhat {
    Ops,
    Train,
}

#[derive(Args, Debug)]
pub struct ImportArgs {
    /// The seed's .npz (its file name, the seed's model name, gives the configuration).
    pub file: PathBuf,
    /// Output .safetensors (default: beside the input).
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Take the configuration from the flags below instead of the file name.
    #[arg(long)]
    pub from_flags: bool,
    /// Replace the output file if it exists.
    #[arg(long)]
    pub overwrite: bool,
    #[command(flatten)]
    pub net: NetArgs,
}

/// `qnn export`.
#[derive(Args, Debug)]
pub struct ExportArgs {
    /// The .safetensors model file.
    pub model: PathBuf,
    /// onnx (standard operators: onnxruntime) or qonnx (Quant / BipolarQuant: FINN, hls4ml).
    #[arg(long, default_value = "onnx", value_parser = export_format)]
    pub format: qnn::export::Format,
    /// Output file (default: beside the model, .onnx or .qonnx.onnx).
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Replace the output file if it exists.
    #[arg(long)]
    pub overwrite: bool,
}

fn export_format(s: &str) -> Result<qnn::export::Format, String> {
    s.parse()
}

// ---- the numbers a flag takes: each refused at parse time unless finite and in its range
// (the library checks the learning rates again, and names them)

/// `--momentum`: in [0, 1) — at 1 or above the steps never shrink. Checked with either optimizer.
fn momentum(s: &str) -> Result<f32, String> {
    match s.parse::<f32>() {
        Ok(m) if (0.0..1.0).contains(&m) => Ok(m),
        _ => Err(format!(
            "{s}: the momentum must be a number in [0, 1) (at 1 or above the steps never shrink)"
        )),
    }
}

/// `--seconds` of a benchmark: 0 (one measured step) to a day.
fn seconds(s: &str) -> Result<f64, String> {
    match s.parse::<f64>() {
        Ok(t) if (0.0..=86_400.0).contains(&t) => Ok(t),
        _ => Err(format!("{s}: give the seconds as a number from 0 to 86400")),
    }
}

/// A target test error (%) of `qnn sweep --targets`: above 0, at most 100.
fn error_percent(s: &str) -> Result<f64, String> {
    match s.parse::<f64>() {
        Ok(e) if e > 0.0 && e <= 100.0 => Ok(e),
        _ => Err(format!(
            "{s}: a target test error is a percentage above 0 and at most 100"
        )),
    }
}

/// The seed's single-dash multi-letter flags, rewritten to clap's `--name` before parsing.
const SEED_FLAGS: [&str; 14] = [
    "ds", "nb", "q", "ne", "nla", "nfa", "nlb", "nfb", "nlc", "nfc", "ft", "nl", "sym", "lr",
];

pub fn seed_args(args: impl IntoIterator<Item = String>) -> Vec<String> {
    args.into_iter()
        .map(|a| match a.strip_prefix('-') {
            Some(rest)
                if !rest.starts_with('-')
                    && SEED_FLAGS.contains(&rest.split('=').next().unwrap_or("")) =>
            {
                format!("-{a}")
            }
            _ => a,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(line: &str) -> TrainArgs {
        let args =
            std::iter::once("qnn".to_string()).chain(line.split_whitespace().map(String::from));
        match Cli::try_parse_from(seed_args(args))
            .unwrap_or_else(|e| panic!("{line}: {e}"))
            .command
        {
            Command::Train(t) => t,
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn the_seeds_command_lines_parse_as_written() {
        let t = parse("train -ds CIFAR-10 -nb 4 -q 1 -ne 100 -nla 1 -nfa 64 -nlb 1 -nfb 64 -nlc 1 -nfc 64 -ft 0 -nl relu -sym 0 -lr 0.001");
        assert_eq!(
            (
                t.net.dataset.as_str(),
                t.net.bits,
                t.net.quantized,
                t.epochs
            ),
            ("CIFAR-10", 4, 1, 100)
        );
        assert_eq!(
            (t.net.nla, t.net.nfa, t.net.nlb, t.net.nfb, t.net.nlc, t.net.nfc),
            (1, 64, 1, 64, 1, 64)
        );
        assert_eq!(
            (t.finetune, t.net.nl.as_str(), t.net.sym, t.lr),
            (0, "relu", 0, 0.001)
        );
        let b = parse("train -ds CIFAR-10 -nb 0 -q 1 -ne 100 -nla 1 -nfa 64 -nlb 1 -nfb 64 -nlc 1 -nfc 64 -ft 0 -nl hardtanh -sym 1 -lr 0.001");
        assert_eq!(
            (b.net.bits, b.net.nl.as_str(), b.net.sym),
            (0, "hardtanh", 1)
        );
        // long names and = forms
        let l = parse("train --dataset mnist --bits 2 --layers-a 2 --filters-a 16 -lr=0.01 --no-flip --device cpu");
        assert_eq!(
            (
                l.net.dataset.as_str(),
                l.net.bits,
                l.net.nla,
                l.net.nfa,
                l.lr,
                l.no_flip
            ),
            ("mnist", 2, 2, 16, 0.01, true)
        );
        // defaults: the embedded data set
        let d = parse("train");
        assert_eq!(
            (d.net.dataset.as_str(), d.batch_size, d.seed, d.lr_final),
            ("mnist-mini", 64, 1234, 3e-7)
        );
    }

    /// `qnn train` without flags, the window's first settings and the page's form are one run:
    /// the library's `RunSettings::new`.
    #[test]
    fn the_flags_defaults_are_the_librarys() {
        let t = parse("train");
        assert_eq!(
            crate::cli::train_cmd::run_settings(&t).unwrap(),
            qnn::run::RunSettings::new(qnn::data::DatasetKind::MnistMini)
        );
        #[cfg(feature = "gui")]
        assert_eq!(
            t.gui_settings().unwrap(),
            crate::gui::settings::Settings::default()
        );
    }

    #[test]
    fn only_seed_flags_are_rewritten() {
        let got = seed_args(["-nla", "-x", "--lr", "-0.5", "-lr=1"].map(String::from));
        assert_eq!(got, ["--nla", "-x", "--lr", "-0.5", "--lr=1"]);
    }

    #[test]
    fn flags_out_of_range_are_refused() {
        for bad in [
            "train -q 2",
            "train -sym 3",
            "train -ft 7",
            "train --device tpu",
        ] {
            let args =
                std::iter::once("qnn".to_string()).chain(bad.split_whitespace().map(String::from));
            assert!(
                Cli::try_parse_from(seed_args(args)).is_err(),
                "{bad} parsed"
            );
        }
    }
}
