//! What a browser would make of a certificate chain, from its PEM alone: the names its leaf
//! covers (SANs only), whether the chain verifies to a trusted root, whether it is in order, and
//! weak keys or signatures. One pure function of (PEM, trust, `now`) whose result is small and
//! owned, so the PEM can be dropped as soon as the facts are taken; the account's evaluation and
//! the check before an upload both use it.

use rustls::pki_types::CertificateDer;
use time::OffsetDateTime;
use x509_parser::prelude::{FromDer, ParsedExtension, X509Certificate};
use x509_parser::public_key::PublicKey;

use super::certs::{self, CertError};
use super::trust::{ChainProblem, Trust};

/// What the judging found out about one chain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CertFacts {
    /// SHA-256 of the leaf's DER, lowercase hex.
    pub fingerprint: String,
    /// The leaf's DNS names (subjectAltName): the only names browsers match.
    pub dns_names: Vec<String>,
    pub chain: ChainVerdict,
    /// Why the chain is not in order (leaf first, each certificate followed by its issuer).
    pub order: Option<String>,
    /// Each weak key or signature, in words ("the leaf's RSA key has 1024 bits").
    pub weak: Vec<String>,
}

/// Whether the chain verifies to a trusted root.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ChainVerdict {
    Trusted,
    /// It fails only because of a weak algorithm, which [`CertFacts::weak`] names.
    Weak,
    /// It does not verify, for this reason (one sentence, no trailing period).
    Untrusted {
        reason: String,
        /// A leaf alone, not self-signed: its issuer is not in the file at all.
        leaf_alone: bool,
    },
}

impl CertFacts {
    /// The domains of `domains` that none of the leaf's DNS names covers.
    pub fn uncovered<'a>(&self, domains: impl IntoIterator<Item = &'a str>) -> Vec<&'a str> {
        certs::uncovered(&self.dns_names, domains)
    }

    /// Why the chain is incomplete (does not verify, or is out of order), if it is.
    pub fn chain_problems(&self) -> Vec<&str> {
        let mut problems = Vec::new();
        if let ChainVerdict::Untrusted { reason, .. } = &self.chain {
            problems.push(reason.as_str());
        }
        if let Some(order) = &self.order {
            problems.push(order.as_str());
        }
        problems
    }
}

/// Judges the PEM chain (leaf first) as of `now`. The chain is verified at a moment inside the
/// leaf's validity (`now`, moved into it), so an expired leaf is an expiry, not a chain problem,
/// while an intermediate that expired before `now` is one.
pub fn judge_material(
    pem: &[u8],
    trust: &Trust,
    now: OffsetDateTime,
) -> Result<CertFacts, CertError> {
    let chain = certs::parse_chain(pem)?;
    judge_chain(&chain.certificates, trust, now)
}

/// [`judge_material`] of DER certificates, leaf first (at least one).
pub fn judge_chain(
    ders: &[CertificateDer<'_>],
    trust: &Trust,
    now: OffsetDateTime,
) -> Result<CertFacts, CertError> {
    let mut parsed = Vec::with_capacity(ders.len());
    for (index, der) in ders.iter().enumerate() {
        let (_, cert) =
            X509Certificate::from_der(der.as_ref()).map_err(|e| CertError::BadCertificate {
                index: index + 1,
                reason: e.to_string(),
            })?;
        parsed.push(cert);
    }
    let leaf = parsed.first().ok_or(CertError::Empty)?;
    let dns_names = certs::dns_names(leaf);
    let weak = weaknesses(&parsed);
    let not_before = unix(leaf.validity().not_before.timestamp());
    let not_after = unix(leaf.validity().not_after.timestamp());
    let at = now.clamp(not_before, not_after.max(not_before));
    let chain = match trust.verify(ders, None, at) {
        Ok(()) => ChainVerdict::Trusted,
        Err(ChainProblem::WeakAlgorithm) if !weak.is_empty() => ChainVerdict::Weak,
        Err(problem) => ChainVerdict::Untrusted {
            reason: untrusted_reason(&parsed, &problem, at),
            leaf_alone: parsed.len() == 1 && !self_issued(leaf),
        },
    };
    Ok(CertFacts {
        fingerprint: certs::fingerprint(ders[0].as_ref()),
        dns_names,
        chain,
        order: order(&parsed),
        weak,
    })
}

fn unix(seconds: i64) -> OffsetDateTime {
    OffsetDateTime::from_unix_timestamp(seconds).unwrap_or(OffsetDateTime::UNIX_EPOCH)
}

/// Why the chain does not verify, in words a person can act on.
fn untrusted_reason(
    parsed: &[X509Certificate<'_>],
    problem: &ChainProblem,
    at: OffsetDateTime,
) -> String {
    let leaf = &parsed[0];
    match problem {
        ChainProblem::UnknownIssuer if parsed.len() == 1 && !self_issued(leaf) => format!(
            "the leaf was uploaded without its intermediate certificates (issuer {} is not in it): clients that lack them cannot reach a trusted root; upload the full chain (certbot: fullchain.pem)",
            name_of(leaf.issuer())
        ),
        ChainProblem::UnknownIssuer => {
            let last = parsed.last().unwrap_or(leaf);
            format!(
                "it does not lead to a trusted root: {} is not issued by any root clients trust (a private CA: add its root to edge.trust_anchors; else upload the missing intermediates)",
                describe(last, parsed.len() - 1)
            )
        }
        ChainProblem::Expired | ChainProblem::NotYetValid => {
            let timestamp = at.unix_timestamp();
            match parsed.iter().enumerate().skip(1).find(|(_, c)| {
                c.validity().not_after.timestamp() < timestamp
                    || c.validity().not_before.timestamp() > timestamp
            }) {
                Some((i, c)) if c.validity().not_after.timestamp() < timestamp => format!(
                    "{} expired {}: replace it with the issuer's current one",
                    describe(c, i),
                    super::text::format_time(unix(c.validity().not_after.timestamp()))
                ),
                Some((i, c)) => format!(
                    "{} is not valid before {}",
                    describe(c, i),
                    super::text::format_time(unix(c.validity().not_before.timestamp()))
                ),
                None => format!("it does not verify: {problem}"),
            }
        }
        other => format!("it does not verify: {other}"),
    }
}

/// Why the chain is out of order, naming the first certificate that is not followed by its
/// issuer.
fn order(parsed: &[X509Certificate<'_>]) -> Option<String> {
    let (i, pair) = parsed
        .windows(2)
        .enumerate()
        .find(|(_, pair)| !issued_by(&pair[0], &pair[1]))?;
    let (child, next) = (&pair[0], &pair[1]);
    let issuer_at = parsed
        .iter()
        .enumerate()
        .skip(1)
        .find(|(j, c)| *j != i + 1 && issued_by(child, c));
    Some(match issuer_at {
        Some((j, issuer)) => format!(
            "the intermediates are in the wrong order: {} is followed by {}, but its issuer is {}; put each certificate right before its issuer, leaf first",
            describe(child, i),
            describe(next, i + 1),
            describe(issuer, j)
        ),
        None => format!(
            "the chain is not in order: {} is followed by {}, which did not issue it (its issuer {} is not in the file); remove certificates that do not belong to the chain",
            describe(child, i),
            describe(next, i + 1),
            name_of(child.issuer())
        ),
    })
}

/// Whether `issuer` issued `child`: the names match, and the key identifiers where both have one.
fn issued_by(child: &X509Certificate<'_>, issuer: &X509Certificate<'_>) -> bool {
    if child.issuer().as_raw() != issuer.subject().as_raw() {
        return false;
    }
    let authority_key = child.extensions().iter().find_map(|e| match e.parsed_extension() {
        ParsedExtension::AuthorityKeyIdentifier(aki) => aki.key_identifier.as_ref().map(|k| k.0),
        _ => None,
    });
    let subject_key = issuer.extensions().iter().find_map(|e| match e.parsed_extension() {
        ParsedExtension::SubjectKeyIdentifier(ski) => Some(ski.0),
        _ => None,
    });
    match (authority_key, subject_key) {
        (Some(a), Some(s)) => a == s,
        _ => true,
    }
}

fn self_issued(c: &X509Certificate<'_>) -> bool {
    c.issuer().as_raw() == c.subject().as_raw()
}

/// Signature algorithms browsers refuse: MD2, MD5 and SHA-1 with RSA, ECDSA or DSA.
const WEAK_SIGNATURES: [(&str, &str); 6] = [
    ("1.2.840.113549.1.1.2", "MD2"),
    ("1.2.840.113549.1.1.4", "MD5"),
    ("1.2.840.113549.1.1.5", "SHA-1"),
    ("1.3.14.3.2.29", "SHA-1"),
    ("1.2.840.10045.4.1", "SHA-1"),
    ("1.2.840.10040.4.3", "SHA-1"),
];

/// Weak keys (RSA under 2048 bits, EC under 256) and weak signatures of the leaf and the
/// intermediates. A root's self-signature is not checked: clients trust a root for being in
/// their store, not for its signature.
fn weaknesses(parsed: &[X509Certificate<'_>]) -> Vec<String> {
    let mut weak = Vec::new();
    for (i, c) in parsed.iter().enumerate() {
        if i > 0 && self_issued(c) {
            continue;
        }
        let who = describe(c, i);
        match c.public_key().parsed() {
            Ok(PublicKey::RSA(rsa)) => {
                let bits = bit_length(rsa.modulus);
                if bits < 2048 {
                    weak.push(format!("{who} has a {bits}-bit RSA key (at least 2048 bits needed)"));
                }
            }
            Ok(PublicKey::EC(point)) => {
                let bits = point.key_size();
                if bits < 256 {
                    weak.push(format!("{who} has a {bits}-bit EC key (at least 256 bits needed)"));
                }
            }
            _ => {}
        }
        let oid = c.signature_algorithm.algorithm.to_id_string();
        if let Some((_, hash)) = WEAK_SIGNATURES.iter().find(|(o, _)| *o == oid) {
            weak.push(format!("{who} is signed with {hash}, which browsers reject"));
        }
    }
    weak
}

/// The number of significant bits of a big-endian unsigned integer.
fn bit_length(bytes: &[u8]) -> usize {
    let trimmed: &[u8] = match bytes.iter().position(|b| *b != 0) {
        Some(i) => &bytes[i..],
        None => return 0,
    };
    trimmed.len() * 8 - trimmed[0].leading_zeros() as usize
}

/// "the leaf (CN=app.example.com)", "certificate 2 (CN=R11)".
fn describe(c: &X509Certificate<'_>, index: usize) -> String {
    let name = name_of(c.subject());
    if index == 0 {
        format!("the leaf ({name})")
    } else {
        format!("certificate {} ({name})", index + 1)
    }
}

fn name_of(name: &x509_parser::x509::X509Name<'_>) -> String {
    match name.iter_common_name().next().and_then(|cn| cn.as_str().ok()) {
        Some(cn) => format!("CN={cn}"),
        None => name.to_string(),
    }
}
