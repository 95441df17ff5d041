//! Test certificates made on the fly (feature `test-pki`): a CA, and certificates it signs
//! with a chosen CommonName, DNS and URI names, validity and encryption, written as PEM files.

use std::path::{Path, PathBuf};

use rcgen::{
    BasicConstraints, Certificate, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa,
    KeyPair, SanType,
};

/// A certificate authority that writes what it issues into `dir`.
pub struct TestCa {
    pub dir: PathBuf,
    /// The CA certificate's PEM file.
    pub cert_file: PathBuf,
    cert: Certificate,
    key: KeyPair,
}

/// The files of one issued certificate.
#[derive(Debug, Clone)]
pub struct Issued {
    pub cert_file: PathBuf,
    pub key_file: PathBuf,
}

impl Issued {
    pub fn cert(&self) -> &str {
        self.cert_file.to_str().unwrap_or_default()
    }
    pub fn key(&self) -> &str {
        self.key_file.to_str().unwrap_or_default()
    }
}

/// What to put in a certificate.
#[derive(Debug, Clone, Default)]
pub struct Spec<'a> {
    pub common_name: &'a str,
    /// DNS names; IP addresses become IP SANs.
    pub dns: &'a [&'a str],
    pub uris: &'a [&'a str],
    /// Valid in 2000 only.
    pub expired: bool,
}

fn generation_error(e: rcgen::Error) -> std::io::Error {
    std::io::Error::other(e.to_string())
}

impl TestCa {
    /// A new CA named `name`; its certificate is written to `dir/<name>.crt`.
    pub fn new(dir: &Path, name: &str) -> std::io::Result<TestCa> {
        std::fs::create_dir_all(dir)?;
        let key = KeyPair::generate().map_err(generation_error)?;
        let mut params = CertificateParams::new(Vec::<String>::new()).map_err(generation_error)?;
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.distinguished_name.push(DnType::CommonName, name);
        let cert = params.self_signed(&key).map_err(generation_error)?;
        let cert_file = dir.join(format!("{name}.crt"));
        std::fs::write(&cert_file, cert.pem())?;
        Ok(TestCa {
            dir: dir.to_path_buf(),
            cert_file,
            cert,
            key,
        })
    }

    pub fn ca(&self) -> &str {
        self.cert_file.to_str().unwrap_or_default()
    }

    /// Issues a certificate good for both server and client authentication, written to
    /// `dir/<stem>.crt` and `dir/<stem>.key` (PKCS#8).
    pub fn issue(&self, stem: &str, spec: &Spec<'_>) -> std::io::Result<Issued> {
        let key = KeyPair::generate().map_err(generation_error)?;
        let names: Vec<String> = spec.dns.iter().map(|s| s.to_string()).collect();
        let mut params = CertificateParams::new(names).map_err(generation_error)?;
        if !spec.common_name.is_empty() {
            params
                .distinguished_name
                .push(DnType::CommonName, spec.common_name);
        }
        for uri in spec.uris {
            let uri = rcgen::Ia5String::try_from(*uri).map_err(generation_error)?;
            params.subject_alt_names.push(SanType::URI(uri));
        }
        params.extended_key_usages = vec![
            ExtendedKeyUsagePurpose::ServerAuth,
            ExtendedKeyUsagePurpose::ClientAuth,
        ];
        if spec.expired {
            params.not_before = rcgen::date_time_ymd(2000, 1, 1);
            params.not_after = rcgen::date_time_ymd(2000, 12, 31);
        }
        let cert = params
            .signed_by(&key, &self.cert, &self.key)
            .map_err(generation_error)?;
        let issued = Issued {
            cert_file: self.dir.join(format!("{stem}.crt")),
            key_file: self.dir.join(format!("{stem}.key")),
        };
        std::fs::write(&issued.cert_file, cert.pem())?;
        std::fs::write(&issued.key_file, key.serialize_pem())?;
        Ok(issued)
    }
}
