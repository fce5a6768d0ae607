//! The response-lifetime hook through the tower layer: a guarded request's hooks hear
//! the response head, then exactly one end — `Complete` when the body ends, `Aborted`
//! when it is dropped midway, `NoResponse` when the inner service fails — and a
//! refusal releases its guard at once.

#![allow(clippy::unwrap_used)]

use std::convert::Infallible;
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use http::{HeaderMap, Request, Response, StatusCode};
use http_body::Frame;
use http_body_util::{BodyExt, Full};
use limiter_core::tower::{
    Check, RateLimit, RequestLimiter, RequestOutcome, ResponseEnd, ResponseGuard, ResponseHook,
};
use tower::{ServiceExt, service_fn};

#[derive(Clone, Default)]
struct Log(Arc<Mutex<Vec<String>>>);

impl Log {
    fn entries(&self) -> Vec<String> {
        self.0.lock().unwrap().clone()
    }
}

struct Hook(Log);

impl ResponseHook for Hook {
    fn on_head(&mut self, status: StatusCode, headers: &mut HeaderMap) {
        let cost = headers
            .remove("x-cost")
            .map(|v| v.to_str().unwrap().to_owned());
        self.0
            .0
            .lock()
            .unwrap()
            .push(format!("head {status} cost={cost:?}"));
    }
    fn on_end(self: Box<Self>, end: ResponseEnd) {
        self.0.0.lock().unwrap().push(format!("end {end:?}"));
    }
}

/// Admits (or refuses, for `/refuse`) every request with a guard logging to `log`.
struct Guarding(Log);

impl<B> RequestLimiter<B> for Guarding {
    type Future = std::future::Ready<RequestOutcome>;

    fn check(&self, req: &Request<B>) -> Check<Self::Future> {
        let outcome = if req.uri().path() == "/refuse" {
            RequestOutcome::Rejected {
                status: StatusCode::BAD_REQUEST,
                reason: "refused",
            }
        } else {
            RequestOutcome::Unlimited
        };
        let guard = ResponseGuard::new(Hook(self.0.clone()));
        Check::Ready(outcome.with_guard(guard))
    }
}

/// A body of one-byte frames, each ready when polled.
struct Chunks(std::vec::IntoIter<Bytes>);

impl http_body::Body for Chunks {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        mut self: std::pin::Pin<&mut Self>,
        _cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        std::task::Poll::Ready(self.0.next().map(|b| Ok(Frame::data(b))))
    }
}

fn chunks(n: usize) -> Chunks {
    Chunks(vec![Bytes::from_static(b"x"); n].into_iter())
}

fn service(
    log: &Log,
) -> RateLimit<
    impl tower::Service<
        Request<()>,
        Response = Response<Chunks>,
        Error = std::io::Error,
        Future = impl Send,
    > + Clone,
    Guarding,
> {
    let inner = service_fn(|req: Request<()>| async move {
        if req.uri().path() == "/fail" {
            return Err(std::io::Error::other("backend down"));
        }
        let mut res = Response::new(chunks(3));
        res.headers_mut()
            .insert("x-cost", http::HeaderValue::from_static("7"));
        Ok(res)
    });
    RateLimit::new(inner, Arc::new(Guarding(log.clone())))
}

#[tokio::test]
async fn a_body_read_to_its_end_completes_the_guard_after_its_head() {
    let log = Log::default();
    let res = service(&log)
        .oneshot(Request::get("/ok").body(()).unwrap())
        .await
        .unwrap();
    assert!(
        !res.headers().contains_key("x-cost"),
        "the hook may change the head"
    );
    assert_eq!(log.entries(), ["head 200 OK cost=Some(\"7\")"]);
    let body = res.into_body().collect().await.unwrap().to_bytes();
    assert_eq!(&body[..], b"xxx");
    assert_eq!(
        log.entries(),
        ["head 200 OK cost=Some(\"7\")", "end Complete"]
    );
}

#[tokio::test]
async fn a_body_dropped_midway_aborts_the_guard_once() {
    let log = Log::default();
    let res = service(&log)
        .oneshot(Request::get("/ok").body(()).unwrap())
        .await
        .unwrap();
    let mut body = res.into_body();
    let first = body.frame().await.unwrap().unwrap();
    assert_eq!(first.into_data().unwrap(), Bytes::from_static(b"x"));
    assert_eq!(
        log.entries().len(),
        1,
        "no end while the body is being read"
    );
    drop(body);
    assert_eq!(log.entries()[1..], ["end Aborted"]);
}

#[tokio::test]
async fn a_failed_service_and_a_refusal_end_the_guard_without_a_response() {
    let log = Log::default();
    let err = service(&log)
        .oneshot(Request::get("/fail").body(()).unwrap())
        .await;
    assert!(err.is_err());
    assert_eq!(log.entries(), ["end NoResponse"]);
    let refused = service(&log)
        .oneshot(Request::get("/refuse").body(()).unwrap())
        .await
        .unwrap();
    assert_eq!(refused.status(), StatusCode::BAD_REQUEST);
    assert_eq!(log.entries(), ["end NoResponse", "end NoResponse"]);
}

#[tokio::test]
async fn an_empty_body_completes_at_its_head() {
    let log = Log::default();
    let inner = service_fn(|_req: Request<()>| async {
        Ok::<_, Infallible>(Response::new(Full::new(Bytes::new())))
    });
    let svc = RateLimit::new(inner, Arc::new(Guarding(log.clone())));
    let res = svc
        .oneshot(Request::get("/").body(()).unwrap())
        .await
        .unwrap();
    assert_eq!(log.entries(), ["head 200 OK cost=None", "end Complete"]);
    drop(res);
    assert_eq!(log.entries().len(), 2, "ended once");
}
