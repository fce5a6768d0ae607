//! The response coming in: its head parsed (interim answers skipped) and how its body
//! is framed, decided by RFC 9112 §6.3 — strictly.

use std::mem::MaybeUninit;
use std::ops::Range;

use bytes::{Buf, Bytes, BytesMut};
use http::header::{self, HeaderMap, HeaderName, HeaderValue};
use http::{Method, StatusCode};
use smallvec::SmallVec;

use super::{BodyDecoder, Chunked, MAX_HEAD, MAX_HEADERS, ProtocolError};

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
    let mut framing = Framing {
        close: !http11,
        ..Framing::default()
    };
    for (name, value) in at {
        let name =
            HeaderName::from_bytes(&head[name.clone()]).map_err(|_| ProtocolError::Header)?;
        let value = HeaderValue::from_maybe_shared(head.slice(value.clone()))
            .map_err(|_| ProtocolError::Header)?;
        if framing.note(&name, &value)? {
            headers.append(name, value);
        }
    }
    let (body, keep_alive) = framing.decide(status, method, &mut headers)?;
    let mut parts = http::Response::new(()).into_parts().0;
    parts.status = status;
    parts.headers = headers;
    Ok(ResponseHead {
        parts,
        body,
        keep_alive,
    })
}

/// What a head's header lines say about its framing, gathered as they are read.
#[derive(Debug, Default)]
struct Framing {
    /// The one `Content-Length` (several equal ones count as one).
    length: Option<u64>,
    /// `Transfer-Encoding: chunked` seen.
    chunked: bool,
    /// Any `Transfer-Encoding` line seen.
    encoded: bool,
    /// The connection ends with this message (`Connection: close`, or HTTP/1.0).
    close: bool,
}

impl Framing {
    /// Takes note of one header line; false for one that is not forwarded
    /// (`Transfer-Encoding`: framing is per hop).
    fn note(&mut self, name: &HeaderName, value: &HeaderValue) -> Result<bool, ProtocolError> {
        if name == header::CONTENT_LENGTH {
            for n in value.as_bytes().split(|&b| b == b',') {
                let n = parse_length(n.trim_ascii()).ok_or(ProtocolError::ContentLength)?;
                if self.length.is_some_and(|prev| prev != n) {
                    return Err(ProtocolError::ContentLength);
                }
                self.length = Some(n);
            }
        } else if name == header::TRANSFER_ENCODING {
            for coding in value.as_bytes().split(|&b| b == b',') {
                let coding = coding.trim_ascii();
                if coding.is_empty() {
                    continue;
                }
                if self.chunked || !coding.eq_ignore_ascii_case(b"chunked") {
                    // Chunked twice, or any other coding: nothing we can frame safely.
                    return Err(ProtocolError::TransferEncoding);
                }
                self.chunked = true;
            }
            self.encoded = true;
            return Ok(false);
        } else if name == header::CONNECTION {
            self.close |= has_token(value.as_bytes(), b"close");
        }
        Ok(true)
    }

    /// How the body is read (RFC 9112 §6.3) and whether the connection may be reused
    /// after it; drops from `headers` a length that chunking overrides.
    fn decide(
        mut self,
        status: StatusCode,
        method: &Method,
        headers: &mut HeaderMap,
    ) -> Result<(BodyDecoder, bool), ProtocolError> {
        if self.encoded && !self.chunked {
            return Err(ProtocolError::TransferEncoding);
        }
        let body = if *method == Method::HEAD
            || status == StatusCode::NO_CONTENT
            || status == StatusCode::NOT_MODIFIED
        {
            BodyDecoder::Length(0)
        } else if *method == Method::CONNECT && status.is_success() {
            return Err(ProtocolError::Upgrade);
        } else if self.chunked {
            if self.length.is_some() {
                // Both: chunked wins (RFC 9112 §6.3), the length goes, and so does the
                // connection, which such a message may have desynchronised.
                headers.remove(header::CONTENT_LENGTH);
                self.close = true;
            }
            BodyDecoder::Chunked(Chunked::default())
        } else if let Some(n) = self.length {
            BodyDecoder::Length(n)
        } else {
            BodyDecoder::UntilClose
        };
        let keep_alive = !self.close && !matches!(body, BodyDecoder::UntilClose);
        Ok((body, keep_alive))
    }
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
