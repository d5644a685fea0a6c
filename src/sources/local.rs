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
use crate::model::text::format_time;

/// A validated pair, ready to upload.
pub struct LocalPair {
    pub chain: Chain,
    pub chain_pem: String,
    /// The key as read; a secret.
    pub key_pem: SecretString,
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

/// Everything that must hold before the pair is uploaded, at `now`.
pub fn validate(
    watch: &WatchSettings,
    files: &Files,
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
    // Also what a fullchain.pem caught half-written looks like: transient as well.
    if chain.certificates.len() == 1 && !chain.leaf.self_issued {
        return Err(Refusal::transient(format!(
            "{cert_file}: holds only the leaf certificate, without its issuer; use the full chain (certbot: fullchain.pem, not cert.pem), or clients that lack the intermediate fail"
        )));
    }
    if !chain.ordered {
        return Err(Refusal::permanent(format!(
            "{cert_file}: the chain is not in order: each certificate must be followed by its issuer, leaf first"
        )));
    }
    let key = certs::parse_private_key(key_bytes)
        .map_err(|e| Refusal::transient(format!("{key_file}: {e}")))?;
    if let Err(e) = certs::check_key_matches(&chain, &key) {
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
    covers(watch, leaf)?;
    let chain_pem = certs::to_pem(&chain.certificates);
    let key_pem = SecretString::from(String::from_utf8_lossy(key_bytes).into_owned());
    Ok(LocalPair {
        chain,
        chain_pem,
        key_pem,
    })
}

/// The leaf's DNS names must cover every watched domain. No fallback to the subject's CN:
/// browsers ignore it, so a certificate without DNS names covers nothing.
fn covers(watch: &WatchSettings, leaf: &certs::LeafInfo) -> Result<(), Refusal> {
    let uncovered = certs::uncovered(&leaf.dns_names, watch.domains.iter().map(String::as_str));
    if uncovered.is_empty() {
        return Ok(());
    }
    let names = if leaf.dns_names.is_empty() {
        "none; browsers ignore the subject's CN".to_string()
    } else {
        leaf.dns_names.join(", ")
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
