//! ACL and its subcommands: users, permissions, the denial log, the ACL file.

use bytes::Bytes;

use crate::acl::{self, User, check::Place, file};
use crate::cmd::args;
use crate::context::{CmdError, CmdResult, Ctx};
use crate::dispatch::arity_error;
use crate::spec::{CommandSpec, category, flag};
use crate::table::TABLE;

const FLAGS: u64 = flag::NOSCRIPT | flag::LOADING | flag::STALE;
const ADMIN: u64 = flag::ADMIN | FLAGS;
const ALL_NODES: &[&str] = &["request_policy:all_nodes", "response_policy:all_succeeded"];

pub const COMMANDS: &[CommandSpec] = &[CommandSpec::new("acl", -2, "server")
    .doc(
        "6.0.0",
        "A container for the access control commands.",
        "Depends on subcommand.",
    )
    .subcommands(&[
        CommandSpec::new("dryrun", -4, "server")
            .flags(ADMIN)
            .doc(
                "7.0.0",
                "Tells whether a user could run a command, without running it.",
                "O(1).",
            )
            .handler(dryrun),
        CommandSpec::new("getuser", 3, "server")
            .flags(ADMIN)
            .doc(
                "6.0.0",
                "Returns a user's rules.",
                "O(N). Where N is the number of password, command and pattern rules that the user has.",
            )
            .handler(getuser),
        CommandSpec::new("load", 2, "server")
            .flags(ADMIN)
            .doc(
                "6.0.0",
                "Reads the users again from the ACL file.",
                "O(N). Where N is the number of configured users.",
            )
            .handler(load),
        CommandSpec::new("save", 2, "server")
            .flags(ADMIN)
            .tips(ALL_NODES)
            .doc(
                "6.0.0",
                "Writes the current users to the ACL file.",
                "O(N). Where N is the number of configured users.",
            )
            .handler(save),
        CommandSpec::new("whoami", 2, "server")
            .flags(FLAGS)
            .doc(
                "6.0.0",
                "Returns the user the connection is authenticated as.",
                "O(1)",
            )
            .handler(whoami),
        CommandSpec::new("cat", -2, "server")
            .flags(FLAGS)
            .doc(
                "6.0.0",
                "Lists the ACL categories, or the commands of one category.",
                "O(1) since the categories and commands are a fixed set.",
            )
            .handler(cat),
        CommandSpec::new("deluser", -3, "server")
            .flags(ADMIN)
            .tips(ALL_NODES)
            .doc(
                "6.0.0",
                "Deletes users and disconnects their clients.",
                "O(1) amortized time considering the typical user.",
            )
            .handler(deluser),
        CommandSpec::new("genpass", -2, "server")
            .flags(FLAGS)
            .doc(
                "6.0.0",
                "Generates a random password to give a user.",
                "O(1)",
            )
            .handler(genpass),
        CommandSpec::new("help", 2, "server")
            .flags(flag::LOADING | flag::STALE)
            .doc(
                "6.0.0",
                "Returns helpful text about the different subcommands.",
                "O(1)",
            )
            .handler(help),
        CommandSpec::new("list", 2, "server")
            .flags(ADMIN)
            .doc(
                "6.0.0",
                "Lists every user's rules in ACL file syntax.",
                "O(N). Where N is the number of configured users.",
            )
            .handler(list),
        CommandSpec::new("log", -2, "server")
            .flags(ADMIN)
            .doc(
                "6.0.0",
                "Lists the recent permission denials.",
                "O(N) with N being the number of entries shown.",
            )
            .handler(log),
        CommandSpec::new("setuser", -3, "server")
            .flags(ADMIN)
            .tips(ALL_NODES)
            .doc(
                "6.0.0",
                "Creates a user or changes its rules.",
                "O(N). Where N is the number of rules provided.",
            )
            .handler(setuser),
        CommandSpec::new("users", 2, "server")
            .flags(ADMIN)
            .doc(
                "6.0.0",
                "Lists the user names.",
                "O(N). Where N is the number of configured users.",
            )
            .handler(users),
    ])];

const NO_ACL_FILE: &str = "This instance is not configured to use an ACL file. You may want to specify users via the ACL SETUSER command and then issue a CONFIG REWRITE (assuming you have a configuration file set) in order to store users in the configuration.";

/// `ACL SETUSER username [rule ...]`: all rules apply, or none.
fn setuser(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    let name = &args[2];
    if name.iter().any(|&b| b == b' ' || b == 0) {
        return Err(CmdError::err(
            "Usernames can't contain spaces or null characters",
        ));
    }
    let all_channels = file::all_channels_default(&ctx.client.config);
    let acl = &ctx.server.acl;
    let _writer = acl.write.lock();
    let mut user = match acl.get(name) {
        Some(existing) => (*existing).clone(),
        None => User::new(name.clone(), all_channels),
    };
    acl::rules::apply_rules(&mut user, &args[3..], all_channels)?;
    acl.put(user.clone());
    drop(_writer);
    acl::kill_unauthorized_subscribers(ctx.server, &user);
    ctx.reply.ok();
    Ok(())
}

/// `ACL DELUSER username [username ...]`: the number deleted; their clients are closed.
fn deluser(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    let names = &args[2..];
    if names.iter().any(|n| &n[..] == b"default") {
        return Err(CmdError::err("The 'default' user cannot be removed"));
    }
    let removed = {
        let _writer = ctx.server.acl.write.lock();
        ctx.server.acl.remove(names)
    };
    let removed_names: Vec<Bytes> = removed.iter().map(|u| u.name.clone()).collect();
    acl::kill_clients_of(ctx.server, ctx.client, &removed_names);
    ctx.reply.int(removed.len() as i64);
    Ok(())
}

/// `ACL GETUSER username`: a map of the user's flags, passwords and permissions.
fn getuser(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    let Some(user) = ctx.server.acl.get(&args[2]) else {
        ctx.reply.null();
        return Ok(());
    };
    let r = &mut *ctx.reply;
    r.map_len(7);
    r.bulk(b"flags");
    r.set_len(1 + user.nopass as usize);
    r.bulk(if user.enabled { b"on" } else { b"off" });
    if user.nopass {
        r.bulk(b"nopass");
    }
    r.bulk(b"passwords");
    r.array_len(user.passwords.len());
    for hash in &user.passwords {
        r.bulk(acl::user::hex(hash).as_bytes());
    }
    write_selector(r, &user.root);
    r.bulk(b"selectors");
    r.array_len(user.selectors.len());
    for selector in &user.selectors {
        r.map_len(4);
        write_selector(r, selector);
    }
    Ok(())
}

fn write_selector(r: &mut ferrokv_protocol::Reply, selector: &acl::user::Selector) {
    r.bulk(b"commands");
    r.bulk(selector.describe_commands().as_bytes());
    r.bulk(b"keys");
    r.bulk(&selector.describe_keys());
    r.bulk(b"channels");
    r.bulk(&selector.describe_channels());
    r.bulk(b"databases");
    r.bulk(selector.describe_dbs().as_bytes());
}

/// `ACL LIST`
fn list(ctx: &mut Ctx, _args: &[Bytes]) -> CmdResult {
    let users = ctx.server.acl.users();
    ctx.reply.array_len(users.len());
    for user in users {
        ctx.reply.bulk(&user.describe());
    }
    Ok(())
}

/// `ACL USERS`
fn users(ctx: &mut Ctx, _args: &[Bytes]) -> CmdResult {
    let users = ctx.server.acl.users();
    ctx.reply.array_len(users.len());
    for user in users {
        ctx.reply.bulk(&user.name);
    }
    Ok(())
}

/// `ACL WHOAMI`
fn whoami(ctx: &mut Ctx, _args: &[Bytes]) -> CmdResult {
    let name = ctx.client.user.name.clone();
    ctx.reply.bulk(&name);
    Ok(())
}

/// `ACL CAT [category]`: the categories, or the commands (and subcommands) in one.
fn cat(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    match args {
        [_, _] => {
            ctx.reply.array_len(category::NAMES.len());
            for name in category::NAMES {
                ctx.reply.bulk(name.as_bytes());
            }
        }
        [_, _, wanted] => {
            let Some(bit) = category::NAMES
                .iter()
                .position(|c| c.as_bytes().eq_ignore_ascii_case(wanted))
            else {
                return Err(CmdError::err(format!(
                    "Unknown category '{}'",
                    String::from_utf8_lossy(wanted)
                )));
            };
            let names: Vec<&str> = (0..TABLE.len())
                .map(|id| TABLE.entry(id))
                .filter(|e| e.spec.acl_categories() & (1 << bit) != 0)
                .map(|e| e.full_name.as_str())
                .collect();
            ctx.reply.array_len(names.len());
            for name in names {
                ctx.reply.bulk(name.as_bytes());
            }
        }
        _ => return Err(subcommand_syntax(args)),
    }
    Ok(())
}

/// The error for a subcommand with the wrong arguments, naming it as the client wrote it.
fn subcommand_syntax(args: &[Bytes]) -> CmdError {
    CmdError::err(format!(
        "unknown subcommand or wrong number of arguments for '{}'. Try ACL HELP.",
        String::from_utf8_lossy(&args[1])
    ))
}

/// `ACL GENPASS [bits]`: random hex, 256 bits unless told (rounded up to whole digits).
fn genpass(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    let bits = match args {
        [_, _] => 256,
        [_, _, bits] => {
            let bits = args::int(bits)?;
            if !(1..=4096).contains(&bits) {
                return Err(CmdError::err(
                    "ACL GENPASS argument must be the number of bits for the output password, a positive number up to 4096",
                ));
            }
            bits
        }
        _ => return Err(subcommand_syntax(args)),
    };
    let digits = (bits as usize).div_ceil(4);
    let mut bytes = vec![0u8; digits.div_ceil(2)];
    rand::fill(&mut bytes[..]);
    let mut text = String::with_capacity(digits + 1);
    for b in bytes {
        text.push(char::from(b"0123456789abcdef"[(b >> 4) as usize]));
        text.push(char::from(b"0123456789abcdef"[(b & 15) as usize]));
    }
    text.truncate(digits);
    ctx.reply.bulk(text.as_bytes());
    Ok(())
}

/// `ACL LOG [count | RESET]`
fn log(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    let count = match args {
        [_, _] => 10,
        [_, _, arg] if args::is(arg, "reset") => {
            ctx.server.acl.log.lock().reset();
            ctx.reply.ok();
            return Ok(());
        }
        [_, _, arg] => args::int(arg)?.max(0) as usize,
        _ => return Err(subcommand_syntax(args)),
    };
    ctx.server
        .acl
        .log
        .lock()
        .write(ctx.reply, count, ctx.now_ms);
    Ok(())
}

/// `ACL DRYRUN username command [arg ...]`: OK, or why the user could not run it.
fn dryrun(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    let Some(user) = ctx.server.acl.get(&args[2]) else {
        return Err(CmdError::err(format!(
            "User '{}' not found",
            String::from_utf8_lossy(&args[2])
        )));
    };
    let command = &args[3..];
    let not_found = |name: &Bytes| {
        CmdError::err(format!(
            "Command '{}' not found",
            String::from_utf8_lossy(name)
        ))
    };
    let mut entry = TABLE
        .find(&command[0])
        .ok_or_else(|| not_found(&command[0]))?;
    if !entry.spec.subcommands.is_empty() && command.len() > 1 {
        entry = TABLE
            .find_sub(entry, &command[1])
            .ok_or_else(|| not_found(&command[0]))?;
    }
    let arity = entry.spec.arity;
    let argc = command.len() as i32;
    if (arity > 0 && argc != arity) || argc < -arity {
        return Err(arity_error(&entry.full_name));
    }
    let place = Place {
        db: ctx.client.db,
        databases: ctx.server.keyspace.databases(),
    };
    match acl::check::check_command(&user, entry, command, place) {
        Ok(()) => ctx.reply.ok(),
        Err(denial) => {
            let text = acl::dryrun_text(&user, entry, command, &denial);
            ctx.reply.bulk(text.as_bytes());
        }
    }
    Ok(())
}

/// `ACL LOAD`: replaces every user with the ACL file's, or changes nothing on any error.
/// Clients of users that changed or disappeared are disconnected.
fn load(ctx: &mut Ctx, _args: &[Bytes]) -> CmdResult {
    let config = &ctx.client.config;
    if config.aclfile.is_empty() {
        return Err(CmdError::err(NO_ACL_FILE));
    }
    let users = file::read_file(&config.aclfile, file::all_channels_default(config))
        .map_err(CmdError::err)?;
    let acl = &ctx.server.acl;
    let _writer = acl.write.lock();
    let before = acl.users();
    acl.replace_all(users);
    drop(_writer);
    let changed: Vec<Bytes> = before
        .iter()
        .filter(|old| {
            acl.get(&old.name)
                .is_none_or(|new| new.describe() != old.describe())
        })
        .map(|old| old.name.clone())
        .collect();
    acl::kill_clients_of(ctx.server, ctx.client, &changed);
    ctx.reply.ok();
    Ok(())
}

/// `ACL SAVE`
fn save(ctx: &mut Ctx, _args: &[Bytes]) -> CmdResult {
    let config = &ctx.client.config;
    if config.aclfile.is_empty() {
        return Err(CmdError::err(NO_ACL_FILE));
    }
    if let Err(e) = file::save(&config.aclfile, &ctx.server.acl.users()) {
        log::warn!("Failed to save the ACL file {}: {e}", config.aclfile);
        return Err(CmdError::err(
            "There was an error trying to save the ACLs. Please check the server logs for more information",
        ));
    }
    ctx.reply.ok();
    Ok(())
}

fn help(ctx: &mut Ctx, _args: &[Bytes]) -> CmdResult {
    const LINES: &[&str] = &[
        "ACL <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
        "CAT [<category>]",
        "    List all commands that belong to <category>, or all command categories",
        "    when no category is specified.",
        "DELUSER <username> [<username> ...]",
        "    Delete a list of users.",
        "DRYRUN <username> <command> [<arg> ...]",
        "    Returns whether the user can execute the given command without executing the command.",
        "GETUSER <username>",
        "    Get the user's details.",
        "GENPASS [<bits>]",
        "    Generate a secure 256-bit user password. The optional `bits` argument can",
        "    be used to specify a different size.",
        "LIST",
        "    Show users details in config file format.",
        "LOAD",
        "    Reload users from the ACL file.",
        "LOG [<count> | RESET]",
        "    Show the ACL log entries.",
        "SAVE",
        "    Save the current config to the ACL file.",
        "SETUSER <username> <rule> [<rule> ...]",
        "    Create or modify a user with the specified rules.",
        "USERS",
        "    List all the registered usernames.",
        "WHOAMI",
        "    Return the current connection username.",
        "HELP",
        "    Print this help.",
    ];
    ctx.reply.array_len(LINES.len());
    for line in LINES {
        ctx.reply.simple(line);
    }
    Ok(())
}
