//! What a browser would make of a certificate chain, from its PEM alone: the names its leaf
//! covers (SANs only), whether the chain verifies to a trusted root, whether it is in order, and
//! weak keys or signatures. One pure function of (PEM, trust, `now`) whose result is small and
//! owned, so the PEM can be dropped as soon as the facts are taken; the account's evaluation and
//! the check before an upload both use it.

use std::collections::HashMap;
use std::sync::Mutex;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::CertificateDer;
use time::OffsetDateTime;
use x509_parser::prelude::{ParsedExtension, X509Certificate};
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
    pub weak: Vec<Weakness>,
}

/// One weak key or signature of a chain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Weakness {
    /// It is the leaf's own key: the one its private key must match.
    pub leaf_key: bool,
    /// What is weak, in words ("the leaf (CN=…) has a 1024-bit RSA key …").
    pub words: String,
}

impl std::fmt::Display for Weakness {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.words)
    }
}

/// Tests compare weaknesses with their words.
#[cfg(test)]
impl PartialEq<&str> for Weakness {
    fn eq(&self, other: &&str) -> bool {
        self.words == *other
    }
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
    /// The weakness of the leaf's own key, if it has one.
    pub fn weak_leaf_key(&self) -> Option<&Weakness> {
        self.weak.iter().find(|w| w.leaf_key)
    }

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
    Judge::new(trust, now).judge_material(pem)
}

/// [`judge_material`] of DER certificates, leaf first (at least one).
pub fn judge_chain(
    ders: &[CertificateDer<'_>],
    trust: &Trust,
    now: OffsetDateTime,
) -> Result<CertFacts, CertError> {
    Judge::new(trust, now).judge_chain(ders)
}

/// Judges many chains against one trust at one `now` (the certificates of one sync), the same
/// way as [`judge_material`], but cheaper when they share intermediates: verifying a chain is
/// mostly its signatures, and an intermediate whose path to a trusted root verified at the same
/// moment need not be verified again for each leaf it signed. Only a leaf whose chain is
/// exactly such an intermediate and its issuers is shortened; anything that does not verify
/// that way is verified in full, so every verdict is the full one.
///
/// Shared by threads (`&self`): the certificates of a page are judged in parallel.
pub struct Judge<'a> {
    trust: &'a Trust,
    now: OffsetDateTime,
    /// SHA-256 of a verified intermediate's DER → that intermediate alone as a trust anchor.
    verified: Mutex<HashMap<String, Trust>>,
}

impl<'a> Judge<'a> {
    pub fn new(trust: &'a Trust, now: OffsetDateTime) -> Self {
        Self {
            trust,
            now,
            verified: Mutex::new(HashMap::new()),
        }
    }

    pub fn judge_material(&self, pem: &[u8]) -> Result<CertFacts, CertError> {
        // Only the DER of each certificate: `judge_chain` parses each once, and nothing else of
        // `certs::parse_chain` is needed here (this runs for every certificate of every sync).
        let ders = CertificateDer::pem_slice_iter(pem)
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| CertError::BadPem(certs::pem_error(&e)))?;
        if ders.is_empty() {
            return Err(CertError::NoCertificate);
        }
        self.judge_chain(&ders)
    }

    pub fn judge_chain(&self, ders: &[CertificateDer<'_>]) -> Result<CertFacts, CertError> {
        let parsed = certs::parse_x509(ders)?;
        let leaf = parsed.first().ok_or(CertError::Empty)?;
        let dns_names = certs::dns_names(leaf);
        let weak = weaknesses(&parsed);
        let order = order(&parsed);
        let not_before = unix(leaf.validity().not_before.timestamp());
        let not_after = unix(leaf.validity().not_after.timestamp());
        let at = self.now.clamp(not_before, not_after.max(not_before));
        let chain = match self.verify(ders, &parsed, order.is_none(), at) {
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
            order,
            weak,
        })
    }

    /// The verified intermediate with this fingerprint, as a trust anchor (cheap: shared).
    fn remembered(&self, fingerprint: &str) -> Option<Trust> {
        self.verified.lock().ok()?.get(fingerprint).cloned()
    }

    /// Verifies the chain at `at`: through an already verified issuer when the chain is in
    /// order and `at` is the judge's `now`, else (and when that fails) in full.
    fn verify(
        &self,
        ders: &[CertificateDer<'_>],
        parsed: &[X509Certificate<'_>],
        ordered: bool,
        at: OffsetDateTime,
    ) -> Result<(), ChainProblem> {
        // The leaf's issuer, when it is the only certificate of its name in the chain (so a
        // full verification went through it, not through a namesake).
        let issuer = (ordered && at == self.now && parsed.len() >= 2)
            .then(|| &parsed[1])
            .filter(|i| {
                parsed
                    .iter()
                    .filter(|c| c.subject().as_raw() == i.subject().as_raw())
                    .count()
                    == 1
            })
            .map(|_| certs::fingerprint(ders[1].as_ref()));
        if let Some(anchor) = issuer.as_ref().and_then(|fp| self.remembered(fp)) {
            if anchor.verify(&ders[..1], None, at).is_ok() {
                return Ok(());
            }
        }
        self.trust.verify(ders, None, at)?;
        if let Some(fp) = issuer {
            if let (Ok(anchor), Ok(mut verified)) = (Trust::only(&ders[1..2]), self.verified.lock())
            {
                verified.insert(fp, anchor);
            }
        }
        Ok(())
    }
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

/// Why the chain is out of order, naming the certificates concerned: a leaf that is not first,
/// a certificate unrelated to the others, or the first certificate not followed by its issuer.
fn order(parsed: &[X509Certificate<'_>]) -> Option<String> {
    let issued = |a: usize, b: usize| a != b && issued_by(&parsed[a], &parsed[b]);
    if let Some(child) = (1..parsed.len()).find(|&j| issued(j, 0)) {
        return Some(format!(
            "the chain is not in order: it must start with the leaf, but {} issued {}",
            describe(&parsed[0], 0).replacen("the leaf", "certificate 1", 1),
            describe(&parsed[child], child)
        ));
    }
    let stranger =
        (1..parsed.len()).find(|&j| !(0..parsed.len()).any(|k| issued(k, j) || issued(j, k)));
    if let Some(j) = stranger {
        return Some(format!(
            "the chain is not in order: {} belongs to no chain of the others (it issued none of them, nor did they issue it); remove it",
            describe(&parsed[j], j)
        ));
    }
    let i = (0..parsed.len().saturating_sub(1)).find(|&i| !issued(i, i + 1))?;
    let (child, next) = (&parsed[i], &parsed[i + 1]);
    Some(match (i + 2..parsed.len()).chain(1..i).find(|&j| issued(i, j)) {
        Some(j) => format!(
            "the chain is not in order: {} is followed by {}, but its issuer is {}; put each certificate right before its issuer, leaf first",
            describe(child, i),
            describe(next, i + 1),
            describe(&parsed[j], j)
        ),
        None => format!(
            "the chain is not in order: {} is followed by {}, which did not issue it (its issuer {} is not in the file)",
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
    let authority_key = child
        .extensions()
        .iter()
        .find_map(|e| match e.parsed_extension() {
            ParsedExtension::AuthorityKeyIdentifier(aki) => {
                aki.key_identifier.as_ref().map(|k| k.0)
            }
            _ => None,
        });
    let subject_key = issuer
        .extensions()
        .iter()
        .find_map(|e| match e.parsed_extension() {
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
fn weaknesses(parsed: &[X509Certificate<'_>]) -> Vec<Weakness> {
    let mut weak = Vec::new();
    for (i, c) in parsed.iter().enumerate() {
        if i > 0 && self_issued(c) {
            continue;
        }
        let who = describe(c, i);
        let small_key = match c.public_key().parsed() {
            Ok(PublicKey::RSA(rsa)) => Some((bit_length(rsa.modulus), "RSA", 2048)),
            Ok(PublicKey::EC(point)) => Some((point.key_size(), "EC", 256)),
            _ => None,
        }
        .filter(|(bits, _, least)| bits < least);
        if let Some((bits, algorithm, least)) = small_key {
            weak.push(Weakness {
                leaf_key: i == 0,
                words: format!(
                    "{who} has a {bits}-bit {algorithm} key (at least {least} bits needed)"
                ),
            });
        }
        let oid = c.signature_algorithm.algorithm.to_id_string();
        if let Some((_, hash)) = WEAK_SIGNATURES.iter().find(|(o, _)| *o == oid) {
            weak.push(Weakness {
                leaf_key: false,
                words: format!("{who} is signed with {hash}, which browsers reject"),
            });
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
    match name
        .iter_common_name()
        .next()
        .and_then(|cn| cn.as_str().ok())
    {
        Some(cn) => format!("CN={cn}"),
        None => name.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair};
    use time::macros::datetime;

    const NOW: OffsetDateTime = datetime!(2027-01-01 12:00 UTC);

    fn days(n: i64) -> time::Duration {
        time::Duration::days(n)
    }

    struct Ca {
        issuer: Issuer<'static, KeyPair>,
        der: CertificateDer<'static>,
    }

    fn ca_params(name: &str, valid: (OffsetDateTime, OffsetDateTime)) -> CertificateParams {
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params.distinguished_name.push(DnType::CommonName, name);
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.use_authority_key_identifier_extension = true;
        (params.not_before, params.not_after) = valid;
        params
    }

    fn root(name: &str) -> Ca {
        let key = KeyPair::generate().unwrap();
        let params = ca_params(name, (NOW - days(3650), NOW + days(3650)));
        let der = params.self_signed(&key).unwrap().der().clone();
        Ca {
            issuer: Issuer::new(params, key),
            der,
        }
    }

    fn intermediate(parent: &Ca, name: &str, valid: (OffsetDateTime, OffsetDateTime)) -> Ca {
        let key = KeyPair::generate().unwrap();
        let params = ca_params(name, valid);
        let der = params
            .signed_by(&key, &parent.issuer)
            .unwrap()
            .der()
            .clone();
        Ca {
            issuer: Issuer::new(params, key),
            der,
        }
    }

    fn leaf(
        parent: &Ca,
        sans: &[&str],
        cn: &str,
        valid: (OffsetDateTime, OffsetDateTime),
    ) -> CertificateDer<'static> {
        let key = KeyPair::generate().unwrap();
        let mut params =
            CertificateParams::new(sans.iter().map(|s| s.to_string()).collect::<Vec<_>>()).unwrap();
        params.distinguished_name.push(DnType::CommonName, cn);
        params.use_authority_key_identifier_extension = true;
        (params.not_before, params.not_after) = valid;
        params
            .signed_by(&key, &parent.issuer)
            .unwrap()
            .der()
            .clone()
    }

    /// A root (trusted), an intermediate under it, and a 90-day leaf for app.example.com.
    struct Pki {
        trust: Trust,
        int: Ca,
        leaf: CertificateDer<'static>,
    }

    fn pki() -> Pki {
        let root = root("Test Root");
        let int = intermediate(
            &root,
            "Test Intermediate",
            (NOW - days(365), NOW + days(365)),
        );
        let leaf = leaf(
            &int,
            &["app.example.com", "*.api.example.com"],
            "app.example.com",
            (NOW - days(10), NOW + days(80)),
        );
        Pki {
            trust: Trust::with_anchors(&[root.der]).unwrap(),
            int,
            leaf,
        }
    }

    #[test]
    fn a_complete_chain_to_a_trusted_root_is_fine() {
        let p = pki();
        let facts = judge_chain(&[p.leaf.clone(), p.int.der.clone()], &p.trust, NOW).unwrap();
        assert_eq!(facts.chain, ChainVerdict::Trusted);
        assert_eq!(facts.order, None);
        assert!(facts.weak.is_empty(), "{:?}", facts.weak);
        assert!(facts.chain_problems().is_empty());
        assert_eq!(facts.dns_names, ["app.example.com", "*.api.example.com"]);
        assert_eq!(facts.fingerprint, certs::fingerprint(p.leaf.as_ref()));
        // The same from PEM text.
        let pem = certs::to_pem(&[p.leaf.clone(), p.int.der.clone()]);
        assert_eq!(
            judge_material(pem.as_bytes(), &p.trust, NOW).unwrap(),
            facts
        );
    }

    #[test]
    fn names_are_covered_by_sans_only_with_one_label_wildcards() {
        let p = pki();
        let facts = judge_chain(&[p.leaf.clone(), p.int.der.clone()], &p.trust, NOW).unwrap();
        assert_eq!(
            facts.uncovered([
                "app.example.com",
                "v1.api.example.com",
                "a.b.api.example.com",
                "example.com"
            ]),
            ["a.b.api.example.com", "example.com"]
        );
        // A certificate whose only name is its CN covers nothing: browsers ignore the CN.
        let cn_only = leaf(
            &p.int,
            &[],
            "app.example.com",
            (NOW - days(1), NOW + days(89)),
        );
        let facts = judge_chain(&[cn_only, p.int.der.clone()], &p.trust, NOW).unwrap();
        assert!(facts.dns_names.is_empty());
        assert_eq!(facts.uncovered(["app.example.com"]), ["app.example.com"]);
    }

    #[test]
    fn a_leaf_without_its_intermediate_is_incomplete() {
        let p = pki();
        let facts = judge_chain(std::slice::from_ref(&p.leaf), &p.trust, NOW).unwrap();
        let ChainVerdict::Untrusted { reason, leaf_alone } = &facts.chain else {
            panic!("{:?}", facts.chain)
        };
        assert!(*leaf_alone);
        assert!(
            reason.contains("without its intermediate certificates (issuer CN=Test Intermediate"),
            "{reason}"
        );
    }

    #[test]
    fn an_unknown_issuer_is_incomplete_and_named() {
        let p = pki();
        let facts =
            judge_chain(&[p.leaf.clone(), p.int.der.clone()], &Trust::public(), NOW).unwrap();
        let ChainVerdict::Untrusted { reason, leaf_alone } = &facts.chain else {
            panic!("{:?}", facts.chain)
        };
        assert!(!*leaf_alone);
        assert!(
            reason.contains("certificate 2 (CN=Test Intermediate) is not issued by any root"),
            "{reason}"
        );
        assert!(reason.contains("edge.trust_anchors"), "{reason}");
    }

    #[test]
    fn an_expired_intermediate_is_incomplete_but_an_expired_leaf_is_not() {
        let root = root("Test Root");
        let trust = Trust::with_anchors(std::slice::from_ref(&root.der)).unwrap();
        let old = intermediate(&root, "Old Intermediate", (NOW - days(400), NOW - days(5)));
        let leaf_ok = leaf(
            &old,
            &["app.example.com"],
            "app",
            (NOW - days(10), NOW + days(80)),
        );
        let facts = judge_chain(&[leaf_ok, old.der.clone()], &trust, NOW).unwrap();
        let ChainVerdict::Untrusted { reason, .. } = &facts.chain else {
            panic!("{:?}", facts.chain)
        };
        assert!(
            reason.contains("certificate 2 (CN=Old Intermediate) expired 2026-12-27T12:00:00Z"),
            "{reason}"
        );
        // An expired leaf under a good intermediate: verified inside its validity, so only its
        // expiry is a finding.
        let int = intermediate(
            &root,
            "Test Intermediate",
            (NOW - days(400), NOW + days(400)),
        );
        let expired = leaf(
            &int,
            &["app.example.com"],
            "app",
            (NOW - days(100), NOW - days(10)),
        );
        let facts = judge_chain(&[expired, int.der.clone()], &trust, NOW).unwrap();
        assert_eq!(facts.chain, ChainVerdict::Trusted);
    }

    #[test]
    fn intermediates_in_the_wrong_order_are_named_though_the_chain_verifies() {
        let anchor = root("Test Root");
        let trust = Trust::with_anchors(std::slice::from_ref(&anchor.der)).unwrap();
        let valid = (NOW - days(365), NOW + days(365));
        let upper = intermediate(&anchor, "Upper Intermediate", valid);
        let lower = intermediate(&upper, "Lower Intermediate", valid);
        let leaf = leaf(
            &lower,
            &["app.example.com"],
            "app.example.com",
            (NOW - days(1), NOW + days(89)),
        );
        let right = judge_chain(
            &[leaf.clone(), lower.der.clone(), upper.der.clone()],
            &trust,
            NOW,
        )
        .unwrap();
        assert_eq!(
            (right.chain.clone(), right.order.clone()),
            (ChainVerdict::Trusted, None)
        );
        let wrong = judge_chain(
            &[leaf.clone(), upper.der.clone(), lower.der.clone()],
            &trust,
            NOW,
        )
        .unwrap();
        assert_eq!(
            wrong.chain,
            ChainVerdict::Trusted,
            "path building ignores the order"
        );
        let order = wrong.order.as_deref().unwrap();
        assert!(
            order.contains("the leaf (CN=app.example.com) is followed by certificate 2 (CN=Upper Intermediate), but its issuer is certificate 3 (CN=Lower Intermediate)"),
            "{order}"
        );
        assert_eq!(wrong.chain_problems(), [order]);
        // Reversed: the leaf last.
        let reversed = judge_chain(
            &[upper.der.clone(), lower.der.clone(), leaf.clone()],
            &trust,
            NOW,
        );
        let order = reversed.unwrap().order.unwrap();
        assert!(
            order.contains("it must start with the leaf, but certificate 1 (CN=Upper Intermediate) issued certificate 2 (CN=Lower Intermediate)"),
            "{order}"
        );
        // A certificate that belongs to no chain of it.
        let stranger = root("Stranger");
        let extra = judge_chain(
            &[leaf, stranger.der.clone(), lower.der, upper.der],
            &trust,
            NOW,
        )
        .unwrap();
        assert!(
            extra
                .order
                .as_deref()
                .unwrap()
                .contains("certificate 2 (CN=Stranger) belongs to no chain of the others"),
            "{:?}",
            extra.order
        );
    }

    fn fixture(name: &str) -> Vec<u8> {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/fixtures/weak")
            .join(name);
        std::fs::read(path).unwrap()
    }

    fn fixture_trust() -> Trust {
        let root = certs::parse_chain(&fixture("root.pem")).unwrap();
        Trust::with_anchors(&root.certificates).unwrap()
    }

    #[test]
    fn an_rsa_1024_key_is_weak_though_the_chain_verifies() {
        let facts = judge_material(&fixture("rsa1024.pem"), &fixture_trust(), NOW).unwrap();
        assert_eq!(facts.chain, ChainVerdict::Trusted);
        assert_eq!(facts.weak, ["the leaf (CN=weak-rsa1024.example.com) has a 1024-bit RSA key (at least 2048 bits needed)"]);
        // The root's self-signature and key are not judged; the P-256 leaves of rcgen are fine.
        let p = pki();
        assert!(judge_chain(&[p.leaf, p.int.der], &p.trust, NOW)
            .unwrap()
            .weak
            .is_empty());
    }

    #[test]
    fn a_sha1_signature_is_weak_and_not_also_incomplete() {
        let facts = judge_material(&fixture("sha1.pem"), &fixture_trust(), NOW).unwrap();
        assert_eq!(facts.chain, ChainVerdict::Weak);
        assert!(facts.chain_problems().is_empty());
        assert_eq!(
            facts.weak,
            ["the leaf (CN=weak-sha1.example.com) is signed with SHA-1, which browsers reject"]
        );
        // Untrusted as well: then it is incomplete too, for its issuer.
        let untrusted = judge_material(&fixture("sha1.pem"), &Trust::public(), NOW).unwrap();
        assert!(
            matches!(untrusted.chain, ChainVerdict::Untrusted { .. }),
            "{:?}",
            untrusted.chain
        );
        assert_eq!(untrusted.weak.len(), 1);
    }

    #[test]
    fn a_judge_shared_by_many_chains_gives_the_verdicts_of_a_fresh_one() {
        use crate::model::certs::generate::{Signer, Spec};
        let root = Signer::new("Seed Root").unwrap();
        let int = root.intermediate("Shared Intermediate", false).unwrap();
        // A root of the same name as the intermediate, with another key.
        let impostor = Signer::new("Shared Intermediate").unwrap();
        let trust = Trust::with_anchors(
            &certs::parse_chain(root.root_pem().as_bytes())
                .unwrap()
                .certificates,
        )
        .unwrap();
        let leaf = |signer: &Signer, name: &str, days_left: i64| {
            let names = [name.to_string()];
            let g = signer
                .generate(&Spec {
                    common_name: name,
                    dns_names: &names,
                    not_before: NOW - days(10),
                    not_after: NOW + time::Duration::days(days_left),
                })
                .unwrap();
            certs::parse_chain(g.leaf_pem.as_bytes())
                .unwrap()
                .certificates
                .remove(0)
        };
        let int_der = certs::parse_chain(int.ca_pem().as_bytes())
            .unwrap()
            .certificates
            .remove(0);
        let chains: Vec<Vec<CertificateDer<'static>>> = vec![
            vec![leaf(&int, "a.example.com", 80), int_der.clone()],
            vec![leaf(&int, "b.example.com", 80), int_der.clone()],
            // Signed by the impostor, presented with the real intermediate: a bad signature.
            vec![leaf(&impostor, "c.example.com", 80), int_der.clone()],
            // Expired: verified at another moment than `now`, in full.
            vec![leaf(&int, "d.example.com", -1), int_der.clone()],
            vec![leaf(&int, "e.example.com", 80)],
        ];
        let shared = Judge::new(&trust, NOW);
        let verdicts: Vec<ChainVerdict> = chains
            .iter()
            .map(|c| shared.judge_chain(c).unwrap().chain)
            .collect();
        let fresh: Vec<ChainVerdict> = chains
            .iter()
            .map(|c| judge_chain(c, &trust, NOW).unwrap().chain)
            .collect();
        assert_eq!(verdicts, fresh);
        assert_eq!(verdicts[0], ChainVerdict::Trusted);
        assert_eq!(verdicts[1], ChainVerdict::Trusted);
        assert!(
            matches!(verdicts[2], ChainVerdict::Untrusted { .. }),
            "{:?}",
            verdicts[2]
        );
        assert_eq!(verdicts[3], ChainVerdict::Trusted);
        assert!(matches!(
            verdicts[4],
            ChainVerdict::Untrusted {
                leaf_alone: true,
                ..
            }
        ));
        assert_eq!(
            shared.verified.lock().unwrap().len(),
            1,
            "one intermediate remembered"
        );
    }

    #[test]
    fn bit_lengths_ignore_leading_zeros() {
        assert_eq!(bit_length(&[0x00, 0x80, 0x00]), 16);
        assert_eq!(bit_length(&[0x01, 0xff]), 9);
        assert_eq!(bit_length(&[0x00]), 0);
    }
}
