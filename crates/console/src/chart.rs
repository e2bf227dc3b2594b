//! Time-series charts drawn on the server by `plotters` as SVG, put inline in the page (no
//! script, no image request). Only numbers and times we format reach the SVG: series names stay
//! in the page's HTML legend, where maud escapes them.

use chrono::{DateTime, Utc};
use plotters::prelude::*;

/// One line of a chart: its points as (Unix microseconds, value), in time order.
#[derive(Debug, Clone, PartialEq)]
pub struct ChartLine {
    pub points: Vec<(i64, f64)>,
}

/// The lines' colours, in order (repeated beyond eight lines); the legend uses the same.
pub const PALETTE: [&str; 8] = [
    "#2563eb", "#dc2626", "#16a34a", "#9333ea", "#ea580c", "#0891b2", "#be185d", "#4d7c0f",
];

fn palette_color(index: usize) -> RGBColor {
    const RGB: [(u8, u8, u8); 8] = [
        (0x25, 0x63, 0xeb),
        (0xdc, 0x26, 0x26),
        (0x16, 0xa3, 0x4a),
        (0x93, 0x33, 0xea),
        (0xea, 0x58, 0x0c),
        (0x08, 0x91, 0xb2),
        (0xbe, 0x18, 0x5d),
        (0x4d, 0x7c, 0x0f),
    ];
    let (r, g, b) = RGB[index % RGB.len()];
    RGBColor(r, g, b)
}

/// An SVG line chart of `lines` over their time range, `width` × `height` pixels. `None` when
/// there is no point to draw.
pub fn line_chart(lines: &[ChartLine], width: u32, height: u32) -> Result<Option<String>, String> {
    let all = || lines.iter().flat_map(|line| line.points.iter());
    let Some(first) = all().next() else {
        return Ok(None);
    };
    let (mut x0, mut x1, mut y0, mut y1) = (first.0, first.0, first.1, first.1);
    for &(x, y) in all() {
        x0 = x0.min(x);
        x1 = x1.max(x);
        if y.is_finite() {
            y0 = y0.min(y);
            y1 = y1.max(y);
        }
    }
    if x1 == x0 {
        x0 -= 1_000_000;
        x1 += 1_000_000;
    }
    let pad = if y1 > y0 { (y1 - y0) * 0.05 } else { 1.0 };
    let (y0, y1) = (y0 - pad, y1 + pad);
    let span = x1 - x0;
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (width, height)).into_drawing_area();
        root.fill(&WHITE).map_err(|e| e.to_string())?;
        let mut chart = ChartBuilder::on(&root)
            .margin(16)
            .x_label_area_size(32)
            .y_label_area_size(64)
            .build_cartesian_2d(x0..x1, y0..y1)
            .map_err(|e| e.to_string())?;
        chart
            .configure_mesh()
            .x_labels(6)
            .y_labels(6)
            .light_line_style(RGBColor(0xee, 0xee, 0xee))
            .label_style(("sans-serif", 13))
            .x_label_formatter(&|micros| time_label(*micros, span))
            .y_label_formatter(&|value| format!("{value:.3}"))
            .draw()
            .map_err(|e| e.to_string())?;
        for (index, line) in lines.iter().enumerate() {
            let points = line.points.iter().copied().filter(|(_, y)| y.is_finite());
            chart
                .draw_series(LineSeries::new(
                    points,
                    palette_color(index).stroke_width(2),
                ))
                .map_err(|e| e.to_string())?;
        }
        root.present().map_err(|e| e.to_string())?;
    }
    Ok(Some(svg))
}

/// A time on the axis: the time of day for spans under two days, the date beyond.
fn time_label(micros: i64, span_micros: i64) -> String {
    const TWO_DAYS: i64 = 2 * 24 * 3600 * 1_000_000;
    match DateTime::<Utc>::from_timestamp_micros(micros) {
        Some(time) if span_micros < TWO_DAYS => time.format("%H:%M:%S").to_string(),
        Some(time) => time.format("%Y-%m-%d").to_string(),
        None => String::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_chart_is_svg_with_a_path_per_line() {
        let lines = vec![
            ChartLine {
                points: vec![(0, 1.0), (60_000_000, 3.0), (120_000_000, 2.0)],
            },
            ChartLine {
                points: vec![(0, 0.5), (120_000_000, 0.7)],
            },
        ];
        let svg = line_chart(&lines, 640, 320)
            .expect("drawn")
            .expect("points to draw");
        assert!(svg.starts_with("<svg"), "{svg}");
        assert!(
            svg.matches("<polyline").count() + svg.matches("<path").count() >= 2,
            "{svg}"
        );
        assert!(!svg.contains("style="), "inline styles would break the CSP");
        assert!(svg.contains("00:00:00"), "times on the axis: {svg}");
    }

    #[test]
    fn nothing_to_draw_is_no_chart_and_one_point_is_a_chart() {
        assert_eq!(line_chart(&[], 640, 320), Ok(None));
        let one = [ChartLine {
            points: vec![(5, 1.0)],
        }];
        assert!(line_chart(&one, 640, 320).expect("drawn").is_some());
    }
}
