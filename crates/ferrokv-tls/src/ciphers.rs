//! `tls-protocols`, `tls-ciphersuites` and `tls-ciphers` mapped onto rustls.
//!
//! rustls speaks TLS 1.2 and 1.3 only, and only AEAD suites with ECDHE key exchange; the
//! OpenSSL names of those suites are mapped, and so are the OpenSSL list keywords that can
//! select among them (`ALL`, `DEFAULT`, `HIGH`, `ECDHE`, `aRSA`, `aECDSA`, `AESGCM`,
//! `CHACHA20`, `AES128` ...). Names of suites rustls does not implement (CBC, RSA key
//! exchange, DHE ...) select nothing, as OpenSSL ignores names it does not know; a list that
//! leaves no suite at all is an error.

use rustls::{CipherSuite, SupportedCipherSuite, SupportedProtocolVersion};

use crate::TlsError;

/// One suite rustls can offer: its OpenSSL name and the OpenSSL keywords that select it.
struct Known {
    suite: CipherSuite,
    openssl: &'static str,
    keywords: &'static [&'static str],
}

const TLS13: &[Known] = &[
    Known {
        suite: CipherSuite::TLS13_AES_256_GCM_SHA384,
        openssl: "TLS_AES_256_GCM_SHA384",
        keywords: &[],
    },
    Known {
        suite: CipherSuite::TLS13_CHACHA20_POLY1305_SHA256,
        openssl: "TLS_CHACHA20_POLY1305_SHA256",
        keywords: &[],
    },
    Known {
        suite: CipherSuite::TLS13_AES_128_GCM_SHA256,
        openssl: "TLS_AES_128_GCM_SHA256",
        keywords: &[],
    },
];

const ECDHE: &[&str] = &["ECDHE", "EECDH", "KECDHE", "KEECDH", "ECDH"];

const TLS12: &[Known] = &[
    Known {
        suite: CipherSuite::TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384,
        openssl: "ECDHE-ECDSA-AES256-GCM-SHA384",
        keywords: &["AECDSA", "ECDSA", "AESGCM", "AES", "AES256", "SHA384"],
    },
    Known {
        suite: CipherSuite::TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384,
        openssl: "ECDHE-RSA-AES256-GCM-SHA384",
        keywords: &["ARSA", "RSA", "AESGCM", "AES", "AES256", "SHA384"],
    },
    Known {
        suite: CipherSuite::TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256,
        openssl: "ECDHE-ECDSA-CHACHA20-POLY1305",
        keywords: &["AECDSA", "ECDSA", "CHACHA20", "SHA256"],
    },
    Known {
        suite: CipherSuite::TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256,
        openssl: "ECDHE-RSA-CHACHA20-POLY1305",
        keywords: &["ARSA", "RSA", "CHACHA20", "SHA256"],
    },
    Known {
        suite: CipherSuite::TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256,
        openssl: "ECDHE-ECDSA-AES128-GCM-SHA256",
        keywords: &["AECDSA", "ECDSA", "AESGCM", "AES", "AES128", "SHA256"],
    },
    Known {
        suite: CipherSuite::TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256,
        openssl: "ECDHE-RSA-AES128-GCM-SHA256",
        keywords: &["ARSA", "RSA", "AESGCM", "AES", "AES128", "SHA256"],
    },
];

/// Keywords that select every TLS 1.2 suite rustls has.
const EVERYTHING: &[&str] = &["ALL", "DEFAULT", "HIGH", "TLSV1.2", "SSLV3", "FIPS"];

/// The versions `tls-protocols` allows (empty: both). TLSv1 and TLSv1.1 are accepted and
/// skipped with a warning, since rustls cannot speak them.
pub fn protocol_versions(text: &str) -> Result<Vec<&'static SupportedProtocolVersion>, TlsError> {
    if text.trim().is_empty() {
        return Ok(vec![&rustls::version::TLS13, &rustls::version::TLS12]);
    }
    let mut versions = Vec::new();
    for word in text.split_whitespace() {
        match word.to_ascii_lowercase().as_str() {
            "tlsv1.3" => versions.push(&rustls::version::TLS13),
            "tlsv1.2" => versions.push(&rustls::version::TLS12),
            "tlsv1" | "tlsv1.1" => {
                log::warn!("TLS: {word} is not supported (rustls speaks TLSv1.2 and TLSv1.3)")
            }
            _ => {
                return Err(TlsError::new(format!(
                    "Invalid tls-protocols value: {word}"
                )));
            }
        }
    }
    if versions.is_empty() {
        return Err(TlsError::new(
            "tls-protocols enables no version this server supports (TLSv1.2, TLSv1.3)",
        ));
    }
    Ok(versions)
}

/// The suites to offer, in preference order: TLS 1.3 ones from `tls-ciphersuites`, then
/// TLS 1.2 ones from `tls-ciphers` (each list: all suites when empty).
pub fn select_suites(
    available: &[SupportedCipherSuite],
    ciphersuites: &str,
    ciphers: &str,
) -> Vec<SupportedCipherSuite> {
    let find = |suite: CipherSuite| available.iter().find(|s| s.suite() == suite).copied();
    let mut chosen: Vec<SupportedCipherSuite> = tls13_order(ciphersuites)
        .into_iter()
        .filter_map(find)
        .collect();
    chosen.extend(tls12_order(ciphers).into_iter().filter_map(find));
    chosen
}

fn tls13_order(text: &str) -> Vec<CipherSuite> {
    if text.trim().is_empty() {
        return TLS13.iter().map(|k| k.suite).collect();
    }
    let mut order = Vec::new();
    for name in text.split([':', ',', ' ']).filter(|n| !n.is_empty()) {
        match TLS13.iter().find(|k| k.openssl.eq_ignore_ascii_case(name)) {
            Some(known) if !order.contains(&known.suite) => order.push(known.suite),
            Some(_) => {}
            None => log::warn!("TLS: unknown TLS 1.3 cipher suite {name} ignored"),
        }
    }
    order
}

/// Evaluates an OpenSSL cipher list over the TLS 1.2 suites rustls has: `A` adds, `A+B`
/// adds what matches both, `-A` removes, `!A` removes for good, `+A` and `@...` only
/// reorder in OpenSSL and are ignored here.
fn tls12_order(text: &str) -> Vec<CipherSuite> {
    if text.trim().is_empty() {
        return TLS12.iter().map(|k| k.suite).collect();
    }
    let mut order: Vec<CipherSuite> = Vec::new();
    let mut banned: Vec<CipherSuite> = Vec::new();
    for item in text.split([':', ',', ' ']).filter(|n| !n.is_empty()) {
        if item.starts_with('@') || item.starts_with('+') {
            continue;
        }
        let (op, terms) = match item.as_bytes()[0] {
            b'!' => ('!', &item[1..]),
            b'-' => ('-', &item[1..]),
            _ => ('+', item),
        };
        let matching: Vec<CipherSuite> = TLS12
            .iter()
            .filter(|k| terms.split('+').all(|term| matches_term(k, term)))
            .map(|k| k.suite)
            .collect();
        match op {
            '!' => {
                banned.extend(&matching);
                order.retain(|s| !matching.contains(s));
            }
            '-' => order.retain(|s| !matching.contains(s)),
            _ => {
                for suite in matching {
                    if !order.contains(&suite) && !banned.contains(&suite) {
                        order.push(suite);
                    }
                }
            }
        }
    }
    order
}

fn matches_term(known: &Known, term: &str) -> bool {
    let upper = term.to_ascii_uppercase();
    known.openssl.eq_ignore_ascii_case(term)
        || format!("{:?}", known.suite).eq_ignore_ascii_case(term)
        || EVERYTHING.contains(&upper.as_str())
        || ECDHE.contains(&upper.as_str())
        || known.keywords.contains(&upper.as_str())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(order: Vec<CipherSuite>) -> Vec<String> {
        order.iter().map(|s| format!("{s:?}")).collect()
    }

    #[test]
    fn protocols() {
        assert_eq!(protocol_versions("").unwrap().len(), 2);
        assert_eq!(protocol_versions("TLSv1.2").unwrap().len(), 1);
        assert_eq!(protocol_versions("tlsv1.3 TLSv1").unwrap().len(), 1);
        assert!(protocol_versions("TLSv1 TLSv1.1").is_err());
        assert!(protocol_versions("SSLv3").is_err());
    }

    #[test]
    fn tls13_names_keep_their_order() {
        assert_eq!(
            names(tls13_order(
                "TLS_AES_128_GCM_SHA256:TLS_CHACHA20_POLY1305_SHA256:nope"
            )),
            ["TLS13_AES_128_GCM_SHA256", "TLS13_CHACHA20_POLY1305_SHA256"]
        );
        assert_eq!(tls13_order("").len(), 3);
    }

    #[test]
    fn openssl_cipher_lists() {
        assert_eq!(
            names(tls12_order("ECDHE-RSA-AES128-GCM-SHA256")),
            ["TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256"]
        );
        assert_eq!(tls12_order("DEFAULT:!MEDIUM").len(), 6);
        assert_eq!(tls12_order("HIGH:!aECDSA").len(), 3);
        assert_eq!(
            names(tls12_order("ECDHE+CHACHA20:-aRSA")),
            ["TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256"]
        );
        assert_eq!(tls12_order("!AESGCM:ALL").len(), 2);
        assert!(tls12_order("DHE-RSA-AES256-SHA:AES256-SHA").is_empty());
        assert_eq!(
            names(tls12_order("TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256")),
            ["TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256"]
        );
    }
}
