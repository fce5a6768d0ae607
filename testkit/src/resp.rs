//! Just enough of the Redis protocol to ask a test server something (PING, CLUSTER
//! INFO, INFO commandstats) without a client library.

use std::io::{BufRead, BufReader, Write};
use std::net::TcpStream;
use std::time::Duration;

use crate::{Error, Result};

/// Sends one command to `127.0.0.1:port` and returns its reply as text: a status or bulk
/// string as is, an integer in decimal, an array's elements one per line. An error reply
/// is an `Err`.
pub(crate) fn command(port: u16, args: &[&str]) -> Result<String> {
    let io = |e: std::io::Error| Error::new(format!("redis on port {port}: {e}"));
    let stream = TcpStream::connect_timeout(&([127, 0, 0, 1], port).into(), Duration::from_secs(1))
        .map_err(io)?;
    stream
        .set_read_timeout(Some(Duration::from_secs(5)))
        .map_err(io)?;
    let mut req = format!("*{}\r\n", args.len()).into_bytes();
    for a in args {
        req.extend_from_slice(format!("${}\r\n", a.len()).as_bytes());
        req.extend_from_slice(a.as_bytes());
        req.extend_from_slice(b"\r\n");
    }
    (&stream).write_all(&req).map_err(io)?;
    let mut reader = BufReader::new(stream);
    read_reply(&mut reader).map_err(|e| Error::new(format!("redis on port {port}: {e}")))
}

fn read_reply(r: &mut impl BufRead) -> std::result::Result<String, String> {
    let mut line = String::new();
    r.read_line(&mut line).map_err(|e| e.to_string())?;
    let line = line.trim_end_matches(['\r', '\n']);
    let (kind, rest) = line.split_at_checked(1).ok_or("connection closed")?;
    match kind {
        "+" | ":" => Ok(rest.to_owned()),
        "-" => Err(rest.to_owned()),
        "$" => {
            let len: i64 = rest.parse().map_err(|_| format!("bad reply {line:?}"))?;
            if len < 0 {
                return Ok(String::new());
            }
            let mut buf = vec![0; len as usize + 2];
            r.read_exact(&mut buf).map_err(|e| e.to_string())?;
            buf.truncate(len as usize);
            String::from_utf8(buf).map_err(|e| e.to_string())
        }
        "*" => {
            let n: i64 = rest.parse().map_err(|_| format!("bad reply {line:?}"))?;
            let items = (0..n.max(0))
                .map(|_| read_reply(r))
                .collect::<Result<Vec<_>, _>>()?;
            Ok(items.join("\n"))
        }
        _ => Err(format!("unexpected reply {line:?}")),
    }
}
