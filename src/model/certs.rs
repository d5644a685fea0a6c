//! Certificates and private keys as PEM text: parse a chain, read the leaf's fields, match a key,
//! fingerprint a leaf, and generate test certificates.
//!
//! Pure functions of bytes (and `now` where validity matters): no file system, no network. The
//! simulator uses them to derive a certificate resource from an upload; rotation uses them to
//! validate files on disk before anything leaves the host.

use rustls::pki_types::pem::{PemObject, SectionKind};
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use sha2::{Digest, Sha256};
use time::OffsetDateTime;
use x509_parser::prelude::{FromDer, GeneralName, X509Certificate};

/// Why a certificate chain or key was refused. Messages never contain key material.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CertError {
    #[error("empty: no certificate in it")]
    Empty,
    #[error("not PEM: it looks like DER (binary); convert it with `openssl x509 -inform der`")]
    Der,
    #[error("not a PEM certificate: no `-----BEGIN CERTIFICATE-----` section")]
    NoCertificate,
    #[error("malformed PEM: {0}")]
    BadPem(String),
    #[error("certificate {index} of the chain does not parse as X.509: {reason}")]
    BadCertificate { index: usize, reason: String },
    #[error("holds a private key where a certificate was expected")]
    KeyInsteadOfCertificate,
    #[error("no PEM private key in it")]
    NoKey,
    #[error("holds a certificate where a private key was expected")]
    CertificateInsteadOfKey,
    #[error("the private key is encrypted; give the watchdog an unencrypted key")]
    EncryptedKey,
    #[error("the private key does not parse or is of an unsupported type")]
    BadKey,
    #[error("the private key does not match the certificate")]
    KeyMismatch,
}

/// The fields of a leaf certificate that the ngrok TLS certificate resource reports.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LeafInfo {
    pub subject_common_name: String,
    pub subject_organization: String,
    pub subject_organizational_unit: String,
    pub subject_locality: String,
    pub subject_province: String,
    pub subject_country: String,
    pub issuer_common_name: String,
    pub dns_names: Vec<String>,
    pub ips: Vec<String>,
    pub not_before: OffsetDateTime,
    pub not_after: OffsetDateTime,
    /// Lowercase hex, no separators, as in the reference's examples.
    pub serial_number: String,
    /// `rsa`, `ecdsa` or `ed25519`; `unknown` otherwise.
    pub private_key_type: String,
    pub key_usages: Vec<String>,
    pub extended_key_usages: Vec<String>,
    /// The issuer's name equals the subject's (a self-signed or root certificate).
    pub self_issued: bool,
    /// SHA-256 of the leaf's DER, lowercase hex.
    pub fingerprint: String,
}

/// A parsed chain: the DER of every certificate (leaf first) and the leaf's fields.
#[derive(Debug, Clone)]
pub struct Chain {
    pub certificates: Vec<CertificateDer<'static>>,
    pub leaf: LeafInfo,
    /// For each certificate but the last: whether the next one's subject is its issuer.
    pub ordered: bool,
}

impl Chain {
    pub fn leaf_der(&self) -> &[u8] {
        self.certificates[0].as_ref()
    }
}

/// Each DER certificate parsed, in order; an error names the first that does not parse
/// (counting from 1).
pub fn parse_x509<'a>(
    ders: &'a [CertificateDer<'_>],
) -> Result<Vec<X509Certificate<'a>>, CertError> {
    ders.iter()
        .enumerate()
        .map(|(index, der)| {
            X509Certificate::from_der(der.as_ref())
                .map(|(_, cert)| cert)
                .map_err(|e| CertError::BadCertificate {
                    index: index + 1,
                    reason: e.to_string(),
                })
        })
        .collect()
}

/// Parses a PEM chain, leaf first. Other PEM sections (comments, parameters) are ignored, but a
/// file holding only a private key is named as such.
pub fn parse_chain(pem: &[u8]) -> Result<Chain, CertError> {
    if pem.iter().all(u8::is_ascii_whitespace) {
        return Err(CertError::Empty);
    }
    let mut certificates = Vec::new();
    let mut saw_key = false;
    for section in <(SectionKind, Vec<u8>) as PemObject>::pem_slice_iter(pem) {
        match section {
            Ok((SectionKind::Certificate, der)) => certificates.push(CertificateDer::from(der)),
            Ok((
                SectionKind::PrivateKey | SectionKind::RsaPrivateKey | SectionKind::EcPrivateKey,
                _,
            )) => saw_key = true,
            Ok(_) => {}
            Err(e) => return Err(CertError::BadPem(pem_error(&e))),
        }
    }
    if certificates.is_empty() {
        return Err(if saw_key || contains(pem, b"PRIVATE KEY-----") {
            CertError::KeyInsteadOfCertificate
        } else if pem.first() == Some(&0x30) {
            CertError::Der
        } else {
            CertError::NoCertificate
        });
    }
    let parsed = parse_x509(&certificates)?;
    let ordered = parsed
        .windows(2)
        .all(|pair| pair[0].issuer().as_raw() == pair[1].subject().as_raw());
    let leaf = leaf_info(&parsed[0], certificates[0].as_ref());
    drop(parsed);
    Ok(Chain {
        certificates,
        leaf,
        ordered,
    })
}

/// Parses an unencrypted PEM private key (PKCS#8, PKCS#1 RSA or SEC1 EC).
pub fn parse_private_key(pem: &[u8]) -> Result<PrivateKeyDer<'static>, CertError> {
    if contains(pem, b"ENCRYPTED PRIVATE KEY") || contains(pem, b"Proc-Type: 4,ENCRYPTED") {
        return Err(CertError::EncryptedKey);
    }
    match PrivateKeyDer::from_pem_slice(pem) {
        Ok(key) => Ok(key),
        Err(rustls::pki_types::pem::Error::NoItemsFound) => {
            if contains(pem, b"BEGIN CERTIFICATE") {
                Err(CertError::CertificateInsteadOfKey)
            } else {
                Err(CertError::NoKey)
            }
        }
        Err(_) => Err(CertError::BadKey),
    }
}

/// Whether `key` is the private key of the chain's leaf. Loading alone is not enough (rustls
/// accepts keys it cannot compare as "unknown"): the public keys are compared explicitly.
pub fn check_key_matches(chain: &Chain, key: &PrivateKeyDer<'_>) -> Result<(), CertError> {
    let signing_key =
        rustls::crypto::ring::sign::any_supported_type(key).map_err(|_| CertError::BadKey)?;
    let certified = rustls::sign::CertifiedKey::new(chain.certificates.clone(), signing_key);
    certified.keys_match().map_err(|_| CertError::KeyMismatch)
}

/// PEM text of DER certificates, nothing else: what is uploaded is exactly the parsed chain,
/// never a key or other text that shared the file.
pub fn to_pem(certificates: &[CertificateDer<'_>]) -> String {
    use base64::Engine;
    let mut out = String::new();
    for der in certificates {
        out.push_str("-----BEGIN CERTIFICATE-----\n");
        let b64 = base64::engine::general_purpose::STANDARD.encode(der.as_ref());
        for line in b64.as_bytes().chunks(64) {
            out.push_str(&String::from_utf8_lossy(line));
            out.push('\n');
        }
        out.push_str("-----END CERTIFICATE-----\n");
    }
    out
}

/// SHA-256 of DER bytes, lowercase hex.
pub fn fingerprint(der: &[u8]) -> String {
    hex::encode(Sha256::digest(der))
}

/// The fingerprint of the leaf of a PEM chain, if it parses.
pub fn leaf_fingerprint(pem: &[u8]) -> Option<String> {
    CertificateDer::pem_slice_iter(pem)
        .next()
        .and_then(Result::ok)
        .map(|der| fingerprint(der.as_ref()))
}

/// The domains that none of `dns_names` covers (SANs only: browsers ignore the subject's CN
/// when matching names, so a certificate without a DNS name covers nothing).
pub fn uncovered<'a>(
    dns_names: &[String],
    domains: impl IntoIterator<Item = &'a str>,
) -> Vec<&'a str> {
    domains
        .into_iter()
        .filter(|d| !dns_names.iter().any(|n| name_matches(n, d)))
        .collect()
}

/// The DNS names of a certificate's subjectAltName extension.
pub fn dns_names(cert: &X509Certificate<'_>) -> Vec<String> {
    let mut names = Vec::new();
    if let Ok(Some(san)) = cert.subject_alternative_name() {
        for name in &san.value.general_names {
            if let GeneralName::DNSName(n) = name {
                names.push(n.to_string());
            }
        }
    }
    // Kept for every certificate of the account: no room for names that are not there.
    names.shrink_to_fit();
    names
}

/// Whether `name` is covered by the certificate name `pattern` (`*.example.com` covers exactly
/// one label). Case-insensitive.
pub fn name_matches(pattern: &str, name: &str) -> bool {
    let (pattern, name) = (pattern.to_ascii_lowercase(), name.to_ascii_lowercase());
    match pattern.strip_prefix("*.") {
        Some(suffix) => name
            .split_once('.')
            .is_some_and(|(label, rest)| !label.is_empty() && rest == suffix),
        None => pattern == name,
    }
}

fn leaf_info(cert: &X509Certificate<'_>, der: &[u8]) -> LeafInfo {
    let first = |iter: &mut dyn Iterator<Item = &x509_parser::x509::AttributeTypeAndValue<'_>>| {
        iter.next()
            .and_then(|a| a.as_str().ok())
            .unwrap_or_default()
            .to_string()
    };
    let subject = cert.subject();
    let dns_names = dns_names(cert);
    let mut ips = Vec::new();
    if let Ok(Some(san)) = cert.subject_alternative_name() {
        for name in &san.value.general_names {
            if let GeneralName::IPAddress(bytes) = name {
                if let Some(ip) = ip_from_bytes(bytes) {
                    ips.push(ip)
                }
            }
        }
    }
    let (key_usages, extended_key_usages) = usages(cert);
    let private_key_type = match cert
        .public_key()
        .algorithm
        .algorithm
        .to_id_string()
        .as_str()
    {
        "1.2.840.113549.1.1.1" => "rsa",
        "1.2.840.10045.2.1" => "ecdsa",
        "1.3.101.112" => "ed25519",
        _ => "unknown",
    };
    let time = |t: &x509_parser::time::ASN1Time| {
        OffsetDateTime::from_unix_timestamp(t.timestamp()).unwrap_or(OffsetDateTime::UNIX_EPOCH)
    };
    LeafInfo {
        subject_common_name: first(&mut subject.iter_common_name()),
        subject_organization: first(&mut subject.iter_organization()),
        subject_organizational_unit: first(&mut subject.iter_organizational_unit()),
        subject_locality: first(&mut subject.iter_locality()),
        subject_province: first(&mut subject.iter_state_or_province()),
        subject_country: first(&mut subject.iter_country()),
        issuer_common_name: first(&mut cert.issuer().iter_common_name()),
        dns_names,
        ips,
        not_before: time(&cert.validity().not_before),
        not_after: time(&cert.validity().not_after),
        serial_number: hex::encode(cert.raw_serial()),
        private_key_type: private_key_type.to_string(),
        key_usages,
        extended_key_usages,
        self_issued: cert.issuer().as_raw() == cert.subject().as_raw(),
        fingerprint: fingerprint(der),
    }
}

/// The key usages and extended key usages, with the names the ngrok API uses.
fn usages(cert: &X509Certificate<'_>) -> (Vec<String>, Vec<String>) {
    let mut key_usages = Vec::new();
    if let Ok(Some(ku)) = cert.key_usage() {
        let ku = ku.value;
        for (set, name) in [
            (ku.digital_signature(), "digital_signature"),
            (ku.non_repudiation(), "content_commitment"),
            (ku.key_encipherment(), "key_encipherment"),
            (ku.data_encipherment(), "data_encipherment"),
            (ku.key_agreement(), "key_agreement"),
            (ku.key_cert_sign(), "cert_sign"),
            (ku.crl_sign(), "crl_sign"),
            (ku.encipher_only(), "encipher_only"),
            (ku.decipher_only(), "decipher_only"),
        ] {
            if set {
                key_usages.push(name.to_string());
            }
        }
    }
    let mut extended_key_usages = Vec::new();
    if let Ok(Some(eku)) = cert.extended_key_usage() {
        let eku = eku.value;
        for (set, name) in [
            (eku.any, "any"),
            (eku.server_auth, "server_auth"),
            (eku.client_auth, "client_auth"),
            (eku.code_signing, "code_signing"),
            (eku.email_protection, "email_protection"),
            (eku.time_stamping, "time_stamping"),
            (eku.ocsp_signing, "ocsp_signing"),
        ] {
            if set {
                extended_key_usages.push(name.to_string());
            }
        }
    }
    (key_usages, extended_key_usages)
}

fn ip_from_bytes(bytes: &[u8]) -> Option<String> {
    match bytes.len() {
        4 => Some(std::net::Ipv4Addr::from(<[u8; 4]>::try_from(bytes).ok()?).to_string()),
        16 => Some(std::net::Ipv6Addr::from(<[u8; 16]>::try_from(bytes).ok()?).to_string()),
        _ => None,
    }
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

pub(super) fn pem_error(e: &rustls::pki_types::pem::Error) -> String {
    match e {
        rustls::pki_types::pem::Error::MissingSectionEnd { .. } => {
            "a section has no END line (truncated?)".into()
        }
        rustls::pki_types::pem::Error::IllegalSectionStart { .. } => {
            "a BEGIN line is malformed".into()
        }
        rustls::pki_types::pem::Error::Base64Decode(_) => "a section is not valid base64".into(),
        rustls::pki_types::pem::Error::SectionTooLarge => "a section is too large".into(),
        _ => "unreadable".into(),
    }
}

/// Test and demo certificates, signed by a throwaway CA so chains look like real ones.
pub mod generate {
    use super::*;
    use rcgen::{
        BasicConstraints, CertificateParams, DistinguishedName, DnType, IsCa, Issuer, KeyPair,
        KeyUsagePurpose,
    };

    /// A certificate and its key, both PEM.
    #[derive(Clone)]
    pub struct Generated {
        /// Leaf first, then the issuing CA.
        pub chain_pem: String,
        pub leaf_pem: String,
        pub key_pem: String,
    }

    /// What to generate.
    #[derive(Debug, Clone)]
    pub struct Spec<'a> {
        pub common_name: &'a str,
        pub dns_names: &'a [String],
        pub not_before: OffsetDateTime,
        pub not_after: OffsetDateTime,
    }

    /// A throwaway CA that signs leaf certificates: a self-signed root, or an intermediate under
    /// one (then chains are leaf + intermediate, and the root is the trust anchor). With a shared
    /// leaf key, signing is all a certificate costs: a fresh key per certificate would dominate a
    /// 10,000-certificate seed.
    pub struct Signer {
        issuer: Issuer<'static, KeyPair>,
        ca_pem: String,
        /// The self-signed root this CA chains to (its own certificate when it is the root).
        root_pem: String,
        leaf_key: Option<KeyPair>,
    }

    impl std::fmt::Debug for Signer {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.debug_struct("Signer").finish_non_exhaustive()
        }
    }

    fn ca_params(common_name: &str) -> CertificateParams {
        let mut ca_params = CertificateParams::default();
        let mut ca_name = DistinguishedName::new();
        ca_name.push(DnType::CommonName, common_name);
        ca_params.distinguished_name = ca_name;
        ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca_params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        ca_params.not_before = time::macros::datetime!(2000-01-01 0:00 UTC);
        ca_params.not_after = time::macros::datetime!(2099-01-01 0:00 UTC);
        ca_params
    }

    #[derive(Debug, thiserror::Error)]
    #[error("could not generate a certificate: {0}")]
    pub struct GenerateError(String);

    impl From<rcgen::Error> for GenerateError {
        fn from(e: rcgen::Error) -> Self {
            GenerateError(e.to_string())
        }
    }

    impl Signer {
        /// A CA named `issuer_common_name`; every leaf gets a fresh key.
        pub fn new(issuer_common_name: &str) -> Result<Self, GenerateError> {
            let ca_key = KeyPair::generate()?;
            let ca_params = ca_params(issuer_common_name);
            let ca_pem = ca_params.self_signed(&ca_key)?.pem();
            Ok(Self {
                issuer: Issuer::new(ca_params, ca_key),
                root_pem: ca_pem.clone(),
                ca_pem,
                leaf_key: None,
            })
        }

        /// An intermediate CA named `issuer_common_name`, signed by this one: its leaves chain
        /// to this CA's root. `shared_leaf_key` as in [`Signer::with_shared_leaf_key`].
        pub fn intermediate(
            &self,
            issuer_common_name: &str,
            shared_leaf_key: bool,
        ) -> Result<Self, GenerateError> {
            let ca_key = KeyPair::generate()?;
            let ca_params = ca_params(issuer_common_name);
            let ca_pem = ca_params.signed_by(&ca_key, &self.issuer)?.pem();
            Ok(Self {
                issuer: Issuer::new(ca_params, ca_key),
                ca_pem,
                root_pem: self.root_pem.clone(),
                leaf_key: shared_leaf_key.then(KeyPair::generate).transpose()?,
            })
        }

        /// This CA's own certificate (PEM): the second certificate of the chains it signs.
        pub fn ca_pem(&self) -> &str {
            &self.ca_pem
        }

        /// The root certificate (PEM) every chain this CA signs leads to: the trust anchor.
        pub fn root_pem(&self) -> &str {
            &self.root_pem
        }

        /// Like [`Signer::new`], but every leaf shares one key (for bulk seeds and benchmarks).
        pub fn with_shared_leaf_key(issuer_common_name: &str) -> Result<Self, GenerateError> {
            let mut signer = Self::new(issuer_common_name)?;
            signer.leaf_key = Some(KeyPair::generate()?);
            Ok(signer)
        }

        pub fn generate(&self, spec: &Spec<'_>) -> Result<Generated, GenerateError> {
            let fresh;
            let leaf_key = match &self.leaf_key {
                Some(key) => key,
                None => {
                    fresh = KeyPair::generate()?;
                    &fresh
                }
            };
            let mut params = CertificateParams::new(spec.dns_names.to_vec())?;
            let mut name = DistinguishedName::new();
            name.push(DnType::CommonName, spec.common_name);
            params.distinguished_name = name;
            params.not_before = spec.not_before;
            params.not_after = spec.not_after;
            params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
            params.extended_key_usages = vec![rcgen::ExtendedKeyUsagePurpose::ServerAuth];
            let serial: [u8; 16] = rand::random();
            let mut serial = serial.to_vec();
            serial[0] &= 0x7f; // a positive INTEGER, 16 bytes long
            serial[0] |= 0x01;
            params.serial_number = Some(rcgen::SerialNumber::from_slice(&serial));
            let leaf = params.signed_by(leaf_key, &self.issuer)?;
            Ok(Generated {
                chain_pem: format!("{}{}", leaf.pem(), self.ca_pem),
                leaf_pem: leaf.pem(),
                key_pem: leaf_key.serialize_pem(),
            })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::generate::{Signer, Spec};
    use super::*;

    fn spec(names: &[String]) -> Spec<'_> {
        Spec {
            common_name: &names[0],
            dns_names: names,
            not_before: OffsetDateTime::now_utc() - time::Duration::days(1),
            not_after: OffsetDateTime::now_utc() + time::Duration::days(60),
        }
    }

    #[test]
    fn generated_chain_parses_with_its_fields() {
        let names = vec![
            "app.example.com".to_string(),
            "*.api.example.com".to_string(),
        ];
        let signer = Signer::new("Test CA").unwrap();
        let generated = signer.generate(&spec(&names)).unwrap();
        let chain = parse_chain(generated.chain_pem.as_bytes()).unwrap();
        assert_eq!(chain.certificates.len(), 2);
        assert!(chain.ordered);
        assert_eq!(chain.leaf.subject_common_name, "app.example.com");
        assert_eq!(chain.leaf.issuer_common_name, "Test CA");
        assert_eq!(chain.leaf.dns_names, names);
        assert_eq!(chain.leaf.private_key_type, "ecdsa");
        assert_eq!(chain.leaf.extended_key_usages, vec!["server_auth"]);
        assert!(!chain.leaf.self_issued);
        assert_eq!(chain.leaf.serial_number.len(), 32);
        let key = parse_private_key(generated.key_pem.as_bytes()).unwrap();
        check_key_matches(&chain, &key).unwrap();
        assert_eq!(
            leaf_fingerprint(generated.chain_pem.as_bytes()).unwrap(),
            chain.leaf.fingerprint
        );
    }

    #[test]
    fn a_foreign_key_does_not_match() {
        let names = vec!["app.example.com".to_string()];
        let a = Signer::new("Test CA")
            .unwrap()
            .generate(&spec(&names))
            .unwrap();
        let b = Signer::new("Test CA")
            .unwrap()
            .generate(&spec(&names))
            .unwrap();
        let chain = parse_chain(a.chain_pem.as_bytes()).unwrap();
        let key = parse_private_key(b.key_pem.as_bytes()).unwrap();
        assert_eq!(check_key_matches(&chain, &key), Err(CertError::KeyMismatch));
    }

    #[test]
    fn the_reference_example_parses_like_the_api_reports_it() {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/fixtures/ngrok-api-examples/get_tls_certificate.response.json");
        let text = std::fs::read_to_string(path).unwrap();
        let v: serde_json::Value = serde_json::from_str(&text).unwrap();
        let chain = parse_chain(v["certificate_pem"].as_str().unwrap().as_bytes()).unwrap();
        assert_eq!(
            chain.leaf.serial_number,
            v["serial_number"].as_str().unwrap()
        );
        assert_eq!(chain.leaf.subject_common_name, "example.com");
        assert_eq!(chain.leaf.private_key_type, "rsa");
        assert!(chain.leaf.self_issued);
        assert_eq!(
            chain.leaf.not_after,
            OffsetDateTime::parse(
                v["not_after"].as_str().unwrap(),
                &time::format_description::well_known::Rfc3339
            )
            .unwrap()
        );
    }

    #[test]
    fn hostile_inputs_are_named() {
        assert_eq!(parse_chain(b"").unwrap_err(), CertError::Empty);
        assert_eq!(parse_chain(b"  \n").unwrap_err(), CertError::Empty);
        assert_eq!(
            parse_chain(b"\x30\x82\x01\x00garbage").unwrap_err(),
            CertError::Der
        );
        assert_eq!(
            parse_chain(b"hello world").unwrap_err(),
            CertError::NoCertificate
        );
        let names = vec!["app.example.com".to_string()];
        let g = Signer::new("Test CA")
            .unwrap()
            .generate(&spec(&names))
            .unwrap();
        assert_eq!(
            parse_chain(g.key_pem.as_bytes()).unwrap_err(),
            CertError::KeyInsteadOfCertificate
        );
        assert_eq!(
            parse_private_key(g.chain_pem.as_bytes()).unwrap_err(),
            CertError::CertificateInsteadOfKey
        );
        let truncated = &g.chain_pem[..g.chain_pem.len() / 3];
        assert!(parse_chain(truncated.as_bytes()).is_err());
        assert_eq!(
            parse_private_key(b"-----BEGIN ENCRYPTED PRIVATE KEY-----\nMIIB\n-----END ENCRYPTED PRIVATE KEY-----\n")
                .unwrap_err(),
            CertError::EncryptedKey
        );
        assert_eq!(parse_private_key(b"").unwrap_err(), CertError::NoKey);
        let reversed: String = {
            let parts: Vec<&str> = g
                .chain_pem
                .split_inclusive("-----END CERTIFICATE-----\n")
                .collect();
            parts.iter().rev().cloned().collect()
        };
        assert!(!parse_chain(reversed.as_bytes()).unwrap().ordered);
    }

    #[test]
    fn wildcards_cover_one_label() {
        assert!(name_matches("*.example.com", "app.example.com"));
        assert!(!name_matches("*.example.com", "a.b.example.com"));
        assert!(!name_matches("*.example.com", "example.com"));
        assert!(name_matches("App.Example.com", "app.example.com"));
    }
}
