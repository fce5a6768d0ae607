//! A chunked body decoded byte by byte (RFC 9112 §7.1): sizes, extensions, data, and
//! trailers, which are read and dropped.

use bytes::{Buf, BytesMut};

use super::{Decoded, ProtocolError};

/// The longest chunk-size line (size and extensions) accepted.
pub(super) const MAX_CHUNK_LINE: usize = 4 * 1024;
/// The most trailer bytes accepted after a chunked body (trailers are not forwarded).
pub(super) const MAX_TRAILERS: usize = 16 * 1024;

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
    /// True once the last chunk and the trailers have been read.
    pub(super) fn is_done(&self) -> bool {
        self.state == State::Done
    }

    /// Takes the next piece of data out of `buf`, consuming the framing around it.
    pub(super) fn decode(&mut self, buf: &mut BytesMut) -> Result<Decoded, ProtocolError> {
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
