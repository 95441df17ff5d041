//! The server side: a `TlsAcceptor` built from [`TlsSettings`].

use std::collections::HashMap;
use std::sync::Arc;

use rustls::ServerConfig;
use rustls::crypto::CryptoProvider;
use rustls::server::{NoServerSessionStorage, WebPkiClientVerifier};
use rustls::sign::CertifiedKey;
use tokio_rustls::TlsAcceptor;

use crate::session::SessionCache;
use crate::sni::SniResolver;
use crate::{ClientAuth, TlsError, TlsSettings, UserField, files};

/// Valkey's wording when peers must be checked but no CA is configured.
pub(crate) const NO_CA: &str = "Either tls-ca-cert-file or tls-ca-cert-dir must be specified when tls-cluster, tls-replication or tls-auth-clients are enabled!";

/// `tls-session-cache-size 0` means no limit in OpenSSL; a bound is kept all the same.
const UNLIMITED_SESSIONS: usize = 1 << 20;

/// A ready server-side TLS configuration.
pub struct ServerTls {
    pub acceptor: TlsAcceptor,
    /// Which client-certificate field names the user a client logs in as.
    pub user_field: UserField,
}

impl std::fmt::Debug for ServerTls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServerTls")
            .field("user_field", &self.user_field)
            .finish_non_exhaustive()
    }
}

/// Builds the acceptor: the `tls-cert-file` certificate and the `tls-sni-cert` ones, the
/// client-certificate check `tls-auth-clients` asks for, versions, suites and session cache.
pub fn build_server(settings: &TlsSettings) -> Result<ServerTls, TlsError> {
    if settings.cert_file.is_empty() {
        return Err(TlsError::new("No tls-cert-file configured!"));
    }
    if settings.key_file.is_empty() {
        return Err(TlsError::new("No tls-key-file configured!"));
    }
    let (provider, versions) = crate::client::provider_and_versions(settings)?;
    let load = |cert: &str, key: &str| certified_key(cert, key, &settings.key_file_pass, &provider);
    let default = load(&settings.cert_file, &settings.key_file)?;
    let mut by_name = HashMap::new();
    for entry in &settings.sni_certs {
        by_name.insert(
            entry.server_name.clone(),
            load(&entry.cert_file, &entry.key_file)?,
        );
    }

    let builder = ServerConfig::builder_with_provider(provider.clone())
        .with_protocol_versions(&versions)
        .map_err(|e| TlsError::new(format!("TLS versions and cipher suites: {e}")))?;
    let builder = match settings.auth_clients {
        ClientAuth::No => builder.with_no_client_auth(),
        auth => {
            if !settings.has_ca() {
                return Err(TlsError::new(NO_CA));
            }
            let (roots, _) = files::load_roots(&settings.ca_cert_file, &settings.ca_cert_dir)?;
            let mut verifier =
                WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider.clone());
            if auth == ClientAuth::Optional {
                verifier = verifier.allow_unauthenticated();
            }
            let verifier = verifier
                .build()
                .map_err(|e| TlsError::new(format!("Client certificate verifier: {e}")))?;
            builder.with_client_cert_verifier(verifier)
        }
    };
    let mut config = builder.with_cert_resolver(Arc::new(SniResolver { default, by_name }));
    config.ignore_client_order = settings.prefer_server_ciphers;
    if settings.session_caching {
        let size = match settings.session_cache_size {
            0 => UNLIMITED_SESSIONS,
            n => n,
        };
        config.session_storage = Arc::new(SessionCache::new(size, settings.session_cache_timeout));
    } else {
        config.session_storage = Arc::new(NoServerSessionStorage {});
        config.send_tls13_tickets = 0;
    }
    if !settings.dh_params_file.is_empty() {
        log::debug!("TLS: tls-dh-params-file is ignored (rustls has no DHE key exchange)");
    }
    Ok(ServerTls {
        acceptor: TlsAcceptor::from(Arc::new(config)),
        user_field: settings.auth_clients_user,
    })
}

/// A certificate chain and its key, checked to belong together.
pub(crate) fn certified_key(
    cert_file: &str,
    key_file: &str,
    passphrase: &str,
    provider: &CryptoProvider,
) -> Result<Arc<CertifiedKey>, TlsError> {
    let chain = files::load_certs(cert_file)?;
    let key = files::load_key(key_file, passphrase)?;
    CertifiedKey::from_der(chain, key, provider)
        .map(Arc::new)
        .map_err(|e| {
            TlsError::new(format!(
                "Failed to load certificate '{cert_file}' with key '{key_file}': {e}"
            ))
        })
}
