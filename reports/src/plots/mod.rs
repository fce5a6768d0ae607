//! Plots of results, drawn with plotters to PNG and SVG from the results alone.
//!
//! - `throughput`: offered requests per second above admitted per second of every run
//!   (its own scale, so admissions far below the offered load show), as steps on
//!   phase-aligned bins, phase boundaries marked;
//! - `admitted`: cumulative admissions of every run on one chart, with the exact
//!   references' totals at phase ends;
//! - `difference`: each run's admissions minus its exact reference's at phase ends,
//!   where the absolute lines overlap;
//! - `accuracy`: over- and under-admission (percent of the exact reference) and the
//!   worst key's envelope excess, per run;
//! - `burst`: the worst key's burst ratio per run, against the policy's 1.0;
//! - `latency`: p50, p99 and p99.9 in ms per bin, one panel per run that has latencies
//!   (measured runs, or a modelled store round trip), and `latency-by-store`: each
//!   run's p50 and p99 by store;
//! - `store-modes` (with `simulate --store-mode`): envelope excess and over-/under-
//!   admission against store calls per decision and p99 latency, per algorithm and mode.
//!
//! One colour per algorithm ([`color_of`]) and one line style per store, in every plot.
//!
//! PNG text is drawn with the embedded DejaVu Sans, registered once as `sans-serif`,
//! so no system font is needed.

use std::path::{Path, PathBuf};
use std::sync::Once;

use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::FontStyle;

use results::Results;

use crate::Error;

mod bars;
mod store_modes;
mod style;
mod sweep;
mod time;

use bars::{Accuracy, Burst, upright_label_px};
pub use style::color_of;
pub(crate) use style::{err, legend_strip, time_panel, titled};
use time::{Cumulative, Difference, LatencyByStore, LatencyChart, Throughput};

/// The font every label is drawn with (DejaVu Sans; licence in `assets/`).
static FONT: &[u8] = include_bytes!("../../assets/DejaVuSans.ttf");
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
    // Bar charts with many runs stand their names upright: room for them.
    let upright = upright_label_px(results, 1400).unwrap_or(0);
    plots.push(render(
        dir,
        "throughput",
        "Offered and admitted requests per second",
        (1400, 820),
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
        "difference",
        "Admitted minus the exact reference, at phase ends",
        (1400, 560),
        &Difference(results),
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
    if results.trace.as_ref().is_some_and(|t| !t.sweep.is_empty()) {
        plots.push(render(
            dir,
            "sweep",
            "Share of requests and identities throttled against the limit",
            (1400, 620),
            &sweep::Sweep(results),
        )?);
    }
    if results.store_modes.is_some() {
        plots.push(render(
            dir,
            "store-modes",
            "Store modes: accuracy against store calls per decision and p99 latency",
            (1400, 1000),
            &store_modes::StoreModes(results),
        )?);
    }
    let latency = LatencyChart(results);
    let with_latency = latency.runs().len() as u32;
    if with_latency > 0 {
        plots.push(render(
            dir,
            "latency",
            "Latency percentiles over time",
            (1400, 80 + 300 * with_latency.div_ceil(2)),
            &latency,
        )?);
    }
    let by_store = LatencyByStore(results);
    if !by_store.stores().is_empty() {
        plots.push(render(
            dir,
            "latency-by-store",
            "Latency by store: p50 and p99 of every run",
            (1400, 520),
            &by_store,
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
