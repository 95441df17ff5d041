//! The periodic work of the server (`hz` times a second): active expiry, and noticing a
//! SHUTDOWN request.

use std::sync::Arc;
use std::sync::atomic::Ordering::Relaxed;
use std::time::Duration;

use ferrokv_commands::{Server, evict, expire_cycle};

pub async fn run(server: Arc<Server>, shutdown: std::sync::mpsc::Sender<&'static str>) {
    let mut cycle = expire_cycle::ExpireCycle::default();
    loop {
        let hz = server.config.load().hz.clamp(1, 500) as u64;
        tokio::time::sleep(Duration::from_millis(1000 / hz)).await;
        if server.shutdown_requested.load(Relaxed) {
            let _ = shutdown.send("SHUTDOWN");
            return;
        }
        ferrokv_store::clock::tick();
        server.migrate_sockets.close_idle();
        if ferrokv_commands::cmd::debug::cron_paused() {
            // DEBUG PAUSE-CRON 1: tests freeze the periodic work to watch one effect at a time.
            continue;
        }
        if server.scripting.busy.active() {
            // A script holds the keyspace: keyspace work would wait for it and stall
            // this worker's clients, which must get BUSY replies meanwhile.
            continue;
        }
        // Before the loading check: a signal during a load ends the process (without saving).
        ferrokv_commands::shutdown::tick(&server);
        if ferrokv_commands::loading::refusing() {
            // The start-up load is filling the keyspace: nothing expires, is evicted or
            // saved until it is whole.
            continue;
        }
        // A replica's keys expire and are evicted only when its primary says so, and in
        // import mode only when the source server does; while writes are paused (CLIENT
        // PAUSE WRITE, FAILOVER) the dataset must not change either, as in Valkey.
        let dataset_frozen = server.stream.is_proxy()
            || ferrokv_store::replica_view::import_mode()
            || server.pause.is_paused(ferrokv_store::clock::now_ms());
        if !dataset_frozen {
            cycle.run(&server, hz);
        }
        expire_replica_keys(&server);
        ferrokv_commands::persistence::cron(&server);
        ferrokv_commands::aof::cron(&server);
        ferrokv_commands::replication::cron(&server);
        ferrokv_commands::cmd::info::sample_metrics();
        // A lowered `tracking-table-max-keys` takes effect without waiting for a command.
        ferrokv_commands::tracking::enforce_limit(
            &server,
            server.config.load().tracking_table_max_keys,
        );
        if !dataset_frozen {
            evict::background(&server);
        }
    }
}

/// The keys a writable replica's own clients gave a TTL: the replica deletes them itself
/// when due (no DEL comes from the primary for them); a primary's own cycle covers every key,
/// so one that was a replica forgets them. Only while active expiry is on, and not while
/// writes are paused or in import mode, where nothing expires.
fn expire_replica_keys(server: &Server) {
    use ferrokv_commands::replica_keys;
    if !ferrokv_commands::cmd::debug::active_expire_enabled()
        || ferrokv_store::replica_view::import_mode()
        || server.pause.is_paused(ferrokv_store::clock::now_ms())
    {
        return;
    }
    if !server.stream.is_proxy() {
        if replica_keys::count() > 0 {
            replica_keys::forget_all();
        }
    } else if replica_keys::expire_due(server) {
        expire_cycle::after_background_deletes(server);
    }
}
