//! Pure DNS diagnosis: what one pass found in DNS ([`crate::sources::dns::DomainDns`]) → what
//! is wrong with each custom domain, in the user's words with the exact record to create; the
//! `dns_misconfigured` findings, the diagnosis inside a `DNS_ERROR` finding, and the values of
//! `ngrok_reserved_domain_dns_ok`. No I/O.
//!
//! A lookup that gave nothing to judge (a timeout, SERVFAIL) is "could not check": never a
//! finding of misconfiguration, and no `dns_ok` value.

use std::collections::HashMap;
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
    let by_id: HashMap<&str, &ReservedDomain> = inventory
        .domains()
        .iter()
        .map(|d| (d.id.as_str(), d))
        .collect();
    diagnosis.iter().filter_map(move |facts| {
        let domain = *by_id.get(facts.domain_id.as_str())?;
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

/// Whether the domain's trouble is one DNS explains: a `DNS_ERROR`, or a managed domain that has
/// no certificate.
fn explains(domain: &ReservedDomain) -> bool {
    dns_error(domain) || (domain.is_managed() && domain.certificate.is_none())
}

/// The domain's certificate job failed with `DNS_ERROR`.
fn dns_error(domain: &ReservedDomain) -> bool {
    domain
        .provisioning_job()
        .and_then(|j| j.error_code.as_deref())
        == Some("DNS_ERROR")
}

/// Adds the `dns_misconfigured` findings of `diagnosis` to `findings` (critical where the DNS
/// explains a `DNS_ERROR` or a managed domain without a certificate, else warning; info for what
/// cannot be judged from here), writes the diagnosis into each `DNS_ERROR` finding, and sorts.
/// Returns `ngrok_reserved_domain_dns_ok{domain}`: true right, false wrong, absent when it
/// could not be checked.
pub fn apply(
    inventory: &Inventory,
    diagnosis: &[DomainDns],
    findings: &mut Vec<Finding>,
) -> Vec<(String, bool)> {
    let mut dns_ok = Vec::new();
    // Domain id → what DNS says, for the domains whose job failed with DNS_ERROR; written into
    // their findings below in one pass over the findings.
    let mut explained: HashMap<&str, String> = HashMap::new();
    let mut added = Vec::new();
    for (domain, verdict) in verdicts(inventory, diagnosis) {
        let name = &domain.domain;
        if let Some(ok) = verdict.ok() {
            dns_ok.push((name.clone(), ok));
        }
        if dns_error(domain) {
            let text = match &verdict {
                Verdict::Wrong { problems, .. } => format!("DNS as seen from here: {}", problems.join("; ")),
                Verdict::Right { .. } => format!("DNS as seen from here leads to {} as it should, so ngrok may not have retried since it was fixed", domain.cname_target.as_deref().unwrap_or_default()),
                Verdict::Unchecked { reason } => format!("DNS could not be checked from here: {reason}"),
            };
            explained.insert(domain.id.as_str(), text);
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
        added.push(Finding {
            severity,
            kind: FindingKind::DnsMisconfigured,
            resource_id: domain.id.clone(),
            domain: Some(name.clone()),
            message,
            not_after: None,
        });
    }
    for f in findings
        .iter_mut()
        .filter(|f| f.kind == FindingKind::ProvisioningFailed)
    {
        if let Some(text) = explained.get(f.resource_id.as_str()) {
            f.message = format!("{} — {text}", f.message);
        }
    }
    findings.extend(added);
    sort(findings);
    dns_ok
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sources::dns::{Chain, Unchecked};
    use std::collections::BTreeSet;
    use time::macros::datetime;

    const T: &str = "x.y.ngrok-cname.com";

    fn chain(hops: &[&str], end: ChainEnd) -> Chain {
        Chain {
            hops: hops.iter().map(|h| h.to_string()).collect(),
            end,
        }
    }

    fn pointing_to(name: &str, chain: Chain) -> Pointing {
        Pointing {
            name: name.into(),
            target: T.into(),
            chain,
            apex: false,
            target_addresses: None,
        }
    }

    fn facts(domain: &str, target: Pointing, caa: Option<Caa>) -> DomainDns {
        DomainDns {
            domain_id: "rd_1".into(),
            domain: domain.into(),
            target,
            acme: None,
            caa,
        }
    }

    fn right(name: &str) -> Pointing {
        pointing_to(name, chain(&[T], ChainEnd::Target))
    }

    fn caa(records: &[(bool, &str, &str)]) -> Caa {
        Caa::Found {
            at: "example.com".into(),
            records: records
                .iter()
                .map(|(critical, tag, value)| CaaRecord {
                    critical: *critical,
                    tag: tag.to_string(),
                    value: value.to_string(),
                })
                .collect(),
        }
    }

    fn problems(v: &Verdict) -> String {
        match v {
            Verdict::Wrong { problems, .. } => problems.join("; "),
            other => panic!("not wrong: {other:?}"),
        }
    }

    #[test]
    fn caa_follows_rfc_8659() {
        let judge_caa = |domain: &str, c: Caa| judge(&facts(domain, right(domain), Some(c)), true);
        let ok = |v: Verdict| assert_eq!(v, Verdict::Right { notes: vec![] });
        ok(judge_caa("a.example.com", Caa::Nowhere));
        ok(judge_caa(
            "a.example.com",
            caa(&[(false, "iodef", "mailto:x@example.com")]),
        ));
        ok(judge_caa(
            "a.example.com",
            caa(&[
                (false, "issue", "digicert.com"),
                (false, "issue", " LetsEncrypt.org "),
            ]),
        ));
        // issuewild decides for wildcards only, and only when there is one.
        let wild_only_digicert = caa(&[
            (false, "issue", "letsencrypt.org"),
            (false, "issuewild", "digicert.com"),
        ]);
        ok(judge_caa("a.example.com", wild_only_digicert.clone()));
        assert!(problems(&judge_caa("*.example.com", wild_only_digicert))
            .contains("allows only digicert.com (issuewild)"));
        ok(judge_caa(
            "*.example.com",
            caa(&[(false, "issue", "letsencrypt.org")]),
        ));
        assert!(
            problems(&judge_caa("*.example.com", caa(&[(false, "issue", ";")])))
                .contains("forbids every CA (issue \";\")")
        );
        // An unknown property flagged critical stops every CA; unflagged it is ignored.
        assert!(problems(&judge_caa(
            "a.example.com",
            caa(&[(true, "tbs", "x"), (false, "issue", "letsencrypt.org")])
        ))
        .contains("critical property `tbs`"));
        ok(judge_caa(
            "a.example.com",
            caa(&[(false, "tbs", "x"), (false, "issue", "letsencrypt.org")]),
        ));
        // Parameters cannot be judged: a note, still right.
        match judge_caa(
            "a.example.com",
            caa(&[(false, "issue", "letsencrypt.org; validationmethods=dns-01")]),
        ) {
            Verdict::Right { notes } => {
                assert!(notes[0].contains("validationmethods=dns-01"), "{notes:?}")
            }
            other => panic!("{other:?}"),
        }
        // Not managed: CAA is none of ngrok's business.
        let forbidding = facts(
            "a.example.com",
            right("a.example.com"),
            Some(caa(&[(false, "issue", ";")])),
        );
        assert_eq!(judge(&forbidding, false), Verdict::Right { notes: vec![] });
        // Could not check.
        let unchecked = judge_caa("a.example.com", Caa::Unchecked(Unchecked("timeout".into())));
        assert_eq!(
            unchecked,
            Verdict::Unchecked {
                reason: "could not check CAA: timeout".into()
            }
        );
    }

    #[test]
    fn addresses_are_right_only_when_they_are_the_targets() {
        let ip = |s: &str| -> IpAddr { s.parse().unwrap() };
        let mut flattened = pointing_to(
            "example.com",
            chain(&[], ChainEnd::Addresses(vec![ip("192.0.2.1")])),
        );
        flattened.apex = true;
        flattened.target_addresses = Some(Ok(vec![ip("192.0.2.1"), ip("192.0.2.2")]));
        assert_eq!(
            judge(&facts("example.com", flattened.clone(), None), false),
            Verdict::Right { notes: vec![] }
        );
        flattened.target_addresses = Some(Ok(vec![ip("192.0.2.2")]));
        let text = problems(&judge(
            &facts("example.com", flattened.clone(), None),
            false,
        ));
        assert!(text.contains("example.com has an A record 192.0.2.1; replace it with an ALIAS (or ANAME) record example.com → x.y.ngrok-cname.com"), "{text}");
        // The target's addresses unknown: nothing to compare with.
        flattened.target_addresses = Some(Err(Unchecked("timeout".into())));
        assert!(matches!(
            judge(&facts("example.com", flattened, None), false),
            Verdict::Unchecked { .. }
        ));
        assert_eq!(describe(&[ip("::1")]), "an AAAA record ::1");
        assert_eq!(
            describe(&[ip("192.0.2.1"), ip("::1")]),
            "A/AAAA records 192.0.2.1, ::1"
        );
    }

    #[test]
    fn severity_follows_what_the_dns_explains_and_stale_facts_are_left_out() {
        let now = datetime!(2026-11-22 10:00 UTC);
        let domain = |certificate: bool, managed: bool, target: &str| -> ReservedDomain {
            let mut json = serde_json::json!({"id": "rd_1", "domain": "a.example.com", "cname_target": target});
            if certificate {
                json["certificate"] = serde_json::json!({"id": "cert_1"});
            }
            if managed {
                json["certificate_management_policy"] =
                    serde_json::json!({"authority": "letsencrypt"});
            }
            serde_json::from_value(json).unwrap()
        };
        let wrong = facts(
            "a.example.com",
            pointing_to("a.example.com", chain(&[], ChainEnd::Addresses(vec![]))),
            None,
        );
        let run = |d: ReservedDomain| {
            let inventory = Inventory::new(
                now,
                Vec::<crate::sources::ngrok::TlsCertificate>::new(),
                vec![d],
                vec![],
                BTreeSet::new(),
            );
            let mut findings = Vec::new();
            let ok = apply(&inventory, std::slice::from_ref(&wrong), &mut findings);
            (findings, ok)
        };
        let (f, ok) = run(domain(true, false, T));
        assert_eq!(
            (f[0].severity, f[0].kind),
            (Severity::Warning, FindingKind::DnsMisconfigured)
        );
        assert_eq!(ok, vec![("a.example.com".to_string(), false)]);
        let (f, _) = run(domain(false, true, T));
        assert_eq!(
            f[0].severity,
            Severity::Critical,
            "a managed domain without a certificate"
        );
        // The target changed since the lookups: nothing is said until the next pass.
        let (f, ok) = run(domain(true, false, "new.ngrok-cname.com"));
        assert!(f.is_empty() && ok.is_empty(), "{f:?}");
    }
}
