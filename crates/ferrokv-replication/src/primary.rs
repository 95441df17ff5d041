//! The primary side: a replica connection after its PSYNC/SYNC. Being written.

use std::sync::Arc;

use bytes::BytesMut;
use ferrokv_commands::{Client, Server};
use tokio::io::{AsyncRead, AsyncWrite};

/// Serves a replica connection whose PSYNC (`Some((replid, offset))`) or SYNC (`None`) just
/// ran, until it goes away.
pub async fn serve_replica<S>(
    _server: &Arc<Server>,
    _stream: &mut S,
    _client: &mut Client,
    _input: &mut BytesMut,
    _psync: Option<(String, i64)>,
) -> Result<(), String>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    Err("replica feeding is not written yet".into())
}
