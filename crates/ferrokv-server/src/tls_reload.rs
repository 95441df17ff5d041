//! `tls-auto-reload-interval`: every that many seconds, rebuild the TLS context if any of
//! its files changed (certificates renewed in place), so new connections get them without a
//! CONFIG SET. A reload that fails is logged and the current context stays.

use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use ferrokv_commands::Server;

/// A file's identity for change detection: its path, modification time and length.
type Stamp = (String, Option<SystemTime>, u64);

pub async fn run(server: Arc<Server>) {
    let mut last_check = Instant::now();
    // The files as the start-up context loaded them, so a change in the first interval
    // counts too.
    let initial = server.config.load();
    let mut stamps: Option<Vec<Stamp>> =
        ferrokv_tls::tls_in_use(&initial).then(|| file_stamps(&initial));
    loop {
        tokio::time::sleep(Duration::from_secs(1)).await;
        let config = server.config.load();
        let interval = config.tls_auto_reload_interval;
        if interval <= 0 || !ferrokv_tls::tls_in_use(&config) {
            stamps = None;
            continue;
        }
        if last_check.elapsed() < Duration::from_secs(interval as u64) {
            continue;
        }
        last_check = Instant::now();
        let now = file_stamps(&config);
        let changed = stamps.as_ref().is_some_and(|before| *before != now);
        stamps = Some(now);
        if !changed {
            continue;
        }
        // CONFIG SET holds this lock while it applies: a reload never races a newer change.
        let _writer = server.config_write.lock();
        let config = server.config.load();
        match ferrokv_tls::configure(&config) {
            Ok(()) => log::info!("TLS certificates reloaded"),
            Err(e) => {
                log::warn!("Failed to reload TLS certificates (keeping the current ones): {e}")
            }
        }
    }
}

fn file_stamps(config: &ferrokv_config::Config) -> Vec<Stamp> {
    let settings = ferrokv_tls::TlsSettings::from_config(config);
    let mut paths = vec![
        settings.cert_file,
        settings.key_file,
        settings.client_cert_file,
        settings.client_key_file,
        settings.ca_cert_file,
    ];
    for sni in settings.sni_certs {
        paths.push(sni.cert_file);
        paths.push(sni.key_file);
    }
    if !settings.ca_cert_dir.is_empty()
        && let Ok(entries) = std::fs::read_dir(&settings.ca_cert_dir)
    {
        let mut in_dir: Vec<String> = entries
            .flatten()
            .map(|e| e.path().display().to_string())
            .collect();
        in_dir.sort();
        paths.extend(in_dir);
    }
    paths
        .into_iter()
        .filter(|p| !p.is_empty())
        .map(|path| {
            let meta = std::fs::metadata(&path).ok();
            let modified = meta.as_ref().and_then(|m| m.modified().ok());
            let len = meta.map_or(0, |m| m.len());
            (path, modified, len)
        })
        .collect()
}
