//! The PNG plot of a per-series model version (seed 001's `GET /plot`).
//!
//! 800×400 pixels (the original's 8×4 inches at 100 dpi), drawn with plotters into an RGB
//! buffer and encoded with the `png` crate. Seed 001 drew only the training data (one line with
//! circle markers, value against the raw timestamp; title `Training Data - {series_id}
//! ({version})`, axes `Timestamp` / `Value`, grid); oddity keeps all of that and adds the
//! model's expected band (shaded, with its mean) and highlights the training points outside it.
//!
//! # Fonts
//! Text is rasterised by `ab_glyph` from DejaVu Sans embedded in the binary
//! (`assets/DejaVuSans.ttf`, licence in `assets/DejaVuSans.LICENSE`), registered once as
//! plotters' `sans-serif`: no system font or fontconfig is needed at run time.
//!
//! Rendering is CPU work (a few milliseconds): callers run [`render`] on the blocking pool.

use std::sync::OnceLock;

use plotters::prelude::*;
use plotters::style::{FontStyle, register_font};

use oddity_detect::series_model::FittedSeriesModel;
use oddity_store::TrainingPoint;

/// Width of the image in pixels.
pub const WIDTH: u32 = 800;
/// Height of the image in pixels.
pub const HEIGHT: u32 = 400;

/// DejaVu Sans (Bitstream Vera licence, see `assets/DejaVuSans.LICENSE`).
static FONT: &[u8] = include_bytes!("../assets/DejaVuSans.ttf");

/// Why a plot could not be rendered.
#[derive(Debug, thiserror::Error)]
pub enum PlotError {
    /// The embedded font was refused.
    #[error("embedded font cannot be loaded")]
    Font,
    /// Drawing failed.
    #[error("drawing failed: {0}")]
    Draw(String),
    /// PNG encoding failed.
    #[error("png encoding failed: {0}")]
    Encode(#[from] png::EncodingError),
}

fn ensure_font() -> Result<(), PlotError> {
    static REGISTERED: OnceLock<bool> = OnceLock::new();
    let ok =
        *REGISTERED.get_or_init(|| register_font("sans-serif", FontStyle::Normal, FONT).is_ok());
    if ok { Ok(()) } else { Err(PlotError::Font) }
}

fn draw_err(e: impl std::fmt::Display) -> PlotError {
    PlotError::Draw(e.to_string())
}

/// A range around `lo..hi` with 5 % padding, never empty.
fn padded(lo: f64, hi: f64) -> std::ops::Range<f64> {
    let span = hi - lo;
    if !(span.is_finite() && span > 0.0) {
        let pad = if lo.abs() > 0.0 && lo.is_finite() {
            lo.abs() * 0.05
        } else {
            1.0
        };
        return lo - pad..lo + pad;
    }
    lo - span * 0.05..hi + span * 0.05
}

/// A short tick label: up to 4 decimals without trailing zeros, scientific notation for very
/// large or small magnitudes.
fn tick_label(y: f64) -> String {
    let a = y.abs();
    if a != 0.0 && !(1e-3..1e7).contains(&a) {
        return format!("{y:.3e}");
    }
    let fixed = format!("{y:.4}");
    let trimmed = fixed.trim_end_matches('0').trim_end_matches('.');
    if trimmed == "-0" {
        "0".to_owned()
    } else {
        trimmed.to_owned()
    }
}

/// Renders the training `points` (ordered by timestamp) of `model` as an 800×400 PNG.
pub fn render(
    title: &str,
    points: &[TrainingPoint],
    model: &FittedSeriesModel,
) -> Result<Vec<u8>, PlotError> {
    ensure_font()?;
    let mut rgb = vec![255_u8; (WIDTH * HEIGHT * 3) as usize];
    draw(&mut rgb, title, points, model)?;
    let mut png_bytes = Vec::new();
    let mut encoder = png::Encoder::new(&mut png_bytes, WIDTH, HEIGHT);
    encoder.set_color(png::ColorType::Rgb);
    encoder.set_depth(png::BitDepth::Eight);
    let mut writer = encoder.write_header()?;
    writer.write_image_data(&rgb)?;
    writer.finish()?;
    Ok(png_bytes)
}

fn draw(
    rgb: &mut [u8],
    title: &str,
    points: &[TrainingPoint],
    model: &FittedSeriesModel,
) -> Result<(), PlotError> {
    let xy: Vec<(f64, f64)> = points
        .iter()
        .map(|p| (p.timestamp as f64, p.value))
        .collect();
    let (x_lo, x_hi) = xy
        .iter()
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), &(x, _)| {
            (lo.min(x), hi.max(x))
        });
    let (y_lo, y_hi) = xy.iter().fold(
        (model.expected_low, model.expected_high),
        |(lo, hi), &(_, y)| (lo.min(y), hi.max(y)),
    );
    let x_range = padded(x_lo, x_hi);
    let y_range = padded(y_lo, y_hi);
    let (band_x0, band_x1) = (x_range.start, x_range.end);

    let root = BitMapBackend::with_buffer(rgb, (WIDTH, HEIGHT)).into_drawing_area();
    root.fill(&WHITE).map_err(draw_err)?;
    let mut chart = ChartBuilder::on(&root)
        .caption(title, ("sans-serif", 20))
        .margin(12)
        .x_label_area_size(45)
        .y_label_area_size(70)
        .build_cartesian_2d(x_range, y_range)
        .map_err(draw_err)?;
    chart
        .configure_mesh()
        .x_desc("Timestamp")
        .y_desc("Value")
        .x_labels(6)
        .y_labels(8)
        .x_label_formatter(&|x| format!("{x:.0}"))
        .y_label_formatter(&|y| tick_label(*y))
        .light_line_style(RGBColor(235, 235, 235))
        .bold_line_style(RGBColor(210, 210, 210))
        .label_style(("sans-serif", 12))
        .axis_desc_style(("sans-serif", 14))
        .draw()
        .map_err(draw_err)?;

    let band = RGBColor(255, 165, 0);
    chart
        .draw_series(std::iter::once(Rectangle::new(
            [
                (band_x0, model.expected_low),
                (band_x1, model.expected_high),
            ],
            band.mix(0.15).filled(),
        )))
        .map_err(draw_err)?
        .label(format!("expected band (mean ± {}σ)", model.sigmas))
        .legend(move |(x, y)| {
            Rectangle::new([(x, y - 5), (x + 16, y + 5)], band.mix(0.3).filled())
        });
    chart
        .draw_series(LineSeries::new(
            [(band_x0, model.mean), (band_x1, model.mean)],
            band.stroke_width(1),
        ))
        .map_err(draw_err)?;

    let line = RGBColor(31, 119, 180);
    chart
        .draw_series(LineSeries::new(xy.iter().copied(), line.stroke_width(2)))
        .map_err(draw_err)?
        .label("training data")
        .legend(move |(x, y)| PathElement::new([(x, y), (x + 16, y)], line.stroke_width(2)));
    chart
        .draw_series(
            xy.iter()
                .map(|&(x, y)| Circle::new((x, y), 3, line.filled())),
        )
        .map_err(draw_err)?;
    let outside: Vec<(f64, f64)> = xy
        .iter()
        .copied()
        .filter(|&(_, y)| model.is_outside(y))
        .collect();
    if !outside.is_empty() {
        chart
            .draw_series(
                outside
                    .iter()
                    .map(|&(x, y)| Circle::new((x, y), 6, RED.filled())),
            )
            .map_err(draw_err)?
            .label("outside the band")
            .legend(|(x, y)| Circle::new((x + 8, y), 5, RED.filled()));
    }
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::UpperLeft)
        .label_font(("sans-serif", 12))
        .background_style(WHITE.mix(0.85))
        .border_style(RGBColor(180, 180, 180))
        .draw()
        .map_err(draw_err)?;
    root.present().map_err(draw_err)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use oddity_detect::series_model::SeriesPoint;

    use super::*;

    fn png_size(png: &[u8]) -> (u32, u32) {
        assert_eq!(&png[..8], b"\x89PNG\r\n\x1a\n");
        assert_eq!(&png[12..16], b"IHDR");
        let w = u32::from_be_bytes([png[16], png[17], png[18], png[19]]);
        let h = u32::from_be_bytes([png[20], png[21], png[22], png[23]]);
        (w, h)
    }

    #[test]
    fn renders_an_800_by_400_png() {
        let values = [
            10.0, 10.5, 11.0, 10.2, 10.7, 30.0, 10.4, 10.6, 10.3, 10.5, 10.8, 10.1,
        ];
        let points: Vec<TrainingPoint> = values
            .iter()
            .enumerate()
            .map(|(i, &value)| TrainingPoint {
                timestamp: 1_693_459_200 + i as i64 * 60,
                value,
            })
            .collect();
        let fit_points: Vec<SeriesPoint> = points
            .iter()
            .map(|p| SeriesPoint {
                timestamp: p.timestamp,
                value: p.value,
            })
            .collect();
        let model = FittedSeriesModel::fit(&fit_points).unwrap();
        let png = render("Training Data - sensor_01 (v1)", &points, &model).unwrap();
        assert_eq!(png_size(&png), (WIDTH, HEIGHT));
        // Text and marks were drawn: the image is far from blank, yet compresses well.
        assert!(
            png.len() > 3_000 && png.len() < 200_000,
            "{} bytes",
            png.len()
        );
    }

    #[test]
    fn degenerate_ranges_still_render() {
        let model = FittedSeriesModel::fit(&[
            SeriesPoint {
                timestamp: 5,
                value: 1.0,
            },
            SeriesPoint {
                timestamp: 5,
                value: 2.0,
            },
            SeriesPoint {
                timestamp: 5,
                value: 3.0,
            },
        ])
        .unwrap();
        let points = [TrainingPoint {
            timestamp: 5,
            value: 1.0,
        }];
        assert_eq!(
            png_size(&render("t", &points, &model).unwrap()),
            (WIDTH, HEIGHT)
        );
        assert_eq!(padded(0.0, 0.0), -1.0..1.0);
        assert_eq!(tick_label(11.5), "11.5");
        assert_eq!(tick_label(10.0), "10");
        assert_eq!(tick_label(-0.00001), "-1.000e-5");
        assert_eq!(tick_label(2e300), "2.000e300");
        assert_eq!(tick_label(-0.0), "0");
    }
}
