//! Payloads: an Alertmanager webhook body (version 4) for `json`, an incoming-webhook message
//! for `slack`, and the `POST /api/v2/alerts` array for `alertmanager`; Standard Webhooks signing.

use base64::Engine;
use hmac::{Hmac, Mac};
use serde_json::{json, Value};
use sha2::Sha256;
use time::OffsetDateTime;

use crate::core::alerts::{fingerprint, Notice, Status};
use crate::model::text::format_time;

/// Go's zero time: what Alertmanager sends as `endsAt` of a firing alert without an end.
const ZERO_TIME: &str = "0001-01-01T00:00:00Z";

fn ends(n: &Notice) -> String {
    n.ends_at.map_or_else(|| ZERO_TIME.to_string(), format_time)
}

/// The `json` format: an Alertmanager webhook body, version "4", so receivers written for
/// Alertmanager work unchanged.
pub fn json_body(receiver: &str, notices: &[Notice]) -> Value {
    let status = if notices.iter().any(|n| n.status == Status::Firing) {
        "firing"
    } else {
        "resolved"
    };
    let alerts: Vec<Value> = notices
        .iter()
        .map(|n| {
            json!({
                "status": n.status,
                "labels": n.labels,
                "annotations": n.annotations,
                "startsAt": format_time(n.starts_at),
                "endsAt": ends(n),
                "generatorURL": "",
                "fingerprint": fingerprint(&n.labels),
            })
        })
        .collect();
    let common = |pick: fn(&Notice) -> &std::collections::BTreeMap<String, String>| {
        let mut common = notices.first().map(|n| pick(n).clone()).unwrap_or_default();
        common.retain(|k, v| notices.iter().all(|n| pick(n).get(k) == Some(v)));
        common
    };
    json!({
        "version": "4",
        "groupKey": format!("{{}}:{{receiver=\"{receiver}\"}}"),
        "truncatedAlerts": 0,
        "status": status,
        "receiver": receiver,
        "groupLabels": {},
        "commonLabels": common(|n| &n.labels),
        "commonAnnotations": common(|n| &n.annotations),
        "externalURL": "",
        "alerts": alerts,
    })
}

const SLACK_MAX_SECTIONS: usize = 45;
const SLACK_MAX_TEXT: usize = 2900;

/// The `slack` format: `text` for notifications, `blocks` for the channel.
pub fn slack_body(notices: &[Notice]) -> Value {
    let firing = notices
        .iter()
        .filter(|n| n.status == Status::Firing)
        .count();
    let resolved = notices.len() - firing;
    let text = match (firing, resolved) {
        (f, 0) => format!("ngrok-cert-watchdog: {f} alert(s) firing"),
        (0, r) => format!("ngrok-cert-watchdog: {r} alert(s) resolved"),
        (f, r) => format!("ngrok-cert-watchdog: {f} firing, {r} resolved"),
    };
    let mut blocks = vec![json!({"type": "header", "text": {"type": "plain_text", "text": text}})];
    // Slack refuses more than 50 blocks and section texts over 3,000 characters.
    for n in notices.iter().take(SLACK_MAX_SECTIONS) {
        let icon = match (n.status, n.labels.get("severity").map(String::as_str)) {
            (Status::Resolved, _) => ":white_check_mark: RESOLVED",
            (_, Some("critical")) => ":red_circle: CRITICAL",
            (_, Some("warning")) => ":warning: WARNING",
            _ => ":information_source: INFO",
        };
        let mut lines = vec![format!(
            "*{icon}* {}",
            n.annotations
                .get("summary")
                .map(String::as_str)
                .unwrap_or(&n.id)
        )];
        if let Some(d) = n.annotations.get("description") {
            lines.push(d.clone());
        }
        if n.status == Status::Firing {
            if let Some(a) = n.annotations.get("action") {
                lines.push(format!("_{a}_"));
            }
        }
        lines.push(format!("since {}", format_time(n.starts_at)));
        let mut section: String = lines.join("\n");
        if section.len() > SLACK_MAX_TEXT {
            let cut = (0..=SLACK_MAX_TEXT)
                .rev()
                .find(|i| section.is_char_boundary(*i))
                .unwrap_or(0);
            section.truncate(cut);
            section.push('…');
        }
        blocks.push(json!({"type": "section", "text": {"type": "mrkdwn", "text": section}}));
    }
    if notices.len() > SLACK_MAX_SECTIONS {
        let more = format!(
            "…and {} more: see the watchdog's metrics or `ngrok-cert-watchdog check`",
            notices.len() - SLACK_MAX_SECTIONS
        );
        blocks.push(json!({"type": "section", "text": {"type": "mrkdwn", "text": more}}));
    }
    json!({ "text": text, "blocks": blocks })
}

/// The `alertmanager` format: the body of `POST /api/v2/alerts`.
pub fn alertmanager_body(notices: &[Notice]) -> Value {
    Value::Array(
        notices
            .iter()
            .map(|n| {
                json!({
                    "labels": n.labels,
                    "annotations": n.annotations,
                    "startsAt": format_time(n.starts_at),
                    "endsAt": ends(n),
                    "generatorURL": "",
                })
            })
            .collect(),
    )
}

/// Standard Webhooks: `v1,` + base64(HMAC-SHA256(key, "{id}.{timestamp}.{body}")), the key being
/// the base64-decoded part after `whsec_`. `None` when the secret is not of that form.
pub fn sign(secret: &str, id: &str, timestamp: i64, body: &[u8]) -> Option<String> {
    let key = base64::engine::general_purpose::STANDARD
        .decode(secret.trim().strip_prefix("whsec_")?)
        .ok()?;
    let mut mac = Hmac::<Sha256>::new_from_slice(&key).ok()?;
    mac.update(id.as_bytes());
    mac.update(b".");
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    Some(format!(
        "v1,{}",
        base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes())
    ))
}

/// Unix seconds, for `webhook-timestamp`.
pub fn timestamp(now: OffsetDateTime) -> i64 {
    now.unix_timestamp()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slack_messages_stay_within_slacks_limits() {
        let notice = |i: usize| Notice {
            id: format!("expiry/cert_{i}/"),
            status: Status::Firing,
            severity: crate::model::Severity::Warning,
            labels: [("severity".to_string(), "warning".to_string())].into(),
            annotations: [("description".to_string(), "é".repeat(3000))].into(),
            starts_at: OffsetDateTime::UNIX_EPOCH,
            ends_at: None,
        };
        let notices: Vec<Notice> = (0..60).map(notice).collect();
        let body = slack_body(&notices);
        let blocks = body["blocks"].as_array().unwrap();
        assert!(blocks.len() <= 50, "{}", blocks.len());
        assert!(blocks
            .iter()
            .all(|b| b["text"]["text"].as_str().unwrap().len() <= 3000));
        assert!(blocks.last().unwrap()["text"]["text"]
            .as_str()
            .unwrap()
            .contains("and 15 more"));
    }

    #[test]
    fn signature_matches_the_standard_webhooks_reference_vector() {
        // From the Standard Webhooks specification's test vectors.
        let secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
        let id = "msg_p5jXN8AQM9LWM0D4loKWxJek";
        let body = br#"{"test": 2432232314}"#;
        assert_eq!(
            sign(secret, id, 1614265330, body).unwrap(),
            "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="
        );
        assert!(sign("not-a-secret", id, 1, body).is_none());
    }
}
