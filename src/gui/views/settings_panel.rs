//! The settings panel: the seed's flags (or a layer list) and the run's extras, edited in place.

use eframe::egui::{self};
use qnn::data::DatasetKind;
use qnn::model::{Summary, PRESETS};
use qnn::run::RunSettings;

use super::RED;
use crate::gui::app::QnnApp;
use crate::gui::settings::{Device, Settings};

pub(super) fn settings_panel(app: &mut QnnApp, ui: &mut egui::Ui) {
    let enabled = !app.is_training();
    ui.add_enabled_ui(enabled, |ui| {
        let s = &mut app.settings;
        ui.heading("Data");
        egui::ComboBox::from_label("data set")
            .selected_text(s.dataset.clone())
            .show_ui(ui, |ui| {
                for k in [DatasetKind::MnistMini, DatasetKind::Mnist, DatasetKind::Cifar10] {
                    ui.selectable_value(&mut s.dataset, k.name().to_string(), k.name());
                }
                ui.selectable_value(
                    &mut s.dataset,
                    DatasetKind::Folder.name().to_string(),
                    "your pictures (a folder or .zip)",
                )
                .on_hover_text("A folder with one sub-folder of pictures (PNG, JPEG, BMP, GIF, WebP) per class, or a .zip of one: Folder…, Archive… or drop it on the window");
            })
            .response
            .on_hover_text("mnist-mini is built in (5000 + 1000 images); MNIST and CIFAR-10 need their files [seed: -ds]");
        let needs_files = s.dataset != DatasetKind::MnistMini.name();
        if needs_files {
            let shown = s
                .data_path
                .as_ref()
                .map_or("(none: choose or drop)".to_string(), |p| p.display().to_string());
            ui.label(format!("files: {shown}"));
        }
        let mut picked = None;
        ui.horizontal(|ui| {
            if ui
                .add_enabled(needs_files, egui::Button::new("Folder…"))
                .on_hover_text("A folder of pictures (one sub-folder per class), or one with MNIST's four IDX files or CIFAR-10's batches (or drop it on the window)")
                .clicked()
            {
                picked = rfd::FileDialog::new().pick_folder();
            }
            if ui
                .add_enabled(needs_files, egui::Button::new("Archive…"))
                .on_hover_text("A .zip of a folder of pictures, CIFAR-10's cifar-10-binary.tar.gz, or one of MNIST's files (its siblings beside it)")
                .clicked()
            {
                // no filter: MNIST's files have no extension to filter on
                picked = rfd::FileDialog::new().pick_file();
            }
        });
        if let Some(p) = picked {
            app.take_data_path(p);
        }
        let s = &mut app.settings;
        ui.add_space(6.0);
        ui.heading("Network");
        network_choice(ui, s);
        if s.net_text.is_some() {
            layer_list(ui, s);
        } else {
            seed_blocks(ui, s);
        }
        ui.add_space(6.0);
        ui.heading("Training");
        num(ui, "epochs", &mut s.epochs, 1..=10_000, "Epochs [seed: -ne]");
        ui.horizontal(|ui| {
            ui.label("learning rate");
            ui.add(egui::DragValue::new(&mut s.lr).speed(0.001).range(1e-7..=10.0).max_decimals(6))
                .on_hover_text("Starting learning rate [seed: -lr]");
        });
        ui.horizontal(|ui| {
            ui.label("final rate");
            ui.add(egui::DragValue::new(&mut s.lr_final).speed(1e-7).range(0.0..=10.0).max_decimals(9))
                .on_hover_text("Learning rate reached after the last epoch (exponential decay)");
        });
        num(ui, "batch", &mut s.batch, 1..=65_536, "Images per training step");
        let mut valid = s.valid.unwrap_or(0);
        ui.horizontal(|ui| {
            ui.label("validation images");
            ui.add(egui::DragValue::new(&mut valid).range(0..=1_000_000))
                .on_hover_text("Taken from the end of the training file; 0 = the data set's default (MNIST 10000, CIFAR-10 5000, mnist-mini 1000)");
        });
        s.valid = (valid > 0).then_some(valid);
        ui.checkbox(&mut s.flip, "left-right flips")
            .on_hover_text("Double the training split with mirrored images");
        num(ui, "random crop padding", &mut s.crop_pad, 0..=15, "Shift each training image by up to this many pixels (zero padding), a new shift every step; 0: off [qnn train --crop-pad]");
        ui.checkbox(&mut s.shuffle, "shuffle").on_hover_text("A new seeded order every epoch");
        num(ui, "seed", &mut s.seed, 0..=u64::MAX, "Seeds the initial weights and the order");
        ui.horizontal(|ui| {
            ui.radio_value(&mut s.adam, true, "Adam");
            ui.radio_value(&mut s.adam, false, "SGD");
            if !s.adam {
                ui.add(egui::DragValue::new(&mut s.momentum).speed(0.01).range(0.0..=0.999))
                    .on_hover_text("SGD momentum");
            }
        })
        .response
        .on_hover_text("The update rule (the seed uses Adam)");
        ui.horizontal(|ui| {
            ui.label("device");
            ui.radio_value(&mut s.device, Device::Auto, "auto")
                .on_hover_text("The window's GPU when it is a hardware one, else the CPU backend");
            ui.radio_value(&mut s.device, Device::Gpu, "GPU")
                .on_hover_text("The window's GPU, even a software one (slow)");
            ui.radio_value(&mut s.device, Device::Cpu, "CPU")
                .on_hover_text("The multi-threaded CPU backend");
        });
        ui.horizontal(|ui| {
            ui.label("run folder");
            let mut text = s.out.display().to_string();
            if ui
                .text_edit_singleline(&mut text)
                .on_hover_text("Model, metrics, plot and training state go here (qnn train --out)")
                .changed()
            {
                s.out = text.into();
            }
        });
    });
    ui.add_space(6.0);
    ui.heading("Model");
    match app.settings.run_settings() {
        Ok(r) => {
            let sum = r.net.summary();
            ui.label(format!(
                "{} parameters, {:.1} KiB at {} (float32: {:.1} KiB)",
                sum.params,
                sum.weight_bytes as f64 / 1024.0,
                widths(&r, &sum),
                sum.float_bytes as f64 / 1024.0
            ))
            .on_hover_text("Parameter memory with the weights at their widths (biases and batch norms in float32)");
            ui.label(format!(
                "{:.2} M multiply-adds, ≈ {:.3} µJ per image",
                sum.macs as f64 / 1e6,
                sum.energy_uj
            ))
            .on_hover_text("Energy from 45 nm estimates (qnn energy explains the model)");
            egui::CollapsingHeader::new("layers").show(ui, |ui| {
                ui.label(egui::RichText::new(sum.to_string()).monospace().small());
            });
        }
        // the network follows the pictures being read: no error until they are
        Err(_) if app.reading.is_some() => {
            ui.label("(when the pictures are read)");
        }
        Err(e) => {
            ui.colored_label(RED, e);
        }
    }
}

/// The choice between the seed's blocks and a layer list. A list set aside by switching back
/// to the blocks returns when the person switches again (until the window closes); a first one
/// starts from the preset that is the blocks' network, else the seed's.
fn network_choice(ui: &mut egui::Ui, s: &mut Settings) {
    let mut list = s.net_text.is_some();
    ui.horizontal(|ui| {
        ui.radio_value(&mut list, false, "seed's blocks")
            .on_hover_text("Blocks A, B, C of 3×3 convs at one bit width, as the seed's flags give them");
        ui.radio_value(&mut list, true, "layer list")
            .on_hover_text("Any list of conv, pool and dense layers with bits per layer, written as a net file [qnn train --net FILE]");
    });
    let set_aside = egui::Id::unique("qnn layer list set aside");
    match (list, s.net_text.is_some()) {
        (true, false) => {
            let kept = ui.data_mut(|d| d.remove_temp::<String>(set_aside));
            s.net_text = Some(kept.unwrap_or_else(|| s.starting_preset().toml.to_string()));
        }
        (false, true) => {
            if let Some(text) = s.net_text.take() {
                ui.data_mut(|d| d.insert_temp(set_aside, text));
            }
        }
        _ => {}
    }
}

/// The layer list: a preset to start from and the net file's text, edited in place without
/// wrapping its lines, and under it whether the text makes a network (checked every frame, so
/// as the person types; the "Model" section below has the summary).
fn layer_list(ui: &mut egui::Ui, s: &mut Settings) {
    let Some(text) = s.net_text.as_mut() else {
        return;
    };
    let current = PRESETS.iter().find(|p| p.toml == text.as_str());
    egui::ComboBox::from_label("preset")
        .selected_text(current.map_or("(own list)", |p| p.label))
        .truncate()
        .show_ui(ui, |ui| {
            for p in &PRESETS {
                let picked = current.is_some_and(|c| c.name == p.name);
                if ui
                    .selectable_label(picked, p.label)
                    .on_hover_text(format!("examples/nets/{}.toml", p.name))
                    .clicked()
                {
                    *text = p.toml.to_string();
                }
            }
        })
        .response
        .on_hover_text("Replaces the text below with one of examples/nets/ (edits to it are lost); \"(own list)\": the text is none of them");
    // a net file's lines stay lines: long ones scroll sideways instead of wrapping
    let mut unwrapped = |ui: &egui::Ui, buf: &dyn egui::TextBuffer, _wrap_width: f32| {
        let job = egui::text::LayoutJob::simple(
            buf.as_str().to_owned(),
            egui::TextStyle::Monospace.resolve(ui.style()),
            ui.visuals().text_color(),
            f32::INFINITY,
        );
        ui.fonts_mut(|f| f.layout_job(job))
    };
    egui::ScrollArea::both()
        .id_salt("layer list")
        .max_height(280.0)
        .show(ui, |ui| {
            ui.add(
                egui::TextEdit::multiline(text)
                    .code_editor()
                    .desired_rows(14)
                    .desired_width(f32::INFINITY)
                    .layouter(&mut unwrapped),
            );
        });
    // (the help is here, not on the editor, where it would cover the text while typing)
    let help = "The network as a net file (TOML): name, file-wide bits / w_bits / a_bits / nonlinearity / sym, then a [[layer]] table per layer (type = conv, max_pool, global_avg_pool or dense), the last a dense layer (README: \"Writing a net file\") [qnn train --net FILE]";
    match s.run_settings() {
        Ok(r) => ui.weak(format!(
            "{} layers, {} parameters (the table: Model, below)",
            r.net.layer_list().len(),
            r.net.summary().params
        )),
        Err(e) => ui.colored_label(RED, e),
    }
    .on_hover_text(help);
}

/// The seed's network: blocks A, B, C of 3×3 convs at one bit width (the seed's flags).
fn seed_blocks(ui: &mut egui::Ui, s: &mut Settings) {
    num(
        ui,
        "bits",
        &mut s.bits,
        0..=16,
        "Bits of weights and activations: 0 = binary (±1), 1 … 16 [seed: -nb]",
    );
    ui.checkbox(&mut s.quantized, "quantized")
        .on_hover_text("Off: a float network of the same shape [seed: -q]");
    ui.horizontal(|ui| {
        ui.radio_value(&mut s.relu, true, "relu");
        ui.radio_value(&mut s.relu, false, "hardtanh");
    })
    .response
    .on_hover_text("The nonlinearity whose range is quantized [seed: -nl]");
    ui.add_enabled(
        !s.relu,
        egui::Checkbox::new(&mut s.sym, "symmetric clipping"),
    )
    .on_hover_text("hardtanh reaches +1 (binary ±1 needs it) [seed: -sym]");
    for (i, block) in ["A", "B", "C"].iter().enumerate() {
        ui.horizontal(|ui| {
            ui.label(format!("block {block}"));
            ui.add(
                egui::DragValue::new(&mut s.blocks[i].0)
                    .range(0..=8)
                    .suffix(" layers"),
            )
            .on_hover_text(format!(
                "Conv layers in block {block} (0: the block only pools) [seed: -nl{}]",
                block.to_lowercase()
            ));
            ui.add(
                egui::DragValue::new(&mut s.blocks[i].1)
                    .range(1..=1024)
                    .suffix(" filters"),
            )
            .on_hover_text(format!(
                "Filters per layer in block {block} [seed: -nf{}]",
                block.to_lowercase()
            ));
        });
    }
}

/// The weights' width for the summary line: the seed's one width, or a layer list's: `4 bit`
/// when every layer's weights have it, else `per-layer widths (4, 8, 32 bit)`.
fn widths(r: &RunSettings, sum: &Summary) -> String {
    if r.net.net.is_none() {
        return if r.net.quantized {
            format!("{} bit", r.net.weight_quant().storage_bits())
        } else {
            "32 bit".into()
        };
    }
    let mut bits: Vec<usize> = sum
        .rows
        .iter()
        .map(|row| row.weight_bits)
        .filter(|&b| b > 0)
        .collect();
    bits.sort_unstable();
    bits.dedup();
    match bits.as_slice() {
        [one] => format!("{one} bit"),
        many => format!(
            "per-layer widths ({} bit)",
            many.iter()
                .map(usize::to_string)
                .collect::<Vec<_>>()
                .join(", ")
        ),
    }
}

pub(super) fn num<T: egui::emath::Numeric>(
    ui: &mut egui::Ui,
    label: &str,
    v: &mut T,
    range: std::ops::RangeInclusive<T>,
    tip: &str,
) {
    ui.horizontal(|ui| {
        ui.label(label);
        ui.add(egui::DragValue::new(v).range(range))
            .on_hover_text(tip);
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    fn width_line(net_text: Option<&str>) -> String {
        let s = Settings {
            net_text: net_text.map(String::from),
            ..Settings::default()
        };
        let r = s.run_settings().unwrap();
        widths(&r, &r.net.summary())
    }

    /// The summary line's width: the seed's one width, a layer list's per layer.
    #[test]
    fn the_summary_names_each_layer_lists_widths() {
        assert_eq!(width_line(None), "4 bit");
        let of = |name: &str| PRESETS.iter().find(|p| p.name == name).unwrap().toml;
        // the seed's network as a list: its float output layer shows
        assert_eq!(width_line(Some(of("seed"))), "per-layer widths (4, 32 bit)");
        assert_eq!(
            width_line(Some(of("seed-cifar10-8bit-ends"))),
            "per-layer widths (4, 8 bit)"
        );
        let one_width = "name = \"x\"\nbits = 2\nnonlinearity = \"relu\"\n\n[[layer]]\ntype = \"dense\"\nw_bits = 2\n";
        assert_eq!(width_line(Some(one_width)), "2 bit");
    }
}
