//! One process's charts as an inline SVG (plotters' SVG backend): a panel per
//! entry of [`PANELS`] that has data, over the whole capture's time span so
//! charts line up, with the time its findings held shaded.

use plotters::{
    coord::Shift,
    prelude::{
        BLACK, ChartBuilder, Color as _, DrawingArea, IntoDrawingArea as _, LineSeries, Palette,
        Palette99, PathElement, RGBColor, Rectangle, SVGBackend, SeriesLabelPosition, WHITE,
    },
};

use super::{
    series::{Collector, PANELS, Series},
    summary::Episode,
};

#[derive(Debug, thiserror::Error)]
#[error("drawing a chart: {0}")]
pub struct ChartError(String);

const WIDTH: u32 = 960;
const PANEL_HEIGHT: u32 = 190;
const SHADE: RGBColor = RGBColor(220, 50, 47);

/// The time axis: capture start and end, seconds since the epoch.
#[derive(Debug, Clone, Copy)]
pub struct Span {
    pub start: i64,
    pub end: i64,
}

/// The SVG of `series`' panels, or `None` when no panel has a point.
pub fn draw(
    series: &Series,
    collector: &Collector,
    span: Span,
    episodes: &[Episode],
) -> Result<Option<String>, ChartError> {
    let panels: Vec<_> = PANELS
        .iter()
        .filter_map(|(title, lines)| {
            let lines: Vec<(&str, Vec<(f64, f64)>)> = lines
                .iter()
                .map(|(label, source)| {
                    let points = series
                        .points(*source)
                        .into_iter()
                        .map(|(i, v)| (collector.time_of(i), v))
                        .collect();
                    (*label, points)
                })
                .filter(|(_, points): &(&str, Vec<(f64, f64)>)| !points.is_empty())
                .collect();
            (!lines.is_empty()).then_some((*title, lines))
        })
        .collect();
    if panels.is_empty() {
        return Ok(None);
    }
    let mut svg = String::new();
    {
        let height = PANEL_HEIGHT * u32::try_from(panels.len()).unwrap_or(1);
        let root = SVGBackend::with_string(&mut svg, (WIDTH, height)).into_drawing_area();
        root.fill(&WHITE).map_err(err)?;
        let areas = root.split_evenly((panels.len(), 1));
        for ((title, lines), area) in panels.iter().zip(&areas) {
            panel(area, title, lines, span, collector.width(), episodes)?;
        }
        root.present().map_err(err)?;
    }
    Ok(Some(svg))
}

fn err(e: impl std::fmt::Display) -> ChartError {
    ChartError(e.to_string())
}

fn panel(
    area: &DrawingArea<SVGBackend<'_>, Shift>,
    title: &str,
    lines: &[(&str, Vec<(f64, f64)>)],
    span: Span,
    step: i64,
    episodes: &[Episode],
) -> Result<(), ChartError> {
    let x_start = span.start as f64;
    let x_end = (span.end.max(span.start + 1)) as f64;
    let peak = lines
        .iter()
        .flat_map(|(_, points)| points.iter().map(|&(_, v)| v))
        .fold(0.0f64, f64::max);
    let y_end = if peak > 0.0 { peak * 1.15 } else { 1.0 };
    let mut chart = ChartBuilder::on(area)
        .caption(title, ("sans-serif", 15))
        .margin(6)
        // Room for the last time label, centred on the right edge.
        .margin_right(32)
        .x_label_area_size(22)
        .y_label_area_size(56)
        .build_cartesian_2d(x_start..x_end, 0.0..y_end)
        .map_err(err)?;
    let long = span.end - span.start > 86_400;
    chart
        .configure_mesh()
        .x_labels(8)
        .y_labels(5)
        .x_label_formatter(&|x| clock(*x, long))
        .y_label_formatter(&|y| number(*y))
        .light_line_style(WHITE.mix(0.0))
        .draw()
        .map_err(err)?;
    // When a finding held: a band from its first row to its last (at least
    // one time step wide, so a single row shows).
    let half = step.max(1) as f64 / 2.0;
    chart
        .draw_series(episodes.iter().map(|e| {
            Rectangle::new(
                [
                    ((e.start as f64 - half).max(x_start), 0.0),
                    ((e.end as f64 + half).min(x_end), y_end),
                ],
                SHADE.mix(0.12).filled(),
            )
        }))
        .map_err(err)?;
    for (i, (label, points)) in lines.iter().enumerate() {
        let color = Palette99::pick(i).to_rgba();
        chart
            .draw_series(LineSeries::new(
                points.iter().copied(),
                color.stroke_width(2),
            ))
            .map_err(err)?
            .label(*label)
            .legend(move |(x, y)| PathElement::new([(x, y), (x + 16, y)], color.stroke_width(2)));
    }
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::UpperLeft)
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK.mix(0.3))
        .draw()
        .map_err(err)?;
    Ok(())
}

/// `14:02:05` (UTC), or `03-14 14:02` for a capture longer than a day.
pub fn clock(secs: f64, long: bool) -> String {
    let stamp = humantime::format_rfc3339_seconds(super::capture::time(secs as i64)).to_string();
    let range = if long { 5..16 } else { 11..19 };
    stamp
        .get(range)
        .map_or_else(|| stamp.clone(), |s| s.replace('T', " "))
}

/// An axis number: `0`, `2.5`, `120`, `12k`.
fn number(v: f64) -> String {
    if v == 0.0 {
        "0".to_owned()
    } else if v < 10.0 {
        format!("{v:.1}")
    } else {
        crate::human::count(v.round() as u64)
    }
}
