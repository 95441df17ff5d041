//! One client connection: read, parse, execute, write — in batches.
//!
//! Every request already in the read buffer is executed before anything is written, and all
//! their replies go out in one write: a pipeline of N requests costs one read and one write
//! syscall, not N of each.

use std::sync::Arc;
use std::time::Duration;

use bytes::BytesMut;
use ferrokv_commands::client::ClientShared;
use ferrokv_commands::{Client, Server, dispatch, stats};
use ferrokv_protocol::{ParseLimits, Reply, RequestParser};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::sync::Notify;

/// Replies are flushed early once this much is pending, so one huge pipeline does not build
/// an unbounded output buffer before the first byte goes out.
const FLUSH_THRESHOLD: usize = 64 * 1024;
const READ_CHUNK: usize = 16 * 1024;

pub async fn serve<S>(server: Arc<Server>, mut stream: S, shared: Arc<ClientShared>)
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let wake = Arc::new(Notify::new());
    {
        let wake = wake.clone();
        shared.set_waker(Box::new(move || wake.notify_one()));
    }
    server.clients.register(shared.clone());
    stats::local().connections_received.add(1);

    let mut client = Client::new(shared.clone(), server.config.load(), server.config.epoch());
    let mut reply = Reply::new(false);
    let mut parser = RequestParser::new();
    let mut input = BytesMut::with_capacity(READ_CHUNK);

    let outcome = run(
        &server,
        &mut stream,
        &mut client,
        &mut reply,
        &mut parser,
        &mut input,
        &wake,
    )
    .await;
    if let Err(reason) = outcome {
        log::debug!(
            "Client id={} addr={} closed: {reason}",
            shared.id,
            shared.addr
        );
    }
    let _ = stream.shutdown().await;
    server.clients.unregister(shared.id);
}

async fn run<S>(
    server: &Server,
    stream: &mut S,
    client: &mut Client,
    reply: &mut Reply,
    parser: &mut RequestParser,
    input: &mut BytesMut,
    wake: &Notify,
) -> Result<(), String>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let stats = stats::local();
    loop {
        if client.shared.is_killed() {
            return Err("killed".into());
        }
        if input.capacity() - input.len() < READ_CHUNK / 2 {
            input.reserve(READ_CHUNK);
        }
        let idle_timeout = client.config.timeout;
        let read = async {
            if idle_timeout > 0 {
                match tokio::time::timeout(
                    Duration::from_secs(idle_timeout as u64),
                    stream.read_buf(input),
                )
                .await
                {
                    Ok(r) => r,
                    Err(_) => Err(std::io::Error::new(
                        std::io::ErrorKind::TimedOut,
                        "idle timeout",
                    )),
                }
            } else {
                stream.read_buf(input).await
            }
        };
        let n = tokio::select! {
            biased;
            _ = wake.notified() => continue,
            r = read => r.map_err(|e| e.to_string())?,
        };
        if n == 0 {
            return Err("connection closed by client".into());
        }
        stats.net_input_bytes.add(n as u64);

        let mut protocol_error = None;
        loop {
            let limits = ParseLimits {
                max_bulk_len: client.config.proto_max_bulk_len,
                unauthenticated: !client.authenticated,
                from_primary: false,
            };
            match parser.next_request(input, &limits) {
                Ok(Some(args)) => {
                    dispatch::execute(server, client, reply, &args);
                    if client.close_after_reply {
                        break;
                    }
                    if reply.len() >= FLUSH_THRESHOLD {
                        flush(stream, reply).await?;
                    }
                }
                Ok(None) => break,
                Err(e) => {
                    log::debug!(
                        "Protocol error ({e}) from client id={} addr={}",
                        client.id,
                        client.shared.addr
                    );
                    reply.error(&format!("ERR {e}"));
                    protocol_error = Some(e);
                    break;
                }
            }
        }
        client
            .shared
            .query_buffer
            .store(input.len(), std::sync::atomic::Ordering::Relaxed);
        flush(stream, reply).await?;
        if let Some(e) = protocol_error {
            return Err(format!("protocol error: {e}"));
        }
        if client.close_after_reply {
            return Err("closed after reply".into());
        }
        if input.len() as i64 > client.config.client_query_buffer_limit {
            log::warn!(
                "Closing client that reached max query buffer length: id={} addr={} qbuf={}",
                client.id,
                client.shared.addr,
                input.len()
            );
            return Err("query buffer limit".into());
        }
    }
}

async fn flush<S: AsyncWrite + Unpin>(stream: &mut S, reply: &mut Reply) -> Result<(), String> {
    if reply.is_empty() {
        return Ok(());
    }
    stream
        .write_all(reply.bytes())
        .await
        .map_err(|e| e.to_string())?;
    stats::local().net_output_bytes.add(reply.len() as u64);
    reply.clear();
    Ok(())
}
