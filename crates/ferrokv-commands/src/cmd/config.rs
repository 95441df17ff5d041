//! CONFIG GET / SET / RESETSTAT / REWRITE / HELP.

use std::collections::HashSet;

use bytes::Bytes;
use ferrokv_config::directives::{self, DENY_LOADING, Directive, HIDDEN, IMMUTABLE, PROTECTED};
use ferrokv_config::{hooks, rewrite};
use ferrokv_store::glob::glob_match;

use crate::context::{CmdError, CmdResult, Ctx, errors};
use crate::spec::{CommandSpec, flag};
use crate::stats;

const ADMIN_FLAGS: u64 = flag::ADMIN | flag::NOSCRIPT | flag::LOADING | flag::STALE;
const ALL_NODES: &[&str] = &["request_policy:all_nodes", "response_policy:all_succeeded"];

pub const COMMANDS: &[CommandSpec] = &[CommandSpec::new("config", -2, "server")
    .doc(
        "2.0.0",
        "A container for server configuration commands.",
        "Depends on subcommand.",
    )
    .subcommands(&[
        CommandSpec::new("get", -3, "server")
            .flags(ADMIN_FLAGS)
            .doc(
                "2.0.0",
                "Returns the effective values of configuration parameters.",
                "O(N) when N is the number of configuration parameters provided",
            )
            .handler(config_get),
        CommandSpec::new("set", -4, "server")
            .flags(ADMIN_FLAGS)
            .tips(ALL_NODES)
            .doc(
                "2.0.0",
                "Sets configuration parameters in-flight.",
                "O(N) when N is the number of configuration parameters provided",
            )
            .handler(config_set),
        CommandSpec::new("resetstat", 2, "server")
            .flags(ADMIN_FLAGS)
            .tips(ALL_NODES)
            .doc("2.0.0", "Resets the server's statistics.", "O(1)")
            .handler(config_resetstat),
        CommandSpec::new("rewrite", 2, "server")
            .flags(ADMIN_FLAGS)
            .tips(ALL_NODES)
            .doc(
                "2.8.0",
                "Persists the effective configuration to file.",
                "O(1)",
            )
            .handler(config_rewrite),
        CommandSpec::new("help", 2, "server")
            .flags(flag::LOADING | flag::STALE)
            .doc(
                "5.0.0",
                "Returns helpful text about the different subcommands.",
                "O(1)",
            )
            .handler(config_help),
    ])];

/// `CONFIG GET pattern [pattern ...]`: every matching directive once, sorted by the name
/// printed. A pattern without glob characters is an exact (case-insensitive) lookup that also
/// finds hidden directives and is printed as the client spelled it.
fn config_get(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    let config = ctx.server.config.load();
    let mut seen: HashSet<String> = HashSet::new();
    let mut found: Vec<(String, &'static Directive)> = Vec::new();
    for pattern in &args[2..] {
        let pattern_text = String::from_utf8_lossy(pattern);
        if !pattern.iter().any(|b| matches!(b, b'*' | b'?' | b'[')) {
            let key = pattern_text.to_ascii_lowercase();
            if !seen.contains(&key)
                && let Some((directive, _)) = directives::lookup(&pattern_text)
            {
                seen.insert(key);
                found.push((pattern_text.into_owned(), directive));
            }
            continue;
        }
        for (name, directive) in directives::all_names() {
            if directive.has(HIDDEN) || seen.contains(name) {
                continue;
            }
            if glob_match(pattern, name.as_bytes(), true) {
                seen.insert(name.to_string());
                found.push((name.to_string(), directive));
            }
        }
    }
    found.sort_by(|a, b| a.0.as_bytes().cmp(b.0.as_bytes()));
    ctx.reply.map_len(found.len());
    for (name, directive) in found {
        ctx.reply.bulk(name.as_bytes());
        ctx.reply.bulk(directive.get(&config).as_bytes());
    }
    Ok(())
}

fn set_failed(name: &str, reason: &str) -> CmdError {
    CmdError::err(format!(
        "CONFIG SET failed (possibly related to argument '{name}') - {reason}"
    ))
}

/// `CONFIG SET name value [name value ...]`: all names are checked first (unknown, immutable,
/// protected, duplicate), then every value is parsed into one new snapshot and its effects
/// applied; if any step fails nothing changes, and effects already applied are undone.
fn config_set(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    if !args.len().is_multiple_of(2) {
        return Err(errors::SYNTAX);
    }
    let protected_allowed = protected_configs_allowed(ctx);
    let mut pairs: Vec<(String, &'static Directive, &'static str, String)> = Vec::new();
    for pair in args[2..].chunks(2) {
        let name = String::from_utf8_lossy(&pair[0]).into_owned();
        let Some((directive, matched)) = directives::lookup(&name) else {
            return Err(CmdError::err(format!(
                "Unknown option or number of arguments for CONFIG SET - '{name}'"
            )));
        };
        if directive.has(IMMUTABLE) {
            return Err(set_failed(&name, "can't set immutable config"));
        }
        if directive.has(PROTECTED) && !protected_allowed {
            return Err(set_failed(&name, "can't set protected config"));
        }
        if directive.has(DENY_LOADING)
            && ctx
                .server
                .persistence
                .loading
                .load(std::sync::atomic::Ordering::Relaxed)
        {
            return Err(CmdError::new(crate::loading::LOADING_ERROR));
        }
        // The same name twice (in any case) is refused; an alias and its directive are not
        // the same name, and the later one wins, as in Valkey.
        if pairs.iter().any(|(_, _, m, _)| *m == matched) {
            return Err(set_failed(&name, "duplicate parameter"));
        }
        let value = String::from_utf8_lossy(&pair[1]).into_owned();
        pairs.push((name, directive, matched, value));
    }

    let server = ctx.server;
    let _writer = server.config_write.lock();
    let old = server.config.load();
    server.config.update(|next| {
        for (name, directive, _, value) in &pairs {
            directive
                .set(next, value)
                .map_err(|reason| set_failed(name, &reason))?;
        }
        let mut applied: Vec<&Directive> = Vec::new();
        for (name, directive, _, _) in &pairs {
            if let Err(reason) = hooks::apply(directive.name, next) {
                for done in applied.iter().rev() {
                    if let Err(e) = hooks::apply(done.name, &old) {
                        log::warn!(
                            "Could not restore {} after a failed CONFIG SET: {e}",
                            done.name
                        );
                    }
                }
                return Err(set_failed(name, &reason));
            }
            applied.push(directive);
        }
        Ok(())
    })?;
    ctx.reply.ok();
    Ok(())
}

/// Whether this client may change protected directives (`enable-protected-configs`).
fn protected_configs_allowed(ctx: &Ctx) -> bool {
    match ctx.server.config.load().enable_protected_configs.as_str() {
        "yes" => true,
        "local" => crate::dispatch::is_local(ctx.client),
        _ => false,
    }
}

/// `CONFIG RESETSTAT`
fn config_resetstat(ctx: &mut Ctx, _args: &[Bytes]) -> CmdResult {
    stats::reset_all();
    crate::latency::reset_histograms();
    crate::lazyfree::reset_stats();
    ctx.server.acl.denied.reset();
    let replication = &ctx.server.replication;
    for counter in [
        &replication.sync_full,
        &replication.sync_partial_ok,
        &replication.sync_partial_err,
    ] {
        counter.store(0, std::sync::atomic::Ordering::Relaxed);
    }
    ctx.reply.ok();
    Ok(())
}

/// `CONFIG REWRITE`
fn config_rewrite(ctx: &mut Ctx, _args: &[Bytes]) -> CmdResult {
    if ctx.server.config.path.is_none() {
        return Err(CmdError::err(NO_CONFIG_FILE));
    }
    rewrite(ctx, false).map_err(|reason| CmdError::err(format!("Rewriting config file: {reason}")))
}

const NO_CONFIG_FILE: &str = "The server is running without a config file";

/// Writes the live configuration into the config file (every directive with `force_all`);
/// replies OK or gives the reason it could not.
pub(crate) fn rewrite(ctx: &mut Ctx, force_all: bool) -> Result<(), String> {
    let Some(path) = ctx.server.config.path.as_ref() else {
        return Err(NO_CONFIG_FILE.into());
    };
    let _writer = ctx.server.config_write.lock();
    let config = ctx.server.config.load();
    let users: Vec<String> = ctx
        .server
        .acl
        .users()
        .iter()
        .map(|u| String::from_utf8_lossy(&u.describe()).into_owned())
        .collect();
    match rewrite::rewrite_file(path, &config, &users, force_all) {
        Ok(()) => {
            log::info!("CONFIG REWRITE executed with success.");
            ctx.reply.ok();
            Ok(())
        }
        Err(reason) => {
            log::warn!("CONFIG REWRITE failed: {reason}");
            Err(reason)
        }
    }
}

/// `CONFIG HELP`
fn config_help(ctx: &mut Ctx, _args: &[Bytes]) -> CmdResult {
    const LINES: &[&str] = &[
        "CONFIG <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
        "GET <pattern>",
        "    Return parameters matching the glob-like <pattern> and their values.",
        "SET <directive> <value>",
        "    Set the configuration <directive> to <value>.",
        "RESETSTAT",
        "    Reset statistics reported by the INFO command.",
        "REWRITE",
        "    Rewrite the configuration file.",
        "HELP",
        "    Print this help.",
    ];
    ctx.reply.array_len(LINES.len());
    for line in LINES {
        ctx.reply.simple(line);
    }
    Ok(())
}
