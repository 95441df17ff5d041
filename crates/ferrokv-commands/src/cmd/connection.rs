//! Connection commands: PING, ECHO, SELECT, QUIT.

use bytes::Bytes;

use crate::cmd::args;
use crate::context::{CmdResult, Ctx, errors};
use crate::spec::{CommandSpec, category as cat, flag};

pub const COMMANDS: &[CommandSpec] = &[
    CommandSpec::new("ping", -1, "connection")
        .flags(flag::FAST | flag::SENTINEL)
        .categories(cat::CONNECTION)
        .tips(&["request_policy:all_shards", "response_policy:all_succeeded"])
        .doc("1.0.0", "Returns the server's liveliness response.", "O(1)")
        .handler(ping),
    CommandSpec::new("echo", 2, "connection")
        .flags(flag::FAST)
        .categories(cat::CONNECTION)
        .doc("1.0.0", "Returns the given string.", "O(1)")
        .handler(echo),
    CommandSpec::new("select", 2, "connection")
        .flags(flag::LOADING | flag::STALE | flag::FAST)
        .categories(cat::CONNECTION)
        .doc("1.0.0", "Changes the selected database.", "O(1)")
        .handler(select),
    CommandSpec::new("quit", -1, "connection")
        .flags(
            flag::NOSCRIPT
                | flag::LOADING
                | flag::STALE
                | flag::FAST
                | flag::NO_AUTH
                | flag::ALLOW_BUSY,
        )
        .categories(cat::CONNECTION)
        .doc("1.0.0", "Closes the connection.", "O(1)")
        .handler(quit),
];

/// `PING [message]`
fn ping(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
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
    Ok(())
}
