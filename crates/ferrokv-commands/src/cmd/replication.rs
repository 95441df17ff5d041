//! REPLICAOF/SLAVEOF, ROLE, REPLCONF, PSYNC/SYNC, WAIT, WAITAOF and FAILOVER. The state is in
//! `crate::replication`; the replica feed and the link to a primary run in the
//! `ferrokv-replication` crate.

use std::sync::atomic::Ordering::Relaxed;

use bytes::Bytes;
use ferrokv_store::clock;

use crate::blocking::{Delivery, Parked};
use crate::client::Handoff;
use crate::cmd::args;
use crate::context::{CmdError, CmdResult, Ctx};
use crate::replication::{Handshake, LinkState, failover, wait};
use crate::spec::{CommandSpec, category as cat, flag};

const REPLICAOF_FLAGS: u64 = flag::ADMIN | flag::NOSCRIPT | flag::STALE | flag::NO_ASYNC_LOADING;
const SYNC_FLAGS: u64 = flag::ADMIN | flag::NOSCRIPT | flag::NO_ASYNC_LOADING | flag::NO_MULTI;
const ADMIN_CATS: u64 = cat::ADMIN | cat::SLOW | cat::DANGEROUS;

pub const COMMANDS: &[CommandSpec] = &[
    CommandSpec::new("replicaof", 3, "server")
        .flags(REPLICAOF_FLAGS)
        .categories(ADMIN_CATS)
        .doc(
            "5.0.0",
            "Configures a server as replica of another, or promotes it to a primary.",
            "O(1)",
        )
        .handler(replicaof),
    CommandSpec::new("slaveof", 3, "server")
        .flags(REPLICAOF_FLAGS)
        .categories(ADMIN_CATS)
        .doc(
            "1.0.0",
            "Sets a server as a replica of another, or promotes it to being a primary.",
            "O(1)",
        )
        .handler(replicaof),
    CommandSpec::new("role", 1, "server")
        .flags(flag::NOSCRIPT | flag::LOADING | flag::STALE | flag::FAST)
        .categories(cat::ADMIN | cat::FAST | cat::DANGEROUS)
        .doc(
            "2.8.12",
            "Returns the replication role.",
            "O(1)",
        )
        .handler(role),
    CommandSpec::new("replconf", -1, "server")
        .flags(flag::ADMIN | flag::NOSCRIPT | flag::LOADING | flag::STALE | flag::ALLOW_BUSY)
        .categories(ADMIN_CATS)
        .doc(
            "3.0.0",
            "An internal command for configuring the replication stream.",
            "O(1)",
        )
        .handler(replconf),
    CommandSpec::new("psync", -3, "server")
        .flags(SYNC_FLAGS)
        .categories(ADMIN_CATS)
        .doc(
            "2.8.0",
            "An internal command used in replication.",
            "",
        )
        .handler(psync),
    CommandSpec::new("sync", 1, "server")
        .flags(SYNC_FLAGS)
        .categories(ADMIN_CATS)
        .doc(
            "1.0.0",
            "An internal command used in replication.",
            "",
        )
        .handler(sync),
    CommandSpec::new("wait", 3, "generic")
        .flags(flag::BLOCKING)
        .categories(cat::SLOW | cat::BLOCKING | cat::CONNECTION)
        .tips(&["request_policy:all_shards", "response_policy:agg_min"])
        .doc(
            "3.0.0",
            "Blocks until the asynchronous replication of all preceding write commands sent by the connection is completed.",
            "O(1)",
        )
        .handler(wait),
    CommandSpec::new("waitaof", 4, "generic")
        .flags(flag::BLOCKING)
        .categories(cat::SLOW | cat::BLOCKING | cat::CONNECTION)
        .tips(&["request_policy:all_shards", "response_policy:agg_min"])
        .doc(
            "7.2.0",
            "Blocks until all of the preceding write commands sent by the connection are written to the append-only file of the primary and/or replicas.",
            "O(1)",
        )
        .handler(waitaof),
    CommandSpec::new("failover", -1, "server")
        .flags(flag::ADMIN | flag::NOSCRIPT | flag::STALE)
        .categories(ADMIN_CATS)
        .doc(
            "6.2.0",
            "Starts a coordinated failover from a server to one of its replicas.",
            "O(1)",
        )
        .handler(failover_command),
];

/// `REPLICAOF host port | NO ONE`
fn replicaof(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    let server = ctx.server;
    if server.replication.failover.lock().phase != failover::Phase::None {
        return Err(CmdError::err("REPLICAOF not allowed while failing over."));
    }
    if args::is(&args[1], "no") && args::is(&args[2], "one") {
        if server.replication.promote(server.stream) {
            log::info!(
                "MASTER MODE enabled (user request from 'id={}')",
                ctx.client.id
            );
        }
        ctx.reply.ok();
        return Ok(());
    }
    let host = String::from_utf8_lossy(&args[1]).into_owned();
    let port = args::int(&args[2])?;
    let port = u16::try_from(port).map_err(|_| CmdError::err("Invalid master port"))?;
    if !server.replication.follow(server.stream, &host, port) {
        ctx.reply.simple("OK Already connected to specified master");
        return Ok(());
    }
    log::info!(
        "REPLICAOF {host}:{port} enabled (user request from 'id={}')",
        ctx.client.id
    );
    ctx.reply.ok();
    Ok(())
}

/// `ROLE`
fn role(ctx: &mut Ctx, _args: &[Bytes]) -> CmdResult {
    let server = ctx.server;
    let r = &mut *ctx.reply;
    match server.replication.primary() {
        None => {
            let replicas = server.replication.replicas();
            let online: Vec<_> = replicas.iter().filter(|p| p.online()).collect();
            r.array_len(3);
            r.bulk(b"master");
            r.int(server.stream.end() as i64);
            r.array_len(online.len());
            for peer in online {
                r.array_len(3);
                r.bulk(peer.ip.as_bytes());
                r.bulk(peer.listening_port.to_string().as_bytes());
                r.bulk(peer.ack_offset.load(Relaxed).to_string().as_bytes());
            }
        }
        Some(link) => {
            r.array_len(5);
            r.bulk(b"slave");
            r.bulk(link.host.as_bytes());
            r.int(link.port as i64);
            r.bulk(link.state.role_name().as_bytes());
            let offset = if link.state == LinkState::Connected {
                server.stream.end() as i64
            } else {
                -1
            };
            r.int(offset);
        }
    }
    Ok(())
}

/// `REPLCONF option value ...` before PSYNC (`listening-port`, `ip-address`, `capa`, ...).
/// After PSYNC the feed reads the replica's ACKs itself; from a primary, GETACK is answered
/// by the link task.
fn replconf(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    if args.len().is_multiple_of(2) {
        return Err(crate::context::errors::SYNTAX);
    }
    let handshake = ctx
        .client
        .repl_handshake
        .get_or_insert_with(Box::<Handshake>::default);
    for pair in args[1..].chunks(2) {
        let (option, value) = (&pair[0], &pair[1]);
        if args::is(option, "listening-port") {
            let port = args::int(value)?;
            handshake.listening_port = u16::try_from(port).unwrap_or(0);
        } else if args::is(option, "ip-address") {
            handshake.ip = Some(String::from_utf8_lossy(value).into_owned());
        } else if args::is(option, "capa") {
            if args::is(value, "eof") {
                handshake.capa_eof = true;
            } else if args::is(value, "psync2") {
                handshake.capa_psync2 = true;
            }
        } else if args::is(option, "ack") || args::is(option, "getack") || args::is(option, "fack")
        {
            // Only meaningful on a replication link; a normal client gets no reply.
            return Ok(());
        } else if [
            "rdb-only",
            "rdb-filter-only",
            "version",
            "rdb-channel",
            "main-ch-client-id",
        ]
        .iter()
        .any(|known| args::is(option, known))
        {
            // Accepted and ignored: ferrokv offers neither RDB-only syncs nor dual channels.
        } else {
            return Err(CmdError::err(format!(
                "Unrecognized REPLCONF option: {}",
                String::from_utf8_lossy(option)
            )));
        }
    }
    ctx.reply.ok();
    Ok(())
}

/// A primary handing its role over takes no new replicas.
fn refuse_sync_during_failover(ctx: &Ctx) -> CmdResult {
    if ctx.server.replication.failover.lock().phase != failover::Phase::None {
        return Err(CmdError::new("NOMASTERLINK Can't SYNC while failing over"));
    }
    Ok(())
}

/// A replica of a disconnected primary has nothing current to offer.
fn refuse_sync_without_link(ctx: &Ctx) -> CmdResult {
    if ctx
        .server
        .replication
        .primary()
        .is_some_and(|link| link.state != LinkState::Connected)
    {
        return Err(CmdError::new(
            "NOMASTERLINK Can't SYNC while not connected with my master",
        ));
    }
    Ok(())
}

/// `PSYNC replid offset [FAILOVER]`: the connection becomes a replica feed after this
/// command (the feed answers `+FULLRESYNC` or `+CONTINUE`). With FAILOVER, our primary hands
/// its role over: this server becomes a primary first, so the former primary continues from
/// it under `replid2`.
fn psync(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    let server = ctx.server;
    if args.len() > 3 && args::is(&args[3], "failover") {
        if !server.replication.is_replica() {
            return Err(CmdError::err("PSYNC FAILOVER can't be sent to a master."));
        }
        if args[1] != server.replication.ids().replid.as_bytes() {
            return Err(CmdError::err("PSYNC FAILOVER replid must match my replid."));
        }
        log::info!(
            "Failover request received for replid {}.",
            String::from_utf8_lossy(&args[1])
        );
        if server.replication.promote(server.stream) {
            log::info!(
                "PRIMARY MODE enabled (failover request from 'id={}')",
                ctx.client.id
            );
        }
    }
    refuse_sync_during_failover(ctx)?;
    refuse_sync_without_link(ctx)?;
    let replid = String::from_utf8_lossy(&args[1]).into_owned();
    let offset = args::int(&args[2]).unwrap_or(-1);
    ctx.client.handoff = Some(Handoff::Replica {
        psync: Some((replid, offset)),
    });
    Ok(())
}

/// `SYNC`: the pre-PSYNC protocol (always a full copy, no `+FULLRESYNC` line).
fn sync(ctx: &mut Ctx, _args: &[Bytes]) -> CmdResult {
    refuse_sync_during_failover(ctx)?;
    refuse_sync_without_link(ctx)?;
    ctx.client.handoff = Some(Handoff::Replica { psync: None });
    Ok(())
}

/// `WAIT numreplicas timeout`
fn wait(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    if ctx.server.replication.is_replica() {
        return Err(CmdError::err(
            "WAIT cannot be used with replica instances. Please also note that if a replica is configured to be writable (which is not the default) writes to replicas are just local and are not propagated.",
        ));
    }
    let needed = args::int(&args[1])?;
    let timeout = wait_timeout(&args[2])?;
    wait_or_park(
        ctx,
        wait::Want::Acked {
            replicas: needed.max(0) as usize,
        },
        timeout,
    )
}

/// `WAITAOF numlocal numreplicas timeout`
fn waitaof(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    let local = args::int(&args[1])?;
    if !(0..=1).contains(&local) {
        return Err(CmdError::err(
            "value is out of range, value must between 0 and 1",
        ));
    }
    let replicas = args::int(&args[2])
        .ok()
        .filter(|n| *n >= 0)
        .ok_or_else(|| CmdError::err("value is out of range, must be positive"))?;
    let timeout = wait_timeout(&args[3])?;
    let server = ctx.server;
    if server.replication.is_replica() {
        return Err(CmdError::err(
            "WAITAOF cannot be used with replica instances. Please also note that writes to replicas are just local and are not propagated.",
        ));
    }
    if local == 1 && !server.aof.enabled() {
        return Err(CmdError::err(
            "WAITAOF cannot be used when numlocal is set but appendonly is disabled.",
        ));
    }
    wait_or_park(
        ctx,
        wait::Want::Fsynced {
            local: local == 1,
            replicas: replicas as usize,
        },
        timeout,
    )
}

/// The timeout of WAIT and WAITAOF, in milliseconds (0: none).
fn wait_timeout(arg: &[u8]) -> Result<i64, CmdError> {
    let timeout =
        args::int(arg).map_err(|_| CmdError::err("timeout is not an integer or out of range"))?;
    if timeout < 0 {
        return Err(CmdError::err("timeout is negative"));
    }
    Ok(timeout)
}

/// Answers at once when `want` is reached (or the client may not block), else parks the
/// client until an ACK or a local fsync reaches it, or its timeout.
fn wait_or_park(ctx: &mut Ctx, want: wait::Want, timeout: i64) -> CmdResult {
    let server = ctx.server;
    // Everything this client wrote is before the stream's current end.
    let offset = server.stream.end();
    let replicas = server.replication.replicas();
    let (reply, reached) = wait::answer(server, &replicas, offset, want);
    if reached || ctx.client.deny_blocking {
        ctx.reply.raw(&reply);
        return Ok(());
    }
    let delivery: Delivery = Default::default();
    server
        .replication
        .waits
        .add(ctx.client.shared.clone(), offset, want, delivery.clone());
    ctx.client.blocked = Some(Parked {
        delivery,
        deadline_ms: (timeout > 0).then(|| clock::now_ms() + timeout),
    });
    // Ask every replica where it stands now rather than at its next second's ACK.
    if !replicas.is_empty() {
        server.stream.append_replica_only(&[
            Bytes::from_static(b"REPLCONF"),
            Bytes::from_static(b"GETACK"),
            Bytes::from_static(b"*"),
        ]);
    }
    Ok(())
}

/// `FAILOVER [TO host port [FORCE]] [ABORT] [TIMEOUT milliseconds]`: checks, in Valkey's
/// order, then starts the switch (`replication::failover`) and answers at once.
fn failover_command(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    let server = ctx.server;
    let mut target: Option<(String, i64)> = None;
    let mut force = false;
    let mut abort = false;
    let mut timeout_ms: Option<i64> = None;
    let mut i = 1;
    while i < args.len() {
        let rest = args.len() - i - 1;
        if args::is(&args[i], "to") && rest >= 2 && target.is_none() {
            let port = args::int(&args[i + 2])?;
            target = Some((String::from_utf8_lossy(&args[i + 1]).into_owned(), port));
            i += 3;
        } else if args::is(&args[i], "timeout") && rest >= 1 && timeout_ms.is_none() {
            let ms = args::int(&args[i + 1])?;
            if ms <= 0 {
                return Err(CmdError::err("FAILOVER timeout must be greater than 0"));
            }
            timeout_ms = Some(ms);
            i += 2;
        } else if args::is(&args[i], "force") && !force {
            force = true;
            i += 1;
        } else if args::is(&args[i], "abort") && !abort {
            abort = true;
            i += 1;
        } else {
            return Err(crate::context::errors::SYNTAX);
        }
    }
    if abort {
        if target.is_some() || force || timeout_ms.is_some() {
            return Err(crate::context::errors::SYNTAX);
        }
        if !failover::abort(server, "Failover manually aborted") {
            return Err(CmdError::err("No failover in progress."));
        }
        ctx.reply.ok();
        return Ok(());
    }
    if server.replication.is_replica() {
        return Err(CmdError::err(
            "FAILOVER is not valid when server is a replica.",
        ));
    }
    if server.replication.replicas().is_empty() {
        return Err(CmdError::err("FAILOVER requires connected replicas."));
    }
    if server.replication.failover.lock().phase != failover::Phase::None {
        return Err(CmdError::err("FAILOVER already in progress."));
    }
    if force && (target.is_none() || timeout_ms.is_none()) {
        return Err(CmdError::err(
            "FAILOVER with force option requires both a timeout and target HOST and IP.",
        ));
    }
    let target = match target {
        None => None,
        Some((host, port)) => {
            let replicas = server.replication.replicas();
            let peer = replicas
                .iter()
                .find(|peer| {
                    peer.ip.eq_ignore_ascii_case(&host) && i64::from(peer.listening_port) == port
                })
                .ok_or_else(|| CmdError::err("FAILOVER target HOST and PORT is not a replica."))?;
            if !peer.online() {
                return Err(CmdError::err("FAILOVER target replica is not online."));
            }
            Some((host, peer.listening_port))
        }
    };
    failover::start(server, target, timeout_ms, force);
    ctx.reply.ok();
    Ok(())
}
