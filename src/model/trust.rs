//! What the watchdog trusts: the public roots (webpki-roots, as browsers ship them) plus the
//! user's own anchors (`edge.trust_anchors`), and one way to verify a chain against them.
//!
//! The same trust serves every check of the project: the chain of an uploaded certificate, the
//! files of a watch before an upload, and the chain the edge serves. Pure: `at` is a parameter.

use std::fmt;
use std::sync::Arc;

use rustls::pki_types::{CertificateDer, ServerName, TrustAnchor, UnixTime};
use time::OffsetDateTime;
use webpki::{EndEntityCert, KeyUsage};

/// The roots a chain may lead to. Cheap to clone.
#[derive(Clone)]
pub struct Trust {
    anchors: Arc<[TrustAnchor<'static>]>,
    /// How many of `anchors` came from the user (the rest are public roots).
    own: usize,
}

/// Why a chain does not verify, in words a user can act on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ChainProblem {
    Expired,
    NotYetValid,
    /// No path to a trusted root: an intermediate is missing, or the issuer is unknown.
    UnknownIssuer,
    /// The leaf does not cover the name (SANs only; no CN fallback).
    NameMismatch,
    /// A signature algorithm or key size no client accepts any more (SHA-1, MD5, RSA < 2048).
    WeakAlgorithm,
    /// Anything else webpki refuses, in its words.
    Other(String),
}

impl fmt::Display for ChainProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ChainProblem::Expired => write!(f, "a certificate of the chain has expired"),
            ChainProblem::NotYetValid => write!(f, "a certificate of the chain is not valid yet"),
            ChainProblem::UnknownIssuer => write!(
                f,
                "unknown issuer or incomplete chain: no path to a trusted root (an intermediate is missing, or the root is not trusted)"
            ),
            ChainProblem::NameMismatch => write!(f, "the certificate does not cover the name"),
            ChainProblem::WeakAlgorithm => write!(
                f,
                "a weak signature algorithm or key (SHA-1, MD5 or RSA under 2048 bits) that clients refuse"
            ),
            ChainProblem::Other(why) => write!(f, "{why}"),
        }
    }
}

impl Trust {
    /// The public roots only.
    pub fn public() -> Self {
        Self::with_anchors(&[]).expect("no anchor, nothing to refuse")
    }

    /// The public roots plus `own` (DER certificates the user trusts, e.g. an internal CA).
    /// Fails with the position (1-based) of a certificate that cannot be an anchor.
    pub fn with_anchors(own: &[CertificateDer<'_>]) -> Result<Self, (usize, String)> {
        let mut anchors: Vec<TrustAnchor<'static>> = Vec::with_capacity(own.len() + 160);
        for (i, der) in own.iter().enumerate() {
            let anchor = webpki::anchor_from_trusted_cert(der)
                .map_err(|e| (i + 1, format!("{e:?}")))?
                .to_owned();
            anchors.push(anchor);
        }
        anchors.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
        Ok(Self {
            anchors: anchors.into(),
            own: own.len(),
        })
    }

    /// How many anchors the user added.
    pub fn own_anchors(&self) -> usize {
        self.own
    }

    /// Verifies `chain` (leaf first, as served or uploaded; order of the rest does not matter to
    /// path building) for TLS server use at `at`, and, when `name` is given, for that name.
    pub fn verify(
        &self,
        chain: &[CertificateDer<'_>],
        name: Option<&str>,
        at: OffsetDateTime,
    ) -> Result<(), ChainProblem> {
        let Some((leaf, intermediates)) = chain.split_first() else {
            return Err(ChainProblem::Other("no certificate".into()));
        };
        let leaf = EndEntityCert::try_from(leaf).map_err(problem)?;
        let seconds = u64::try_from(at.unix_timestamp()).unwrap_or(0);
        let time = UnixTime::since_unix_epoch(std::time::Duration::from_secs(seconds));
        let algorithms = rustls::crypto::ring::default_provider()
            .signature_verification_algorithms
            .all;
        leaf.verify_for_usage(
            algorithms,
            &self.anchors,
            intermediates,
            time,
            KeyUsage::server_auth(),
            None,
            None,
        )
        .map_err(problem)?;
        if let Some(name) = name {
            let server_name = ServerName::try_from(name.to_string())
                .map_err(|_| ChainProblem::Other(format!("\"{name}\" is not a DNS name")))?;
            leaf.verify_is_valid_for_subject_name(&server_name)
                .map_err(problem)?;
        }
        Ok(())
    }
}

fn problem(e: webpki::Error) -> ChainProblem {
    use webpki::Error as E;
    match e {
        E::CertExpired { .. } => ChainProblem::Expired,
        E::CertNotValidYet { .. } => ChainProblem::NotYetValid,
        E::UnknownIssuer => ChainProblem::UnknownIssuer,
        E::CertNotValidForName(_) => ChainProblem::NameMismatch,
        E::UnsupportedSignatureAlgorithmContext(_)
        | E::UnsupportedSignatureAlgorithmForPublicKeyContext(_) => ChainProblem::WeakAlgorithm,
        other => ChainProblem::Other(format!("{other:?}")),
    }
}

impl fmt::Debug for Trust {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Trust")
            .field("public_roots", &(self.anchors.len() - self.own))
            .field("own_anchors", &self.own)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rcgen::{BasicConstraints, CertificateParams, IsCa, KeyPair};

    struct Pki {
        ca: CertificateDer<'static>,
        leaf: CertificateDer<'static>,
    }

    fn pki(name: &str, days: i64, now: OffsetDateTime) -> Pki {
        let ca_key = KeyPair::generate().unwrap();
        let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
        ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca_params.not_before = now - time::Duration::days(30);
        ca_params.not_after = now + time::Duration::days(3650);
        let ca = ca_params.self_signed(&ca_key).unwrap();
        let issuer = rcgen::Issuer::new(ca_params, ca_key);
        let leaf_key = KeyPair::generate().unwrap();
        let mut params = CertificateParams::new(vec![name.to_string()]).unwrap();
        params.not_before = now - time::Duration::days(1);
        params.not_after = now + time::Duration::days(days);
        let leaf = params.signed_by(&leaf_key, &issuer).unwrap();
        Pki {
            ca: ca.der().clone(),
            leaf: leaf.der().clone(),
        }
    }

    #[test]
    fn a_chain_to_an_own_anchor_verifies_and_names_are_checked() {
        let now = OffsetDateTime::now_utc();
        let p = pki("app.example.com", 90, now);
        let trust = Trust::with_anchors(std::slice::from_ref(&p.ca)).unwrap();
        let chain = [p.leaf.clone()];
        assert_eq!(trust.verify(&chain, Some("app.example.com"), now), Ok(()));
        assert_eq!(trust.verify(&chain, None, now), Ok(()));
        assert_eq!(
            trust.verify(&chain, Some("other.example.com"), now),
            Err(ChainProblem::NameMismatch)
        );
        assert_eq!(
            trust.verify(&chain, None, now + time::Duration::days(91)),
            Err(ChainProblem::Expired)
        );
        assert_eq!(
            Trust::public().verify(&chain, None, now),
            Err(ChainProblem::UnknownIssuer)
        );
        assert_eq!(trust.own_anchors(), 1);
        assert!(format!("{trust:?}").contains("own_anchors: 1"));
    }
}
