//! A layer's activations counted on the quantization levels.

use eframe::egui::{self, CornerRadius, Pos2, Rect, Sense, Stroke, Vec2};
use qnn::inspect::LevelHistogram;

use super::{BLUE, GREY};

pub(super) fn histogram(ui: &mut egui::Ui, h: &LevelHistogram) {
    ui.label(h.caption());
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
