//! MONITOR (the feed itself is in `crate::monitor`).

use bytes::Bytes;

use crate::client::flags;
use crate::context::{CmdError, CmdResult, Ctx};
use crate::spec::{CommandSpec, flag};

pub const COMMANDS: &[CommandSpec] = &[CommandSpec::new("monitor", 1, "server")
    .flags(flag::ADMIN | flag::NOSCRIPT | flag::LOADING | flag::STALE)
    .doc(
        "1.0.0",
        "Streams every command the server runs, as it runs them.",
        "O(1)",
    )
    .handler(monitor)];

/// Turns the connection into a monitor: `+OK`, then one line per command run anywhere.
fn monitor(ctx: &mut Ctx, _args: &[Bytes]) -> CmdResult {
    if ctx.client.deny_blocking {
        return Err(CmdError::err(
            "MONITOR isn't allowed for DENY BLOCKING client",
        ));
    }
    // Already monitoring: Valkey ignores the repeat without a reply.
    if ctx.client.monitor {
        return Ok(());
    }
    ctx.client.monitor = true;
    ctx.client.shared.set_flag(flags::MONITOR, true);
    ctx.server.monitors.add(ctx.client.shared.clone());
    ctx.reply.ok();
    Ok(())
}
