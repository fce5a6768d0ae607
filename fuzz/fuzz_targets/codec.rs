//! The backend hop's HTTP/1.1 framing (`gateway::upstream::codec`):
//! - a response head and body decode the same however the bytes arrive (all at once or
//!   split at any points), and a decoded head never carries `Transfer-Encoding`, nor
//!   both a length and chunking;
//! - a chunked body written by `write_chunk` + `LAST_CHUNK` decodes to exactly the data
//!   written, however it is split, leaving what follows it untouched;
//! - a request head written by `write_request_head` parses back (httparse) to the same
//!   method, target and headers, with exactly one framing of the gateway's own.
#![no_main]

use arbitrary::Arbitrary;
use bytes::{BufMut, Bytes, BytesMut};
use gateway::upstream::codec::{
    BodyDecoder, Decoded, LAST_CHUNK, MAX_HEAD, ProtocolError, RequestFraming, ResponseHead,
    parse_response_head, write_chunk, write_request_head,
};
use http::header::{CONTENT_LENGTH, HeaderMap, HeaderName, HeaderValue, TRANSFER_ENCODING};
use http::{Method, Uri};
use libfuzzer_sys::fuzz_target;

#[derive(Debug, Arbitrary)]
enum Input {
    /// Bytes from a backend, fed whole and split at `splits` (offsets, modulo length).
    Response {
        head_request: bool,
        bytes: Vec<u8>,
        splits: Vec<u16>,
    },
    /// A chunked body written from `pieces`, then `after`, decoded split at `splits`.
    Chunks {
        pieces: Vec<Vec<u8>>,
        after: Vec<u8>,
        splits: Vec<u16>,
    },
    /// A request head written from these parts.
    Request {
        method: String,
        target: String,
        headers: Vec<(String, Vec<u8>)>,
        done: bool,
        exact: Option<u64>,
    },
}

fuzz_target!(|input: Input| match input {
    Input::Response {
        head_request,
        bytes,
        splits,
    } => response(head_request, &bytes, &splits),
    Input::Chunks {
        pieces,
        after,
        splits,
    } => chunks(&pieces, &after, &splits),
    Input::Request {
        method,
        target,
        headers,
        done,
        exact,
    } => request(&method, &target, &headers, done, exact),
});

/// `bytes` cut at the (sorted, in-range) offsets `splits`.
fn pieces<'a>(bytes: &'a [u8], splits: &[u16]) -> Vec<&'a [u8]> {
    let mut at: Vec<usize> = splits
        .iter()
        .map(|&s| usize::from(s) % (bytes.len() + 1))
        .collect();
    at.sort_unstable();
    let mut out = Vec::new();
    let mut from = 0;
    for cut in at.into_iter().chain([bytes.len()]) {
        out.push(&bytes[from..cut]);
        from = cut;
    }
    out
}

/// What a whole exchange decoded to: the head (status, headers, framing, keep-alive),
/// the body's bytes, and how it ended.
#[derive(Debug, PartialEq)]
struct Outcome {
    head: Option<(http::StatusCode, HeaderMap, BodyDecoder, bool)>,
    body: Vec<u8>,
    end: Result<bool, ProtocolError>,
}

/// Feeds `parts` in order to the head parser, then the body decoder; at the end the
/// connection closes.
fn decode_response(parts: &[&[u8]], method: &Method) -> Outcome {
    let mut buf = BytesMut::new();
    let mut head: Option<ResponseHead> = None;
    let mut seen = None;
    let mut body = Vec::new();
    let mut feed = parts.iter();
    loop {
        if head.is_none() {
            match parse_response_head(&mut buf, method) {
                Ok(Some(h)) => {
                    assert!(!h.parts.headers.contains_key(TRANSFER_ENCODING), "{h:?}");
                    if matches!(h.body, BodyDecoder::Chunked(_)) {
                        assert!(!h.parts.headers.contains_key(CONTENT_LENGTH), "{h:?}");
                    }
                    seen = Some((
                        h.parts.status,
                        h.parts.headers.clone(),
                        h.body.clone(),
                        h.keep_alive,
                    ));
                    head = Some(h);
                    continue;
                }
                Ok(None) => {}
                Err(e) => {
                    return Outcome {
                        head: seen,
                        body,
                        end: Err(e),
                    };
                }
            }
        } else if let Some(h) = head.as_mut() {
            match h.body.decode(&mut buf) {
                Ok(Decoded::Data(d)) => {
                    assert!(!d.is_empty());
                    body.extend_from_slice(&d);
                    continue;
                }
                Ok(Decoded::End) => {
                    return Outcome {
                        head: seen,
                        body,
                        end: Ok(true),
                    };
                }
                Ok(Decoded::NeedMore) => {}
                Err(e) => {
                    return Outcome {
                        head: seen,
                        body,
                        end: Err(e),
                    };
                }
            }
        }
        match feed.next() {
            Some(p) => buf.put_slice(p),
            None => {
                // The backend closes the connection.
                let end = match head.as_mut() {
                    None => Ok(false),
                    Some(h) => h.body.closed().map(|()| true),
                };
                return Outcome {
                    head: seen,
                    body,
                    end,
                };
            }
        }
    }
}

fn response(head_request: bool, bytes: &[u8], splits: &[u16]) {
    if bytes.len() > MAX_HEAD {
        return;
    }
    let method = if head_request {
        Method::HEAD
    } else {
        Method::GET
    };
    let whole = decode_response(&[bytes], &method);
    let split = decode_response(&pieces(bytes, splits), &method);
    assert_eq!(whole, split, "{bytes:?} split at {splits:?}");
    // A body read to its framed end never holds more than the framing said.
    if let (Some((_, _, BodyDecoder::Length(n), _)), Ok(true)) = (&whole.head, &whole.end) {
        assert_eq!(whole.body.len() as u64, *n);
    }
}

fn chunks(data: &[Vec<u8>], after: &[u8], splits: &[u16]) {
    let mut wire = Vec::new();
    for d in data {
        write_chunk(&mut wire, d);
    }
    wire.extend_from_slice(LAST_CHUNK);
    let body_len = wire.len();
    wire.extend_from_slice(after);
    let expected: Vec<u8> = data.concat();

    let mut decoder = BodyDecoder::Chunked(Default::default());
    let mut buf = BytesMut::new();
    let mut got = Vec::new();
    let mut fed = 0;
    let mut parts = pieces(&wire, splits).into_iter();
    loop {
        match decoder.decode(&mut buf) {
            Ok(Decoded::Data(d)) => got.extend_from_slice(&d),
            Ok(Decoded::End) => break,
            Ok(Decoded::NeedMore) => {
                let p = parts.next().expect("the body ends before the bytes do");
                fed += p.len();
                buf.put_slice(p);
            }
            Err(e) => panic!("written chunks refused: {e} ({wire:?})"),
        }
    }
    assert!(decoder.is_done());
    assert_eq!(decoder.remaining(), Some(0));
    assert_eq!(got, expected);
    // Whatever follows the body is left for the next response, untouched.
    let mut rest = buf.to_vec();
    rest.extend(parts.flatten());
    assert_eq!(rest, &wire[body_len..], "fed {fed}");
}

fn request(
    method: &str,
    target: &str,
    raw_headers: &[(String, Vec<u8>)],
    done: bool,
    exact: Option<u64>,
) {
    let Ok(method) = Method::from_bytes(method.as_bytes()) else {
        return;
    };
    let Ok(uri) = Uri::from_maybe_shared(Bytes::copy_from_slice(target.as_bytes())) else {
        return;
    };
    if uri.scheme().is_some() || uri.authority().is_some() {
        return;
    }
    let mut headers = HeaderMap::new();
    for (name, value) in raw_headers {
        let (Ok(name), Ok(value)) = (
            HeaderName::from_bytes(name.as_bytes()),
            HeaderValue::from_bytes(value),
        ) else {
            continue;
        };
        headers.append(name, value);
    }
    let framing = RequestFraming::of(done, exact);
    let mut out = Vec::new();
    write_request_head(&mut out, &method, &uri, &headers, framing);

    let mut slots = vec![httparse::EMPTY_HEADER; headers.len() + 2];
    let mut parsed = httparse::Request::new(&mut slots);
    let len = match parsed.parse(&out) {
        Ok(httparse::Status::Complete(len)) => len,
        other => panic!("written head does not parse: {other:?}: {out:?}"),
    };
    assert_eq!(len, out.len(), "one head, nothing after it");
    assert_eq!(parsed.method, Some(method.as_str()));
    let target = uri.path_and_query().map_or("/", |p| p.as_str());
    let target = if target.is_empty() { "/" } else { target };
    assert_eq!(parsed.path, Some(target));

    // The client's headers, in order, less its framing; then the gateway's one framing.
    let sent: Vec<(&str, &[u8])> = headers
        .iter()
        .filter(|(n, _)| **n != CONTENT_LENGTH && **n != TRANSFER_ENCODING)
        // Surrounding whitespace is not part of a field value (RFC 9110 §5.5).
        .map(|(n, v)| (n.as_str(), v.as_bytes().trim_ascii()))
        .collect();
    let got: Vec<(&str, &[u8])> = parsed
        .headers
        .iter()
        .map(|h| (h.name, h.value.trim_ascii()))
        .collect();
    assert_eq!(&got[..sent.len()], &sent[..], "{out:?}");
    let framing_lines = &got[sent.len()..];
    match framing {
        RequestFraming::Length(n) => {
            assert_eq!(
                framing_lines,
                &[("content-length", n.to_string().as_bytes())]
            )
        }
        RequestFraming::Chunked => {
            assert_eq!(framing_lines, &[("transfer-encoding", &b"chunked"[..])])
        }
        RequestFraming::Empty => assert!(
            framing_lines.is_empty() || framing_lines == [("content-length", &b"0"[..])],
            "{framing_lines:?}"
        ),
    }
}
