//! Scripting commands: EVAL, EVALSHA, EVAL_RO, EVALSHA_RO, SCRIPT *, FCALL, FCALL_RO,
//! FUNCTION * (the engine is in `crate::scripting`).

use bytes::Bytes;

use crate::cmd::args;
use crate::context::{CmdError, CmdResult, Ctx};
use crate::scripting::cache::{FunctionMeta, Library, Script};
use crate::scripting::run::{self, Invocation};
use crate::scripting::shebang::{self, script_flag};
use crate::scripting::vm::{self, Vm};
use crate::scripting::{Scripting, sha1_hex};
use crate::spec::{BeginSearch, CommandSpec, FindKeys, KeySpec, category as cat, flag, key_flag};

const EVAL_FLAGS: u64 = flag::NOSCRIPT | flag::STALE | flag::SKIP_MONITOR | flag::NO_MANDATORY_KEYS;
// EVAL, EVALSHA and FCALL are also `may_replicate` (hidden from COMMAND INFO): a script
// without declared flags is held back by CLIENT PAUSE WRITE, as in Valkey. A script that
// declares flags is checked by them instead (`scripting::command_flags`).

const RW_KEYS: &[KeySpec] = &[KeySpec {
    flags: key_flag::RW | key_flag::ACCESS | key_flag::UPDATE,
    begin: BeginSearch::Index(2),
    find: FindKeys::KeyNum {
        key_num_idx: 0,
        first_key: 1,
        step: 1,
    },
}];
const RO_KEYS: &[KeySpec] = &[KeySpec {
    flags: key_flag::RO | key_flag::ACCESS,
    begin: BeginSearch::Index(2),
    find: FindKeys::KeyNum {
        key_num_idx: 0,
        first_key: 1,
        step: 1,
    },
}];
const RW_NOTE: &[&str] =
    &["We cannot tell how the keys will be used so we assume the worst, RW and UPDATE"];
const RO_NOTE: &[&str] =
    &["We cannot tell how the keys will be used so we assume the worst, RO and ACCESS"];

const ALL_SHARDS_AND_SUCCEEDED: &[&str] =
    &["request_policy:all_shards", "response_policy:all_succeeded"];
const ALL_NODES_AND_SUCCEEDED: &[&str] =
    &["request_policy:all_nodes", "response_policy:all_succeeded"];
const KILL_TIPS: &[&str] = &["request_policy:all_shards", "response_policy:one_succeeded"];

pub const COMMANDS: &[CommandSpec] = &[
    CommandSpec::new("eval", -3, "scripting")
        .flags(EVAL_FLAGS | flag::MAY_REPLICATE)
        .categories(cat::SCRIPTING)
        .keys(RW_KEYS)
        .key_notes(RW_NOTE)
        .doc(
            "2.6.0",
            "Runs a Lua script on the server.",
            "Depends on the script that is executed.",
        )
        .handler(eval)
        .runs_lua(),
    CommandSpec::new("evalsha", -3, "scripting")
        .flags(EVAL_FLAGS | flag::MAY_REPLICATE)
        .categories(cat::SCRIPTING)
        .keys(RW_KEYS)
        .doc(
            "2.6.0",
            "Runs a cached Lua script by its SHA1 digest.",
            "Depends on the script that is executed.",
        )
        .handler(evalsha)
        .runs_lua(),
    CommandSpec::new("eval_ro", -3, "scripting")
        .flags(EVAL_FLAGS | flag::READONLY)
        .categories(cat::SCRIPTING)
        .keys(RO_KEYS)
        .key_notes(RO_NOTE)
        .doc(
            "7.0.0",
            "Runs a Lua script that may only read.",
            "Depends on the script that is executed.",
        )
        .handler(eval_ro)
        .runs_lua(),
    CommandSpec::new("evalsha_ro", -3, "scripting")
        .flags(EVAL_FLAGS | flag::READONLY)
        .categories(cat::SCRIPTING)
        .keys(RO_KEYS)
        .doc(
            "7.0.0",
            "Runs a cached Lua script that may only read, by its SHA1 digest.",
            "Depends on the script that is executed.",
        )
        .handler(evalsha_ro)
        .runs_lua(),
    CommandSpec::new("fcall", -3, "scripting")
        .flags(EVAL_FLAGS | flag::MAY_REPLICATE)
        .categories(cat::SCRIPTING)
        .keys(RW_KEYS)
        .key_notes(RW_NOTE)
        .doc(
            "7.0.0",
            "Calls a function of a loaded library.",
            "Depends on the function that is executed.",
        )
        .handler(fcall)
        .runs_lua(),
    CommandSpec::new("fcall_ro", -3, "scripting")
        .flags(EVAL_FLAGS | flag::READONLY)
        .categories(cat::SCRIPTING)
        .keys(RO_KEYS)
        .key_notes(RO_NOTE)
        .doc(
            "7.0.0",
            "Calls a read-only function of a loaded library.",
            "Depends on the function that is executed.",
        )
        .handler(fcall_ro)
        .runs_lua(),
    CommandSpec::new("script", -2, "scripting")
        .categories(cat::SLOW)
        .doc(
            "2.6.0",
            "A container for the Lua script cache commands.",
            "Depends on subcommand.",
        )
        .subcommands(&[
            CommandSpec::new("debug", -3, "scripting")
                .flags(flag::NOSCRIPT)
                .categories(cat::SCRIPTING)
                .doc(
                    "3.2.0",
                    "Sets the debug mode of server-side Lua scripts.",
                    "O(1)",
                )
                .handler(script_debug),
            CommandSpec::new("exists", -3, "scripting")
                .flags(flag::NOSCRIPT | flag::STALE)
                .categories(cat::SCRIPTING)
                .tips(&["request_policy:all_shards", "response_policy:agg_logical_and"])
                .doc(
                    "2.6.0",
                    "Tells which scripts are in the script cache.",
                    "O(N) with N being the number of scripts to check (so checking a single script is an O(1) operation).",
                )
                .handler(script_exists),
            CommandSpec::new("flush", -2, "scripting")
                .flags(flag::NOSCRIPT | flag::STALE)
                .categories(cat::SCRIPTING)
                .tips(ALL_NODES_AND_SUCCEEDED)
                .doc(
                    "2.6.0",
                    "Empties the script cache.",
                    "O(N) with N being the number of scripts in cache",
                )
                .handler(script_flush),
            CommandSpec::new("help", 2, "scripting")
                .flags(flag::LOADING | flag::STALE)
                .categories(cat::SCRIPTING)
                .doc(
                    "5.0.0",
                    "Returns helpful text about the different subcommands.",
                    "O(1)",
                )
                .handler(script_help),
            CommandSpec::new("kill", 2, "scripting")
                .flags(flag::NOSCRIPT | flag::ALLOW_BUSY)
                .categories(cat::SCRIPTING)
                .tips(KILL_TIPS)
                .doc(
                    "2.6.0",
                    "Stops the running script if it has not written yet.",
                    "O(1)",
                )
                .handler(kill),
            CommandSpec::new("load", 3, "scripting")
                .flags(flag::NOSCRIPT | flag::STALE)
                .categories(cat::SCRIPTING)
                .tips(ALL_NODES_AND_SUCCEEDED)
                .doc(
                    "2.6.0",
                    "Adds a Lua script to the script cache without running it.",
                    "O(N) with N being the length in bytes of the script body.",
                )
                .handler(script_load),
            CommandSpec::new("show", 3, "scripting")
                .flags(flag::NOSCRIPT | flag::STALE)
                .categories(cat::SCRIPTING)
                .doc(
                    "8.0.0",
                    "Returns a cached script's source.",
                    "O(1).",
                )
                .handler(script_show),
        ]),
    CommandSpec::new("function", -2, "scripting")
        .categories(cat::SLOW)
        .doc(
            "7.0.0",
            "A container for function commands.",
            "Depends on subcommand.",
        )
        .subcommands(&[
            CommandSpec::new("delete", 3, "scripting")
                .flags(flag::WRITE | flag::NOSCRIPT)
                .categories(cat::SCRIPTING)
                .tips(ALL_SHARDS_AND_SUCCEEDED)
                .doc("7.0.0", "Removes a library and its functions.", "O(1)")
                .handler(function_delete),
            CommandSpec::new("dump", 2, "scripting")
                .flags(flag::NOSCRIPT)
                .categories(cat::SCRIPTING)
                .doc(
                    "7.0.0",
                    "Serializes every library into a payload.",
                    "O(N) where N is the number of functions",
                )
                .handler(function_dump),
            CommandSpec::new("flush", -2, "scripting")
                .flags(flag::WRITE | flag::NOSCRIPT)
                .categories(cat::SCRIPTING)
                .tips(ALL_SHARDS_AND_SUCCEEDED)
                .doc(
                    "7.0.0",
                    "Removes every library and function.",
                    "O(N) where N is the number of functions deleted",
                )
                .handler(function_flush),
            CommandSpec::new("help", 2, "scripting")
                .flags(flag::LOADING | flag::STALE)
                .categories(cat::SCRIPTING)
                .doc(
                    "7.0.0",
                    "Returns helpful text about the different subcommands.",
                    "O(1)",
                )
                .handler(function_help),
            CommandSpec::new("kill", 2, "scripting")
                .flags(flag::NOSCRIPT | flag::ALLOW_BUSY)
                .categories(cat::SCRIPTING)
                .tips(KILL_TIPS)
                .doc(
                    "7.0.0",
                    "Stops the running function if it has not written yet.",
                    "O(1)",
                )
                .handler(kill),
            CommandSpec::new("list", -2, "scripting")
                .flags(flag::NOSCRIPT)
                .categories(cat::SCRIPTING)
                .tips(&["nondeterministic_output_order"])
                .doc(
                    "7.0.0",
                    "Lists the libraries and their functions.",
                    "O(N) where N is the number of functions",
                )
                .handler(function_list),
            CommandSpec::new("load", -3, "scripting")
                .flags(flag::WRITE | flag::DENYOOM | flag::NOSCRIPT)
                .categories(cat::SCRIPTING)
                .tips(ALL_SHARDS_AND_SUCCEEDED)
                .doc(
                    "7.0.0",
                    "Loads a library of functions.",
                    "O(1) (considering compilation time is redundant)",
                )
                .handler(function_load),
            CommandSpec::new("restore", -3, "scripting")
                .flags(flag::WRITE | flag::DENYOOM | flag::NOSCRIPT)
                .categories(cat::SCRIPTING)
                .tips(ALL_SHARDS_AND_SUCCEEDED)
                .doc(
                    "7.0.0",
                    "Loads libraries from a FUNCTION DUMP payload.",
                    "O(N) where N is the number of functions on the payload",
                )
                .handler(function_restore),
            CommandSpec::new("stats", 2, "scripting")
                .flags(flag::NOSCRIPT | flag::ALLOW_BUSY)
                .categories(cat::SCRIPTING)
                .tips(&[
                    "nondeterministic_output",
                    "request_policy:all_shards",
                    "response_policy:special",
                ])
                .doc(
                    "7.0.0",
                    "Shows the running function and the engines' statistics.",
                    "O(1)",
                )
                .handler(function_stats),
        ]),
];

// ---- EVAL family ----

/// KEYS and ARGV of `EVAL script numkeys key... arg...` (also FCALL).
fn split_keys(args: &[Bytes]) -> Result<(&[Bytes], &[Bytes]), CmdError> {
    let numkeys = args::int(&args[2])?;
    if numkeys < 0 {
        return Err(CmdError::err("Number of keys can't be negative"));
    }
    let rest = &args[3..];
    if numkeys as u64 > rest.len() as u64 {
        return Err(CmdError::err(
            "Number of keys can't be greater than number of args",
        ));
    }
    Ok(rest.split_at(numkeys as usize))
}

fn noscript() -> CmdError {
    CmdError::new("NOSCRIPT No matching script.")
}

fn ro_write_flag_error() -> CmdError {
    CmdError::err("Can not execute a script with write flag using *_ro command.")
}

fn engine_error(e: mlua::Error) -> CmdError {
    CmdError::new(vm::error_text(&e))
}

/// The compiled function for script `sha`, compiled on this thread if needed: from
/// `script`, or else from the server-wide cache (NOSCRIPT if it left it).
fn compiled_script(
    vm: &mut Vm,
    scripting: &Scripting,
    sha: &str,
    script: Option<&Script>,
) -> Result<mlua::Function, CmdError> {
    let epoch = scripting.scripts.epoch();
    if vm.scripts_epoch != epoch {
        vm.forget_scripts(epoch);
    }
    if let Some(f) = vm.scripts.get(sha) {
        return Ok(f.clone());
    }
    let cached;
    let script = match script {
        Some(script) => script,
        None => {
            cached = scripting.scripts.get(sha).ok_or_else(noscript)?;
            &cached
        }
    };
    let f = vm.compile_script(&script.body).map_err(CmdError::err)?;
    vm.scripts.insert(sha.to_string(), f.clone());
    Ok(f)
}

/// Compiles `source` on this thread and adds it to the cache; returns its sha and flags.
fn load_script(ctx: &Ctx, source: &Bytes) -> Result<(String, u32), CmdError> {
    let scripting = &ctx.server.scripting;
    let sha = sha1_hex(source);
    if let Some(flags) = scripting.scripts.flags(&sha) {
        return Ok((sha, flags));
    }
    let (flags, body) = shebang::eval_flags(source)?;
    let script = Script {
        source: source.clone(),
        body,
        flags,
    };
    let f = vm::with_vm(ctx.server, |vm| {
        compiled_script(vm, scripting, &sha, Some(&script)).map(|_| ())
    })
    .map_err(engine_error)?;
    f?;
    scripting.scripts.insert(sha.clone(), script);
    Ok((sha, flags))
}

fn eval_generic(ctx: &mut Ctx, args: &[Bytes], by_sha: bool, read_only: bool) -> CmdResult {
    let (keys, argv) = split_keys(args)?;
    let server = ctx.server;
    let scripting = &server.scripting;
    let mut sha_buf = [0u8; 40];
    let loaded;
    let (sha, flags) = if by_sha {
        let sha = crate::scripting::sha_key(&args[1], &mut sha_buf).ok_or_else(noscript)?;
        (sha, scripting.scripts.flags(sha).ok_or_else(noscript)?)
    } else {
        loaded = load_script(ctx, &args[1])?;
        (loaded.0.as_str(), loaded.1)
    };
    if read_only && flags & script_flag::EVAL_COMPAT == 0 && flags & script_flag::NO_WRITES == 0 {
        return Err(ro_write_flag_error());
    }
    vm::with_vm(server, |vm| {
        let f = compiled_script(vm, scripting, sha, None)?;
        run::run(
            ctx,
            vm,
            f,
            Invocation {
                function: None,
                id: sha,
                flags,
                read_only_command: read_only,
                keys,
                args: argv,
                command: args,
            },
        )
    })
    .map_err(engine_error)?
}

/// `EVAL script numkeys [key ...] [arg ...]`
fn eval(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    eval_generic(ctx, args, false, false)
}

/// `EVALSHA sha1 numkeys [key ...] [arg ...]`
fn evalsha(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    eval_generic(ctx, args, true, false)
}

/// `EVAL_RO script numkeys [key ...] [arg ...]`
fn eval_ro(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    eval_generic(ctx, args, false, true)
}

/// `EVALSHA_RO sha1 numkeys [key ...] [arg ...]`
fn evalsha_ro(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    eval_generic(ctx, args, true, true)
}

// ---- SCRIPT ----

/// `SCRIPT LOAD script`
fn script_load(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    let (sha, _) = load_script(ctx, &args[2])?;
    ctx.reply.bulk(sha.as_bytes());
    Ok(())
}

/// `SCRIPT EXISTS sha1 [sha1 ...]`
fn script_exists(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    ctx.reply.array_len(args.len() - 2);
    for sha in &args[2..] {
        let sha = String::from_utf8_lossy(sha).to_ascii_lowercase();
        let found = ctx.server.scripting.scripts.contains(&sha);
        ctx.reply.int(found as i64);
    }
    Ok(())
}

/// `SCRIPT FLUSH [ASYNC|SYNC]`
fn script_flush(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    flush_mode(args, "ERR SCRIPT FLUSH only support SYNC|ASYNC option")?;
    drop(ctx.server.scripting.scripts.flush());
    // This thread's Lua state lets go of the compiled scripts now (the others when they
    // next run one), so INFO shows the memory come back.
    let scripting = &ctx.server.scripting;
    let epoch = scripting.scripts.epoch();
    let _ = vm::with_vm(ctx.server, |vm| vm.forget_scripts(epoch));
    ctx.reply.ok();
    Ok(())
}

fn flush_mode(args: &[Bytes], error: &'static str) -> CmdResult {
    match &args[2..] {
        [] => Ok(()),
        [mode] if args::is(mode, "sync") || args::is(mode, "async") => Ok(()),
        _ => Err(CmdError::new(error)),
    }
}

/// `SCRIPT KILL` / `FUNCTION KILL`
fn kill(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    let function = args::is(&args[0], "function");
    ctx.server.scripting.busy.kill(function)?;
    ctx.reply.ok();
    Ok(())
}

/// `SCRIPT SHOW sha1`
fn script_show(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    let sha = String::from_utf8_lossy(&args[2]).to_ascii_lowercase();
    let script = ctx
        .server
        .scripting
        .scripts
        .get(&sha)
        .ok_or_else(noscript)?;
    ctx.reply.bulk(&script.source);
    Ok(())
}

/// `SCRIPT DEBUG YES|SYNC|NO`: accepted; the Lua debugger itself is not implemented, so
/// scripts keep running normally.
fn script_debug(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    if args.len() > 4 {
        return Err(CmdError::err(format!(
            "unknown subcommand or wrong number of arguments for '{}'. Try SCRIPT HELP.",
            String::from_utf8_lossy(&args[1])
        )));
    }
    if let Some(engine) = args.get(3)
        && !args::is(engine, "lua")
    {
        return Err(CmdError::err(format!(
            "No scripting engine found with name '{}' to enable debug",
            String::from_utf8_lossy(engine)
        )));
    }
    let mode = &args[2];
    if !(args::is(mode, "yes") || args::is(mode, "sync") || args::is(mode, "no")) {
        return Err(CmdError::err("Use SCRIPT DEBUG YES/SYNC/NO"));
    }
    ctx.reply.ok();
    Ok(())
}

/// `SCRIPT HELP`
fn script_help(ctx: &mut Ctx, _args: &[Bytes]) -> CmdResult {
    help(
        ctx,
        &[
            "SCRIPT <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
            "DEBUG (YES|SYNC|NO) [<engine_name>]",
            "    Set the debug mode for subsequent scripts executed of the specified engine.",
            "    Default engine name: 'lua'",
            "EXISTS <sha1> [<sha1> ...]",
            "    Return information about the existence of the scripts in the script cache.",
            "FLUSH [ASYNC|SYNC]",
            "    Flush the Lua scripts cache. Very dangerous on replicas.",
            "    When called without the optional mode argument, the behavior is determined",
            "     by the lazyfree-lazy-user-flush configuration directive. Valid modes are:",
            "    * ASYNC: Asynchronously flush the scripts cache.",
            "    * SYNC: Synchronously flush the scripts cache.",
            "KILL",
            "    Kill the currently executing Lua script.",
            "LOAD <script>",
            "    Load a script into the scripts cache without executing it.",
            "SHOW <sha1>",
            "    Show a script from the scripts cache.",
            "HELP",
            "    Print this help.",
        ],
    )
}

fn help(ctx: &mut Ctx, lines: &[&str]) -> CmdResult {
    ctx.reply.array_len(lines.len());
    for line in lines {
        ctx.reply.simple(line);
    }
    Ok(())
}

// ---- FCALL ----

/// This thread's compiled functions, rebuilt after any library change.
fn sync_functions(vm: &mut Vm, scripting: &Scripting) -> Result<(), CmdError> {
    let version = scripting.libraries.version();
    if vm.libraries_version == Some(version) {
        return Ok(());
    }
    vm.functions.clear();
    let libraries: Vec<_> = scripting
        .libraries
        .read()
        .libraries
        .values()
        .cloned()
        .collect();
    for lib in libraries {
        let registered = vm.load_library(&lib.body).map_err(CmdError::err)?;
        for reg in registered {
            vm.functions.insert(
                reg.name,
                crate::scripting::vm::CompiledFunction {
                    callback: reg.callback,
                },
            );
        }
    }
    vm.libraries_version = Some(version);
    Ok(())
}

fn fcall_generic(ctx: &mut Ctx, args: &[Bytes], read_only: bool) -> CmdResult {
    let server = ctx.server;
    let scripting = &server.scripting;
    let asked = String::from_utf8_lossy(&args[1]);
    let Some((meta, _lib, name)) = scripting.libraries.function(&asked) else {
        return Err(CmdError::err("Function not found"));
    };
    if args::int(&args[2]).is_err() {
        return Err(CmdError::err("Bad number of keys provided"));
    }
    let (keys, argv) = split_keys(args)?;
    if read_only && meta.flags & script_flag::NO_WRITES == 0 {
        return Err(ro_write_flag_error());
    }
    vm::with_vm(server, |vm| {
        sync_functions(vm, scripting)?;
        let Some(f) = vm.functions.get(&name).map(|f| f.callback.clone()) else {
            return Err(CmdError::err("Function not found"));
        };
        run::run(
            ctx,
            vm,
            f,
            Invocation {
                function: Some(&name),
                id: &name,
                flags: meta.flags,
                read_only_command: read_only,
                keys,
                args: argv,
                command: args,
            },
        )
    })
    .map_err(engine_error)?
}

/// `FCALL function numkeys [key ...] [arg ...]`
fn fcall(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    fcall_generic(ctx, args, false)
}

/// `FCALL_RO function numkeys [key ...] [arg ...]`
fn fcall_ro(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    fcall_generic(ctx, args, true)
}

// ---- FUNCTION ----

/// Compiles and runs a library's code on this thread; returns the library to register.
fn build_library(ctx: &Ctx, code: &Bytes) -> Result<Library, CmdError> {
    build_library_on(ctx.server, code)
}

/// Registers a library read from a snapshot at start-up (FUNCTION2 items).
pub fn load_library_at_startup(server: &crate::server::Server, code: &[u8]) -> Result<(), String> {
    load_library_from_snapshot(server, code, false)
}

/// [`load_library_at_startup`], replacing a library of the same name when `replace` (a
/// snapshot merged into the data, DEBUG RELOAD NOFLUSH MERGE).
pub fn load_library_from_snapshot(
    server: &crate::server::Server,
    code: &[u8],
    replace: bool,
) -> Result<(), String> {
    let lib = build_library_on(server, &Bytes::copy_from_slice(code)).map_err(|e| e.0)?;
    server.scripting.libraries.update(|state| {
        if !replace && state.libraries.contains_key(&lib.name) {
            return Err(format!("Library '{}' already exists", lib.name));
        }
        if let Some(f) = lib
            .functions
            .keys()
            .find(|f| state.taken_elsewhere(f, &lib.name))
        {
            return Err(format!("Function {f} already exists"));
        }
        state.insert(lib);
        Ok(())
    })
}

fn build_library_on(server: &crate::server::Server, code: &Bytes) -> Result<Library, CmdError> {
    let (name, body) = shebang::library_name(code)?;
    let registered = vm::with_vm(server, |vm| {
        let regs = vm.load_library(&body).map_err(CmdError::err)?;
        // This thread's compiled set no longer matches the registry.
        vm.libraries_version = None;
        Ok::<_, CmdError>(
            regs.into_iter()
                .map(|r| FunctionMeta {
                    name: r.name,
                    description: r.description,
                    flags: r.flags,
                })
                .collect::<Vec<_>>(),
        )
    })
    .map_err(engine_error)??;
    if registered.is_empty() {
        return Err(CmdError::err("No functions registered"));
    }
    let mut names = std::collections::HashSet::new();
    if !registered.iter().all(|f| names.insert(f.name.as_str())) {
        return Err(CmdError::err("Function already exists in the library"));
    }
    if registered
        .iter()
        .any(|f| !shebang::valid_name(f.name.as_bytes()))
    {
        return Err(CmdError::err(
            "Function names can only contain letters, numbers, or underscores(_) and must be at least one character long",
        ));
    }
    Ok(Library {
        name,
        code: code.clone(),
        body,
        functions: registered
            .into_iter()
            .map(|f| (f.name.clone(), f))
            .collect(),
    })
}

/// `FUNCTION LOAD [REPLACE] code`
fn function_load(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    let mut replace = false;
    for option in &args[2..args.len() - 1] {
        if args::is(option, "replace") {
            replace = true;
        } else {
            return Err(CmdError::err(format!(
                "Unknown option given: {}",
                String::from_utf8_lossy(option)
            )));
        }
    }
    let code = &args[args.len() - 1];
    let (name, _) = shebang::library_name(code)?;
    if !replace
        && ctx
            .server
            .scripting
            .libraries
            .read()
            .libraries
            .contains_key(&name)
    {
        return Err(CmdError::err(format!("Library '{name}' already exists")));
    }
    let library = build_library(ctx, code)?;
    let name = library.name.clone();
    ctx.server.scripting.libraries.update(|state| {
        if state.libraries.contains_key(&name) && !replace {
            return Err(CmdError::err(format!("Library '{name}' already exists")));
        }
        for f in library.functions.keys() {
            if state.taken_elsewhere(f, &name) {
                return Err(CmdError::err(format!("Function {f} already exists")));
            }
        }
        state.insert(library);
        Ok(())
    })?;
    ctx.add_dirty(1);
    ctx.reply.bulk(name.as_bytes());
    Ok(())
}

/// `FUNCTION DELETE library`
fn function_delete(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    let name = String::from_utf8_lossy(&args[2]).into_owned();
    ctx.server
        .scripting
        .libraries
        .update(|state| state.remove(&name))
        .ok_or_else(|| CmdError::err("Library not found"))?;
    ctx.add_dirty(1);
    ctx.reply.ok();
    Ok(())
}

/// `FUNCTION FLUSH [ASYNC|SYNC]`
fn function_flush(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    if args.len() > 3 {
        return Err(function_subcommand_syntax(args));
    }
    flush_mode(args, "ERR FUNCTION FLUSH only supports SYNC|ASYNC option")?;
    ctx.server
        .scripting
        .libraries
        .update(|state| *state = Default::default());
    ctx.add_dirty(1);
    ctx.reply.ok();
    Ok(())
}

/// `FUNCTION LIST [LIBRARYNAME pattern] [WITHCODE]`
fn function_list(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    let mut with_code = false;
    let mut pattern: Option<&Bytes> = None;
    let mut i = 2;
    while i < args.len() {
        let arg = &args[i];
        if args::is(arg, "withcode") && !with_code {
            with_code = true;
        } else if args::is(arg, "libraryname") && pattern.is_none() {
            i += 1;
            pattern = Some(
                args.get(i)
                    .ok_or_else(|| CmdError::err("library name argument was not given"))?,
            );
        } else {
            return Err(CmdError::err(format!(
                "Unknown argument {}",
                String::from_utf8_lossy(arg)
            )));
        }
        i += 1;
    }
    let state = ctx.server.scripting.libraries.read();
    let libs: Vec<_> = state
        .libraries
        .values()
        .filter(|lib| {
            pattern.is_none_or(|p| ferrokv_store::glob::glob_match(p, lib.name.as_bytes(), false))
        })
        .cloned()
        .collect();
    drop(state);
    let reply = &mut *ctx.reply;
    reply.array_len(libs.len());
    for lib in libs {
        reply.map_len(if with_code { 4 } else { 3 });
        reply.bulk(b"library_name");
        reply.bulk(lib.name.as_bytes());
        reply.bulk(b"engine");
        reply.bulk(b"LUA");
        reply.bulk(b"functions");
        reply.array_len(lib.functions.len());
        for f in lib.functions.values() {
            reply.map_len(3);
            reply.bulk(b"name");
            reply.bulk(f.name.as_bytes());
            reply.bulk(b"description");
            match &f.description {
                Some(d) => reply.bulk(d),
                None => reply.null(),
            }
            reply.bulk(b"flags");
            let names: Vec<&str> = script_flag::NAMES
                .iter()
                .filter(|(_, bit)| f.flags & bit != 0)
                .map(|(n, _)| *n)
                .collect();
            reply.set_len(names.len());
            for n in names {
                reply.simple(n);
            }
        }
        if with_code {
            reply.bulk(b"library_code");
            reply.bulk(&lib.code);
        }
    }
    Ok(())
}

/// `FUNCTION STATS`
fn function_stats(ctx: &mut Ctx, _args: &[Bytes]) -> CmdResult {
    let (libraries, functions) = {
        let state = ctx.server.scripting.libraries.read();
        (state.libraries.len(), state.function_count())
    };
    // An EVAL script is not a function: Valkey answers BUSY while one runs.
    if ctx
        .server
        .scripting
        .busy
        .with_running(|r| r.is_some_and(|r| r.function.is_none()))
    {
        return Err(CmdError::new(
            "BUSY Valkey is busy running a script. You can only call SCRIPT KILL or SHUTDOWN NOSAVE.",
        ));
    }
    let reply = &mut *ctx.reply;
    reply.map_len(2);
    reply.bulk(b"running_script");
    ctx.server
        .scripting
        .busy
        .with_running(|running| match running {
            Some(r) => {
                reply.map_len(3);
                reply.bulk(b"name");
                reply.bulk(r.function.as_deref().unwrap_or("").as_bytes());
                reply.bulk(b"command");
                reply.array_len(r.command.len());
                for arg in &r.command {
                    reply.bulk(arg);
                }
                reply.bulk(b"duration_ms");
                reply.int(r.started.elapsed().as_millis() as i64);
            }
            None => reply.null(),
        });
    reply.bulk(b"engines");
    reply.map_len(1);
    reply.bulk(b"LUA");
    reply.map_len(2);
    reply.bulk(b"libraries_count");
    reply.int(libraries as i64);
    reply.bulk(b"functions_count");
    reply.int(functions as i64);
    Ok(())
}

/// `FUNCTION DUMP`: the libraries' code, each as a length-prefixed string after a 0xF5
/// opcode, then a 2-byte format version and an 8-byte CRC64 (uncompressed strings).
fn function_dump(ctx: &mut Ctx, _args: &[Bytes]) -> CmdResult {
    let state = ctx.server.scripting.libraries.read();
    let mut payload = Vec::new();
    for lib in state.libraries.values() {
        payload.push(FUNCTION_OPCODE);
        dump::write_string(&mut payload, &lib.code);
    }
    drop(state);
    dump::seal(&mut payload);
    ctx.reply.bulk(&payload);
    Ok(())
}

const FUNCTION_OPCODE: u8 = 0xf5;

/// Valkey's reply to a FUNCTION subcommand given too many arguments.
fn function_subcommand_syntax(args: &[Bytes]) -> CmdError {
    CmdError::err(format!(
        "unknown subcommand or wrong number of arguments for '{}'. Try FUNCTION HELP.",
        String::from_utf8_lossy(&args[1])
    ))
}

/// `FUNCTION RESTORE payload [FLUSH|APPEND|REPLACE]`
fn function_restore(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    if args.len() > 4 {
        return Err(function_subcommand_syntax(args));
    }
    #[derive(PartialEq)]
    enum Policy {
        Flush,
        Append,
        Replace,
    }
    let policy = match args.get(3) {
        None => Policy::Append,
        Some(p) if args::is(p, "flush") => Policy::Flush,
        Some(p) if args::is(p, "append") => Policy::Append,
        Some(p) if args::is(p, "replace") => Policy::Replace,
        Some(_) => {
            return Err(CmdError::err(
                "Wrong restore policy given, value should be either FLUSH, APPEND or REPLACE.",
            ));
        }
    };
    if args.len() > 4 {
        return Err(crate::context::errors::SYNTAX);
    }
    let body = dump::open(&args[2])
        .ok_or_else(|| CmdError::err("DUMP payload version or checksum are wrong"))?;
    let mut codes = Vec::new();
    let mut pos = 0;
    while pos < body.len() {
        if body[pos] != FUNCTION_OPCODE {
            return Err(CmdError::err("given type is not a function"));
        }
        pos += 1;
        let code = dump::read_string(body, &mut pos)
            .ok_or_else(|| CmdError::err("payload is not a valid function"))?;
        codes.push(Bytes::from(code));
    }
    let mut libraries = Vec::new();
    for code in &codes {
        libraries.push(build_library(ctx, code)?);
    }
    ctx.server.scripting.libraries.update(|state| {
        if policy == Policy::Flush {
            *state = Default::default();
        } else if policy == Policy::Append
            && let Some(lib) = libraries
                .iter()
                .find(|lib| state.libraries.contains_key(&lib.name))
        {
            return Err(CmdError::err(format!(
                "Library {} already exists",
                lib.name
            )));
        }
        // A function name another library keeps (one the restore does not replace) fails
        // the whole restore, as in Valkey.
        let restored: Vec<&str> = libraries.iter().map(|lib| lib.name.as_str()).collect();
        for lib in &libraries {
            if let Some(function) = lib.functions.keys().find(|f| {
                state.owner(f).is_some_and(|owner| {
                    owner != lib.name && (policy != Policy::Replace || !restored.contains(&owner))
                })
            }) {
                return Err(CmdError::err(format!("Function {function} already exists")));
            }
        }
        for lib in libraries {
            state.insert(lib);
        }
        Ok(())
    })?;
    ctx.add_dirty(1);
    ctx.reply.ok();
    Ok(())
}

/// `FUNCTION HELP`
fn function_help(ctx: &mut Ctx, _args: &[Bytes]) -> CmdResult {
    help(
        ctx,
        &[
            "FUNCTION <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
            "LOAD [REPLACE] <FUNCTION CODE>",
            "    Create a new library with the given library name and code.",
            "DELETE <LIBRARY NAME>",
            "    Delete the given library.",
            "LIST [LIBRARYNAME PATTERN] [WITHCODE]",
            "    Return general information on all the libraries:",
            "    * Library name",
            "    * The engine used to run the Library",
            "    * Functions list",
            "    * Library code (if WITHCODE is given)",
            "    It also possible to get only function that matches a pattern using LIBRARYNAME argument.",
            "STATS",
            "    Return information about the current function running:",
            "    * Function name",
            "    * Command used to run the function",
            "    * Duration in MS that the function is running",
            "    If no function is running, return nil",
            "    In addition, returns a list of available engines.",
            "KILL",
            "    Kill the current running function.",
            "FLUSH [ASYNC|SYNC]",
            "    Delete all the libraries.",
            "    When called without the optional mode argument, the behavior is determined by the",
            "    lazyfree-lazy-user-flush configuration directive. Valid modes are:",
            "    * ASYNC: Asynchronously flush the libraries.",
            "    * SYNC: Synchronously flush the libraries.",
            "DUMP",
            "    Return a serialized payload representing the current libraries, can be restored using FUNCTION RESTORE command",
            "RESTORE <PAYLOAD> [FLUSH|APPEND|REPLACE]",
            "    Restore the libraries represented by the given payload, it is possible to give a restore policy to",
            "    control how to handle existing libraries (default APPEND):",
            "    * FLUSH: delete all existing libraries.",
            "    * APPEND: appends the restored libraries to the existing libraries. On collision, abort.",
            "    * REPLACE: appends the restored libraries to the existing libraries, On collision, replace the old",
            "      libraries with the new libraries (notice that even on this option there is a chance of failure",
            "      in case of functions name collision with another library).",
            "HELP",
            "    Print this help.",
        ],
    )
}

/// The DUMP payload framing Valkey uses: RDB length-prefixed strings, then the RDB format
/// version (2 bytes, little endian) and a CRC64 (Jones polynomial, reflected) of it all.
mod dump {
    const RDB_VERSION: u16 = 80;

    pub fn write_string(out: &mut Vec<u8>, s: &[u8]) {
        let len = s.len();
        if len < 1 << 6 {
            out.push(len as u8);
        } else if len < 1 << 14 {
            out.push(0x40 | (len >> 8) as u8);
            out.push(len as u8);
        } else if len <= u32::MAX as usize {
            out.push(0x80);
            out.extend_from_slice(&(len as u32).to_be_bytes());
        } else {
            out.push(0x81);
            out.extend_from_slice(&(len as u64).to_be_bytes());
        }
        out.extend_from_slice(s);
    }

    fn read_len(buf: &[u8], pos: &mut usize) -> Option<(usize, bool)> {
        let first = *buf.get(*pos)?;
        *pos += 1;
        Some(match first >> 6 {
            0 => ((first & 0x3f) as usize, false),
            1 => {
                let b = *buf.get(*pos)?;
                *pos += 1;
                ((((first & 0x3f) as usize) << 8) | b as usize, false)
            }
            3 => ((first & 0x3f) as usize, true),
            _ => match first {
                0x80 => {
                    let b = buf.get(*pos..*pos + 4)?;
                    *pos += 4;
                    (u32::from_be_bytes(b.try_into().ok()?) as usize, false)
                }
                0x81 => {
                    let b = buf.get(*pos..*pos + 8)?;
                    *pos += 8;
                    (u64::from_be_bytes(b.try_into().ok()?) as usize, false)
                }
                _ => return None,
            },
        })
    }

    /// A string: plain, or LZF-compressed (encoding 3), as Valkey writes them.
    pub fn read_string(buf: &[u8], pos: &mut usize) -> Option<Vec<u8>> {
        let (len, special) = read_len(buf, pos)?;
        if !special {
            let s = buf.get(*pos..*pos + len)?.to_vec();
            *pos += len;
            return Some(s);
        }
        if len != 3 {
            return None;
        }
        let (clen, _) = read_len(buf, pos)?;
        let (ulen, _) = read_len(buf, pos)?;
        let compressed = buf.get(*pos..*pos + clen)?;
        *pos += clen;
        lzf_decompress(compressed, ulen)
    }

    fn lzf_decompress(input: &[u8], expected: usize) -> Option<Vec<u8>> {
        let mut out = Vec::with_capacity(expected);
        let mut i = 0;
        while i < input.len() {
            let ctrl = input[i] as usize;
            i += 1;
            if ctrl < 32 {
                let n = ctrl + 1;
                out.extend_from_slice(input.get(i..i + n)?);
                i += n;
            } else {
                let mut len = ctrl >> 5;
                if len == 7 {
                    len += *input.get(i)? as usize;
                    i += 1;
                }
                let back = ((ctrl & 0x1f) << 8) + *input.get(i)? as usize + 1;
                i += 1;
                let start = out.len().checked_sub(back)?;
                for k in 0..len + 2 {
                    let b = out[start + k];
                    out.push(b);
                }
            }
        }
        (out.len() == expected).then_some(out)
    }

    pub fn crc64(data: &[u8]) -> u64 {
        const POLY: u64 = 0x95ac_9329_ac4b_c9b5;
        let mut crc = 0u64;
        for &b in data {
            crc ^= b as u64;
            for _ in 0..8 {
                crc = if crc & 1 != 0 {
                    (crc >> 1) ^ POLY
                } else {
                    crc >> 1
                };
            }
        }
        crc
    }

    /// Appends the version and the checksum.
    pub fn seal(payload: &mut Vec<u8>) {
        payload.extend_from_slice(&RDB_VERSION.to_le_bytes());
        let crc = crc64(payload);
        payload.extend_from_slice(&crc.to_le_bytes());
    }

    /// The body of a sealed payload, if its version and checksum are good.
    pub fn open(payload: &[u8]) -> Option<&[u8]> {
        if payload.len() < 10 {
            return None;
        }
        let (body, footer) = payload.split_at(payload.len() - 10);
        let version = u16::from_le_bytes([footer[0], footer[1]]);
        if version > RDB_VERSION {
            return None;
        }
        let crc = u64::from_le_bytes(footer[2..10].try_into().ok()?);
        (crc64(&payload[..payload.len() - 8]) == crc).then_some(body)
    }
}
