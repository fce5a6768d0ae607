//! The open-loop driver: a dispatcher on tokio sends each arrival when it is due, each
//! in its own task, over a hyper keep-alive pool — no request waits for another's
//! response, so the offered rate does not sag when the target slows down.
//!
//! It exists beside goose to measure what a closed-loop tool cannot: the gateway under
//! a rate that keeps arriving regardless of its latency, and the load generator's own
//! ceiling on this machine. The guarantee: at most `max_in_flight` requests are
//! outstanding; past that the dispatcher waits, and the lateness is recorded, never
//! hidden.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;
use tokio::sync::Semaphore;

use super::record::{Reply, RunState};
use crate::drivers::http::client::{self, HttpClient};
use crate::drivers::http::plan::USER_HEADER;

/// How the open-loop driver runs.
#[derive(Debug, Clone, Copy)]
pub struct OpenLoopOptions {
    /// Most requests outstanding at once.
    pub max_in_flight: usize,
    /// Per-request timeout.
    pub timeout: Duration,
}

async fn one(shared: &RunState, client: &HttpClient, i: usize, timeout: Duration) {
    let spec = shared.plan.request(i);
    let url = shared.url(i, &spec.path);
    let body = if spec.body {
        Bytes::from_static(b"{}")
    } else {
        Bytes::new()
    };
    let sent = Instant::now();
    shared.mark_sent(i, sent);
    let result = client::send(
        client,
        spec.method.clone(),
        &url,
        &[(USER_HEADER, spec.user.as_str())],
        body,
        timeout,
    )
    .await;
    let latency = sent.elapsed();
    match result {
        Ok(res) => shared.finish(
            i,
            latency,
            Reply::Status(res.status.as_u16()),
            res.headers.contains_key("ratelimit-policy"),
        ),
        Err(reply) => shared.finish(i, latency, reply, false),
    }
}

/// Plays the schedule until it is exhausted, the run stops, or `cancelled` is set;
/// returns when every request sent has finished.
pub async fn run(shared: Arc<RunState>, options: OpenLoopOptions, cancelled: Arc<AtomicBool>) {
    let max = options.max_in_flight.clamp(1, 1 << 20);
    let client = client::client(max);
    let slots = Arc::new(Semaphore::new(max));
    while let Some(i) = shared.next() {
        if !shared
            .wait_until_due(i, || cancelled.load(Ordering::Relaxed))
            .await
        {
            break;
        }
        let Ok(permit) = Arc::clone(&slots).acquire_owned().await else {
            break;
        };
        let shared = Arc::clone(&shared);
        let client = client.clone();
        tokio::spawn(async move {
            one(&shared, &client, i, options.timeout).await;
            drop(permit);
        });
    }
    // Every permit back: every request finished (or timed out).
    let _ = slots.acquire_many(max as u32).await;
}
