//! The run's progress bar and its loss and error curves.

use eframe::egui::{self};
use egui_plot::{Legend, Line, Plot, Points};

use super::{BLUE, GREEN, GREY, RED};
use crate::gui::app::QnnApp;

pub(super) fn progress(app: &QnnApp, ui: &mut egui::Ui) {
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

pub(super) fn human_time(s: f64) -> String {
    if s < 90.0 {
        format!("{s:.0} s")
    } else if s < 5400.0 {
        format!("{:.0} min", s / 60.0)
    } else {
        format!("{:.1} h", s / 3600.0)
    }
}

pub(super) fn curves(app: &QnnApp, ui: &mut egui::Ui) {
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
pub(super) fn chart(id: &'static str, width: f32, y_label: &'static str) -> Plot<'static> {
    Plot::new(id)
        .width(width)
        .height(170.0)
        .legend(Legend::default())
        .x_axis_label("epoch")
        .y_axis_label(y_label)
}
