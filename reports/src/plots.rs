//! Plots of results, drawn with plotters to PNG and SVG from the results alone.
//!
//! - `throughput`: offered, admitted and rejected requests per second, one panel per
//!   run, phase boundaries marked;
//! - `admitted`: cumulative admissions of every run on one chart, with the exact
//!   references' totals at phase ends;
//! - `accuracy`: over- and under-admission (percent of the exact reference) and the
//!   worst key's envelope excess, per run;
//! - `burst`: the worst key's burst ratio per run, against the policy's 1.0;
//! - `latency`: p50, p99 and p99.9 per second, one panel per run (only when some run
//!   carries latencies: measured runs, or a modelled store round trip).
//!
//! PNG text is drawn with the embedded DejaVu Sans, registered once as `sans-serif`,
//! so no system font is needed.

use std::path::{Path, PathBuf};
use std::sync::Once;

use plotters::coord::Shift;
use plotters::coord::types::RangedCoordf64;
use plotters::prelude::*;
use plotters::style::FontStyle;
use plotters::style::text_anchor::{HPos, Pos, VPos};

use results::Results;

use crate::Error;
use crate::summary::run_label;

/// The font every label is drawn with (DejaVu Sans; licence in `assets/`).
static FONT: &[u8] = include_bytes!("../assets/DejaVuSans.ttf");
pub(crate) const FAMILY: &str = "sans-serif";

static REGISTER: Once = Once::new();

pub(crate) fn register_font() {
    REGISTER.call_once(|| {
        // The embedded font is a valid TrueType file; were it not, plotters would fail
        // to draw text and report it as a drawing error, never panic.
        let _ = plotters::style::register_font(FAMILY, FontStyle::Normal, FONT);
    });
}

/// One rendered plot: a PNG and an SVG of the same chart.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Plot {
    /// File stem (`throughput`).
    pub name: &'static str,
    /// What it shows, for captions and alt text.
    pub title: String,
    /// The PNG file.
    pub png: PathBuf,
    /// The SVG file.
    pub svg: PathBuf,
}

/// Renders every plot that applies to `results` into `dir` (created if missing).
pub fn render_all(results: &Results, dir: &Path) -> Result<Vec<Plot>, Error> {
    register_font();
    std::fs::create_dir_all(dir).map_err(|source| Error::Io {
        path: dir.to_owned(),
        source,
    })?;
    let mut plots = Vec::new();
    if results.runs.is_empty() {
        return Ok(plots);
    }
    let panels = results.runs.len() as u32;
    let rows = panels.div_ceil(2);
    // Bar charts with many runs stand their names upright: room for them.
    let upright = upright_label_px(results, 1400).unwrap_or(0);
    plots.push(render(
        dir,
        "throughput",
        "Offered, admitted and rejected requests per second",
        (1400, 80 + 300 * rows),
        &Throughput(results),
    )?);
    plots.push(render(
        dir,
        "admitted",
        "Cumulative admissions over time",
        (1400, 620),
        &Cumulative(results),
    )?);
    plots.push(render(
        dir,
        "accuracy",
        "Over- and under-admission against the exact reference, and envelope excess",
        (1400, 900 + 2 * upright),
        &Accuracy(results),
    )?);
    plots.push(render(
        dir,
        "burst",
        "Burst ratio: most admitted in any window, over the limit",
        (1400, 520 + upright),
        &Burst(results),
    )?);
    if results.has_latency() {
        plots.push(render(
            dir,
            "latency",
            "Latency percentiles per second",
            (1400, 80 + 300 * rows),
            &LatencyChart(results),
        )?);
    }
    Ok(plots)
}

/// A chart drawable on any plotters backend.
trait Chart {
    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> Result<(), String>;
}

fn render<C: Chart>(
    dir: &Path,
    name: &'static str,
    title: &str,
    size: (u32, u32),
    chart: &C,
) -> Result<Plot, Error> {
    let fail = |message: String| Error::Plot {
        plot: name.to_owned(),
        message,
    };
    let png = dir.join(format!("{name}.png"));
    {
        let root = BitMapBackend::new(&png, size).into_drawing_area();
        chart.draw(&root).map_err(fail)?;
        root.present().map_err(|e| fail(e.to_string()))?;
    }
    let svg = dir.join(format!("{name}.svg"));
    {
        let root = SVGBackend::new(&svg, size).into_drawing_area();
        chart.draw(&root).map_err(fail)?;
        root.present().map_err(|e| fail(e.to_string()))?;
    }
    Ok(Plot {
        name,
        title: title.to_owned(),
        png,
        svg,
    })
}

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

const OFFERED: RGBColor = RGBColor(150, 150, 150);
const ADMITTED: RGBColor = RGBColor(0, 140, 70);
const REJECTED: RGBColor = RGBColor(200, 40, 40);
const MARK: RGBColor = RGBColor(110, 110, 110);

fn title_style() -> TextStyle<'static> {
    (FAMILY, 26).into_font().into()
}

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

fn workload_title(results: &Results, what: &str) -> String {
    format!(
        "{what} — workload {} ({}, seed {})",
        results.workload.name,
        results.source.name(),
        results.workload.seed
    )
}

/// Vertical dashed lines at phase starts (after the first), named at the top (or at
/// the bottom, where a legend sits at the top).
fn phase_marks<DB: DrawingBackend, Y>(
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

fn duration(results: &Results) -> f64 {
    let from_series = results
        .runs
        .iter()
        .map(|r| r.series.offered.len() as f64 * r.series.step_s)
        .fold(0.0, f64::max);
    results.workload.duration_s.max(from_series).max(1.0)
}

struct Throughput<'a>(&'a Results);

impl Chart for Throughput<'_> {
    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> Result<(), String> {
        let r = self.0;
        let area = titled(root, &workload_title(r, "Requests per second"))?;
        let area = legend_strip(
            &area,
            &[
                ("offered", OFFERED),
                ("admitted", ADMITTED),
                ("rejected", REJECTED),
            ],
        )?;
        let rows = r.runs.len().div_ceil(2);
        let panels = area.split_evenly((rows, 2));
        let x_max = duration(r);
        // One y scale for every panel, so panels compare at a glance.
        let y_max = r
            .runs
            .iter()
            .flat_map(|run| {
                run.series
                    .offered
                    .iter()
                    .map(|&v| v as f64 / run.series.step_s)
            })
            .fold(1.0, f64::max)
            * 1.15;
        for (run, panel) in r.runs.iter().zip(panels.iter()) {
            let mut chart = time_panel(
                panel,
                &run_label(r, run),
                (x_max, y_max),
                60,
                "requests / s",
            )?;
            let step = run.series.step_s;
            let points = |v: &[u64]| -> Vec<(f64, f64)> {
                v.iter()
                    .enumerate()
                    .map(|(k, &c)| ((k as f64 + 0.5) * step, c as f64 / step))
                    .collect()
            };
            // Offered underneath and wider, so it shows where rejected covers it.
            chart
                .draw_series(LineSeries::new(
                    points(&run.series.offered),
                    OFFERED.stroke_width(4),
                ))
                .map_err(err)?;
            chart
                .draw_series(LineSeries::new(
                    points(&run.series.rejected),
                    REJECTED.stroke_width(2),
                ))
                .map_err(err)?;
            chart
                .draw_series(LineSeries::new(
                    points(&run.series.admitted),
                    ADMITTED.stroke_width(2),
                ))
                .map_err(err)?;
            phase_marks(&mut chart, r, y_max, 0.0, true)?;
        }
        Ok(())
    }
}

struct Cumulative<'a>(&'a Results);

impl Chart for Cumulative<'_> {
    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> Result<(), String> {
        let r = self.0;
        let area = titled(root, &workload_title(r, "Admitted so far"))?;
        let x_max = duration(r);
        let y_max = r
            .runs
            .iter()
            .map(|run| run.totals.admitted.max(run.totals.reference_admitted) as f64)
            .fold(1.0, f64::max)
            * 1.12;
        let mut chart = ChartBuilder::on(&area)
            .margin(12)
            .x_label_area_size(40)
            .y_label_area_size(80)
            .build_cartesian_2d(0.0..x_max, 0.0..y_max)
            .map_err(err)?;
        chart
            .configure_mesh()
            .light_line_style(RGBColor(235, 235, 235))
            .x_desc("seconds")
            .y_desc("admitted requests (cumulative)")
            .x_label_formatter(&tick)
            .y_label_formatter(&tick)
            .label_style((FAMILY, 14))
            .axis_desc_style((FAMILY, 15))
            .draw()
            .map_err(err)?;
        let n = r.runs.len() as u32;
        for (i, run) in r.runs.iter().enumerate() {
            let color = color_of(&run.algorithm);
            // Earlier runs wider, so runs that admit the same stay visible side by side.
            let width = 2 + 2 * (n - 1 - i as u32).min(4);
            let step = run.series.step_s;
            let mut sum = 0u64;
            let points: Vec<(f64, f64)> = std::iter::once((0.0, 0.0))
                .chain(run.series.admitted.iter().enumerate().map(|(k, &c)| {
                    sum += c;
                    ((k + 1) as f64 * step, sum as f64)
                }))
                .collect();
            chart
                .draw_series(LineSeries::new(points, color.stroke_width(width)))
                .map_err(err)?
                .label(format!("{} ({})", run_label(r, run), run.totals.admitted))
                .legend(move |(x, y)| {
                    PathElement::new([(x, y), (x + 20, y)], color.stroke_width(4))
                });
        }
        // The exact references at phase ends: what a perfect limiter admits by then.
        let mut seen: Vec<&str> = Vec::new();
        for run in &r.runs {
            if run.reference.is_empty() || seen.contains(&run.reference.as_str()) {
                continue;
            }
            seen.push(&run.reference);
            let mut sum = 0u64;
            let points: Vec<(f64, f64)> = run
                .phases
                .iter()
                .zip(&r.workload.phases)
                .map(|(s, p)| {
                    sum += s.reference_admitted;
                    (p.start_s + p.duration_s, sum as f64)
                })
                .collect();
            let style = BLACK.stroke_width(2);
            chart
                .draw_series(points.iter().map(|&p| Cross::new(p, 7, style)))
                .map_err(err)?
                .label(format!(
                    "{} at phase ends ({})",
                    run.reference, run.totals.reference_admitted
                ))
                .legend(move |(x, y)| Cross::new((x + 10, y), 6, style));
        }
        phase_marks(&mut chart, r, y_max, 0.0, false)?;
        chart
            .configure_series_labels()
            .position(SeriesLabelPosition::UpperLeft)
            .margin(40)
            .background_style(WHITE.mix(0.85))
            .border_style(RGBColor(200, 200, 200))
            .label_font((FAMILY, 15))
            .draw()
            .map_err(err)?;
        Ok(())
    }
}

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
fn upright_label_px(results: &Results, width: u32) -> Option<u32> {
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

/// Draws `spec` for the runs of `results`, each bar in its algorithm's colour.
fn bars<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    results: &Results,
    spec: &Bars<'_>,
) -> Result<(), String> {
    let Bars {
        caption,
        y_desc,
        values,
        below,
        fmt,
        guide,
    } = spec;
    let guide = *guide;
    let colors: Vec<RGBColor> = results
        .runs
        .iter()
        .map(|run| color_of(&run.algorithm))
        .collect();
    let n = values.len() as i32;
    // Every bar as (slot, signed value).
    let all: Vec<(usize, f64)> = values
        .iter()
        .copied()
        .enumerate()
        .chain(
            below
                .iter()
                .enumerate()
                .filter(|(_, b)| **b > 0.0)
                .map(|(i, b)| (i, -b)),
        )
        .collect();
    let hi = all
        .iter()
        .map(|b| b.1)
        .chain(guide.map(|g| g.0))
        .fold(0.0, f64::max);
    let lo = all.iter().map(|b| b.1).fold(0.0, f64::min);
    let pad = ((hi - lo) * 0.18).max(if hi == 0.0 && lo == 0.0 { 1.0 } else { 0.05 });
    let y_range = (if lo < 0.0 { lo - pad } else { 0.0 })..(hi + pad);
    let names: Vec<String> = results
        .runs
        .iter()
        .map(|run| run_label(results, run))
        .collect();
    let upright_px = upright_label_px(results, area.dim_in_pixel().0);
    let upright = upright_px.is_some();
    let mut chart = ChartBuilder::on(area)
        .caption(caption, caption_style())
        .margin(10)
        .x_label_area_size(upright_px.unwrap_or(36))
        .y_label_area_size(70)
        .build_cartesian_2d((0..(n - 1).max(0)).into_segmented(), y_range.clone())
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
        .x_labels(values.len().max(1))
        .x_label_formatter(&formatter)
        .y_label_formatter(&tick)
        .y_desc(*y_desc)
        .label_style((FAMILY, 14))
        .axis_desc_style((FAMILY, 14))
        .draw()
        .map_err(err)?;
    if upright {
        // Each name reads downwards from just under its bar's slot.
        let (base_x, base_y) = area.get_base_pixel();
        let style = TextStyle::from((FAMILY, 14).into_font())
            .transform(FontTransform::Rotate90)
            .pos(Pos::new(HPos::Left, VPos::Center));
        for (i, name) in names.iter().enumerate() {
            let (x, y) = chart.backend_coord(&(SegmentValue::CenterOf(i as i32), y_range.start));
            area.draw_text(name, &style, (x - base_x, y - base_y + 6))
                .map_err(err)?;
        }
    }
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
    chart
        .draw_series(all.iter().map(|&(i, v)| {
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
    if let Some((y, text)) = guide {
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
    }
    if lo < 0.0 {
        chart
            .draw_series(std::iter::once(PathElement::new(
                [(SegmentValue::Exact(0), 0.0), (SegmentValue::Exact(n), 0.0)],
                BLACK.stroke_width(1),
            )))
            .map_err(err)?;
    }
    Ok(())
}

fn percent(part: u64, of: u64) -> f64 {
    if of == 0 {
        if part == 0 { 0.0 } else { 100.0 }
    } else {
        part as f64 * 100.0 / of as f64
    }
}

struct Accuracy<'a>(&'a Results);

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
                fmt: &|v| format!("{v:.2}"),
                guide: None,
            },
        )
    }
}

struct Burst<'a>(&'a Results);

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

struct LatencyChart<'a>(&'a Results);

impl Chart for LatencyChart<'_> {
    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> Result<(), String> {
        let r = self.0;
        let area = titled(root, &workload_title(r, "Latency percentiles per second"))?;
        let styles = [
            ("p50", RGBColor(0, 114, 178)),
            ("p99", RGBColor(230, 159, 0)),
            ("p99.9", RGBColor(213, 94, 0)),
        ];
        let area = legend_strip(&area, &styles)?;
        let rows = r.runs.len().div_ceil(2);
        let panels = area.split_evenly((rows, 2));
        let x_max = duration(r);
        let y_max = r
            .runs
            .iter()
            .flat_map(|run| run.series.latency_us.iter().flatten().map(|l| l.p999))
            .fold(1.0, f64::max)
            * 1.15;
        for (run, panel) in r.runs.iter().zip(panels.iter()) {
            let mut chart = time_panel(panel, &run_label(r, run), (x_max, y_max), 70, "µs")?;
            let step = run.series.step_s;
            for (k, (_, color)) in styles.iter().enumerate() {
                let points: Vec<(f64, f64)> = run
                    .series
                    .latency_us
                    .iter()
                    .enumerate()
                    .filter_map(|(s, l)| {
                        l.map(|l| {
                            let v = [l.p50, l.p99, l.p999][k];
                            ((s as f64 + 0.5) * step, v)
                        })
                    })
                    .collect();
                chart
                    .draw_series(LineSeries::new(points, color.stroke_width(2)))
                    .map_err(err)?;
            }
            phase_marks(&mut chart, r, y_max, 0.0, true)?;
        }
        Ok(())
    }
}
