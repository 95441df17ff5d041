//! The client side, for the connections ferrokv opens itself (replication, cluster bus,
//! Sentinel, proxy, tools).

use std::sync::Arc;

use rustls::client::WebPkiServerVerifier;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::CryptoProvider;
use rustls::{CertificateError, ClientConfig, DigitallySignedStruct, SignatureScheme};
use rustls_pki_types::{CertificateDer, ServerName, UnixTime};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio_rustls::TlsConnector;

use crate::server::{NO_CA, certified_key};
use crate::{TlsError, TlsSettings, base_provider, ciphers, files};

/// A ready client-side TLS configuration.
#[derive(Clone)]
pub struct ClientTls {
    pub connector: TlsConnector,
}

impl ClientTls {
    /// Runs the handshake over `io`. `server_name` (a host name or an IP address) is sent as
    /// SNI; the peer's chain is checked against the CA, not its name (see [`build_client`]).
    pub async fn connect<IO>(
        &self,
        server_name: &str,
        io: IO,
    ) -> std::io::Result<tokio_rustls::client::TlsStream<IO>>
    where
        IO: AsyncRead + AsyncWrite + Unpin,
    {
        let name = ServerName::try_from(server_name.to_string())
            .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidInput, e))?;
        self.connector.connect(name, io).await
    }
}

/// Builds the connector: the CA (`tls-ca-cert-file`/`-dir`) to check servers with, and the
/// certificate to present (`tls-client-cert-file`, or `tls-cert-file` when it is not set).
///
/// Like Valkey, a server's certificate chain is verified but its host name is not: replicas
/// and cluster nodes reach each other by address, which certificates seldom list.
pub fn build_client(settings: &TlsSettings) -> Result<ClientTls, TlsError> {
    if !settings.has_ca() {
        return Err(TlsError::new(NO_CA));
    }
    let (provider, versions) = provider_and_versions(settings)?;
    let (roots, _) = files::load_roots(&settings.ca_cert_file, &settings.ca_cert_dir)?;
    let webpki = WebPkiServerVerifier::builder_with_provider(Arc::new(roots), provider.clone())
        .build()
        .map_err(|e| TlsError::new(format!("Server certificate verifier: {e}")))?;
    let builder = ClientConfig::builder_with_provider(provider.clone())
        .with_protocol_versions(&versions)
        .map_err(|e| TlsError::new(format!("TLS versions and cipher suites: {e}")))?
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(ChainOnlyVerifier(webpki)));
    let (cert, key, pass) = if settings.client_cert_file.is_empty() {
        (
            &settings.cert_file,
            &settings.key_file,
            &settings.key_file_pass,
        )
    } else {
        (
            &settings.client_cert_file,
            &settings.client_key_file,
            &settings.client_key_file_pass,
        )
    };
    let config = if cert.is_empty() || key.is_empty() {
        builder.with_no_client_auth()
    } else {
        // Loaded once through `certified_key` for its clear errors (mismatched key ...).
        certified_key(cert, key, pass, &provider)?;
        builder
            .with_client_auth_cert(files::load_certs(cert)?, files::load_key(key, pass)?)
            .map_err(|e| TlsError::new(format!("Client certificate '{cert}': {e}")))?
    };
    Ok(ClientTls {
        connector: TlsConnector::from(Arc::new(config)),
    })
}

/// The provider restricted to the configured suites, and the versions that still have one.
pub(crate) fn provider_and_versions(
    settings: &TlsSettings,
) -> Result<
    (
        Arc<CryptoProvider>,
        Vec<&'static rustls::SupportedProtocolVersion>,
    ),
    TlsError,
> {
    let wanted = ciphers::protocol_versions(&settings.protocols)?;
    let base = base_provider();
    let suites = ciphers::select_suites(
        &base.cipher_suites,
        &settings.ciphersuites,
        &settings.ciphers,
    );
    let versions: Vec<_> = wanted
        .into_iter()
        .filter(|v| suites.iter().any(|s| s.version() == *v))
        .collect();
    if versions.is_empty() {
        return Err(TlsError::new(
            "No cipher suite left for the enabled TLS versions (check tls-ciphers, tls-ciphersuites and tls-protocols)",
        ));
    }
    Ok((
        Arc::new(CryptoProvider {
            cipher_suites: suites,
            ..base
        }),
        versions,
    ))
}

/// WebPKI chain verification without the host-name check.
#[derive(Debug)]
struct ChainOnlyVerifier(Arc<WebPkiServerVerifier>);

impl ServerCertVerifier for ChainOnlyVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        // WebPKI checks the chain first and the name last, so a name error means the
        // chain itself was accepted.
        match self
            .0
            .verify_server_cert(end_entity, intermediates, server_name, ocsp_response, now)
        {
            Err(rustls::Error::InvalidCertificate(
                CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. },
            )) => Ok(ServerCertVerified::assertion()),
            other => other,
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.0.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.0.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.supported_verify_schemes()
    }
}
