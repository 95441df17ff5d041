//! The cluster commands as a server without cluster mode answers them, as Valkey 9.1 does:
//! `CLUSTER KEYSLOT` works in every mode (clients and tools use it to place keys),
//! `READONLY`/`READWRITE` set and clear the client's `r` flag, and every other subcommand,
//! `ASKING` and `CLUSTERSCAN` answer that cluster support is disabled. The entries carry the
//! full metadata (arity, flags, tips, categories), so COMMAND, ACL rules and arity errors
//! are already those of cluster mode.

use std::borrow::Cow::Borrowed;

use bytes::Bytes;

use crate::client::flags;
use crate::context::{CmdError, CmdResult, Ctx};
use crate::spec::{CommandSpec, KeySpec, category as cat, flag, key_flag as kf};

const DISABLED: CmdError = CmdError(Borrowed("ERR This instance has cluster support disabled"));

/// A subcommand that only a cluster node can serve.
const fn node_only(name: &'static str, arity: i32, flags: u64) -> CommandSpec {
    CommandSpec::new(name, arity, "cluster")
        .flags(flags)
        .handler(disabled)
}

/// Changes the cluster's configuration.
const ADMIN: u64 = flag::ADMIN | flag::STALE | flag::NO_ASYNC_LOADING;
/// Reports on the cluster; served while loading.
const REPORT: u64 = flag::LOADING | flag::STALE;
const NONDETERMINISTIC: &[&str] = &["nondeterministic_output"];

pub const COMMANDS: &[CommandSpec] = &[
    CommandSpec::new("cluster", -2, "cluster")
        .doc(
            "3.0.0",
            "Groups the commands that inspect and change a cluster.",
            "Depends on subcommand.",
        )
        .subcommands(&[
            node_only("addslots", -3, ADMIN).doc(
                "3.0.0",
                "Gives slots to this node.",
                "O(N) where N is the total number of hash slot arguments",
            ),
            node_only("addslotsrange", -4, ADMIN).doc(
                "7.0.0",
                "Gives ranges of slots to this node.",
                "O(N) where N is the total number of the slots between the start slot and end slot arguments.",
            ),
            node_only("bumpepoch", 2, ADMIN)
                .tips(NONDETERMINISTIC)
                .doc("3.0.0", "Moves this node to a new configuration epoch.", "O(1)"),
            node_only("cancelslotmigrations", 2, ADMIN).doc(
                "9.0.0",
                "Stops the slot migrations under way.",
                "O(N), where N is the number of slot migration operations being cancelled.",
            ),
            node_only("count-failure-reports", 3, flag::ADMIN | flag::STALE)
                .tips(NONDETERMINISTIC)
                .doc(
                    "3.0.0",
                    "Counts the live reports that a node has failed.",
                    "O(N) where N is the number of failure reports",
                ),
            node_only("countkeysinslot", 3, flag::STALE).doc(
                "3.0.0",
                "Counts the keys of a slot.",
                "O(1)",
            ),
            node_only("delslots", -3, ADMIN).doc(
                "3.0.0",
                "Takes slots away from this node.",
                "O(N) where N is the total number of hash slot arguments",
            ),
            node_only("delslotsrange", -4, ADMIN).doc(
                "7.0.0",
                "Takes ranges of slots away from this node.",
                "O(N) where N is the total number of the slots between the start slot and end slot arguments.",
            ),
            node_only("failover", -2, ADMIN).doc(
                "3.0.0",
                "Makes this replica take over from its primary.",
                "O(1)",
            ),
            node_only("flushslot", -3, flag::WRITE | flag::ADMIN | flag::NO_ASYNC_LOADING)
                .categories(cat::KEYSPACE)
                .doc(
                    "9.0.0",
                    "Deletes every key of a slot.",
                    "O(N) where N is the number of keys in the target slot",
                ),
            node_only("flushslots", 2, ADMIN).doc(
                "3.0.0",
                "Forgets which slots this node serves.",
                "O(1)",
            ),
            node_only("forget", 3, ADMIN).doc(
                "3.0.0",
                "Drops a node from this node's table.",
                "O(1)",
            ),
            node_only("getkeysinslot", 4, flag::STALE)
                .tips(NONDETERMINISTIC)
                .doc(
                    "3.0.0",
                    "Lists keys of a slot.",
                    "O(N) where N is the number of requested keys",
                ),
            node_only("getslotmigrations", 2, ADMIN).doc(
                "9.0.0",
                "Lists the slot migrations under way.",
                "O(N), where N is the number of active slot import and export jobs.",
            ),
            node_only("help", 2, REPORT).doc("5.0.0", "Lists the CLUSTER subcommands.", "O(1)"),
            node_only("info", 2, REPORT)
                .tips(NONDETERMINISTIC)
                .doc("3.0.0", "Reports the cluster's state.", "O(1)"),
            CommandSpec::new("keyslot", 3, "cluster")
                .flags(flag::STALE)
                .doc(
                    "3.0.0",
                    "Computes the hash slot of a key.",
                    "O(N) where N is the number of bytes in the key",
                )
                .handler(keyslot),
            node_only("links", 2, flag::STALE)
                .tips(NONDETERMINISTIC)
                .doc(
                    "7.0.0",
                    "Lists this node's cluster bus links.",
                    "O(N) where N is the total number of Cluster nodes",
                ),
            node_only("meet", -4, ADMIN).doc("3.0.0", "Joins a node to the cluster.", "O(1)"),
            node_only("migrateslots", -4, ADMIN).doc(
                "9.0.0",
                "Moves ranges of slots to another shard.",
                "O(N) where N is the total number of the slots between all start slot and end slot arguments.",
            ),
            node_only("myid", 2, REPORT).doc("3.0.0", "Returns this node's ID.", "O(1)"),
            node_only("myshardid", 2, REPORT)
                .tips(NONDETERMINISTIC)
                .doc("7.2.0", "Returns this node's shard ID.", "O(1)"),
            node_only("nodes", 2, REPORT)
                .tips(NONDETERMINISTIC)
                .doc(
                    "3.0.0",
                    "Lists the nodes as this node sees them.",
                    "O(N) where N is the total number of Cluster nodes",
                ),
            node_only("replicas", 3, flag::ADMIN | flag::STALE)
                .tips(NONDETERMINISTIC)
                .doc(
                    "5.0.0",
                    "Lists the replicas of a primary.",
                    "O(N) where N is the number of replicas.",
                ),
            node_only("replicate", -3, ADMIN).doc(
                "3.0.0",
                "Makes this node a replica of a primary.",
                "O(1)",
            ),
            node_only("reset", -2, flag::ADMIN | flag::NOSCRIPT | flag::STALE).doc(
                "3.0.0",
                "Returns this node to a cluster of its own.",
                "O(N) where N is the number of known nodes. The command may execute a FLUSHALL as a side effect.",
            ),
            node_only("saveconfig", 2, ADMIN).doc(
                "3.0.0",
                "Writes the cluster configuration file.",
                "O(1)",
            ),
            node_only("set-config-epoch", 3, ADMIN).doc(
                "3.0.0",
                "Sets this node's configuration epoch.",
                "O(1)",
            ),
            node_only("setslot", -4, ADMIN).doc(
                "3.0.0",
                "Changes the state of a slot on this node.",
                "O(1)",
            ),
            node_only("shards", 2, REPORT)
                .tips(NONDETERMINISTIC)
                .doc(
                    "7.0.0",
                    "Lists the shards and their slots.",
                    "O(N) where N is the total number of cluster nodes",
                ),
            node_only("slaves", 3, flag::ADMIN | flag::STALE)
                .tips(NONDETERMINISTIC)
                .doc(
                    "3.0.0",
                    "Lists the replicas of a primary (the old name of CLUSTER REPLICAS).",
                    "O(N) where N is the number of replicas.",
                ),
            node_only("slot-stats", -4, REPORT)
                .tips(&["nondeterministic_output", "request_policy:all_shards"])
                .doc(
                    "8.0.0",
                    "Reports per-slot usage.",
                    "O(N) where N is the total number of slots based on arguments. O(N*log(N)) with ORDERBY subcommand.",
                ),
            node_only("slots", 2, REPORT)
                .tips(NONDETERMINISTIC)
                .doc(
                    "3.0.0",
                    "Maps slot ranges to nodes.",
                    "O(N) where N is the total number of Cluster nodes",
                ),
            node_only("syncslots", -3, ADMIN).doc(
                "9.0.0",
                "Internal messages of slot migration between nodes.",
                "Depends on subcommand.",
            ),
        ]),
    CommandSpec::new("asking", 1, "cluster")
        .flags(flag::FAST)
        .categories(cat::CONNECTION)
        .doc(
            "3.0.0",
            "Lets the next command reach a slot that is being imported.",
            "O(1)",
        )
        .handler(disabled),
    CommandSpec::new("readonly", 1, "cluster")
        .flags(flag::LOADING | flag::STALE | flag::FAST)
        .categories(cat::CONNECTION)
        .doc(
            "3.0.0",
            "Lets this connection read from a replica node.",
            "O(1)",
        )
        .handler(readonly),
    CommandSpec::new("readwrite", 1, "cluster")
        .flags(flag::LOADING | flag::STALE | flag::FAST)
        .categories(cat::CONNECTION)
        .doc(
            "3.0.0",
            "Sends this connection's reads to primaries again.",
            "O(1)",
        )
        .handler(readwrite),
    CommandSpec::new("clusterscan", -2, "cluster")
        .flags(flag::READONLY)
        .categories(cat::KEYSPACE)
        .keys(&[KeySpec::single(1, kf::NOT_KEY)])
        .tips(&[
            "nondeterministic_output",
            "request_policy:special",
            "response_policy:special",
        ])
        .doc(
            "9.1.0",
            "Iterates over the keys of a whole cluster.",
            "O(N) where N is the number of elements returned.",
        )
        .handler(disabled),
];

fn disabled(_ctx: &mut Ctx, _args: &[Bytes]) -> CmdResult {
    Err(DISABLED)
}

/// `CLUSTER KEYSLOT key`
fn keyslot(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    ctx.reply
        .int(i64::from(ferrokv_cluster::key_slot(&args[2])));
    Ok(())
}

/// `READONLY`: remembered (CLIENT LIST shows `r`) for when this server is a cluster replica.
fn readonly(ctx: &mut Ctx, _args: &[Bytes]) -> CmdResult {
    ctx.client.shared.set_flag(flags::READONLY, true);
    ctx.reply.ok();
    Ok(())
}

/// `READWRITE`
fn readwrite(ctx: &mut Ctx, _args: &[Bytes]) -> CmdResult {
    ctx.client.shared.set_flag(flags::READONLY, false);
    ctx.reply.ok();
    Ok(())
}
