//! CLIENT and its subcommands: a connection's own settings (SETNAME, REPLY, NO-TOUCH ...), and
//! the view of every connection (LIST, KILL, PAUSE).

use std::sync::Arc;
use std::sync::atomic::Ordering::Relaxed;

use bytes::Bytes;

use crate::client::{ClientShared, ReplyMode};
use crate::cmd::args;
use crate::context::{CmdError, CmdResult, Ctx, errors};
use crate::pause::{self, PauseKind, PausePurpose};
use crate::spec::{CommandSpec, category as cat, flag};
use crate::table::TABLE;

mod filter;
use filter::Filter;

const BASE: u64 = flag::NOSCRIPT | flag::LOADING | flag::STALE;
const ADMIN: u64 = flag::ADMIN | BASE;

const fn sub(name: &'static str, arity: i32, flags: u64) -> CommandSpec {
    CommandSpec::new(name, arity, "connection")
        .flags(flags)
        .categories(cat::CONNECTION)
}

const ALL_NODES: &[&str] = &["request_policy:all_nodes", "response_policy:all_succeeded"];

pub const COMMANDS: &[CommandSpec] = &[CommandSpec::new("client", -2, "connection")
    .doc(
        "2.4.0",
        "A container for client connection commands.",
        "Depends on subcommand.",
    )
    .subcommands(SUBCOMMANDS)];

const SUBCOMMANDS: &[CommandSpec] = &[
    sub("caching", 3, BASE | flag::ALLOW_BUSY)
        .doc(
            "6.0.0",
            "Tells the server whether to track the keys of the next request.",
            "O(1)",
        )
        .handler(caching),
    sub("getredir", 2, BASE | flag::ALLOW_BUSY)
        .doc(
            "6.0.0",
            "Returns the client id that tracking notifications are redirected to.",
            "O(1)",
        )
        .handler(getredir),
    sub("no-touch", 3, BASE | flag::ALLOW_BUSY)
        .doc(
            "7.2.0",
            "Stops or resumes updating the LRU/LFU of the keys this client reads.",
            "O(1)",
        )
        .handler(no_touch),
    sub("reply", 3, BASE | flag::NO_MULTI | flag::ALLOW_BUSY)
        .doc(
            "3.2.0",
            "Turns the replies to this connection on or off, or skips the next.",
            "O(1)",
        )
        .handler(reply),
    sub("setinfo", 4, BASE | flag::ALLOW_BUSY)
        .tips(ALL_NODES)
        .doc(
            "7.2.0",
            "Records the client library's name or version.",
            "O(1)",
        )
        .handler(setinfo),
    sub("kill", -3, ADMIN)
        .doc(
            "2.4.0",
            "Closes the connections that match a filter.",
            "O(N) where N is the number of client connections",
        )
        .handler(kill),
    sub("list", -2, ADMIN)
        .tips(&["nondeterministic_output"])
        .doc(
            "2.4.0",
            "Describes the open connections.",
            "O(N) where N is the number of client connections",
        )
        .handler(list),
    sub("pause", -3, ADMIN)
        .doc(
            "3.0.0",
            "Holds back command processing for a while.",
            "O(1)",
        )
        .handler(pause),
    sub("setname", 3, BASE | flag::ALLOW_BUSY)
        .tips(ALL_NODES)
        .doc("2.6.9", "Names the connection.", "O(1)")
        .handler(setname),
    sub("unblock", -3, ADMIN)
        .doc(
            "5.0.0",
            "Wakes a client blocked in a blocking command, from another connection.",
            "O(log N) where N is the number of client connections",
        )
        .handler(unblock),
    sub("getname", 2, BASE | flag::ALLOW_BUSY)
        .doc("2.6.9", "Returns the connection's name.", "O(1)")
        .handler(getname),
    sub("id", 2, BASE | flag::ALLOW_BUSY)
        .doc("5.0.0", "Returns the connection's unique id.", "O(1)")
        .handler(id),
    sub("info", 2, BASE)
        .tips(&["nondeterministic_output"])
        .doc("6.2.0", "Describes this connection.", "O(1)")
        .handler(info),
    sub("no-evict", 3, ADMIN | flag::ALLOW_BUSY)
        .doc(
            "7.0.0",
            "Exempts the connection from client eviction, or not.",
            "O(1)",
        )
        .handler(no_evict),
    sub("tracking", -3, BASE)
        .doc(
            "6.0.0",
            "Controls server-assisted client-side caching for the connection.",
            "O(1). Some options may introduce additional complexity.",
        )
        .handler(tracking),
    sub("trackinginfo", 2, BASE)
        .doc(
            "6.2.0",
            "Describes the connection's client-side caching tracking.",
            "O(1)",
        )
        .handler(trackinginfo),
    sub("unpause", 2, ADMIN)
        .doc(
            "6.2.0",
            "Ends a CLIENT PAUSE, letting the held-back clients go on.",
            "O(N) Where N is the number of paused clients",
        )
        .handler(unpause),
    sub("capa", -3, BASE | flag::ALLOW_BUSY)
        .doc(
            "8.0.0",
            "Declares capabilities the client supports.",
            "O(1)",
        )
        .handler(capa),
    sub("help", 2, flag::LOADING | flag::STALE)
        .doc("5.0.0", "Describes the CLIENT subcommands.", "O(1)")
        .handler(help),
    sub("import-source", 3, BASE)
        .doc(
            "8.1.0",
            "Marks the connection as an import source in import mode.",
            "O(1)",
        )
        .handler(import_source),
];

/// `CLIENT ID`
fn id(ctx: &mut Ctx, _args: &[Bytes]) -> CmdResult {
    ctx.reply.int(ctx.client.id as i64);
    Ok(())
}

/// `CLIENT GETNAME`
fn getname(ctx: &mut Ctx, _args: &[Bytes]) -> CmdResult {
    match ctx.client.shared.name.lock().as_ref() {
        Some(name) => ctx.reply.bulk(name),
        None => ctx.reply.null(),
    }
    Ok(())
}

/// `CLIENT SETNAME name`; an empty name removes it.
fn setname(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    validate_name(&args[2])?;
    set_name(ctx, &args[2]);
    ctx.reply.ok();
    Ok(())
}

/// Names, library names and versions are printed unquoted in CLIENT LIST, so they may only
/// hold visible ASCII characters.
fn is_printable_token(text: &[u8]) -> bool {
    text.iter().all(|&b| (b'!'..=b'~').contains(&b))
}

pub fn validate_name(name: &[u8]) -> CmdResult {
    if is_printable_token(name) {
        Ok(())
    } else {
        Err(CmdError::err(
            "Client names cannot contain spaces, newlines or special characters.",
        ))
    }
}

/// Sets an already validated name (empty: no name).
pub fn set_name(ctx: &mut Ctx, name: &Bytes) {
    *ctx.client.shared.name.lock() = (!name.is_empty()).then(|| name.clone());
}

/// `CLIENT SETINFO LIB-NAME|LIB-VER value`
fn setinfo(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    let (option, value) = (&args[2], &args[3]);
    let (slot, label) = if args::is(option, "lib-name") {
        (&ctx.client.shared.lib_name, "lib-name")
    } else if args::is(option, "lib-ver") {
        (&ctx.client.shared.lib_ver, "lib-ver")
    } else {
        return Err(CmdError::err(format!(
            "Unrecognized option '{}'",
            String::from_utf8_lossy(option)
        )));
    };
    if !is_printable_token(value) {
        return Err(CmdError::err(format!(
            "{label} cannot contain spaces, newlines or special characters."
        )));
    }
    *slot.lock() = (!value.is_empty()).then(|| value.clone());
    ctx.reply.ok();
    Ok(())
}

/// `ON` / `OFF` arguments.
fn on_off(arg: &[u8]) -> Result<bool, CmdError> {
    if args::is(arg, "on") {
        Ok(true)
    } else if args::is(arg, "off") {
        Ok(false)
    } else {
        Err(errors::SYNTAX)
    }
}

/// `CLIENT NO-EVICT ON|OFF`
fn no_evict(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    let on = on_off(&args[2])?;
    ctx.client.set_no_evict(on);
    ctx.reply.ok();
    Ok(())
}

/// `CLIENT NO-TOUCH ON|OFF`
fn no_touch(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    let on = on_off(&args[2])?;
    ctx.client.set_no_touch(on);
    ctx.reply.ok();
    Ok(())
}

/// `CLIENT REPLY ON|OFF|SKIP`. OFF and SKIP are themselves not answered; dispatch drops the
/// replies while the mode says so.
fn reply(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    let mode = &args[2];
    if args::is(mode, "on") {
        ctx.client.reply_mode = ReplyMode::On;
        ctx.reply.ok();
    } else if args::is(mode, "off") {
        ctx.client.reply_mode = ReplyMode::Off;
    } else if args::is(mode, "skip") {
        if ctx.client.reply_mode != ReplyMode::Off {
            ctx.client.reply_mode = ReplyMode::SkipNext;
        }
    } else {
        return Err(errors::SYNTAX);
    }
    Ok(())
}

/// `CLIENT CAPA capability [capability ...]`: unknown capabilities are ignored.
fn capa(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    for capability in &args[2..] {
        if args::is(capability, "redirect") {
            ctx.client.shared.capa_redirect.store(true, Relaxed);
        }
    }
    ctx.reply.ok();
    Ok(())
}

/// `CLIENT PAUSE timeout [WRITE|ALL]` (timeout in milliseconds).
fn pause(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    let timeout = ferrokv_protocol::number::parse_i64(&args[2])
        .ok_or_else(|| CmdError::err("timeout is not an integer or out of range"))?;
    if timeout < 0 {
        return Err(CmdError::err("timeout is negative"));
    }
    let kind = match args.get(3) {
        None => PauseKind::All,
        Some(mode) if args::is(mode, "write") => PauseKind::Write,
        Some(mode) if args::is(mode, "all") => PauseKind::All,
        Some(_) => return Err(CmdError::err("CLIENT PAUSE mode must be WRITE or ALL")),
    };
    let end = ctx.now_ms.saturating_add(timeout);
    ctx.server
        .pause
        .pause(PausePurpose::ClientCommand, kind, end);
    // A pause can change from ALL to WRITE: let reads that were waiting go on.
    pause::wake_paused_clients(ctx.server);
    ctx.reply.ok();
    Ok(())
}

/// `CLIENT UNPAUSE`
fn unpause(ctx: &mut Ctx, _args: &[Bytes]) -> CmdResult {
    pause::unpause_and_wake(ctx.server, PausePurpose::ClientCommand);
    ctx.reply.ok();
    Ok(())
}

/// `CLIENT UNBLOCK id [TIMEOUT|ERROR]`: ends the wait of a client parked in a blocking
/// command (a null reply, or the UNBLOCKED error); 1 if it was parked. Clients held back by
/// CLIENT PAUSE are not parked and stay where they are, as in Valkey.
fn unblock(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    let id = args::int(&args[2])?;
    let mut error = false;
    // Valkey reads the reason only when it is the last argument; more arguments are ignored.
    if let [_, _, _, reason] = args {
        if args::is(reason, "error") {
            error = true;
        } else if !args::is(reason, "timeout") {
            return Err(CmdError::err(
                "CLIENT UNBLOCK reason should be TIMEOUT or ERROR",
            ));
        }
    }
    let unblocked = u64::try_from(id).is_ok_and(|id| ctx.server.blocking.unblock(id, error));
    ctx.reply.int(unblocked as i64);
    Ok(())
}

/// `CLIENT TRACKING ON|OFF [REDIRECT id] [BCAST] [PREFIX p ...] [OPTIN] [OPTOUT] [NOLOOP]`.
/// Options are parsed (and REDIRECT checked) before ON/OFF is looked at, as in Valkey.
fn tracking(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    let mut options = crate::tracking::Options::default();
    let mut i = 3;
    while i < args.len() {
        let option = &args[i];
        let has_value = i + 1 < args.len();
        if args::is(option, "redirect") && has_value {
            i += 1;
            if options.redirect != 0 {
                return Err(CmdError::err(
                    "A client can only redirect to a single other client",
                ));
            }
            let id = args::int(&args[i])?;
            let exists = u64::try_from(id)
                .ok()
                .and_then(|id| ctx.server.clients.get(id))
                .is_some();
            if !exists {
                return Err(CmdError::err(
                    "The client ID you want redirect to does not exist",
                ));
            }
            options.redirect = id as u64;
        } else if args::is(option, "bcast") {
            options.bcast = true;
        } else if args::is(option, "optin") {
            options.optin = true;
        } else if args::is(option, "optout") {
            options.optout = true;
        } else if args::is(option, "noloop") {
            options.noloop = true;
        } else if args::is(option, "prefix") && has_value {
            i += 1;
            options.prefixes.push(args[i].clone());
        } else {
            return Err(errors::SYNTAX);
        }
        i += 1;
    }
    match on_off(&args[2])? {
        true => crate::tracking::enable(ctx.server, &ctx.client.shared, options)?,
        false => crate::tracking::disable(ctx.server, &ctx.client.shared),
    }
    ctx.reply.ok();
    Ok(())
}

/// `CLIENT GETREDIR`: the REDIRECT id, 0 without one, -1 when tracking is off.
fn getredir(ctx: &mut Ctx, _args: &[Bytes]) -> CmdResult {
    let redirect = ctx.client.shared.tracking.redirect_reported();
    ctx.reply.int(redirect);
    Ok(())
}

/// `CLIENT TRACKINGINFO`: flags, redirect and prefixes.
fn trackinginfo(ctx: &mut Ctx, _args: &[Bytes]) -> CmdResult {
    let shared = &ctx.client.shared;
    let flags = crate::tracking::info_flags(shared);
    let redirect = shared.tracking.redirect_reported();
    let prefixes = ctx.server.tracking.prefixes_of(shared.id);
    let r = &mut *ctx.reply;
    r.map_len(3);
    r.bulk(b"flags");
    r.set_len(flags.len());
    for flag in flags {
        r.bulk(flag.as_bytes());
    }
    r.bulk(b"redirect");
    r.int(redirect);
    r.bulk(b"prefixes");
    r.array_len(prefixes.len());
    for prefix in &prefixes {
        r.bulk(prefix);
    }
    Ok(())
}

/// `CLIENT CACHING YES|NO`: for the next command, in OPTIN/OPTOUT mode.
fn caching(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    crate::tracking::caching(&ctx.client.shared, &args[2])?;
    ctx.reply.ok();
    Ok(())
}

/// `CLIENT IMPORT-SOURCE ON|OFF`: marks a sync tool's connection, whose commands see expired
/// keys alive while `import-mode` is on (see `ferrokv_store::replica_view`). OFF is always
/// allowed, so a tool can clean up after import mode ended.
fn import_source(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    let word = args[2].to_ascii_lowercase();
    if !ctx.client.config.import_mode && word != b"off" {
        return Err(CmdError::err("Server is not in import mode"));
    }
    let on = match word.as_slice() {
        b"on" => true,
        b"off" => false,
        _ => return Err(errors::SYNTAX),
    };
    ctx.client.set_import_source(on);
    ctx.reply.ok();
    Ok(())
}

/// `CLIENT INFO`
fn info(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    let mut text = String::new();
    let argv_mem = args.iter().map(|a| a.len()).sum();
    describe(&mut text, &ctx.client.shared, ctx.now_ms, Some(argv_mem));
    ctx.reply.verbatim("txt", text.as_bytes());
    Ok(())
}

/// `CLIENT LIST [filter ...]`
fn list(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    // Every filter is two words or more: one alone is a syntax error, even a bare ID.
    if args.len() == 3 {
        return Err(errors::SYNTAX);
    }
    let filter = Filter::parse(ctx, &args[2..], false)?;
    let argv_mem = args.iter().map(|a| a.len()).sum();
    let mut text = String::new();
    for client in ctx.server.clients.all() {
        if filter.matches(&client, ctx.client.id, ctx.now_ms) {
            let own = (client.id == ctx.client.id).then_some(argv_mem);
            describe(&mut text, &client, ctx.now_ms, own);
        }
    }
    ctx.reply.verbatim("txt", text.as_bytes());
    Ok(())
}

/// `CLIENT KILL addr` (replies OK or an error) or `CLIENT KILL filter ...` (replies the
/// number of connections closed).
fn kill(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    if args.len() == 3 {
        let addr = &args[2][..];
        let target = ctx
            .server
            .clients
            .all()
            .into_iter()
            .find(|c| c.addr.as_bytes() == addr)
            .ok_or_else(|| CmdError::err("No such client"))?;
        close_client(ctx, &target);
        ctx.reply.ok();
        return Ok(());
    }
    let filter = Filter::parse(ctx, &args[2..], true)?;
    let mut killed = 0;
    for client in ctx.server.clients.all() {
        if filter.matches(&client, ctx.client.id, ctx.now_ms) {
            close_client(ctx, &client);
            killed += 1;
        }
    }
    ctx.reply.int(killed);
    Ok(())
}

/// Closes `target`: another connection at once, this one after its reply.
fn close_client(ctx: &mut Ctx, target: &Arc<ClientShared>) {
    if target.id == ctx.client.id {
        ctx.client.close_after_reply = true;
    } else {
        target.kill();
    }
}

/// The client's CLIENT LIST line without its newline (ACL LOG's `client-info`).
pub fn client_info(c: &ClientShared, now_ms: i64) -> String {
    let mut text = String::new();
    describe(&mut text, c, now_ms, None);
    text.truncate(text.trim_end().len());
    text
}

/// Appends one CLIENT LIST line, with Valkey 9.1's fields in its order. `own_argv_mem` is
/// the size of the running command's arguments, for the client that runs it.
fn describe(out: &mut String, c: &ClientShared, now_ms: i64, own_argv_mem: Option<usize>) {
    use std::fmt::Write;
    let text = |slot: &parking_lot::Mutex<Option<Bytes>>| {
        slot.lock()
            .as_ref()
            .map(|b| String::from_utf8_lossy(b).into_owned())
            .unwrap_or_default()
    };
    let qbuf = c.query_buffer.load(Relaxed);
    let rbs = c.read_buffer.load(Relaxed);
    let rbp = c.read_buffer_peak.load(Relaxed).max(rbs);
    let qbuf_free = if qbuf > 0 {
        rbs.saturating_sub(qbuf)
    } else {
        0
    };
    let obl = c.output_buffer.load(Relaxed);
    let argv_mem = own_argv_mem.unwrap_or(0);
    let cmd = match c.last_command.load(Relaxed) {
        0 => "NULL".to_string(),
        id => TABLE.entry(id - 1).full_name.clone(),
    };
    let _ = writeln!(
        out,
        "id={} addr={} laddr={} fd={} name={} age={} idle={} flags={} capa={} db={} \
         sub={} psub={} ssub={} multi={} watch={} qbuf={qbuf} qbuf-free={qbuf_free} \
         argv-mem={argv_mem} multi-mem=0 rbs={rbs} rbp={rbp} obl={obl} oll=0 omem={} \
         tot-mem={} events=r cmd={cmd} user={} redir={} resp={} lib-name={} lib-ver={} \
         tot-net-in={} tot-net-out={} tot-cmds={}",
        c.id,
        c.addr,
        c.laddr,
        c.fd,
        text(&c.name),
        (now_ms - c.created_ms).max(0) / 1000,
        (now_ms - c.last_interaction_ms.load(Relaxed)).max(0) / 1000,
        c.flag_letters(),
        if c.capa_redirect.load(Relaxed) {
            "r"
        } else {
            ""
        },
        c.db.load(Relaxed),
        c.sub_count.load(Relaxed),
        c.psub_count.load(Relaxed),
        c.ssub_count.load(Relaxed),
        c.multi_queued.load(Relaxed),
        c.watch_count.load(Relaxed),
        c.outbox.pending_bytes(),
        rbs + obl + argv_mem + c.outbox.pending_bytes() + std::mem::size_of::<ClientShared>(),
        String::from_utf8_lossy(&c.user.lock()),
        c.tracking.redirect_reported(),
        c.protocol.load(Relaxed),
        text(&c.lib_name),
        text(&c.lib_ver),
        c.net_in.load(Relaxed),
        c.net_out.load(Relaxed),
        c.commands.load(Relaxed),
    );
}

/// `CLIENT HELP`
fn help(ctx: &mut Ctx, _args: &[Bytes]) -> CmdResult {
    const LINES: &[&str] = &[
        "CLIENT <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
        "CACHING (YES|NO)",
        "    Enable/disable tracking of the keys for next command in OPTIN/OPTOUT modes.",
        "CAPA <option> [options...]",
        "    The client claims its some capability options. Options are:",
        "    * REDIRECT",
        "      The client can handle redirection during primary and replica failover in standalone mode.",
        "GETREDIR",
        "    Return the client ID we are redirecting to when tracking is enabled.",
        "GETNAME",
        "    Return the name of the current connection.",
        "ID",
        "    Return the ID of the current connection.",
        "INFO",
        "    Return information about the current client connection.",
        "KILL <ip:port>",
        "    Kill connection made from <ip:port>.",
        "KILL <option> <value> [<option> <value> [...]]",
        "    Kill connections. Options are:",
        "    * ADDR (<ip:port>|<unixsocket>:0)",
        "      Kill connections made from the specified address.",
        "    * LADDR (<ip:port>|<unixsocket>:0)",
        "      Kill connections made to the specified local address.",
        "    * TYPE (NORMAL|PRIMARY|REPLICA|PUBSUB)",
        "      Kill connections by type.",
        "    * USER <username>",
        "      Kill connections authenticated by <username>.",
        "    * SKIPME (YES|NO)",
        "      Skip killing current connection (default: yes).",
        "    * ID <client-id> [<client-id>...]",
        "      Kill connections by client IDs.",
        "    * MAXAGE <maxage>",
        "      Kill connections older than the specified age.",
        "    * FLAGS <flags>",
        "      Kill connections that include the specified flags.",
        "    * NAME <client-name>",
        "      Kill connections with the specified name.",
        "    * IDLE <idle>",
        "      Kill connections with idle time greater than or equal to <idle> seconds.",
        "    * LIB-NAME <library-name>",
        "      Kill connections with the specified library name.",
        "    * LIB-VER <library-version>",
        "      Kill connections with the specified library version.",
        "    * DB <db-id>",
        "      Kill connections currently operating on the specified database ID.",
        "    * CAPA <capa>",
        "      Kill connections currently with the specified capa.",
        "    * IP <ip>",
        "      Kill connections made from the specified ip.",
        "LIST [options ...]",
        "    Return information about client connections. Options:",
        "    * TYPE (NORMAL|PRIMARY|REPLICA|PUBSUB)",
        "      Return clients of specified type.",
        "    * USER <username>",
        "      Return clients authenticated by <username>.",
        "    * ADDR <ip:port>",
        "      Return clients connected from the specified address.",
        "    * LADDR <ip:port>",
        "      Return clients connected to the specified local address.",
        "    * ID <client-id> [<client-id>...]",
        "      Return clients with the specified IDs.",
        "    * SKIPME (YES|NO)",
        "      Exclude the current client from the list (default: no).",
        "    * MAXAGE <maxage>",
        "      List connections older than the specified age.",
        "    * FLAGS <flags>",
        "      Return clients with the specified flags.",
        "    * NAME <client-name>",
        "      Return clients with the specified name.",
        "    * IDLE <idle>",
        "      Return clients with idle time greater than or equal to <idle> seconds.",
        "    * LIB-NAME <lib-name>",
        "      Return clients with the specified lib name.",
        "    * LIB-VER <lib-version>",
        "      Return clients with the specified lib version.",
        "    * DB <db-id>",
        "      Return clients currently operating on the specified database ID.",
        "    * CAPA <capa>",
        "      Return connections currently with the specified capa.",
        "    * IP <ip>",
        "      Return connections made from the specified ip.",
        "UNPAUSE",
        "    Stop the current client pause, resuming traffic.",
        "PAUSE <timeout> [WRITE|ALL]",
        "    Suspend all, or just write, clients for <timeout> milliseconds.",
        "REPLY (ON|OFF|SKIP)",
        "    Control the replies sent to the current connection.",
        "SETNAME <name>",
        "    Assign the name <name> to the current connection.",
        "SETINFO <option> <value>",
        "    Set client meta attr. Options are:",
        "    * LIB-NAME: the client lib name.",
        "    * LIB-VER: the client lib version.",
        "UNBLOCK <clientid> [TIMEOUT|ERROR]",
        "    Unblock the specified blocked client.",
        "TRACKING (ON|OFF) [REDIRECT <id>] [BCAST] [PREFIX <prefix> [...]]",
        "         [OPTIN] [OPTOUT] [NOLOOP]",
        "    Control server assisted client side caching.",
        "TRACKINGINFO",
        "    Report tracking status for the current connection.",
        "NO-EVICT (ON|OFF)",
        "    Protect current client connection from eviction.",
        "NO-TOUCH (ON|OFF)",
        "    Will not touch LRU/LFU stats when this mode is on.",
        "IMPORT-SOURCE (ON|OFF)",
        "    Mark this connection as an import source if import-mode is enabled.",
        "    Sync tools can set their connections into 'import-source' state to visit",
        "    expired keys.",
        "HELP",
        "    Print this help.",
    ];
    ctx.reply.array_len(LINES.len());
    for line in LINES {
        ctx.reply.simple(line);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_visible_ascii() {
        assert!(validate_name(b"app-1(x)").is_ok());
        assert!(validate_name(b"").is_ok());
        assert!(validate_name(b"a b").is_err());
        assert!(validate_name(b"a\nb").is_err());
        assert!(validate_name("é".as_bytes()).is_err());
    }
}
