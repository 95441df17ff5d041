//! The replica side: the link to the primary (connect, handshake, PSYNC, load the snapshot,
//! apply the command stream, acknowledge).
//!
//! One dedicated thread (`ferrokv-replica`) runs the link with blocking I/O: the snapshot
//! loader reads a `std::io::Read` and dispatch is synchronous, so a single connection gains
//! nothing from an async runtime. Reads wake every 100 ms to notice a REPLICAOF that
//! abandoned the link (the generation moved), a shutdown, or `repl-timeout`.

mod apply;
mod conn;
mod handshake;
mod snapshot;

use std::sync::Arc;
use std::sync::atomic::Ordering::Relaxed;
use std::time::Duration;

use ferrokv_commands::client::{ClientShared, Transport};
use ferrokv_commands::replication::{LinkState, PrimaryLink, ReplIds, failover};
use ferrokv_commands::{Client, Server};
use parking_lot::{Condvar, Mutex};

use conn::{Conn, Io, LinkResult, Stop};
use handshake::Psync;

/// Delay before reconnecting after a failure.
const RETRY_DELAY: Duration = Duration::from_secs(1);

/// Wakes the link thread when REPLICAOF changes the target.
#[derive(Default)]
struct Signal {
    woken: Mutex<bool>,
    cond: Condvar,
}

impl Signal {
    fn notify(&self) {
        *self.woken.lock() = true;
        self.cond.notify_all();
    }

    /// Waits for a notification or `timeout`, whichever comes first.
    fn wait(&self, timeout: Duration) {
        let mut woken = self.woken.lock();
        if !*woken {
            self.cond.wait_for(&mut woken, timeout);
        }
        *woken = false;
    }
}

/// What the link keeps across connections.
struct Session {
    /// The client the primary's commands run as (its database survives a `+CONTINUE`).
    client: Client,
    /// Whether this server's history (replid, stream end) is worth offering to a primary:
    /// after a sync, or a primary that has taken writes and now follows another.
    synced: bool,
}

fn primary_client(server: &Server) -> Client {
    let shared = Arc::new(ClientShared::new(
        server.clients.next_id(),
        String::new(),
        String::new(),
        -1,
        Transport::Script,
        ferrokv_store::clock::now_ms(),
    ));
    let mut client = Client::new(shared, server.config.load(), server.config.epoch());
    // The database the primary's stream goes on in: 0, or the one a snapshot of a previous
    // run recorded (its history continues with a partial sync, without a SELECT first).
    client.select(server.replication.link_db.load(Relaxed) as usize);
    client.authenticated = true;
    client.user = ferrokv_commands::acl::superuser();
    client.deny_blocking = true;
    client.must_obey = true;
    client
}

/// `replicaof` from the configuration: "host port", or empty.
fn configured_primary(text: &str) -> Option<(String, u16)> {
    let (host, port) = text.trim().split_once(' ')?;
    Some((host.to_string(), port.trim().parse().ok()?))
}

/// Starts the link thread (it idles while this server is a primary).
pub fn start(server: Arc<Server>) {
    let signal = Arc::new(Signal::default());
    let waker = signal.clone();
    server
        .replication
        .set_link_waker(Box::new(move || waker.notify()));
    if let Some((host, port)) = configured_primary(&server.config.load().replicaof) {
        server.replication.follow(server.stream, &host, port);
    }
    let spawned = std::thread::Builder::new()
        .name("ferrokv-replica".into())
        .spawn(move || run(&server, &signal));
    if let Err(e) = spawned {
        log::warn!("Could not start the replication link thread: {e}");
    }
}

fn run(server: &Server, signal: &Signal) {
    // Everything this thread runs is the primary's: keys past their expiry stay alive for it
    // until the primary's DEL arrives.
    ferrokv_store::replica_view::enter_primary_view();
    let mut session = Session {
        client: primary_client(server),
        synced: false,
    };
    loop {
        if server.shutdown_requested.load(Relaxed) {
            return;
        }
        let Some(link) = server.replication.primary() else {
            // A primary again: the next REPLICAOF starts from this server's own history.
            session.synced = server.stream.end() > 0;
            signal.wait(RETRY_DELAY);
            continue;
        };
        match follow(server, &link, &mut session) {
            Err(Stop::Abandoned) => {}
            Ok(()) => {}
            Err(Stop::Failed(why)) => {
                log::warn!("{why}");
                // A FAILOVER's target that cannot be reached or refuses: stay the primary.
                if failover::in_progress(server) {
                    failover::abort(
                        server,
                        &format!("Failover target rejected psync request: {why}"),
                    );
                }
                let now = ferrokv_store::clock::now_ms();
                server.replication.update_link(link.generation, |l| {
                    if l.state == LinkState::Connected {
                        log::info!("Connection with primary lost.");
                    }
                    if l.down_since_ms == 0 {
                        l.down_since_ms = now;
                    }
                    l.state = LinkState::Connect;
                });
                signal.wait(RETRY_DELAY);
            }
        }
    }
}

fn set_state(server: &Server, generation: u64, state: LinkState) {
    server
        .replication
        .update_link(generation, |link| link.state = state);
}

/// One connection to the primary, from connecting until it fails or is abandoned.
fn follow(server: &Server, link: &PrimaryLink, session: &mut Session) -> LinkResult<()> {
    let generation = link.generation;
    set_state(server, generation, LinkState::Connecting);
    log::info!("Connecting to PRIMARY {}:{}", link.host, link.port);
    let io = connect(server, link)?;
    let mut conn = Conn::new(io, server, generation)?;
    log::info!("PRIMARY <-> REPLICA sync started");
    set_state(server, generation, LinkState::Handshake);
    // A former primary handing over always offers its own history: the target continues it.
    let failover = failover::in_progress(server);
    let resume = (failover || session.synced || server.stream.end() > 0)
        .then(|| (server.replication.ids().replid, server.stream.end()));
    let psync = handshake::run(&mut conn, resume, failover)?;
    if failover {
        failover::completed(server);
    }
    match psync {
        Psync::Full { replid, offset } => {
            let stream_db = snapshot::receive(&mut conn)?;
            conn.touch();
            conn.check()?;
            // Before the stream restarts: a sub-replica's feed must not read the new
            // history as the continuation of the old one (Valkey disconnects them too).
            server.replication.disconnect_replicas(server.stream);
            server.stream.reset_to(offset);
            server.aof.stream_reset(offset);
            server.replication.set_ids(ReplIds {
                replid,
                replid2: "0".repeat(40),
                second_offset: -1,
            });
            session.client.select(stream_db);
            server.replication.link_db.store(stream_db as u64, Relaxed);
            session.client.multi = None;
            log::info!("PRIMARY <-> REPLICA sync: Finished with success");
            if server.aof.enabled() {
                // The AOF's history ends before the snapshot: start a new one from the data
                // just loaded, as Valkey restarts its AOF after a full sync.
                let mut reply = ferrokv_protocol::Reply::new(false);
                let rewrite = [bytes::Bytes::from_static(b"BGREWRITEAOF")];
                ferrokv_commands::dispatch::execute(
                    server,
                    &mut session.client,
                    &mut reply,
                    &rewrite,
                );
                log::info!(
                    "PRIMARY <-> REPLICA sync: AOF rewrite after the full sync: {}",
                    String::from_utf8_lossy(reply.bytes()).trim_end()
                );
            }
        }
        Psync::Continue { new_replid } => {
            if let Some(replid) = new_replid {
                let mut ids = server.replication.ids();
                if ids.replid != replid {
                    ids.replid2 = std::mem::replace(&mut ids.replid, replid);
                    ids.second_offset = server.stream.end() as i64 + 1;
                    server.replication.set_ids(ids);
                    log::info!("Primary replication ID changed to {}", ids_replid(server));
                    // Sub-replicas must learn the new id: they reconnect and continue under
                    // it (the old one stays valid for them as our `replid2`), as in Valkey.
                    server.replication.disconnect_replicas(server.stream);
                }
            }
            session.client.multi = None;
            log::info!("PRIMARY <-> REPLICA sync: Primary accepted a Partial Resynchronization.");
        }
    }
    session.synced = true;
    let backlog = server.config.load().repl_backlog_size.max(1) as usize;
    server.replication.ensure_backlog(server.stream, backlog);
    server.replication.update_link(generation, |l| {
        l.state = LinkState::Connected;
        l.down_since_ms = 0;
        l.transfer_size = -1;
        l.transfer_read = 0;
    });
    let _listed = list_link(server, &mut conn, &mut session.client);
    apply::run(&mut conn, &mut session.client)
}

/// Unlists the primary's link when the connection ends.
struct Listed<'s> {
    server: &'s Server,
    id: u64,
}

impl Drop for Listed<'_> {
    fn drop(&mut self) {
        self.server.clients.unregister(self.id);
    }
}

/// Lists the connection to the primary as a client (`flags=M` in CLIENT LIST, with the
/// primary's address, as Valkey shows it once synced; MONITOR shows that address too), which
/// CLIENT KILL TYPE master can end. Each connection is a new client; the database it
/// selected carries over.
fn list_link<'s>(server: &'s Server, conn: &mut Conn<'s>, client: &mut Client) -> Listed<'s> {
    let (addr, laddr, fd) = conn.addresses();
    let shared = Arc::new(ClientShared::new(
        server.clients.next_id(),
        addr,
        laddr,
        fd,
        Transport::Tcp,
        ferrokv_store::clock::now_ms(),
    ));
    shared.set_flag(ferrokv_commands::client::flags::PRIMARY, true);
    client.id = shared.id;
    client.shared = shared.clone();
    client.select(client.db);
    server.clients.register(shared.clone());
    conn.listed_as(shared.clone());
    Listed {
        server,
        id: shared.id,
    }
}

fn ids_replid(server: &Server) -> String {
    server.replication.ids().replid
}

/// TCP, then TLS when `tls-replication` is on.
fn connect(server: &Server, link: &PrimaryLink) -> LinkResult<Io> {
    let config = server.config.load();
    let timeout = Duration::from_secs(config.repl_timeout.max(1) as u64);
    let tcp = conn::dial(&link.host, link.port, timeout)?;
    if !config.tls_replication {
        return Ok(Io::Plain(tcp));
    }
    let settings = ferrokv_tls::TlsSettings::from_config(&config);
    let tls = ferrokv_tls::build_client(&settings)
        .map_err(|e| Stop::failed(format!("TLS for replication: {}", e.0)))?;
    let name = rustls::pki_types::ServerName::try_from(link.host.clone())
        .map_err(|e| Stop::failed(format!("TLS server name {}: {e}", link.host)))?;
    let session = rustls::ClientConnection::new(tls.connector.config().clone(), name)
        .map_err(|e| Stop::failed(format!("TLS for replication: {e}")))?;
    Ok(Io::Tls(Box::new(rustls::StreamOwned::new(session, tcp))))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replicaof_directive() {
        assert_eq!(
            configured_primary("127.0.0.1 6379"),
            Some(("127.0.0.1".into(), 6379))
        );
        assert_eq!(configured_primary(""), None);
        assert_eq!(configured_primary("host x"), None);
    }
}
