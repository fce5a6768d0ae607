//! The response-lifetime hook: work a limiter attaches to one admitted request that runs
//! when the inner service's response head arrives and when the response is over.
//!
//! A concurrency limit holds its slot until the response body ends or the client goes
//! away; a cost taken from the response (`cost_from_response`) is settled when the head
//! arrives. Both are a [`ResponseHook`] in the request's [`ResponseGuard`], which the
//! [`RateLimit`](super::RateLimit) service carries from the decision to the response
//! head and then inside the response body ([`RateLimitBody`](super::RateLimitBody)):
//!
//! - [`ResponseHook::on_head`] runs once, when the inner service answers, after the
//!   rate-limit headers are set (the hook may read or change the headers);
//! - [`ResponseHook::on_end`] runs exactly once: [`ResponseEnd::Complete`] when the body
//!   yields its last frame, [`ResponseEnd::Aborted`] when the body is dropped before its
//!   end (the client went away, the connection broke) or the body failed, and
//!   [`ResponseEnd::NoResponse`] when no response head ever came (the inner service
//!   failed, or the whole request was dropped while waiting for it).
//!
//! The guard is released by `Drop`, so no path — an error, a panic unwinding, a client
//! disconnecting mid-body, a cancelled future — can skip `on_end`. Hooks run on the
//! task that drops the body: keep them short and non-blocking (spawn anything that
//! talks to a store).
//!
//! ```
//! use std::sync::Arc;
//! use std::sync::atomic::{AtomicUsize, Ordering};
//! use limiter_core::tower::{ResponseEnd, ResponseGuard, ResponseHook};
//!
//! struct Count(Arc<AtomicUsize>);
//! impl ResponseHook for Count {
//!     fn on_end(self: Box<Self>, end: ResponseEnd) {
//!         assert_eq!(end, ResponseEnd::NoResponse);
//!         self.0.fetch_add(1, Ordering::SeqCst);
//!     }
//! }
//! let ended = Arc::new(AtomicUsize::new(0));
//! let guard = ResponseGuard::new(Count(Arc::clone(&ended)));
//! drop(guard); // dropped before any head: the hook hears `NoResponse`, once
//! assert_eq!(ended.load(Ordering::SeqCst), 1);
//! ```

use std::fmt;

use http::{HeaderMap, StatusCode};

/// How a guarded response ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ResponseEnd {
    /// The body yielded its last frame.
    Complete,
    /// The body was dropped before its end (the client went away) or failed.
    Aborted,
    /// No response head ever came: the inner service failed, or the request was dropped
    /// while waiting for it.
    NoResponse,
}

/// Work tied to one admitted request's response: see the [module docs](self).
pub trait ResponseHook: Send + 'static {
    /// The inner service's response head arrived (its status and headers, with the
    /// rate-limit headers already set). Called at most once, before the body.
    fn on_head(&mut self, status: StatusCode, headers: &mut HeaderMap) {
        let _ = (status, headers);
    }

    /// The response is over, as `end` says. Called exactly once.
    fn on_end(self: Box<Self>, end: ResponseEnd);
}

/// The hooks of one request (none, one, or several: a concurrency slot and a cost
/// reservation), ended exactly once: explicitly, or as [`ResponseEnd::Aborted`] /
/// [`ResponseEnd::NoResponse`] on drop.
#[derive(Default)]
pub struct ResponseGuard {
    hooks: Vec<Box<dyn ResponseHook>>,
    /// Whether a response head arrived (what a drop reports).
    headed: bool,
}

impl fmt::Debug for ResponseGuard {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ResponseGuard")
            .field("hooks", &self.hooks.len())
            .field("headed", &self.headed)
            .finish()
    }
}

impl ResponseGuard {
    /// A guard holding `hook`.
    pub fn new(hook: impl ResponseHook) -> Self {
        let mut guard = Self::default();
        guard.push(hook);
        guard
    }

    /// Adds `hook` (hooks run in the order they were added).
    pub fn push(&mut self, hook: impl ResponseHook) {
        self.hooks.push(Box::new(hook));
    }

    /// Moves every hook of `other` into this guard, after its own.
    pub fn append(&mut self, mut other: ResponseGuard) {
        self.hooks.append(&mut other.hooks);
    }

    /// True when it holds no hook (nothing to do at the response's end).
    pub fn is_empty(&self) -> bool {
        self.hooks.is_empty()
    }

    /// The response head arrived: every hook's [`on_head`](ResponseHook::on_head).
    pub fn head(&mut self, status: StatusCode, headers: &mut HeaderMap) {
        self.headed = true;
        for hook in &mut self.hooks {
            hook.on_head(status, headers);
        }
    }

    /// Ends every hook with `end` now (a later drop does nothing).
    pub fn end(&mut self, end: ResponseEnd) {
        for hook in self.hooks.drain(..) {
            hook.on_end(end);
        }
    }
}

impl Drop for ResponseGuard {
    fn drop(&mut self) {
        if self.hooks.is_empty() {
            return;
        }
        let end = if self.headed {
            ResponseEnd::Aborted
        } else {
            ResponseEnd::NoResponse
        };
        self.end(end);
    }
}

/// An admitted request's in-flight slots ([`Permit`](crate::limits::Permit)) as a hook:
/// released when the response ends, however it ends.
impl ResponseHook for crate::limits::Permit {
    fn on_end(self: Box<Self>, _end: ResponseEnd) {
        // Dropping the permit releases its slots.
    }
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};

    use super::*;

    #[derive(Clone, Default)]
    struct Log(Arc<Mutex<Vec<String>>>);

    struct Hook(&'static str, Log);

    impl ResponseHook for Hook {
        fn on_head(&mut self, status: StatusCode, headers: &mut HeaderMap) {
            headers.insert("x-hook", http::HeaderValue::from_static("seen"));
            self.1
                .0
                .lock()
                .unwrap()
                .push(format!("{} head {status}", self.0));
        }
        fn on_end(self: Box<Self>, end: ResponseEnd) {
            self.1.0.lock().unwrap().push(format!("{} {end:?}", self.0));
        }
    }

    fn entries(log: &Log) -> Vec<String> {
        log.0.lock().unwrap().clone()
    }

    #[test]
    fn hooks_hear_the_head_then_one_end_in_order() {
        let log = Log::default();
        let mut guard = ResponseGuard::new(Hook("a", log.clone()));
        let mut other = ResponseGuard::new(Hook("b", log.clone()));
        other.headed = false;
        guard.append(other);
        let mut headers = HeaderMap::new();
        guard.head(StatusCode::OK, &mut headers);
        assert_eq!(headers["x-hook"], "seen");
        guard.end(ResponseEnd::Complete);
        drop(guard);
        assert_eq!(
            entries(&log),
            ["a head 200 OK", "b head 200 OK", "a Complete", "b Complete"]
        );
    }

    #[test]
    fn a_drop_reports_aborted_after_a_head_and_no_response_before() {
        let log = Log::default();
        let mut headed = ResponseGuard::new(Hook("h", log.clone()));
        headed.head(StatusCode::OK, &mut HeaderMap::new());
        drop(headed);
        drop(ResponseGuard::new(Hook("n", log.clone())));
        assert_eq!(
            entries(&log),
            ["h head 200 OK", "h Aborted", "n NoResponse"]
        );
        assert!(ResponseGuard::default().is_empty());
    }
}
