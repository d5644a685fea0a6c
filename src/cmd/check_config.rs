//! `check-config`: validate the configuration and describe it in one line, without secrets.

use std::path::Path;

use crate::config::{Environment, Settings};
use crate::model::url::redacted_url;

use super::Exit;

/// 0 valid (one line on stdout), 78 invalid (every problem on stderr).
pub fn check_config(path: &Path, env: &Environment) -> Exit {
    match super::load_settings(path, env, Exit::Config) {
        Ok(settings) => {
            println!("{}", describe(&settings));
            // A warning does not make the configuration invalid.
            for warning in crate::daemon::budget_warnings(&settings) {
                eprintln!("{}: warning: {warning}", settings.source.display());
            }
            Exit::Ok
        }
        Err(exit) => exit,
    }
}

/// One line about a valid configuration, without secrets.
fn describe(s: &Settings) -> String {
    format!(
        "{}: valid (api {}, key from {}, sync \"{}\", {} watch(es), {} webhook(s), metrics on {})",
        s.source.display(),
        redacted_url(&s.api.url),
        s.api.key_source,
        s.schedule.sync,
        s.watches.len(),
        s.webhooks.len(),
        s.metrics.listen
    )
}
