//! `report.md`: the tables and the plots of one results file, in Markdown.

use crate::format::{seconds, thousands};
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
         sliding log for the windowed algorithms.\n\
         - **over / under**: admitted beyond / short of the reference, summed over keys \
         (user × endpoint), with the share of the reference's admissions.\n\
         - **excess**: the worst key's envelope excess — the most requests admitted beyond \
         the policy in any interval (`burst + rate × length` for buckets, `limit` per \
         window-length interval for windows); 0 is perfect.\n\
         - **burst**: the worst key's most admissions in any window-length interval, over \
         the limit; a fixed window reaches 2× at a boundary.\n\
         - **fairness**: Jain's index over users of admitted / exact; 1 means every user \
         gets the same share of what the policy entitles it to.\n\
         - **bytes/key**: limiter state for the worst key (inline plus heap).\n";
