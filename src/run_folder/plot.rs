//! The run's plot, `NAME.png`: loss and error curves per epoch (plotters, with an embedded font
//! so it draws the same on a machine without fonts), and the PNG encoding other plots and the
//! window's screenshots share.

use std::path::Path;
use std::sync::Once;

use plotters::prelude::*;

use super::FolderError;
use crate::train::EpochReport;

static FONT: Once = Once::new();

/// Makes plotters' `"sans-serif"` the embedded DejaVu Sans (once per process); call it before
/// drawing text with plotters.
pub fn register_font() {
    FONT.call_once(|| {
        let bytes: &'static [u8] = include_bytes!("../../assets/fonts/DejaVuSans.ttf");
        let _ = plotters::style::register_font("sans-serif", FontStyle::Normal, bytes);
    });
}

type Series<'a> = (&'a str, RGBColor, Vec<(f64, f64)>);

fn panel<DB: DrawingBackend>(
    area: &DrawingArea<DB, plotters::coord::Shift>,
    title: &str,
    series: &[Series],
) -> Result<(), DrawingAreaErrorKind<DB::ErrorType>> {
    let xmax = series
        .iter()
        .flat_map(|s| s.2.iter().map(|p| p.0))
        .fold(1.0f64, f64::max);
    let ymax = series
        .iter()
        .flat_map(|s| s.2.iter().map(|p| p.1))
        .filter(|v| v.is_finite())
        .fold(1e-9f64, f64::max)
        * 1.05;
    let mut chart = ChartBuilder::on(area)
        .caption(title, ("sans-serif", 20))
        .margin(12)
        .x_label_area_size(32)
        .y_label_area_size(56)
        .build_cartesian_2d(1.0..xmax.max(2.0), 0.0..ymax)?;
    chart
        .configure_mesh()
        .x_desc("epoch")
        .label_style(("sans-serif", 13))
        .draw()?;
    for (name, color, points) in series {
        let c = *color;
        chart
            .draw_series(LineSeries::new(points.clone(), c.stroke_width(2)))?
            .label(*name)
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 18, y)], c.stroke_width(2)));
        chart.draw_series(points.iter().map(|p| Circle::new(*p, 3, c.filled())))?;
    }
    chart
        .configure_series_labels()
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK)
        .label_font(("sans-serif", 13))
        .draw()?;
    Ok(())
}

/// Draws the curves of `history` (loss on the left, error rates on the right), titled `title`,
/// into the PNG file `path` (written atomically).
pub fn curves(path: &Path, history: &[EpochReport], title: &str) -> Result<(), FolderError> {
    let drawing = |e: &dyn std::fmt::Display| FolderError::Plot(e.to_string());
    register_font();
    let (w, h) = (1100u32, 440u32);
    let mut pixels = vec![0u8; (w * h * 3) as usize];
    {
        let root = BitMapBackend::with_buffer(&mut pixels, (w, h)).into_drawing_area();
        root.fill(&WHITE).map_err(|e| drawing(&e))?;
        let root = root
            .titled(title, ("sans-serif", 16))
            .map_err(|e| drawing(&e))?;
        let (left, right) = root.split_horizontally(w / 2);
        let pts = |f: fn(&EpochReport) -> f64| {
            history
                .iter()
                .map(|r| (r.epoch as f64, f(r)))
                .collect::<Vec<_>>()
        };
        panel(
            &left,
            "loss (squared hinge)",
            &[
                ("training", BLUE, pts(|r| r.train_loss)),
                ("validation", RED, pts(|r| r.val_loss)),
            ],
        )
        .map_err(|e| drawing(&e))?;
        panel(
            &right,
            "error %",
            &[
                ("validation", RED, pts(|r| r.val_error)),
                ("test (best epoch)", GREEN, pts(|r| r.test_error)),
            ],
        )
        .map_err(|e| drawing(&e))?;
        root.present().map_err(|e| drawing(&e))?;
    }
    let img = png(&pixels, w, h)?;
    crate::files::write_atomic(path, &img)?;
    Ok(())
}

/// Encodes `w`×`h` RGB pixels (3 bytes each, rows top down) as a PNG file's bytes, for an atomic
/// write (plotters' bitmap encoder only writes to a path, not atomically).
pub fn png(rgb: &[u8], w: u32, h: u32) -> Result<Vec<u8>, FolderError> {
    let mut out = Vec::new();
    let enc = image::codecs::png::PngEncoder::new(&mut out);
    image::ImageEncoder::write_image(enc, rgb, w, h, image::ExtendedColorType::Rgb8)
        .map_err(|e| FolderError::Plot(e.to_string()))?;
    Ok(out)
}
