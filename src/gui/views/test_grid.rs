//! Test images with the predicted and the true class.

use eframe::egui::{self, CornerRadius, Stroke, Vec2};

use super::{short_name, RED};
use crate::gui::app::QnnApp;
use crate::gui::worker::GRID_IMAGES;

pub(super) fn test_grid(app: &mut QnnApp, ui: &mut egui::Ui) {
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
    let name = |k: u16| short_name(data.class_names.get(k as usize), k);
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
