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

mod body;
mod chunked;
mod request;
mod response;
#[cfg(test)]
mod tests;

pub use body::{BodyDecoder, Decoded};
pub use chunked::Chunked;
pub use request::{LAST_CHUNK, RequestFraming, write_chunk, write_request_head};
pub use response::{ResponseHead, parse_response_head};

/// The largest response head accepted (hyper's client allows about 400 KiB; a backend
/// that needs more than this is misbehaving).
pub const MAX_HEAD: usize = 64 * 1024;
/// The most header lines accepted in a response head (hyper's default).
pub const MAX_HEADERS: usize = 100;

/// A response from the backend that breaks HTTP/1.1's framing rules.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProtocolError {
    /// The head did not end within `MAX_HEAD` (64 KiB).
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
