//! What ferrokv reads from certificates: the user a client certificate names
//! (`tls-auth-clients-user`), and serial numbers and expiry for INFO's TLS section.

use rustls_pki_types::CertificateDer;
use x509_cert::Certificate;
use x509_cert::der::Decode;
use x509_cert::der::asn1::ObjectIdentifier;
use x509_cert::ext::pkix::SubjectAltName;
use x509_cert::ext::pkix::name::GeneralName;

use crate::UserField;

const COMMON_NAME: ObjectIdentifier = ObjectIdentifier::new_unwrap("2.5.4.3");
const SUBJECT_ALT_NAME: ObjectIdentifier = ObjectIdentifier::new_unwrap("2.5.29.17");

/// A certificate's serial number, as OpenSSL prints it (upper-case hex, no leading zero
/// bytes), and its expiry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CertSummary {
    pub serial: String,
    /// `notAfter`, in Unix seconds.
    pub not_after: i64,
}

impl CertSummary {
    pub fn of(der: &CertificateDer<'_>) -> Option<CertSummary> {
        let cert = Certificate::from_der(der).ok()?;
        let tbs = &cert.tbs_certificate;
        let bytes = tbs.serial_number.as_bytes();
        // Whole bytes without leading zeros, as OpenSSL's BN_bn2hex prints them ("0ABC").
        let serial = match bytes.iter().position(|&b| b != 0) {
            None => "0".to_string(),
            Some(first) => bytes[first..].iter().map(|b| format!("{b:02X}")).collect(),
        };
        Some(CertSummary {
            serial,
            not_after: tbs.validity.not_after.to_unix_duration().as_secs() as i64,
        })
    }

    /// Seconds until expiry from `now` (Unix seconds); negative once expired.
    pub fn expires_in(&self, now: i64) -> i64 {
        self.not_after - now
    }
}

/// The user names a client certificate offers under `field`, in certificate order: its
/// subject CommonName, or the URIs of its Subject Alternative Name. The caller logs the
/// client in as the first that names an existing, enabled user.
pub fn certificate_usernames(der: &CertificateDer<'_>, field: UserField) -> Vec<String> {
    if field == UserField::Off {
        return Vec::new();
    }
    let Ok(cert) = Certificate::from_der(der) else {
        return Vec::new();
    };
    let tbs = &cert.tbs_certificate;
    match field {
        UserField::Off => Vec::new(),
        UserField::CommonName => tbs
            .subject
            .0
            .iter()
            .flat_map(|rdn| rdn.0.iter())
            .filter(|atv| atv.oid == COMMON_NAME)
            .map(|atv| String::from_utf8_lossy(atv.value.value()).into_owned())
            .take(1)
            .collect(),
        UserField::Uri => tbs
            .extensions
            .iter()
            .flatten()
            .filter(|ext| ext.extn_id == SUBJECT_ALT_NAME)
            .filter_map(|ext| SubjectAltName::from_der(ext.extn_value.as_bytes()).ok())
            .flat_map(|san| san.0)
            .filter_map(|name| match name {
                GeneralName::UniformResourceIdentifier(uri) => Some(uri.to_string()),
                _ => None,
            })
            .collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cert(params: rcgen::CertificateParams) -> CertificateDer<'static> {
        let key = rcgen::KeyPair::generate().unwrap();
        params.self_signed(&key).unwrap().der().clone()
    }

    #[test]
    fn common_name_and_uris() {
        let mut params = rcgen::CertificateParams::new(vec!["localhost".into()]).unwrap();
        params.distinguished_name = rcgen::DistinguishedName::new();
        params
            .distinguished_name
            .push(rcgen::DnType::OrganizationName, "ferrokv");
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, "alice");
        params.subject_alt_names.push(rcgen::SanType::URI(
            rcgen::Ia5String::try_from("urn:valkey:user:bob").unwrap(),
        ));
        params.subject_alt_names.push(rcgen::SanType::URI(
            rcgen::Ia5String::try_from("carol").unwrap(),
        ));
        params.serial_number = Some(rcgen::SerialNumber::from_slice(&[0x00, 0x0a, 0xbc]));
        let der = cert(params);
        assert_eq!(
            certificate_usernames(&der, UserField::CommonName),
            ["alice"]
        );
        assert_eq!(
            certificate_usernames(&der, UserField::Uri),
            ["urn:valkey:user:bob", "carol"]
        );
        assert!(certificate_usernames(&der, UserField::Off).is_empty());
        let summary = CertSummary::of(&der).unwrap();
        assert_eq!(summary.serial, "0ABC");
        assert!(summary.not_after > 0);
    }
}
