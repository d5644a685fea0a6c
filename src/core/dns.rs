//! Pure DNS diagnosis: what one pass found in DNS ([`crate::sources::dns::DomainDns`]) → what
//! is wrong with each custom domain, in the user's words with the exact record to create; the
//! `dns_misconfigured` findings, the diagnosis inside a `DNS_ERROR` finding, and the values of
//! `ngrok_reserved_domain_dns_ok`. No I/O.
//!
//! A lookup that gave nothing to judge (a timeout, SERVFAIL) is "could not check": never a
//! finding of misconfiguration, and no `dns_ok` value.

use std::net::IpAddr;

use crate::core::evaluate::sort;
use crate::model::{Finding, FindingKind, Severity};
use crate::sources::dns::{Caa, CaaRecord, ChainEnd, DomainDns, Pointing, MAX_CHAIN};
use crate::sources::inventory::Inventory;
use crate::sources::ngrok::ReservedDomain;

/// The CAA issuer domain of the only authority ngrok's managed certificates use
/// (`certificate_management_policy.authority = "letsencrypt"`).
pub const CA_DOMAIN: &str = "letsencrypt.org";

/// The judgement of one domain's DNS.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// Everything checked leads where it should; `notes` are what cannot be judged from here.
    Right { notes: Vec<String> },
    /// What is wrong, each with the record to create; `notes` as above, and what could not be
    /// checked.
    Wrong {
        problems: Vec<String>,
        notes: Vec<String>,
    },
    /// Nothing was found wrong, but a lookup gave nothing to judge.
    Unchecked { reason: String },
}

impl Verdict {
    /// For `ngrok_reserved_domain_dns_ok`: `None` when it could not be checked.
    pub fn ok(&self) -> Option<bool> {
        match self {
            Verdict::Right { .. } => Some(true),
            Verdict::Wrong { .. } => Some(false),
            Verdict::Unchecked { .. } => None,
        }
    }
}

/// What one check of a name concluded.
enum Outcome {
    Right,
    Wrong(String),
    Note(String),
    Unchecked(String),
}

/// Judges one domain's facts. `managed`: whether its certificates are ngrok-managed now (CAA
/// matters only then).
pub fn judge(facts: &DomainDns, managed: bool) -> Verdict {
    let mut outcomes = vec![pointing(&facts.target, Purpose::Domain)];
    if let Some(acme) = &facts.acme {
        outcomes.push(acme_challenge(acme, &facts.domain, &facts.target.target));
    }
    if let (true, Some(caa)) = (managed, &facts.caa) {
        outcomes.push(caa_outcome(caa, facts.domain.starts_with("*.")));
    }
    let mut problems = Vec::new();
    let mut notes = Vec::new();
    let mut unchecked = Vec::new();
    for outcome in outcomes {
        match outcome {
            Outcome::Right => {}
            Outcome::Wrong(p) => problems.push(p),
            Outcome::Note(n) => notes.push(n),
            Outcome::Unchecked(u) => unchecked.push(u),
        }
    }
    if !problems.is_empty() {
        notes.extend(unchecked);
        Verdict::Wrong { problems, notes }
    } else if !unchecked.is_empty() {
        Verdict::Unchecked {
            reason: unchecked.join("; "),
        }
    } else {
        Verdict::Right { notes }
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Purpose {
    /// The domain itself → its `cname_target`.
    Domain,
    /// `_acme-challenge.<base>` → the `acme_challenge_cname_target`.
    AcmeChallenge,
}

/// Whether `p.name` leads to `p.target`, and if not, what to create instead.
fn pointing(p: &Pointing, purpose: Purpose) -> Outcome {
    let (name, target) = (&p.name, &p.target);
    let record = if p.apex && purpose == Purpose::Domain {
        format!("an ALIAS (or ANAME) record {name} → {target}, or your DNS provider's CNAME flattening: a zone apex cannot hold a CNAME")
    } else {
        format!("CNAME {name} → {target}")
    };
    let hops = &p.chain.hops;
    let path = || format!("{name} → {}", hops.join(" → "));
    match &p.chain.end {
        ChainEnd::Target => Outcome::Right,
        ChainEnd::Unchecked(e) => Outcome::Unchecked(format!("could not check {name}: {e}")),
        ChainEnd::Loop => Outcome::Wrong(format!(
            "the CNAME chain of {name} loops ({}); replace the CNAME of {name} with {record}",
            path()
        )),
        ChainEnd::TooLong => Outcome::Wrong(format!(
            "the CNAME chain of {name} is longer than {MAX_CHAIN} ({} …); point it straight at the target: {record}",
            path()
        )),
        ChainEnd::Addresses(found) if found.is_empty() => {
            Outcome::Wrong(match (hops.last(), purpose, p.apex) {
                (Some(last), _, _) => format!(
                    "{name}: CNAME points at {last}, which has no address; change it to {record}"
                ),
                (None, Purpose::AcmeChallenge, _) => {
                    format!("{name} has no CNAME record; create {record}")
                }
                (None, Purpose::Domain, true) => {
                    format!("{name} has no A or AAAA record; create {record}")
                }
                (None, Purpose::Domain, false) => {
                    format!("{name} has no record at all; create {record}")
                }
            })
        }
        ChainEnd::Addresses(found) => addresses(p, found, &record, purpose),
    }
}

/// The `_acme-challenge` name of a wildcard. Without a record of its own, the wildcard itself
/// answers for it (a CNAME to the domain's own target): said so, since the zone looks right.
fn acme_challenge(p: &Pointing, wildcard: &str, wildcard_target: &str) -> Outcome {
    let through_wildcard = p.chain.end != ChainEnd::Target
        && p.chain.hops.first().map(String::as_str) == Some(wildcard_target);
    if through_wildcard {
        return Outcome::Wrong(format!(
            "{} has no CNAME record of its own (the wildcard {wildcard} answers for it, with {wildcard_target}); create CNAME {} → {}",
            p.name, p.name, p.target
        ));
    }
    pointing(p, Purpose::AcmeChallenge)
}

/// A chain that ends in addresses other than at the target: right when they are the target's
/// own (an ALIAS or a flattened CNAME), else the record to replace.
fn addresses(p: &Pointing, found: &[IpAddr], record: &str, purpose: Purpose) -> Outcome {
    let name = &p.name;
    match &p.target_addresses {
        Some(Ok(theirs)) if found.iter().all(|a| theirs.contains(a)) => {
            if purpose == Purpose::AcmeChallenge {
                // The ACME challenge needs the CNAME itself: TXT records live at the target.
                return Outcome::Wrong(format!(
                    "{name} has address records instead of a CNAME; replace them with {record}"
                ));
            }
            return Outcome::Right;
        }
        Some(Err(e)) if purpose == Purpose::Domain => {
            return Outcome::Unchecked(format!(
                "{name} has {} but the addresses of {} could not be looked up to compare: {e}",
                describe(found),
                p.target
            ))
        }
        _ => {}
    }
    Outcome::Wrong(match p.chain.hops.last() {
        Some(last) => format!(
            "{name}: CNAME points at {last} ({}); change it to {record}",
            describe(found)
        ),
        None => format!("{name} has {}; replace it with {record}", describe(found)),
    })
}

/// "an A record 203.0.113.7", "A records 203.0.113.7, 203.0.113.8", "an AAAA record ::1".
fn describe(found: &[IpAddr]) -> String {
    let list = found
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(", ");
    let v4 = found.iter().any(IpAddr::is_ipv4);
    let v6 = found.iter().any(IpAddr::is_ipv6);
    let kind = match (v4, v6) {
        (true, true) => "A/AAAA",
        (false, true) => "AAAA",
        _ => "A",
    };
    match found.len() {
        1 if kind == "A" => format!("an A record {list}"),
        1 => format!("an {kind} record {list}"),
        _ => format!("{kind} records {list}"),
    }
}

/// One `issue`/`issuewild` value (RFC 8659 §4.2): the issuer domain (empty: no CA) and the
/// parameters.
fn issuer(value: &str) -> (String, Vec<(String, String)>) {
    let mut parts = value.split(';');
    let domain = parts
        .next()
        .unwrap_or_default()
        .trim()
        .trim_end_matches('.')
        .to_ascii_lowercase();
    let params = parts
        .filter_map(|p| {
            let (k, v) = p.trim().split_once('=')?;
            Some((k.trim().to_ascii_lowercase(), v.trim().to_string()))
        })
        .collect();
    (domain, params)
}

/// Whether CAA lets Let's Encrypt issue for the name (RFC 8659 §4): the relevant set is the
/// `issuewild` records for a wildcard that has any, else the `issue` records; none at all lets
/// every CA issue; `issue ";"` lets none; an unknown tag flagged critical stops every CA.
fn caa_outcome(caa: &Caa, wildcard: bool) -> Outcome {
    let (at, records) = match caa {
        Caa::Nowhere => return Outcome::Right,
        Caa::Unchecked(e) => return Outcome::Unchecked(format!("could not check CAA: {e}")),
        Caa::Found { at, records } => (at, records),
    };
    let known = [
        "issue",
        "issuewild",
        "iodef",
        "contactemail",
        "contactphone",
    ];
    if let Some(r) = records
        .iter()
        .find(|r| r.critical && !known.contains(&r.tag.as_str()))
    {
        return Outcome::Wrong(format!(
            "CAA on {at} has the critical property `{}`, which no CA may ignore, so Let's Encrypt will not issue; remove the record or its critical flag (128)",
            r.tag
        ));
    }
    let tag = if wildcard && records.iter().any(|r| r.tag == "issuewild") {
        "issuewild"
    } else {
        "issue"
    };
    let relevant: Vec<&CaaRecord> = records.iter().filter(|r| r.tag == tag).collect();
    if relevant.is_empty() {
        return Outcome::Right;
    }
    let parsed: Vec<_> = relevant.iter().map(|r| issuer(&r.value)).collect();
    let fix = format!("add CAA {at} 0 {tag} \"{CA_DOMAIN}\"");
    if let Some((_, params)) = parsed.iter().find(|(d, _)| d == CA_DOMAIN) {
        let limits: Vec<String> = params
            .iter()
            .filter(|(k, _)| k == "accounturi" || k == "validationmethods")
            .map(|(k, v)| format!("{k}={v}"))
            .collect();
        if limits.is_empty() {
            return Outcome::Right;
        }
        return Outcome::Note(format!(
            "CAA on {at} limits {CA_DOMAIN} to {}, which cannot be judged from here: if ngrok cannot renew the certificate, {fix} without parameters",
            limits.join(", ")
        ));
    }
    let mut allowed: Vec<&str> = parsed
        .iter()
        .map(|(d, _)| d.as_str())
        .filter(|d| !d.is_empty())
        .collect();
    allowed.sort_unstable();
    allowed.dedup();
    Outcome::Wrong(if allowed.is_empty() {
        format!("CAA on {at} forbids every CA ({tag} \";\"); {fix}")
    } else {
        format!(
            "CAA on {at} allows only {} ({tag}), not {CA_DOMAIN}, which ngrok uses; {fix}",
            allowed.join(", ")
        )
    })
}

/// The verdict of every diagnosed domain that the inventory still has, as diagnosed: a domain
/// gone since, or whose targets changed, is left out until the next pass looks again.
pub fn verdicts<'a>(
    inventory: &'a Inventory,
    diagnosis: &'a [DomainDns],
) -> impl Iterator<Item = (&'a ReservedDomain, Verdict)> + 'a {
    diagnosis.iter().filter_map(|facts| {
        let domain = inventory
            .domains()
            .iter()
            .find(|d| d.id == facts.domain_id)?;
        let current = |t: &Option<String>| {
            t.as_deref()
                .map(|t| t.trim_end_matches('.').to_ascii_lowercase())
        };
        let same_target =
            current(&domain.cname_target).as_deref() == Some(facts.target.target.as_str());
        let same_acme = current(&domain.acme_challenge_cname_target)
            == facts.acme.as_ref().map(|a| a.target.clone());
        let wildcard = domain.domain.starts_with("*.");
        (same_target && (same_acme || !wildcard))
            .then(|| (domain, judge(facts, domain.is_managed())))
    })
}

/// `ngrok_reserved_domain_dns_ok{domain}`: 1 right, 0 wrong; absent when it could not be checked.
pub fn dns_ok(inventory: &Inventory, diagnosis: &[DomainDns]) -> Vec<(String, bool)> {
    verdicts(inventory, diagnosis)
        .filter_map(|(d, v)| v.ok().map(|ok| (d.domain.clone(), ok)))
        .collect()
}

/// Whether the domain's trouble is one DNS explains: a `DNS_ERROR`, or a managed domain that has
/// no certificate.
fn explains(domain: &ReservedDomain) -> bool {
    let dns_error = domain
        .provisioning_job()
        .and_then(|j| j.error_code.as_deref())
        == Some("DNS_ERROR");
    dns_error || (domain.is_managed() && domain.certificate.is_none())
}

/// Adds the `dns_misconfigured` findings of `diagnosis` to `findings` (critical where the DNS
/// explains a `DNS_ERROR` or a managed domain without a certificate, else warning; info for what
/// cannot be judged from here), writes the diagnosis into each `DNS_ERROR` finding, and sorts.
pub fn apply(inventory: &Inventory, diagnosis: &[DomainDns], findings: &mut Vec<Finding>) {
    for (domain, verdict) in verdicts(inventory, diagnosis) {
        let name = &domain.domain;
        let diagnosis_text = match &verdict {
            Verdict::Wrong { problems, .. } => format!("DNS as seen from here: {}", problems.join("; ")),
            Verdict::Right { .. } => format!("DNS as seen from here leads to {} as it should, so ngrok may not have retried since it was fixed", domain.cname_target.as_deref().unwrap_or_default()),
            Verdict::Unchecked { reason } => format!("DNS could not be checked from here: {reason}"),
        };
        for f in findings.iter_mut().filter(|f| {
            f.kind == FindingKind::ProvisioningFailed
                && f.resource_id == domain.id
                && f.message.contains("DNS_ERROR")
        }) {
            f.message = format!("{} — {diagnosis_text}", f.message);
        }
        let (severity, message) = match verdict {
            Verdict::Wrong { problems, notes } => {
                let severity = if explains(domain) {
                    Severity::Critical
                } else {
                    Severity::Warning
                };
                let mut text = format!("DNS of {name} is wrong: {}", problems.join("; "));
                if !notes.is_empty() {
                    text.push_str(&format!(" (also: {})", notes.join("; ")));
                }
                (severity, text)
            }
            Verdict::Right { notes } if !notes.is_empty() => (
                Severity::Info,
                format!("DNS of {name}: {}", notes.join("; ")),
            ),
            _ => continue,
        };
        findings.push(Finding {
            severity,
            kind: FindingKind::DnsMisconfigured,
            resource_id: domain.id.clone(),
            domain: Some(name.clone()),
            message,
            not_after: None,
        });
    }
    sort(findings);
}
