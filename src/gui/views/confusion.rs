//! The validation confusion matrix.

use eframe::egui::{self, Color32, CornerRadius, Rect, Sense, Vec2};
use qnn::inspect::ConfusionMatrix;

use super::{short_name, GREEN, RED};

/// Side of a cell up to [`FULL_CELLS`] classes; more classes share [`MAX_SIDE`] points.
const CELL: f32 = 26.0;
/// Classes shown at full cell size (with the numbers in the cells).
const FULL_CELLS: usize = 10;
/// The largest side of the matrix, headers included, when cells shrink.
const MAX_SIDE: f32 = 26.0 * 16.0;

/// The matrix, rows the true classes; `names` (the data set's class names, in label order)
/// name the rows and columns, the classes in the most confused pairs and in a cell's tooltip.
pub(super) fn confusion(ui: &mut egui::Ui, m: &ConfusionMatrix, names: &[String]) {
    let k = m.classes;
    let name = |c: usize| names.get(c).cloned().unwrap_or_else(|| c.to_string());
    ui.label(m.caption());
    // above ten classes the cells shrink so the matrix keeps to MAX_SIDE; numbers are written
    // only where they fit
    let cell = if k <= FULL_CELLS {
        CELL
    } else {
        (MAX_SIDE / (k as f32 + 1.0)).min(CELL)
    };
    let font = egui::FontId::monospace(10.0);
    let text = ui.visuals().text_color();
    let labels = cell >= 14.0;
    let counts = cell >= 20.0;
    // the headers: the classes' names (short) where the data name them, else their numbers;
    // the columns' written upwards, so that a name takes no more width than a cell
    let heads: Vec<_> = (0..k)
        .filter(|_| labels)
        .map(|c| {
            ui.painter()
                .layout_no_wrap(short_name(names.get(c), c as u16), font.clone(), text)
        })
        .collect();
    let widest = heads.iter().map(|g| g.size().x).fold(0.0, f32::max);
    let head = (widest + 6.0).max(cell);
    let (rect, resp) = ui.allocate_exact_size(
        Vec2::new(head + cell * k as f32, head + cell * k as f32),
        Sense::hover(),
    );
    let painter = ui.painter_at(rect);
    let corner = rect.min + Vec2::splat(head);
    for (c, g) in heads.iter().enumerate() {
        let mid = cell * (c as f32 + 0.5);
        // the row's name right-aligned beside its row
        painter.galley(
            egui::pos2(
                corner.x - 3.0 - g.size().x,
                corner.y + mid - g.size().y / 2.0,
            ),
            g.clone(),
            text,
        );
        // the column's name upwards above its column (rotated about its top-left corner)
        let at = egui::pos2(corner.x + mid - g.size().y / 2.0, corner.y - 3.0);
        painter.add(
            egui::epaint::TextShape::new(at, g.clone(), text)
                .with_angle(-std::f32::consts::FRAC_PI_2),
        );
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
                corner + Vec2::new(cell * p as f32, cell * t as f32),
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
    // a cell names its classes when pointed at (the headers may be cut, or too small to write)
    if let Some(pos) = resp.hover_pos() {
        let at = (pos - corner) / cell;
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
    if let Some(line) = m.most_confused(names) {
        ui.label(line);
    }
}
