//! The first layer's filters at their quantized levels.

use eframe::egui::{self, CornerRadius, Rect, Sense, Vec2};
use qnn::inspect::Filters;

use super::grey;

pub(super) fn filters(ui: &mut egui::Ui, f: &Filters) {
    ui.label(f.caption());
    let k = f.size;
    let cell = 27.0 / k as f32; // a kernel takes the same room whatever its size
    let kernel = cell * k as f32;
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
                        ch as f32 * kernel + (i % k) as f32 * cell,
                        (i / k) as f32 * cell,
                    );
                painter.rect_filled(
                    Rect::from_min_size(p, Vec2::splat(cell)),
                    CornerRadius::ZERO,
                    grey(f.shade(w)),
                );
            }
        }
    }
    resp.on_hover_text(format!("Each square is a {k}×{k} kernel at its quantized levels (black: lowest level, white: highest); a filter's input channels side by side"));
}
