//! MODULE: ferrokv loads no modules. LIST shows the built-in Lua engine, which Valkey 9
//! reports as a module too; LOAD/LOADEX/UNLOAD are refused per `enable-module-command`
//! and otherwise fail as loading or unloading a missing module does.

use bytes::Bytes;

use crate::cmd::command::write_help;
use crate::context::{CmdError, CmdResult, Ctx};
use crate::spec::{CommandSpec, flag};

const fn sub(name: &'static str, arity: i32) -> CommandSpec {
    CommandSpec::new(name, arity, "server").flags(flag::ADMIN | flag::NOSCRIPT)
}

const LOAD_FLAGS: u64 = flag::ADMIN | flag::NOSCRIPT | flag::NO_ASYNC_LOADING;

pub const COMMANDS: &[CommandSpec] = &[CommandSpec::new("module", -2, "server")
    .doc(
        "4.0.0",
        "Manages loadable modules.",
        "Depends on the subcommand.",
    )
    .subcommands(&[
        CommandSpec::new("help", 2, "server")
            .flags(flag::LOADING | flag::STALE)
            .doc("5.0.0", "Lists the MODULE subcommands.", "O(1)")
            .handler(help),
        sub("list", 2)
            .tips(&["nondeterministic_output_order"])
            .doc(
                "4.0.0",
                "Lists the loaded modules.",
                "O(N), N being the number of modules",
            )
            .handler(list),
        sub("load", -3)
            .flags(LOAD_FLAGS)
            .doc("4.0.0", "Loads a module library.", "O(1)")
            .handler(load),
        sub("loadex", -3)
            .flags(LOAD_FLAGS)
            .doc(
                "7.0.0",
                "Loads a module library with configurations and arguments.",
                "O(1)",
            )
            .handler(load),
        sub("unload", 3)
            .flags(LOAD_FLAGS)
            .doc("4.0.0", "Unloads a module.", "O(1)")
            .handler(unload),
    ])];

fn help(ctx: &mut Ctx, _args: &[Bytes]) -> CmdResult {
    write_help(
        ctx.reply,
        "MODULE",
        &[
            "LIST",
            "    Return a list of loaded modules.",
            "LOAD <path> [<arg> ...]",
            "    Load a module library from <path>, passing to it any optional arguments.",
            "LOADEX <path> [[CONFIG NAME VALUE] [CONFIG NAME VALUE]] [ARGS ...]",
            "    Load a module library from <path>, while passing it module configurations and optional arguments.",
            "UNLOAD <name>",
            "    Unload a module.",
        ],
    );
    Ok(())
}

/// `MODULE LIST`: the Lua engine, as Valkey 9 lists it.
fn list(ctx: &mut Ctx, _args: &[Bytes]) -> CmdResult {
    ctx.reply.array_len(1);
    ctx.reply.map_len(4);
    ctx.reply.bulk(b"name");
    ctx.reply.bulk(b"lua");
    ctx.reply.bulk(b"ver");
    ctx.reply.int(1);
    ctx.reply.bulk(b"path");
    ctx.reply.bulk(b"lua");
    ctx.reply.bulk(b"args");
    ctx.reply.array_len(0);
    Ok(())
}

/// Refused unless `enable-module-command` allows this client (Valkey's text).
fn check_allowed(ctx: &Ctx) -> CmdResult {
    let allowed = match ctx.client.config.enable_module_command.as_str() {
        "yes" => true,
        "local" => crate::dispatch::is_local(ctx.client),
        _ => false,
    };
    if allowed {
        return Ok(());
    }
    Err(CmdError::err(
        "MODULE command not allowed. If the enable-module-command option is set to \"local\", \
         you can run it from a local connection, otherwise you need to set this option in the \
         configuration file, and then restart the server.",
    ))
}

/// `MODULE LOAD` / `MODULE LOADEX`: ferrokv cannot load module libraries.
fn load(ctx: &mut Ctx, _args: &[Bytes]) -> CmdResult {
    check_allowed(ctx)?;
    log::warn!("Module loading is not supported by ferrokv");
    Err(CmdError::err(
        "Error loading the extension. Please check the server logs.",
    ))
}

/// `MODULE UNLOAD`: nothing was loaded, so no name matches.
fn unload(ctx: &mut Ctx, _args: &[Bytes]) -> CmdResult {
    check_allowed(ctx)?;
    Err(CmdError::err(
        "Error unloading module: no such module with that name",
    ))
}
