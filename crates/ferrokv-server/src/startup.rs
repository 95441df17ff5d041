//! What the server says and leaves on disk when it starts: the start-up banner and the
//! pid file.

use std::io::IsTerminal;

use ferrokv_config::Config;

/// Logs who is starting, as Valkey does, before the data is loaded. With `always-show-logo
/// yes`, or when the log goes to a terminal, the banner is a block that names the port and
/// the process id on lines of their own (`Port: 6379`, `PID: 1234`): Valkey's test suite
/// and some supervisors find a fresh server's pid that way.
pub fn log_banner(config: &Config) {
    let pid = std::process::id();
    let version = env!("CARGO_PKG_VERSION");
    log::info!(
        "ferrokv {version} starting, pid={pid} (Valkey 9.1 compatible, redis_version 7.2.4)"
    );
    let to_terminal = config.logfile.is_empty() && std::io::stdout().is_terminal();
    if config.always_show_logo || to_terminal {
        let rule = "-".repeat(44);
        log::info!(
            "\n  {rule}\n    ferrokv {version}\n    Running in standalone mode\n    Port: {}\n    PID: {pid}\n  {rule}\n",
            config.port
        );
    } else {
        log::info!("Running mode=standalone, port={}.", config.port);
    }
}

/// The `pidfile` directive's file: written at start-up (write to a temporary file, then
/// rename, so a reader never sees half a number) and removed on a clean exit.
pub struct PidFile(Option<String>);

impl PidFile {
    pub fn create(path: &str) -> PidFile {
        if path.is_empty() {
            return PidFile(None);
        }
        let temporary = format!("{path}.tmp-{}", std::process::id());
        let written = std::fs::write(&temporary, format!("{}\n", std::process::id()))
            .and_then(|()| std::fs::rename(&temporary, path));
        match written {
            Ok(()) => PidFile(Some(path.to_string())),
            Err(e) => {
                // Valkey goes on without its pid file too: it is a convenience, not the data.
                let _ = std::fs::remove_file(&temporary);
                log::warn!("Failed to write PID file {path}: {e}");
                PidFile(None)
            }
        }
    }
}

impl Drop for PidFile {
    fn drop(&mut self) {
        if let Some(path) = &self.0 {
            let _ = std::fs::remove_file(path);
        }
    }
}
