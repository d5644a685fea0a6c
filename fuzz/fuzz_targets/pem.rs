//! Fuzz target `pem`: certificate chain and private key parsing, the key match, and the whole
//! validation of a watch's pair (`sources::local::validate`) on arbitrary bytes.
//!
//! The input is the certificate file, a NUL byte, then the key file; without a NUL byte the whole
//! input is both (a combined PEM file, chain and key in one). Property: no panic, no hang, and a
//! parsed chain written back as PEM parses to the same leaf.

#![no_main]

use std::path::PathBuf;
use std::time::Duration;

use libfuzzer_sys::fuzz_target;
use ngrok_cert_watchdog::config::WatchSettings;
use ngrok_cert_watchdog::model::certs;
use ngrok_cert_watchdog::sources::local::{self, Files};
use time::macros::datetime;

fuzz_target!(|data: &[u8]| {
    let (cert, key) = match data.iter().position(|&b| b == 0) {
        Some(i) => (&data[..i], &data[i + 1..]),
        None => (data, data),
    };
    let _ = certs::leaf_fingerprint(cert);
    let key_parsed = certs::parse_private_key(key);
    if let Ok(chain) = certs::parse_chain(cert) {
        let again = certs::parse_chain(certs::to_pem(&chain.certificates).as_bytes())
            .expect("a parsed chain written as PEM parses again");
        assert_eq!(again.leaf, chain.leaf);
        assert_eq!(
            certs::leaf_fingerprint(cert).as_deref(),
            Some(chain.leaf.fingerprint.as_str())
        );
        if let Ok(key) = &key_parsed {
            let _ = certs::check_key_matches(&chain, key);
        }
    }
    let watch = WatchSettings {
        name: "fuzz".into(),
        certificate: PathBuf::from("/fuzz/fullchain.pem"),
        private_key: PathBuf::from("/fuzz/privkey.pem"),
        domains: vec!["app.example.com".into(), "x.wild.example.com".into()],
        delete_replaced: false,
        take_over_managed: false,
        debounce: Duration::from_secs(2),
        settle_timeout: Duration::from_secs(60),
        poll_interval: None,
    };
    let files = Files {
        certificate: Ok(cert.to_vec()),
        private_key: Ok(key.to_vec()),
        changed_at: None,
    };
    let _ = local::validate(&watch, &files, datetime!(2027-01-01 0:00 UTC));
});
