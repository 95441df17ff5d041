//! TLS for every ferrokv component, server side and client side.
//!
//! The data server, and later replication, Sentinel, the proxy, the cluster bus and the
//! `ferrokv` operations tool, all get their rustls configurations here, built from the
//! `tls-*` directives ([`TlsSettings::from_config`]) or from settings of their own:
//!
//! - [`build_server`] → a [`ServerTls`]: the acceptor (certificate chosen by SNI, client
//!   certificates checked per `tls-auth-clients`, versions, cipher suites, session cache) and
//!   which certificate field names a user (`tls-auth-clients-user`).
//! - [`build_client`] → a [`ClientTls`]: a connector for outgoing links that presents
//!   `tls-client-cert-file` (or `tls-cert-file`) and checks the peer against the CA.
//! - [`configure`] builds both from the live configuration and publishes them as the
//!   process-wide [`current`] context: listeners take the acceptor from it for each new
//!   connection, so a reload (CONFIG SET of a `tls-*` directive) affects new connections
//!   only, and a failed reload leaves the previous context in place.
//!
//! rustls implements TLS 1.2 and 1.3 only, with ECDHE key exchange (no DHE: the
//! `tls-dh-params-file` directive is accepted and has no effect); see `docs/tls.md`.

mod ciphers;
mod client;
mod context;
mod files;
mod identity;
mod server;
mod session;
mod settings;
mod sni;
#[cfg(feature = "test-pki")]
pub mod test_pki;

pub use client::{ClientTls, build_client};
pub use context::{Context, configure, current, register_config_hooks, tls_in_use};
pub use identity::{CertSummary, certificate_usernames};
pub use server::{ServerTls, build_server};
pub use settings::{ClientAuth, SniCert, TlsSettings, UserField};
pub use tokio_rustls::{client::TlsStream as ClientStream, server::TlsStream as ServerStream};

/// Why a TLS configuration could not be built: a message for the log and the operator.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsError(pub String);

impl std::fmt::Display for TlsError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for TlsError {}

impl TlsError {
    pub(crate) fn new(message: impl Into<String>) -> TlsError {
        TlsError(message.into())
    }
}

/// The rustls crypto provider every configuration here is built on (ring: it builds fast and
/// needs no cmake; its suites are the ones `ciphers` maps).
pub(crate) fn base_provider() -> rustls::crypto::CryptoProvider {
    rustls::crypto::ring::default_provider()
}
