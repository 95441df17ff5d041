//! Connection commands: PING, ECHO, SELECT, QUIT, AUTH, HELLO, RESET.

use bytes::Bytes;

use crate::cmd::args;
use crate::context::{CmdError, CmdResult, Ctx, errors};
use crate::spec::{CommandSpec, category as cat, flag};

/// The Valkey release whose behaviour ferrokv reproduces; HELLO reports it as `version`.
pub const COMPATIBLE_VERSION: &str = "9.1.2";

/// Flags shared by the commands a client may send before authenticating.
const HANDSHAKE_FLAGS: u64 =
    flag::NOSCRIPT | flag::LOADING | flag::STALE | flag::FAST | flag::NO_AUTH | flag::ALLOW_BUSY;

pub const COMMANDS: &[CommandSpec] = &[
    CommandSpec::new("ping", -1, "connection")
        .flags(flag::FAST | flag::SENTINEL)
        .categories(cat::CONNECTION)
        .tips(&["request_policy:all_shards", "response_policy:all_succeeded"])
        .doc("1.0.0", "Returns the server's liveliness response.", "O(1)")
        .handler(ping),
    CommandSpec::new("echo", 2, "connection")
        .flags(flag::LOADING | flag::STALE | flag::FAST)
        .categories(cat::CONNECTION)
        .doc("1.0.0", "Returns the given string.", "O(1)")
        .handler(echo),
    CommandSpec::new("select", 2, "connection")
        .flags(flag::LOADING | flag::STALE | flag::FAST | flag::ALLOW_BUSY)
        .categories(cat::CONNECTION)
        .doc("1.0.0", "Changes the selected database.", "O(1)")
        .handler(select),
    CommandSpec::new("quit", -1, "connection")
        .flags(HANDSHAKE_FLAGS)
        .categories(cat::CONNECTION)
        .doc("1.0.0", "Closes the connection.", "O(1)")
        .handler(quit),
    CommandSpec::new("auth", -2, "connection")
        .flags(HANDSHAKE_FLAGS)
        .categories(cat::CONNECTION)
        .doc(
            "1.0.0",
            "Authenticates the connection.",
            "O(N) where N is the number of passwords defined for the user",
        )
        .handler(auth),
    CommandSpec::new("hello", -1, "connection")
        .flags(HANDSHAKE_FLAGS)
        .categories(cat::CONNECTION)
        .doc(
            "6.0.0",
            "Handshakes with the server: protocol version, credentials, connection name.",
            "O(1)",
        )
        .handler(hello),
    CommandSpec::new("reset", 1, "connection")
        .flags(HANDSHAKE_FLAGS)
        .categories(cat::CONNECTION)
        .doc(
            "6.2.0",
            "Returns the connection to its initial state.",
            "O(1)",
        )
        .handler(reset),
];

/// `PING [message]`
fn ping(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    if ctx.client.protocol == 2 && ctx.client.subscriptions.any() {
        // A RESP2 subscriber reads pushes only: PING answers in their shape.
        ctx.reply.array_len(2);
        ctx.reply.bulk(b"pong");
        ctx.reply.bulk(args.get(1).map_or(&b""[..], |m| &m[..]));
        return Ok(());
    }
    match args {
        [_] => ctx.reply.simple("PONG"),
        [_, message] => ctx.reply.bulk(message),
        _ => return Err(crate::dispatch::arity_error("ping")),
    }
    Ok(())
}

/// `ECHO message`
fn echo(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    ctx.reply.bulk(&args[1]);
    Ok(())
}

/// `SELECT index`
fn select(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    let index = args::int(&args[1])?;
    if index < 0 || index >= ctx.server.keyspace.databases() as i64 {
        return Err(errors::DB_INDEX_OUT_OF_RANGE);
    }
    ctx.client.select(index as usize);
    ctx.reply.ok();
    Ok(())
}

/// `QUIT`: replies OK, then the connection closes once the reply is written.
fn quit(ctx: &mut Ctx, _args: &[Bytes]) -> CmdResult {
    ctx.reply.ok();
    ctx.client.close_after_reply = true;
    ctx.client.shared.mark_quitting();
    Ok(())
}

/// `AUTH [username] password`. The one-argument form names the default user, and is an
/// error while that user needs no password (Valkey's compatibility rule).
fn auth(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    let (user, password) = match args {
        [_, password] => {
            if ctx.server.acl.default_user().nopass {
                return Err(CmdError::err(
                    "AUTH <password> called without any password configured for the default user. Are you sure your configuration is correct?",
                ));
            }
            (&b"default"[..], password)
        }
        [_, user, password] => (&user[..], password),
        _ => return Err(errors::SYNTAX),
    };
    crate::acl::authenticate(ctx.server, ctx.client, &args[0], user, password, ctx.now_ms)?;
    ctx.reply.ok();
    Ok(())
}

/// `HELLO [protover [AUTH username password] [SETNAME clientname]]`
fn hello(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    let mut protocol = None;
    if let Some(ver) = args.get(1) {
        let ver = ferrokv_protocol::number::parse_i64(ver)
            .ok_or_else(|| CmdError::err("Protocol version is not an integer or out of range"))?;
        if !(2..=3).contains(&ver) {
            return Err(CmdError::new("NOPROTO unsupported protocol version"));
        }
        protocol = Some(ver as u8);
    }
    let mut credentials = None;
    let mut name = None;
    let mut i = 2;
    while i < args.len() {
        let more = args.len() - 1 - i;
        let option = &args[i];
        if args::is(option, "auth") && more >= 2 {
            credentials = Some((&args[i + 1], &args[i + 2]));
            i += 3;
        } else if args::is(option, "setname") && more >= 1 {
            name = Some(&args[i + 1]);
            i += 2;
        } else {
            return Err(CmdError::err(format!(
                "Syntax error in HELLO option '{}'",
                String::from_utf8_lossy(option)
            )));
        }
    }
    // Valkey validates the name before authenticating, and sets it only after.
    if let Some(name) = name {
        crate::cmd::client::validate_name(name)?;
    }
    if let Some((user, password)) = credentials {
        crate::acl::authenticate(ctx.server, ctx.client, &args[0], user, password, ctx.now_ms)?;
    }
    if !ctx.client.authenticated {
        return Err(CmdError::new(
            "NOAUTH HELLO must be called with the client already authenticated, otherwise the HELLO <proto> AUTH <user> <pass> option can be used to authenticate the client and select the RESP protocol version at the same time",
        ));
    }
    if let Some(name) = name {
        crate::cmd::client::set_name(ctx, name);
    }
    if let Some(protocol) = protocol {
        ctx.client.set_protocol(protocol);
        ctx.reply.set_resp3(protocol == 3);
    }
    // Clients that route by zone read it from HELLO when the server is given one.
    let zone = ctx.client.config.availability_zone.clone();
    // `extended-redis-compatibility yes`: for clients that insist on talking to Redis.
    let (server, version) = if ctx.client.config.extended_redis_compatibility {
        ("redis", crate::cmd::info::REDIS_VERSION)
    } else {
        ("valkey", COMPATIBLE_VERSION)
    };
    let r = &mut *ctx.reply;
    r.map_len(if zone.is_empty() { 7 } else { 8 });
    r.bulk(b"server");
    r.bulk(server.as_bytes());
    r.bulk(b"version");
    r.bulk(version.as_bytes());
    r.bulk(b"proto");
    r.int(ctx.client.protocol as i64);
    r.bulk(b"id");
    r.int(ctx.client.id as i64);
    r.bulk(b"mode");
    r.bulk(b"standalone");
    r.bulk(b"role");
    r.bulk(if ctx.server.replication.is_replica() {
        b"replica".as_slice()
    } else {
        b"master".as_slice()
    });
    r.bulk(b"modules");
    // Valkey lists its built-in Lua engine as a module; clients that parse this see the
    // same shape from ferrokv.
    r.array_len(1);
    r.map_len(4);
    r.bulk(b"name");
    r.bulk(b"lua");
    r.bulk(b"ver");
    r.int(1);
    r.bulk(b"path");
    r.bulk(b"lua");
    r.bulk(b"args");
    r.array_len(0);
    if !zone.is_empty() {
        r.bulk(b"availability_zone");
        r.bulk(zone.as_bytes());
    }
    Ok(())
}

/// `RESET`: back to the state of a fresh connection (see `Client::reset`).
fn reset(ctx: &mut Ctx, _args: &[Bytes]) -> CmdResult {
    crate::transaction::discard(ctx.server, ctx.client);
    crate::pubsub::unsubscribe_all(ctx.server, ctx.client);
    crate::tracking::disable(ctx.server, &ctx.client.shared);
    stop_monitoring(ctx);
    ctx.client.reset();
    crate::acl::attach_default(ctx.server, ctx.client);
    ctx.reply.set_resp3(false);
    ctx.reply.simple("RESET");
    Ok(())
}

/// RESET ends MONITOR mode, as in Valkey.
fn stop_monitoring(ctx: &mut Ctx) {
    if ctx.client.monitor {
        ctx.client.monitor = false;
        ctx.client
            .shared
            .set_flag(crate::client::flags::MONITOR, false);
        ctx.server.monitors.remove(ctx.client.id);
    }
}
