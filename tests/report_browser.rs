//! `report.html` in a real browser: `ratelab simulate` writes a report, and
//! `scripts/test-report-browser.sh` opens it in headless Chromium (installing Debian's
//! `chromium` when missing, as `scripts/test.sh` installs Redis) at desktop and phone
//! widths, failing on any console message, on a script that did not run to its end, or
//! on a page wider than a phone; it also takes the screenshot the README shows.

#![allow(clippy::unwrap_used)]

use std::path::PathBuf;
use std::process::Command;

#[test]
fn the_html_report_opens_in_headless_chromium_without_console_errors() {
    let dir: PathBuf = std::env::temp_dir().join(format!("ratelab-browser-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let out = dir.join("out");
    let run = Command::new(env!("CARGO_BIN_EXE_ratelab"))
        .args(["simulate", "--quiet", "--out", out.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(
        run.status.success(),
        "{}",
        String::from_utf8_lossy(&run.stderr)
    );
    assert!(run.stdout.is_empty(), "--quiet prints nothing");
    let html = out.join("report.html");
    let shot = dir.join("report.png");

    let script = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/scripts/test-report-browser.sh"
    );
    let check = Command::new("bash")
        .args([script, html.to_str().unwrap(), shot.to_str().unwrap()])
        .output()
        .unwrap();
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&check.stdout),
        String::from_utf8_lossy(&check.stderr)
    );
    assert!(check.status.success(), "{said}");
    assert!(said.contains("without console errors"), "{said}");
    let png = std::fs::read(&shot).unwrap();
    assert!(
        png.starts_with(b"\x89PNG") && png.len() > 10_000,
        "a real screenshot"
    );
    let _ = std::fs::remove_dir_all(&dir);
}
