//! Pub/Sub commands: (P|S)SUBSCRIBE, (P|S)UNSUBSCRIBE, PUBLISH, SPUBLISH, PUBSUB (the
//! registry and delivery are in `crate::pubsub`).

use bytes::Bytes;

use crate::context::{CmdError, CmdResult, Ctx};
use crate::pubsub::{self, Kind, Limits};
use crate::spec::{CommandSpec, KeySpec, category as cat, flag, key_flag};

const SUB_FLAGS: u64 = flag::PUBSUB | flag::NOSCRIPT | flag::LOADING | flag::STALE;
// Publishing is `may_replicate` (hidden from COMMAND INFO): CLIENT PAUSE WRITE holds it
// back and read-only scripts may not publish, as in Valkey.
const PUB_FLAGS: u64 =
    flag::PUBSUB | flag::LOADING | flag::STALE | flag::FAST | flag::MAY_REPLICATE;
const INTROSPECTION_FLAGS: u64 = flag::PUBSUB | flag::LOADING | flag::STALE;

pub const COMMANDS: &[CommandSpec] = &[
    CommandSpec::new("subscribe", -2, "pubsub")
        .flags(SUB_FLAGS)
        .doc(
            "2.0.0",
            "Starts receiving the messages published to channels.",
            "O(N) where N is the number of channels to subscribe to.",
        )
        .handler(subscribe),
    CommandSpec::new("unsubscribe", -1, "pubsub")
        .flags(SUB_FLAGS)
        .doc(
            "2.0.0",
            "Stops receiving the messages published to channels.",
            "O(N) where N is the number of channels to unsubscribe.",
        )
        .handler(unsubscribe),
    CommandSpec::new("psubscribe", -2, "pubsub")
        .flags(SUB_FLAGS)
        .doc(
            "2.0.0",
            "Starts receiving the messages published to channels matching glob patterns.",
            "O(N) where N is the number of patterns to subscribe to.",
        )
        .handler(psubscribe),
    CommandSpec::new("punsubscribe", -1, "pubsub")
        .flags(SUB_FLAGS)
        .doc(
            "2.0.0",
            "Stops receiving the messages matched by glob patterns.",
            "O(N) where N is the number of patterns to unsubscribe.",
        )
        .handler(punsubscribe),
    CommandSpec::new("publish", 3, "pubsub")
        .flags(PUB_FLAGS)
        .doc(
            "2.0.0",
            "Sends a message to a channel's subscribers.",
            "O(N+M) where N is the number of clients subscribed to the receiving channel and M is the total number of subscribed patterns (by any client).",
        )
        .handler(publish),
    CommandSpec::new("ssubscribe", -2, "pubsub")
        .flags(SUB_FLAGS)
        .keys(&[KeySpec::to_end(1, 1, key_flag::NOT_KEY)])
        .doc(
            "7.0.0",
            "Starts receiving the messages published to shard channels.",
            "O(N) where N is the number of shard channels to subscribe to.",
        )
        .handler(ssubscribe),
    CommandSpec::new("sunsubscribe", -1, "pubsub")
        .flags(SUB_FLAGS)
        .keys(&[KeySpec::to_end(1, 1, key_flag::NOT_KEY)])
        .doc(
            "7.0.0",
            "Stops receiving the messages published to shard channels.",
            "O(N) where N is the number of shard channels to unsubscribe.",
        )
        .handler(sunsubscribe),
    CommandSpec::new("spublish", 3, "pubsub")
        .flags(PUB_FLAGS)
        .keys(&[KeySpec::single(1, key_flag::NOT_KEY)])
        .doc(
            "7.0.0",
            "Sends a message to a shard channel's subscribers.",
            "O(N) where N is the number of clients subscribed to the receiving shard channel.",
        )
        .handler(spublish),
    CommandSpec::new("pubsub", -2, "pubsub")
        .categories(cat::SLOW)
        .doc(
            "2.8.0",
            "A container for Pub/Sub introspection commands.",
            "Depends on subcommand.",
        )
        .subcommands(&[
            CommandSpec::new("channels", -2, "pubsub")
                .flags(INTROSPECTION_FLAGS)
                .doc(
                    "2.8.0",
                    "Lists the channels that have subscribers.",
                    "O(N) where N is the number of active channels, and assuming constant time pattern matching (relatively short channels and patterns)",
                )
                .handler(channels),
            CommandSpec::new("numpat", 2, "pubsub")
                .flags(INTROSPECTION_FLAGS)
                .doc(
                    "2.8.0",
                    "Counts the patterns clients are subscribed to.",
                    "O(1)",
                )
                .handler(numpat),
            CommandSpec::new("numsub", -2, "pubsub")
                .flags(INTROSPECTION_FLAGS)
                .doc(
                    "2.8.0",
                    "Counts the subscribers of channels.",
                    "O(N) for the NUMSUB subcommand, where N is the number of requested channels",
                )
                .handler(numsub),
            CommandSpec::new("shardchannels", -2, "pubsub")
                .flags(INTROSPECTION_FLAGS)
                .doc(
                    "7.0.0",
                    "Lists the shard channels that have subscribers.",
                    "O(N) where N is the number of active shard channels, and assuming constant time pattern matching (relatively short shard channels).",
                )
                .handler(shardchannels),
            CommandSpec::new("shardnumsub", -2, "pubsub")
                .flags(INTROSPECTION_FLAGS)
                .doc(
                    "7.0.0",
                    "Counts the subscribers of shard channels.",
                    "O(N) for the SHARDNUMSUB subcommand, where N is the number of requested shard channels",
                )
                .handler(shardnumsub),
            CommandSpec::new("help", 2, "pubsub")
                .flags(flag::LOADING | flag::STALE)
                .doc(
                    "6.2.0",
                    "Returns helpful text about the different subcommands.",
                    "O(1)",
                )
                .handler(help),
        ]),
];

fn subscribe(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    ctx.client.reply_is_push = true;
    pubsub::subscribe(ctx.server, ctx.client, ctx.reply, Kind::Channel, &args[1..]);
    Ok(())
}

fn psubscribe(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    ctx.client.reply_is_push = true;
    pubsub::subscribe(ctx.server, ctx.client, ctx.reply, Kind::Pattern, &args[1..]);
    Ok(())
}

fn ssubscribe(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    ctx.client.reply_is_push = true;
    pubsub::subscribe(ctx.server, ctx.client, ctx.reply, Kind::Shard, &args[1..]);
    Ok(())
}

fn unsubscribe(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    ctx.client.reply_is_push = true;
    pubsub::unsubscribe(ctx.server, ctx.client, ctx.reply, Kind::Channel, &args[1..]);
    Ok(())
}

fn punsubscribe(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    ctx.client.reply_is_push = true;
    pubsub::unsubscribe(ctx.server, ctx.client, ctx.reply, Kind::Pattern, &args[1..]);
    Ok(())
}

fn sunsubscribe(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    ctx.client.reply_is_push = true;
    pubsub::unsubscribe(ctx.server, ctx.client, ctx.reply, Kind::Shard, &args[1..]);
    Ok(())
}

fn publish_to(ctx: &mut Ctx, args: &[Bytes], shard: bool) -> CmdResult {
    let limits = Limits::from_directive(&ctx.client.config.client_output_buffer_limit);
    let receivers = pubsub::publish(ctx.server, limits, shard, &args[1], &args[2], ctx.now_ms);
    ctx.reply.int(receivers as i64);
    Ok(())
}

/// `PUBLISH channel message`. A primary also sends it to its replicas (their subscribers
/// get it too, as in Valkey), in order with the rest of its transaction or script; the AOF
/// does not keep it.
fn publish(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    let server = ctx.server;
    if server.replication.backlog_active() && !server.stream.is_proxy() {
        ferrokv_store::effects::push_replica_only(ctx.db(), args[..3].to_vec());
    }
    publish_to(ctx, args, false)
}

/// `SPUBLISH shardchannel message`
fn spublish(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    publish_to(ctx, args, true)
}

fn bad_subcommand(name: &[u8]) -> CmdError {
    CmdError::err(format!(
        "unknown subcommand or wrong number of arguments for '{}'. Try PUBSUB HELP.",
        String::from_utf8_lossy(name)
    ))
}

fn list_names(ctx: &mut Ctx, args: &[Bytes], kind: Kind) -> CmdResult {
    let names = ctx.server.pubsub.names(kind, args.get(2).map(|p| &p[..]));
    ctx.reply.array_len(names.len());
    for name in &names {
        ctx.reply.bulk(name);
    }
    Ok(())
}

/// `PUBSUB CHANNELS [pattern]`
fn channels(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    if args.len() > 3 {
        return Err(bad_subcommand(&args[1]));
    }
    list_names(ctx, args, Kind::Channel)
}

/// `PUBSUB SHARDCHANNELS [pattern]`
fn shardchannels(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    if args.len() > 3 {
        return Err(bad_subcommand(&args[1]));
    }
    list_names(ctx, args, Kind::Shard)
}

fn count_subscribers(ctx: &mut Ctx, args: &[Bytes], kind: Kind) -> CmdResult {
    let names = &args[2..];
    // A flat array in RESP3 too, as Valkey answers.
    ctx.reply.array_len(2 * names.len());
    for name in names {
        ctx.reply.bulk(name);
        ctx.reply
            .int(ctx.server.pubsub.subscribers(kind, name) as i64);
    }
    Ok(())
}

/// `PUBSUB NUMSUB [channel ...]`
fn numsub(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    count_subscribers(ctx, args, Kind::Channel)
}

/// `PUBSUB SHARDNUMSUB [shardchannel ...]`
fn shardnumsub(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    count_subscribers(ctx, args, Kind::Shard)
}

/// `PUBSUB NUMPAT`
fn numpat(ctx: &mut Ctx, _args: &[Bytes]) -> CmdResult {
    let (_, patterns, _) = ctx.server.pubsub.counts();
    ctx.reply.int(patterns as i64);
    Ok(())
}

/// `PUBSUB HELP`
fn help(ctx: &mut Ctx, _args: &[Bytes]) -> CmdResult {
    const LINES: &[&str] = &[
        "PUBSUB <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
        "CHANNELS [<pattern>]",
        "    Return the currently active channels matching a <pattern> (default: '*').",
        "NUMPAT",
        "    Return number of subscriptions to patterns.",
        "NUMSUB [<channel> ...]",
        "    Return the number of subscribers for the specified channels, excluding",
        "    pattern subscriptions(default: no channels).",
        "SHARDCHANNELS [<pattern>]",
        "    Return the currently active shard level channels matching a <pattern> (default: '*').",
        "SHARDNUMSUB [<shardchannel> ...]",
        "    Return the number of subscribers for the specified shard level channel(s)",
        "HELP",
        "    Print this help.",
    ];
    ctx.reply.array_len(LINES.len());
    for line in LINES {
        ctx.reply.simple(line);
    }
    Ok(())
}
