//! The request going out: its head (request line, headers, one framing of the hop's
//! own) and, for a body of unknown length, its chunks.

use http::header::{self, HeaderMap};
use http::{Method, Uri};

/// How a request body goes on the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RequestFraming {
    /// No body (no framing header, or `content-length: 0` for methods that carry one).
    Empty,
    /// `content-length: n`, exactly `n` bytes.
    Length(u64),
    /// `transfer-encoding: chunked`, for a body of unknown length.
    Chunked,
}

impl RequestFraming {
    /// The framing for a body that is already at its end (`done`), else has `exact`
    /// length if known.
    pub fn of(done: bool, exact: Option<u64>) -> Self {
        match (done, exact) {
            (true, _) | (false, Some(0)) => Self::Empty,
            (false, Some(n)) => Self::Length(n),
            (false, None) => Self::Chunked,
        }
    }
}

/// Appends the request head to `out`: request line, `headers` (less any framing headers
/// of the client's; framing is per hop), the framing header, the blank line.
///
/// `http`'s types cannot hold CR or LF in a path or header value, so nothing here can
/// split the request.
pub fn write_request_head(
    out: &mut Vec<u8>,
    method: &Method,
    uri: &Uri,
    headers: &HeaderMap,
    framing: RequestFraming,
) {
    out.extend_from_slice(method.as_str().as_bytes());
    out.push(b' ');
    let target = uri.path_and_query().map_or("/", |p| p.as_str());
    out.extend_from_slice(if target.is_empty() {
        b"/"
    } else {
        target.as_bytes()
    });
    out.extend_from_slice(b" HTTP/1.1\r\n");
    for (name, value) in headers {
        if name == header::CONTENT_LENGTH || name == header::TRANSFER_ENCODING {
            continue;
        }
        out.extend_from_slice(name.as_str().as_bytes());
        out.extend_from_slice(b": ");
        out.extend_from_slice(value.as_bytes());
        out.extend_from_slice(b"\r\n");
    }
    match framing {
        RequestFraming::Empty if carries_body(method) => {
            out.extend_from_slice(b"content-length: 0\r\n");
        }
        RequestFraming::Empty => {}
        RequestFraming::Length(n) => {
            out.extend_from_slice(b"content-length: ");
            out.extend_from_slice(itoa::Buffer::new().format(n).as_bytes());
            out.extend_from_slice(b"\r\n");
        }
        RequestFraming::Chunked => out.extend_from_slice(b"transfer-encoding: chunked\r\n"),
    }
    out.extend_from_slice(b"\r\n");
}

/// Methods whose requests normally have a body: an empty one is sent as
/// `content-length: 0`, as hyper does, so the backend need not wait for one.
fn carries_body(method: &Method) -> bool {
    !matches!(
        *method,
        Method::GET
            | Method::HEAD
            | Method::DELETE
            | Method::OPTIONS
            | Method::CONNECT
            | Method::TRACE
    )
}

/// Appends one chunk of a chunked request body to `out`.
pub fn write_chunk(out: &mut Vec<u8>, data: &[u8]) {
    if data.is_empty() {
        // An empty chunk would end the body.
        return;
    }
    out.extend_from_slice(format_hex(data.len()).as_ref());
    out.extend_from_slice(b"\r\n");
    out.extend_from_slice(data);
    out.extend_from_slice(b"\r\n");
}

/// The end of a chunked request body (no trailers).
pub const LAST_CHUNK: &[u8] = b"0\r\n\r\n";

fn format_hex(mut n: usize) -> HexBuf {
    let mut buf = [0u8; 16];
    let mut at = buf.len();
    loop {
        at -= 1;
        buf[at] = b"0123456789abcdef"[n & 0xf];
        n >>= 4;
        if n == 0 || at == 0 {
            break;
        }
    }
    HexBuf { buf, at }
}

struct HexBuf {
    buf: [u8; 16],
    at: usize,
}

impl AsRef<[u8]> for HexBuf {
    fn as_ref(&self) -> &[u8] {
        &self.buf[self.at..]
    }
}
