//! Transactions: MULTI, EXEC, DISCARD, WATCH, UNWATCH (the model is in `crate::transaction`).

use bytes::Bytes;

use crate::context::{CmdError, CmdResult, Ctx};
use crate::spec::{CommandSpec, KeySpec, category as cat, flag, key_flag};
use crate::transaction::{self, ExecOutcome};

const TX_FLAGS: u64 = flag::NOSCRIPT | flag::LOADING | flag::STALE;

pub const COMMANDS: &[CommandSpec] = &[
    CommandSpec::new("multi", 1, "transactions")
        .flags(TX_FLAGS | flag::FAST | flag::NO_MULTI | flag::ALLOW_BUSY)
        .categories(cat::TRANSACTION)
        .doc("1.2.0", "Opens a transaction.", "O(1)")
        .handler(multi),
    CommandSpec::new("exec", 1, "transactions")
        .flags(TX_FLAGS | flag::SKIP_SLOWLOG)
        .categories(cat::TRANSACTION)
        .doc(
            "1.2.0",
            "Runs every command queued since MULTI, atomically.",
            "Depends on commands in the transaction",
        )
        .handler(exec)
        .runs_lua(),
    CommandSpec::new("discard", 1, "transactions")
        .flags(TX_FLAGS | flag::FAST | flag::ALLOW_BUSY)
        .categories(cat::TRANSACTION)
        .doc(
            "2.0.0",
            "Drops the commands queued since MULTI.",
            "O(N), when N is the number of queued commands",
        )
        .handler(discard),
    CommandSpec::new("watch", -2, "transactions")
        .flags(TX_FLAGS | flag::FAST | flag::NO_MULTI | flag::ALLOW_BUSY)
        .categories(cat::TRANSACTION)
        .keys(&[KeySpec::to_end(1, 1, key_flag::RO)])
        .doc(
            "2.2.0",
            "Makes the next EXEC fail if any of these keys changes before it.",
            "O(1) for every key.",
        )
        .handler(watch),
    CommandSpec::new("unwatch", 1, "transactions")
        .flags(TX_FLAGS | flag::FAST | flag::ALLOW_BUSY)
        .categories(cat::TRANSACTION)
        .doc("2.2.0", "Stops watching every watched key.", "O(1)")
        .handler(unwatch),
];

/// `MULTI` (nested MULTI is refused by dispatch: the command is `no-multi`).
fn multi(ctx: &mut Ctx, _args: &[Bytes]) -> CmdResult {
    transaction::begin(ctx.client);
    ctx.reply.ok();
    Ok(())
}

/// `EXEC`
fn exec(ctx: &mut Ctx, _args: &[Bytes]) -> CmdResult {
    match transaction::exec(ctx.server, ctx.client, ctx.reply, ctx.now_ms) {
        ExecOutcome::NoMulti => Err(CmdError::err("EXEC without MULTI")),
        ExecOutcome::Aborted => Err(CmdError::new(
            "EXECABORT Transaction discarded because of previous errors.",
        )),
        ExecOutcome::WatchFailed => {
            ctx.reply.null_array();
            Ok(())
        }
        ExecOutcome::Ran => Ok(()),
    }
}

/// `DISCARD`
fn discard(ctx: &mut Ctx, _args: &[Bytes]) -> CmdResult {
    if ctx.client.multi.is_none() {
        return Err(CmdError::err("DISCARD without MULTI"));
    }
    transaction::discard(ctx.server, ctx.client);
    ctx.reply.ok();
    Ok(())
}

/// `WATCH key [key ...]` (inside MULTI it is refused by dispatch: `no-multi`).
fn watch(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    // Once a watched key changed, EXEC fails anyway: Valkey stops registering more.
    if ctx.client.shared.flags() & crate::client::flags::DIRTY_CAS == 0 {
        transaction::watch(ctx.server, ctx.client, &args[1..], ctx.now_ms);
    }
    // WATCH allocates the transaction state (`multi=0` from now on, see `end_queue`).
    let _ = ctx.client.shared.multi_queued.compare_exchange(
        -1,
        0,
        std::sync::atomic::Ordering::Relaxed,
        std::sync::atomic::Ordering::Relaxed,
    );
    ctx.reply.ok();
    Ok(())
}

/// `UNWATCH`
fn unwatch(ctx: &mut Ctx, _args: &[Bytes]) -> CmdResult {
    transaction::unwatch_all(ctx.server, ctx.client);
    ctx.reply.ok();
    Ok(())
}
