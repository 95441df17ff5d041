//! `ferrokv-server [configfile] [--directive value ...]`: the ferrokv data server.

mod alloc;
mod balance;
mod connection;
mod cron;
mod logging;
mod network;
mod relocatable;
mod startup;
mod tls_reload;
mod wake_signal;

use std::sync::Arc;

use ferrokv_commands::Server;

#[global_allocator]
static ALLOC: alloc::CountingJemalloc = alloc::CountingJemalloc;

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.iter().any(|a| a == "-v" || a == "--version") {
        println!(
            "ferrokv-server v={} (Valkey-compatible, redis_version 7.2.4)",
            env!("CARGO_PKG_VERSION")
        );
        return;
    }
    // Renamed commands and ACL users are checked as their lines are read, so their errors
    // name the line like any other directive's.
    let checks = ferrokv_config::load::LineChecks {
        rename_command: Some(ferrokv_commands::table::check_renames),
        user_rules: Some(ferrokv_commands::acl::file::check_user_rules),
    };
    let (config, path) = match ferrokv_config::load::from_args_checked(&args, checks) {
        Ok(x) => x,
        Err(e) => {
            eprintln!("{e}");
            std::process::exit(1);
        }
    };
    if let Err((index, reason)) =
        ferrokv_commands::table::install_renames(&config.extras.rename_commands)
    {
        // Not reached: the loader checked the same lines in the same order.
        let (old, new) = &config.extras.rename_commands[index];
        eprintln!("rename-command {old} {new}: {reason}");
        std::process::exit(1);
    }
    if let Err(e) = logging::init(&config.logfile, &config.loglevel) {
        eprintln!("Can't open the log file: {e}");
        std::process::exit(1);
    }
    logging::report_panics();
    startup::log_banner(&config);
    for warning in ferrokv_config::load::pending_warnings(&config) {
        log::warn!("{warning}");
    }
    let _pid_file = startup::PidFile::create(&config.pidfile);
    if config.cluster_enabled {
        // Serving as a standalone server instead would leave cluster clients with a node
        // that refuses every CLUSTER command: better not to start.
        let e = "cluster-enabled yes: cluster mode is not available in this version of ferrokv \
                 (run without it; CLUSTER KEYSLOT works in every mode)";
        log::warn!("{e}");
        eprintln!("{e}");
        std::process::exit(1);
    }
    if let Err(e) = ferrokv_tls::configure(&config) {
        log::warn!("{e}");
        log::warn!("Failed to configure TLS. Check logs for more info.");
        std::process::exit(1);
    }
    // Only now: while the file was read, a half-loaded configuration must not build TLS.
    ferrokv_tls::register_config_hooks();
    let executable = std::env::current_exe()
        .map(|p| p.display().to_string())
        .unwrap_or_default();
    let server = Server::new(config, path, executable);
    if let Err(lines) = ferrokv_commands::acl::file::load_at_startup(&server) {
        for line in lines {
            log::warn!("{line}");
        }
        std::process::exit(1);
    }
    let aof_load = match ferrokv_commands::aof::start_at_boot(&server) {
        Ok(load) => load,
        Err(e) => {
            log::warn!("{e}");
            std::process::exit(1);
        }
    };
    ferrokv_commands::server::set_used_memory_probe(alloc::used_memory);
    ferrokv_commands::cmd::memory::set_allocator_probe(allocator_probe());
    // The AOF or the snapshot loads while clients connect (they get LOADING until it is
    // whole), as in Valkey.
    ferrokv_commands::persistence::announce_startup_load(&server);
    if let Err(e) = run(server, aof_load) {
        log::warn!("{e}");
        std::process::exit(1);
    }
}

fn run(
    server: Arc<Server>,
    aof_load: Option<ferrokv_commands::aof::BootLoad>,
) -> Result<(), String> {
    let config = server.config.load();
    let threads = match config.worker_threads {
        n if n > 0 => n as usize,
        _ => std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(1),
    };
    ferrokv_store::clock::calibrate();
    let workers =
        network::Workers::start(threads).map_err(|e| format!("Starting worker threads: {e}"))?;
    balance::start(server.clone(), workers.clone());
    let listeners = network::Listeners::install(server.clone(), workers.clone());
    let mut bound = 0;
    for (port, security) in [
        (config.port, network::Security::Plain),
        (config.tls_port, network::Security::Tls),
    ] {
        // Valkey's test suite reads "Failed listening on port" as "pick another port".
        bound += listeners
            .switch(security, port, &config.bind, config.tcp_backlog)
            .map_err(|e| {
                log::warn!("{e}");
                format!(
                    "Failed listening on port {port} ({}), aborting.",
                    security.name()
                )
            })?;
    }
    // CONFIG SET port / tls-port move the listeners, as in Valkey.
    ferrokv_config::hooks::on_change("port", |config| {
        network::Listeners::get()
            .switch(
                network::Security::Plain,
                config.port,
                &config.bind,
                config.tcp_backlog,
            )
            .map(|_| ())
            .map_err(|e| {
                log::warn!("{e}");
                "Unable to listen on this port. Check server logs.".to_string()
            })
    });
    ferrokv_config::hooks::on_change("tls-port", |config| {
        ferrokv_tls::configure(config).map_err(|e| {
            log::warn!("Failed to configure TLS: {e}");
            "Unable to update TLS configuration. Check server logs.".to_string()
        })?;
        network::Listeners::get()
            .switch(
                network::Security::Tls,
                config.tls_port,
                &config.bind,
                config.tcp_backlog,
            )
            .map(|_| ())
            .map_err(|e| {
                log::warn!("{e}");
                "Unable to listen on this port. Check server logs.".to_string()
            })
    });
    if !config.unixsocket.is_empty() {
        let path = config.unixsocket.clone();
        let _ = std::fs::remove_file(&path);
        let listener = std::os::unix::net::UnixListener::bind(&path)
            .map_err(|e| format!("Failed opening Unix socket: {e}"))?;
        if config.unixsocketperm != 0 {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(
                &path,
                std::fs::Permissions::from_mode(config.unixsocketperm as u32),
            )
            .map_err(|e| format!("Setting unix socket permissions: {e}"))?;
        }
        listener.set_nonblocking(true).map_err(|e| e.to_string())?;
        bound += 1;
        workers.acceptor().spawn(network::accept_unix(
            server.clone(),
            workers.clone(),
            listener,
            path,
        ));
    }
    if bound == 0 {
        return Err("Configured to not listen anywhere, exiting.".into());
    }
    log::info!("Server initialized");
    let worker_count = workers.count();
    let loader = server.clone();
    std::thread::Builder::new()
        .name("ferrokv-load".into())
        .spawn(move || load_then_serve(loader, worker_count, aof_load))
        .map_err(|e| format!("Starting the loading thread: {e}"))?;

    let (done_tx, done_rx) = std::sync::mpsc::channel::<&'static str>();
    {
        let server = server.clone();
        workers.acceptor().spawn(async move {
            use ferrokv_commands::shutdown::Signal;
            use tokio::signal::unix::{SignalKind, signal};
            let (Ok(mut term), Ok(mut int)) = (
                signal(SignalKind::terminate()),
                signal(SignalKind::interrupt()),
            ) else {
                log::warn!("Could not install signal handlers");
                return;
            };
            loop {
                let (which, kind) = tokio::select! {
                    _ = term.recv() => ("SIGTERM", Signal::Term),
                    _ = int.recv() => ("SIGINT", Signal::Int),
                };
                if !server.shutdown.signal(kind) {
                    log::warn!("You insist... exiting now.");
                    ferrokv_commands::persistence::remove_temp_files();
                    std::process::exit(1);
                }
                // The cron starts the shutdown (`shutdown::tick`), so SHUTDOWN ABORT can still
                // cancel it, as in Valkey.
                if ferrokv_commands::loading::refusing() {
                    log::warn!("Received shutdown signal during loading, scheduling shutdown.");
                } else {
                    log::warn!("Received {which} scheduling shutdown...");
                }
            }
        });
    }
    workers.first().spawn(cron::run(server.clone(), done_tx));
    workers.first().spawn(tls_reload::run(server.clone()));
    let _ = done_rx.recv();
    if !config.unixsocket.is_empty() {
        let _ = std::fs::remove_file(&config.unixsocket);
    }
    log::warn!("ferrokv is now ready to exit, bye bye...");
    Ok(())
}

/// Loads the AOF directory or the snapshot (clients get LOADING meanwhile), then starts
/// following `replicaof` (and every later REPLICAOF) and says the server is ready: Valkey's
/// test suite waits for that line before it sends its first command. A file that cannot be
/// loaded ends the process: the server must not serve without its data.
fn load_then_serve(
    server: Arc<Server>,
    workers: usize,
    aof_load: Option<ferrokv_commands::aof::BootLoad>,
) {
    let loaded = match aof_load {
        Some(aof) => ferrokv_commands::aof::load_at_boot(&server, aof),
        None => ferrokv_commands::persistence::load_at_startup(&server),
    };
    if let Err(e) = loaded {
        log::warn!("{e}");
        eprintln!("{e}");
        std::process::exit(1);
    }
    ferrokv_replication::replica::start(server.clone());
    let config = server.config.load();
    log::info!(
        "Ready to accept connections tcp (port {}, {workers} worker threads)",
        config.port,
    );
    if config.tls_port != 0 {
        log::info!("Ready to accept connections tls (port {})", config.tls_port);
    }
}

/// jemalloc's statistics and purge, for INFO memory and MEMORY.
fn allocator_probe() -> ferrokv_commands::cmd::memory::AllocatorProbe {
    use ferrokv_commands::cmd::memory::{AllocatorProbe, AllocatorStats};
    use tikv_jemalloc_ctl::{epoch, stats};
    let version = tikv_jemalloc_ctl::version::read().unwrap_or("unknown");
    AllocatorProbe {
        name: format!("jemalloc-{}", version.split('-').next().unwrap_or(version)),
        stats: || {
            let _ = epoch::advance();
            AllocatorStats {
                allocated: stats::allocated::read().unwrap_or(0) as u64,
                active: stats::active::read().unwrap_or(0) as u64,
                resident: stats::resident::read().unwrap_or(0) as u64,
                retained: stats::retained::read().unwrap_or(0) as u64,
            }
        },
        // Returning dirty pages needs a raw mallctl; jemalloc's background decay does it.
        purge: || {},
    }
}
