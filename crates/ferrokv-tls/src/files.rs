//! Reading certificates, private keys and CA bundles from PEM files.
//!
//! Keys may be PKCS#8 ("PRIVATE KEY"), PKCS#1 ("RSA PRIVATE KEY") or SEC1 ("EC PRIVATE KEY"),
//! and PKCS#8-encrypted ("ENCRYPTED PRIVATE KEY", PBES2 as `openssl genpkey -aes256` or
//! `openssl pkcs8 -topk8` write it) when a passphrase is configured. OpenSSL's legacy
//! encrypted PEM (a "Proc-Type: 4,ENCRYPTED" header) is refused with a conversion hint: no
//! maintained Rust crate decrypts it.

use std::path::Path;

use rustls::RootCertStore;
use rustls_pki_types::pem::{PemObject, SectionKind};
use rustls_pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};

use crate::TlsError;

fn read(path: &str, what: &str) -> Result<Vec<u8>, TlsError> {
    std::fs::read(path).map_err(|e| TlsError::new(format!("Failed to read {what} '{path}': {e}")))
}

/// Every certificate in a PEM file, in file order (leaf first for a chain).
pub fn load_certs(path: &str) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let pem = read(path, "certificate file")?;
    let certs = certs_in(&pem)
        .map_err(|e| TlsError::new(format!("Failed to parse certificate file '{path}': {e}")))?;
    if certs.is_empty() {
        return Err(TlsError::new(format!(
            "Failed to load certificate: no certificate in '{path}'"
        )));
    }
    Ok(certs)
}

fn certs_in(pem: &[u8]) -> Result<Vec<CertificateDer<'static>>, rustls_pki_types::pem::Error> {
    CertificateDer::pem_slice_iter(pem).collect()
}

/// The private key of a PEM file, decrypted with `passphrase` when it is encrypted.
pub fn load_key(path: &str, passphrase: &str) -> Result<PrivateKeyDer<'static>, TlsError> {
    let pem = read(path, "private key file")?;
    let fail = |why: String| TlsError::new(format!("Failed to load private key '{path}': {why}"));
    if contains(&pem, b"Proc-Type: 4,ENCRYPTED") {
        return Err(fail(
            "legacy OpenSSL-encrypted PEM keys are not supported; convert the key to encrypted \
             PKCS#8 with `openssl pkcs8 -topk8 -v2 aes-256-cbc`"
                .into(),
        ));
    }
    if contains(&pem, b"-----BEGIN ENCRYPTED PRIVATE KEY-----") {
        if passphrase.is_empty() {
            return Err(fail("the key is encrypted and no passphrase is set".into()));
        }
        return decrypt_pkcs8(&pem, passphrase).map_err(fail);
    }
    for section in <(SectionKind, Vec<u8>)>::pem_slice_iter(&pem) {
        let (kind, der) = section.map_err(|e| fail(e.to_string()))?;
        let key = match kind {
            SectionKind::PrivateKey => PrivateKeyDer::Pkcs8(der.into()),
            SectionKind::RsaPrivateKey => PrivateKeyDer::Pkcs1(der.into()),
            SectionKind::EcPrivateKey => PrivateKeyDer::Sec1(der.into()),
            _ => continue,
        };
        return Ok(key);
    }
    Err(fail("no private key found".into()))
}

fn decrypt_pkcs8(pem: &[u8], passphrase: &str) -> Result<PrivateKeyDer<'static>, String> {
    use pkcs8::der::Decode;
    let text = std::str::from_utf8(pem).map_err(|_| "the file is not PEM text".to_string())?;
    let begin = "-----BEGIN ENCRYPTED PRIVATE KEY-----";
    let end = "-----END ENCRYPTED PRIVATE KEY-----";
    let start = text.find(begin).ok_or("no encrypted key block")?;
    let stop = text[start..]
        .find(end)
        .map(|i| start + i + end.len())
        .ok_or("unterminated encrypted key block")?;
    let (label, der) =
        pkcs8::der::pem::decode_vec(&text.as_bytes()[start..stop]).map_err(|e| e.to_string())?;
    if label != "ENCRYPTED PRIVATE KEY" {
        return Err(format!("unexpected PEM block {label}"));
    }
    let info = pkcs8::EncryptedPrivateKeyInfo::from_der(&der).map_err(|e| e.to_string())?;
    let plain = info
        .decrypt(passphrase)
        .map_err(|_| "wrong passphrase or unsupported key encryption".to_string())?;
    Ok(PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(
        plain.as_bytes().to_vec(),
    )))
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

/// The trusted roots: every certificate of `ca_file`, and of every file in `ca_dir` (any
/// name: rustls needs none of OpenSSL's hashed links, which are simply read again).
/// Returns the store and the certificates themselves (for INFO's CA fields).
pub fn load_roots(
    ca_file: &str,
    ca_dir: &str,
) -> Result<(RootCertStore, Vec<CertificateDer<'static>>), TlsError> {
    let mut found = Vec::new();
    if !ca_file.is_empty() {
        found.extend(load_certs(ca_file)?);
    }
    if !ca_dir.is_empty() {
        found.extend(certs_in_dir(Path::new(ca_dir))?);
    }
    let mut store = RootCertStore::empty();
    let (added, ignored) = store.add_parsable_certificates(found.iter().cloned());
    if ignored > 0 {
        log::warn!("TLS: {ignored} CA certificate(s) could not be parsed and are not trusted");
    }
    if added == 0 {
        return Err(TlsError::new(format!(
            "Failed to configure CA certificate(s) file/directory: no usable certificate in {}",
            [ca_file, ca_dir]
                .iter()
                .filter(|s| !s.is_empty())
                .map(|s| format!("'{s}'"))
                .collect::<Vec<_>>()
                .join(" or ")
        )));
    }
    Ok((store, found))
}

fn certs_in_dir(dir: &Path) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let entries = std::fs::read_dir(dir).map_err(|e| {
        TlsError::new(format!(
            "Failed to read CA certificate directory '{}': {e}",
            dir.display()
        ))
    })?;
    let mut paths: Vec<_> = entries.flatten().map(|e| e.path()).collect();
    paths.sort();
    let mut certs = Vec::new();
    for path in paths {
        if !path.is_file() {
            continue;
        }
        // Files that are not PEM certificates (CRLs, notes) are skipped, as OpenSSL's
        // directory lookup would never match them.
        let Ok(pem) = std::fs::read(&path) else {
            continue;
        };
        if let Ok(in_file) = certs_in(&pem) {
            certs.extend(in_file);
        }
    }
    Ok(certs)
}
