//! The bar plots, one bar per run: `accuracy` (over- and under-admission against the
//! exact reference, and the worst key's envelope excess) and `burst` (the worst key's
//! burst ratio against the policy's 1.0).

use std::ops::Range;

use plotters::coord::Shift;
use plotters::coord::ranged1d::SegmentedCoord;
use plotters::coord::types::{RangedCoordf64, RangedCoordi32};
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

use results::Results;

use super::style::{MARK, caption_style, color_of, err, tick, titled, workload_title};
use super::{Chart, FAMILY};
use crate::summary::run_label;

/// A bar chart: one bar per run.
struct Bars<'a> {
    caption: &'a str,
    y_desc: &'a str,
    values: Vec<f64>,
    /// Optional second bars drawn downwards from zero in the same slots (non-zero
    /// entries only): under-admission below over-admission.
    below: Vec<f64>,
    /// Each value printed above (or below) its bar.
    fmt: &'a dyn Fn(f64) -> String,
    /// A dashed horizontal line at a value, with a label.
    guide: Option<(f64, &'a str)>,
}

/// Width of one character of a 14-pixel axis label, generously (the font is
/// proportional).
const LABEL_CHAR_PX: u32 = 7;

/// The height a bar chart `width` pixels wide needs for its run names standing upright,
/// or `None` when they fit side by side (few runs, short names).
pub(super) fn upright_label_px(results: &Results, width: u32) -> Option<u32> {
    let n = results.runs.len().max(1) as u32;
    let longest = results
        .runs
        .iter()
        .map(|run| run_label(results, run).chars().count())
        .max()
        .unwrap_or(0) as u32;
    let label_px = longest * LABEL_CHAR_PX + 12;
    let slot_px = width.saturating_sub(90) / n;
    (label_px > slot_px).then_some(label_px + 10)
}

/// The chart a bar plot draws on: one segment per run across, values up.
type BarChart<'a, DB> =
    ChartContext<'a, DB, Cartesian2d<SegmentedCoord<RangedCoordi32>, RangedCoordf64>>;

/// Every bar as `(slot, signed value)`: the values upwards, then the non-zero `below`
/// values downwards in the same slots.
fn signed_bars(values: &[f64], below: &[f64]) -> Vec<(usize, f64)> {
    let down = below
        .iter()
        .enumerate()
        .filter(|(_, b)| **b > 0.0)
        .map(|(i, b)| (i, -b));
    values.iter().copied().enumerate().chain(down).collect()
}

/// The value axis: from below the lowest bar (or zero) to above the highest bar or
/// guide, with room for the value labels.
fn value_range(all: &[(usize, f64)], guide: Option<f64>) -> Range<f64> {
    let hi = all.iter().map(|b| b.1).chain(guide).fold(0.0, f64::max);
    let lo = all.iter().map(|b| b.1).fold(0.0, f64::min);
    let pad = ((hi - lo) * 0.18).max(if hi == 0.0 && lo == 0.0 { 1.0 } else { 0.05 });
    (if lo < 0.0 { lo - pad } else { 0.0 })..(hi + pad)
}

/// Draws `spec` for the runs of `results`, each bar in its algorithm's colour.
fn bars<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    results: &Results,
    spec: &Bars<'_>,
) -> Result<(), String> {
    let all = signed_bars(&spec.values, &spec.below);
    let y_range = value_range(&all, spec.guide.map(|g| g.0));
    let n = spec.values.len() as i32;
    let names: Vec<String> = results
        .runs
        .iter()
        .map(|run| run_label(results, run))
        .collect();
    let upright_px = upright_label_px(results, area.dim_in_pixel().0);
    let upright = upright_px.is_some();
    let mut chart = ChartBuilder::on(area)
        .caption(spec.caption, caption_style())
        .margin(10)
        .x_label_area_size(upright_px.unwrap_or(36))
        .y_label_area_size(70)
        // A one-value range maps every value to its left edge (plotters' linear map of
        // an empty span): one run gets two slots, its bar in the first.
        .build_cartesian_2d((0..(n - 1).max(1)).into_segmented(), y_range.clone())
        .map_err(err)?;
    let formatter = |v: &SegmentValue<i32>| match v {
        // Upright labels are drawn below, where they can hang from the axis.
        SegmentValue::CenterOf(i) if !upright => {
            names.get(*i as usize).cloned().unwrap_or_default()
        }
        _ => String::new(),
    };
    chart
        .configure_mesh()
        .disable_x_mesh()
        .light_line_style(RGBColor(235, 235, 235))
        .x_labels(spec.values.len().max(1))
        .x_label_formatter(&formatter)
        .y_label_formatter(&tick)
        .y_desc(spec.y_desc)
        .label_style((FAMILY, 14))
        .axis_desc_style((FAMILY, 14))
        .draw()
        .map_err(err)?;
    if upright {
        upright_names(area, &chart, &names, y_range.start)?;
    }
    let colors: Vec<RGBColor> = results
        .runs
        .iter()
        .map(|run| color_of(&run.algorithm))
        .collect();
    draw_bars(&mut chart, &all, &colors, spec.fmt)?;
    if let Some(guide) = spec.guide {
        draw_guide(&mut chart, guide, n)?;
    }
    if y_range.start < 0.0 {
        // The zero line between bars up and bars down.
        chart
            .draw_series(std::iter::once(PathElement::new(
                [(SegmentValue::Exact(0), 0.0), (SegmentValue::Exact(n), 0.0)],
                BLACK.stroke_width(1),
            )))
            .map_err(err)?;
    }
    Ok(())
}

/// Run names reading downwards from just under each bar's slot, for many runs or
/// long names.
fn upright_names<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    chart: &BarChart<'_, DB>,
    names: &[String],
    y_start: f64,
) -> Result<(), String> {
    let (base_x, base_y) = area.get_base_pixel();
    let style = TextStyle::from((FAMILY, 14).into_font())
        .transform(FontTransform::Rotate90)
        .pos(Pos::new(HPos::Left, VPos::Center));
    for (i, name) in names.iter().enumerate() {
        let (x, y) = chart.backend_coord(&(SegmentValue::CenterOf(i as i32), y_start));
        area.draw_text(name, &style, (x - base_x, y - base_y + 6))
            .map_err(err)?;
    }
    Ok(())
}

/// The bars, each in its run's colour, with its value printed at its end.
fn draw_bars<DB: DrawingBackend>(
    chart: &mut BarChart<'_, DB>,
    all: &[(usize, f64)],
    colors: &[RGBColor],
    fmt: &dyn Fn(f64) -> String,
) -> Result<(), String> {
    chart
        .draw_series(all.iter().map(|&(i, v)| {
            let c = colors.get(i).copied().unwrap_or(MARK);
            let i = i as i32;
            let mut bar = Rectangle::new(
                [
                    (SegmentValue::Exact(i), 0.0),
                    (SegmentValue::Exact(i + 1), v),
                ],
                c.filled(),
            );
            bar.set_margin(0, 0, 18, 18);
            bar
        }))
        .map_err(err)?;
    // A zero bar has no height to label: "+0.0%" on every bar says nothing.
    chart
        .draw_series(all.iter().filter(|&&(_, v)| v != 0.0).map(|&(i, v)| {
            let pos = if v >= 0.0 {
                Pos::new(HPos::Center, VPos::Bottom)
            } else {
                Pos::new(HPos::Center, VPos::Top)
            };
            Text::new(
                fmt(v),
                (SegmentValue::CenterOf(i as i32), v),
                TextStyle::from((FAMILY, 15).into_font()).pos(pos),
            )
        }))
        .map_err(err)?;
    Ok(())
}

/// A dashed horizontal line across all `n` slots at `y`, labelled at its left end.
fn draw_guide<DB: DrawingBackend>(
    chart: &mut BarChart<'_, DB>,
    (y, text): (f64, &str),
    n: i32,
) -> Result<(), String> {
    chart
        .draw_series(DashedLineSeries::new(
            [(SegmentValue::Exact(0), y), (SegmentValue::Exact(n), y)],
            8,
            5,
            BLACK.stroke_width(1),
        ))
        .map_err(err)?;
    chart
        .draw_series(std::iter::once(Text::new(
            text.to_owned(),
            (SegmentValue::Exact(0), y),
            TextStyle::from((FAMILY, 13).into_font()).pos(Pos::new(HPos::Left, VPos::Bottom)),
        )))
        .map_err(err)?;
    Ok(())
}

fn percent(part: u64, of: u64) -> f64 {
    if of == 0 {
        if part == 0 { 0.0 } else { 100.0 }
    } else {
        part as f64 * 100.0 / of as f64
    }
}

pub(super) struct Accuracy<'a>(pub(super) &'a Results);

impl Chart for Accuracy<'_> {
    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> Result<(), String> {
        let r = self.0;
        let area = titled(root, &workload_title(r, "Accuracy"))?;
        let (top, bottom) = area.split_vertically(area.dim_in_pixel().1 / 2);
        // Over-admission up, under-admission down, in each run's slot.
        let share = |f: fn(&results::PhaseStats) -> u64| -> Vec<f64> {
            r.runs
                .iter()
                .map(|run| percent(f(&run.totals), run.totals.reference_admitted))
                .collect()
        };
        bars(
            &top,
            r,
            &Bars {
                caption: "Admitted beyond (+) and short of (−) the exact reference, % of its admissions, summed over keys",
                y_desc: "% of exact",
                values: share(|t| t.over_admission),
                below: share(|t| t.under_admission),
                fmt: &|v| {
                    if v != 0.0 && v.abs() < 0.1 {
                        format!("{v:+.2}%")
                    } else {
                        format!("{v:+.1}%")
                    }
                },
                guide: None,
            },
        )?;
        let excess: Vec<f64> = r
            .runs
            .iter()
            .map(|run| run.totals.envelope_excess)
            .collect();
        bars(
            &bottom,
            r,
            &Bars {
                caption: "Envelope excess, worst key: most admitted beyond the policy in any interval",
                y_desc: "requests",
                values: excess,
                below: Vec::new(),
                // Requests: whole numbers as integers ("3", not "3.00").
                fmt: &|v| crate::format::excess(v),
                guide: None,
            },
        )
    }
}

pub(super) struct Burst<'a>(pub(super) &'a Results);

impl Chart for Burst<'_> {
    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> Result<(), String> {
        let r = self.0;
        let area = titled(root, &workload_title(r, "Burst ratio"))?;
        let values: Vec<f64> = r.runs.iter().map(|run| run.totals.burst_ratio).collect();
        bars(
            &area,
            r,
            &Bars {
                caption: "Most admitted in any window-length interval, over the limit (worst key)",
                y_desc: "× limit",
                values,
                below: Vec::new(),
                fmt: &|v| format!("{v:.2}×"),
                guide: Some((1.0, " limit")),
            },
        )
    }
}
