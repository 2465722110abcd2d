//! The settings panel: the seed's flags and the run's extras, edited in place.

use eframe::egui::{self};
use qnn::data::DatasetKind;

use super::RED;
use crate::gui::app::QnnApp;
use crate::gui::settings::Device;

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
                .on_hover_text("A folder with MNIST's four IDX files or CIFAR-10's batches (or drop it on the window)")
                .clicked()
            {
                picked = rfd::FileDialog::new().pick_folder();
            }
            if ui
                .add_enabled(needs_files, egui::Button::new("Archive…"))
                .on_hover_text("CIFAR-10's cifar-10-binary.tar.gz, or one of MNIST's files (its siblings beside it)")
                .clicked()
            {
                picked = rfd::FileDialog::new().pick_file();
            }
        });
        if let Some(p) = picked {
            app.take_data_path(p);
        }
        let s = &mut app.settings;
        ui.add_space(6.0);
        ui.heading("Network");
        num(ui, "bits", &mut s.bits, 0..=16, "Bits of weights and activations: 0 = binary (±1), 1 … 16 [seed: -nb]");
        ui.checkbox(&mut s.quantized, "quantized")
            .on_hover_text("Off: a float network of the same shape [seed: -q]");
        ui.horizontal(|ui| {
            ui.radio_value(&mut s.relu, true, "relu");
            ui.radio_value(&mut s.relu, false, "hardtanh");
        })
        .response
        .on_hover_text("The nonlinearity whose range is quantized [seed: -nl]");
        ui.add_enabled(!s.relu, egui::Checkbox::new(&mut s.sym, "symmetric clipping"))
            .on_hover_text("hardtanh reaches +1 (binary ±1 needs it) [seed: -sym]");
        for (i, block) in ["A", "B", "C"].iter().enumerate() {
            ui.horizontal(|ui| {
                ui.label(format!("block {block}"));
                ui.add(egui::DragValue::new(&mut s.blocks[i].0).range(0..=8).suffix(" layers"))
                    .on_hover_text(format!("Conv layers in block {block} (0: the block only pools) [seed: -nl{}]", block.to_lowercase()));
                ui.add(egui::DragValue::new(&mut s.blocks[i].1).range(1..=1024).suffix(" filters"))
                    .on_hover_text(format!("Filters per layer in block {block} [seed: -nf{}]", block.to_lowercase()));
            });
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
                if r.net.quantized {
                    format!("{} bit", r.net.weight_quant().storage_bits())
                } else {
                    "32 bit".into()
                },
                sum.float_bytes as f64 / 1024.0
            ));
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
        Err(e) => {
            ui.colored_label(RED, e);
        }
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
