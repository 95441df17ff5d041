//! Picking the server certificate by the name the client asks for (SNI).

use std::collections::HashMap;
use std::sync::Arc;

use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;

/// `tls-sni-cert` entries by lower-case server name; `*.example.com` entries match one
/// label in the star's place. A client that sends no name, or one no entry matches, gets
/// the `tls-cert-file` certificate.
#[derive(Debug)]
pub struct SniResolver {
    pub default: Arc<CertifiedKey>,
    pub by_name: HashMap<String, Arc<CertifiedKey>>,
}

impl SniResolver {
    pub fn choose(&self, server_name: Option<&str>) -> Arc<CertifiedKey> {
        let Some(name) = server_name else {
            return self.default.clone();
        };
        let name = name.trim_end_matches('.').to_ascii_lowercase();
        if let Some(key) = self.by_name.get(&name) {
            return key.clone();
        }
        if let Some((_, parent)) = name.split_once('.')
            && let Some(key) = self.by_name.get(&format!("*.{parent}"))
        {
            return key.clone();
        }
        self.default.clone()
    }
}

impl ResolvesServerCert for SniResolver {
    fn resolve(&self, client_hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(self.choose(client_hello.server_name()))
    }
}
