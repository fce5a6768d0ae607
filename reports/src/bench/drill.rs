//! The Redis failure drill's part of the benchmark report: per failure policy, what
//! the gateways admitted, refused, failed and decided by fallback before, during and
//! after the outage, and a timeline plot of it.

use std::path::Path;

use plotters::coord::Shift;
use plotters::prelude::*;

use results::{Measurement, Run};

use super::workload::measured_of;
use super::{rank, read, subdirs, yes_no};
use crate::Error;
use crate::format::{ms_compact as ms, thousands};
use crate::plots::{err, legend_strip, register_font, time_panel, titled};
use crate::table::{Align, Table};

/// Seconds `[down, up)` Redis was down, relative to the start of the load command.
fn outage(dir: &Path) -> Option<(f64, f64)> {
    let text = std::fs::read_to_string(dir.join("outage.txt")).ok()?;
    let mut it = text
        .split_whitespace()
        .filter_map(|v| v.parse::<f64>().ok());
    Some((it.next()?, it.next()?))
}

struct Drill {
    policy: String,
    run: Run,
    m: Measurement,
    outage: Option<(f64, f64)>,
}

/// The drill's timeline: per policy, admitted, refused, failed and fallback decisions
/// per second, with the outage shaded.
struct DrillChart<'a>(&'a [Drill]);

impl DrillChart<'_> {
    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> Result<(), String> {
        let area = titled(
            root,
            "Redis stopped for 5 s mid-phase: what each on_error policy did",
        )?;
        let lines = [
            ("admitted/s", RGBColor(0, 140, 70)),
            ("429/s", RGBColor(200, 40, 40)),
            ("errors (503...)/s", RGBColor(40, 40, 40)),
            ("decided by the failure policy/s", RGBColor(230, 159, 0)),
        ];
        let area = legend_strip(&area, &lines)?;
        let panels = area.split_evenly((self.0.len().max(1), 1));
        let y_max = self
            .0
            .iter()
            .flat_map(|d| d.run.series.offered.iter().copied())
            .max()
            .unwrap_or(1) as f64
            * 1.15;
        for (d, panel) in self.0.iter().zip(panels.iter()) {
            let s = &d.run.series;
            let x_max = s.offered.len() as f64 * s.step_s;
            let caption = format!("on_error = {}", d.policy);
            let range = (x_max.max(1.0), y_max.max(1.0));
            let mut chart = time_panel(panel, &caption, range, 60, "per second")?;
            if let Some((down, up)) = d.outage {
                chart
                    .draw_series([Rectangle::new(
                        [(down, 0.0), (up, y_max)],
                        RGBColor(200, 200, 230).mix(0.5).filled(),
                    )])
                    .map_err(err)?;
            }
            let series: [&[u64]; 4] = [
                &s.admitted,
                &s.rejected,
                &d.m.series.errors,
                &d.m.series.fallbacks,
            ];
            for (values, (_, color)) in series.iter().zip(lines.iter()) {
                let points: Vec<(f64, f64)> = values
                    .iter()
                    .enumerate()
                    .map(|(i, v)| ((i as f64 + 0.5) * s.step_s, *v as f64))
                    .collect();
                chart
                    .draw_series(LineSeries::new(points, color.stroke_width(2)))
                    .map_err(err)?;
            }
        }
        Ok(())
    }
}

fn render_drill(dir: &Path, drills: &[Drill]) -> Result<(), Error> {
    register_font();
    let out = dir.join("drill");
    std::fs::create_dir_all(&out).map_err(|source| Error::Io {
        path: out.clone(),
        source,
    })?;
    let size = (1400, 80 + 320 * drills.len().max(1) as u32);
    let fail = |message: String| Error::Plot {
        plot: "drill".to_owned(),
        message,
    };
    let chart = DrillChart(drills);
    let png = out.join("drill.png");
    {
        let root = BitMapBackend::new(&png, size).into_drawing_area();
        chart.draw(&root).map_err(fail)?;
        root.present().map_err(|e| fail(e.to_string()))?;
    }
    let svg = out.join("drill.svg");
    {
        let root = SVGBackend::new(&svg, size).into_drawing_area();
        chart.draw(&root).map_err(fail)?;
        root.present().map_err(|e| fail(e.to_string()))?;
    }
    Ok(())
}

fn sum_in(values: &[u64], step: f64, from: f64, to: f64) -> u64 {
    values
        .iter()
        .enumerate()
        .filter(|(i, _)| {
            let mid = (*i as f64 + 0.5) * step;
            mid >= from && mid < to
        })
        .map(|(_, v)| *v)
        .sum()
}

pub(super) fn section(dir: &Path, out: &mut String) -> Result<(), Error> {
    let root = dir.join("runs").join("drill");
    let mut drills = Vec::new();
    for policy in subdirs(&root) {
        let Some(r) = read(&root.join(&policy)) else {
            continue;
        };
        for x in measured_of(r) {
            drills.push(Drill {
                policy: policy.clone(),
                run: x.run,
                m: x.m,
                outage: outage(&root.join(&policy)),
            });
        }
    }
    if drills.is_empty() {
        return Ok(());
    }
    drills.sort_by_key(|d| rank(&["fail-open", "fail-closed", "local"], &d.policy));
    render_drill(dir, &drills)?;
    out.push_str("\n## The Redis failure drill\n\n");
    out.push_str(
        "One gateway with a token bucket on Redis (`timeout_ms = 50`), 20 users at a steady 300 requests/s (each allowed 10/s, bursts of 10). \
         The script stops `redis-server` 8 s into the load's schedule and restarts it at 13 s (shaded: from the moment it was stopped to the moment it listened again). \
         `429` is the limiter refusing; errors are `503` (fail-closed) or anything else that was not an answer from the backend.\n\n",
    );
    let mut t = Table::new(&[
        ("on_error", Align::Left),
        ("sent", Align::Right),
        ("admitted", Align::Right),
        ("429", Align::Right),
        ("errors", Align::Right),
        ("fallback decisions", Align::Right),
        ("during the outage: admitted / 429 / errors", Align::Right),
        ("backend = client", Align::Left),
        ("p99 ms", Align::Right),
        ("max ms", Align::Right),
    ]);
    for d in &drills {
        let s = &d.run.series;
        let during = d.outage.map_or("-".to_owned(), |(a, b)| {
            format!(
                "{} / {} / {}",
                thousands(sum_in(&s.admitted, s.step_s, a, b)),
                thousands(sum_in(&s.rejected, s.step_s, a, b)),
                thousands(sum_in(&d.m.series.errors, s.step_s, a, b))
            )
        });
        let agree = d.m.ground_truth.as_ref().map_or("-".to_owned(), |g| {
            yes_no(g.backend_total == g.client_admitted && g.keys_disagreeing == 0).to_owned()
        });
        let lat = d.run.totals.latency_us;
        t.row(vec![
            d.policy.clone(),
            thousands(d.run.totals.offered),
            thousands(d.run.totals.admitted),
            thousands(d.run.totals.rejected),
            thousands(d.run.totals.errors),
            d.m.gateway
                .as_ref()
                .map_or("-".into(), |g| thousands(g.fallbacks)),
            during,
            agree,
            lat.map_or("-".into(), |l| ms(l.p99)),
            lat.map_or("-".into(), |l| ms(l.max)),
        ]);
    }
    out.push_str(&t.to_markdown());
    out.push_str("\n![Redis failure drill](drill/drill.png)\n\n[SVG](drill/drill.svg)\n");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_in_a_span() {
        assert_eq!(sum_in(&[1, 2, 3, 4], 1.0, 1.0, 3.0), 5);
    }
}
