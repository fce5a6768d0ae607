//! The plots over time: requests per second (`throughput`), cumulative admissions
//! (`admitted`) and latency percentiles (`latency`).

use plotters::coord::Shift;
use plotters::coord::types::RangedCoordf64;
use plotters::prelude::*;

use results::Results;

use super::style::{
    ADMITTED, OFFERED, REJECTED, color_of, duration, err, legend_strip, phase_marks, tick,
    time_panel, titled, workload_title,
};
use super::{Chart, FAMILY};
use crate::summary::run_label;

pub(super) struct Throughput<'a>(pub(super) &'a Results);

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
        reference_marks(&mut chart, r)?;
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
                "{} at phase ends ({})",
                run.reference, run.totals.reference_admitted
            ))
            .legend(move |(x, y)| Cross::new((x + 10, y), 6, style));
    }
    Ok(())
}

pub(super) struct LatencyChart<'a>(pub(super) &'a Results);

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
