//! The plots over time: requests per second (`throughput`), cumulative admissions
//! (`admitted`), admissions against the exact reference at phase ends (`difference`)
//! and latency percentiles (`latency`).
//!
//! Every series is drawn as steps on the run's bins (phase boundaries fall on bin
//! edges), one colour per algorithm and one line style per store.

use plotters::coord::Shift;
use plotters::coord::types::RangedCoordf64;
use plotters::prelude::*;

use results::{Results, Run};

use super::style::{
    OFFERED, color_of, draw_line, duration, err, legend_strip, phase_marks, steps, store_dash,
    store_style_name, tick, time_panel, titled, workload_title,
};
use super::{Chart, FAMILY};
use crate::summary::run_label;

/// A run's legend label: its name, and how its store is drawn when stores differ.
fn legend_label(r: &Results, run: &Run, value: &str) -> String {
    let stores_differ = r.runs.iter().any(|x| x.store != run.store);
    if stores_differ {
        format!(
            "{} ({}, {}){value}",
            run.algorithm,
            run.store,
            store_style_name(&run.store)
        )
    } else {
        format!("{}{value}", run_label(r, run))
    }
}

/// The legend box every multi-run chart uses.
fn draw_legend<'a, DB: DrawingBackend + 'a>(
    chart: &mut ChartContext<'a, DB, Cartesian2d<RangedCoordf64, RangedCoordf64>>,
    position: SeriesLabelPosition,
) -> Result<(), String> {
    chart
        .configure_series_labels()
        .position(position)
        .margin(14)
        .background_style(WHITE.mix(0.88))
        .border_style(RGBColor(200, 200, 200))
        .label_font((FAMILY, 14))
        .draw()
        .map_err(err)
}

/// Offered per second (one line: every run plays the same arrivals) above admitted per
/// second (one line per run, on its own scale, so admissions far below the offered
/// load still show).
pub(super) struct Throughput<'a>(pub(super) &'a Results);

impl Chart for Throughput<'_> {
    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> Result<(), String> {
        let r = self.0;
        let area = titled(root, &workload_title(r, "Requests per second"))?;
        let (top, bottom) = area.split_vertically(area.dim_in_pixel().1 * 2 / 5);
        let x_max = duration(r);
        let Some(first) = r.runs.first() else {
            return Ok(());
        };
        let rate =
            |v: &[u64], step: f64| -> Vec<f64> { v.iter().map(|&c| c as f64 / step).collect() };

        let offered = rate(&first.series.offered, first.series.step_s);
        let y_max = offered.iter().copied().fold(1.0, f64::max) * 1.15;
        let mut chart = time_panel(&top, "Offered", (x_max, y_max), 70, "requests / s")?;
        draw_line(
            &mut chart,
            steps(&offered, first.series.step_s),
            OFFERED.stroke_width(3),
            None,
        )?;
        phase_marks(&mut chart, r, y_max, 0.0, true)?;

        let admitted_max = r
            .runs
            .iter()
            .flat_map(|run| rate(&run.series.admitted, run.series.step_s))
            .fold(0.0, f64::max);
        let y_max = (admitted_max * 1.3).max(1.0);
        let caption = if admitted_max * 10.0 < offered.iter().copied().fold(0.0, f64::max) {
            "Admitted (own scale: far below the offered load)"
        } else {
            "Admitted"
        };
        let mut chart = time_panel(&bottom, caption, (x_max, y_max), 70, "requests / s")?;
        for run in &r.runs {
            let color = color_of(&run.algorithm);
            draw_line(
                &mut chart,
                steps(
                    &rate(&run.series.admitted, run.series.step_s),
                    run.series.step_s,
                ),
                color.stroke_width(2),
                store_dash(&run.store),
            )?
            .label(legend_label(r, run, ""))
            .legend(move |(x, y)| PathElement::new([(x, y), (x + 20, y)], color.stroke_width(3)));
        }
        phase_marks(&mut chart, r, y_max, 0.0, false)?;
        draw_legend(&mut chart, SeriesLabelPosition::UpperRight)
    }
}

pub(super) struct Cumulative<'a>(pub(super) &'a Results);

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
            let width = 2 + (n - 1 - i as u32).min(3);
            let step = run.series.step_s;
            let mut sum = 0u64;
            let mut points = vec![(0.0, 0.0)];
            for (k, &c) in run.series.admitted.iter().enumerate() {
                // Steps: the count rises at the bin's end, holds across the next.
                points.push(((k + 1) as f64 * step, sum as f64));
                sum += c;
                points.push(((k + 1) as f64 * step, sum as f64));
            }
            let total = format!(": {}", crate::format::thousands(run.totals.admitted));
            draw_line(
                &mut chart,
                points,
                color.stroke_width(width),
                store_dash(&run.store),
            )?
            .label(legend_label(r, run, &total))
            .legend(move |(x, y)| PathElement::new([(x, y), (x + 20, y)], color.stroke_width(4)));
        }
        reference_marks(&mut chart, r)?;
        phase_marks(&mut chart, r, y_max, 0.0, false)?;
        draw_legend(&mut chart, SeriesLabelPosition::UpperLeft)
    }
}

/// Each run's admissions minus its exact reference's at every phase end: where the
/// absolute lines overlap, the difference shows who over- or under-admits, and when.
pub(super) struct Difference<'a>(pub(super) &'a Results);

/// `(phase end, admitted − reference admitted so far)` per phase of `run`.
fn differences(r: &Results, run: &Run) -> Vec<(f64, f64)> {
    let (mut admitted, mut reference) = (0i64, 0i64);
    std::iter::once((0.0, 0.0))
        .chain(run.phases.iter().zip(&r.workload.phases).map(|(s, p)| {
            admitted += s.admitted as i64;
            reference += s.reference_admitted as i64;
            (p.start_s + p.duration_s, (admitted - reference) as f64)
        }))
        .collect()
}

impl Chart for Difference<'_> {
    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> Result<(), String> {
        let r = self.0;
        let area = titled(root, &workload_title(r, "Admitted minus exact, so far"))?;
        let all: Vec<Vec<(f64, f64)>> = r.runs.iter().map(|run| differences(r, run)).collect();
        let (lo, hi) = all
            .iter()
            .flatten()
            .fold((0.0f64, 0.0f64), |(lo, hi), &(_, d)| (lo.min(d), hi.max(d)));
        let pad = ((hi - lo) * 0.15).max(1.0);
        let (y_lo, y_hi) = (lo - pad, hi + pad);
        let x_max = duration(r);
        let mut chart = ChartBuilder::on(&area)
            .margin(12)
            .x_label_area_size(40)
            .y_label_area_size(70)
            .build_cartesian_2d(0.0..x_max, y_lo..y_hi)
            .map_err(err)?;
        chart
            .configure_mesh()
            .light_line_style(RGBColor(235, 235, 235))
            .x_desc("seconds (marks at phase ends)")
            .y_desc("requests beyond (+) or short of (−) exact")
            .x_label_formatter(&tick)
            .y_label_formatter(&integer_tick)
            .label_style((FAMILY, 14))
            .axis_desc_style((FAMILY, 15))
            .draw()
            .map_err(err)?;
        chart
            .draw_series(LineSeries::new(
                [(0.0, 0.0), (x_max, 0.0)],
                BLACK.stroke_width(1),
            ))
            .map_err(err)?;
        let n = r.runs.len();
        for (i, (run, points)) in r.runs.iter().zip(all).enumerate() {
            let color = color_of(&run.algorithm);
            let width = 2 + (n - 1 - i).min(3) as u32;
            let last = points.last().map_or(0.0, |p| p.1);
            let marks = points.clone();
            draw_line(
                &mut chart,
                points,
                color.stroke_width(width),
                store_dash(&run.store),
            )?
            .label(legend_label(r, run, &format!(": {last:+.0}")))
            .legend(move |(x, y)| PathElement::new([(x, y), (x + 20, y)], color.stroke_width(4)));
            chart
                .draw_series(marks.into_iter().map(|p| Circle::new(p, 4, color.filled())))
                .map_err(err)?;
        }
        phase_marks(&mut chart, r, y_hi, y_lo, false)?;
        draw_legend(&mut chart, SeriesLabelPosition::UpperLeft)
    }
}

/// Tick labels for counts: whole numbers only.
fn integer_tick(v: &f64) -> String {
    if (v - v.round()).abs() < 1e-9 {
        tick(v)
    } else {
        String::new()
    }
}

/// The exact references at phase ends, as crosses: what a perfect limiter admits by
/// then (once per distinct reference).
fn reference_marks<DB: DrawingBackend>(
    chart: &mut ChartContext<'_, DB, Cartesian2d<RangedCoordf64, RangedCoordf64>>,
    r: &Results,
) -> Result<(), String> {
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
                "{} at phase ends: {}",
                run.reference,
                crate::format::thousands(run.totals.reference_admitted)
            ))
            .legend(move |(x, y)| Cross::new((x + 10, y), 6, style));
    }
    Ok(())
}

/// p50, p99 and p99.9 per bin in milliseconds, one panel per run that has latencies
/// (a run without any gets no empty panel).
pub(super) struct LatencyChart<'a>(pub(super) &'a Results);

impl LatencyChart<'_> {
    /// The runs with a latency series.
    pub(super) fn runs(&self) -> Vec<&Run> {
        self.0
            .runs
            .iter()
            .filter(|r| r.series.latency_us.iter().any(Option::is_some))
            .collect()
    }
}

impl Chart for LatencyChart<'_> {
    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> Result<(), String> {
        let r = self.0;
        let area = titled(root, &workload_title(r, "Latency percentiles"))?;
        let styles = [
            ("p50", RGBColor(0, 114, 178)),
            ("p99", RGBColor(230, 159, 0)),
            ("p99.9", RGBColor(213, 94, 0)),
        ];
        let area = legend_strip(&area, &styles)?;
        let runs = self.runs();
        let rows = runs.len().div_ceil(2).max(1);
        let cols = if runs.len() == 1 { 1 } else { 2 };
        let panels = area.split_evenly((rows, cols));
        let x_max = duration(r);
        let y_max = runs
            .iter()
            .flat_map(|run| run.series.latency_us.iter().flatten().map(|l| l.p999 / 1e3))
            .fold(0.01, f64::max)
            * 1.15;
        for (run, panel) in runs.iter().zip(panels.iter()) {
            let mut chart = time_panel(panel, &run_label(r, run), (x_max, y_max), 70, "ms")?;
            let step = run.series.step_s;
            for (k, (_, color)) in styles.iter().enumerate() {
                // Bins without a request leave a gap rather than a fall to zero.
                let mut segment: Vec<(f64, f64)> = Vec::new();
                let mut segments = Vec::new();
                for (s, l) in run.series.latency_us.iter().enumerate() {
                    match l {
                        Some(l) => {
                            let v = [l.p50, l.p99, l.p999][k] / 1e3;
                            segment.push((s as f64 * step, v));
                            segment.push(((s + 1) as f64 * step, v));
                        }
                        None => segments.push(std::mem::take(&mut segment)),
                    }
                }
                segments.push(segment);
                for points in segments.into_iter().filter(|p| !p.is_empty()) {
                    draw_line(&mut chart, points, color.stroke_width(2), None)?;
                }
            }
            phase_marks(&mut chart, r, y_max, 0.0, true)?;
        }
        Ok(())
    }
}

/// Latency by store: each run's p50 (hollow) and p99 (filled) over the whole run, one
/// column per store, one colour per algorithm — what a store costs at a glance.
pub(super) struct LatencyByStore<'a>(pub(super) &'a Results);

impl LatencyByStore<'_> {
    /// The stores with a run that has latencies, in the order runs list them.
    pub(super) fn stores(&self) -> Vec<&str> {
        let mut stores: Vec<&str> = Vec::new();
        for run in self.0.runs.iter().filter(|r| r.totals.latency_us.is_some()) {
            if !stores.contains(&run.store.as_str()) {
                stores.push(&run.store);
            }
        }
        stores
    }
}

impl Chart for LatencyByStore<'_> {
    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> Result<(), String> {
        let r = self.0;
        let area = titled(root, &workload_title(r, "Latency by store, whole run"))?;
        let stores = self.stores();
        let y_max = r
            .runs
            .iter()
            .filter_map(|run| run.totals.latency_us.map(|l| l.p99 / 1e3))
            .fold(0.01, f64::max)
            * 1.25;
        let n = stores.len().max(1) as f64;
        let mut chart = ChartBuilder::on(&area)
            .margin(12)
            .x_label_area_size(40)
            .y_label_area_size(70)
            .build_cartesian_2d(-0.5..n - 0.5, 0.0..y_max)
            .map_err(err)?;
        let names = stores.clone();
        let label = move |x: &f64| {
            let i = x.round();
            if (x - i).abs() < 1e-6 && i >= 0.0 {
                names
                    .get(i as usize)
                    .map(|s| (*s).to_owned())
                    .unwrap_or_default()
            } else {
                String::new()
            }
        };
        chart
            .configure_mesh()
            .disable_x_mesh()
            .light_line_style(RGBColor(235, 235, 235))
            .x_labels(stores.len() * 2 + 1)
            .x_label_formatter(&label)
            .y_desc("ms (○ p50, ● p99)")
            .y_label_formatter(&tick)
            .label_style((FAMILY, 14))
            .axis_desc_style((FAMILY, 15))
            .draw()
            .map_err(err)?;
        let algorithms: Vec<&str> = {
            let mut a: Vec<&str> = Vec::new();
            for run in &r.runs {
                if !a.contains(&run.algorithm.as_str()) {
                    a.push(&run.algorithm);
                }
            }
            a
        };
        let width = 0.7 / algorithms.len().max(1) as f64;
        for (j, algorithm) in algorithms.iter().enumerate() {
            let color = color_of(algorithm);
            let points: Vec<(f64, f64, f64)> = r
                .runs
                .iter()
                .filter(|run| run.algorithm == *algorithm)
                .filter_map(|run| {
                    let l = run.totals.latency_us?;
                    let i = stores.iter().position(|s| *s == run.store)? as f64;
                    let x = i - 0.35 + width * (j as f64 + 0.5);
                    Some((x, l.p50 / 1e3, l.p99 / 1e3))
                })
                .collect();
            chart
                .draw_series(points.iter().map(|&(x, p50, p99)| {
                    PathElement::new([(x, p50), (x, p99)], color.stroke_width(2))
                }))
                .map_err(err)?;
            chart
                .draw_series(
                    points
                        .iter()
                        .map(|&(x, p50, _)| Circle::new((x, p50), 5, color.stroke_width(2))),
                )
                .map_err(err)?;
            chart
                .draw_series(
                    points
                        .iter()
                        .map(|&(x, _, p99)| Circle::new((x, p99), 5, color.filled())),
                )
                .map_err(err)?
                .label(*algorithm)
                .legend(move |(x, y)| Circle::new((x + 10, y), 5, color.filled()));
        }
        draw_legend(&mut chart, SeriesLabelPosition::UpperLeft)
    }
}
