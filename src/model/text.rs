//! Text for people: times in RFC 3339, durations in words, I/O errors without the OS's noise.

use std::time::Duration;

use time::OffsetDateTime;

/// A `std` duration as a signed `time` one (saturating).
pub fn signed(d: Duration) -> time::Duration {
    time::Duration::try_from(d).unwrap_or(time::Duration::MAX)
}

/// RFC 3339, to the second.
pub fn format_time(t: OffsetDateTime) -> String {
    let t = t.replace_nanosecond(0).unwrap_or(t);
    t.format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_else(|_| t.unix_timestamp().to_string())
}

/// "3 days", "5 hours", "12 minutes": the largest whole unit, for messages.
pub fn human(d: time::Duration) -> String {
    let secs = d.whole_seconds().unsigned_abs();
    // Rounded to the nearest unit: 2 days 23 hours reads "3 days", not "2 days".
    let round = |unit: u64| (secs + unit / 2) / unit;
    let (n, unit) = if secs >= 2 * 86_400 - 1_800 {
        (round(86_400), "days")
    } else if secs >= 2 * 3_600 - 30 {
        (round(3_600), "hours")
    } else if secs >= 120 {
        (round(60), "minutes")
    } else {
        (secs, "seconds")
    };
    format!("{n} {unit}")
}

/// An I/O error without the path (the caller names it) and without Rust's `(os error N)` noise.
pub fn io_reason(e: &std::io::Error) -> String {
    match e.kind() {
        std::io::ErrorKind::NotFound => "no such file".to_string(),
        std::io::ErrorKind::PermissionDenied => "permission denied".to_string(),
        _ => {
            let text = e.to_string();
            match text.find(" (os error") {
                Some(i) => text[..i].to_string(),
                None => text,
            }
        }
    }
}
