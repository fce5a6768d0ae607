//! The open-loop driver against a server that misbehaves on purpose: every request is
//! recorded once, with the reply its user's answer deserves, and the live counters
//! agree with the records.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::{TcpListener, TcpStream};

use super::{OpenLoopOptions, run};
use crate::drivers::http::plan::{LoadPlan, USER_HEADER, user_index};
use crate::drivers::http::record::{Reply, RunState};
use crate::workload::Workload;

/// What the server does for user `u`, and the reply the driver must record.
fn expected(u: u32) -> Reply {
    match u {
        0 | 4 => Reply::Status(200),
        1 => Reply::Status(429),
        2 => Reply::Connect,
        3 => Reply::Other,
        _ => Reply::Timeout,
    }
}

/// Answers one connection: per request, by its user.
async fn answer(mut stream: TcpStream) {
    let mut buf = Vec::new();
    loop {
        let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") else {
            let mut chunk = [0u8; 4096];
            match stream.read(&mut chunk).await {
                Ok(0) | Err(_) => return,
                Ok(n) => buf.extend_from_slice(&chunk[..n]),
            }
            continue;
        };
        let head = String::from_utf8_lossy(&buf[..end]).into_owned();
        buf.drain(..end + 4);
        let user = head
            .lines()
            .find_map(|l| l.strip_prefix(&format!("{USER_HEADER}: ")))
            .and_then(user_index)
            .unwrap_or(0);
        let reply: &[u8] = match user {
            0 => b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok",
            1 => b"HTTP/1.1 429 Too Many Requests\r\nRateLimit-Policy: \"p\";q=1\r\ntransfer-encoding: chunked\r\n\r\n2\r\nno\r\n0\r\n\r\n",
            2 => return,
            3 => b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\ncontent-length: 3\r\n\r\nok",
            4 => b"HTTP/1.1 200 OK\r\nconnection: close\r\ncontent-length: 2\r\n\r\nok",
            _ => {
                tokio::time::sleep(Duration::from_secs(5)).await;
                return;
            }
        };
        if stream.write_all(reply).await.is_err() || user == 4 {
            return;
        }
    }
}

/// One second of `rate` requests per second from six users to one route.
fn plan(rate: u32) -> Arc<LoadPlan> {
    let text = format!(
        "[users]\ncount = 6\n[[phase]]\nname = \"p\"\nduration = \"1s\"\nrate = {rate}\n\
         [[endpoint]]\npath = \"GET /api/x\"\nlimit = 1\nwindow = \"1s\"\n"
    );
    Arc::new(LoadPlan::new(Workload::parse(&text, "w.toml", "w").unwrap(), 3).unwrap())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_request_is_recorded_with_the_reply_it_got() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let server = tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            tokio::spawn(answer(stream));
        }
    });
    let plan = plan(300);
    let shared = Arc::new(RunState::new(
        Arc::clone(&plan),
        vec![format!("http://{addr}")],
        Duration::from_millis(100),
    ));
    shared.start();
    let options = OpenLoopOptions {
        max_in_flight: 64,
        connections: Some(16),
        threads: Some(2),
        timeout: Duration::from_millis(300),
    };
    let report = run(
        Arc::clone(&shared),
        options,
        Arc::new(AtomicBool::new(false)),
    )
    .await;
    server.abort();

    let (records, unfinished) = shared.records();
    assert_eq!(unfinished, 0);
    assert_eq!(
        records.len(),
        plan.len(),
        "every arrival sent and answered once"
    );
    let mut by_reply = std::collections::BTreeMap::<String, u64>::new();
    for r in &records {
        let user = plan.arrivals.list[r.index].user;
        assert_eq!(
            r.reply,
            expected(user),
            "request {} of user {user}",
            r.index
        );
        *by_reply.entry(r.reply.label()).or_default() += 1;
    }
    assert!(
        by_reply.len() == 5,
        "every kind of answer was met: {by_reply:?}"
    );
    let live = &shared.live;
    assert_eq!(live.sent.load(Ordering::Relaxed), plan.len() as u64);
    assert_eq!(live.done.load(Ordering::Relaxed), plan.len() as u64);
    assert_eq!(live.rejected.load(Ordering::Relaxed), by_reply["429"]);
    assert_eq!(live.admitted.load(Ordering::Relaxed), by_reply["200"]);
    assert_eq!(live.with_policy.load(Ordering::Relaxed), by_reply["429"]);
    assert_eq!(report.connections, 16, "the pool never grows: {report:?}");
    assert!(
        report.opened > 16,
        "connections closed by the server or failed were reopened: {report:?}"
    );
}

#[tokio::test]
async fn a_target_that_refuses_connections_stops_the_run() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    drop(listener);
    let plan = plan(2000);
    let shared = Arc::new(RunState::new(
        Arc::clone(&plan),
        vec![format!("http://{addr}")],
        Duration::ZERO,
    ));
    shared.start();
    let options = OpenLoopOptions {
        max_in_flight: 8,
        connections: None,
        threads: None,
        timeout: Duration::from_secs(1),
    };
    run(
        Arc::clone(&shared),
        options,
        Arc::new(AtomicBool::new(false)),
    )
    .await;
    assert!(
        shared.stop_reason().is_some_and(|r| r.contains("refused")),
        "{:?}",
        shared.stop_reason()
    );
    let (records, _) = shared.records();
    assert!(records.iter().all(|r| r.reply == Reply::Connect));
}

/// A server that answers the first request of each connection (advertising
/// `Keep-Alive: timeout=1` when `advertise`) and treats the connection as closed from
/// then on: a later request on it is read and dropped unanswered, as when it crosses
/// the server's idle close. Counts the requests it read and those it dropped.
async fn one_per_connection(listener: TcpListener, advertise: bool, seen: Arc<[AtomicU64; 2]>) {
    while let Ok((mut stream, _)) = listener.accept().await {
        let seen = Arc::clone(&seen);
        tokio::spawn(async move {
            let mut buf = [0u8; 4096];
            let mut answered = false;
            while let Ok(n) = stream.read(&mut buf).await {
                if n == 0 {
                    return;
                }
                seen[0].fetch_add(1, Ordering::Relaxed);
                if answered {
                    seen[1].fetch_add(1, Ordering::Relaxed);
                    return;
                }
                let reply: &[u8] = if advertise {
                    b"HTTP/1.1 200 OK\r\nkeep-alive: timeout=1\r\ncontent-length: 2\r\n\r\nok"
                } else {
                    b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok"
                };
                answered = stream.write_all(reply).await.is_ok();
            }
        });
    }
}

/// Plays `requests` of `method` two seconds apart over one connection against
/// [`one_per_connection`]; the replies in order, the requests the server read and
/// those it dropped.
async fn spaced(method: &str, advertise: bool, requests: u32) -> (Vec<Reply>, u64, u64) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let seen = Arc::new([AtomicU64::new(0), AtomicU64::new(0)]);
    let server = tokio::spawn(one_per_connection(listener, advertise, Arc::clone(&seen)));
    let text = format!(
        "[users]\ncount = 1\n[arrivals]\nprocess = \"constant\"\n\
         [[phase]]\nname = \"p\"\nduration = \"{}s\"\nrate = 0.5\n\
         [[endpoint]]\npath = \"{method} /api/x\"\nlimit = 100\nwindow = \"1s\"\n",
        requests * 2
    );
    let plan = Arc::new(LoadPlan::new(Workload::parse(&text, "w.toml", "w").unwrap(), 3).unwrap());
    let shared = Arc::new(RunState::new(
        Arc::clone(&plan),
        vec![format!("http://{addr}")],
        Duration::from_millis(100),
    ));
    shared.start();
    let options = OpenLoopOptions {
        max_in_flight: 1,
        connections: Some(1),
        threads: None,
        timeout: Duration::from_secs(1),
    };
    run(
        Arc::clone(&shared),
        options,
        Arc::new(AtomicBool::new(false)),
    )
    .await;
    server.abort();
    let (mut records, _) = shared.records();
    records.sort_by_key(|r| r.index);
    let replies = records.iter().map(|r| r.reply).collect();
    (
        replies,
        seen[0].load(Ordering::Relaxed),
        seen[1].load(Ordering::Relaxed),
    )
}

#[tokio::test]
async fn a_connection_is_retired_before_the_advertised_keep_alive_timeout() {
    // Requests 2 s apart, the server idles connections out after 1 s and says so: the
    // driver opens a fresh connection for each, so not one request crosses the close,
    // even a POST (which would not be resent).
    let (replies, read, dropped) = spaced("POST", true, 3).await;
    assert_eq!(replies, vec![Reply::Status(200); 3]);
    assert_eq!((read, dropped), (3, 0));
}

#[tokio::test]
async fn a_request_lost_to_a_closing_connection_is_resent_only_when_idempotent() {
    // No Keep-Alive advertised: the second request goes out on the kept connection and
    // meets the server's close, with no byte of an answer. A GET is sent again on a
    // new connection and answered; a POST (it may have been acted on) is recorded as a
    // failed connection and not sent again.
    let (replies, read, dropped) = spaced("GET", false, 2).await;
    assert_eq!(replies, vec![Reply::Status(200); 2]);
    assert_eq!(
        (read, dropped),
        (3, 1),
        "the GET was read twice, once dropped"
    );
    let (replies, read, dropped) = spaced("POST", false, 2).await;
    assert_eq!(replies, vec![Reply::Status(200), Reply::Connect]);
    assert_eq!((read, dropped), (2, 1), "the POST was not resent");
}
