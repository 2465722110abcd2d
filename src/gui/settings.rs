//! The settings panel's values: the seed's flags (or a layer list) and the run's extras,
//! remembered between launches (eframe's storage) and turned into the library's [`RunSettings`].

use std::path::{Path, PathBuf};

use qnn::data::DatasetKind;
use qnn::model::{layers::seed_layers, NetConfig, NetDef, Preset, PRESETS};
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

/// What a layer list is called in messages (as a net file's path is by `qnn train --net`).
pub const LAYER_LIST: &str = "layer list";

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
    /// `None`: the seed's blocks from the fields above; `Some`: the network as a layer list
    /// being edited, a net file's TOML (`qnn train --net FILE`), and the fields above unused.
    pub net_text: Option<String>,
    pub epochs: usize,
    pub lr: f32,
    pub lr_final: f32,
    pub batch: usize,
    /// `None`: the data set's default.
    pub valid: Option<usize>,
    pub flip: bool,
    /// Random crops with this much zero padding (0: off), as `qnn train --crop-pad`.
    pub crop_pad: usize,
    pub shuffle: bool,
    pub seed: u64,
    pub device: Device,
    pub adam: bool,
    pub momentum: f32,
    /// The run's folder: model, metrics, plot and state (as `qnn train --out`).
    pub out: PathBuf,
    /// A folder of your own pictures, once read: its shape, classes and validation images
    /// (the network follows them). Not remembered: the folder is read again.
    #[serde(skip)]
    pub pictures: Option<PictureShape>,
}

/// What a folder of pictures tells the settings.
#[derive(Clone, Debug, PartialEq)]
pub struct PictureShape {
    /// Image shape [c, h, w].
    pub chw: [usize; 3],
    /// Class count.
    pub classes: usize,
    /// Training images that validate (its val/ folder or its validation share).
    pub valid: usize,
    /// The set's name (the folder's, or the zip's), which model files start with.
    pub name: String,
}

impl PictureShape {
    /// The shape of pictures read into `d`, `valid` of whose training images validate, from
    /// the set `name`.
    pub fn of(d: &qnn::data::Dataset, valid: usize, name: &str) -> Self {
        let (c, h, w) = d.chw;
        PictureShape {
            chw: [c, h, w],
            classes: d.classes(),
            valid,
            name: name.to_string(),
        }
    }
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
            net_text: None,
            epochs: r.options.epochs,
            lr: r.options.lr_start,
            lr_final: r.options.lr_final,
            batch: r.options.batch,
            valid: None,
            flip: r.options.flip,
            crop_pad: r.options.crop_pad,
            shuffle: r.options.shuffle,
            seed: r.options.seed,
            device: Device::Auto,
            adam: true,
            momentum: 0.9,
            out: PathBuf::from("models"),
            pictures: None,
        }
    }
}

impl Settings {
    /// The data set chosen.
    pub fn kind(&self) -> Result<DatasetKind, String> {
        self.dataset.parse()
    }

    /// The seed's network from the fields (bits, blocks, …) on an input of `input` scoring
    /// `classes` classes, unchecked.
    fn seed_net(&self, input: [usize; 3], classes: usize) -> NetConfig {
        NetConfig {
            input,
            classes,
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
        }
    }

    /// The library's settings, checked (messages name settings as the panel labels them, and a
    /// layer list's line and layer).
    pub fn run_settings(&self) -> Result<RunSettings, String> {
        let kind = self.kind()?;
        let (c, h, w, classes) = match (kind, &self.pictures) {
            (DatasetKind::Folder, Some(p)) => (p.chw[0], p.chw[1], p.chw[2], p.classes),
            (DatasetKind::Folder, None) => {
                return Err(
                    "choose or drop a folder of pictures (one sub-folder per class) first".into(),
                )
            }
            _ => {
                let (c, h, w) = kind.chw();
                (c, h, w, kind.classes())
            }
        };
        let net = match &self.net_text {
            None => self.seed_net([c, h, w], classes),
            Some(text) => {
                // without a name the library would name the network after the file, and
                // "layer list" is no file name
                if toml::from_str::<toml::Table>(text).is_ok_and(|t| !t.contains_key("name")) {
                    return Err(format!(
                        "{LAYER_LIST}: give the network a name, e.g. name = \"my-net\" on the first line (it names the model's files)"
                    ));
                }
                NetConfig::from_net_text([c, h, w], classes, text, LAYER_LIST)
                    .map_err(|e| e.to_string())?
            }
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
                crop_pad: self.crop_pad,
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
            valid: self.valid.or(match (kind, &self.pictures) {
                (DatasetKind::Folder, Some(p)) => Some(p.valid),
                _ => None,
            }),
            data_name: self.pictures.as_ref().map(|p| p.name.clone()),
        };
        settings.validate().map_err(|e| e.to_string())?;
        Ok(settings)
    }

    /// The panel's values for a saved model's network and data set (fine-tuning starts there).
    pub fn take_network(&mut self, dataset: &str, net: &NetConfig) {
        if let Ok(k) = dataset.parse::<DatasetKind>() {
            self.dataset = k.name().to_string();
        }
        if let Some(def) = &net.net {
            // the seed's fields stay as they were, for when the person switches back
            self.net_text = Some(def.to_toml());
            return;
        }
        self.net_text = None;
        self.blocks = net.blocks;
        self.quantized = net.quantized;
        self.bits = net.bits;
        self.relu = net.nonlinearity == Nonlinearity::Relu;
        self.sym = net.sym;
    }

    /// The preset a layer list starts from: the one that is the seed's fields' network, if
    /// any, else the first (the seed's default network).
    pub fn starting_preset(&self) -> &'static Preset {
        let seed = seed_layers(&self.seed_net([1, 28, 28], qnn::backend::DEFAULT_CLASSES));
        PRESETS
            .iter()
            .find(|p| NetDef::from_toml(p.toml, p.name).is_ok_and(|d| d.layers == seed))
            .unwrap_or(&PRESETS[0])
    }
}

/// A net file's text as the window edits it: one without a name gets `name = "{stem}"` on a
/// first line (the name `qnn train --net` would give it), since in the window it is no longer
/// a file.
pub fn named_net_text(text: String, path: &Path) -> String {
    let stem = path.file_stem().and_then(|s| s.to_str()).unwrap_or("net");
    let nameable = !stem.is_empty()
        && stem
            .chars()
            .all(|ch| ch.is_ascii_alphanumeric() || "-_.".contains(ch));
    match toml::from_str::<toml::Table>(&text) {
        Ok(t) if !t.contains_key("name") && nameable => format!("name = \"{stem}\"\n{text}"),
        _ => text,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A folder of pictures: without it read, the run is refused with what to do; once read,
    /// the network's input and classes and the validation split follow the pictures.
    #[test]
    fn a_folder_of_pictures_shapes_the_network() {
        let mut s = Settings {
            dataset: DatasetKind::Folder.name().into(),
            ..Settings::default()
        };
        assert!(s.run_settings().unwrap_err().contains("folder of pictures"));
        s.pictures = Some(PictureShape {
            chw: [3, 16, 16],
            classes: 12,
            valid: 7,
            name: "my pets".into(),
        });
        let r = s.run_settings().unwrap();
        assert_eq!((r.net.input, r.net.classes), ([3, 16, 16], 12));
        assert_eq!(r.valid_images(), 7);
        assert!(
            r.model_name().starts_with("my-pets_"),
            "the set's name starts the model's files: {}",
            r.model_name()
        );
        s.valid = Some(3);
        assert_eq!(s.run_settings().unwrap().valid_images(), 3);
    }

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

    /// The LeNet preset with its second conv's kernel made 4: the text, that layer's position
    /// and the line of its `[[layer]]`.
    fn bad_lenet() -> (String, usize, usize) {
        let mut lines: Vec<String> = PRESETS[1].toml.lines().map(String::from).collect();
        let second = lines
            .iter()
            .enumerate()
            .filter(|(_, l)| l.trim_start().starts_with("kernel = 5"))
            .nth(1)
            .unwrap()
            .0;
        lines[second] = lines[second].replace("kernel = 5", "kernel = 4");
        let headers: Vec<usize> = (0..second)
            .filter(|&i| lines[i].trim_start().starts_with("[[layer]]"))
            .collect();
        (
            lines.join("\n"),
            headers.len(),
            headers[headers.len() - 1] + 1,
        )
    }

    #[test]
    fn a_layer_list_builds_the_net_files_network() {
        for p in PRESETS {
            let s = Settings {
                net_text: Some(p.toml.to_string()),
                ..Settings::default()
            };
            let r = s
                .run_settings()
                .unwrap_or_else(|e| panic!("{}: {e}", p.name));
            let want = NetConfig::from_net_text([1, 28, 28], 10, p.toml, LAYER_LIST).unwrap();
            assert_eq!(r.net, want, "{}", p.name);
            assert_eq!(r.model_name(), format!("mnist-mini_{}", p.name));
            // the rest of the run is the panel's, as with the seed's blocks
            let seed = Settings::default().run_settings().unwrap();
            assert_eq!(r.options, seed.options);
        }
    }

    #[test]
    fn a_bad_layer_list_names_the_line_and_the_layer() {
        let (text, layer, line) = bad_lenet();
        let s = Settings {
            net_text: Some(text),
            ..Settings::default()
        };
        let e = s.run_settings().unwrap_err();
        assert!(e.starts_with(&format!("{LAYER_LIST} line {line}: ")), "{e}");
        assert!(e.contains(&format!("layer {layer}")), "{e}");
        assert!(e.contains("kernel 4"), "{e}");
        // TOML that does not parse, and a list without a name
        let s = Settings {
            net_text: Some("name = \"x\"\n\n[[layer]\ntype = \"dense\"\n".into()),
            ..Settings::default()
        };
        assert!(s
            .run_settings()
            .unwrap_err()
            .starts_with("layer list line 3"));
        let s = Settings {
            net_text: Some("[[layer]]\ntype = \"dense\"\n".into()),
            ..Settings::default()
        };
        assert!(s
            .run_settings()
            .unwrap_err()
            .contains("give the network a name"));
    }

    #[test]
    fn a_loaded_layer_list_comes_back_as_its_text() {
        let net = NetConfig::from_net_text([3, 32, 32], 10, PRESETS[3].toml, "x.toml").unwrap();
        let mut s = Settings {
            blocks: [(2, 8), (0, 4), (1, 16)],
            ..Settings::default()
        };
        s.take_network("CIFAR-10", &net);
        assert_eq!(s.dataset, "CIFAR-10");
        assert_eq!(s.net_text, net.net.as_ref().map(NetDef::to_toml));
        assert_eq!(s.run_settings().unwrap().net, net);
        // the seed's fields are kept for a switch back
        assert_eq!(s.blocks, [(2, 8), (0, 4), (1, 16)]);
        // and a seed model's network clears the list
        let seed = RunSettings::new(DatasetKind::MnistMini).net;
        s.take_network("mnist-mini", &seed);
        assert_eq!(s.net_text, None);
        assert_eq!(s.run_settings().unwrap().net, seed);
    }

    #[test]
    fn a_layer_list_starts_from_the_preset_of_the_seeds_fields() {
        let s = Settings::default();
        assert_eq!(s.starting_preset().name, "seed");
        let other = Settings {
            blocks: [(2, 8), (0, 4), (1, 16)],
            ..Settings::default()
        };
        assert_eq!(other.starting_preset().name, PRESETS[0].name);
        let bits8 = Settings {
            bits: 8,
            ..Settings::default()
        };
        assert_eq!(bits8.starting_preset().name, PRESETS[0].name);
    }

    #[test]
    fn settings_stored_before_layer_lists_still_load() {
        let mut v = serde_json::to_value(Settings::default()).unwrap();
        v.as_object_mut().unwrap().remove("net_text");
        let old: Settings = serde_json::from_value(v).unwrap();
        assert_eq!(old, Settings::default());
        let s = Settings {
            net_text: Some(PRESETS[2].toml.into()),
            ..Settings::default()
        };
        let back: Settings = serde_json::from_str(&serde_json::to_string(&s).unwrap()).unwrap();
        assert_eq!(back, s);
    }

    #[test]
    fn a_net_file_without_a_name_is_named_after_the_file() {
        let text = "bits = 2\n\n[[layer]]\ntype = \"dense\"\n".to_string();
        let named = named_net_text(text.clone(), Path::new("nets/tiny-2bit.toml"));
        assert_eq!(named, format!("name = \"tiny-2bit\"\n{text}"));
        let s = Settings {
            net_text: Some(named),
            ..Settings::default()
        };
        assert_eq!(
            s.run_settings().unwrap().model_name(),
            "mnist-mini_tiny-2bit"
        );
        // a file with a name, or one that does not parse, is left as it is
        let p = Path::new("x.toml");
        assert_eq!(named_net_text(PRESETS[0].toml.into(), p), PRESETS[0].toml);
        assert_eq!(named_net_text("[[layer".into(), p), "[[layer");
        assert_eq!(named_net_text(text.clone(), Path::new("my net.toml")), text);
    }

    /// The window's settings for `qnn gui ARGS`.
    fn gui_flags(args: &[&std::ffi::OsStr]) -> anyhow::Result<Settings> {
        use crate::cli::args::{Cli, Command};
        use clap::Parser;
        let line = ["qnn".as_ref(), "gui".as_ref()]
            .into_iter()
            .chain(args.iter().copied());
        match Cli::try_parse_from(line).unwrap().command {
            Command::Gui(g) => g.train.gui_settings(),
            _ => unreachable!(),
        }
    }

    /// `qnn gui --net FILE`'s window edits the file's layers; a file that cannot be read is
    /// refused before the window opens.
    #[test]
    fn qnn_gui_net_file_becomes_the_layer_list() {
        let gui = |net: &Path| gui_flags(&["--net".as_ref(), net.as_os_str()]);
        let dir = std::env::temp_dir().join(format!("qnn-gui-net-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("mlp.toml");
        std::fs::write(&file, PRESETS[2].toml).unwrap();
        let s = gui(&file).unwrap();
        assert_eq!(s.net_text.as_deref(), Some(PRESETS[2].toml));
        assert_eq!(
            s.run_settings().unwrap().net,
            NetConfig::from_net_text([1, 28, 28], 10, PRESETS[2].toml, "x").unwrap()
        );
        let missing = gui(&dir.join("missing.toml")).unwrap_err().to_string();
        assert!(missing.contains("missing.toml"), "{missing}");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    /// `qnn gui --first-bits 8 --last-bits 8`: the layer list qnn train builds of those flags.
    #[test]
    fn qnn_gui_end_bits_become_the_layer_list() {
        use crate::cli::args::{Cli, Command};
        use clap::Parser;
        let flags = ["--first-bits", "8", "--last-bits", "8", "--nfa", "16"];
        let s = gui_flags(&flags.map(AsRef::as_ref)).unwrap();
        let train = ["qnn", "train"].into_iter().chain(flags);
        let Command::Train(t) = Cli::try_parse_from(train).unwrap().command else {
            unreachable!()
        };
        let want = crate::cli::train_cmd::net_config(&t.net, (1, 28, 28), 10).unwrap();
        let got = s.run_settings().unwrap();
        assert_eq!(got.net.layer_list(), want.layer_list());
        let name = want.net.as_ref().unwrap().name.clone();
        assert!(name.ends_with("_first8_last8"), "{name}");
        assert_eq!(got.model_name(), format!("mnist-mini_{name}"));
    }
}
