//! `[api]`: the URL (https, or plain http to loopback only), the API key and where it came from,
//! the request budget, the timeout.

use std::path::Path;
use std::time::Duration;

use secrecy::SecretString;
use url::Url;

use crate::model::fs;
use crate::model::url::is_loopback_url;

use super::problems::{resolve, Problems};
use super::raw::RawApi;
use super::{ApiSettings, Environment, CREDENTIAL_NAME, DEFAULT_API_URL};

impl RawApi {
    pub(super) fn validate(
        self,
        base_dir: &Path,
        env: &Environment,
        p: &mut Problems,
    ) -> ApiSettings {
        let raw = self;
        let url = validate_url(raw.url.as_deref(), p);
        let (key, key_source) = match read_api_key(raw.key_file.as_deref(), base_dir, env) {
            Ok(found) => found,
            Err((key, why)) => {
                p.push(key, why);
                (SecretString::from(String::new()), String::new())
            }
        };
        let requests_per_minute = p.whole_number(
            "api.requests_per_minute",
            raw.requests_per_minute,
            60,
            100_000,
            "the account allows 120 per 60 s, shared with other tools",
        );
        let timeout = p.duration("api.timeout", raw.timeout.as_deref(), "10s");
        if timeout > Duration::from_secs(300) {
            p.push("api.timeout", "must be at most 5m");
        }

        let max_concurrent_requests = p.whole_number(
            "api.max_concurrent_requests",
            raw.max_concurrent_requests,
            2,
            64,
            "the account refuses requests past its own limit with ERR_NGROK_225",
        );
        ApiSettings {
            url,
            key,
            key_source,
            requests_per_minute,
            max_concurrent_requests,
            timeout,
        }
    }
}

/// `api.url`: https, or plain http only to a loopback address; no credentials or query.
fn validate_url(text: Option<&str>, p: &mut Problems) -> Url {
    let url_text = text.unwrap_or(DEFAULT_API_URL);
    let url = match Url::parse(url_text) {
        Ok(u) if u.scheme() == "https" && u.host().is_some() => u,
        Ok(u) if u.scheme() == "http" && is_loopback_url(&u) => u,
        Ok(u) if u.scheme() == "http" => {
            p.push(
                "api.url",
                format!(
                    "plain http to {} would send the API key in clear text; use https (http is accepted only for a loopback address)",
                    u.host_str().unwrap_or("")
                ),
            );
            u
        }
        Ok(u) => {
            p.push("api.url", format!("scheme \"{}\" is not https", u.scheme()));
            u
        }
        Err(e) => {
            p.push("api.url", format!("\"{url_text}\" is not a URL ({e})"));
            Url::parse(DEFAULT_API_URL).expect("the default URL parses")
        }
    };
    if !url.username().is_empty() || url.password().is_some() || url.query().is_some() {
        p.push("api.url", "must not carry credentials or a query");
    }
    url
}

/// The API key: `api.key_file`, else `NGROK_API_KEY`, else `$CREDENTIALS_DIRECTORY/ngrok-api-key`.
fn read_api_key(
    key_file: Option<&Path>,
    base_dir: &Path,
    env: &Environment,
) -> Result<(SecretString, String), (&'static str, String)> {
    let from_file = |path: &Path, key: &'static str| {
        let text = fs::read_text(path, fs::MAX_FILE_BYTES).map_err(|e| {
            (
                key,
                format!("cannot read the API key from {}: {e}", path.display()),
            )
        })?;
        let trimmed = text.trim();
        if trimmed.is_empty() {
            return Err((key, format!("the API key file {} is empty", path.display())));
        }
        if !valid_key(trimmed) {
            return Err((
                key,
                format!(
                    "the API key file {} holds more than one token (whitespace or control characters inside)",
                    path.display()
                ),
            ));
        }
        Ok((
            SecretString::from(trimmed.to_string()),
            path.display().to_string(),
        ))
    };
    if let Some(path) = key_file {
        return from_file(&resolve(base_dir, path), "api.key_file");
    }
    if let Some(key) = &env.ngrok_api_key {
        let trimmed = key.trim();
        if !valid_key(trimmed) {
            return Err((
                "api.key_file",
                "NGROK_API_KEY holds whitespace or control characters inside the key".to_string(),
            ));
        }
        return Ok((
            SecretString::from(trimmed.to_string()),
            "the NGROK_API_KEY environment variable".to_string(),
        ));
    }
    if let Some(dir) = &env.credentials_directory {
        return from_file(&dir.join(CREDENTIAL_NAME), "api.key_file");
    }
    Err((
        "api.key_file",
        "no API key: set api.key_file, or the NGROK_API_KEY environment variable, or provide the systemd credential ngrok-api-key (LoadCredential=)".to_string(),
    ))
}

fn valid_key(key: &str) -> bool {
    !key.is_empty() && key.chars().all(|c| c.is_ascii_graphic())
}
