//! The store-mode curve: accuracy against cost, one marker per algorithm and mode —
//! envelope excess (top) and over-/under-admission against the exact reference
//! (bottom), across store calls per decision (left) and p99 decision latency (right).
//! Colour is the algorithm ([`color_of`]), the marker the mode (● exact, ▲ lease, ■
//! local); lease points of one algorithm and `lease.ttl` are joined and named
//! `MAX/TTL`.

use plotters::coord::Shift;
use plotters::prelude::*;

use results::{Results, Run, StorePoint};

use super::style::{color_of, err, tick, titled, workload_title};
use super::{Chart, FAMILY};
use crate::store_modes::points;

pub(super) struct StoreModes<'a>(pub(super) &'a Results);

/// One marker: where, which algorithm and mode, and its label (lease points).
struct Mark<'a> {
    x: f64,
    y: f64,
    point: &'a StorePoint,
    /// Drawn hollow (under-admission, below zero).
    hollow: bool,
}

/// A figure of a point: its x or y value.
type Figure = fn(&StorePoint, &Run) -> f64;

fn calls(p: &StorePoint, _: &Run) -> f64 {
    p.calls_per_decision
}

fn p99_ms(_: &StorePoint, r: &Run) -> f64 {
    r.totals.latency_us.map_or(0.0, |l| l.p99 / 1_000.0)
}

fn excess(_: &StorePoint, r: &Run) -> f64 {
    r.totals.envelope_excess
}

fn share(count: u64, r: &Run) -> f64 {
    count as f64 * 100.0 / r.totals.reference_admitted.max(1) as f64
}

impl Chart for StoreModes<'_> {
    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> Result<(), String> {
        let rows = points(self.0);
        let area = titled(
            root,
            &workload_title(
                self.0,
                "Store modes: accuracy against store calls and latency",
            ),
        )?;
        let panels = area.split_evenly((2, 2));
        let xs: [(Figure, &str); 2] = [
            (calls, "store calls per decision"),
            (p99_ms, "p99 decision latency (ms)"),
        ];
        for (col, (x, x_desc)) in xs.iter().enumerate() {
            let top: Vec<Mark> = rows
                .iter()
                .map(|(p, r)| Mark {
                    x: x(p, r),
                    // log(1 + excess): `local` is orders of magnitude above the rest.
                    y: excess(p, r).ln_1p(),
                    point: p,
                    hollow: false,
                })
                .collect();
            panel(
                &panels[col],
                "worst key's envelope excess",
                (x_desc, "cost units over the envelope (log scale)"),
                &top,
                true,
            )?;
            let bottom: Vec<Mark> = rows
                .iter()
                .flat_map(|(p, r)| {
                    let at = x(p, r);
                    [
                        Mark {
                            x: at,
                            y: share(r.totals.over_admission, r),
                            point: p,
                            hollow: false,
                        },
                        Mark {
                            x: at,
                            y: -share(r.totals.under_admission, r),
                            point: p,
                            hollow: true,
                        },
                    ]
                })
                .collect();
            panel(
                &panels[2 + col],
                "over-admission (filled, up) and under-admission (hollow, down)",
                (x_desc, "% of the reference's admissions"),
                &bottom,
                false,
            )?;
        }
        Ok(())
    }
}

/// The lease points joined by one line: algorithm, `lease.ttl` (bits), hollow side.
type LeaseLine<'a> = (&'a str, Option<u64>, bool);

/// One panel of markers, lease points joined per algorithm and ttl; `log`: the y
/// values are `ln(1 + v)`, labelled as `v`.
fn panel<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    caption: &str,
    (x_desc, y_desc): (&str, &str),
    marks: &[Mark<'_>],
    log: bool,
) -> Result<(), String> {
    let y_tick = move |v: &f64| {
        if log {
            tick(&v.exp_m1().round())
        } else {
            tick(v)
        }
    };
    let x_max = marks.iter().map(|m| m.x).fold(0.0, f64::max).max(1e-3) * 1.15;
    let y_max = marks.iter().map(|m| m.y).fold(0.0, f64::max).max(1e-3) * 1.15;
    let y_min = marks.iter().map(|m| m.y).fold(0.0, f64::min) * 1.15;
    let mut chart = ChartBuilder::on(area)
        .caption(caption, (FAMILY, 17))
        .margin(14)
        .x_label_area_size(40)
        .y_label_area_size(64)
        .build_cartesian_2d(0.0..x_max, y_min..y_max)
        .map_err(err)?;
    chart
        .configure_mesh()
        .light_line_style(RGBColor(235, 235, 235))
        .x_desc(x_desc)
        .y_desc(y_desc)
        .x_label_formatter(&tick)
        .y_label_formatter(&y_tick)
        .label_style((FAMILY, 13))
        .axis_desc_style((FAMILY, 14))
        .draw()
        .map_err(err)?;
    // The lease curve of each algorithm, ttl and side (over/under), in call order.
    let mut lines: Vec<(LeaseLine<'_>, Vec<(f64, f64)>)> = Vec::new();
    for m in marks.iter().filter(|m| m.point.mode == "lease") {
        let ttl = m.point.lease_ttl_s.map(f64::to_bits);
        let key = (m.point.algorithm.as_str(), ttl, m.hollow);
        match lines.iter_mut().find(|l| l.0 == key) {
            Some(l) => l.1.push((m.x, m.y)),
            None => lines.push((key, vec![(m.x, m.y)])),
        }
    }
    for ((alg, _, _), mut pts) in lines {
        pts.sort_by(|a, b| a.0.total_cmp(&b.0));
        let color = color_of(alg);
        chart
            .draw_series(LineSeries::new(pts, color.mix(0.6).stroke_width(1)))
            .map_err(err)?;
    }
    for m in marks {
        draw_mark(&mut chart, m)?;
    }
    // A legend of the algorithms present, and of the markers.
    let mut algorithms: Vec<&str> = Vec::new();
    for m in marks {
        if !algorithms.contains(&m.point.algorithm.as_str()) {
            algorithms.push(&m.point.algorithm);
        }
    }
    for alg in algorithms {
        let color = color_of(alg);
        chart
            .draw_series(std::iter::empty::<Circle<(f64, f64), i32>>())
            .map_err(err)?
            .label(alg)
            .legend(move |(x, y)| Circle::new((x + 8, y), 5, color.filled()));
    }
    chart
        .configure_series_labels()
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK.mix(0.3))
        .label_font((FAMILY, 13))
        .position(SeriesLabelPosition::UpperRight)
        .draw()
        .map_err(err)
}

type Panel<'a, DB> = ChartContext<
    'a,
    DB,
    Cartesian2d<plotters::coord::types::RangedCoordf64, plotters::coord::types::RangedCoordf64>,
>;

/// One point's marker (its mode's shape, its algorithm's colour) and, for a lease
/// point, its `MAX/TTL` beside it.
fn draw_mark<DB: DrawingBackend>(chart: &mut Panel<'_, DB>, m: &Mark<'_>) -> Result<(), String> {
    let color = color_of(&m.point.algorithm);
    let style = if m.hollow {
        color.stroke_width(2)
    } else {
        color.filled()
    };
    let at = (m.x, m.y);
    match m.point.mode.as_str() {
        "exact" => chart
            .draw_series(std::iter::once(Circle::new(at, 6, style)))
            .map(|_| ()),
        "lease" => chart
            .draw_series(std::iter::once(TriangleMarker::new(at, 7, style)))
            .map(|_| ()),
        _ => chart
            .draw_series(std::iter::once(
                EmptyElement::at(at) + Rectangle::new([(-5, -5), (5, 5)], style),
            ))
            .map(|_| ()),
    }
    .map_err(err)?;
    if m.point.mode == "lease" && !m.hollow {
        let name = m.point.label();
        let text = name.trim_start_matches("lease ").to_owned();
        chart
            .draw_series(std::iter::once(
                EmptyElement::at(at) + Text::new(text, (8, -16), (FAMILY, 12).into_font()),
            ))
            .map_err(err)?;
    }
    Ok(())
}
