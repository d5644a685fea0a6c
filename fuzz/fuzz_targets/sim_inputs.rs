//! Fuzz target `sim_inputs`: the simulator's seed file and the request bodies it accepts.
//!
//! The input is text: a seed file (TOML), then requests, each a line `### METHOD PATH[?QUERY]`
//! followed by its JSON body. In a path, `{c0}`, `{d1}`, `{k2}` stand for the id of the
//! certificate, domain or credential at that position (modulo their number), so requests reach
//! resources whose ids are random. The seed is parsed and applied to a fresh account (or, if it
//! does not parse, an account with only its dev domain); each request is then applied through
//! `sim::apply_request`, as the HTTP server does. Property: no panic, no hang.
//!
//! Harness limits, so that iterations stay fast: seed files are replaced by two fixed generated
//! files (the fuzzer does not read the machine's files), and bulk counts from 4 to 100,000 are
//! lowered to 3 (larger ones are passed through: they must be refused without generating).

#![no_main]

use std::path::PathBuf;
use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use ngrok_cert_watchdog::model::certs::generate::{Signer, Spec};
use ngrok_cert_watchdog::sim::{self, seed, Account};
use time::macros::datetime;
use time::OffsetDateTime;

const NOW: OffsetDateTime = datetime!(2027-01-01 0:00 UTC);

/// A generated chain and key on disk, for seeds that name files.
fn seed_files() -> &'static (PathBuf, PathBuf) {
    static FILES: OnceLock<(PathBuf, PathBuf)> = OnceLock::new();
    FILES.get_or_init(|| {
        let dir = std::env::temp_dir().join(format!("sim-inputs-fuzz-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("a temporary directory");
        let names = vec!["files.example.com".to_string()];
        let g = Signer::new("Fuzz CA")
            .and_then(|s| {
                s.generate(&Spec {
                    common_name: &names[0],
                    dns_names: &names,
                    not_before: datetime!(2025-01-01 0:00 UTC),
                    not_after: datetime!(2030-01-01 0:00 UTC),
                })
            })
            .expect("a generated certificate");
        let (cert, key) = (dir.join("chain.pem"), dir.join("key.pem"));
        std::fs::write(&cert, g.chain_pem).expect("written");
        std::fs::write(&key, g.key_pem).expect("written");
        (cert, key)
    })
}

fn tame(seed: &mut seed::Seed) {
    let (cert, key) = seed_files();
    for c in &mut seed.certificates {
        if c.certificate_file.is_some() {
            c.certificate_file = Some(cert.clone());
        }
        if c.private_key_file.is_some() {
            c.private_key_file = Some(key.clone());
        }
    }
    if let Some(bulk) = &mut seed.bulk {
        for n in [
            &mut bulk.certificates,
            &mut bulk.domains,
            &mut bulk.credentials,
        ] {
            if (4..=100_000).contains(n) {
                *n = 3;
            }
        }
    }
}

/// `{c0}`, `{d1}`, `{k2}` in `path` replaced by ids of the account.
fn resolve(path: &str, account: &Account) -> String {
    let mut out = String::new();
    let mut rest = path;
    while let Some(start) = rest.find('{') {
        out.push_str(&rest[..start]);
        let after = &rest[start + 1..];
        let Some(end) = after.find('}') else {
            out.push_str(&rest[start..]);
            return out;
        };
        let token = &after[..end];
        let index: usize = token.get(1..).and_then(|n| n.parse().ok()).unwrap_or(0);
        let ids: Vec<&String> = match token.chars().next() {
            Some('c') => account.certificates.keys().collect(),
            Some('d') => account.domains.keys().collect(),
            Some('k') => account.credentials.keys().collect(),
            _ => Vec::new(),
        };
        match ids.len() {
            0 => out.push_str(token),
            n => out.push_str(ids[index % n]),
        }
        rest = &after[end + 1..];
    }
    out.push_str(rest);
    out
}

fuzz_target!(|text: &str| {
    let mut sections = text.split("\n### ");
    let seed_text = sections.next().unwrap_or_default();
    let mut account = Account::new("https://api.ngrok.com".into(), NOW);
    match seed::parse(seed_text) {
        Ok(mut seed) => {
            tame(&mut seed);
            if let Err(e) = seed::apply(&seed, &mut account, NOW, "seed") {
                let _ = e.to_string();
            }
        }
        Err(e) => {
            let _ = e.to_string();
            account.add_dev_domain(NOW);
        }
    }
    for request in sections.take(32) {
        let (line, body) = request.split_once('\n').unwrap_or((request, ""));
        let (method, target) = line.trim().split_once(' ').unwrap_or((line.trim(), ""));
        let (path, query) = target.split_once('?').unwrap_or((target, ""));
        let path = resolve(path, &account);
        match sim::apply_request(&mut account, method, &path, query, body.as_bytes(), NOW) {
            Ok((_, Some(v))) => {
                let _ = serde_json::to_vec(&v);
            }
            Ok((_, None)) => {}
            Err(e) => {
                let _ = e.msg.len();
            }
        }
    }
});
