//! Effects of a directive beyond its stored value.
//!
//! Most directives need nothing: the server reads the current snapshot. Those that change
//! process state (the working directory, the log level, listeners) register an *apply* hook
//! here; the config file loader and CONFIG SET call [`apply`] after a value is accepted, and
//! CONFIG SET re-applies the old values when a later hook of the same call fails.

use parking_lot::RwLock;

use crate::directives::Config;

/// Makes a new value take effect; `Err` is the reason shown to the user.
pub type ApplyFn = fn(&Config) -> Result<(), String>;

static HOOKS: RwLock<Vec<(&'static str, ApplyFn)>> = RwLock::new(Vec::new());

/// Registers `hook` for the directive with canonical name `directive` (several may be
/// registered for one directive; they run in registration order).
pub fn on_change(directive: &'static str, hook: ApplyFn) {
    HOOKS.write().push((directive, hook));
}

/// Runs the built-in effect and the registered hooks of `directive`.
pub fn apply(directive: &str, config: &Config) -> Result<(), String> {
    if directive == "dir" {
        change_dir(config)?;
    }
    let hooks: Vec<ApplyFn> = HOOKS
        .read()
        .iter()
        .filter(|(name, _)| *name == directive)
        .map(|(_, hook)| *hook)
        .collect();
    for hook in hooks {
        hook(config)?;
    }
    Ok(())
}

/// `dir`: moves the process into the directory, as Valkey does.
fn change_dir(config: &Config) -> Result<(), String> {
    if config.dir.is_empty() {
        return Ok(());
    }
    std::env::set_current_dir(&config.dir).map_err(|e| crate::special::os_error_text(&e))
}
