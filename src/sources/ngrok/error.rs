//! The client's one error type: every failure of a call to the ngrok API, in a small fixed set of kinds.
//!
//! Errors carry what the documented error body says (`status_code`, `error_code`, `msg`,
//! `details.operation_id`, else the `ngrok-operation-id` header) and never the API key, a
//! request body or a response body.

use std::fmt;

/// What went wrong, for exit codes, metric labels and retry decisions.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ErrorKind {
    /// 401 or 403: the key is wrong, revoked or lacks access.
    Unauthorized,
    /// 404: the resource does not exist.
    NotFound,
    /// Another 4xx: the request was refused as invalid.
    BadRequest,
    /// 429 (ERR_NGROK_226) still after every retry.
    RateLimited,
    /// 5xx still after every retry.
    Server,
    /// The API could not be reached, or the connection broke, still after every retry.
    Unreachable,
    /// The response was not what the API documents: not JSON, truncated, a foreign `next_page_uri`.
    InvalidResponse,
    /// A certificate upload whose outcome is unknown (5xx or a broken connection): never retried,
    /// the next pass finds the certificate by its fingerprint if it was created.
    OutcomeUnknown,
}

impl ErrorKind {
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorKind::Unauthorized => "unauthorized",
            ErrorKind::NotFound => "not_found",
            ErrorKind::BadRequest => "bad_request",
            ErrorKind::RateLimited => "rate_limited",
            ErrorKind::Server => "server_error",
            ErrorKind::Unreachable => "unreachable",
            ErrorKind::InvalidResponse => "invalid_response",
            ErrorKind::OutcomeUnknown => "outcome_unknown",
        }
    }

    /// The kind for an HTTP error status.
    pub fn from_status(status: u16) -> Self {
        match status {
            401 | 403 => ErrorKind::Unauthorized,
            404 => ErrorKind::NotFound,
            429 => ErrorKind::RateLimited,
            500..=599 => ErrorKind::Server,
            _ => ErrorKind::BadRequest,
        }
    }
}

/// A failed call to the ngrok API.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    pub kind: ErrorKind,
    /// `METHOD /path` of the call, e.g. `GET /tls_certificates`.
    pub operation: String,
    /// The HTTP status, when there was a response.
    pub status: Option<u16>,
    /// `error_code` of the error body, e.g. `ERR_NGROK_226`.
    pub error_code: Option<String>,
    /// `msg` of the error body, or what went wrong on the way.
    pub msg: String,
    /// `details.operation_id` of the error body, for ngrok support.
    pub operation_id: Option<String>,
}

impl ApiError {
    /// A refusal that repeating the request cannot change: a 4xx other than 404 (gone), 408
    /// (timeout), 409 (conflict) and 429 (rate or concurrency limit).
    pub fn is_final_refusal(&self) -> bool {
        matches!(self.status, Some(s) if (400..500).contains(&s) && ![404, 408, 409, 429].contains(&s))
    }

    pub fn new(kind: ErrorKind, operation: impl Into<String>, msg: impl Into<String>) -> Self {
        Self {
            kind,
            operation: operation.into(),
            status: None,
            error_code: None,
            msg: msg.into(),
            operation_id: None,
        }
    }

    pub fn kind(&self) -> ErrorKind {
        self.kind
    }
}

impl fmt::Display for ApiError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: ", self.operation)?;
        match self.status {
            Some(status) => {
                write!(f, "ngrok API answered {status}")?;
                if let Some(code) = &self.error_code {
                    write!(f, " {code}")?;
                }
                write!(f, ": {}", one_line(&self.msg))?;
            }
            None => write!(f, "{}", one_line(&self.msg))?,
        }
        if let Some(op) = &self.operation_id {
            write!(f, " (operation {op})")?;
        }
        Ok(())
    }
}

impl std::error::Error for ApiError {}

/// Messages from a server end up on one log line.
fn one_line(s: &str) -> String {
    let s: String = s
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .take(300)
        .collect();
    s.trim().to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display_carries_the_error_body() {
        let e = ApiError {
            kind: ErrorKind::RateLimited,
            operation: "GET /tls_certificates".into(),
            status: Some(429),
            error_code: Some("ERR_NGROK_226".into()),
            msg: "rate\nlimited".into(),
            operation_id: Some("op_1".into()),
        };
        assert_eq!(
            e.to_string(),
            "GET /tls_certificates: ngrok API answered 429 ERR_NGROK_226: rate limited (operation op_1)"
        );
    }

    #[test]
    fn kinds_from_status() {
        assert_eq!(ErrorKind::from_status(401), ErrorKind::Unauthorized);
        assert_eq!(ErrorKind::from_status(404), ErrorKind::NotFound);
        assert_eq!(ErrorKind::from_status(400), ErrorKind::BadRequest);
        assert_eq!(ErrorKind::from_status(429), ErrorKind::RateLimited);
        assert_eq!(ErrorKind::from_status(503), ErrorKind::Server);
    }
}
