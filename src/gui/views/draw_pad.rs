//! The draw pad: a digit drawn by hand, classified as it is drawn.

use eframe::egui::{self, Color32, CornerRadius, Rect, Sense, Vec2};
use qnn::inspect::{softmax, top_classes};

use super::{grey, BLUE, GREEN};
use crate::gui::app::QnnApp;

/// Classes listed with their scores: all up to this many, else this many highest.
const SHOWN: usize = 10;

pub(super) fn draw_pad(app: &mut QnnApp, ui: &mut egui::Ui) {
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
    // the classes' names (the digits for MNIST); of many classes, the ten highest scores
    let names = app
        .explorer
        .as_ref()
        .map(|ex| ex.class_names())
        .unwrap_or_default();
    let name = |k: usize| names.get(k).cloned().unwrap_or_else(|| k.to_string());
    match &app.pad.scores {
        Some(s) => {
            let p = softmax(s);
            let best = qnn::ops::loss::argmax(s);
            ui.label(format!("the network says {}", name(best)));
            let shown: Vec<usize> = if s.len() <= SHOWN {
                (0..s.len()).collect()
            } else {
                top_classes(s, SHOWN).into_iter().map(|(k, _)| k).collect()
            };
            for k in shown {
                let share = p[k];
                ui.horizontal(|ui| {
                    ui.label(egui::RichText::new(name(k)).monospace());
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
