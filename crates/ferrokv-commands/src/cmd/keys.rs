//! Generic keyspace commands.

use bytes::Bytes;

use crate::context::{CmdResult, Ctx};
use crate::spec::{CommandSpec, KeySpec, category as cat, flag, key_flag as kf};

pub const COMMANDS: &[CommandSpec] = &[
    CommandSpec::new("del", -2, "generic")
        .flags(flag::WRITE)
        .categories(cat::KEYSPACE)
        .keys(&[KeySpec::to_end(1, 1, kf::RM | kf::DELETE)])
        .tips(&["request_policy:multi_shard", "response_policy:agg_sum"])
        .doc(
            "1.0.0",
            "Deletes one or more keys.",
            "O(N) where N is the number of keys that will be removed.",
        )
        .handler(del),
    CommandSpec::new("dbsize", 1, "server")
        .flags(flag::READONLY | flag::FAST)
        .categories(cat::KEYSPACE)
        .tips(&["request_policy:all_shards", "response_policy:agg_sum"])
        .doc(
            "1.0.0",
            "Returns the number of keys in the database.",
            "O(1)",
        )
        .handler(dbsize),
];

/// `DEL key [key ...]`
fn del(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    let keys = &args[1..];
    let mut locked = ctx.lock(keys);
    let mut deleted = 0;
    for key in keys {
        if ctx.write(&mut locked, key).is_some() && locked.db(ctx.db(), key).remove(key).is_some() {
            deleted += 1;
        }
    }
    ctx.add_dirty(deleted as u64);
    ctx.reply.int(deleted);
    Ok(())
}

/// `DBSIZE`
fn dbsize(ctx: &mut Ctx, _args: &[Bytes]) -> CmdResult {
    let n = ctx.server.keyspace.db_len(ctx.db());
    ctx.reply.int(n as i64);
    Ok(())
}
