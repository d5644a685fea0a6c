//! Seed files: a TOML description of an account (certificates from PEM files or generated,
//! domains, management policies and job states, credentials, bulk counts) loaded into an
//! [`Account`].
//!
//! Times are relative to when the simulator starts ("+3d", "-2h") or RFC 3339 timestamps, so a
//! seed stays meaningful whenever it is run.

use crate::model::fs;
use std::collections::hash_map::Entry;
use std::collections::HashMap;
use std::path::{Path, PathBuf};

use serde::Deserialize;
use time::OffsetDateTime;

use super::account::{Account, DomainFields, Job, NewCertificate, Policy, Ref, Status};
use crate::model::certs::generate::{GenerateError, Generated, Signer, Spec};

#[derive(Debug, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Seed {
    /// The account's dev domain (an `ngrok-free.dev` name that cannot be deleted); default true.
    /// Tests that count domains or requests exactly set it to false.
    pub dev_domain: bool,
    #[serde(rename = "certificate")]
    pub certificates: Vec<SeedCertificate>,
    #[serde(rename = "domain")]
    pub domains: Vec<SeedDomain>,
    #[serde(rename = "credential")]
    pub credentials: Vec<SeedCredential>,
    pub bulk: Option<Bulk>,
}

impl Default for Seed {
    /// An account with only its dev domain.
    fn default() -> Self {
        Self {
            dev_domain: true,
            certificates: Vec::new(),
            domains: Vec::new(),
            credentials: Vec::new(),
            bulk: None,
        }
    }
}

/// A certificate: from files, or generated for `dns_names` with the given validity.
#[derive(Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SeedCertificate {
    /// A handle domains use to refer to it (`[[domain]] certificate = "NAME"`).
    pub name: String,
    pub dns_names: Vec<String>,
    /// Default "-30d".
    pub not_before: Option<String>,
    /// Default "+60d".
    pub not_after: Option<String>,
    pub issuer: Option<String>,
    /// Chain and key files (relative to the seed file) instead of generating.
    pub certificate_file: Option<PathBuf>,
    pub private_key_file: Option<PathBuf>,
    /// ngrok issued it (a managed certificate): `issued_at` is set.
    pub managed: bool,
    pub description: String,
    pub metadata: String,
    /// The shape of a generated chain (default `complete`).
    pub chain: SeedChain,
}

/// The chain a generated certificate is uploaded with, to seed what the judging reports.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SeedChain {
    /// The leaf and its intermediate, which the account's seed root issued.
    #[default]
    Complete,
    /// The leaf alone, without its intermediate.
    LeafOnly,
    /// The leaf and a root of its own, which nobody trusts.
    UnknownIssuer,
    /// The leaf, then two intermediates in the wrong order (the upper one first).
    WrongOrder,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SeedDomain {
    pub domain: String,
    /// The `name` of a seeded certificate.
    pub certificate: Option<String>,
    /// Certificate management with Let's Encrypt.
    pub managed: bool,
    pub private_key_type: Option<String>,
    pub renews_at: Option<String>,
    /// The provisioning job; omit for none.
    pub job: Option<SeedJob>,
    /// A managed domain whose `certificate_management_status` is null (no job, no renewal).
    pub null_status: bool,
    /// When it was reserved; default now.
    pub created_at: Option<String>,
    pub description: String,
    pub metadata: String,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SeedJob {
    /// DNS_ERROR, INTERNAL_ERROR, or omitted while in progress.
    pub error_code: Option<String>,
    pub msg: Option<String>,
    pub started_at: Option<String>,
    pub retries_at: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SeedCredential {
    pub description: String,
    pub acl: Vec<String>,
}

/// Many generated resources at once, for load tests: certificate N serves domain N.
#[derive(Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Bulk {
    pub certificates: usize,
    pub domains: usize,
    pub credentials: usize,
    /// Default "example.test": domain N is `hN.example.test`.
    pub suffix: Option<String>,
}

#[derive(Debug, thiserror::Error)]
#[error("{file}: {msg}")]
pub struct SeedError {
    pub file: String,
    pub msg: String,
}

/// Reads and parses a seed file.
pub fn load(path: &Path) -> Result<Seed, SeedError> {
    let err = |msg: String| SeedError {
        file: path.display().to_string(),
        msg,
    };
    // Seeds are small: a 10,000-resource bulk seed is a few lines.
    let text = fs::read_text(path, fs::MAX_FILE_BYTES).map_err(|e| err(e.to_string()))?;
    let mut seed: Seed = toml::from_str(&text).map_err(|e| err(one_line(&e)))?;
    let base = path.parent().unwrap_or(Path::new("."));
    for c in &mut seed.certificates {
        for file in [&mut c.certificate_file, &mut c.private_key_file]
            .into_iter()
            .flatten()
        {
            if file.is_relative() {
                *file = base.join(&*file);
            }
        }
    }
    Ok(seed)
}

pub fn parse(text: &str) -> Result<Seed, SeedError> {
    toml::from_str(text).map_err(|e| SeedError {
        file: "seed".into(),
        msg: one_line(&e),
    })
}

fn one_line(e: &toml::de::Error) -> String {
    e.message().replace('\n', " ")
}

/// Loads the seed into `account`, with times relative to `now`.
pub fn apply(
    seed: &Seed,
    account: &mut Account,
    now: OffsetDateTime,
    file: &str,
) -> Result<(), SeedError> {
    let err = |msg: String| SeedError {
        file: file.to_string(),
        msg,
    };
    if seed.dev_domain {
        account.add_dev_domain(now);
    }
    let by_name = apply_certificates(seed, account, now).map_err(err)?;
    for (i, d) in seed.domains.iter().enumerate() {
        apply_domain(d, account, now, &by_name)
            .map_err(|m| err(format!("domain[{i}] ({}): {m}", d.domain)))?;
    }
    for c in &seed.credentials {
        account
            .create_credential(Some(c.description.clone()), None, Some(c.acl.clone()), now)
            .map_err(|e| err(format!("credential: {}", e.msg)))?;
    }
    if let Some(bulk) = &seed.bulk {
        apply_bulk(bulk, account, now).map_err(err)?;
    }
    Ok(())
}

/// The seed's certificates; their ids by `name`.
fn apply_certificates(
    seed: &Seed,
    account: &mut Account,
    now: OffsetDateTime,
) -> Result<HashMap<String, String>, String> {
    let mut signers: HashMap<String, Signer> = HashMap::new();
    let root = account.seed_ca().map_err(|e| e.to_string())?;
    let mut by_name = HashMap::new();
    for (i, c) in seed.certificates.iter().enumerate() {
        let ctx = |m: String| format!("certificate[{i}] ({}): {m}", c.name);
        let (chain, key) = certificate_pem(c, &root, &mut signers, now).map_err(ctx)?;
        let issued_at = c
            .managed
            .then(|| relative_time(c.not_before.as_deref().unwrap_or("-30d"), now))
            .transpose()
            .map_err(|m| ctx(format!("not_before: {m}")))?;
        let extra = NewCertificate {
            description: c.description.clone(),
            metadata: c.metadata.clone(),
            issued_at,
        };
        let created = account
            .create_certificate(&chain, &key, extra, now)
            .map_err(|e| ctx(e.msg))?;
        by_name.insert(c.name.clone(), created.id);
    }
    Ok(by_name)
}

/// The chain and key of a seeded certificate: read from its files, or generated by an
/// intermediate CA named `issuer` under the account's seed root.
fn certificate_pem(
    c: &SeedCertificate,
    root: &Signer,
    signers: &mut HashMap<String, Signer>,
    now: OffsetDateTime,
) -> Result<(String, String), String> {
    let at = |what: &str, v: &Option<String>, default: &str| {
        relative_time(v.as_deref().unwrap_or(default), now).map_err(|m| format!("{what}: {m}"))
    };
    match (&c.certificate_file, &c.private_key_file) {
        (Some(cf), Some(kf)) => {
            let read = |p: &PathBuf| {
                fs::read_text(p, fs::MAX_FILE_BYTES).map_err(|e| format!("{}: {e}", p.display()))
            };
            Ok((read(cf)?, read(kf)?))
        }
        (None, None) => {
            let names = if c.dns_names.is_empty() {
                vec![c.name.clone()]
            } else {
                c.dns_names.clone()
            };
            let issuer = c
                .issuer
                .clone()
                .unwrap_or_else(|| "Watchdog Demo CA".to_string());
            let spec = Spec {
                common_name: &names[0],
                dns_names: &names,
                not_before: at("not_before", &c.not_before, "-30d")?,
                not_after: at("not_after", &c.not_after, "+60d")?,
            };
            generated(c.chain, &issuer, &spec, root, signers).map_err(|e| e.to_string())
        }
        _ => Err("give both certificate_file and private_key_file, or neither".into()),
    }
}

/// A generated chain of `shape` and its key, by an intermediate named `issuer` (shared by the
/// seed's complete and leaf-only chains of that issuer).
fn generated(
    shape: SeedChain,
    issuer: &str,
    spec: &Spec<'_>,
    root: &Signer,
    signers: &mut HashMap<String, Signer>,
) -> Result<(String, String), GenerateError> {
    let shared = |signers: &mut HashMap<String, Signer>| -> Result<Generated, GenerateError> {
        let signer = match signers.entry(issuer.to_string()) {
            Entry::Occupied(e) => e.into_mut(),
            Entry::Vacant(e) => e.insert(root.intermediate(issuer, false)?),
        };
        signer.generate(spec)
    };
    let g = match shape {
        SeedChain::Complete => shared(signers)?,
        SeedChain::LeafOnly => {
            let g = shared(signers)?;
            Generated {
                chain_pem: g.leaf_pem.clone(),
                ..g
            }
        }
        SeedChain::UnknownIssuer => Signer::new(issuer)?.generate(spec)?,
        SeedChain::WrongOrder => {
            let upper = root.intermediate(&format!("{issuer} Upper"), false)?;
            let lower = upper.intermediate(issuer, false)?;
            let g = lower.generate(spec)?;
            Generated {
                chain_pem: format!("{}{}{}", g.leaf_pem, upper.ca_pem(), lower.ca_pem()),
                ..g
            }
        }
    };
    Ok((g.chain_pem, g.key_pem))
}

/// One seeded domain. Seeds may describe states the API cannot be asked for (a managed domain
/// on an ngrok-issued certificate, a bare custom domain), so the fields are set directly.
fn apply_domain(
    d: &SeedDomain,
    account: &mut Account,
    now: OffsetDateTime,
    by_name: &HashMap<String, String>,
) -> Result<(), String> {
    let certificate_id = match &d.certificate {
        Some(name) => Some(
            by_name
                .get(name)
                .cloned()
                .ok_or_else(|| format!("certificate: no [[certificate]] named {name:?}"))?,
        ),
        None => None,
    };
    let time = |v: &Option<String>| v.as_deref().map(|s| relative_time(s, now)).transpose();
    let created_at = time(&d.created_at)?.unwrap_or(now);
    let fields = DomainFields {
        domain: Some(d.domain.clone()),
        description: Some(d.description.clone()),
        metadata: Some(d.metadata.clone()),
        ..Default::default()
    };
    let created = account
        .create_domain(fields, created_at)
        .map_err(|e| e.msg)?;
    let status = if d.managed && !d.null_status {
        Some(Status {
            renews_at: time(&d.renews_at)?,
            provisioning_job: d.job.as_ref().map(|j| seed_job(j, now)).transpose()?,
        })
    } else {
        None
    };
    let policy = d.managed.then(|| Policy {
        authority: "letsencrypt".into(),
        private_key_type: d.private_key_type.clone().unwrap_or_else(|| "ecdsa".into()),
    });
    let base_url = account.base_url.clone();
    if let Some(domain) = account.domains.get_mut(&created.id) {
        domain.certificate = certificate_id.map(|id| Ref {
            uri: format!("{base_url}/tls_certificates/{id}"),
            id,
        });
        domain.certificate_management_policy = policy;
        domain.certificate_management_status = status;
    }
    Ok(())
}

fn seed_job(j: &SeedJob, now: OffsetDateTime) -> Result<Job, String> {
    let time = |v: &Option<String>| v.as_deref().map(|s| relative_time(s, now)).transpose();
    Ok(Job {
        error_code: j.error_code.clone(),
        msg: j.msg.clone(),
        started_at: time(&j.started_at)?.or(Some(now)),
        retries_at: time(&j.retries_at)?,
    })
}

/// The most resources of each kind a `[bulk]` section may ask for (the benchmark uses 10,000).
pub const MAX_BULK: usize = 100_000;

/// Generates the bulk section: one shared key and CA, so 10,000 certificates take seconds.
pub fn apply_bulk(bulk: &Bulk, account: &mut Account, now: OffsetDateTime) -> Result<(), String> {
    for (kind, count) in [
        ("certificates", bulk.certificates),
        ("domains", bulk.domains),
        ("credentials", bulk.credentials),
    ] {
        if count > MAX_BULK {
            return Err(format!(
                "bulk.{kind}: {count} is too many, at most {MAX_BULK}"
            ));
        }
    }
    let signer = account
        .seed_ca()
        .and_then(|root| root.intermediate("Watchdog Bulk CA", true))
        .map_err(|e| e.to_string())?;
    let suffix = bulk.suffix.as_deref().unwrap_or("example.test");
    let mut cert_ids = Vec::with_capacity(bulk.certificates);
    for n in 0..bulk.certificates {
        let name = vec![format!("h{n}.{suffix}")];
        // Spread expiries over 10..100 days so a bulk account has some of everything; each
        // issued 1..90 days ago (valid now: the edge benchmark verifies every chain).
        let days = 10 + (n as i64 % 90);
        let g = signer
            .generate(&Spec {
                common_name: &name[0],
                dns_names: &name,
                not_before: now - time::Duration::days(100 - days),
                not_after: now + time::Duration::days(days),
            })
            .map_err(|e| e.to_string())?;
        let c = account
            .create_certificate(&g.chain_pem, &g.key_pem, NewCertificate::default(), now)
            .map_err(|e| e.msg)?;
        cert_ids.push(c.id);
    }
    for n in 0..bulk.domains {
        let created = account
            .create_domain(
                DomainFields {
                    domain: Some(format!("h{n}.{suffix}")),
                    certificate_id: cert_ids.get(n).cloned(),
                    ..Default::default()
                },
                now,
            )
            .map_err(|e| e.msg)?;
        // Domains beyond the certificates stay bare: a seed describes a state, not requests.
        if let Some(d) = account.domains.get_mut(&created.id) {
            d.certificate_management_policy = None;
            d.certificate_management_status = None;
        }
    }
    for n in 0..bulk.credentials {
        account
            .create_credential(
                Some(format!("bulk credential {n}")),
                None,
                Some(vec![format!("bind:h{n}.{suffix}")]),
                now,
            )
            .map_err(|e| e.msg)?;
    }
    Ok(())
}

/// "+3d", "-2h", "now" or an RFC 3339 timestamp.
pub fn relative_time(s: &str, now: OffsetDateTime) -> Result<OffsetDateTime, String> {
    let s = s.trim();
    if s == "now" {
        return Ok(now);
    }
    let (sign, rest) = match s.as_bytes().first() {
        Some(b'+') => (1, &s[1..]),
        Some(b'-') => (-1, &s[1..]),
        _ => {
            return OffsetDateTime::parse(s, &time::format_description::well_known::Rfc3339)
                .map_err(|_| format!("{s:?} is neither a relative time like \"+3d\" or \"-2h\" nor an RFC 3339 timestamp"))
        }
    };
    let d = humantime::parse_duration(rest.trim()).map_err(|e| format!("{s:?}: {e}"))?;
    let d = time::Duration::try_from(d).map_err(|_| format!("{s:?}: too large"))?;
    let at = if sign > 0 {
        now.checked_add(d)
    } else {
        now.checked_sub(d)
    };
    at.ok_or_else(|| format!("{s:?}: beyond the year 9999"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_relative_time_beyond_the_calendar_is_refused_not_a_panic() {
        let now = time::macros::datetime!(2026-11-22 10:00 UTC);
        assert!(relative_time("+100000000y", now).is_err());
        assert!(relative_time("-100000000y", now).is_err());
    }

    #[test]
    fn a_bulk_count_too_large_is_refused_before_anything_is_generated() {
        let now = time::macros::datetime!(2026-11-22 10:00 UTC);
        let mut account = Account::new("http://sim".into(), now);
        for bulk in [
            Bulk {
                certificates: usize::MAX,
                ..Bulk::default()
            },
            Bulk {
                domains: 1 << 40,
                ..Bulk::default()
            },
            Bulk {
                credentials: MAX_BULK + 1,
                ..Bulk::default()
            },
        ] {
            let err = apply_bulk(&bulk, &mut account, now).unwrap_err();
            assert!(err.contains("at most 100000"), "{err}");
        }
        assert!(account.certificates.is_empty() && account.domains.is_empty());
    }

    #[test]
    fn relative_times() {
        let now = time::macros::datetime!(2026-11-22 10:00 UTC);
        assert_eq!(
            relative_time("+3d", now).unwrap(),
            now + time::Duration::days(3)
        );
        assert_eq!(
            relative_time("-2h", now).unwrap(),
            now - time::Duration::hours(2)
        );
        assert_eq!(
            relative_time("2026-01-01T00:00:00Z", now).unwrap(),
            time::macros::datetime!(2026-01-01 0:00 UTC)
        );
        assert!(relative_time("soon", now).is_err());
    }

    #[test]
    fn a_seed_builds_the_account_it_describes() {
        let seed = parse(
            r#"
            dev_domain = false

            [[certificate]]
            name = "app"
            dns_names = ["app.example.com"]
            not_after = "+3d"

            [[domain]]
            domain = "app.example.com"
            certificate = "app"

            [[domain]]
            domain = "dns.example.com"
            managed = true
            job = { error_code = "DNS_ERROR", msg = "CNAME missing", started_at = "-1h" }

            [[credential]]
            description = "open"

            [bulk]
            certificates = 3
            domains = 4
            credentials = 1
            "#,
        )
        .unwrap();
        let now = OffsetDateTime::now_utc();
        let mut account = Account::new("http://127.0.0.1:1".into(), now);
        apply(&seed, &mut account, now, "seed").unwrap();
        assert_eq!(account.certificates.len(), 4);
        assert_eq!(account.domains.len(), 6);
        assert_eq!(account.credentials.len(), 2);
        let app = account
            .domains
            .values()
            .find(|d| d.domain == "app.example.com")
            .unwrap();
        let cert = &account.certificates[&app.certificate.as_ref().unwrap().id];
        assert_eq!(
            cert.subject_alternative_names.dns_names,
            vec!["app.example.com"]
        );
        assert!(
            (cert.not_after - (now + time::Duration::days(3))).abs() < time::Duration::seconds(2)
        );
        // Every generated chain (bulk ones too) leads to the one root `--write-ca` writes.
        let root = account.seed_ca().unwrap().root_pem().to_string();
        for c in account.certificates.values() {
            let full = format!("{}{root}", c.certificate_pem);
            let chain = crate::model::certs::parse_chain(full.as_bytes()).unwrap();
            assert_eq!(chain.certificates.len(), 3, "leaf, intermediate, root");
            assert!(chain.ordered, "{} does not chain to the seed root", c.id);
        }
        let dns = account
            .domains
            .values()
            .find(|d| d.domain == "dns.example.com")
            .unwrap();
        let job = dns
            .certificate_management_status
            .as_ref()
            .unwrap()
            .provisioning_job
            .as_ref()
            .unwrap();
        assert_eq!(job.error_code.as_deref(), Some("DNS_ERROR"));
        assert!(dns.cname_target.is_some());
    }

    #[test]
    fn unknown_keys_and_dangling_names_are_errors() {
        assert!(parse("[[certificate]]\nname = \"a\"\ncolour = \"red\"\n").is_err());
        let seed =
            parse("[[domain]]\ndomain = \"a.example.com\"\ncertificate = \"nope\"\n").unwrap();
        let now = OffsetDateTime::now_utc();
        let mut account = Account::new("http://127.0.0.1:1".into(), now);
        let e = apply(&seed, &mut account, now, "seed.toml").unwrap_err();
        assert!(
            e.to_string().contains("no [[certificate]] named \"nope\""),
            "{e}"
        );
    }
}
