//! End-to-end tests of `ratelab trace generate` and `ratelab simulate --trace`, run as
//! the real binary: every format, a gzip-compressed log on standard input, a gateway
//! config's routes, malformed lines, `--strict` and a sweep.

#![allow(clippy::unwrap_used)]

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

struct Scratch(PathBuf);

impl Scratch {
    fn new(name: &str) -> Self {
        let dir = std::env::temp_dir().join(format!("ratelab-trace-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        Self(dir)
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn ratelab(args: &[&str], cwd: &Path, stdin: Option<&[u8]>) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_ratelab"))
        .args(args)
        .current_dir(cwd)
        .stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    if let Some(bytes) = stdin {
        child.stdin.take().unwrap().write_all(bytes).unwrap();
    }
    child.wait_with_output().unwrap()
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

const CONFIG: &str = r#"
[[route]]
path = "/api/orders"
algorithm = "fixed-window"
limit = 5
window = "1m"
"#;

#[test]
fn generated_logs_replay_in_every_format() {
    let dir = Scratch::new("formats");
    let d = &dir.0;
    std::fs::write(d.join("gateway.toml"), CONFIG).unwrap();
    let mut admitted = Vec::new();
    for format in ["combined", "json", "csv"] {
        let file = format!("seed.{format}");
        let generated = ratelab(
            &[
                "trace",
                "generate",
                "--workload",
                "seed",
                "--format",
                format,
                "-o",
                &file,
            ],
            d,
            None,
        );
        assert!(generated.status.success(), "{}", text(&generated.stderr));
        let again = ratelab(
            &[
                "trace",
                "generate",
                "--workload",
                "seed",
                "--format",
                format,
            ],
            d,
            None,
        );
        assert_eq!(
            again.stdout,
            std::fs::read(d.join(&file)).unwrap(),
            "deterministic"
        );
        let out_dir = format!("out-{format}");
        let out = ratelab(
            &[
                "simulate",
                "--trace",
                &file,
                "--format",
                format,
                "--config",
                "gateway.toml",
                "-o",
                &out_dir,
                "--no-report",
                "--quiet",
            ],
            d,
            None,
        );
        assert!(out.status.success(), "{}", text(&out.stderr));
        assert!(out.stdout.is_empty(), "--quiet");
        let written = std::fs::read(d.join(&out_dir).join("results.json")).unwrap();
        let results: serde_json::Value = serde_json::from_slice(&written).unwrap();
        let trace = &results["trace"];
        assert_eq!(trace["input"]["requests"], 4200, "{format}");
        assert_eq!(trace["routes"][0]["route"], "/api/orders");
        let fixed = results["runs"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["algorithm"] == "fixed-window")
            .unwrap();
        admitted.push(fixed["totals"]["admitted"].as_u64().unwrap());
    }
    // 5 per minute over 150 s: windows 0–60, 60–120, 120–150 admit 5 each.
    assert_eq!(admitted, [15, 15, 15]);
}

#[test]
fn compressed_stdin_malformed_lines_strict_and_sweep() {
    let dir = Scratch::new("stdin");
    let d = &dir.0;
    std::fs::write(d.join("gateway.toml"), CONFIG).unwrap();
    let generated = ratelab(&["trace", "generate", "--workload", "seed"], d, None);
    let mut log = generated.stdout;
    log.extend_from_slice(b"this is not a log line\n");
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    gz.write_all(&log).unwrap();
    std::fs::write(d.join("access.log.gz"), gz.finish().unwrap()).unwrap();
    let out = ratelab(
        &[
            "simulate",
            "--trace",
            "access.log.gz",
            "--config",
            "gateway.toml",
            "-a",
            "gcra,fixed-window",
            "--sweep",
            "limit=1..9/2",
            "--sweep",
            "burst=1x,2x",
        ],
        d,
        None,
    );
    let stdout = text(&out.stdout);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(stdout.contains("1 malformed"), "{stdout}");
    assert!(
        stdout.contains("malformed line 4201: line ends before"),
        "{stdout}"
    );
    assert!(stdout.contains("never over the policy"), "{stdout}");
    assert!(d.join("ratelab-out/sweep.png").exists());
    let strict = ratelab(
        &[
            "simulate",
            "--trace",
            "-",
            "--config",
            "gateway.toml",
            "--strict",
        ],
        d,
        Some(&log),
    );
    assert!(!strict.status.success());
    assert!(
        text(&strict.stderr).contains("line 4201"),
        "{}",
        text(&strict.stderr)
    );
    let missing = ratelab(&["simulate", "--trace", "access.log.gz"], d, None);
    assert!(
        text(&missing.stderr).contains("--config"),
        "{}",
        text(&missing.stderr)
    );
}
