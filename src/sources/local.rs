//! Certificate files on disk (the desired state of a `[[watch]]`): read, validate, fingerprint.
//!
//! Nothing leaves the host unless [`validate`] accepts the pair. Reading is the only I/O here;
//! judging is pure, with `now` as a parameter.

use std::path::Path;
use std::time::{Duration, SystemTime};

use secrecy::SecretString;
use time::OffsetDateTime;

use crate::config::WatchSettings;
use crate::model::certs::{self, CertError, Chain};
use crate::model::fs;
use crate::model::judge::{self, CertFacts, ChainVerdict};
use crate::model::text::format_time;
use crate::model::trust::Trust;

/// A validated pair, ready to upload.
pub struct LocalPair {
    pub chain: Chain,
    pub chain_pem: String,
    /// The key as read; a secret.
    pub key_pem: SecretString,
    /// What is wrong with the pair without stopping its upload (a chain that does not verify
    /// while no `edge.trust_anchors` are set, a weak key or signature), one line each.
    pub warnings: Vec<String>,
}

impl std::fmt::Debug for LocalPair {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LocalPair")
            .field("fingerprint", &self.chain.leaf.fingerprint)
            .finish_non_exhaustive()
    }
}

/// Why a watch's files cannot be used (yet).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    /// One line, naming the file where it is about one.
    pub reason: String,
    pub kind: RefusalKind,
}

/// How long a refusal can last, which decides whether it is reported.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RefusalKind {
    /// The files are wrong until someone changes them.
    Permanent,
    /// The pair may be caught half-way through a renewal (certbot swaps one file at a time):
    /// reported only once the files have been still for `settle_timeout`.
    Transient,
    /// A good pair that is not valid yet: wait until it is (never an error).
    Early,
}

impl Refusal {
    fn permanent(reason: String) -> Self {
        Self {
            reason,
            kind: RefusalKind::Permanent,
        }
    }
    fn transient(reason: String) -> Self {
        Self {
            reason,
            kind: RefusalKind::Transient,
        }
    }
}

/// The bytes of a watch's files and when they last changed.
pub struct Files {
    pub certificate: Result<Vec<u8>, Refusal>,
    pub private_key: Result<Vec<u8>, Refusal>,
    /// The newest modification time of the two (symlinks followed).
    pub changed_at: Option<SystemTime>,
}

/// Reads both files, following symlinks; regular files only, at most 1 MiB each. Never fails:
/// what cannot be read is in the result. A missing file may be a swap caught half-way
/// (transient); a FIFO, a device or an oversized file is refused for good.
pub fn read(watch: &WatchSettings) -> Files {
    let read = |p: &Path| {
        fs::read_regular(p, fs::MAX_FILE_BYTES).map_err(|e| {
            let reason = format!("{}: {e}", p.display());
            match e {
                fs::ReadError::Io(io) if io.kind() == std::io::ErrorKind::NotFound => {
                    Refusal::transient(reason)
                }
                _ => Refusal::permanent(reason),
            }
        })
    };
    let mtime = |p: &Path| std::fs::metadata(p).and_then(|m| m.modified()).ok();
    Files {
        certificate: read(&watch.certificate),
        private_key: read(&watch.private_key),
        changed_at: [mtime(&watch.certificate), mtime(&watch.private_key)]
            .into_iter()
            .flatten()
            .max(),
    }
}

/// A file that could not be read, as reported when nothing could be read in time (a hung
/// network mount).
pub fn unread(watch: &WatchSettings, why: &str) -> Files {
    let refusal = |p: &Path| Err(Refusal::permanent(format!("{}: {why}", p.display())));
    Files {
        certificate: refusal(&watch.certificate),
        private_key: refusal(&watch.private_key),
        changed_at: None,
    }
}

/// Everything that must hold before the pair is uploaded, at `now`, with the chain judged
/// against `trust` by the same rules as the account's certificates (`model::judge`).
pub fn validate(
    watch: &WatchSettings,
    files: &Files,
    trust: &Trust,
    now: OffsetDateTime,
) -> Result<LocalPair, Refusal> {
    let cert_file = watch.certificate.display();
    let key_file = watch.private_key.display();
    let cert_bytes = files.certificate.as_ref().map_err(Clone::clone)?;
    let key_bytes = files.private_key.as_ref().map_err(Clone::clone)?;
    // A file that does not parse may be half-written (a renewal caught mid-write, a key where
    // the certificate should be during a swap): transient, reported once the files settle.
    let chain = certs::parse_chain(cert_bytes)
        .map_err(|e| Refusal::transient(format!("{cert_file}: {e}")))?;
    let facts = judge::judge_chain(&chain.certificates, trust, now)
        .map_err(|e| Refusal::transient(format!("{cert_file}: {e}")))?;
    if let ChainVerdict::Untrusted {
        leaf_alone: true, ..
    } = facts.chain
    {
        // Also what a fullchain.pem caught half-written looks like: transient as well.
        return Err(Refusal::transient(format!(
            "{cert_file}: holds only the leaf certificate, without its issuer; use the full chain (certbot: fullchain.pem, not cert.pem), or clients that lack the intermediate fail"
        )));
    }
    if let Some(order) = &facts.order {
        return Err(Refusal::permanent(format!("{cert_file}: {order}")));
    }
    let key = certs::parse_private_key(key_bytes)
        .map_err(|e| Refusal::transient(format!("{key_file}: {e}")))?;
    if let Err(e) = certs::check_key_matches(&chain, &key) {
        if let (CertError::BadKey, Some(weak)) = (&e, facts.weak_leaf_key()) {
            // ring loads no RSA key under 2048 bits, so such a pair cannot be checked.
            return Err(Refusal::permanent(format!(
                "{key_file}: cannot be matched with {cert_file}, because {weak}: no client accepts it any more; use a 2048-bit RSA or an ECDSA P-256 key"
            )));
        }
        let reason = format!("{key_file}: {e} in {cert_file}");
        // Certbot re-points live/ links one at a time: a new certificate beside the old key.
        return Err(match e {
            CertError::KeyMismatch => Refusal::transient(reason),
            _ => Refusal::permanent(reason),
        });
    }
    let leaf = &chain.leaf;
    if leaf.not_before > now {
        return Err(Refusal {
            reason: format!(
                "{cert_file}: not valid before {}",
                format_time(leaf.not_before)
            ),
            kind: RefusalKind::Early,
        });
    }
    if leaf.not_after <= now {
        return Err(Refusal::permanent(format!(
            "{cert_file}: expired {}",
            format_time(leaf.not_after)
        )));
    }
    covers(watch, &facts)?;
    let warnings = chain_warnings(watch, &facts, trust)?;
    let chain_pem = certs::to_pem(&chain.certificates);
    let key_pem = SecretString::from(String::from_utf8_lossy(key_bytes).into_owned());
    Ok(LocalPair {
        chain,
        chain_pem,
        key_pem,
        warnings,
    })
}

/// A chain that does not verify is refused when the user said what to trust
/// (`edge.trust_anchors`); otherwise it is uploaded with a warning, like a weak one, so a
/// private CA without configured anchors keeps working.
fn chain_warnings(
    watch: &WatchSettings,
    facts: &CertFacts,
    trust: &Trust,
) -> Result<Vec<String>, Refusal> {
    let cert_file = watch.certificate.display();
    let mut warnings = Vec::new();
    if let ChainVerdict::Untrusted { reason, .. } = &facts.chain {
        if trust.own_anchors() > 0 {
            return Err(Refusal::permanent(format!(
                "{cert_file}: {reason} (edge.trust_anchors is set, so the chain must verify to it or to a public root)"
            )));
        }
        warnings.push(format!("certificate_chain_incomplete: {reason}"));
    }
    warnings.extend(facts.weak.iter().map(|w| format!("certificate_weak: {w}")));
    Ok(warnings)
}

/// The leaf's DNS names must cover every watched domain. No fallback to the subject's CN:
/// browsers ignore it, so a certificate without DNS names covers nothing.
fn covers(watch: &WatchSettings, facts: &CertFacts) -> Result<(), Refusal> {
    let uncovered = facts.uncovered(watch.domains.iter().map(String::as_str));
    if uncovered.is_empty() {
        return Ok(());
    }
    let names = if facts.dns_names.is_empty() {
        "none; browsers ignore the subject's CN".to_string()
    } else {
        facts.dns_names.join(", ")
    };
    Err(Refusal::permanent(format!(
        "{}: does not cover {} (its DNS names: {names})",
        watch.certificate.display(),
        uncovered.join(", "),
    )))
}

/// Whether a transient refusal has lasted long enough to report: `settle_timeout` after the
/// files last changed.
pub fn settled(files: &Files, settle_timeout: Duration, now: OffsetDateTime) -> bool {
    match files.changed_at {
        Some(changed) => {
            SystemTime::from(now)
                .duration_since(changed)
                .unwrap_or_default()
                >= settle_timeout
        }
        None => true,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::certs::generate::{Signer, Spec};
    use time::macros::datetime;

    const NOW: OffsetDateTime = datetime!(2027-01-01 12:00 UTC);

    fn watch(domains: &[&str]) -> WatchSettings {
        WatchSettings::for_test(domains)
    }

    fn files(chain_pem: &str, key_pem: &str) -> Files {
        Files {
            certificate: Ok(chain_pem.as_bytes().to_vec()),
            private_key: Ok(key_pem.as_bytes().to_vec()),
            changed_at: None,
        }
    }

    /// A leaf for `sans` (CN app.example.com) under an intermediate of `root`: (chain, leaf
    /// alone, key).
    fn pair(root: &Signer, sans: &[&str]) -> (String, String, String) {
        let sans: Vec<String> = sans.iter().map(|s| s.to_string()).collect();
        let g = root
            .intermediate("Test Intermediate", false)
            .and_then(|int| {
                int.generate(&Spec {
                    common_name: "app.example.com",
                    dns_names: &sans,
                    not_before: NOW - time::Duration::days(1),
                    not_after: NOW + time::Duration::days(89),
                })
            })
            .unwrap();
        (g.chain_pem, g.leaf_pem, g.key_pem)
    }

    fn anchors(pems: &[&str]) -> Trust {
        let chain = certs::parse_chain(pems.concat().as_bytes()).unwrap();
        Trust::with_anchors(&chain.certificates).unwrap()
    }

    #[test]
    fn names_are_matched_on_sans_without_a_cn_fallback() {
        let root = Signer::new("Test Root").unwrap();
        let trust = anchors(&[root.root_pem()]);
        let w = watch(&["app.example.com"]);
        let (chain, _, key) = pair(&root, &["app.example.com"]);
        let ok = validate(&w, &files(&chain, &key), &trust, NOW).unwrap();
        assert!(ok.warnings.is_empty(), "{:?}", ok.warnings);
        // The CN is app.example.com, but there is no DNS name: refused, saying why.
        let (chain, _, key) = pair(&root, &[]);
        let refusal = validate(&w, &files(&chain, &key), &trust, NOW).unwrap_err();
        assert_eq!(refusal.kind, RefusalKind::Permanent);
        assert_eq!(
            refusal.reason,
            "/certs/fullchain.pem: does not cover app.example.com (its DNS names: none; browsers ignore the subject's CN)"
        );
    }

    #[test]
    fn a_chain_that_does_not_verify_is_refused_only_when_anchors_are_set() {
        let root = Signer::new("Private Root").unwrap();
        let w = watch(&["app.example.com"]);
        let (chain, leaf, key) = pair(&root, &["app.example.com"]);
        // No anchors configured: uploaded, with the warning.
        let pair = validate(&w, &files(&chain, &key), &Trust::public(), NOW).unwrap();
        assert_eq!(pair.warnings.len(), 1, "{:?}", pair.warnings);
        assert!(
            pair.warnings[0]
                .starts_with("certificate_chain_incomplete: it does not lead to a trusted root"),
            "{:?}",
            pair.warnings
        );
        // Anchors configured, but not this root: refused for good.
        let other = Signer::new("Other Root").unwrap();
        let refusal =
            validate(&w, &files(&chain, &key), &anchors(&[other.root_pem()]), NOW).unwrap_err();
        assert_eq!(refusal.kind, RefusalKind::Permanent);
        assert!(
            refusal.reason.contains("edge.trust_anchors is set"),
            "{refusal:?}"
        );
        // Its own root among the anchors: fine.
        let trusted = anchors(&[other.root_pem(), root.root_pem()]);
        assert!(validate(&w, &files(&chain, &key), &trusted, NOW)
            .unwrap()
            .warnings
            .is_empty());
        // A leaf alone is refused either way (as a fullchain.pem caught half-written).
        for trust in [Trust::public(), trusted] {
            let refusal = validate(&w, &files(&leaf, &key), &trust, NOW).unwrap_err();
            assert_eq!(refusal.kind, RefusalKind::Transient);
            assert!(
                refusal.reason.contains("holds only the leaf"),
                "{refusal:?}"
            );
        }
    }

    #[test]
    fn intermediates_in_the_wrong_order_are_refused() {
        let root = Signer::new("Test Root").unwrap();
        let upper = root.intermediate("Upper", false).unwrap();
        let lower = upper.intermediate("Lower", false).unwrap();
        let names = ["app.example.com".to_string()];
        let g = lower
            .generate(&Spec {
                common_name: "app.example.com",
                dns_names: &names,
                not_before: NOW - time::Duration::days(1),
                not_after: NOW + time::Duration::days(89),
            })
            .unwrap();
        let w = watch(&["app.example.com"]);
        let trust = anchors(&[root.root_pem()]);
        let right = format!("{}{}{}", g.leaf_pem, lower.ca_pem(), upper.ca_pem());
        assert!(validate(&w, &files(&right, &g.key_pem), &trust, NOW).is_ok());
        let wrong = format!("{}{}{}", g.leaf_pem, upper.ca_pem(), lower.ca_pem());
        let refusal = validate(&w, &files(&wrong, &g.key_pem), &trust, NOW).unwrap_err();
        assert_eq!(refusal.kind, RefusalKind::Permanent);
        assert!(refusal.reason.contains("not in order"), "{refusal:?}");
    }

    #[test]
    fn weak_pairs_are_named() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/weak");
        let read = |name: &str| std::fs::read_to_string(dir.join(name)).unwrap();
        let trust = anchors(&[&read("root.pem")]);
        let now = NOW;
        // SHA-1: uploaded with a warning (and reported as certificate_weak once attached).
        let w = watch(&["weak-sha1.example.com"]);
        let pair = validate(
            &w,
            &files(&read("sha1.pem"), &read("sha1.key")),
            &trust,
            now,
        )
        .unwrap();
        assert_eq!(
            pair.warnings,
            ["certificate_weak: the leaf (CN=weak-sha1.example.com) is signed with SHA-1, which browsers reject"]
        );
        // RSA-1024: the key cannot even be loaded to match it with the certificate.
        let w = watch(&["weak-rsa1024.example.com"]);
        let refusal = validate(
            &w,
            &files(&read("rsa1024.pem"), &read("rsa1024.key")),
            &trust,
            now,
        )
        .unwrap_err();
        assert_eq!(refusal.kind, RefusalKind::Permanent);
        assert!(
            refusal.reason.contains("has a 1024-bit RSA key"),
            "{refusal:?}"
        );
        // A key that does not load beside a chain weak elsewhere (its SHA-1 signature) is
        // the key's fault, not the signature's.
        let w = watch(&["weak-sha1.example.com"]);
        let garbage = "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n";
        let refusal = validate(&w, &files(&read("sha1.pem"), garbage), &trust, now).unwrap_err();
        assert_eq!(refusal.kind, RefusalKind::Permanent);
        assert!(
            refusal
                .reason
                .contains("does not parse or is of an unsupported type")
                && !refusal.reason.contains("SHA-1"),
            "{refusal:?}"
        );
    }
}
