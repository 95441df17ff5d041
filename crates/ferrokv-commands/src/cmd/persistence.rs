//! SAVE and BGSAVE (LASTSAVE and SHUTDOWN are in `server.rs`; the machinery in
//! `crate::persistence`).

use bytes::Bytes;

use crate::cmd::args;
use crate::context::{CmdError, CmdResult, Ctx, errors};
use crate::persistence::{self, StartError};
use crate::spec::{CommandSpec, category as cat, flag};

pub const COMMANDS: &[CommandSpec] = &[
    CommandSpec::new("save", 1, "server")
        .flags(flag::ADMIN | flag::NOSCRIPT | flag::NO_ASYNC_LOADING | flag::NO_MULTI)
        .categories(cat::ADMIN | cat::SLOW | cat::DANGEROUS)
        .doc(
            "1.0.0",
            "Writes the dataset to disk and waits for it to be done.",
            "O(N) where N is the total number of keys in all databases",
        )
        .handler(save),
    CommandSpec::new("bgsave", -1, "server")
        .flags(flag::ADMIN | flag::NOSCRIPT | flag::NO_ASYNC_LOADING)
        .categories(cat::ADMIN | cat::SLOW | cat::DANGEROUS)
        .doc(
            "1.0.0",
            "Writes the dataset to disk in the background.",
            "O(1)",
        )
        .handler(bgsave),
    CommandSpec::new("bgrewriteaof", 1, "server")
        .flags(flag::ADMIN | flag::NOSCRIPT | flag::NO_ASYNC_LOADING)
        .categories(cat::ADMIN | cat::SLOW | cat::DANGEROUS)
        .doc(
            "1.0.0",
            "Rewrites the append-only file from the dataset in the background.",
            "O(1)",
        )
        .handler(bgrewriteaof),
];

/// `BGREWRITEAOF`
fn bgrewriteaof(ctx: &mut Ctx, _args: &[Bytes]) -> CmdResult {
    use crate::aof::Requested;
    match crate::aof::bgrewriteaof(ctx.server) {
        Requested::Started => ctx
            .reply
            .simple("Background append only file rewriting started"),
        Requested::Scheduled => ctx
            .reply
            .simple("Background append only file rewriting scheduled"),
        Requested::InProgress => {
            return Err(CmdError::err(
                "Background append only file rewriting already in progress",
            ));
        }
        Requested::Failed => {
            return Err(CmdError::err(
                "Can't execute an AOF background rewriting. Please check the server logs for more information.",
            ));
        }
    }
    Ok(())
}

/// `SAVE`: Valkey answers a failed save with a bare `ERR`.
fn save(ctx: &mut Ctx, _args: &[Bytes]) -> CmdResult {
    let config = ctx.client.config.clone();
    // One snapshot at a time: SAVE waits for a running AOF rewrite (SAVE runs outside
    // transactions and scripts, so no shard is held here).
    ctx.server
        .persistence
        .wait_for_rewrite(std::time::Duration::from_secs(3600));
    match persistence::save(ctx.server, &config, true) {
        Ok(()) => {
            ctx.reply.ok();
            Ok(())
        }
        Err(StartError::InProgress) => Err(CmdError::err("Background save already in progress")),
        Err(StartError::Failed(_)) => Err(CmdError::new("ERR")),
    }
}

/// `BGSAVE [SCHEDULE | CANCEL]`
fn bgsave(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    let (mut schedule, mut cancel) = (false, false);
    match args.get(1) {
        None => {}
        Some(a) if args.len() == 2 && args::is(a, "schedule") => schedule = true,
        Some(a) if args.len() == 2 && args::is(a, "cancel") => cancel = true,
        Some(_) => return Err(errors::SYNTAX),
    }
    if cancel {
        if persistence::abort_running(ctx.server) {
            ctx.server.persistence.cancel_scheduled_bgsave();
            ctx.reply.simple("Background saving cancelled");
            return Ok(());
        }
        if ctx.server.persistence.cancel_scheduled_bgsave() {
            ctx.reply.simple("Scheduled background saving cancelled");
            return Ok(());
        }
        return Err(CmdError::err(
            "Background saving is currently not in progress or scheduled",
        ));
    }
    // SCHEDULE only waits for an AOF rewrite; against a running save it fails like BGSAVE.
    // Inside EXEC the save always waits for the transaction's end.
    let in_exec = crate::transaction::in_exec();
    if (schedule || in_exec) && ctx.server.persistence.schedule_bgsave(in_exec) {
        ctx.reply.simple("Background saving scheduled");
        return Ok(());
    }
    let config = ctx.client.config.clone();
    persistence::bgsave(ctx.server, &config)?;
    ctx.reply.simple("Background saving started");
    Ok(())
}
