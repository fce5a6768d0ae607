//! End-to-end tests of in-flight (concurrency) limits through `ratelab gateway`, in
//! memory and on Redis, in front of a backend (in this test) that streams each body
//! slowly until the test lets it end:
//! - N responses streaming: the N+1th request is refused `429` with `Retry-After: 1`
//!   and the `qu="concurrent-requests"` headers;
//! - a slot comes back when a response body ends, and when a client goes away in the
//!   middle of its response;
//! - composed with a rate limit in the same list, all-or-nothing.

#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "gateway_e2e/support.rs"]
mod support;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use support::{Proc, TRUST_LOOPBACK, TempDir};

/// A backend whose responses stream one chunk every 50 ms until the test releases
/// them ([`Slow::finish`]), one at a time, first come first served.
struct Slow {
    addr: SocketAddr,
    finish: Arc<(Mutex<usize>, Condvar)>,
    /// Responses whose head went out and whose body is still streaming.
    streaming: Arc<AtomicUsize>,
}

impl Slow {
    fn start() -> Slow {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let finish = Arc::new((Mutex::new(0usize), Condvar::new()));
        let streaming = Arc::new(AtomicUsize::new(0));
        let (f, s) = (Arc::clone(&finish), Arc::clone(&streaming));
        std::thread::spawn(move || {
            for conn in listener.incoming().flatten() {
                let (f, s) = (Arc::clone(&f), Arc::clone(&s));
                std::thread::spawn(move || serve(conn, &f, &s));
            }
        });
        Slow {
            addr,
            finish,
            streaming,
        }
    }

    /// Lets `n` streaming responses end.
    fn finish(&self, n: usize) {
        let (lock, cv) = &*self.finish;
        *lock.lock().unwrap() += n;
        cv.notify_all();
    }

    fn streaming(&self) -> usize {
        self.streaming.load(Ordering::SeqCst)
    }
}

/// One backend connection: each request's response streams until a finish token.
fn serve(conn: TcpStream, finish: &(Mutex<usize>, Condvar), streaming: &AtomicUsize) {
    let mut reader = BufReader::new(conn.try_clone().unwrap());
    let mut out = conn;
    loop {
        let mut line = String::new();
        // The request head (no body: every test request is a GET).
        loop {
            line.clear();
            if reader.read_line(&mut line).unwrap_or(0) == 0 {
                return;
            }
            if line == "\r\n" {
                break;
            }
        }
        let head =
            "HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\ntransfer-encoding: chunked\r\n\r\n";
        if out.write_all(head.as_bytes()).is_err() {
            return;
        }
        streaming.fetch_add(1, Ordering::SeqCst);
        let ended = loop {
            if out.write_all(b"1\r\nx\r\n").is_err() {
                break false;
            }
            let (lock, cv) = finish;
            let tokens = lock.lock().unwrap();
            let (mut tokens, _) = cv.wait_timeout(tokens, Duration::from_millis(50)).unwrap();
            if *tokens > 0 {
                *tokens -= 1;
                break true;
            }
        };
        streaming.fetch_sub(1, Ordering::SeqCst);
        if !ended || out.write_all(b"0\r\n\r\n").is_err() {
            return;
        }
    }
}

/// A client whose response head arrived and whose body is still streaming.
struct Open {
    reader: BufReader<TcpStream>,
    status: u16,
    head: String,
}

impl Open {
    /// Reads the rest of the (chunked) body to its end.
    fn read_to_end(mut self) {
        let mut rest = Vec::new();
        self.reader.read_to_end(&mut rest).unwrap();
        assert!(rest.ends_with(b"0\r\n\r\n"), "the body ended");
    }
}

/// Waits until the backend streams exactly `n` responses.
fn streaming_now(backend: &Slow, n: usize) {
    let deadline = Instant::now() + Duration::from_secs(5);
    while backend.streaming() != n {
        assert!(
            Instant::now() < deadline,
            "{} streaming, not {n}",
            backend.streaming()
        );
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// Sends `GET path` as `user` (connection: close) and reads the response head.
fn send(gw: SocketAddr, path: &str, user: &str) -> Open {
    let mut conn = TcpStream::connect(gw).unwrap();
    conn.set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let req = format!(
        "GET {path} HTTP/1.1\r\nhost: gw\r\nx-user-id: {user}\r\nconnection: close\r\n\r\n"
    );
    conn.write_all(req.as_bytes()).unwrap();
    let mut reader = BufReader::new(conn);
    let mut head = String::new();
    loop {
        let mut line = String::new();
        assert!(
            reader.read_line(&mut line).unwrap() > 0,
            "head cut short: {head}"
        );
        if line == "\r\n" {
            break;
        }
        head.push_str(&line.to_ascii_lowercase());
    }
    let status = head[9..12].parse().unwrap();
    Open {
        reader,
        status,
        head,
    }
}

/// The value of header `name` in a lowercased head.
fn header<'a>(head: &'a str, name: &str) -> Option<&'a str> {
    head.lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(':'))
        .map(str::trim)
}

/// Waits until a request of `user` to `path` is admitted (the slot freed), keeping it.
fn admitted_soon(gw: SocketAddr, path: &str, user: &str) -> Open {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let open = send(gw, path, user);
        if open.status == 200 {
            return open;
        }
        assert_eq!(open.status, 429);
        assert!(Instant::now() < deadline, "the slot never came back");
        std::thread::sleep(Duration::from_millis(25));
    }
}

/// `ratelab_gateway_in_flight_held` of `route`'s `slots` limit.
fn held(gw: &Proc, route: &str) -> i64 {
    let metrics = support::get(gw.admin(), "/metrics", None).body;
    let needle = format!(
        "ratelab_gateway_in_flight_held{{route=\"{route}\",tier=\"default\",limit=\"slots\"}} "
    );
    metrics
        .lines()
        .find_map(|l| l.strip_prefix(needle.as_str()))
        .map(|n| n.trim().parse().unwrap())
        .unwrap_or_else(|| panic!("no {needle} in {metrics}"))
}

fn start(store: &str, backend: &Slow, dir: &TempDir) -> Proc {
    let config = format!(
        r#"{store}
[[route]]
path = "/slow"
name = "slots"
algorithm = "concurrency"
limit = 2
lease_ttl = "5s"

[[route]]
path = "/both"
limits = [
  {{ name = "hourly", algorithm = "fixed-window", limit = 3, window = "1h" }},
  {{ name = "slots", algorithm = "concurrency", limit = 2 }},
]
{TRUST_LOOPBACK}"#
    );
    let path = dir.write("gw.toml", &config);
    let backend_url = format!("http://{}", backend.addr);
    Proc::start(&[
        "gateway",
        "--config",
        path.to_str().unwrap(),
        "--listen",
        "127.0.0.1:0",
        "--backend",
        &backend_url,
        "--admin-listen",
        "127.0.0.1:0",
        "--threads",
        "2",
    ])
}

/// The whole story on one gateway: slots held while bodies stream, a refusal with its
/// headers, a slot back at body end and at client disconnect, composition.
fn in_flight_story(store: &str, tag: &str) {
    let backend = Slow::start();
    let dir = TempDir::new(tag);
    let gw = start(store, &backend, &dir);
    let addr = gw.addr;

    let a = send(addr, "/slow", "alice");
    let b = send(addr, "/slow", "alice");
    assert_eq!((a.status, b.status), (200, 200), "{}", b.head);
    assert_eq!(
        header(&a.head, "ratelimit-policy"),
        Some("\"slots\";q=2;qu=\"concurrent-requests\"")
    );
    assert_eq!(header(&b.head, "ratelimit"), Some("\"slots\";r=0"));
    // Both bodies are streaming: the third is refused, and never reaches the backend.
    let c = send(addr, "/slow", "alice");
    assert_eq!(c.status, 429, "{}", c.head);
    assert_eq!(header(&c.head, "retry-after"), Some("1"));
    assert_eq!(header(&c.head, "ratelimit"), Some("\"slots\";r=0;t=1"));
    streaming_now(&backend, 2);
    // Another identity has its own slots.
    let other = send(addr, "/slow", "bob");
    assert_eq!(other.status, 200);
    assert_eq!(held(&gw, "/slow"), 3, "the gauge of slots held");

    // Bob leaves (his slot comes back the same way as the client test below).
    drop(other);
    streaming_now(&backend, 2);
    // A body that ends gives its slot back: the backend ends one of alice's two.
    backend.finish(1);
    streaming_now(&backend, 1);
    let d = admitted_soon(addr, "/slow", "alice");

    // A client that goes away mid-response gives its slot back (the gateway notices
    // when it writes the next chunk).
    drop(d);
    let e = admitted_soon(addr, "/slow", "alice");
    assert_eq!(send(addr, "/slow", "alice").status, 429);

    // Every client goes away: every slot comes back, every backend stream stops.
    drop((a, b, e));
    streaming_now(&backend, 0);
    let deadline = Instant::now() + Duration::from_secs(5);
    while held(&gw, "/slow") != 0 {
        assert!(Instant::now() < deadline, "slots still counted held");
        std::thread::sleep(Duration::from_millis(20));
    }

    // Composed with a rate limit in one list: all-or-nothing.
    let f = send(addr, "/both", "carol");
    let g = send(addr, "/both", "carol");
    assert_eq!((f.status, g.status), (200, 200));
    assert_eq!(
        header(&f.head, "ratelimit-policy"),
        Some("\"hourly\";q=3;w=3600, \"slots\";q=2;qu=\"concurrent-requests\"")
    );
    // Refused by the slots: the hour keeps its third request.
    let h = send(addr, "/both", "carol");
    assert_eq!(h.status, 429);
    let value = header(&h.head, "ratelimit").unwrap();
    assert!(value.starts_with("\"hourly\";r=1;t="), "{value}");
    assert!(value.ends_with(", \"slots\";r=0;t=1"), "{value}");
    assert_eq!(header(&h.head, "retry-after"), Some("1"));
    // One body ends (read to its end by its client): its slot comes back.
    backend.finish(1);
    streaming_now(&backend, 1);
    let i = admitted_soon(addr, "/both", "carol");
    let value = header(&i.head, "ratelimit").unwrap();
    assert!(value.starts_with("\"hourly\";r=0;t="), "{value}");
    assert!(value.ends_with(", \"slots\";r=0"), "{value}");
    backend.finish(2);
    f.read_to_end();
    g.read_to_end();
    i.read_to_end();
    // The hour is spent: refused by it with the hour's wait, and no slot taken (once
    // the ended requests' slots are back: on Redis their release is a call of its own).
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let j = send(addr, "/both", "carol");
        assert_eq!(j.status, 429);
        let retry: u64 = header(&j.head, "retry-after").unwrap().parse().unwrap();
        assert!(retry > 1, "the hour's wait: {retry}");
        if header(&j.head, "ratelimit")
            .unwrap()
            .ends_with("\"slots\";r=2")
        {
            break;
        }
        assert!(Instant::now() < deadline, "{}", j.head);
        std::thread::sleep(Duration::from_millis(25));
    }
}

#[test]
fn in_flight_limits_in_memory() {
    in_flight_story("", "inflight-mem");
}

#[test]
fn in_flight_limits_on_redis() {
    let redis = testkit::RedisServer::start().unwrap();
    let store = format!(
        "[store]\nkind = \"redis\"\nurl = \"{}\"\ntimeout = \"2s\"\non_error = \"fail-closed\"\n",
        redis.url()
    );
    in_flight_story(&store, "inflight-redis");
    // Every lease was removed when its request ended.
    let keys = redis.cmd(&["KEYS", "*in-flight*"]).unwrap();
    let deadline = Instant::now() + Duration::from_secs(5);
    let mut left = keys.clone();
    while !left.trim().is_empty() {
        let total: u64 = left
            .lines()
            .map(|k| {
                redis
                    .cmd(&["ZCARD", k.trim()])
                    .unwrap()
                    .trim()
                    .parse::<u64>()
                    .unwrap_or(0)
            })
            .sum();
        if total == 0 {
            break;
        }
        assert!(Instant::now() < deadline, "leases left: {left}");
        std::thread::sleep(Duration::from_millis(50));
        left = redis.cmd(&["KEYS", "*in-flight*"]).unwrap();
    }
}

#[test]
fn the_concurrency_example_is_a_valid_config() {
    let path =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/policies/concurrency.toml");
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_ratelab"))
        .args(["gateway", "--check", "--config", path.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    assert!(String::from_utf8_lossy(&out.stdout).contains("configuration ok (2 routes)"));
}
