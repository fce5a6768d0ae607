//! HTTP/1.1 on the open-loop driver's own connections: requests rendered from parts
//! prepared once per target, responses read for what the driver records (status, the
//! `RateLimit-Policy` header, whether the connection may be reused) and framed
//! strictly (RFC 9112 §6.3), without building a header map.
//!
//! Why not hyper's client: it dispatches each request through a channel to the
//! connection's task and back through a oneshot, builds a `Request` and a `HeaderMap`
//! each way, and was the driver's bottleneck (the gateway left hyper's client for its
//! backend hop for the same reasons: docs/gateway.md). The driver needs far less: it
//! writes bytes it prepared and reads a status line and the framing headers.

use std::mem::MaybeUninit;

use bytes::{Buf, BytesMut};
use http::Method;

use crate::drivers::http::plan::{LoadPlan, USER_HEADER};

/// The largest response head accepted.
const MAX_HEAD: usize = 64 * 1024;
/// The most header lines accepted in a response head.
const MAX_HEADERS: usize = 100;
/// The longest chunk-size line or trailer section accepted.
const MAX_CHUNK_LINE: usize = 4 * 1024;

/// A response that breaks HTTP/1.1's framing: recorded as `other`, and the connection
/// is closed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub(crate) enum WireError {
    /// No complete head within `MAX_HEAD`.
    #[error("response head too large")]
    HeadTooLarge,
    /// `httparse` refused the head.
    #[error("malformed response head")]
    Head,
    /// Conflicting or unparsable `Content-Length`.
    #[error("invalid content-length")]
    ContentLength,
    /// A transfer coding other than `chunked` last.
    #[error("unsupported transfer-encoding")]
    TransferEncoding,
    /// A malformed chunked body.
    #[error("malformed chunked body")]
    Chunked,
    /// `101 Switching Protocols`: never asked for.
    #[error("unexpected protocol switch")]
    Upgrade,
    /// Bytes after the response, with no request outstanding.
    #[error("bytes after the response")]
    Unsolicited,
}

/// The request bytes of every arrival of one target, in parts prepared once: the
/// request line and fixed headers per (endpoint, path variant), and the tail.
#[derive(Debug)]
pub(crate) struct Requests {
    /// `[endpoint][variant]`: `GET /path HTTP/1.1\r\nhost: ...\r\nx-user: user-`.
    heads: Vec<Vec<Vec<u8>>>,
    /// `[endpoint]`: what follows the user number (`\r\n` + body headers + body).
    tails: Vec<Vec<u8>>,
    /// `[endpoint]`: a `HEAD` request (its response has no body).
    head_method: Vec<bool>,
    /// `[endpoint]`: an idempotent method (safe to send again when a reused connection
    /// closed before any byte of an answer).
    idempotent: Vec<bool>,
}

/// Path variants per endpoint: the plan fills route parameters with `n % 8 + 1`.
const VARIANTS: u64 = 8;

impl Requests {
    /// The parts for `plan`'s requests to the target at `authority` (`host:port`).
    pub(crate) fn new(plan: &LoadPlan, authority: &str) -> Self {
        let mut heads = Vec::with_capacity(plan.endpoints.len());
        let mut tails = Vec::with_capacity(plan.endpoints.len());
        let mut head_method = Vec::with_capacity(plan.endpoints.len());
        let mut idempotent = Vec::with_capacity(plan.endpoints.len());
        for e in &plan.endpoints {
            heads.push(
                (0..VARIANTS)
                    .map(|v| {
                        format!(
                            "{} {} HTTP/1.1\r\nhost: {authority}\r\n{USER_HEADER}: user-",
                            e.method,
                            e.path(v)
                        )
                        .into_bytes()
                    })
                    .collect(),
            );
            tails.push(if e.has_body() {
                b"\r\ncontent-type: application/json\r\ncontent-length: 2\r\n\r\n{}".to_vec()
            } else {
                b"\r\n\r\n".to_vec()
            });
            head_method.push(e.method == Method::HEAD);
            idempotent.push(e.method.is_idempotent());
        }
        Self {
            heads,
            tails,
            head_method,
            idempotent,
        }
    }

    /// Whether arrival `i`'s method is idempotent.
    pub(crate) fn idempotent(&self, plan: &LoadPlan, i: usize) -> bool {
        self.idempotent[plan.arrivals.list[i].endpoint as usize]
    }

    /// Appends arrival `i`'s request to `out`; returns whether it is a `HEAD`.
    pub(crate) fn write(&self, plan: &LoadPlan, i: usize, out: &mut Vec<u8>) -> bool {
        let a = &plan.arrivals.list[i];
        let e = a.endpoint as usize;
        out.extend_from_slice(&self.heads[e][(i as u64 % VARIANTS) as usize]);
        out.extend_from_slice(itoa::Buffer::new().format(a.user).as_bytes());
        out.extend_from_slice(&self.tails[e]);
        self.head_method[e]
    }
}

/// What the driver keeps of a response head.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Head {
    /// Status code.
    pub(crate) status: u16,
    /// A `RateLimit-Policy` header was present.
    pub(crate) has_policy: bool,
    /// The connection must be closed after this response.
    pub(crate) close: bool,
    /// `Keep-Alive: timeout=N`: the server closes the idle connection after N seconds.
    pub(crate) keep_alive: Option<u32>,
    /// How the body is framed.
    pub(crate) body: Body,
}

/// How much body follows a head, and how far reading it has come.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Body {
    /// This many bytes are left.
    Length(u64),
    /// A chunked body, in this state.
    Chunked(Chunk),
    /// Everything until the server closes the connection.
    UntilClose,
}

/// Where a chunked body's reader is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Chunk {
    /// At a chunk-size line.
    Size,
    /// Inside chunk data, this many bytes left.
    Data(u64),
    /// At the CRLF after chunk data.
    DataEnd,
    /// In the trailer section, this many bytes read so far.
    Trailers(usize),
    /// Complete.
    Done,
}

/// Parses the response head at the front of `buf` and removes it; `Ok(None)` while
/// more bytes are needed. Interim `1xx` responses are skipped. `to_head` says the
/// request was a `HEAD` (no body, whatever the head says).
pub(crate) fn parse_head(buf: &mut BytesMut, to_head: bool) -> Result<Option<Head>, WireError> {
    loop {
        let mut slots = [const { MaybeUninit::<httparse::Header<'_>>::uninit() }; MAX_HEADERS];
        let mut res = httparse::Response::new(&mut []);
        let len = match httparse::ParserConfig::default()
            .parse_response_with_uninit_headers(&mut res, buf, &mut slots)
        {
            Ok(httparse::Status::Complete(len)) if len <= MAX_HEAD => len,
            Ok(httparse::Status::Partial) if buf.len() <= MAX_HEAD => return Ok(None),
            Ok(_) => return Err(WireError::HeadTooLarge),
            Err(_) => return Err(WireError::Head),
        };
        let status = res.code.ok_or(WireError::Head)?;
        if status == 101 {
            return Err(WireError::Upgrade);
        }
        if (100..200).contains(&status) {
            buf.advance(len);
            continue;
        }
        let mut head = framing(res.headers, status, res.version == Some(1), to_head)?;
        if matches!(head.body, Body::UntilClose) {
            head.close = true;
        }
        buf.advance(len);
        return Ok(Some(head));
    }
}

/// The framing a head's headers choose (RFC 9112 §6.3), strictly: several differing
/// `Content-Length`s, or `Transfer-Encoding` not ending in `chunked`, are errors.
fn framing(
    headers: &[httparse::Header<'_>],
    status: u16,
    http11: bool,
    to_head: bool,
) -> Result<Head, WireError> {
    let mut length: Option<u64> = None;
    let mut chunked = false;
    let mut coded = false;
    let mut close = !http11;
    let mut has_policy = false;
    let mut keep_alive = None;
    for h in headers {
        let name = h.name;
        if name.eq_ignore_ascii_case("content-length") {
            let n = std::str::from_utf8(h.value)
                .ok()
                .and_then(|v| v.trim().parse::<u64>().ok())
                .ok_or(WireError::ContentLength)?;
            if length.is_some_and(|l| l != n) {
                return Err(WireError::ContentLength);
            }
            length = Some(n);
        } else if name.eq_ignore_ascii_case("transfer-encoding") {
            coded = true;
            let last = h.value.rsplit(|&b| b == b',').next().unwrap_or_default();
            chunked = last.trim_ascii().eq_ignore_ascii_case(b"chunked");
        } else if name.eq_ignore_ascii_case("connection") {
            for token in h.value.split(|&b| b == b',') {
                let token = token.trim_ascii();
                if token.eq_ignore_ascii_case(b"close") {
                    close = true;
                } else if token.eq_ignore_ascii_case(b"keep-alive") && !http11 {
                    close = false;
                }
            }
        } else if name.eq_ignore_ascii_case("ratelimit-policy") {
            has_policy = true;
        } else if name.eq_ignore_ascii_case("keep-alive") {
            keep_alive = idle_timeout(h.value);
        }
    }
    let body = if to_head || status == 204 || status == 304 {
        Body::Length(0)
    } else if coded {
        if !chunked || length.is_some() {
            return Err(WireError::TransferEncoding);
        }
        Body::Chunked(Chunk::Size)
    } else {
        length.map_or(Body::UntilClose, Body::Length)
    };
    Ok(Head {
        status,
        has_policy,
        close,
        keep_alive,
        body,
    })
}

/// The `timeout=N` parameter of a `Keep-Alive` value (RFC 2068 §19.7.1.1).
fn idle_timeout(value: &[u8]) -> Option<u32> {
    value.split(|&b| b == b',').find_map(|param| {
        let (name, n) = std::str::from_utf8(param).ok()?.split_once('=')?;
        name.trim()
            .eq_ignore_ascii_case("timeout")
            .then(|| n.trim().parse().ok())?
    })
}

impl Body {
    /// Removes from `buf` as much of the body as it holds; `Ok(true)` once the body is
    /// complete. A body that runs until close is complete only by [`Body::closed`].
    pub(crate) fn consume(&mut self, buf: &mut BytesMut) -> Result<bool, WireError> {
        match self {
            Body::Length(n) => {
                let take = usize::try_from(*n).unwrap_or(usize::MAX).min(buf.len());
                buf.advance(take);
                *n -= take as u64;
                Ok(*n == 0)
            }
            Body::UntilClose => {
                buf.clear();
                Ok(false)
            }
            Body::Chunked(state) => consume_chunks(state, buf),
        }
    }

    /// The server closed the connection: complete for a body that runs until then.
    pub(crate) fn closed(&self) -> bool {
        matches!(
            self,
            Body::UntilClose | Body::Length(0) | Body::Chunked(Chunk::Done)
        )
    }
}

/// The position of the first CRLF in `buf`, or an error when a line grows past the
/// limit without one.
fn line_end(buf: &[u8]) -> Result<Option<usize>, WireError> {
    match buf.windows(2).position(|w| w == b"\r\n") {
        Some(at) if at <= MAX_CHUNK_LINE => Ok(Some(at)),
        Some(_) => Err(WireError::Chunked),
        None if buf.len() > MAX_CHUNK_LINE => Err(WireError::Chunked),
        None => Ok(None),
    }
}

/// Reads chunks out of `buf`; `Ok(true)` once the last chunk and trailers are read.
fn consume_chunks(state: &mut Chunk, buf: &mut BytesMut) -> Result<bool, WireError> {
    loop {
        match *state {
            Chunk::Size => {
                let Some(at) = line_end(buf)? else {
                    return Ok(false);
                };
                let line = &buf[..at];
                let digits = line.split(|&b| b == b';').next().unwrap_or_default();
                let digits =
                    std::str::from_utf8(digits.trim_ascii_end()).map_err(|_| WireError::Chunked)?;
                if digits.is_empty() || digits.len() > 15 {
                    return Err(WireError::Chunked);
                }
                let size = u64::from_str_radix(digits, 16).map_err(|_| WireError::Chunked)?;
                buf.advance(at + 2);
                *state = if size == 0 {
                    Chunk::Trailers(0)
                } else {
                    Chunk::Data(size)
                };
            }
            Chunk::Data(n) => {
                let take = usize::try_from(n).unwrap_or(usize::MAX).min(buf.len());
                buf.advance(take);
                if take as u64 == n {
                    *state = Chunk::DataEnd;
                } else {
                    *state = Chunk::Data(n - take as u64);
                    return Ok(false);
                }
            }
            Chunk::DataEnd => {
                if buf.len() < 2 {
                    return Ok(false);
                }
                if &buf[..2] != b"\r\n" {
                    return Err(WireError::Chunked);
                }
                buf.advance(2);
                *state = Chunk::Size;
            }
            Chunk::Trailers(seen) => {
                let Some(at) = line_end(buf)? else {
                    return Ok(false);
                };
                if seen + at > MAX_CHUNK_LINE {
                    return Err(WireError::Chunked);
                }
                buf.advance(at + 2);
                *state = if at == 0 {
                    Chunk::Done
                } else {
                    Chunk::Trailers(seen + at + 2)
                };
            }
            Chunk::Done => return Ok(true),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::workload::Workload;

    fn read(bytes: &[u8], to_head: bool) -> Result<Option<(Head, bool, usize)>, WireError> {
        let mut buf = BytesMut::from(bytes);
        let Some(mut head) = parse_head(&mut buf, to_head)? else {
            return Ok(None);
        };
        let done = head.body.consume(&mut buf)?;
        Ok(Some((head, done, buf.len())))
    }

    #[test]
    fn lengths_and_statuses() {
        let (h, done, left) = read(b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nabcX", false)
            .unwrap()
            .unwrap();
        assert_eq!(
            (h.status, h.has_policy, h.close, done, left),
            (200, false, false, true, 1)
        );
        let (h, done, _) = read(
            b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 429 Too Many\r\nRateLimit-Policy: \"p\";q=1\r\ncontent-length: 5\r\nConnection: keep-alive, close\r\n\r\nab",
            false,
        )
        .unwrap()
        .unwrap();
        assert_eq!(
            (h.status, h.has_policy, h.close, done),
            (429, true, true, false)
        );
        assert_eq!(h.body, Body::Length(3));
        let (h, done, left) = read(b"HTTP/1.1 200 OK\r\nContent-Length: 9\r\n\r\n", true)
            .unwrap()
            .unwrap();
        assert_eq!((h.body, done, left), (Body::Length(0), true, 0));
        let (h, done, _) = read(b"HTTP/1.0 200 OK\r\n\r\nbody", false)
            .unwrap()
            .unwrap();
        assert_eq!((h.close, done, h.body.closed()), (true, false, true));
        assert_eq!(read(b"HTTP/1.1 200 OK\r\nContent-Le", false), Ok(None));
    }

    #[test]
    fn bad_framing_is_refused() {
        for bytes in [
            &b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\n"[..],
            b"HTTP/1.1 200 OK\r\nContent-Length: x\r\n\r\n",
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\n",
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nContent-Length: 3\r\n\r\n",
            b"HTTP/1.1 101 Switching\r\n\r\n",
            b"HTTP/1.1 2000 OK\r\n\r\n",
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n1\r\naXY",
        ] {
            assert!(
                read(bytes, false).is_err(),
                "{:?}",
                String::from_utf8_lossy(bytes)
            );
        }
        let mut huge = b"HTTP/1.1 200 OK\r\nx: ".to_vec();
        huge.resize(MAX_HEAD + 10, b'a');
        assert_eq!(read(&huge, false), Err(WireError::HeadTooLarge));
    }

    #[test]
    fn chunked_bodies_arrive_in_pieces() {
        let whole: &[u8] = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\n\r\n4;ext=1\r\nabcd\r\n10\r\n0123456789abcdef\r\n0\r\nTrailer: x\r\n\r\nNEXT";
        // Fed a byte at a time, the body completes exactly at its end.
        let mut buf = BytesMut::new();
        let mut head = None;
        let mut done_at = None;
        for (n, b) in whole.iter().enumerate() {
            buf.extend_from_slice(&[*b]);
            if head.is_none() {
                head = parse_head(&mut buf, false).unwrap();
                continue;
            }
            if let Some(h) = head.as_mut()
                && done_at.is_none()
                && h.body.consume(&mut buf).unwrap()
            {
                done_at = Some(n);
            }
        }
        assert_eq!(done_at, Some(whole.len() - 5));
        assert_eq!(&buf[..], b"NEXT");
    }

    #[test]
    fn requests_are_rendered_from_prepared_parts() {
        let text = r#"
[users]
count = 3
[[phase]]
name = "p"
duration = "1s"
rate = 20
[[endpoint]]
path = "POST /api/orders/{id}"
limit = 1
window = "1s"
"#;
        let w = Workload::parse(text, "w.toml", "w").unwrap();
        let plan = LoadPlan::new(w, 1).unwrap();
        let requests = Requests::new(&plan, "127.0.0.1:9");
        let mut out = Vec::new();
        assert!(!requests.write(&plan, 3, &mut out));
        let spec = plan.request(3);
        let expected = format!(
            "POST {} HTTP/1.1\r\nhost: 127.0.0.1:9\r\n{USER_HEADER}: {}\r\ncontent-type: application/json\r\ncontent-length: 2\r\n\r\n{{}}",
            spec.path, spec.user
        );
        assert_eq!(String::from_utf8(out).unwrap(), expected);
    }
}
