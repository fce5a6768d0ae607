//! The workload file: any text either validates or is refused with a located error
//! (never a panic, never a workload the simulator cannot run); a workload that
//! validates, written back with `loadgen::workload::to_toml` (what `ratelab load` saves
//! for `ratelab simulate`), reads back to the same workload.
#![no_main]

use libfuzzer_sys::fuzz_target;
use loadgen::workload::{MAX_ARRIVALS, MAX_KEYS, Workload, WorkloadError};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let w = match Workload::parse(text, "fuzz.toml", "fuzz") {
        Ok(w) => w,
        Err(e) => {
            let lines = text.matches('\n').count() + 1;
            match &e {
                WorkloadError::Syntax { line, column, .. } => {
                    assert!((1..=lines).contains(line) && *column >= 1, "{e:?}")
                }
                WorkloadError::Invalid { line, key, .. } => {
                    assert!((1..=lines).contains(line) && !key.is_empty(), "{e:?}")
                }
                other => panic!("parsing text cannot fail with {other:?}"),
            }
            assert!(!e.to_string().is_empty());
            return;
        }
    };
    // What validation promises the simulator.
    assert!(!w.phases.is_empty() && !w.endpoints.is_empty(), "{w:?}");
    assert!(w.expected_arrivals() <= MAX_ARRIVALS, "{w:?}");
    assert!(w.keys() <= MAX_KEYS, "{w:?}");
    for p in &w.phases {
        assert!(p.rate.is_finite() && p.rate >= 0.0, "{p:?}");
        assert!(p.rate_end.is_finite() && p.rate_end >= 0.0, "{p:?}");
    }
    for e in &w.endpoints {
        assert!(e.weight.is_finite() && e.weight > 0.0, "{e:?}");
        assert!(e.cost >= 1, "{e:?}");
    }
    let written = loadgen::workload::to_toml(&w, w.seed).expect("a workload serialises");
    let back = Workload::parse(&written, "fuzz.toml", "other-name")
        .unwrap_or_else(|e| panic!("{text:?} validated, written as {written:?} it does not: {e}"));
    assert_eq!(w, back, "{text:?} written as {written:?}");
});
