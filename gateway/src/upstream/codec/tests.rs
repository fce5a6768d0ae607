//! Every framing rule, byte by byte, without a socket.

use bytes::{Bytes, BytesMut};
use http::header::{HeaderMap, HeaderName, HeaderValue};
use http::{Method, Uri};

use super::chunked::{MAX_CHUNK_LINE, MAX_TRAILERS};
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
    let head = parsed("HTTP/1.1 200 OK\r\ncontent-length: 3\r\ntransfer-encoding: chunked\r\n\r\n");
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
        !parsed("HTTP/1.1 200 OK\r\nconnection: keep-alive, Close\r\ncontent-length: 0\r\n\r\n")
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
    let raw = b"5\r\nhello\r\n1;name=value\r\n \r\nA \r\n0123456789\r\n0\r\nx-trailer: 1\r\n\r\n";
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
