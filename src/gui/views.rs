//! Drawing: the tool bar, the settings panel, and each live view. Nothing here computes what
//! it shows (that is `qnn::inspect` and the run); it lays out and paints.

use eframe::egui::{self, Color32, CornerRadius, Pos2, Rect, Sense, Stroke, Vec2};
use egui_plot::{Legend, Line, Plot, Points};
use qnn::data::DatasetKind;
use qnn::inspect::{softmax, ConfusionMatrix, Filters, LevelHistogram, CLASSES};

use super::app::{overwrite_and_start, Ask, QnnApp};
use super::settings::Device;
use super::worker::{StartFrom, GRID_IMAGES};

const BLUE: Color32 = Color32::from_rgb(60, 110, 220);
const RED: Color32 = Color32::from_rgb(215, 60, 50);
const GREEN: Color32 = Color32::from_rgb(40, 160, 70);
const GREY: Color32 = Color32::from_rgb(140, 140, 140);

/// The whole window.
pub fn window(app: &mut QnnApp, ui: &mut egui::Ui) {
    egui::Panel::top("tools").show(ui, |ui| tool_bar(app, ui));
    egui::Panel::bottom("status").show(ui, |ui| status_bar(app, ui));
    egui::Panel::left("settings")
        .default_size(270.0)
        .show(ui, |ui| {
            egui::ScrollArea::vertical().show(ui, |ui| settings_panel(app, ui));
        });
    egui::CentralPanel::default().show(ui, |ui| {
        egui::ScrollArea::vertical().show(ui, |ui| views(app, ui));
    });
    ask_dialog(app, ui.ctx());
}

fn tool_bar(app: &mut QnnApp, ui: &mut egui::Ui) {
    let ctx = ui.ctx().clone();
    let training = app.is_training();
    let files = app.run_files();
    let can_resume = !training && files.as_ref().is_some_and(|p| p.state.is_file());
    ui.horizontal_wrapped(|ui| {
        if ui
            .add_enabled(!training, egui::Button::new("Start"))
            .on_hover_text("Train a new run with these settings; its files go to the run folder")
            .clicked()
        {
            app.start(StartFrom::Fresh { overwrite: false }, &ctx);
        }
        let pause_label = if app.paused() { "Continue" } else { "Pause" };
        if ui
            .add_enabled(training, egui::Button::new(pause_label))
            .on_hover_text("Pause between two steps; nothing is lost")
            .clicked()
        {
            app.toggle_pause();
        }
        if ui
            .add_enabled(training, egui::Button::new("Stop"))
            .on_hover_text("Stop after the current step; finished epochs stay saved (Resume continues)")
            .clicked()
        {
            app.stop();
        }
        if ui
            .add_enabled(can_resume, egui::Button::new("Resume"))
            .on_hover_text("Continue the run saved in the run folder for these settings (qnn train --resume)")
            .clicked()
        {
            app.start(StartFrom::Resume, &ctx);
        }
        let have_model = app.shown.best_model.is_some();
        if ui
            .add_enabled(!training && have_model, egui::Button::new("Fine-tune"))
            .on_hover_text("Train on from the model shown (qnn train -ft 1): it stays the best until an epoch does at least as well")
            .clicked()
        {
            if let Some(b) = app.shown.best_model.clone() {
                app.start(StartFrom::FineTune(b), &ctx);
            }
        }
        ui.separator();
        if ui
            .add_enabled(!training, egui::Button::new("Load model…"))
            .on_hover_text("Open a .safetensors model to explore, evaluate or fine-tune")
            .clicked()
        {
            if let Some(p) = rfd::FileDialog::new()
                .add_filter("qnn model", &["safetensors"])
                .pick_file()
            {
                app.load_model(&p);
            }
        }
        if ui
            .add_enabled(have_model, egui::Button::new("Save model…"))
            .on_hover_text("Save the best model (the same .safetensors as qnn train)")
            .clicked()
        {
            save_model(app);
        }
        if ui
            .add_enabled(!app.shown.history.is_empty(), egui::Button::new("Export curves…"))
            .on_hover_text("Save the loss and error curves as a PNG")
            .clicked()
        {
            export_curves(app);
        }
        if ui
            .add_enabled(!training && have_model, egui::Button::new("Evaluate"))
            .on_hover_text("Test error and confusion matrix of the model shown on the test set (CPU)")
            .clicked()
        {
            app.evaluate_shown();
        }
    });
}

fn save_model(app: &mut QnnApp) {
    let Some(bytes) = app.shown.best_model.clone() else {
        return;
    };
    let name = app
        .settings
        .run_settings()
        .map(|s| s.model_name())
        .unwrap_or_else(|_| "model".into());
    if let Some(p) = rfd::FileDialog::new()
        .add_filter("qnn model", &["safetensors"])
        .set_file_name(format!("{name}.safetensors"))
        .save_file()
    {
        match qnn::checkpoint::write_atomic(&p, &bytes) {
            Ok(()) => app.say(false, format!("saved {}", p.display())),
            Err(e) => app.say(true, e.to_string()),
        }
    }
}

fn export_curves(app: &mut QnnApp) {
    if let Some(p) = rfd::FileDialog::new()
        .add_filter("PNG", &["png"])
        .set_file_name("curves.png")
        .save_file()
    {
        match crate::cli::plot::curves(&p, &app.shown.history, &app.shown.title) {
            Ok(()) => app.say(false, format!("curves saved to {}", p.display())),
            Err(e) => app.say(true, format!("{}: {e:#}", p.display())),
        }
    }
}

fn status_bar(app: &mut QnnApp, ui: &mut egui::Ui) {
    for (error, text) in &app.messages {
        let color = if *error {
            RED
        } else {
            ui.visuals().text_color()
        };
        ui.colored_label(color, text);
    }
    ui.horizontal(|ui| {
        ui.label(format!("status: {}", app.status));
        ui.separator();
        let device = app
            .running
            .as_ref()
            .map(|r| r.device.clone())
            .filter(|d| !d.is_empty())
            .unwrap_or_else(|| format!("window GPU: {}", app.adapter));
        ui.label(device);
        if let Some((median, _, worst)) = app.frames.summary() {
            ui.separator();
            ui.label(format!("frame {median:.0} ms (worst {worst:.0} ms)"))
                .on_hover_text("Time between frames drawn while training");
        }
    });
}

fn ask_dialog(app: &mut QnnApp, ctx: &egui::Context) {
    let Some(Ask::Overwrite(file)) = &app.ask else {
        return;
    };
    let text = format!(
        "{} already exists. Resume that run, or start over and replace it?",
        file.display()
    );
    let mut choice = None;
    egui::Window::new("This run has files already")
        .collapsible(false)
        .resizable(false)
        .anchor(egui::Align2::CENTER_CENTER, Vec2::ZERO)
        .show(ctx, |ui| {
            ui.label(text);
            ui.horizontal(|ui| {
                if ui.button("Resume").clicked() {
                    choice = Some(0);
                }
                if ui.button("Start over (replace)").clicked() {
                    choice = Some(1);
                }
                if ui.button("Cancel").clicked() {
                    choice = Some(2);
                }
            });
        });
    match choice {
        Some(0) => {
            app.ask = None;
            app.start(StartFrom::Resume, ctx);
        }
        Some(1) => overwrite_and_start(app, ctx),
        Some(2) => app.ask = None,
        _ => {}
    }
}

fn settings_panel(app: &mut QnnApp, ui: &mut egui::Ui) {
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

fn num<T: egui::emath::Numeric>(
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

fn views(app: &mut QnnApp, ui: &mut egui::Ui) {
    ui.heading(if app.shown.title.is_empty() {
        "No run yet: choose settings and press Start, or load a model".to_string()
    } else {
        app.shown.title.clone()
    });
    progress(app, ui);
    curves(app, ui);
    ui.add_space(8.0);
    ui.horizontal_top(|ui| {
        ui.vertical(|ui| {
            ui.strong("First layer's filters");
            match &app.shown.probe {
                Some(p) => filters(ui, &p.filters),
                None => {
                    ui.label("(after the first step)");
                }
            }
        });
        ui.add_space(16.0);
        ui.vertical(|ui| {
            ui.strong("Activations on the quantization levels");
            match &app.shown.probe {
                Some(p) => {
                    ui.label(format!("on {} {} images", p.images, app.shown.probe_images));
                    for h in &p.activations {
                        histogram(ui, h);
                    }
                }
                None => {
                    ui.label("(after the first step)");
                }
            }
        });
    });
    ui.add_space(8.0);
    ui.horizontal_top(|ui| {
        ui.vertical(|ui| {
            ui.strong("Confusion matrix (validation)");
            match &app.shown.confusion {
                Some(m) => confusion(ui, m),
                None => {
                    ui.label("(at the end of each epoch)");
                }
            }
        });
        ui.add_space(16.0);
        ui.vertical(|ui| {
            ui.strong("Test images: predicted (true)");
            test_grid(app, ui);
        });
        let mnist_shaped = app.settings.kind().is_ok_and(|k| k.chw() == (1, 28, 28));
        if mnist_shaped {
            ui.add_space(16.0);
            ui.vertical(|ui| {
                ui.strong("Draw a digit");
                draw_pad(app, ui);
            });
        }
    });
}

fn progress(app: &QnnApp, ui: &mut egui::Ui) {
    let s = &app.shown;
    let Some((epoch, step, steps)) = s.progress else {
        if app.is_training() {
            ui.label(&app.status);
        }
        return;
    };
    ui.horizontal(|ui| {
        let frac = step as f32 / steps.max(1) as f32;
        ui.add(
            egui::ProgressBar::new(frac)
                .desired_width(360.0)
                .text(format!(
                    "epoch {epoch} of {}: step {step} / {steps}",
                    s.epochs
                )),
        );
        ui.label(format!("{:.0} images/s", s.images_per_second));
        if let Some(left) = s.seconds_left.filter(|_| app.is_training()) {
            ui.label(format!("about {} left", human_time(left)));
        }
    });
}

fn human_time(s: f64) -> String {
    if s < 90.0 {
        format!("{s:.0} s")
    } else if s < 5400.0 {
        format!("{:.0} min", s / 60.0)
    } else {
        format!("{:.1} h", s / 3600.0)
    }
}

fn curves(app: &QnnApp, ui: &mut egui::Ui) {
    let s = &app.shown;
    if s.history.is_empty() && s.step_loss.is_empty() {
        ui.label("Curves appear while a run trains.");
        return;
    }
    let per_epoch = |f: fn(&qnn::train::EpochReport) -> f64| -> Vec<[f64; 2]> {
        s.history.iter().map(|r| [r.epoch as f64, f(r)]).collect()
    };
    let best: Vec<&qnn::train::EpochReport> = s.history.iter().filter(|r| r.improved).collect();
    let width = (ui.available_width() - 24.0) / 3.0;
    ui.horizontal(|ui| {
        chart("loss", width, "loss").show(ui, |p| {
            p.line(
                Line::new("training (running)", s.step_loss.clone())
                    .color(BLUE.gamma_multiply(0.5)),
            );
            p.line(Line::new("training", per_epoch(|r| r.train_loss)).color(BLUE));
            p.line(Line::new("validation", per_epoch(|r| r.val_loss)).color(RED));
            let test: Vec<[f64; 2]> = best.iter().map(|r| [r.epoch as f64, r.test_loss]).collect();
            p.points(
                Points::new("test (at each best)", test)
                    .color(GREEN)
                    .radius(4.0),
            );
        });
        chart("error", width, "error %").show(ui, |p| {
            p.line(
                Line::new("training (running)", s.step_error.clone())
                    .color(BLUE.gamma_multiply(0.5)),
            );
            p.line(Line::new("validation", per_epoch(|r| r.val_error)).color(RED));
            let test: Vec<[f64; 2]> = best
                .iter()
                .map(|r| [r.epoch as f64, r.test_error])
                .collect();
            p.points(
                Points::new("test (at each best)", test)
                    .color(GREEN)
                    .radius(4.0),
            );
        });
        chart("lr", width, "log10 learning rate").show(ui, |p| {
            let lr: Vec<[f64; 2]> = s
                .history
                .iter()
                .map(|r| [r.epoch as f64, (r.lr as f64).log10()])
                .collect();
            p.line(Line::new("learning rate", lr).color(GREY));
        });
    });
}

/// A chart of the curves' row: epochs across, a legend.
fn chart(id: &'static str, width: f32, y_label: &'static str) -> Plot<'static> {
    Plot::new(id)
        .width(width)
        .height(170.0)
        .legend(Legend::default())
        .x_axis_label("epoch")
        .y_axis_label(y_label)
}

/// A shade of grey for a level's rank (0 black … 1 white).
fn grey(v: f32) -> Color32 {
    let g = (v.clamp(0.0, 1.0) * 255.0).round() as u8;
    Color32::from_gray(g)
}

fn filters(ui: &mut egui::Ui, f: &Filters) {
    match &f.levels {
        Some(levels) => {
            let shown: Vec<String> = if levels.len() <= 9 {
                levels.iter().map(|l| format!("{l}")).collect()
            } else {
                vec![format!(
                    "{} levels from {} to {}",
                    levels.len(),
                    levels[0],
                    levels[levels.len() - 1]
                )]
            };
            ui.label(format!(
                "{} filters × {} channels, levels {{{}}}: {} used",
                f.cout,
                f.cin,
                shown.join(", "),
                f.levels_used()
            ));
        }
        None => {
            ui.label(format!(
                "{} filters × {} channels (float weights)",
                f.cout, f.cin
            ));
        }
    }
    let cell = 9.0;
    let kernel = cell * 3.0;
    let gap = 4.0;
    let per_row = (360.0 / (kernel * f.cin as f32 + gap)).floor().max(1.0) as usize;
    let rows = f.cout.div_ceil(per_row);
    let size = Vec2::new(
        per_row as f32 * (kernel * f.cin as f32 + gap),
        rows as f32 * (kernel + gap),
    );
    let (rect, resp) = ui.allocate_exact_size(size, Sense::hover());
    let painter = ui.painter_at(rect);
    for filt in 0..f.cout {
        let (r, c) = (filt / per_row, filt % per_row);
        let origin = rect.min
            + Vec2::new(
                c as f32 * (kernel * f.cin as f32 + gap),
                r as f32 * (kernel + gap),
            );
        for ch in 0..f.cin {
            for (i, &w) in f.kernel(filt, ch).iter().enumerate() {
                let p = origin
                    + Vec2::new(
                        ch as f32 * kernel + (i % 3) as f32 * cell,
                        (i / 3) as f32 * cell,
                    );
                painter.rect_filled(
                    Rect::from_min_size(p, Vec2::splat(cell)),
                    CornerRadius::ZERO,
                    grey(f.shade(w)),
                );
            }
        }
    }
    resp.on_hover_text("Each square is a 3×3 kernel at its quantized levels (black: lowest level, white: highest); a filter's input channels side by side");
}

fn histogram(ui: &mut egui::Ui, h: &LevelHistogram) {
    let used = match h.quantizer_levels {
        Some(n) => format!("{} of {n} levels used", h.used()),
        None => "float".to_string(),
    };
    ui.label(format!("{}: {used}", h.layer));
    let (w, ht) = (300.0, 40.0);
    let (rect, resp) = ui.allocate_exact_size(Vec2::new(w, ht), Sense::hover());
    let painter = ui.painter_at(rect);
    painter.rect_stroke(
        rect,
        CornerRadius::ZERO,
        Stroke::new(1.0, GREY),
        egui::StrokeKind::Inside,
    );
    let max = h.counts.iter().copied().max().unwrap_or(0).max(1) as f32;
    let n = h.counts.len().max(1) as f32;
    let bw = w / n;
    for (i, &c) in h.counts.iter().enumerate() {
        let bh = (c as f32 / max) * (ht - 2.0);
        let x = rect.min.x + i as f32 * bw;
        let bar = Rect::from_min_max(
            Pos2::new(x + 0.5, rect.max.y - 1.0 - bh),
            Pos2::new(x + bw - 0.5, rect.max.y - 1.0),
        );
        painter.rect_filled(bar, CornerRadius::ZERO, BLUE);
    }
    let tip = h
        .levels
        .iter()
        .zip(&h.counts)
        .map(|(l, c)| format!("{l:>8.4}: {c}"))
        .take(32)
        .collect::<Vec<_>>()
        .join("\n");
    resp.on_hover_text(egui::RichText::new(tip).monospace());
}

fn confusion(ui: &mut egui::Ui, m: &ConfusionMatrix) {
    ui.label(format!(
        "{:.2}% error on {} images; rows: true class, columns: predicted",
        m.error_percent(),
        m.total()
    ));
    let cell = 26.0;
    let (rect, _) =
        ui.allocate_exact_size(Vec2::splat(cell * (CLASSES as f32 + 1.0)), Sense::hover());
    let painter = ui.painter_at(rect);
    let font = egui::FontId::monospace(10.0);
    let text = ui.visuals().text_color();
    for k in 0..CLASSES {
        let c = cell * (k as f32 + 1.5);
        painter.text(
            rect.min + Vec2::new(c, cell * 0.5),
            egui::Align2::CENTER_CENTER,
            k.to_string(),
            font.clone(),
            text,
        );
        painter.text(
            rect.min + Vec2::new(cell * 0.5, c),
            egui::Align2::CENTER_CENTER,
            k.to_string(),
            font.clone(),
            text,
        );
    }
    for t in 0..CLASSES {
        let row: u64 = (0..CLASSES).map(|p| m.get(t, p)).sum::<u64>().max(1);
        for p in 0..CLASSES {
            let n = m.get(t, p);
            let share = n as f32 / row as f32;
            let base = if t == p { GREEN } else { RED };
            let fill = if n == 0 {
                Color32::TRANSPARENT
            } else {
                base.gamma_multiply(0.15 + 0.85 * share)
            };
            let r = Rect::from_min_size(
                rect.min + Vec2::new(cell * (p as f32 + 1.0), cell * (t as f32 + 1.0)),
                Vec2::splat(cell - 1.0),
            );
            painter.rect_filled(r, CornerRadius::ZERO, fill);
            if n > 0 {
                painter.text(
                    r.center(),
                    egui::Align2::CENTER_CENTER,
                    n.to_string(),
                    font.clone(),
                    text,
                );
            }
        }
    }
    let worst: Vec<String> = m
        .worst(3)
        .iter()
        .map(|(t, p, c)| format!("{t}→{p} ×{c}"))
        .collect();
    if !worst.is_empty() {
        ui.label(format!("most confused: {}", worst.join(", ")));
    }
}

fn test_grid(app: &mut QnnApp, ui: &mut egui::Ui) {
    let Some(data) = app.data().cloned() else {
        ui.label("(when the data are loaded)");
        if app.explorer.is_some() && ui.button("Load the data").clicked() {
            app.load_data_now();
        }
        return;
    };
    let (c, h, w) = data.chw;
    let len = data.image_len();
    let n = GRID_IMAGES.min(data.test.len());
    if app.grid_textures.len() != n {
        app.grid_textures = (0..n)
            .map(|i| {
                let px = &data.test.pixels[i * len..(i + 1) * len];
                let img = if c == 1 {
                    egui::ColorImage::from_gray([w, h], px)
                } else {
                    // planar CHW to interleaved RGB
                    let rgb: Vec<u8> = (0..h * w)
                        .flat_map(|p| [px[p], px[h * w + p], px[2 * h * w + p]])
                        .collect();
                    egui::ColorImage::from_rgb([w, h], &rgb)
                };
                ui.ctx()
                    .load_texture(format!("test{i}"), img, egui::TextureOptions::NEAREST)
            })
            .collect();
    }
    let classes = if c == 1 {
        None
    } else {
        Some([
            "plane", "car", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck",
        ])
    };
    let name = |k: u8| classes.map_or(k.to_string(), |n| n[k as usize].to_string());
    let size = 44.0;
    let wrong = app
        .shown
        .grid
        .iter()
        .zip(&data.test.labels)
        .filter(|(p, t)| p != t)
        .count();
    if !app.shown.grid.is_empty() {
        ui.label(format!("{wrong} of {n} wrong (red)"));
    }
    egui::Grid::new("test-grid")
        .spacing([4.0, 2.0])
        .show(ui, |ui| {
            for i in 0..n {
                ui.vertical(|ui| {
                    let img = egui::Image::new((app.grid_textures[i].id(), Vec2::splat(size)));
                    let r = ui.add(img);
                    let truth = data.test.labels[i];
                    if let Some(&p) = app.shown.grid.get(i) {
                        let color = if p == truth {
                            ui.visuals().text_color()
                        } else {
                            RED
                        };
                        if p != truth {
                            ui.painter().rect_stroke(
                                r.rect,
                                CornerRadius::ZERO,
                                Stroke::new(2.0, RED),
                                egui::StrokeKind::Outside,
                            );
                        }
                        ui.colored_label(
                            color,
                            egui::RichText::new(format!("{} ({})", name(p), name(truth))).small(),
                        );
                    }
                });
                if (i + 1) % 8 == 0 {
                    ui.end_row();
                }
            }
        });
}

fn draw_pad(app: &mut QnnApp, ui: &mut egui::Ui) {
    let cell = 7.0;
    let (rect, resp) = ui.allocate_exact_size(Vec2::splat(cell * 28.0), Sense::drag());
    if let Some(pos) = resp
        .interact_pointer_pos()
        .filter(|_| resp.dragged() || resp.is_pointer_button_down_on())
    {
        let (fx, fy) = ((pos.x - rect.min.x) / cell, (pos.y - rect.min.y) / cell);
        // a soft round brush about two pixels wide, as pen strokes in MNIST are
        for y in 0..28 {
            for x in 0..28 {
                let d2 = (x as f32 + 0.5 - fx).powi(2) + (y as f32 + 0.5 - fy).powi(2);
                let ink = (1.0 - d2 / 2.5).max(0.0);
                let p = &mut app.pad.pixels[y * 28 + x];
                *p = (*p + ink).min(1.0);
            }
        }
        app.pad.dirty = true;
    }
    let painter = ui.painter_at(rect);
    painter.rect_filled(rect, CornerRadius::ZERO, Color32::BLACK);
    for (i, &v) in app.pad.pixels.iter().enumerate() {
        if v > 0.0 {
            let p = rect.min + Vec2::new((i % 28) as f32 * cell, (i / 28) as f32 * cell);
            painter.rect_filled(
                Rect::from_min_size(p, Vec2::splat(cell)),
                CornerRadius::ZERO,
                grey(v),
            );
        }
    }
    if ui.button("Clear").clicked() {
        app.pad.pixels.iter_mut().for_each(|p| *p = 0.0);
        app.pad.scores = None;
    }
    match &app.pad.scores {
        Some(s) => {
            let p = softmax(s);
            let best = qnn::ops::loss::argmax(s);
            ui.label(format!("the network says {best}"));
            for (k, share) in p.iter().enumerate() {
                ui.horizontal(|ui| {
                    ui.label(egui::RichText::new(format!("{k}")).monospace());
                    let (r, _) = ui.allocate_exact_size(Vec2::new(120.0, 10.0), Sense::hover());
                    ui.painter().rect_filled(
                        Rect::from_min_size(r.min, Vec2::new(120.0 * share, 10.0)),
                        CornerRadius::ZERO,
                        if k == best { GREEN } else { BLUE },
                    );
                    ui.label(egui::RichText::new(format!("{:.2} ({:+.2})", share, s[k])).small());
                });
            }
        }
        None if app.shown.best_model.is_none() => {
            ui.label("(after the first epoch, or load a model)");
        }
        None => {
            ui.label("draw with the mouse");
        }
    }
}
