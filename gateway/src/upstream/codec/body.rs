//! The response body read out of the connection's buffer, in the framing its head chose.

use bytes::{Bytes, BytesMut};

use super::{Chunked, ProtocolError};

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
            Self::Chunked(c) => c.is_done(),
            Self::UntilClose => false,
        }
    }

    /// The bytes left, when known.
    pub fn remaining(&self) -> Option<u64> {
        match self {
            Self::Length(n) => Some(*n),
            Self::Chunked(c) if c.is_done() => Some(0),
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
