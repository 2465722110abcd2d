//! Drawing: the window's layout, its tool bar, status bar and dialog here; the settings panel
//! and each live view in a file of its own. What is shown is computed elsewhere (`qnn::inspect`,
//! the run); buttons call the app's methods (app.rs), which act.

mod confusion;
mod curves;
mod draw_pad;
mod filters;
mod histogram;
mod settings_panel;
mod test_grid;

use confusion::confusion;
use curves::{curves, progress};
use draw_pad::draw_pad;
use filters::filters;
use histogram::histogram;
use settings_panel::settings_panel;
use test_grid::test_grid;

use eframe::egui::{self, Color32, Vec2};

use super::app::{overwrite_and_start, Ask, Pad, QnnApp};
use super::worker::StartFrom;

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
    // a run starts once the pictures being read are in memory
    let can_start = !training && app.reading.is_none();
    let files = app.run_files();
    let can_resume = can_start && files.as_ref().is_some_and(|p| p.state_path().is_file());
    ui.horizontal_wrapped(|ui| {
        if ui
            .add_enabled(can_start, egui::Button::new("Start"))
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
            .add_enabled(can_start && have_model, egui::Button::new("Fine-tune"))
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
            app.save_model_dialog();
        }
        ui.add_enabled_ui(have_model, |ui| {
            ui.menu_button("Export model", |ui| {
                use qnn::export::Format;
                if ui
                    .button("ONNX… (onnxruntime)")
                    .on_hover_text("Standard ONNX: integer weights, no custom operators")
                    .clicked()
                {
                    app.export_model_dialog(Format::Onnx);
                    ui.close();
                }
                if ui
                    .button("QONNX… (FINN, hls4ml)")
                    .on_hover_text("The QONNX dialect: Quant and BipolarQuant nodes, batch 1")
                    .clicked()
                {
                    app.export_model_dialog(Format::Qonnx);
                    ui.close();
                }
            })
            .response
            .on_hover_text("The model shown, as qnn export writes it");
        });
        if ui
            .add_enabled(!app.shown.history.is_empty(), egui::Button::new("Export curves…"))
            .on_hover_text("Save the loss and error curves as a PNG")
            .clicked()
        {
            app.export_curves_dialog();
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

fn views(app: &mut QnnApp, ui: &mut egui::Ui) {
    ui.heading(if app.shown.title.is_empty() {
        "No run yet: choose settings and press Start, or load a model".to_string()
    } else {
        app.shown.title.clone()
    });
    reading(app, ui);
    progress(app, ui);
    curves(app, ui);
    ui.add_space(8.0);
    // a list of dense layers has no conv layer to look into
    let not_yet = if app
        .settings
        .run_settings()
        .is_ok_and(|r| r.net.conv_layers().is_empty())
    {
        "(none: the network has no conv layer)"
    } else {
        "(after the first step)"
    };
    ui.horizontal_top(|ui| {
        ui.vertical(|ui| {
            ui.strong("First layer's filters");
            match &app.shown.probe {
                Some(p) => filters(ui, &p.filters),
                None => {
                    ui.label(not_yet);
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
                    ui.label(not_yet);
                }
            }
        });
    });
    ui.add_space(8.0);
    ui.horizontal_top(|ui| {
        ui.vertical(|ui| {
            ui.strong("Confusion matrix (validation)");
            let names = app.class_names();
            match &app.shown.confusion {
                Some(m) => confusion(ui, m, &names),
                None => {
                    ui.label("(at the end of each epoch)");
                }
            }
        });
        ui.add_space(16.0);
        // no pad before the pictures' shape is known, and none for colour pictures
        let input = app.input_shape();
        let pad = input.is_some_and(Pad::fits);
        ui.vertical(|ui| {
            ui.strong("Test images: predicted (true)");
            if input.is_some_and(|i| !Pad::fits(i)) {
                // where the draw pad would be: a narrow column of it would squeeze the grid
                ui.weak("(no draw pad: drawing is for grey pictures, these are in colour)");
            }
            test_grid(app, ui);
        });
        if pad {
            ui.add_space(16.0);
            ui.vertical(|ui| {
                ui.strong("Draw a digit");
                draw_pad(app, ui);
            });
        }
    });
}

/// The pictures being read: how many are decoded, on a bar.
fn reading(app: &QnnApp, ui: &mut egui::Ui) {
    let Some(r) = &app.reading else {
        return;
    };
    let (done, total) = r.progress();
    ui.horizontal(|ui| {
        if total == 0 {
            // listing the set, or reading its cache: no count yet
            ui.spinner();
            ui.label(format!("reading {}…", r.path.display()));
        } else {
            ui.add(
                egui::ProgressBar::new(done as f32 / total as f32)
                    .desired_width(360.0)
                    .text(format!(
                        "decoding {} / {} pictures",
                        thousands(done),
                        thousands(total)
                    )),
            );
            ui.label(format!("from {}", r.path.display()));
        }
    });
}

/// A class's name as a label: at most 10 characters (a longer one is cut, with "…"), the
/// class's number where it has none.
fn short_name(name: Option<&String>, k: u16) -> String {
    match name {
        Some(n) if n.chars().count() > 10 => format!("{}…", n.chars().take(9).collect::<String>()),
        Some(n) => n.clone(),
        None => k.to_string(),
    }
}

/// A count with thousands separated by commas: 12,345.
fn thousands(n: usize) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (i, ch) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(ch);
    }
    out
}

/// A shade of grey for a level's rank (0 black … 1 white).
fn grey(v: f32) -> Color32 {
    let g = (v.clamp(0.0, 1.0) * 255.0).round() as u8;
    Color32::from_gray(g)
}

#[cfg(test)]
mod tests {
    use super::thousands;

    /// Counts in the progress line read as a person writes them: commas every three digits
    /// from the right, none below a thousand.
    #[test]
    fn thousands_are_separated_by_commas() {
        assert_eq!(thousands(0), "0");
        assert_eq!(thousands(999), "999");
        assert_eq!(thousands(1_234), "1,234");
        assert_eq!(thousands(100_000), "100,000");
        assert_eq!(thousands(1_234_567), "1,234,567");
    }
}
