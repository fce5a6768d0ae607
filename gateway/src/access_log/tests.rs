use limiter_core::{DecidedBy, Decision, Verdict};

use super::*;

fn pending(log: &AccessLog, who: Option<(&str, &str)>) -> Box<Pending> {
    let mut p = Pending::start(
        log,
        &http::Method::GET,
        "/api//orders/7",
        "10.0.0.9".parse().unwrap(),
    );
    p.arrived = SystemTime::UNIX_EPOCH + Duration::from_nanos(1_796_083_200_000_000_001);
    p.forwarded_path("/api/orders/7");
    p.identity = who.map(|(key, ip_key)| Who {
        key: key.into(),
        source: "header",
        client: "10.0.0.1".parse().unwrap(),
        ip_key: ip_key.into(),
    });
    let verdict = Verdict {
        decision: Decision::deny(3, 0, Duration::from_secs(1), Duration::from_secs(1)),
        decided_by: DecidedBy::Store,
    };
    p.note.note("/api/orders/{id}", &verdict, false);
    p
}

fn line(identity: LogIdentity, p: &Pending) -> serde_json::Value {
    let mut w = Writer {
        identity,
        line: Vec::new(),
        out: BufWriter::new(Box::new(io::sink())),
    };
    w.format(p);
    assert_eq!(w.line.last(), Some(&b'\n'));
    serde_json::from_slice(&w.line).unwrap()
}

#[test]
fn plain_and_hashed_lines() {
    let (log, _rx) = AccessLog::detached(4);
    let mut p = pending(&log, Some(("h:alice", "ip:10.0.0.1")));
    p.status = 429;
    p.limits = p.note.take();
    let plain = line(LogIdentity::Plain, &p);
    assert_eq!(plain["time"], "2026-12-01T00:00:00.000000001Z");
    assert_eq!(plain["identity"], "h:alice");
    assert_eq!(plain["client"], "10.0.0.1");
    assert_eq!(plain["path"], "/api/orders/7", "the canonical path");
    assert_eq!(plain["route"], "/api/orders/{id}");
    assert_eq!(plain["decision"], "denied");
    assert_eq!(plain["remaining"], 0);

    let key = HashKey::new(b"0123456789abcdef").unwrap();
    let hashed = line(LogIdentity::Hash(key.clone()), &p);
    assert_eq!(hashed["identity"], key.pseudonym("h:alice").as_str());
    assert_eq!(hashed["client"], key.pseudonym("ip:10.0.0.1").as_str());
    let text = hashed.to_string();
    assert!(
        !text.contains("alice") && !text.contains("10.0.0"),
        "{text}"
    );
    // Everything else is as the plain line says.
    for field in [
        "time", "source", "path", "route", "status", "decision", "limits",
    ] {
        assert_eq!(hashed[field], plain[field], "{field}");
    }

    // No identity (refused before one resolved): the peer, hashed as an IP key.
    let anonymous = pending(&log, None);
    let l = line(LogIdentity::Hash(key.clone()), &anonymous);
    assert_eq!(l["identity"], serde_json::Value::Null);
    assert_eq!(l["client"], key.pseudonym("ip:10.0.0.9").as_str());
    assert_eq!(line(LogIdentity::Plain, &anonymous)["client"], "10.0.0.9");
}

#[test]
fn lines_are_written_and_overflow_is_counted() {
    let dir = std::env::temp_dir().join(format!("ratelab-access-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("access.jsonl");
    let config = AccessLogConfig {
        target: AccessLogTarget::File(path.clone()),
        identity: LogIdentity::Plain,
    };
    let log = AccessLog::open(&config).unwrap();
    for _ in 0..3 {
        pending(&log, Some(("key:acme", "ip:10.0.0.1"))).finish(429);
    }
    let stats = Arc::clone(&log.stats);
    drop(log);
    // The writer flushes and ends once every sender is gone.
    let mut text = String::new();
    for _ in 0..100 {
        text = std::fs::read_to_string(&path).unwrap_or_default();
        if text.lines().count() == 3 {
            break;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    assert_eq!(text.lines().count(), 3, "{text}");
    let line: serde_json::Value = serde_json::from_str(text.lines().next().unwrap()).unwrap();
    assert_eq!(line["identity"], "key:acme");
    assert_eq!(line["status"], 429);
    assert_eq!(line["decision"], "denied");
    assert!(line["latency_us"].as_u64().is_some());
    assert_eq!((stats.written.get(), stats.dropped.get()), (3, 0));
    std::fs::remove_dir_all(&dir).unwrap();
    // A writer that is behind: lines beyond the channel are dropped and counted,
    // and finishing a request never blocks.
    let (slow, rx) = AccessLog::detached(2);
    for _ in 0..5 {
        pending(&slow, None).finish(200);
    }
    assert_eq!(
        (slow.stats().written.get(), slow.stats().dropped.get()),
        (2, 3)
    );
    drop(rx);
}
