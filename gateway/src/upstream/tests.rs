//! The pool against raw backends: reuse, closes, framing, early answers.

use super::*;
use http_body::Frame;
use http_body_util::{BodyExt, Empty};
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

/// Generous: these tests are about framing and reuse, not time.
const TEST_TIMEOUTS: Timeouts = Timeouts {
    head: Duration::from_secs(30),
    idle: Duration::from_secs(30),
};

/// Accepts connections on a loopback port, counting them, and serves each with
/// `serve` in a task of its own.
async fn listen<F, Fut>(serve: F) -> (String, Arc<AtomicUsize>)
where
    F: Fn(TcpStream) -> Fut + Send + 'static,
    Fut: Future<Output = ()> + Send + 'static,
{
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    let accepted = Arc::new(AtomicUsize::new(0));
    let count = Arc::clone(&accepted);
    tokio::spawn(async move {
        while let Ok((s, _)) = listener.accept().await {
            count.fetch_add(1, Ordering::SeqCst);
            tokio::spawn(serve(s));
        }
    });
    (addr, accepted)
}

/// Reads from `s` into `buf` until it holds `want(buf)` bytes or more; false when
/// the connection ended first.
async fn read_until(
    s: &mut TcpStream,
    buf: &mut Vec<u8>,
    want: impl Fn(&[u8]) -> Option<usize>,
) -> bool {
    while want(buf).is_none_or(|n| buf.len() < n) {
        let mut chunk = [0u8; 4096];
        match s.read(&mut chunk).await {
            Ok(0) | Err(_) => return false,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
        }
    }
    true
}

/// The length of the request head at the front of `buf`, once it is all there.
fn head_len(buf: &[u8]) -> Option<usize> {
    buf.windows(4)
        .position(|w| w == b"\r\n\r\n")
        .map(|end| end + 4)
}

/// A raw HTTP/1.1 backend: answers each request head on a connection with
/// `respond(path)`, and closes the connection after `per_conn` requests (without
/// saying so, as an idle timeout would). Counts the connections it accepts.
async fn backend(per_conn: usize, respond: fn(&str) -> Vec<u8>) -> (String, Arc<AtomicUsize>) {
    listen(move |mut s| async move {
        let mut buf = Vec::new();
        for _ in 0..per_conn {
            if !read_until(&mut s, &mut buf, head_len).await {
                return;
            }
            let end = head_len(&buf).unwrap_or(0);
            let head = String::from_utf8_lossy(&buf[..end]).into_owned();
            buf.drain(..end);
            let path = head.split(' ').nth(1).unwrap_or("/").to_owned();
            if s.write_all(&respond(&path)).await.is_err() {
                return;
            }
        }
    })
    .await
}

fn get(path: &str) -> Request<Empty<Bytes>> {
    Request::builder()
        .uri(path)
        .header("host", "backend")
        .body(Empty::new())
        .unwrap()
}

fn ok(path: &str) -> Vec<u8> {
    match path {
        "/chunked" => b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n".to_vec(),
        "/big" => {
            let mut r = format!("HTTP/1.1 200 OK\r\ncontent-length: {}\r\n\r\n", 1 << 20).into_bytes();
            r.extend(std::iter::repeat_n(b'x', 1 << 20));
            r
        }
        _ => b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok".to_vec(),
    }
}

async fn body_of(pool: &Arc<Pool>, path: &str) -> Bytes {
    let res = Arc::clone(pool).send(get(path)).await.unwrap();
    assert_eq!(res.status(), 200);
    res.into_body().collect().await.unwrap().to_bytes()
}

#[tokio::test]
async fn sequential_requests_share_one_connection() {
    let (addr, accepted) = backend(usize::MAX, ok).await;
    let pool = Pool::new(addr, 8, TEST_TIMEOUTS);
    for path in ["/a", "/chunked", "/big", "/b"] {
        let body = body_of(&pool, path).await;
        match path {
            "/chunked" => assert_eq!(body, "hello world"),
            "/big" => assert_eq!(body.len(), 1 << 20),
            _ => assert_eq!(body, "ok"),
        }
    }
    assert_eq!(accepted.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn a_connection_closed_while_idle_is_replaced() {
    // The backend closes every connection after one answer, as an idle timeout
    // would: the next request finds its pooled connection gone and opens another.
    let (addr, accepted) = backend(1, ok).await;
    let pool = Pool::new(addr, 8, TEST_TIMEOUTS);
    for _ in 0..3 {
        assert_eq!(body_of(&pool, "/a").await, "ok");
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    assert_eq!(accepted.load(Ordering::SeqCst), 3);
}

#[tokio::test]
async fn a_connection_closed_without_delay_is_replaced() {
    // No pause between requests: the close may not have arrived when the next
    // request takes the connection. Either way every request is answered.
    let (addr, _) = backend(1, ok).await;
    let pool = Pool::new(addr, 8, TEST_TIMEOUTS);
    for _ in 0..20 {
        assert_eq!(body_of(&pool, "/a").await, "ok");
    }
}

#[tokio::test]
async fn a_body_dropped_unread_does_not_return_its_connection() {
    let (addr, accepted) = backend(usize::MAX, ok).await;
    let pool = Pool::new(addr, 8, TEST_TIMEOUTS);
    let mut res = Arc::clone(&pool).send(get("/big")).await.unwrap();
    let first = res.body_mut().frame().await.unwrap().unwrap();
    assert!(first.data_ref().is_some_and(|d| d.len() < 1 << 20));
    drop(res);
    assert!(pool.idle.lock().unwrap().is_empty());
    assert_eq!(body_of(&pool, "/a").await, "ok");
    assert_eq!(accepted.load(Ordering::SeqCst), 2);
}

#[tokio::test]
async fn concurrent_requests_open_connections_and_keep_them() {
    let (addr, accepted) = backend(usize::MAX, ok).await;
    let pool = Pool::new(addr, 4, TEST_TIMEOUTS);
    let round = || async {
        let all = (0..8).map(|_| {
            let pool = Arc::clone(&pool);
            tokio::spawn(async move { body_of(&pool, "/chunked").await })
        });
        for t in all.collect::<Vec<_>>() {
            assert_eq!(t.await.unwrap(), "hello world");
        }
    };
    round().await;
    let opened = accepted.load(Ordering::SeqCst);
    assert!((1..=8).contains(&opened), "{opened}");
    // At most `max_idle` are kept; the second round reuses them.
    assert!(pool.idle.lock().unwrap().len() <= 4);
    round().await;
    assert!(accepted.load(Ordering::SeqCst) <= opened + 8);
}

#[tokio::test]
async fn nothing_listening_is_a_connect_error() {
    let addr = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().to_string()
    };
    let pool = Pool::new(addr, 4, TEST_TIMEOUTS);
    assert!(matches!(
        Arc::clone(&pool).send(get("/a")).await,
        Err(UpstreamError::Connect(_))
    ));
}

/// A request body whose frames arrive from a channel, as a client's upload would.
struct ChanBody(tokio::sync::mpsc::Receiver<Bytes>);

impl Body for ChanBody {
    type Data = Bytes;
    type Error = std::convert::Infallible;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        self.0.poll_recv(cx).map(|b| b.map(|b| Ok(Frame::data(b))))
    }
}

/// One connection: reads a request whose chunked body ends the usual way, answers
/// with what it read, in chunks that arrive 30 ms apart.
async fn slow_backend() -> String {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    tokio::spawn(async move {
        let (mut s, _) = listener.accept().await.unwrap();
        let mut seen = Vec::new();
        if !read_until(&mut s, &mut seen, |b| {
            b.ends_with(b"0\r\n\r\n").then_some(0)
        })
        .await
        {
            return;
        }
        let seen = String::from_utf8_lossy(&seen);
        let parts = ["hello", "big", "world"].map(|w| seen.contains(w));
        let head = b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n";
        s.write_all(head).await.unwrap();
        for (word, present) in ["hello ", "big ", "world"].iter().zip(parts) {
            tokio::time::sleep(std::time::Duration::from_millis(30)).await;
            let word = if present { *word } else { "missing " };
            let chunk = format!("{:x}\r\n{word}\r\n", word.len());
            s.write_all(chunk.as_bytes()).await.unwrap();
        }
        s.write_all(b"0\r\n\r\n").await.unwrap();
        // Keep the connection open, as a keep-alive backend would.
        tokio::time::sleep(std::time::Duration::from_secs(5)).await;
    });
    addr
}

#[tokio::test]
async fn slow_uploads_and_slow_answers_stream_through() {
    // Nothing but the request's own task drives the connection: every wait here
    // (a request frame to send, a response chunk to read) must wake it.
    let pool = Pool::new(slow_backend().await, 4, TEST_TIMEOUTS);
    let (tx, rx) = tokio::sync::mpsc::channel(1);
    let upload = tokio::spawn(async move {
        for word in ["hello ", "big ", "world"] {
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
            tx.send(Bytes::from(word)).await.unwrap();
        }
    });
    let req = Request::builder()
        .method("POST")
        .uri("/upload")
        .header("host", "backend")
        .body(ChanBody(rx))
        .unwrap();
    let started = std::time::Instant::now();
    let res = tokio::time::timeout(std::time::Duration::from_secs(5), async {
        let res = Arc::clone(&pool).send(req).await.unwrap();
        res.into_body().collect().await.unwrap().to_bytes()
    })
    .await
    .expect("the exchange finished");
    upload.await.unwrap();
    assert_eq!(res, "hello big world");
    assert!(started.elapsed() >= std::time::Duration::from_millis(90));
    // Read to the end: the connection went back to the pool.
    assert_eq!(pool.idle.lock().unwrap().len(), 1);
}

/// A backend that answers every request head on a connection with `answer(head)`,
/// after reading the body its `content-length` announces (and no body otherwise),
/// and closes the connection when the answer says `connection: close` or has no
/// framing. `None` reads nothing more and holds the connection open unanswered.
async fn scripted(answer: fn(&str, &[u8]) -> Option<Vec<u8>>) -> (String, Arc<AtomicUsize>) {
    listen(move |mut s| async move {
        let mut buf = Vec::new();
        loop {
            if !read_until(&mut s, &mut buf, head_len).await {
                return;
            }
            let end = head_len(&buf).unwrap_or(0);
            let head = String::from_utf8_lossy(&buf[..end]).to_lowercase();
            let len = head
                .lines()
                .find_map(|l| l.strip_prefix("content-length: "))
                .map_or(0, |n| n.trim().parse::<usize>().unwrap());
            let Some(reply) = answer(&head, &buf[end..(end + len).min(buf.len())]) else {
                tokio::time::sleep(std::time::Duration::from_secs(5)).await;
                return;
            };
            if !read_until(&mut s, &mut buf, |_| Some(end + len)).await {
                return;
            }
            let body: Vec<u8> = buf.drain(..end + len).skip(end).collect();
            let reply = answer(&head, &body).unwrap_or(reply);
            if s.write_all(&reply).await.is_err() {
                return;
            }
            let text = String::from_utf8_lossy(&reply).to_lowercase();
            if text.contains("connection: close") || !text.contains("content-length") {
                return;
            }
        }
    })
    .await
}

fn request(method: &str, path: &str, body: &'static str) -> Request<http_body_util::Full<Bytes>> {
    Request::builder()
        .method(method)
        .uri(path)
        .header("host", "backend")
        .body(http_body_util::Full::new(Bytes::from_static(
            body.as_bytes(),
        )))
        .unwrap()
}

async fn collect(res: Response<PooledBody>) -> Result<Bytes, UpstreamError> {
    Ok(res.into_body().collect().await?.to_bytes())
}

#[tokio::test]
async fn bodies_go_out_framed_by_their_length() {
    // The backend echoes what it read: the head's framing and the body.
    let (addr, accepted) = scripted(|head, body| {
        let framing = head
            .lines()
            .find(|l| l.starts_with("content-length"))
            .unwrap_or("none");
        let text = format!("{framing}|{}", String::from_utf8_lossy(body));
        Some(
            format!(
                "HTTP/1.1 200 OK\r\ncontent-length: {}\r\n\r\n{text}",
                text.len()
            )
            .into_bytes(),
        )
    })
    .await;
    let pool = Pool::new(addr, 4, TEST_TIMEOUTS);
    let echo = |m, b| {
        let pool = Arc::clone(&pool);
        async move {
            collect(pool.send(request(m, "/e", b)).await.unwrap())
                .await
                .unwrap()
        }
    };
    assert_eq!(echo("POST", "hello").await, "content-length: 5|hello");
    assert_eq!(echo("POST", "").await, "content-length: 0|");
    assert_eq!(echo("GET", "").await, "none|");
    // A body larger than any socket buffer goes out whole, then the next request
    // reuses the connection.
    let big = Bytes::from(vec![b'x'; 1 << 20]);
    let req = Request::builder()
        .method("PUT")
        .uri("/e")
        .header("host", "backend")
        .body(http_body_util::Full::new(big))
        .unwrap();
    let res = collect(Arc::clone(&pool).send(req).await.unwrap())
        .await
        .unwrap();
    assert_eq!(res.len(), "content-length: 1048576|".len() + (1 << 20));
    assert_eq!(echo("POST", "again").await, "content-length: 5|again");
    assert_eq!(accepted.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn head_and_interim_answers_keep_the_connection() {
    let (addr, accepted) = scripted(|head, _| {
        Some(match head.split(' ').next() {
            Some("head") => b"HTTP/1.1 200 OK\r\ncontent-length: 50\r\n\r\n".to_vec(),
            _ => b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok"
                .to_vec(),
        })
    })
    .await;
    let pool = Pool::new(addr, 4, TEST_TIMEOUTS);
    for _ in 0..2 {
        let res = Arc::clone(&pool)
            .send(request("HEAD", "/h", ""))
            .await
            .unwrap();
        assert_eq!(res.headers()["content-length"], "50");
        assert!(res.body().is_end_stream());
        assert_eq!(collect(res).await.unwrap(), "");
        assert_eq!(body_of(&pool, "/after-interim").await, "ok");
    }
    assert_eq!(accepted.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn answers_that_end_their_connection_are_read_and_not_reused() {
    let (addr, accepted) = scripted(|head, _| {
        Some(match head.split(' ').nth(1) {
            // More bytes than the answer: the connection is out of step.
            Some("/surplus") => b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nokJUNK".to_vec(),
            Some("/until-close") => b"HTTP/1.1 200 OK\r\n\r\nall until the close".to_vec(),
            Some("/close") => b"HTTP/1.1 200 OK\r\nconnection: close\r\ncontent-length: 2\r\n\r\nok".to_vec(),
            _ => b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\ncontent-length: 9\r\n\r\n2\r\nok\r\n0\r\n\r\n".to_vec(),
        })
    })
    .await;
    let pool = Pool::new(addr, 4, TEST_TIMEOUTS);
    assert_eq!(body_of(&pool, "/surplus").await, "ok");
    assert_eq!(body_of(&pool, "/until-close").await, "all until the close");
    assert_eq!(body_of(&pool, "/close").await, "ok");
    assert_eq!(body_of(&pool, "/both-lengths").await, "ok");
    assert!(pool.idle.lock().unwrap().is_empty());
    assert_eq!(accepted.load(Ordering::SeqCst), 4);
}

#[tokio::test]
async fn malformed_answers_are_errors_not_guesses() {
    let (addr, _) = scripted(|head, _| {
        Some(match head.split(' ').nth(1) {
            Some("/lengths") => b"HTTP/1.1 200 OK\r\ncontent-length: 1, 2\r\n\r\nok".to_vec(),
            Some("/chunks") => {
                b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\nzz\r\n".to_vec()
            }
            Some("/short") => {
                b"HTTP/1.1 200 OK\r\ncontent-length: 10\r\nconnection: close\r\n\r\nok".to_vec()
            }
            _ => b"HTTP/1.1 200 OK\r\ncontent-len".to_vec(),
        })
    })
    .await;
    let pool = Pool::new(addr, 4, TEST_TIMEOUTS);
    let send = |path| Arc::clone(&pool).send(get(path));
    assert!(matches!(
        send("/lengths").await,
        Err(UpstreamError::Protocol(ProtocolError::ContentLength))
    ));
    // A head cut off by the close.
    assert!(matches!(
        send("/cut").await,
        Err(UpstreamError::Protocol(ProtocolError::Incomplete))
    ));
    // Bodies that break off fail the body, after what was good.
    let chunks = collect(send("/chunks").await.unwrap()).await;
    assert!(
        matches!(
            chunks,
            Err(UpstreamError::Protocol(ProtocolError::Chunked(_)))
        ),
        "{chunks:?}"
    );
    let mut body = send("/short").await.unwrap().into_body();
    assert_eq!(
        body.frame().await.unwrap().unwrap().into_data().unwrap(),
        "ok"
    );
    assert!(matches!(
        body.frame().await,
        Some(Err(UpstreamError::Protocol(ProtocolError::Incomplete)))
    ));
    assert!(pool.idle.lock().unwrap().is_empty());
}

#[tokio::test]
async fn an_early_answer_ends_the_upload_and_its_connection() {
    // The backend refuses the upload from its head alone and never reads the body.
    let (addr, _) = scripted(|head, body| {
        (head.starts_with("post") && body.is_empty())
            .then(|| b"HTTP/1.1 413 Payload Too Large\r\ncontent-length: 0\r\n\r\n".to_vec())
    })
    .await;
    let pool = Pool::new(addr, 4, TEST_TIMEOUTS);
    let (tx, rx) = tokio::sync::mpsc::channel(1);
    let req = Request::builder()
        .method("POST")
        .uri("/upload")
        .header("host", "backend")
        .body(ChanBody(rx))
        .unwrap();
    // The upload never ends: only the early answer can end the exchange.
    let res = tokio::time::timeout(
        std::time::Duration::from_secs(5),
        Arc::clone(&pool).send(req),
    )
    .await
    .expect("the early answer ended the exchange")
    .unwrap();
    assert_eq!(res.status(), 413);
    assert_eq!(collect(res).await.unwrap(), "");
    assert!(
        pool.idle.lock().unwrap().is_empty(),
        "half a body went out: not reusable"
    );
    drop(tx);
}
