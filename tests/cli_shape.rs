//! The command line's shape, run as the real binary: exit codes (2 for every usage and
//! configuration mistake, caught by clap or after), help that fits a screen, enumerated
//! values, completions, the man page and `ratelab algorithms`.

#![allow(clippy::unwrap_used)]

use std::process::{Command, Output};

fn ratelab(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_ratelab"))
        .args(args)
        .current_dir(std::env::temp_dir())
        .output()
        .unwrap()
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

#[test]
fn mistakes_exit_2_whether_clap_or_the_command_catches_them() {
    let cases: &[&[&str]] = &[
        // caught by clap
        &["simulate", "--algorithms", "gcra,leaky-bucket"],
        &["simulate", "--store", "disk"],
        &["load", "--target", "http://127.0.0.1:1", "--driver", "wrk"],
        &["load"],
        // caught after parsing
        &["simulate", "--workload", "no-such-workload"],
        &["simulate", "--rtt", "fast"],
        &["gateway", "--config", "does-not-exist.toml"],
        &["report", "--in", "no-such-folder"],
        &["load", "--target", "http://127.0.0.1:1", "--timeout", "0"],
        &[
            "load",
            "--target",
            "http://127.0.0.1:1",
            "--goose-arg=--run-time=5s",
        ],
        &[
            "load",
            "--target",
            "http://127.0.0.1:1",
            "--driver",
            "open",
            "--users",
            "3",
        ],
        &["backend", "--error-rate", "2"],
        &["bench-report", "--dir", "no-such-folder"],
    ];
    for args in cases {
        let out = ratelab(args);
        assert_eq!(
            out.status.code(),
            Some(2),
            "{args:?}: {}",
            text(&out.stderr)
        );
        let err = text(&out.stderr);
        assert!(err.starts_with("error"), "{args:?}: {err}");
    }
}

#[test]
fn errors_say_each_thing_once_and_plainly() {
    let out = ratelab(&["report", "--in", "no-such-folder"]);
    let err = text(&out.stderr);
    assert_eq!(err.matches("no-such-folder").count(), 1, "{err}");
    assert_eq!(err.lines().count(), 1, "{err}");

    let out = ratelab(&["gateway", "--config", "does-not-exist.toml"]);
    let err = text(&out.stderr);
    assert!(err.contains("does-not-exist.toml: no such file"), "{err}");
    assert!(!err.contains(":0:0") && !err.contains("(file)"), "{err}");
}

#[test]
fn a_runtime_failure_exits_1() {
    // Nothing listens on port 1: the run fails, the request was well formed.
    let out = ratelab(&[
        "load",
        "--target",
        "http://127.0.0.1:1",
        "--time-scale",
        "0.01",
    ]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
}

#[test]
fn help_fits_a_screen_and_states_values_and_exit_codes() {
    let out = ratelab(&["load", "--help"]);
    assert!(out.status.success());
    let help = text(&out.stdout);
    assert!(
        help.lines().count() <= 80,
        "{} lines:\n{help}",
        help.lines().count()
    );
    assert!(help.contains("[possible values: goose, open]"), "{help}");
    assert!(
        help.contains("[possible values: memory, redis, redis-cluster"),
        "{help}"
    );
    assert!(help.contains("Exit status:") && help.contains("3  the run was incomplete"));
    assert!(help.contains("--goose-arg"), "{help}");
    assert!(!help.contains("GooseDefault"), "{help}");
    // The timeout shown is the one used.
    assert!(help.contains("--timeout <SECONDS>") && help.contains("[default: 10]"));

    let out = ratelab(&["load", "-V"]);
    assert!(
        out.status.success(),
        "-V needs no --target: {}",
        text(&out.stderr)
    );
    assert!(text(&out.stdout).contains(env!("CARGO_PKG_VERSION")));

    let out = ratelab(&["simulate", "--help"]);
    let help = text(&out.stdout);
    for name in ["fixed-window", "seed-replica", "all"] {
        assert!(help.contains(name), "{name}:\n{help}");
    }
}

#[test]
fn algorithms_lists_every_one_with_its_guarantee() {
    let out = ratelab(&["algorithms"]);
    assert!(out.status.success());
    let table = text(&out.stdout);
    let names = text(&ratelab(&["algorithms", "--names"]).stdout);
    let names: Vec<&str> = names.lines().collect();
    assert!(
        names.contains(&"seed-replica") && names.contains(&"gcra"),
        "{names:?}"
    );
    for name in &names {
        let row = table
            .lines()
            .find(|l| l.starts_with(&format!("{name} ")))
            .unwrap_or_else(|| panic!("{name}:\n{table}"));
        assert!(row.contains("exact "), "judged against: {row}");
    }
    assert!(table.contains("up to 2x across a boundary"), "{table}");
}

#[test]
fn completions_and_man_pages_come_from_the_command_line() {
    for shell in ["bash", "zsh", "fish", "elvish", "powershell"] {
        let out = ratelab(&["completions", shell]);
        assert!(out.status.success(), "{shell}");
        let script = text(&out.stdout);
        assert!(
            script.contains("simulate") && script.contains("--goose-arg"),
            "{shell}"
        );
    }
    let bash = text(&ratelab(&["completions", "bash"]).stdout);
    assert!(bash.contains("seed-replica"), "values complete too");

    let out = ratelab(&["man"]);
    assert!(out.status.success());
    let page = text(&out.stdout);
    assert!(
        page.starts_with(".ie") || page.contains(".TH ratelab"),
        "{page}"
    );
    assert!(page.contains("simulate"));

    let dir = std::env::temp_dir().join(format!("ratelab-man-{}", std::process::id()));
    let out = ratelab(&["man", "--dir", dir.to_str().unwrap()]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let load = std::fs::read_to_string(dir.join("ratelab-load.1")).unwrap();
    assert!(
        load.contains(".TH ratelab-load") && load.contains("goose\\-arg"),
        "{load}"
    );
    assert!(dir.join("ratelab.1").is_file());
    let _ = std::fs::remove_dir_all(&dir);
}
