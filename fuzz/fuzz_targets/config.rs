//! Fuzz target `config`: `config::parse` on arbitrary UTF-8, with an environment that provides
//! the API key. Property: no panic, no hang; every problem or the settings format without panic.
//!
//! The file's path is in a directory that does not exist, so relative `key_file` and
//! `secret_file` paths read nothing.

#![no_main]

use std::path::Path;

use libfuzzer_sys::fuzz_target;
use ngrok_cert_watchdog::config::{self, Environment};

fuzz_target!(|text: &str| {
    let env = Environment {
        ngrok_api_key: Some("fuzz-api-key".into()),
        ..Environment::default()
    };
    match config::parse(text, Path::new("/nonexistent/fuzz/config.toml"), &env) {
        Ok(settings) => {
            let _ = format!("{settings:?}");
        }
        Err(e) => {
            assert!(
                !e.problems.is_empty(),
                "an error names at least one problem"
            );
            let _ = e.to_string();
        }
    }
});
