//! The Redis serialization protocol as ferrokv speaks it.
//!
//! [`request`] turns bytes from a client into argument vectors (multibulk and inline forms),
//! enforcing the limits Valkey enforces with the same error texts. [`reply`] encodes replies
//! for either protocol version, so command code never branches on RESP2 versus RESP3.

#![forbid(unsafe_code)]

pub mod framing;
mod grisu;
pub mod number;
pub mod reply;
pub mod request;
pub mod split_args;

pub use reply::Reply;
pub use request::{ParseLimits, ProtocolError, RequestParser};
