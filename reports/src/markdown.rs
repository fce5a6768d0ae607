//! `report.md`: the tables and the plots of one results file, in Markdown.

use crate::format::{deviation, ratio, seconds, thousands};
use crate::plots::Plot;
use crate::summary;
use results::{ResultSource, Results};

/// The report for `results`, linking `plots` by file name (the report sits beside them).
pub fn report(results: &Results, plots: &[Plot]) -> String {
    let w = &results.workload;
    let mut out = String::new();
    out.push_str(&format!("# ratelab report: workload `{}`\n\n", w.name));
    if !w.description.is_empty() {
        out.push_str(&format!("> {}\n\n", w.description));
    }
    out.push_str(&played(results));
    out.push_str(&headline(results));

    out.push_str("## Policies\n\n");
    out.push_str(
        "Every algorithm is configured from the same policy per endpoint: the windowed ones \
         admit `limit` per window, the token bucket and GCRA hold `burst` tokens refilled at \
         `limit / window`.\n\n",
    );
    out.push_str(&summary::policies(results).to_markdown());

    out.push_str("\n## Results\n\n");
    out.push_str(&summary::summary(results).to_markdown());
    out.push('\n');
    out.push_str(&summary::admitted_by_phase(results).to_markdown());

    for plot in plots {
        let file = |p: &std::path::Path| {
            p.file_name()
                .map(|f| f.to_string_lossy().into_owned())
                .unwrap_or_default()
        };
        out.push_str(&format!(
            "\n### {}\n\n![{}]({})\n\n[SVG]({})\n",
            plot.title,
            plot.title,
            file(&plot.png),
            file(&plot.svg)
        ));
    }

    out.push_str("\n## By phase\n\n");
    out.push_str(&summary::by_phase(results).to_markdown());

    out.push_str(READING);
    out
}

/// The headline: which run kept closest to its exact reference, which admitted most
/// beyond it, and the worst burst — read from the runs' totals.
pub fn headline(results: &Results) -> String {
    let runs = &results.runs;
    let Some(first) = runs.first() else {
        return String::new();
    };
    let label = |r: &results::Run| summary::run_label(results, r);
    let miss = |r: &results::Run| r.totals.over_admission + r.totals.under_admission;
    // Fewest admissions off the reference, then the smallest envelope excess.
    let closest = runs
        .iter()
        .min_by(|a, b| {
            miss(a).cmp(&miss(b)).then(
                a.totals
                    .envelope_excess
                    .total_cmp(&b.totals.envelope_excess),
            )
        })
        .unwrap_or(first);
    let mut parts = vec![format!(
        "closest to its exact reference: **{}** ({} over, {} under of {})",
        label(closest),
        thousands(closest.totals.over_admission),
        thousands(closest.totals.under_admission),
        thousands(closest.totals.reference_admitted),
    )];
    if let Some(worst) = runs
        .iter()
        .filter(|r| r.totals.over_admission > 0)
        .max_by_key(|r| r.totals.over_admission)
    {
        parts.push(format!(
            "most admitted beyond it: **{}** ({})",
            label(worst),
            deviation(
                worst.totals.over_admission,
                worst.totals.reference_admitted,
                '+'
            ),
        ));
    }
    if let Some(bursty) = runs
        .iter()
        .filter(|r| r.totals.burst_ratio > 1.0)
        .max_by(|a, b| a.totals.burst_ratio.total_cmp(&b.totals.burst_ratio))
    {
        parts.push(format!(
            "worst burst: **{}**, {} the limit in one window",
            label(bursty),
            ratio(bursty.totals.burst_ratio)
        ));
    }
    if let Some((boundary, over)) = runs
        .iter()
        .filter_map(|r| r.totals.boundary_burst.map(|b| (r, b)))
        .filter(|&(_, b)| b > 0)
        .max_by_key(|&(_, b)| b)
    {
        parts.push(format!(
            "boundary burst: **{}** admitted {} beyond `limit` per window length at its \
             window boundaries (refused by the exact sliding log)",
            label(boundary),
            thousands(over)
        ));
    }
    format!("**Headline** — {}.\n\n", parts.join("; "))
}

/// What was played and how: source, seed, traffic, users, arrivals and deployment.
fn played(results: &Results) -> String {
    let w = &results.workload;
    let offered = results.runs.first().map_or(0, |r| r.totals.offered);
    let how = match results.source {
        ResultSource::Simulated => {
            "Simulated in virtual time (deterministic: the same seed gives the same numbers)"
        }
        ResultSource::Measured => "Measured over real HTTP",
    };
    format!(
        "{how}, seed {}: {} requests over {} from {} user{} ({}), {} arrivals{}.\n\n",
        w.seed,
        thousands(offered),
        seconds(w.duration_s),
        thousands(w.users),
        if w.users == 1 { "" } else { "s" },
        if w.user_distribution.is_empty() {
            "uniform"
        } else {
            &w.user_distribution
        },
        w.arrivals,
        results
            .runs
            .first()
            .filter(|r| !r.deployment.is_empty())
            .map(|r| format!("; deployment {}", r.deployment))
            .unwrap_or_default(),
    )
}

/// How to read the figures, the same for every report.
const READING: &str = "\n## Reading the figures\n\n\
         - **exact**: what an exact reference limiter admits on the same arrivals — an exact \
         token bucket (rational arithmetic) for token bucket, GCRA and seed-replica, an exact \
         sliding log for the sliding windowed algorithms, and an exact fixed window on the \
         store's own windows for the fixed window (so its over-admission means it broke \
         its own promise, `limit` per aligned window).\n\
         - **boundary burst** (fixed window): admissions beyond `limit` in some \
         window-length interval — the fewest whose removal would satisfy the exact sliding \
         log; the fixed window's known weakness, in the headline and the JSON.\n\
         - **over / under**: admitted beyond / short of the reference, summed over keys \
         (user × endpoint), with the share of the reference's admissions.\n\
         - **excess**: the worst key's envelope excess — the most requests admitted beyond \
         the policy in any interval (`burst + rate × length` for buckets, `limit` per \
         window-length interval for windows); 0 is perfect.\n\
         - **burst**: the worst key's most admissions in any window-length interval, over \
         the limit; a fixed window reaches 2× at a boundary.\n\
         - **wronged**: the share of users (who sent anything) that had a request refused \
         which the exact reference admits — throttled while within their policy; 0% is \
         perfect.\n\
         - **bytes/key**: limiter state for the worst key (inline plus heap).\n";
