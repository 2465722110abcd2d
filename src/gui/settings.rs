//! The settings panel's values: the seed's flags and the run's extras, remembered between
//! launches (eframe's storage) and turned into the library's [`RunSettings`].

use std::path::PathBuf;

use qnn::data::DatasetKind;
use qnn::model::NetConfig;
use qnn::quant::Nonlinearity;
use qnn::run::RunSettings;
use qnn::train::{Optimizer, TrainOptions};
use serde::{Deserialize, Serialize};

/// Where training runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Device {
    /// The window's GPU when it is a hardware one, else the CPU.
    Auto,
    /// The window's GPU, even a software one (llvmpipe).
    Gpu,
    /// The CPU backend.
    Cpu,
}

/// Everything the settings panel edits.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Settings {
    /// `mnist-mini`, `MNIST` or `CIFAR-10`.
    pub dataset: String,
    /// MNIST / CIFAR-10: the folder or archive holding its files.
    pub data_path: Option<PathBuf>,
    pub bits: u32,
    pub quantized: bool,
    pub relu: bool,
    pub sym: bool,
    /// (layers, filters) of blocks A, B, C.
    pub blocks: [(usize, usize); 3],
    pub epochs: usize,
    pub lr: f32,
    pub lr_final: f32,
    pub batch: usize,
    /// `None`: the data set's default.
    pub valid: Option<usize>,
    pub flip: bool,
    pub shuffle: bool,
    pub seed: u64,
    pub device: Device,
    pub adam: bool,
    pub momentum: f32,
    /// The run's folder: model, metrics, plot and state (as `qnn train --out`).
    pub out: PathBuf,
}

impl Default for Settings {
    fn default() -> Self {
        let r = RunSettings::new(DatasetKind::MnistMini);
        Settings {
            dataset: DatasetKind::MnistMini.name().into(),
            data_path: None,
            bits: r.net.bits,
            quantized: r.net.quantized,
            relu: r.net.nonlinearity == Nonlinearity::Relu,
            sym: r.net.sym,
            blocks: r.net.blocks,
            epochs: r.options.epochs,
            lr: r.options.lr_start,
            lr_final: r.options.lr_final,
            batch: r.options.batch,
            valid: None,
            flip: r.options.flip,
            shuffle: r.options.shuffle,
            seed: r.options.seed,
            device: Device::Auto,
            adam: true,
            momentum: 0.9,
            out: PathBuf::from("models"),
        }
    }
}

impl Settings {
    /// The data set chosen.
    pub fn kind(&self) -> Result<DatasetKind, String> {
        self.dataset.parse()
    }

    /// The library's settings, checked (messages name settings as the panel labels them).
    pub fn run_settings(&self) -> Result<RunSettings, String> {
        let kind = self.kind()?;
        let (c, h, w) = kind.chw();
        let net = NetConfig {
            input: [c, h, w],
            blocks: self.blocks,
            quantized: self.quantized,
            bits: self.bits,
            nonlinearity: if self.relu {
                Nonlinearity::Relu
            } else {
                Nonlinearity::Hardtanh
            },
            // the seed forces symmetric clipping off for relu
            sym: self.sym && !self.relu,
            net: None,
        };
        let settings = RunSettings {
            dataset: kind,
            net,
            options: TrainOptions {
                epochs: self.epochs,
                lr_start: self.lr,
                lr_final: self.lr_final,
                batch: self.batch,
                flip: self.flip,
                shuffle: self.shuffle,
                seed: self.seed,
                optimizer: if self.adam {
                    Optimizer::Adam
                } else {
                    Optimizer::Sgd {
                        momentum: self.momentum,
                    }
                },
            },
            valid: self.valid,
        };
        settings.validate().map_err(|e| e.to_string())?;
        Ok(settings)
    }

    /// The panel's values for a saved model's network and data set (fine-tuning starts there).
    pub fn take_network(&mut self, dataset: &str, net: &NetConfig) {
        if let Ok(k) = dataset.parse::<DatasetKind>() {
            self.dataset = k.name().to_string();
        }
        self.blocks = net.blocks;
        self.quantized = net.quantized;
        self.bits = net.bits;
        self.relu = net.nonlinearity == Nonlinearity::Relu;
        self.sym = net.sym;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_settings_are_the_librarys_run() {
        let s = Settings::default();
        let r = s.run_settings().unwrap();
        assert_eq!(r, RunSettings::new(DatasetKind::MnistMini));
        let mut bad = s.clone();
        bad.relu = true;
        bad.bits = 1;
        assert!(bad.run_settings().unwrap_err().contains("relu"));
        bad.dataset = "imagenet".into();
        assert!(bad.run_settings().is_err());
    }
}
