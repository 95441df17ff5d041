//! COMMAND and its subcommands: everything they report is read from the command table.

use bytes::Bytes;
use ferrokv_protocol::Reply;
use ferrokv_store::glob::glob_match;

use crate::cmd::args;
use crate::context::{CmdError, CmdResult, Ctx, errors};
use crate::spec::{
    BeginSearch, CommandSpec, FindKeys, KeySpec, category, category as cat, flag, key_flag,
    key_positions,
};
use crate::table::{TABLE, TableEntry};

const INFO_TIPS: &[&str] = &["nondeterministic_output_order"];

const fn sub(name: &'static str, arity: i32) -> CommandSpec {
    CommandSpec::new(name, arity, "server")
        .flags(flag::LOADING | flag::STALE)
        .categories(cat::CONNECTION)
}

pub const COMMANDS: &[CommandSpec] = &[CommandSpec::new("command", -1, "server")
    .flags(flag::LOADING | flag::STALE)
    .categories(cat::CONNECTION)
    .tips(INFO_TIPS)
    .doc(
        "2.8.13",
        "Describes every command this server knows.",
        "O(N), N being the number of commands",
    )
    .handler(command_all)
    .subcommands(&[
        sub("count", 2)
            .doc("2.8.13", "Counts the commands this server knows.", "O(1)")
            .handler(count),
        sub("docs", -2)
            .tips(INFO_TIPS)
            .doc(
                "7.0.0",
                "Describes the documentation of commands.",
                "O(N), N being the number of commands asked about",
            )
            .handler(docs),
        sub("getkeys", -3)
            .doc(
                "2.8.13",
                "Finds the key arguments of a full command line.",
                "O(N), N being the number of arguments",
            )
            .handler(getkeys),
        sub("getkeysandflags", -3)
            .doc(
                "7.0.0",
                "Finds the key arguments of a full command line, with their access flags.",
                "O(N), N being the number of arguments",
            )
            .handler(getkeysandflags),
        sub("help", 2)
            .doc("5.0.0", "Lists the COMMAND subcommands.", "O(1)")
            .handler(help),
        sub("info", -2)
            .tips(INFO_TIPS)
            .doc(
                "2.8.13",
                "Describes one or more commands.",
                "O(N), N being the number of commands asked about",
            )
            .handler(info),
        sub("list", -2)
            .tips(INFO_TIPS)
            .doc(
                "7.0.0",
                "Lists command names, optionally filtered.",
                "O(N), N being the number of commands",
            )
            .handler(list),
    ])];

/// Flags Valkey keeps to itself: they never appear in COMMAND INFO.
const HIDDEN_FLAGS: u64 = flag::MAY_REPLICATE
    | flag::SENTINEL
    | flag::ONLY_SENTINEL
    | flag::PROTECTED
    | flag::MODULE_GETKEYS
    | flag::MODULE_NO_CLUSTER
    | flag::TOUCHES_ARBITRARY_KEYS;

/// `COMMAND`: the description of every command.
fn command_all(ctx: &mut Ctx, _args: &[Bytes]) -> CmdResult {
    let commands: Vec<&TableEntry> = TABLE.listed_commands().collect();
    ctx.reply.array_len(commands.len());
    for entry in commands {
        write_info(ctx.reply, entry);
    }
    Ok(())
}

/// `COMMAND COUNT`
fn count(ctx: &mut Ctx, _args: &[Bytes]) -> CmdResult {
    ctx.reply.int(TABLE.listed_commands().count() as i64);
    Ok(())
}

/// `COMMAND INFO [name ...]`: a null for each unknown name.
fn info(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    if args.len() == 2 {
        return command_all(ctx, args);
    }
    ctx.reply.array_len(args.len() - 2);
    for name in &args[2..] {
        match TABLE.lookup_full(name) {
            Some(entry) => write_info(ctx.reply, entry),
            None => ctx.reply.null(),
        }
    }
    Ok(())
}

/// One command's COMMAND INFO element.
pub fn write_info(reply: &mut Reply, entry: &TableEntry) {
    let spec = entry.spec;
    reply.array_len(10);
    reply.bulk(entry.full_name.as_bytes());
    reply.int(spec.arity as i64);
    write_names(
        reply,
        spec.effective_flags() & !HIDDEN_FLAGS,
        flag::NAMES,
        "",
    );
    let ((first, last, step), _) = spec.legacy_range();
    reply.int(first as i64);
    reply.int(last as i64);
    reply.int(step as i64);
    write_names(reply, spec.acl_categories(), category::NAMES, "@");
    reply.set_len(spec.tips.len());
    for tip in spec.tips {
        reply.bulk(tip.as_bytes());
    }
    // A set in RESP3, as Valkey sends it.
    reply.set_len(spec.key_specs.len());
    for (i, key_spec) in spec.key_specs.iter().enumerate() {
        let notes = spec.key_notes.get(i).copied().unwrap_or("");
        write_key_spec(reply, key_spec, notes);
    }
    let subs: Vec<&TableEntry> = TABLE.subcommands_of(entry.id).collect();
    reply.array_len(subs.len());
    for sub in subs {
        write_info(reply, sub);
    }
}

/// A set of simple strings, one per bit of `bits` that has a name.
fn write_names(reply: &mut Reply, bits: u64, names: &[&str], prefix: &str) {
    let present: Vec<&str> = names
        .iter()
        .enumerate()
        .filter(|(bit, _)| bits & (1 << bit) != 0)
        .map(|(_, name)| *name)
        .collect();
    reply.set_len(present.len());
    for name in present {
        reply.simple(&format!("{prefix}{name}"));
    }
}

fn write_key_spec(reply: &mut Reply, spec: &KeySpec, notes: &str) {
    reply.map_len(if notes.is_empty() { 3 } else { 4 });
    if !notes.is_empty() {
        reply.bulk(b"notes");
        reply.bulk(notes.as_bytes());
    }
    reply.bulk(b"flags");
    write_names(reply, spec.flags as u64, key_flag::NAMES, "");

    reply.bulk(b"begin_search");
    reply.map_len(2);
    reply.bulk(b"type");
    match spec.begin {
        BeginSearch::Index(index) => {
            reply.bulk(b"index");
            reply.bulk(b"spec");
            reply.map_len(1);
            reply.bulk(b"index");
            reply.int(index as i64);
        }
        BeginSearch::Keyword {
            keyword,
            start_from,
        } => {
            reply.bulk(b"keyword");
            reply.bulk(b"spec");
            reply.map_len(2);
            reply.bulk(b"keyword");
            reply.bulk(keyword.as_bytes());
            reply.bulk(b"startfrom");
            reply.int(start_from as i64);
        }
        BeginSearch::Unknown => {
            reply.bulk(b"unknown");
            reply.bulk(b"spec");
            reply.map_len(0);
        }
    }

    reply.bulk(b"find_keys");
    reply.map_len(2);
    reply.bulk(b"type");
    match spec.find {
        FindKeys::Range {
            last_key,
            step,
            limit,
        } => {
            reply.bulk(b"range");
            reply.bulk(b"spec");
            reply.map_len(3);
            for (name, value) in [("lastkey", last_key), ("keystep", step), ("limit", limit)] {
                reply.bulk(name.as_bytes());
                reply.int(value as i64);
            }
        }
        FindKeys::KeyNum {
            key_num_idx,
            first_key,
            step,
        } => {
            reply.bulk(b"keynum");
            reply.bulk(b"spec");
            reply.map_len(3);
            for (name, value) in [
                ("keynumidx", key_num_idx),
                ("firstkey", first_key),
                ("keystep", step),
            ] {
                reply.bulk(name.as_bytes());
                reply.int(value as i64);
            }
        }
        FindKeys::Unknown => {
            reply.bulk(b"unknown");
            reply.bulk(b"spec");
            reply.map_len(0);
        }
    }
}

/// `COMMAND DOCS [name ...]`: a map from name to documentation; unknown names are skipped.
///
/// The summaries are ferrokv's own words, and argument descriptions are not part of the
/// table yet, so this differs from Valkey's reply in content though not in shape.
fn docs(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    let entries: Vec<&TableEntry> = if args.len() == 2 {
        TABLE.listed_commands().collect()
    } else {
        args[2..]
            .iter()
            .filter_map(|name| TABLE.lookup_full(name))
            .collect()
    };
    ctx.reply.map_len(entries.len());
    for entry in entries {
        ctx.reply.bulk(entry.full_name.as_bytes());
        write_docs(ctx.reply, entry);
    }
    Ok(())
}

fn write_docs(reply: &mut Reply, entry: &TableEntry) {
    let spec = entry.spec;
    let subs: Vec<&TableEntry> = TABLE.subcommands_of(entry.id).collect();
    reply.map_len(if subs.is_empty() { 4 } else { 5 });
    for (name, value) in [
        ("summary", spec.summary),
        ("since", spec.since),
        ("group", spec.group),
        ("complexity", spec.complexity),
    ] {
        reply.bulk(name.as_bytes());
        reply.bulk(value.as_bytes());
    }
    if !subs.is_empty() {
        reply.bulk(b"subcommands");
        reply.map_len(subs.len());
        for sub in subs {
            reply.bulk(sub.full_name.as_bytes());
            write_docs(reply, sub);
        }
    }
}

/// `COMMAND LIST [FILTERBY MODULE name | ACLCAT category | PATTERN pattern]`
fn list(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    enum Filter<'a> {
        All,
        Module,
        Category(Option<u64>),
        Pattern(&'a [u8]),
    }
    let filter = match args {
        [_, _] => Filter::All,
        [_, _, by, kind, value] if args::is(by, "filterby") => {
            if args::is(kind, "module") {
                Filter::Module
            } else if args::is(kind, "aclcat") {
                Filter::Category(
                    category::NAMES
                        .iter()
                        .position(|name| args::is(value, name))
                        .map(|bit| 1 << bit),
                )
            } else if args::is(kind, "pattern") {
                Filter::Pattern(value)
            } else {
                return Err(errors::SYNTAX);
            }
        }
        _ => return Err(errors::SYNTAX),
    };
    let matches = |entry: &TableEntry| match filter {
        Filter::All => true,
        // No command comes from a module.
        Filter::Module => false,
        Filter::Category(None) => false,
        Filter::Category(Some(bit)) => entry.spec.acl_categories() & bit != 0,
        Filter::Pattern(pattern) => glob_match(pattern, entry.full_name.as_bytes(), true),
    };
    let mut names = Vec::new();
    for command in TABLE.listed_commands() {
        if matches(command) {
            names.push(command.full_name.as_str());
        }
        for sub in TABLE.subcommands_of(command.id) {
            if matches(sub) {
                names.push(sub.full_name.as_str());
            }
        }
    }
    ctx.reply.array_len(names.len());
    for name in names {
        ctx.reply.bulk(name.as_bytes());
    }
    Ok(())
}

/// The target command of GETKEYS, its arguments' key positions, with each key's flags.
fn keys_of(args: &[Bytes]) -> Result<Vec<(usize, u32)>, CmdError> {
    let target = &args[2..];
    let invalid_command = || CmdError::err("Invalid command specified");
    let mut entry = TABLE.lookup(&target[0]).ok_or_else(invalid_command)?;
    if !entry.spec.subcommands.is_empty() && target.len() > 1 {
        entry = TABLE
            .find_sub(entry, &target[1])
            .ok_or_else(invalid_command)?;
    }
    let spec = entry.spec;
    if !spec
        .key_specs
        .iter()
        .any(|k| k.flags & key_flag::NOT_KEY == 0)
    {
        return Err(CmdError::err("The command has no key arguments"));
    }
    let argc = target.len() as i32;
    if (spec.arity > 0 && spec.arity != argc) || argc < -spec.arity {
        return Err(CmdError::err(
            "Invalid number of arguments specified for command",
        ));
    }
    let mut keys = Vec::new();
    let mut valid = true;
    if let Some(proc) = spec.keys_proc {
        (proc.reported)(&target, &mut |pos, flags| keys.push((pos, flags)));
    } else {
        for key_spec in spec.key_specs {
            if !key_count_is_valid(key_spec, target) {
                valid = false;
                break;
            }
            for pos in key_positions(std::slice::from_ref(key_spec), target) {
                keys.push((pos, key_spec.flags));
            }
        }
    }
    if valid && !keys.is_empty() {
        return Ok(keys);
    }
    // A command whose keys are optional (EVAL, FCALL ...) has none rather than bad ones, as
    // in Valkey: `COMMAND GETKEYS EVAL script 0` is an empty list, not an error.
    if spec.flags & flag::NO_MANDATORY_KEYS != 0 {
        return Ok(Vec::new());
    }
    Err(CmdError::err("Invalid arguments specified for command"))
}

/// Whether a "number of keys" argument is an integer whose keys all fit in the arguments.
fn key_count_is_valid(spec: &KeySpec, args: &[Bytes]) -> bool {
    let (
        BeginSearch::Index(begin),
        FindKeys::KeyNum {
            key_num_idx,
            first_key,
            step,
        },
    ) = (spec.begin, spec.find)
    else {
        return true;
    };
    let Some(count_arg) = args.get((begin + key_num_idx) as usize) else {
        return false;
    };
    let Some(count) = ferrokv_protocol::number::parse_i64(count_arg) else {
        return false;
    };
    // Valkey counts zero keys as a bad key count here too (ZUNIONSTORE dst 0 ...).
    if count < 1 {
        return false;
    }
    let last = (begin + first_key) as i64 + (count - 1) * step.max(1) as i64;
    last < args.len() as i64
}

/// `COMMAND GETKEYS command [arg ...]`
fn getkeys(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    let keys = keys_of(args)?;
    ctx.reply.array_len(keys.len());
    for (pos, _) in keys {
        ctx.reply.bulk(&args[2 + pos]);
    }
    Ok(())
}

/// `COMMAND GETKEYSANDFLAGS command [arg ...]`
fn getkeysandflags(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    let keys = keys_of(args)?;
    ctx.reply.array_len(keys.len());
    for (pos, flags) in keys {
        ctx.reply.array_len(2);
        ctx.reply.bulk(&args[2 + pos]);
        write_names(ctx.reply, flags as u64, key_flag::NAMES, "");
    }
    Ok(())
}

/// `COMMAND HELP`
fn help(ctx: &mut Ctx, _args: &[Bytes]) -> CmdResult {
    write_help(
        ctx.reply,
        "COMMAND",
        &[
            "(no subcommand)",
            "    Describe every command.",
            "COUNT",
            "    Count the commands.",
            "LIST [FILTERBY (MODULE <name>|ACLCAT <category>|PATTERN <glob>)]",
            "    List command names, all of them or those matching the filter.",
            "INFO [<command-name> ...]",
            "    Describe the named commands, or every command when none is named.",
            "DOCS [<command-name> ...]",
            "    Document the named commands, or every command when none is named.",
            "GETKEYS <full-command>",
            "    List the key arguments of a full command line.",
            "GETKEYSANDFLAGS <full-command>",
            "    List the key arguments of a full command line, with their access flags.",
        ],
    );
    Ok(())
}

/// The reply of every `X HELP` subcommand: a usage line, the given lines, and the closing
/// HELP entry, each as a simple string (the shape Valkey uses).
pub fn write_help(reply: &mut Reply, command: &str, lines: &[&str]) {
    reply.array_len(lines.len() + 3);
    reply.simple(&format!(
        "{command} <subcommand> [<arg> [value] [opt] ...]. Subcommands are:"
    ));
    for line in lines {
        reply.simple(line);
    }
    reply.simple("HELP");
    reply.simple("    Print this help.");
}
