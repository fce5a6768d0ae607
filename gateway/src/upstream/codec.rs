//! HTTP/1.1 framing for the backend hop (RFC 9112): request heads out, response heads
//! and bodies in.
//!
//! Pure functions over buffers, so every framing rule is tested byte by byte without a
//! socket. Response heads are parsed by `httparse` (hyper's own parser); header values
//! are slices of the one buffer the head was read into, as in hyper, so a response head
//! costs one `HeaderMap` and no copy per value.
//!
//! Deliberately strict, since a proxy that guesses at framing can be made to split or
//! join messages: a response with `Transfer-Encoding` other than exactly `chunked`,
//! with conflicting `Content-Length` values, or with a malformed chunk is an error
//! (`502` for the client), never a guess.

use std::mem::MaybeUninit;
use std::ops::Range;

use bytes::{Buf, Bytes, BytesMut};
use http::header::{self, HeaderMap, HeaderName, HeaderValue};
use http::{Method, StatusCode, Uri};
use smallvec::SmallVec;

/// The largest response head accepted (hyper's client allows about 400 KiB; a backend
/// that needs more than this is misbehaving).
pub const MAX_HEAD: usize = 64 * 1024;
/// The most header lines accepted in a response head (hyper's default).
pub const MAX_HEADERS: usize = 100;
/// The longest chunk-size line (size and extensions) accepted.
const MAX_CHUNK_LINE: usize = 4 * 1024;
/// The most trailer bytes accepted after a chunked body (trailers are not forwarded).
const MAX_TRAILERS: usize = 16 * 1024;

/// A response from the backend that breaks HTTP/1.1's framing rules.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProtocolError {
    /// The head did not end within [`MAX_HEAD`] bytes.
    #[error("response head longer than {MAX_HEAD} bytes")]
    HeadTooLarge,
    /// `httparse` rejected the head (bad status line, header syntax, too many headers).
    #[error("malformed response head: {0}")]
    Head(httparse::Error),
    /// A header name or value the `http` crate does not accept.
    #[error("invalid header in response head")]
    Header,
    /// `Content-Length` not a number, or several that disagree.
    #[error("invalid or conflicting content-length in response")]
    ContentLength,
    /// `Transfer-Encoding` other than exactly `chunked`.
    #[error("unsupported transfer-encoding in response: only chunked is accepted")]
    TransferEncoding,
    /// `101 Switching Protocols`, or a tunnel: the gateway does not forward upgrades.
    #[error("the backend switched protocols, which the gateway does not forward")]
    Upgrade,
    /// A chunked body that breaks the chunk syntax.
    #[error("malformed chunked body: {0}")]
    Chunked(&'static str),
    /// The connection closed before the message was complete.
    #[error("the backend closed the connection mid-response")]
    Incomplete,
}

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

/// A response head and how its body is framed.
#[derive(Debug)]
pub struct ResponseHead {
    /// Status and headers (`Transfer-Encoding` removed: the body reaches the client
    /// de-chunked, framed again by the client-side connection).
    pub parts: http::response::Parts,
    /// How to read the body that follows.
    pub body: BodyDecoder,
    /// Whether the connection may carry another request once the body is read.
    pub keep_alive: bool,
}

/// Parses the response head at the front of `buf` and removes it; `Ok(None)` while
/// more bytes are needed. Interim `1xx` responses before it are removed and skipped.
/// `method` is the request's: a response to `HEAD` has no body whatever it says.
pub fn parse_response_head(
    buf: &mut BytesMut,
    method: &Method,
) -> Result<Option<ResponseHead>, ProtocolError> {
    loop {
        let mut slots = [const { MaybeUninit::<httparse::Header<'_>>::uninit() }; MAX_HEADERS];
        let mut res = httparse::Response::new(&mut []);
        let len = match httparse::ParserConfig::default()
            .parse_response_with_uninit_headers(&mut res, buf, &mut slots)
        {
            Ok(httparse::Status::Complete(len)) if len <= MAX_HEAD => len,
            Ok(httparse::Status::Complete(_)) => return Err(ProtocolError::HeadTooLarge),
            Ok(httparse::Status::Partial) if buf.len() > MAX_HEAD => {
                return Err(ProtocolError::HeadTooLarge);
            }
            Ok(httparse::Status::Partial) => return Ok(None),
            Err(e) => return Err(ProtocolError::Head(e)),
        };
        let code = res
            .code
            .ok_or(ProtocolError::Head(httparse::Error::Status))?;
        let status =
            StatusCode::from_u16(code).map_err(|_| ProtocolError::Head(httparse::Error::Status))?;
        if status.is_informational() {
            if status == StatusCode::SWITCHING_PROTOCOLS {
                return Err(ProtocolError::Upgrade);
            }
            buf.advance(len);
            continue;
        }
        let http11 = res.version == Some(1);
        // Where each name and value sits in `buf`, so that the values can be slices of
        // one shared buffer once `res` no longer borrows it.
        let base = buf.as_ptr() as usize;
        let span = |s: &[u8]| {
            let start = s.as_ptr() as usize - base;
            start..start + s.len()
        };
        // Inline for a usual head: nothing to allocate or clear per response.
        let at: SmallVec<[(Range<usize>, Range<usize>); 24]> = res
            .headers
            .iter()
            .map(|h| (span(h.name.as_bytes()), span(h.value)))
            .collect();
        let head = buf.split_to(len).freeze();
        return build_head(&head, &at, status, http11, method).map(Some);
    }
}

/// The parts and framing of a parsed head whose header lines sit at `at` in `head`.
fn build_head(
    head: &Bytes,
    at: &[(Range<usize>, Range<usize>)],
    status: StatusCode,
    http11: bool,
    method: &Method,
) -> Result<ResponseHead, ProtocolError> {
    // Room for the headers the gateway adds on the way back (the five rate-limit
    // headers), so that adding them does not grow the map.
    let mut headers = HeaderMap::with_capacity(at.len() + 6);
    let mut length: Option<u64> = None;
    let mut chunked = false;
    let mut encoded = false;
    let mut close = !http11;
    for (name, value) in at {
        let name =
            HeaderName::from_bytes(&head[name.clone()]).map_err(|_| ProtocolError::Header)?;
        let value = HeaderValue::from_maybe_shared(head.slice(value.clone()))
            .map_err(|_| ProtocolError::Header)?;
        if name == header::CONTENT_LENGTH {
            for n in value.as_bytes().split(|&b| b == b',') {
                let n = parse_length(n.trim_ascii()).ok_or(ProtocolError::ContentLength)?;
                if length.is_some_and(|prev| prev != n) {
                    return Err(ProtocolError::ContentLength);
                }
                length = Some(n);
            }
        } else if name == header::TRANSFER_ENCODING {
            for coding in value.as_bytes().split(|&b| b == b',') {
                let coding = coding.trim_ascii();
                if coding.is_empty() {
                    continue;
                }
                if chunked || !coding.eq_ignore_ascii_case(b"chunked") {
                    // Chunked twice, or any other coding: nothing we can frame safely.
                    return Err(ProtocolError::TransferEncoding);
                }
                chunked = true;
            }
            encoded = true;
            continue;
        } else if name == header::CONNECTION {
            close |= has_token(value.as_bytes(), b"close");
        }
        headers.append(name, value);
    }
    if encoded && !chunked {
        return Err(ProtocolError::TransferEncoding);
    }
    let body = if *method == Method::HEAD
        || status == StatusCode::NO_CONTENT
        || status == StatusCode::NOT_MODIFIED
    {
        BodyDecoder::Length(0)
    } else if *method == Method::CONNECT && status.is_success() {
        return Err(ProtocolError::Upgrade);
    } else if chunked {
        if length.is_some() {
            // Both: chunked wins (RFC 9112 §6.3), the length goes, and so does the
            // connection, which such a message may have desynchronised.
            headers.remove(header::CONTENT_LENGTH);
            close = true;
        }
        BodyDecoder::Chunked(Chunked::default())
    } else if let Some(n) = length {
        BodyDecoder::Length(n)
    } else {
        close = true;
        BodyDecoder::UntilClose
    };
    let mut parts = http::Response::new(()).into_parts().0;
    parts.status = status;
    parts.headers = headers;
    Ok(ResponseHead {
        parts,
        keep_alive: !close && !matches!(body, BodyDecoder::UntilClose),
        body,
    })
}

/// A `Content-Length` value: 1 to 19 decimal digits (so it fits a `u64`), nothing else.
fn parse_length(digits: &[u8]) -> Option<u64> {
    if digits.is_empty() || digits.len() > 19 || !digits.iter().all(u8::is_ascii_digit) {
        return None;
    }
    Some(digits.iter().fold(0, |n, d| n * 10 + u64::from(d - b'0')))
}

/// Whether a comma-separated header value lists `token` (case-insensitive).
fn has_token(value: &[u8], token: &[u8]) -> bool {
    value
        .split(|&b| b == b',')
        .any(|t| t.trim_ascii().eq_ignore_ascii_case(token))
}

/// What [`BodyDecoder::decode`] found in the buffer.
#[derive(Debug, PartialEq, Eq)]
pub enum Decoded {
    /// Body bytes (never empty).
    Data(Bytes),
    /// The body is complete.
    End,
    /// More bytes must be read first.
    NeedMore,
}

/// Reads a response body out of the connection's buffer, in whichever framing its head
/// chose. Data comes out as slices of the buffer, not copies.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BodyDecoder {
    /// This many bytes are left.
    Length(u64),
    /// A chunked body, mid-way.
    Chunked(Chunked),
    /// Everything until the backend closes the connection.
    UntilClose,
}

impl BodyDecoder {
    /// True once the body is complete.
    pub fn is_done(&self) -> bool {
        match self {
            Self::Length(n) => *n == 0,
            Self::Chunked(c) => c.state == State::Done,
            Self::UntilClose => false,
        }
    }

    /// The bytes left, when known.
    pub fn remaining(&self) -> Option<u64> {
        match self {
            Self::Length(n) => Some(*n),
            Self::Chunked(c) if c.state == State::Done => Some(0),
            _ => None,
        }
    }

    /// Takes the next piece of body out of `buf`.
    pub fn decode(&mut self, buf: &mut BytesMut) -> Result<Decoded, ProtocolError> {
        match self {
            Self::Length(0) => Ok(Decoded::End),
            Self::Length(_) | Self::UntilClose if buf.is_empty() => Ok(Decoded::NeedMore),
            Self::Length(n) => {
                let take = usize::try_from(*n).unwrap_or(usize::MAX).min(buf.len());
                *n -= take as u64;
                Ok(Decoded::Data(buf.split_to(take).freeze()))
            }
            Self::UntilClose => Ok(Decoded::Data(buf.split().freeze())),
            Self::Chunked(c) => c.decode(buf),
        }
    }

    /// The connection closed: fine for a body that runs until then (it is now done),
    /// an error for any other that is not complete.
    pub fn closed(&mut self) -> Result<(), ProtocolError> {
        match self {
            Self::UntilClose => {
                *self = Self::Length(0);
                Ok(())
            }
            _ if self.is_done() => Ok(()),
            _ => Err(ProtocolError::Incomplete),
        }
    }
}

/// The state of a chunked body being decoded (RFC 9112 §7.1).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Chunked {
    state: State,
    /// Bytes of the current chunk-size line, or of all trailers.
    seen: usize,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
enum State {
    /// Hex digits of a chunk size; `digits` so far.
    #[default]
    SizeStart,
    Size {
        size: u64,
        digits: u8,
    },
    /// Whitespace or extensions after the size, up to CR.
    Extension {
        size: u64,
    },
    SizeLf {
        size: u64,
    },
    Data {
        left: u64,
    },
    DataCr,
    DataLf,
    /// The start of a trailer line, or of the final CRLF.
    TrailerStart,
    Trailer,
    TrailerLf,
    EndLf,
    Done,
}

impl Chunked {
    fn decode(&mut self, buf: &mut BytesMut) -> Result<Decoded, ProtocolError> {
        loop {
            if let State::Data { left } = self.state {
                if buf.is_empty() {
                    return Ok(Decoded::NeedMore);
                }
                let take = usize::try_from(left).unwrap_or(usize::MAX).min(buf.len());
                let left = left - take as u64;
                self.state = if left == 0 {
                    State::DataCr
                } else {
                    State::Data { left }
                };
                let data = buf.split_to(take).freeze();
                self.settle(buf);
                return Ok(Decoded::Data(data));
            }
            if self.state == State::Done {
                return Ok(Decoded::End);
            }
            let Some(&b) = buf.first() else {
                return Ok(Decoded::NeedMore);
            };
            buf.advance(1);
            self.state = self.step(b)?;
        }
    }

    /// Consumes the control bytes (chunk ends, sizes, the last chunk) already buffered
    /// after a piece of data, so that a body whose end has arrived says so with its last
    /// data, and its connection can be reused at once. Stops before a byte in error,
    /// which the next `decode` reports.
    fn settle(&mut self, buf: &mut BytesMut) {
        while !matches!(self.state, State::Data { .. } | State::Done) {
            let Some(&b) = buf.first() else { return };
            let seen = self.seen;
            match self.step(b) {
                Ok(state) => {
                    buf.advance(1);
                    self.state = state;
                }
                Err(_) => {
                    self.seen = seen;
                    return;
                }
            }
        }
    }

    /// The state after control byte `b`.
    fn step(&mut self, b: u8) -> Result<State, ProtocolError> {
        let bad = ProtocolError::Chunked;
        // The one byte this state accepts, and the state it leads to.
        let expect = |want: u8, next: State, why| if b == want { Ok(next) } else { Err(bad(why)) };
        Ok(match self.state {
            State::SizeStart => match hex(b) {
                Some(d) => {
                    self.seen = 1;
                    State::Size {
                        size: u64::from(d),
                        digits: 1,
                    }
                }
                None => return Err(bad("chunk size missing")),
            },
            State::Size { size, digits } => {
                self.seen += 1;
                match (hex(b), b) {
                    (Some(_), _) if digits == 16 => return Err(bad("chunk size too large")),
                    (Some(d), _) => State::Size {
                        size: size << 4 | u64::from(d),
                        digits: digits + 1,
                    },
                    (None, b'\r') => State::SizeLf { size },
                    (None, b';' | b' ' | b'\t') => State::Extension { size },
                    _ => return Err(bad("invalid byte in chunk size")),
                }
            }
            State::Extension { size } => {
                self.seen += 1;
                if self.seen > MAX_CHUNK_LINE {
                    return Err(bad("chunk extensions too long"));
                }
                match b {
                    b'\r' => State::SizeLf { size },
                    b'\n' => return Err(bad("bare LF in chunk extension")),
                    _ => State::Extension { size },
                }
            }
            State::SizeLf { size } => match b {
                b'\n' if size == 0 => {
                    self.seen = 0;
                    State::TrailerStart
                }
                b'\n' => State::Data { left: size },
                _ => return Err(bad("expected LF after chunk size")),
            },
            State::DataCr => expect(b'\r', State::DataLf, "chunk data longer than its size")?,
            State::DataLf => expect(b'\n', State::SizeStart, "expected LF after chunk data")?,
            State::TrailerStart => match b {
                b'\r' => State::EndLf,
                _ => self.trailer_byte(b)?,
            },
            State::Trailer => match b {
                b'\r' => State::TrailerLf,
                _ => self.trailer_byte(b)?,
            },
            State::TrailerLf => expect(b'\n', State::TrailerStart, "expected LF after trailer")?,
            State::EndLf => expect(b'\n', State::Done, "expected LF at end of body")?,
            // Not control states: `decode` handles them without calling this.
            State::Data { .. } | State::Done => self.state,
        })
    }

    fn trailer_byte(&mut self, b: u8) -> Result<State, ProtocolError> {
        self.seen += 1;
        if self.seen > MAX_TRAILERS {
            return Err(ProtocolError::Chunked("trailers too long"));
        }
        if b == b'\n' {
            return Err(ProtocolError::Chunked("bare LF in trailer"));
        }
        Ok(State::Trailer)
    }
}

fn hex(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn head(method: &Method, headers: &[(&str, &str)], framing: RequestFraming) -> String {
        let mut map = HeaderMap::new();
        for (k, v) in headers {
            map.append(
                HeaderName::from_bytes(k.as_bytes()).unwrap(),
                HeaderValue::from_str(v).unwrap(),
            );
        }
        let mut out = Vec::new();
        write_request_head(
            &mut out,
            method,
            &Uri::from_static("/a/b?c=d"),
            &map,
            framing,
        );
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn request_heads_carry_one_framing_of_their_own() {
        assert_eq!(
            head(
                &Method::GET,
                &[("host", "b"), ("x-user-id", "u1")],
                RequestFraming::Empty
            ),
            "GET /a/b?c=d HTTP/1.1\r\nhost: b\r\nx-user-id: u1\r\n\r\n"
        );
        // The client's framing headers never pass: the hop's own replace them.
        let client = [
            ("host", "b"),
            ("content-length", "99"),
            ("transfer-encoding", "chunked"),
        ];
        assert_eq!(
            head(&Method::POST, &client, RequestFraming::Length(12)),
            "POST /a/b?c=d HTTP/1.1\r\nhost: b\r\ncontent-length: 12\r\n\r\n"
        );
        assert_eq!(
            head(&Method::PUT, &client, RequestFraming::Chunked),
            "PUT /a/b?c=d HTTP/1.1\r\nhost: b\r\ntransfer-encoding: chunked\r\n\r\n"
        );
        assert_eq!(
            head(&Method::POST, &[], RequestFraming::Empty),
            "POST /a/b?c=d HTTP/1.1\r\ncontent-length: 0\r\n\r\n"
        );
        assert_eq!(
            head(&Method::DELETE, &[], RequestFraming::Empty),
            "DELETE /a/b?c=d HTTP/1.1\r\n\r\n"
        );
        assert_eq!(RequestFraming::of(true, Some(5)), RequestFraming::Empty);
        assert_eq!(RequestFraming::of(false, Some(0)), RequestFraming::Empty);
        assert_eq!(
            RequestFraming::of(false, Some(5)),
            RequestFraming::Length(5)
        );
        assert_eq!(RequestFraming::of(false, None), RequestFraming::Chunked);
    }

    #[test]
    fn chunks_are_sized_in_hex() {
        for (len, size) in [(1, "1"), (15, "f"), (16, "10"), (255, "ff"), (4096, "1000")] {
            let mut out = Vec::new();
            write_chunk(&mut out, &vec![b'x'; len]);
            let expect = format!("{size}\r\n{}\r\n", "x".repeat(len));
            assert_eq!(out, expect.as_bytes());
        }
        let mut out = Vec::new();
        write_chunk(&mut out, b"");
        assert!(out.is_empty(), "an empty chunk would end the body");
    }

    fn parse(raw: &str, method: &Method) -> Result<Option<ResponseHead>, ProtocolError> {
        parse_response_head(&mut BytesMut::from(raw.as_bytes()), method)
    }

    fn parsed(raw: &str) -> ResponseHead {
        parse(raw, &Method::GET).unwrap().unwrap()
    }

    #[test]
    fn a_head_is_parsed_and_removed_from_the_buffer() {
        let raw = "HTTP/1.1 201 Created\r\ncontent-length: 2\r\nx-a: 1\r\nx-a: 2\r\n\r\nok";
        let mut buf = BytesMut::from(raw.as_bytes());
        let head = parse_response_head(&mut buf, &Method::GET)
            .unwrap()
            .unwrap();
        assert_eq!(head.parts.status, 201);
        assert_eq!(head.parts.headers["content-length"], "2");
        let xa: Vec<_> = head.parts.headers.get_all("x-a").iter().collect();
        assert_eq!(xa, ["1", "2"]);
        assert_eq!(head.body, BodyDecoder::Length(2));
        assert!(head.keep_alive);
        assert_eq!(&buf[..], b"ok");
    }

    #[test]
    fn a_head_split_anywhere_waits_for_the_rest() {
        let raw = b"HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\ncontent-length: 5\r\n\r\nhello";
        let end = raw.len() - 5;
        for split in 0..end {
            let mut buf = BytesMut::from(&raw[..split]);
            assert!(
                parse_response_head(&mut buf, &Method::GET)
                    .unwrap()
                    .is_none(),
                "{split}"
            );
            assert_eq!(buf.len(), split, "nothing consumed at {split}");
            buf.extend_from_slice(&raw[split..]);
            let head = parse_response_head(&mut buf, &Method::GET)
                .unwrap()
                .unwrap();
            assert_eq!(head.parts.headers["content-type"], "text/plain");
            assert_eq!(&buf[..], b"hello");
        }
    }

    #[test]
    fn interim_answers_are_skipped_and_upgrades_refused() {
        let head = parsed(
            "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early Hints\r\nlink: </a>\r\n\r\nHTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n",
        );
        assert_eq!(head.parts.status, 200);
        assert!(head.parts.headers.get("link").is_none());
        // An interim answer alone: wait for the final one.
        assert!(
            parse("HTTP/1.1 100 Continue\r\n\r\n", &Method::GET)
                .unwrap()
                .is_none()
        );
        assert_eq!(
            parse(
                "HTTP/1.1 101 Switching Protocols\r\nupgrade: websocket\r\n\r\n",
                &Method::GET
            )
            .unwrap_err(),
            ProtocolError::Upgrade
        );
        assert_eq!(
            parse("HTTP/1.1 200 OK\r\n\r\n", &Method::CONNECT).unwrap_err(),
            ProtocolError::Upgrade
        );
    }

    #[test]
    fn bodiless_answers_have_no_body_whatever_they_declare() {
        let with_length = "HTTP/1.1 200 OK\r\ncontent-length: 50\r\n\r\n";
        let head = parse(with_length, &Method::HEAD).unwrap().unwrap();
        assert_eq!(head.body, BodyDecoder::Length(0));
        // The length stays: it is what a GET would have had.
        assert_eq!(head.parts.headers["content-length"], "50");
        for status in ["204 No Content", "304 Not Modified"] {
            let head = parsed(&format!("HTTP/1.1 {status}\r\ncontent-length: 50\r\n\r\n"));
            assert!(head.body.is_done(), "{status}");
            assert!(head.keep_alive);
        }
    }

    #[test]
    fn framing_follows_rfc_9112() {
        let head = parsed("HTTP/1.1 200 OK\r\nTransfer-Encoding: Chunked\r\n\r\n");
        assert!(matches!(head.body, BodyDecoder::Chunked(_)));
        assert!(
            head.parts.headers.get("transfer-encoding").is_none(),
            "re-framed per hop"
        );
        assert!(head.keep_alive);
        // Both: chunked wins, the length goes, and so does the connection.
        let head =
            parsed("HTTP/1.1 200 OK\r\ncontent-length: 3\r\ntransfer-encoding: chunked\r\n\r\n");
        assert!(matches!(head.body, BodyDecoder::Chunked(_)));
        assert!(head.parts.headers.get("content-length").is_none());
        assert!(!head.keep_alive);
        // Repeated equal lengths are one length.
        assert_eq!(
            parsed("HTTP/1.1 200 OK\r\ncontent-length: 5, 5\r\ncontent-length: 5\r\n\r\n").body,
            BodyDecoder::Length(5)
        );
        // No framing: the body runs until the close, and the connection ends with it.
        let head = parsed("HTTP/1.1 200 OK\r\n\r\n");
        assert_eq!(head.body, BodyDecoder::UntilClose);
        assert!(!head.keep_alive);
        // Closes announced, or implied by HTTP/1.0.
        assert!(
            !parsed(
                "HTTP/1.1 200 OK\r\nconnection: keep-alive, Close\r\ncontent-length: 0\r\n\r\n"
            )
            .keep_alive
        );
        assert!(!parsed("HTTP/1.0 200 OK\r\ncontent-length: 0\r\n\r\n").keep_alive);
    }

    #[test]
    fn framing_that_cannot_be_trusted_is_an_error() {
        use ProtocolError::{ContentLength, TransferEncoding};
        for (bad, error) in [
            ("content-length: 5\r\ncontent-length: 6", ContentLength),
            ("content-length: 5, 6", ContentLength),
            ("content-length: +5", ContentLength),
            ("content-length: -1", ContentLength),
            ("content-length: 0x10", ContentLength),
            ("content-length: ", ContentLength),
            ("content-length: 99999999999999999999", ContentLength),
            ("transfer-encoding: gzip", TransferEncoding),
            ("transfer-encoding: gzip, chunked", TransferEncoding),
            ("transfer-encoding: chunked, chunked", TransferEncoding),
            (
                "transfer-encoding: chunked\r\ntransfer-encoding: chunked",
                TransferEncoding,
            ),
            ("transfer-encoding: ", TransferEncoding),
        ] {
            let raw = format!("HTTP/1.1 200 OK\r\n{bad}\r\n\r\n");
            assert_eq!(parse(&raw, &Method::GET).unwrap_err(), error, "{bad}");
        }
        assert!(matches!(
            parse("HTTP/1.1 2000 OK\r\n\r\n", &Method::GET),
            Err(ProtocolError::Head(_))
        ));
        assert!(matches!(
            parse("SMTP 200 OK\r\n\r\n", &Method::GET),
            Err(ProtocolError::Head(_))
        ));
        assert!(matches!(
            parse("HTTP/1.1 200 OK\r\nbad header\r\n\r\n", &Method::GET),
            Err(ProtocolError::Head(_))
        ));
        let many: String = (0..=MAX_HEADERS).map(|i| format!("x-{i}: 1\r\n")).collect();
        assert!(matches!(
            parse(&format!("HTTP/1.1 200 OK\r\n{many}\r\n"), &Method::GET),
            Err(ProtocolError::Head(httparse::Error::TooManyHeaders))
        ));
        let long = format!("HTTP/1.1 200 OK\r\nx-long: {}", "a".repeat(MAX_HEAD));
        assert_eq!(
            parse(&long, &Method::GET).unwrap_err(),
            ProtocolError::HeadTooLarge
        );
        let long = format!(
            "HTTP/1.1 200 OK\r\nx-long: {}\r\n\r\n",
            "a".repeat(MAX_HEAD)
        );
        assert_eq!(
            parse(&long, &Method::GET).unwrap_err(),
            ProtocolError::HeadTooLarge
        );
    }

    /// Feeds `raw` to `decoder` in pieces of `step` bytes; the body and how it ended.
    fn decode_in_steps(
        mut decoder: BodyDecoder,
        raw: &[u8],
        step: usize,
    ) -> (Vec<u8>, Result<(), ProtocolError>) {
        let mut buf = BytesMut::new();
        let mut body = Vec::new();
        let mut fed = 0;
        loop {
            match decoder.decode(&mut buf) {
                Ok(Decoded::Data(d)) => {
                    assert!(!d.is_empty());
                    body.extend_from_slice(&d);
                }
                Ok(Decoded::End) => return (body, Ok(())),
                Ok(Decoded::NeedMore) if fed == raw.len() => return (body, decoder.closed()),
                Ok(Decoded::NeedMore) => {
                    let next = (fed + step).min(raw.len());
                    buf.extend_from_slice(&raw[fed..next]);
                    fed = next;
                }
                Err(e) => return (body, Err(e)),
            }
        }
    }

    fn chunked() -> BodyDecoder {
        BodyDecoder::Chunked(Chunked::default())
    }

    #[test]
    fn chunked_bodies_decode_whatever_the_read_sizes() {
        let raw =
            b"5\r\nhello\r\n1;name=value\r\n \r\nA \r\n0123456789\r\n0\r\nx-trailer: 1\r\n\r\n";
        for step in 1..=raw.len() {
            let (body, end) = decode_in_steps(chunked(), raw, step);
            assert_eq!(body, b"hello 0123456789", "step {step}");
            assert_eq!(end, Ok(()), "step {step}");
        }
    }

    #[test]
    fn a_chunked_body_says_it_is_done_with_its_last_data() {
        let mut buf = BytesMut::from(&b"5\r\nhello\r\n0\r\n\r\n"[..]);
        let mut d = chunked();
        assert_eq!(
            d.decode(&mut buf),
            Ok(Decoded::Data(Bytes::from_static(b"hello")))
        );
        assert!(d.is_done());
        assert!(buf.is_empty());
        // Not when the end has not arrived.
        let mut buf = BytesMut::from(&b"5\r\nhello\r\n0\r\n"[..]);
        let mut d = chunked();
        assert!(matches!(d.decode(&mut buf), Ok(Decoded::Data(_))));
        assert!(!d.is_done());
    }

    #[test]
    fn malformed_chunks_are_errors() {
        for bad in [
            &b"\r\n"[..],
            b"g\r\n",
            b"5\nhello\r\n0\r\n\r\n",
            b"5\r\nhelloX\r\n",
            b"5\r\nhello\rX",
            b"5;ext\nhello",
            b"11111111111111111\r\n",
            b"0\r\nx-t: 1\nmore\r\n\r\n",
            b"0\r\n\rX",
        ] {
            let (_, end) = decode_in_steps(chunked(), bad, 1);
            assert!(
                matches!(end, Err(ProtocolError::Chunked(_))),
                "{:?}",
                String::from_utf8_lossy(bad)
            );
        }
        // The largest size that fits is accepted (and then, here, cut short).
        let (_, end) = decode_in_steps(chunked(), b"ffffffffffffffff\r\nab", 3);
        assert_eq!(end, Err(ProtocolError::Incomplete));
        let ext = format!("1;{}\r\n", "e".repeat(MAX_CHUNK_LINE));
        assert!(matches!(
            decode_in_steps(chunked(), ext.as_bytes(), 64).1,
            Err(ProtocolError::Chunked(_))
        ));
        let trailers = format!("0\r\n{}\r\n\r\n", "t".repeat(MAX_TRAILERS + 1));
        assert!(matches!(
            decode_in_steps(chunked(), trailers.as_bytes(), 64).1,
            Err(ProtocolError::Chunked(_))
        ));
    }

    #[test]
    fn lengths_and_closes_end_bodies() {
        let (body, end) = decode_in_steps(BodyDecoder::Length(5), b"helloEXTRA", 3);
        assert_eq!(body, b"hello");
        assert_eq!(end, Ok(()));
        let (body, end) = decode_in_steps(BodyDecoder::Length(5), b"hel", 2);
        assert_eq!(body, b"hel");
        assert_eq!(end, Err(ProtocolError::Incomplete));
        let (body, end) = decode_in_steps(BodyDecoder::UntilClose, b"all of it", 4);
        assert_eq!(body, b"all of it");
        assert_eq!(end, Ok(()));
        let (_, end) = decode_in_steps(chunked(), b"5\r\nhello\r\n", 4);
        assert_eq!(end, Err(ProtocolError::Incomplete));
    }

    proptest! {
        #[test]
        fn no_bytes_from_a_backend_make_the_codec_panic(
            raw in proptest::collection::vec(any::<u8>(), 0..512),
            prefix in prop_oneof![Just(&b""[..]), Just(&b"HTTP/1.1 200 OK\r\n"[..]), Just(&b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n"[..])],
            step in 1usize..64,
        ) {
            let mut all = prefix.to_vec();
            all.extend_from_slice(&raw);
            let mut buf = BytesMut::from(&all[..]);
            if let Ok(Some(head)) = parse_response_head(&mut buf, &Method::GET) {
                let rest = buf.to_vec();
                let _ = decode_in_steps(head.body, &rest, step);
            }
            let _ = decode_in_steps(chunked(), &raw, step);
        }

        #[test]
        fn any_chunking_read_in_any_pieces_gives_back_the_body(
            body in proptest::collection::vec(any::<u8>(), 0..2000),
            sizes in proptest::collection::vec(1usize..300, 1..20),
            step in 1usize..64,
        ) {
            let mut raw = Vec::new();
            let mut rest = &body[..];
            for size in sizes.iter().cycle() {
                if rest.is_empty() {
                    break;
                }
                let (chunk, tail) = rest.split_at((*size).min(rest.len()));
                write_chunk(&mut raw, chunk);
                rest = tail;
            }
            raw.extend_from_slice(LAST_CHUNK);
            raw.extend_from_slice(b"HTTP/1.1 200 OK\r\n");
            let (decoded, end) = decode_in_steps(chunked(), &raw, step);
            prop_assert_eq!(end, Ok(()));
            prop_assert_eq!(decoded, body);
        }
    }
}
