//! No input makes the gateway's parsers panic: configuration text, path templates and
//! request paths, and raw bytes on the wire.

#![allow(clippy::unwrap_used)]

mod support;

use gateway::BackendConfig;
use gateway::config::{Config, parse_duration};
use gateway::routes::{Template, normalise};
use proptest::prelude::*;

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn any_text_is_a_config_or_a_located_error(text in "\\PC{0,200}") {
        if let Err(e) = Config::parse("x.toml", &text) {
            prop_assert!(e.to_string().starts_with("x.toml:"));
        }
    }

    #[test]
    fn config_like_text_is_a_config_or_a_located_error(
        lines in proptest::collection::vec(
            prop_oneof![
                Just("[[route]]".to_owned()),
                Just("[default]".to_owned()),
                Just("[store]".to_owned()),
                Just("[server]".to_owned()),
                "(path|algorithm|capacity|refill_per_sec|limit|window|cost|kind|url|urls|timeout|timeout_ms|on_error|max_keys|header_read_timeout|max_header_bytes|max_body_bytes) = (\"[a-z/{}*0-9.:-]{0,12}\"|-?[0-9]{1,12}|-?[0-9]\\.[0-9]{1,3}|\\[\\])",
            ],
            0..12,
        )
    ) {
        let text = lines.join("\n");
        if let Err(e) = Config::parse("x.toml", &text) {
            let s = e.to_string();
            prop_assert!(s.starts_with("x.toml:") && e.line <= lines.len().max(1), "{s}");
        }
    }

    #[test]
    fn templates_and_paths_never_panic(t in "\\PC{0,40}", p in "\\PC{0,60}") {
        let segments = normalise(&p);
        if let Ok(template) = Template::parse(&t) {
            let _ = template.matches(&segments);
        }
        let _ = parse_duration(&t);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn garbage_on_the_wire_never_takes_the_gateway_down() {
    let (be, _) = support::backend(BackendConfig::default()).await;
    let gw = support::gateway(
        "[default]\nalgorithm = \"gcra\"\ncapacity = 1000\nrefill_per_sec = 1000\n",
        &format!("http://{}", be.addr),
    )
    .await;
    let inputs: Vec<Vec<u8>> = vec![
        b"\x00\x01\x02\xff\r\n\r\n".to_vec(),
        b"GET\r\n\r\n".to_vec(),
        b"GET / HTTP/9.9\r\n\r\n".to_vec(),
        b"GET / HTTP/1.1\r\nhost: x\r\ncontent-length: -1\r\n\r\n".to_vec(),
        b"GET / HTTP/1.1\r\nhost: x\r\ncontent-length: 1\r\ncontent-length: 2\r\n\r\nab".to_vec(),
        b"GET / HTTP/1.1\r\nhost: x\r\ntransfer-encoding: chunked\r\n\r\nzz\r\n".to_vec(),
        b"GET / HTTP/1.1\r\nx-user-id: \xff\xfe\r\nconnection: close\r\n\r\n".to_vec(),
        b"GET http://evil.example/steal HTTP/1.1\r\nhost: evil.example\r\nconnection: close\r\n\r\n"
            .to_vec(),
        // Host and target disagree: refused (400) before anything is forwarded.
        b"GET http://evil.example/mismatch HTTP/1.1\r\nhost: evil\r\nconnection: close\r\n\r\n"
            .to_vec(),
        b"GET * HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n".to_vec(),
        b"CONNECT 127.0.0.1:22 HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n".to_vec(),
        b"GET /%%%/../../..//%00 HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n".to_vec(),
        [
            b"GET / HTTP/1.1\r\n".as_slice(),
            &b"x: y\r\n".repeat(500),
            b"\r\n",
        ]
        .concat(),
    ];
    for input in &inputs {
        // Any response (or a closed connection) is fine; a dead gateway is not.
        let _ = support::raw(gw.addr, input).await;
        let res = support::get(gw.addr, "/ok", "u").await;
        assert_eq!(
            res.status,
            200,
            "after {:?}",
            String::from_utf8_lossy(input)
        );
    }
    // The absolute-form target went to the backend, not to evil.example.
    let stats = support::get(be.admin, "/stats", "-").await.body;
    assert!(stats.contains("/steal"), "{stats}");
    assert!(!stats.contains("/mismatch"), "{stats}");
}
