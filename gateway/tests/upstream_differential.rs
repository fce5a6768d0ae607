//! The gateway's own HTTP/1.1 upstream client against hyper's, on the same hostile
//! backend answers: malformed heads, bad chunking, interim (1xx) answers,
//! close-delimited bodies, early answers while the request uploads, HEAD/204/304 with
//! stray bytes, conflicting `Content-Length`, `Transfer-Encoding` with
//! `Content-Length`, oversized heads.
//!
//! The rule: ours is never more lenient. Where hyper's client (`hyper::client::conn::
//! http1`, default settings) fails, ours fails; where ours forwards a response, hyper
//! forwards one too, with the same status, the same headers (framing headers aside:
//! each client re-frames per hop) and the same body bytes. Ours may refuse what hyper
//! accepts (a 64 KiB head limit instead of ~400 KiB, no coding but `chunked`, no
//! upgrades), and the table printed on failure says where.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::convert::Infallible;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use gateway::upstream::{Pool, Timeouts};
use http::{HeaderMap, Method, Request, Response};
use http_body::{Body, Frame};
use http_body_util::BodyExt;
use http_body_util::combinators::BoxBody;
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;

/// How long one exchange (head and body) may take before it counts as hung.
const PATIENCE: Duration = Duration::from_secs(3);

type TestBody = BoxBody<Bytes, Box<dyn std::error::Error + Send + Sync>>;

/// What the request carries.
#[derive(Debug, Clone, Copy)]
enum Upload {
    /// No body.
    None,
    /// A body of known length.
    Small(&'static str),
    /// A body that keeps coming and never ends: only an early answer ends the exchange.
    Endless,
}

/// One hostile answer.
struct Case {
    name: &'static str,
    method: Method,
    upload: Upload,
    /// The bytes the backend writes once it has read the request head; it then closes
    /// (after draining what the client still sends, so the close is a FIN, not a reset),
    /// or for an endless upload keeps reading until the client goes.
    answer: Vec<u8>,
}

fn case(name: &'static str, answer: impl AsRef<[u8]>) -> Case {
    Case {
        name,
        method: Method::GET,
        upload: Upload::None,
        answer: answer.as_ref().to_vec(),
    }
}

fn with(method: Method, upload: Upload, name: &'static str, answer: impl AsRef<[u8]>) -> Case {
    Case {
        method,
        upload,
        ..case(name, answer)
    }
}

/// Every hostile answer, by family.
fn cases() -> Vec<Case> {
    let mut all = vec![
        // Malformed heads.
        case(
            "header line without a colon",
            "HTTP/1.1 200 OK\r\nbad header\r\ncontent-length: 0\r\n\r\n",
        ),
        case(
            "four-digit status",
            "HTTP/1.1 2000 OK\r\ncontent-length: 0\r\n\r\n",
        ),
        case(
            "status below 100",
            "HTTP/1.1 099 Low\r\ncontent-length: 0\r\n\r\n",
        ),
        case("not HTTP", "SMTP 200 OK\r\ncontent-length: 0\r\n\r\n"),
        case(
            "HTTP/2 status line",
            "HTTP/2.0 200 OK\r\ncontent-length: 0\r\n\r\n",
        ),
        case(
            "obsolete line folding",
            "HTTP/1.1 200 OK\r\nx-a: 1\r\n  folded\r\ncontent-length: 2\r\n\r\nok",
        ),
        case(
            "space before the colon",
            "HTTP/1.1 200 OK\r\nx-a : 1\r\ncontent-length: 2\r\n\r\nok",
        ),
        case(
            "invalid byte in a header name",
            "HTTP/1.1 200 OK\r\nx(a): 1\r\ncontent-length: 2\r\n\r\nok",
        ),
        case(
            "control byte in a header value",
            "HTTP/1.1 200 OK\r\nx-a: 1\x012\r\ncontent-length: 2\r\n\r\nok",
        ),
        case(
            "bare LF line ends",
            "HTTP/1.1 200 OK\ncontent-length: 2\nx-a: 1\n\nok",
        ),
        case(
            "no reason phrase",
            "HTTP/1.1 200\r\ncontent-length: 2\r\n\r\nok",
        ),
        case(
            "head cut off by the close",
            "HTTP/1.1 200 OK\r\ncontent-len",
        ),
        case("nothing at all", ""),
        case("garbage", "\x00\x01\x02 hello\r\n\r\n"),
        // Bad chunking.
        case("chunk size not hex", chunked("zz\r\nhello\r\n0\r\n\r\n")),
        case(
            "chunk longer than its size",
            chunked("5\r\nhelloX\r\n0\r\n\r\n"),
        ),
        case("chunked body cut off", chunked("5\r\nhello\r\n")),
        case(
            "chunk size overflows",
            chunked("11111111111111111\r\nx\r\n0\r\n\r\n"),
        ),
        case(
            "bare LF after a chunk size",
            chunked("5\nhello\r\n0\r\n\r\n"),
        ),
        case(
            "space before a chunk size",
            chunked(" 5\r\nhello\r\n0\r\n\r\n"),
        ),
        case("chunk missing its CRLF", chunked("5\r\nhello0\r\n\r\n")),
        case(
            "chunk extension",
            chunked("5;name=value\r\nhello\r\n0\r\n\r\n"),
        ),
        case(
            "space after a chunk size",
            chunked("5 \r\nhello\r\n0\r\n\r\n"),
        ),
        case("trailers", chunked("5\r\nhello\r\n0\r\nx-t: 1\r\n\r\n")),
        case(
            "last chunk without the final CRLF",
            chunked("5\r\nhello\r\n0\r\n"),
        ),
        case("upper-case hex", chunked("A\r\n0123456789\r\n0\r\n\r\n")),
        // Interim answers.
        case(
            "100 Continue, then the answer",
            "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok",
        ),
        case(
            "103 Early Hints, then the answer",
            "HTTP/1.1 103 Early Hints\r\nlink: </a>\r\n\r\nHTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok",
        ),
        case("only an interim answer", "HTTP/1.1 100 Continue\r\n\r\n"),
        case(
            "101 nobody asked for",
            "HTTP/1.1 101 Switching Protocols\r\nupgrade: websocket\r\nconnection: upgrade\r\n\r\n",
        ),
        // Close-delimited bodies.
        case(
            "no framing: body until the close",
            "HTTP/1.1 200 OK\r\n\r\nall of it until the close",
        ),
        case(
            "HTTP/1.0 without a length",
            "HTTP/1.0 200 OK\r\n\r\nten-style body",
        ),
        case(
            "connection: close and no length",
            "HTTP/1.1 200 OK\r\nconnection: close\r\n\r\nbye",
        ),
        // Bodiless answers with stray bytes.
        with(
            Method::HEAD,
            Upload::None,
            "HEAD with a length and stray body",
            "HTTP/1.1 200 OK\r\ncontent-length: 5\r\n\r\nhello",
        ),
        case(
            "204 with a length and stray bytes",
            "HTTP/1.1 204 No Content\r\ncontent-length: 5\r\n\r\nhello",
        ),
        case(
            "204 chunked with stray chunks",
            "HTTP/1.1 204 No Content\r\ntransfer-encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n",
        ),
        case(
            "304 with stray bytes",
            "HTTP/1.1 304 Not Modified\r\netag: \"x\"\r\n\r\nstray",
        ),
        // Content-Length.
        case(
            "two different lengths",
            "HTTP/1.1 200 OK\r\ncontent-length: 2\r\ncontent-length: 3\r\n\r\nok!",
        ),
        case(
            "a list of different lengths",
            "HTTP/1.1 200 OK\r\ncontent-length: 2, 3\r\n\r\nok!",
        ),
        case(
            "the same length twice",
            "HTTP/1.1 200 OK\r\ncontent-length: 2\r\ncontent-length: 2\r\n\r\nok",
        ),
        case(
            "signed length",
            "HTTP/1.1 200 OK\r\ncontent-length: +2\r\n\r\nok",
        ),
        case(
            "length not a number",
            "HTTP/1.1 200 OK\r\ncontent-length: two\r\n\r\nok",
        ),
        case(
            "length past u64",
            "HTTP/1.1 200 OK\r\ncontent-length: 99999999999999999999\r\n\r\nok",
        ),
        case(
            "body shorter than its length",
            "HTTP/1.1 200 OK\r\ncontent-length: 10\r\n\r\nshort",
        ),
        case(
            "body longer than its length",
            "HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nokJUNK",
        ),
        // Transfer-Encoding, with and without Content-Length.
        case(
            "chunked and a length",
            "HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\ncontent-length: 9\r\n\r\n2\r\nok\r\n0\r\n\r\n",
        ),
        case(
            "a length and then chunked",
            "HTTP/1.1 200 OK\r\ncontent-length: 100\r\ntransfer-encoding: chunked\r\n\r\n2\r\nok\r\n0\r\n\r\n",
        ),
        case(
            "gzip then chunked",
            "HTTP/1.1 200 OK\r\ntransfer-encoding: gzip, chunked\r\n\r\n2\r\nok\r\n0\r\n\r\n",
        ),
        case(
            "gzip only, with a length",
            "HTTP/1.1 200 OK\r\ntransfer-encoding: gzip\r\ncontent-length: 2\r\n\r\nok",
        ),
        case(
            "chunked twice",
            "HTTP/1.1 200 OK\r\ntransfer-encoding: chunked, chunked\r\n\r\n2\r\nok\r\n0\r\n\r\n",
        ),
        case(
            "chunked, mixed case",
            "HTTP/1.1 200 OK\r\nTransfer-Encoding: ChUnKeD\r\n\r\n2\r\nok\r\n0\r\n\r\n",
        ),
        // Oversized heads.
        case(
            "101 header lines",
            format!(
                "HTTP/1.1 200 OK\r\n{}content-length: 2\r\n\r\nok",
                "x-n: 1\r\n".repeat(100)
            ),
        ),
        case(
            "a 100 KiB header",
            format!(
                "HTTP/1.1 200 OK\r\nx-big: {}\r\ncontent-length: 2\r\n\r\nok",
                "a".repeat(100 << 10)
            ),
        ),
        case(
            "a 1 MiB header",
            format!(
                "HTTP/1.1 200 OK\r\nx-big: {}\r\ncontent-length: 2\r\n\r\nok",
                "a".repeat(1 << 20)
            ),
        ),
        // Well-formed, for contrast.
        case(
            "plain answer",
            "HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\ncontent-length: 5\r\n\r\nhello",
        ),
        case(
            "plain chunked",
            chunked("5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n"),
        ),
    ];
    // Early answers while the request uploads.
    all.extend([
        with(
            Method::POST,
            Upload::Endless,
            "413 while the body uploads",
            "HTTP/1.1 413 Payload Too Large\r\ncontent-length: 0\r\nconnection: close\r\n\r\n",
        ),
        with(
            Method::POST,
            Upload::Endless,
            "early answer with a body",
            "HTTP/1.1 403 Forbidden\r\ncontent-length: 4\r\n\r\nnope",
        ),
        with(
            Method::POST,
            Upload::Small("a small upload"),
            "answer after a small upload",
            "HTTP/1.1 201 Created\r\ncontent-length: 2\r\n\r\nok",
        ),
        with(
            Method::POST,
            Upload::Small("a small upload"),
            "100 Continue to an upload",
            "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok",
        ),
    ]);
    all
}

fn chunked(body: &str) -> String {
    format!("HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n{body}")
}

/// A backend that answers one connection with `answer` (see [`Case::answer`]).
async fn hostile_backend(answer: Vec<u8>, endless: bool) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    tokio::spawn(async move {
        let Ok((mut s, _)) = listener.accept().await else {
            return;
        };
        let mut seen = Vec::new();
        let mut chunk = [0u8; 16 * 1024];
        // The request head, and a body of known length: all of it, so that closing
        // leaves nothing unread (which would turn the close into a reset).
        let want = loop {
            if let Some(end) = seen.windows(4).position(|w| w == b"\r\n\r\n") {
                let head = String::from_utf8_lossy(&seen[..end]).to_ascii_lowercase();
                let len = head
                    .lines()
                    .find_map(|l| l.strip_prefix("content-length:"))
                    .and_then(|n| n.trim().parse::<usize>().ok())
                    .unwrap_or(0);
                break end + 4 + len;
            }
            match s.read(&mut chunk).await {
                Ok(0) | Err(_) => return,
                Ok(n) => seen.extend_from_slice(&chunk[..n]),
            }
        };
        while !endless && seen.len() < want {
            match s.read(&mut chunk).await {
                Ok(0) | Err(_) => return,
                Ok(n) => seen.extend_from_slice(&chunk[..n]),
            }
        }
        if s.write_all(&answer).await.is_err() {
            return;
        }
        let _ = s.flush().await;
        if !endless {
            let _ = s.shutdown().await;
        }
        // Drain until the client goes (bounded), so the close is clean.
        let _ = tokio::time::timeout(PATIENCE + Duration::from_secs(1), async {
            while let Ok(n) = s.read(&mut chunk).await {
                if n == 0 {
                    break;
                }
            }
        })
        .await;
    });
    addr
}

/// A request body fed from a channel, as a client's upload is.
struct ChanBody(mpsc::Receiver<Bytes>);

impl Body for ChanBody {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        self.0.poll_recv(cx).map(|b| b.map(|b| Ok(Frame::data(b))))
    }
}

/// The request of `case`, and the sender that keeps an endless upload going.
fn request(case: &Case) -> (Request<TestBody>, Option<mpsc::Sender<Bytes>>) {
    let (body, tx): (TestBody, _) = match case.upload {
        Upload::None => (
            http_body_util::Empty::new().map_err(|e| match e {}).boxed(),
            None,
        ),
        Upload::Small(text) => (
            http_body_util::Full::new(Bytes::from_static(text.as_bytes()))
                .map_err(|e| match e {})
                .boxed(),
            None,
        ),
        Upload::Endless => {
            let (tx, rx) = mpsc::channel(1);
            (ChanBody(rx).map_err(|e| match e {}).boxed(), Some(tx))
        }
    };
    let req = Request::builder()
        .method(case.method.clone())
        .uri("/hostile")
        .header("host", "backend")
        .body(body)
        .unwrap();
    (req, tx)
}

/// Keeps an endless upload sending, a piece every few milliseconds.
fn keep_uploading(tx: Option<mpsc::Sender<Bytes>>) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let Some(tx) = tx else { return };
        while tx.send(Bytes::from_static(b"more upload ")).await.is_ok() {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    })
}

/// How a client fared with one answer.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Verdict {
    /// It forwarded a response.
    Answer {
        status: u16,
        /// Headers less the framing ones, sorted.
        headers: Vec<(String, Vec<u8>)>,
        body: Vec<u8>,
    },
    /// It failed, on the head or in the body.
    Failed(String),
    /// Nothing within [`PATIENCE`].
    Hung,
}

async fn verdict<B, E>(exchange: impl Future<Output = Result<Response<B>, E>>) -> Verdict
where
    B: Body<Data = Bytes>,
    B::Error: std::fmt::Display,
    E: std::fmt::Display,
{
    let outcome = tokio::time::timeout(PATIENCE, async {
        let res = exchange.await.map_err(|e| e.to_string())?;
        let (parts, body) = res.into_parts();
        let body = body.collect().await.map_err(|e| e.to_string())?;
        Ok::<_, String>((
            parts.status.as_u16(),
            forwarded(&parts.headers),
            body.to_bytes().to_vec(),
        ))
    })
    .await;
    match outcome {
        Ok(Ok((status, headers, body))) => Verdict::Answer {
            status,
            headers,
            body,
        },
        Ok(Err(e)) => Verdict::Failed(e),
        Err(_) => Verdict::Hung,
    }
}

fn forwarded(headers: &HeaderMap) -> Vec<(String, Vec<u8>)> {
    let mut all: Vec<_> = headers
        .iter()
        .filter(|(name, _)| {
            *name != http::header::TRANSFER_ENCODING && *name != http::header::CONTENT_LENGTH
        })
        .map(|(n, v)| (n.as_str().to_owned(), v.as_bytes().to_vec()))
        .collect();
    all.sort();
    all
}

/// The gateway's client: a pool that keeps no idle connection.
async fn ours(case: &Case) -> Verdict {
    let addr = hostile_backend(case.answer.clone(), matches!(case.upload, Upload::Endless)).await;
    let (req, tx) = request(case);
    let upload = keep_uploading(tx);
    let v = verdict(
        Pool::new(
            addr,
            0,
            Timeouts {
                head: Duration::from_secs(30),
                idle: Duration::from_secs(30),
            },
        )
        .send(req),
    )
    .await;
    upload.abort();
    v
}

/// hyper's HTTP/1.1 client connection, default settings.
async fn hypers(case: &Case) -> Verdict {
    let addr = hostile_backend(case.answer.clone(), matches!(case.upload, Upload::Endless)).await;
    let (req, tx) = request(case);
    let upload = keep_uploading(tx);
    let v = verdict(async {
        let stream = TcpStream::connect(&addr).await?;
        let (mut send, conn) =
            hyper::client::conn::http1::handshake::<_, TestBody>(TokioIo::new(stream)).await?;
        tokio::spawn(conn);
        send.send_request(req)
            .await
            .map_err(Box::<dyn std::error::Error + Send + Sync>::from)
    })
    .await;
    upload.abort();
    v
}

fn short(v: &Verdict) -> String {
    match v {
        Verdict::Answer { status, body, .. } => {
            let body = String::from_utf8_lossy(body);
            let body: String = body.chars().take(40).collect();
            format!("{status} {body:?}")
        }
        Verdict::Failed(e) => format!("error: {}", e.chars().take(70).collect::<String>()),
        Verdict::Hung => "hung".to_owned(),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ours_is_never_more_lenient_than_hypers_client() {
    // Independent cases, run at once: a hung one costs PATIENCE once, not per case.
    let runs: Vec<_> = cases()
        .into_iter()
        .map(|case| {
            tokio::spawn(async move {
                let (ours, hypers) = tokio::join!(ours(&case), hypers(&case));
                (case.name, ours, hypers)
            })
        })
        .collect();
    let mut results = Vec::new();
    for run in runs {
        results.push(run.await.unwrap());
    }
    let mut table = String::new();
    let mut more_lenient = Vec::new();
    let (mut both_failed, mut both_answered, mut stricter) = (0, 0, 0);
    for (name, ours, hypers) in &results {
        table.push_str(&format!(
            "{name:<40} ours: {:<60} hyper: {}\n",
            short(ours),
            short(hypers)
        ));
        match (ours, hypers) {
            (Verdict::Failed(_), Verdict::Failed(_)) => both_failed += 1,
            (Verdict::Failed(_), Verdict::Answer { .. }) => stricter += 1,
            (Verdict::Answer { .. }, Verdict::Answer { .. }) if ours == hypers => {
                both_answered += 1
            }
            // Ours answered where hyper failed, hung, or answered something else; or
            // ours hung (an exchange must end, one way or the other).
            _ => more_lenient.push(*name),
        }
    }
    assert!(
        more_lenient.is_empty(),
        "ours differs from hyper's client where it may not: {more_lenient:?}\n{table}"
    );
    // The harness tells the families apart: each outcome occurs.
    assert!(both_failed >= 20, "{both_failed} both failed\n{table}");
    assert!(
        both_answered >= 15,
        "{both_answered} both answered\n{table}"
    );
    assert!(stricter >= 3, "{stricter} only ours refused\n{table}");
    println!("{table}");
}

#[test]
fn the_cases_cover_every_family_named_in_the_issue() {
    let names: Vec<&str> = cases().iter().map(|c| c.name).collect();
    for family in [
        "header line",
        "chunk",
        "Continue",
        "until the close",
        "while the body uploads",
        "HEAD",
        "204",
        "304",
        "different lengths",
        "chunked and a length",
        "1 MiB header",
    ] {
        assert!(
            names.iter().any(|n| n.contains(family)),
            "no case for {family}"
        );
    }
}
