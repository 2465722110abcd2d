//! The validation confusion matrix.

use eframe::egui::{self, Color32, CornerRadius, Rect, Sense, Vec2};
use qnn::backend::CLASSES;
use qnn::inspect::ConfusionMatrix;

use super::{GREEN, RED};

pub(super) fn confusion(ui: &mut egui::Ui, m: &ConfusionMatrix) {
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
