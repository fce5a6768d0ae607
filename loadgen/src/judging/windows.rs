//! The fixed window's exact reference for a measured run, on the store's own windows.
//!
//! A fixed window promises `limit` per window aligned to its store's epoch, and the
//! gateway's stores all align them to the Unix epoch (Redis by its `TIME`, memory by a
//! Unix-aligned clock), so the judge knows where every window started: the schedule's
//! Unix start plus each request's send instant. The store decided each request
//! somewhere between its send and its response, so a request whose span crosses a
//! boundary is judged on whichever window the store's answer needs
//! ([`ExactFixedWindow::admit_within`]). "Over" then means the limiter admitted beyond
//! its own promise; what the boundary lets through beyond the exact sliding log is the
//! boundary burst, a figure of its own (`PhaseStats::boundary_burst`).

use limiter_core::algorithm::Reference;
use limiter_core::algorithm::reference::{ExactFixedWindow, ExactWindowState};

use super::decisions::Decisions;
use super::ground_truth::StoreClock;
use crate::arrivals::Arrivals;
use crate::drivers::http::record::{Class, Record};
use crate::drivers::simulated::play_reference;
use crate::workload::Workload;

/// The reference that judges a measured run of an algorithm `judge` would judge, and
/// its decisions on the `measured` arrivals (`records` in the same order). The exact fixed window needs the store's windows: where
/// `clock` does not know them, the run is judged by the exact sliding log instead (its
/// boundary admissions then read as over-admission).
pub(crate) fn reference(
    workload: &Workload,
    (measured, records): (&Arrivals, &[Record]),
    judge: Reference,
    clock: StoreClock,
) -> (Reference, Decisions) {
    match (judge, clock) {
        (Reference::FixedWindow, StoreClock::Unix(start)) => {
            let d = on_store_windows(workload, (measured, records), start);
            (judge, d)
        }
        (Reference::FixedWindow, StoreClock::Unknown) => {
            let sliding = Reference::SlidingLog;
            (
                sliding,
                play_reference(workload, measured, sliding, &mut |_, _| {}),
            )
        }
        _ => (
            judge,
            play_reference(workload, measured, judge, &mut |_, _| {}),
        ),
    }
}

/// The exact fixed window's decisions on windows aligned to the Unix epoch, for a
/// schedule that started at Unix instant `start`.
fn on_store_windows(
    workload: &Workload,
    (measured, records): (&Arrivals, &[Record]),
    start: u64,
) -> Decisions {
    let windows: Vec<ExactFixedWindow> = workload
        .endpoints
        .iter()
        .map(|e| ExactFixedWindow::new(&e.quota))
        .collect();
    let mut states = vec![ExactWindowState::default(); measured.keys()];
    let mut out = Decisions::new(measured.list.len());
    for (i, (a, r)) in measured.list.iter().zip(records).enumerate() {
        let key = measured.key(a);
        let e = key % windows.len().max(1);
        let span = (start + r.sent, start + r.sent + r.latency);
        let observed = match r.reply.class() {
            Class::Admitted => Some(true),
            Class::Rejected => Some(false),
            Class::Error => None,
        };
        let cost = workload.endpoints[e].cost;
        if windows[e].admit_within(&mut states[key], span, cost, observed) {
            out.admit(i);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use limiter_core::algorithm::{Algorithm, FixedWindow};
    use limiter_core::{Kind, Policy};

    use crate::drivers::http::plan::LoadPlan;
    use crate::drivers::http::record::{Record, Reply};
    use crate::judging::measured::{RunFacts, results};
    use crate::workload::{SECOND, Workload};

    /// The seed workload (5 per 60 s; 150 s of one user far above it) sent on time and
    /// answered 2 ms later by a fixed window deciding 1 ms after each send on Unix
    /// windows, for a schedule that started at Unix `start`; `extra` more admitted per
    /// window than the policy allows (a broken limiter when > 0).
    fn run(store: &str, start: u64, extra: u64) -> results::Run {
        let plan = LoadPlan::new(Workload::load("seed").unwrap(), 1).unwrap();
        let quota = plan.workload.endpoints[0].quota;
        let fixed = FixedWindow::from_policy(&Policy::new(Kind::FixedWindow, quota));
        let mut state = fixed.fresh();
        let (mut window, mut extra_left) = (u64::MAX, extra);
        let records: Vec<Record> = plan
            .arrivals
            .list
            .iter()
            .enumerate()
            .map(|(index, a)| {
                let decided = start + a.at + 1_000_000;
                if decided / (60 * SECOND) != window {
                    window = decided / (60 * SECOND);
                    extra_left = extra;
                }
                let mut admitted = fixed.step(&mut state, decided, 1).unwrap().allowed;
                if !admitted && extra_left > 0 {
                    extra_left -= 1;
                    admitted = true;
                }
                Record {
                    index,
                    sent: a.at,
                    latency: 2_000_000,
                    reply: Reply::Status(if admitted { 200 } else { 429 }),
                }
            })
            .collect();
        let facts = RunFacts {
            algorithm: "fixed-window".into(),
            store: store.into(),
            driver: "test".into(),
            targets: vec!["http://127.0.0.1:1".into()],
            scale: Default::default(),
            late_after: 10_000_000,
            stopped: None,
            unfinished: 0,
            backend: None,
            gateway: None,
            fallback_samples: vec![],
            without_policy: 0,
            notes: vec![],
            unix_start: Some(start),
        };
        let r = results(&plan, records, &facts);
        r.check().unwrap();
        r.runs[0].clone()
    }

    #[test]
    fn a_correct_fixed_window_straddling_boundaries_is_not_over() {
        // Started 30 s into a window: boundaries 30 s and 90 s into the run, and one
        // exactly on a send (the 150 s end). On Redis and in memory alike (both Unix).
        for store in ["redis", "memory"] {
            let r = run(store, 1_800_000_030 * SECOND, 0);
            assert_eq!(r.reference, "exact fixed window");
            // Three windows met, each filled: 15, all admitted by the exact fixed window.
            assert_eq!(r.totals.admitted, 15, "{store}");
            assert_eq!(r.totals.over_admission, 0, "{store}");
            assert_eq!(r.totals.under_admission, 0, "{store}");
            // The weakness stays visible: 5 at 0 s and 5 at 30 s where the sliding log
            // admits the second 5 only at 60 s; 2× the limit in one window's length.
            // 5 of the 5 admitted just after the 30 s boundary put 10 within 60 s.
            assert_eq!(r.totals.boundary_burst, Some(5), "{store}: {:?}", r.totals);
            assert_eq!(r.totals.burst_ratio, 2.0, "{store}");
        }
    }

    #[test]
    fn a_fixed_window_admitting_beyond_its_windows_is_over() {
        for store in ["redis", "memory"] {
            let r = run(store, 1_800_000_030 * SECOND, 1);
            // One extra per window, in each of the three windows met.
            assert_eq!(r.totals.admitted, 18, "{store}");
            assert_eq!(r.totals.over_admission, 3, "{store}");
        }
        // Where the windows are not known, the exact sliding log judges (a boundary
        // can then show as over-admission), and there is no boundary burst apart.
        let r = run("none", 1_800_000_030 * SECOND, 0);
        assert_eq!(r.reference, "exact sliding log");
        assert_eq!(r.totals.boundary_burst, None);
    }
}
