//! The `tls-*` directives as one plain value, so every component builds its TLS from the same
//! description (the server from its configuration, a tool from its own flags).

use ferrokv_config::Config;

/// `tls-auth-clients`: whether a client must present a certificate.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ClientAuth {
    No,
    #[default]
    Yes,
    /// A certificate is checked when presented; a client without one is accepted.
    Optional,
}

/// `tls-auth-clients-user`: which field of a client certificate names the user it logs in as.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum UserField {
    #[default]
    Off,
    /// The subject's CommonName.
    CommonName,
    /// The URIs of the Subject Alternative Name extension (the first that names a user).
    Uri,
}

/// One `tls-sni-cert <server-name> <cert-file> <key-file>` entry. A name starting with `*.`
/// matches any one label in its place.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SniCert {
    pub server_name: String,
    pub cert_file: String,
    pub key_file: String,
}

/// Everything TLS needs, server and client side.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct TlsSettings {
    pub cert_file: String,
    pub key_file: String,
    pub key_file_pass: String,
    /// Presented on outgoing connections; empty means `cert_file` / `key_file`.
    pub client_cert_file: String,
    pub client_key_file: String,
    pub client_key_file_pass: String,
    pub ca_cert_file: String,
    pub ca_cert_dir: String,
    pub auth_clients: ClientAuth,
    pub auth_clients_user: UserField,
    /// `tls-protocols`, e.g. "TLSv1.2 TLSv1.3"; empty allows both.
    pub protocols: String,
    /// `tls-ciphers`: an OpenSSL cipher list for TLS 1.2.
    pub ciphers: String,
    /// `tls-ciphersuites`: TLS 1.3 suite names separated by colons.
    pub ciphersuites: String,
    pub prefer_server_ciphers: bool,
    pub session_caching: bool,
    pub session_cache_size: usize,
    /// Seconds a cached session may be resumed.
    pub session_cache_timeout: u64,
    pub sni_certs: Vec<SniCert>,
    /// Accepted for Valkey configurations; rustls has no finite-field Diffie-Hellman.
    pub dh_params_file: String,
}

impl TlsSettings {
    /// The settings the `tls-*` directives of `config` describe.
    pub fn from_config(config: &Config) -> TlsSettings {
        TlsSettings {
            cert_file: config.tls_cert_file.clone(),
            key_file: config.tls_key_file.clone(),
            key_file_pass: config.tls_key_file_pass.clone(),
            client_cert_file: config.tls_client_cert_file.clone(),
            client_key_file: config.tls_client_key_file.clone(),
            client_key_file_pass: config.tls_client_key_file_pass.clone(),
            ca_cert_file: config.tls_ca_cert_file.clone(),
            ca_cert_dir: config.tls_ca_cert_dir.clone(),
            auth_clients: match config.tls_auth_clients.as_str() {
                "no" => ClientAuth::No,
                "optional" => ClientAuth::Optional,
                _ => ClientAuth::Yes,
            },
            auth_clients_user: match config.tls_auth_clients_user.as_str() {
                "CN" => UserField::CommonName,
                "URI" => UserField::Uri,
                _ => UserField::Off,
            },
            protocols: config.tls_protocols.clone(),
            ciphers: config.tls_ciphers.clone(),
            ciphersuites: config.tls_ciphersuites.clone(),
            prefer_server_ciphers: config.tls_prefer_server_ciphers,
            session_caching: config.tls_session_caching,
            session_cache_size: config.tls_session_cache_size.max(0) as usize,
            session_cache_timeout: config.tls_session_cache_timeout.max(0) as u64,
            sni_certs: parse_sni_certs(&config.tls_sni_cert),
            dh_params_file: config.tls_dh_params_file.clone(),
        }
    }

    /// Whether a CA is configured to check peers against.
    pub fn has_ca(&self) -> bool {
        !self.ca_cert_file.is_empty() || !self.ca_cert_dir.is_empty()
    }
}

/// `tls-sni-cert` holds its entries as words, three per entry (the config crate checks the
/// count); an incomplete trailing entry is ignored.
fn parse_sni_certs(text: &str) -> Vec<SniCert> {
    let words: Vec<&str> = text.split_whitespace().collect();
    words
        .chunks_exact(3)
        .map(|entry| SniCert {
            server_name: entry[0].to_ascii_lowercase(),
            cert_file: entry[1].to_string(),
            key_file: entry[2].to_string(),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn directives_map_to_settings() {
        let mut config = Config {
            tls_auth_clients: "optional".into(),
            tls_auth_clients_user: "URI".into(),
            tls_sni_cert: "A.example.com a.crt a.key *.b.example b.crt b.key".into(),
            ..Config::default()
        };
        let s = TlsSettings::from_config(&config);
        assert_eq!(s.auth_clients, ClientAuth::Optional);
        assert_eq!(s.auth_clients_user, UserField::Uri);
        assert_eq!(s.sni_certs.len(), 2);
        assert_eq!(s.sni_certs[0].server_name, "a.example.com");
        assert_eq!(s.sni_certs[1].key_file, "b.key");
        assert!(s.session_caching);
        assert_eq!(s.session_cache_size, 20480);
        config.tls_auth_clients = "no".into();
        assert_eq!(
            TlsSettings::from_config(&config).auth_clients,
            ClientAuth::No
        );
        assert_eq!(
            TlsSettings::from_config(&Config::default()).auth_clients,
            ClientAuth::Yes
        );
    }
}
