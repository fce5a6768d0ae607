//! The sweep of a replayed log: per algorithm, the share of requests and of
//! identities throttled against the limit (one line per burst factor), so a team can
//! read off the smallest limit that throttles at most X% of its users.

use plotters::coord::Shift;
use plotters::prelude::*;

use results::{Results, SweepPoint};

use super::style::{color_of, err, tick, titled};
use super::{Chart, FAMILY};

/// A share of one sweep point, 0..=1.
type Share = fn(&SweepPoint) -> f64;

pub(super) struct Sweep<'a>(pub(super) &'a Results);

impl Chart for Sweep<'_> {
    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> Result<(), String> {
        let Some(t) = &self.0.trace else {
            return Ok(());
        };
        let area = titled(
            root,
            "Share throttled against the limit (sweep of the access log)",
        )?;
        let panels = area.split_evenly((1, 2));
        let x_max = t.sweep.iter().map(|p| p.limit).max().unwrap_or(1) as f64 * 1.02;
        let x_min = t.sweep.iter().map(|p| p.limit).min().unwrap_or(0) as f64 * 0.98;
        let metrics: [(&str, Share); 2] = [
            ("requests rejected (%)", SweepPoint::request_share),
            ("identities throttled (%)", SweepPoint::identity_share),
        ];
        let mut bursts: Vec<f64> = t.sweep.iter().map(|p| p.burst_factor).collect();
        bursts.sort_by(f64::total_cmp);
        bursts.dedup();
        let mut algorithms: Vec<&str> = Vec::new();
        for p in &t.sweep {
            if !algorithms.contains(&p.algorithm.as_str()) {
                algorithms.push(&p.algorithm);
            }
        }
        for ((label, share), panel) in metrics.iter().zip(panels.iter()) {
            let y_max = t.sweep.iter().map(|p| share(p) * 100.0).fold(1.0, f64::max) * 1.1;
            let mut chart = ChartBuilder::on(panel)
                .margin(14)
                .caption(*label, (FAMILY, 17))
                .x_label_area_size(40)
                .y_label_area_size(60)
                .build_cartesian_2d(x_min..x_max, 0.0..y_max)
                .map_err(err)?;
            chart
                .configure_mesh()
                .light_line_style(RGBColor(235, 235, 235))
                .x_desc("limit per window")
                .y_desc(*label)
                .x_label_formatter(&tick)
                .y_label_formatter(&tick)
                .label_style((FAMILY, 14))
                .axis_desc_style((FAMILY, 15))
                .draw()
                .map_err(err)?;
            for alg in &algorithms {
                let color = color_of(alg);
                for (b, burst) in bursts.iter().enumerate() {
                    let points: Vec<(f64, f64)> = t
                        .sweep
                        .iter()
                        .filter(|p| p.algorithm == *alg && p.burst_factor == *burst)
                        .map(|p| (p.limit as f64, share(p) * 100.0))
                        .collect();
                    let width = 3usize.saturating_sub(b).max(1) as u32;
                    let series = chart
                        .draw_series(LineSeries::new(points, color.stroke_width(width)))
                        .map_err(err)?;
                    series
                        .label(format!("{alg} {burst}x"))
                        .legend(move |(x, y)| {
                            PathElement::new([(x, y), (x + 20, y)], color.stroke_width(width))
                        });
                }
            }
            chart
                .configure_series_labels()
                .background_style(WHITE.mix(0.85))
                .border_style(BLACK.mix(0.3))
                .label_font((FAMILY, 13))
                .position(SeriesLabelPosition::UpperRight)
                .draw()
                .map_err(err)?;
        }
        Ok(())
    }
}
