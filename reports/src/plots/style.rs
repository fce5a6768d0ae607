//! The house style of every plot: fonts, colours, titles, legends, tick labels, phase
//! marks and the time-series panel, so the results plots and the benchmark report's
//! look the same.

use plotters::coord::Shift;
use plotters::coord::types::RangedCoordf64;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

use results::Results;

use super::FAMILY;

/// One panel of a grid of time series: seconds across, `y_desc` up, the house grid and
/// fonts, so every time plot (here and in the benchmark report) looks the same.
pub(crate) fn time_panel<'a, DB: DrawingBackend + 'a>(
    panel: &'a DrawingArea<DB, Shift>,
    caption: &str,
    (x_max, y_max): (f64, f64),
    y_label_area: u32,
    y_desc: &str,
) -> Result<ChartContext<'a, DB, Cartesian2d<RangedCoordf64, RangedCoordf64>>, String> {
    let mut chart = ChartBuilder::on(panel)
        .caption(caption, caption_style())
        .margin(8)
        .x_label_area_size(34)
        .y_label_area_size(y_label_area)
        .build_cartesian_2d(0.0..x_max, 0.0..y_max)
        .map_err(err)?;
    chart
        .configure_mesh()
        .light_line_style(RGBColor(235, 235, 235))
        .x_desc("seconds")
        .y_desc(y_desc)
        .x_label_formatter(&tick)
        .y_label_formatter(&tick)
        .label_style((FAMILY, 13))
        .axis_desc_style((FAMILY, 14))
        .draw()
        .map_err(err)?;
    Ok(chart)
}

/// A drawing error as the message `Error::Plot` carries.
pub(crate) fn err<E: std::fmt::Display>(e: E) -> String {
    e.to_string()
}

/// A colour-blind-safe colour per algorithm (Okabe–Ito), stable across plots.
pub fn color_of(algorithm: &str) -> RGBColor {
    match algorithm {
        "fixed-window" => RGBColor(230, 159, 0),
        "sliding-log" => RGBColor(86, 180, 233),
        "sliding-window" => RGBColor(0, 158, 115),
        "token-bucket" => RGBColor(0, 114, 178),
        "gcra" => RGBColor(204, 121, 167),
        "seed-replica" => RGBColor(213, 94, 0),
        _ => RGBColor(100, 100, 100),
    }
}

/// How a store's lines are drawn: solid for the in-process store, dashed for the
/// others, so one colour (the algorithm) reads across stores.
pub(crate) fn store_dash(store: &str) -> Option<(u32, u32)> {
    match store {
        "memory" | "" => None,
        "simulated" => Some((14, 6)),
        "redis" => Some((7, 4)),
        "redis-cluster" => Some((2, 4)),
        _ => Some((4, 4)),
    }
}

/// The legend's word for a store's line style.
pub(crate) fn store_style_name(store: &str) -> &'static str {
    match store_dash(store) {
        None => "solid",
        Some((14, _)) => "long dashes",
        Some((7, _)) => "dashes",
        Some((2, _)) => "dots",
        Some(_) => "short dashes",
    }
}

/// Values per bin as a step line: each bin's value held flat across the bin (`step`
/// wide), so a constant rate reads flat and a phase change as a step, not a ramp.
pub(crate) fn steps(values: &[f64], step: f64) -> Vec<(f64, f64)> {
    let mut out = Vec::with_capacity(values.len() * 2);
    for (k, &v) in values.iter().enumerate() {
        out.push((k as f64 * step, v));
        out.push(((k + 1) as f64 * step, v));
    }
    out
}

/// Draws `points` as a line in `color`, solid or dashed as `dash` says; returns the
/// series handle for a legend entry.
pub(crate) fn draw_line<'a, 'b, DB: DrawingBackend + 'a>(
    chart: &'b mut ChartContext<'a, DB, Cartesian2d<RangedCoordf64, RangedCoordf64>>,
    points: Vec<(f64, f64)>,
    style: ShapeStyle,
    dash: Option<(u32, u32)>,
) -> Result<&'b mut plotters::chart::SeriesAnno<'a, DB>, String> {
    match dash {
        None => chart
            .draw_series(LineSeries::new(points, style))
            .map_err(err),
        Some((size, spacing)) => chart
            .draw_series(DashedLineSeries::new(points, size, spacing, style))
            .map_err(err),
    }
}

/// Offered requests.
pub(crate) const OFFERED: RGBColor = RGBColor(150, 150, 150);
/// Phase marks and guides.
pub(crate) const MARK: RGBColor = RGBColor(110, 110, 110);

/// The whole-figure title's font.
fn title_style() -> TextStyle<'static> {
    (FAMILY, 26).into_font().into()
}

/// A panel's caption font.
pub(crate) fn caption_style() -> TextStyle<'static> {
    (FAMILY, 18).into_font().into()
}

/// Draws the whole-figure title and returns the area below it.
pub(crate) fn titled<DB: DrawingBackend>(
    root: &DrawingArea<DB, Shift>,
    title: &str,
) -> Result<DrawingArea<DB, Shift>, String> {
    root.fill(&WHITE).map_err(err)?;
    root.titled(title, title_style()).map_err(err)
}

/// Splits a strip off the top of `area` and draws a one-line legend in it: a short
/// line of each colour and its name. Returns the area below.
pub(crate) fn legend_strip<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    items: &[(&str, RGBColor)],
) -> Result<DrawingArea<DB, Shift>, String> {
    let (strip, rest) = area.split_vertically(30);
    let mut x = 80;
    for (name, color) in items {
        strip
            .draw(&PathElement::new(
                [(x, 15), (x + 26, 15)],
                color.stroke_width(3),
            ))
            .map_err(err)?;
        strip
            .draw(&Text::new(
                (*name).to_owned(),
                (x + 32, 15),
                TextStyle::from((FAMILY, 15).into_font()).pos(Pos::new(HPos::Left, VPos::Center)),
            ))
            .map_err(err)?;
        x += 50 + 9 * name.chars().count() as i32;
    }
    Ok(rest)
}

/// Tick labels without spurious decimals: `60`, `2.5`, `12,000`.
pub(crate) fn tick(v: &f64) -> String {
    let a = v.abs();
    if a >= 1000.0 {
        let n = v.round() as i64;
        let s = crate::format::thousands(n.unsigned_abs());
        if n < 0 { format!("-{s}") } else { s }
    } else if (v - v.round()).abs() < 1e-9 {
        format!("{v:.0}")
    } else if a >= 10.0 {
        format!("{v:.1}")
    } else {
        let t = format!("{v:.2}");
        t.trim_end_matches('0').trim_end_matches('.').to_owned()
    }
}

/// A figure title naming the workload, the source and the random seed (said as such:
/// the built-in workload is itself called `seed`).
pub(crate) fn workload_title(results: &Results, what: &str) -> String {
    format!(
        "{what} — workload “{}” ({}, random seed {})",
        results.workload.name,
        results.source.name(),
        results.workload.seed
    )
}

/// Vertical dashed lines at phase starts (after the first), named at the top (or at
/// the bottom, where a legend sits at the top).
pub(crate) fn phase_marks<DB: DrawingBackend, Y>(
    chart: &mut ChartContext<'_, DB, Cartesian2d<plotters::coord::types::RangedCoordf64, Y>>,
    results: &Results,
    y_top: Y::ValueType,
    y_bottom: Y::ValueType,
    names_at_top: bool,
) -> Result<(), String>
where
    Y: Ranged,
    Y::ValueType: Clone + 'static,
{
    for (i, p) in results.workload.phases.iter().enumerate() {
        let x = p.start_s;
        if i > 0 {
            chart
                .draw_series(DashedLineSeries::new(
                    [(x, y_bottom.clone()), (x, y_top.clone())],
                    6,
                    4,
                    MARK.stroke_width(1),
                ))
                .map_err(err)?;
        }
        let (y, v) = if names_at_top {
            (y_top.clone(), VPos::Top)
        } else {
            (y_bottom.clone(), VPos::Bottom)
        };
        chart
            .draw_series(std::iter::once(Text::new(
                p.name.clone(),
                (x + results.workload.duration_s * 0.006, y),
                TextStyle::from((FAMILY, 14).into_font())
                    .color(&MARK)
                    .pos(Pos::new(HPos::Left, v)),
            )))
            .map_err(err)?;
    }
    Ok(())
}

/// The time axis' length: the workload's, or the longest series'.
pub(crate) fn duration(results: &Results) -> f64 {
    let from_series = results
        .runs
        .iter()
        .map(|r| r.series.offered.len() as f64 * r.series.step_s)
        .fold(0.0, f64::max);
    results.workload.duration_s.max(from_series).max(1.0)
}
