//! The process-wide TLS context: what the listeners, INFO and outgoing links use now.
//!
//! [`configure`] builds a complete new context from a configuration snapshot and swaps it
//! in; anything that fails leaves the previous one untouched. A connection takes the
//! context once, when it is accepted, so a reload never disturbs established sessions.

use std::sync::Arc;

use arc_swap::ArcSwapOption;
use ferrokv_config::Config;

use crate::identity::CertSummary;
use crate::{ClientTls, ServerTls, TlsError, TlsSettings, build_client, build_server, files};

/// One generation of TLS configuration.
pub struct Context {
    /// Present while `tls-port` is set.
    pub server: Option<ServerTls>,
    /// Present while `tls-replication` or `tls-cluster` is on.
    pub client: Option<ClientTls>,
    /// For INFO's TLS section.
    pub server_cert: Option<CertSummary>,
    pub client_cert: Option<CertSummary>,
    /// The CA certificate that expires first.
    pub ca_cert: Option<CertSummary>,
}

static CURRENT: ArcSwapOption<Context> = ArcSwapOption::const_empty();

/// The context in force, if TLS is in use.
pub fn current() -> Option<Arc<Context>> {
    CURRENT.load_full()
}

/// Whether the configuration asks for TLS anywhere (Valkey's own test).
pub fn tls_in_use(config: &Config) -> bool {
    config.tls_port != 0 || config.tls_replication || config.tls_cluster
}

/// Builds the context `config` describes and makes it current. With TLS nowhere in use the
/// other `tls-*` directives are only stored, as in Valkey.
pub fn configure(config: &Config) -> Result<(), TlsError> {
    if !tls_in_use(config) {
        CURRENT.store(None);
        return Ok(());
    }
    let settings = TlsSettings::from_config(config);
    let server = match config.tls_port {
        0 => None,
        _ => Some(build_server(&settings)?),
    };
    let client = match config.tls_replication || config.tls_cluster {
        true => Some(build_client(&settings)?),
        false => None,
    };
    let summary = |path: &str| {
        files::load_certs(path)
            .ok()
            .and_then(|certs| certs.first().and_then(CertSummary::of))
    };
    let server_cert = match settings.cert_file.as_str() {
        "" => None,
        path => summary(path),
    };
    let client_cert = match settings.client_cert_file.as_str() {
        "" => server_cert.clone(),
        path => summary(path),
    };
    let ca_cert = if settings.has_ca() {
        files::load_roots(&settings.ca_cert_file, &settings.ca_cert_dir)
            .ok()
            .and_then(|(_, certs)| {
                certs
                    .iter()
                    .filter_map(CertSummary::of)
                    .min_by_key(|c| c.not_after)
            })
    } else {
        None
    };
    CURRENT.store(Some(Arc::new(Context {
        server,
        client,
        server_cert,
        client_cert,
        ca_cert,
    })));
    Ok(())
}

/// Directives whose change rebuilds the context.
/// `tls-port` is not here: the component that owns the TLS listener registers a hook that
/// configures and then moves its listener (the server's `network::Listeners`).
const RELOADING: &[&str] = &[
    "tls-cert-file",
    "tls-key-file",
    "tls-key-file-pass",
    "tls-client-cert-file",
    "tls-client-key-file",
    "tls-client-key-file-pass",
    "tls-ca-cert-file",
    "tls-ca-cert-dir",
    "tls-auth-clients",
    "tls-auth-clients-user",
    "tls-protocols",
    "tls-ciphers",
    "tls-ciphersuites",
    "tls-prefer-server-ciphers",
    "tls-session-caching",
    "tls-session-cache-size",
    "tls-session-cache-timeout",
    "tls-dh-params-file",
    "tls-sni-cert",
    "tls-replication",
    "tls-cluster",
];

/// Makes CONFIG SET of any `tls-*` directive rebuild the context, refusing the change
/// (with Valkey's error text; the reason goes to the log) when the result does not load.
/// Called once the configuration file is loaded, so half-read files never trigger a build.
pub fn register_config_hooks() {
    for name in RELOADING {
        ferrokv_config::hooks::on_change(name, |config| {
            configure(config).map_err(|e| {
                log::warn!("Failed to configure TLS: {e}");
                "Unable to update TLS configuration. Check server logs.".to_string()
            })
        });
    }
}
