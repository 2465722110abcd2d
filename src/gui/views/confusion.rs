//! The validation confusion matrix.

use eframe::egui::{self, Color32, CornerRadius, Rect, Sense, Vec2};
use qnn::inspect::ConfusionMatrix;

use super::{GREEN, RED};

/// Side of a cell up to [`FULL_CELLS`] classes; more classes share [`MAX_SIDE`] points.
const CELL: f32 = 26.0;
/// Classes shown at full cell size (with the numbers in the cells).
const FULL_CELLS: usize = 10;
/// The largest side of the matrix, headers included, when cells shrink.
const MAX_SIDE: f32 = 26.0 * 16.0;

/// The matrix, rows the true classes; `names` (the data set's class names, in label order)
/// name the classes in the most confused pairs and, for many classes, in a cell's tooltip.
pub(super) fn confusion(ui: &mut egui::Ui, m: &ConfusionMatrix, names: &[String]) {
    let k = m.classes;
    let name = |c: usize| names.get(c).cloned().unwrap_or_else(|| c.to_string());
    ui.label(format!(
        "{:.2}% error on {} images; rows: true class, columns: predicted",
        m.error_percent(),
        m.total()
    ));
    // above ten classes the cells shrink so the matrix keeps to MAX_SIDE; numbers are written
    // only where they fit
    let cell = if k <= FULL_CELLS {
        CELL
    } else {
        (MAX_SIDE / (k as f32 + 1.0)).min(CELL)
    };
    let (rect, resp) = ui.allocate_exact_size(Vec2::splat(cell * (k as f32 + 1.0)), Sense::hover());
    let painter = ui.painter_at(rect);
    let font = egui::FontId::monospace(10.0);
    let text = ui.visuals().text_color();
    let labels = cell >= 14.0;
    let counts = cell >= 20.0;
    if labels {
        for c in 0..k {
            let at = cell * (c as f32 + 1.5);
            for pos in [Vec2::new(at, cell * 0.5), Vec2::new(cell * 0.5, at)] {
                painter.text(
                    rect.min + pos,
                    egui::Align2::CENTER_CENTER,
                    c.to_string(),
                    font.clone(),
                    text,
                );
            }
        }
    }
    // shrunk cells keep a gap only where there is room for one
    let gap = if cell >= 4.0 { 1.0 } else { 0.0 };
    for t in 0..k {
        let row: u64 = (0..k).map(|p| m.get(t, p)).sum::<u64>().max(1);
        for p in 0..k {
            let n = m.get(t, p);
            if n == 0 {
                continue;
            }
            let share = n as f32 / row as f32;
            let base = if t == p { GREEN } else { RED };
            let fill: Color32 = base.gamma_multiply(0.15 + 0.85 * share);
            let r = Rect::from_min_size(
                rect.min + Vec2::new(cell * (p as f32 + 1.0), cell * (t as f32 + 1.0)),
                Vec2::splat(cell - gap),
            );
            painter.rect_filled(r, CornerRadius::ZERO, fill);
            if counts {
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
    if !counts {
        if let Some(pos) = resp.hover_pos() {
            let at = (pos - rect.min) / cell - Vec2::splat(1.0);
            let (t, p) = (at.y.floor(), at.x.floor());
            if t >= 0.0 && p >= 0.0 && (t as usize) < k && (p as usize) < k {
                let (t, p) = (t as usize, p as usize);
                resp.on_hover_text(format!(
                    "true {}, predicted {}: {} images",
                    name(t),
                    name(p),
                    m.get(t, p)
                ));
            }
        }
    }
    let worst: Vec<String> = m
        .worst(3)
        .iter()
        .map(|&(t, p, c)| format!("{}→{} ×{c}", name(t), name(p)))
        .collect();
    if !worst.is_empty() {
        ui.label(format!("most confused: {}", worst.join(", ")));
    }
}
