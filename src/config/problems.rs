//! Collecting every problem of one file, each naming the file and the key; shared helpers of the
//! section validators.

use std::fmt;
use std::num::NonZeroU32;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Every problem found so far in one file.
pub(super) struct Problems {
    pub(super) file: String,
    pub(super) list: Vec<String>,
}

impl Problems {
    pub(super) fn push(&mut self, key: &str, what: impl fmt::Display) {
        self.list.push(format!("{}: {key}: {what}", self.file));
    }

    /// A whole number from 1 to `max` (`default` when absent or out of range, with a problem).
    pub(super) fn whole_number(
        &mut self,
        key: &str,
        value: Option<i64>,
        default: u32,
        max: u32,
        hint: &str,
    ) -> NonZeroU32 {
        let fallback = NonZeroU32::new(default).unwrap_or(NonZeroU32::MIN);
        match value {
            None => fallback,
            Some(n) => match u32::try_from(n)
                .ok()
                .filter(|n| *n <= max)
                .and_then(NonZeroU32::new)
            {
                Some(n) => n,
                None => {
                    self.push(
                        key,
                        format!(
                            "{n} is out of range: give a whole number from 1 to {max} ({hint})"
                        ),
                    );
                    fallback
                }
            },
        }
    }

    pub(super) fn duration(&mut self, key: &str, value: Option<&str>, default: &str) -> Duration {
        let text = value.unwrap_or(default);
        match humantime::parse_duration(text) {
            Ok(d) if d.is_zero() => {
                self.push(key, format!("\"{text}\" must be longer than zero"));
                humantime::parse_duration(default).unwrap_or(Duration::from_secs(1))
            }
            Ok(d) => d,
            Err(e) => {
                self.push(
                    key,
                    format!(
                        "\"{text}\" is not a duration ({e}); write e.g. \"90s\", \"15m\", \"7d\""
                    ),
                );
                humantime::parse_duration(default).unwrap_or(Duration::from_secs(1))
            }
        }
    }
}

/// Relative paths in the file are relative to the file.
pub(super) fn resolve(base_dir: &Path, path: &Path) -> PathBuf {
    if path.is_absolute() {
        path.to_path_buf()
    } else {
        base_dir.join(path)
    }
}

/// A `[[watch]]` or `[[webhook]]` name: 1–64 letters, digits, '-', '_' or '.'.
pub(super) fn valid_name(n: &str) -> bool {
    !n.is_empty()
        && n.len() <= 64
        && n.chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
}

/// The label for messages (`watch "app"` or `watch[2]`) and the valid name of the `i`-th entry of
/// `[[kind]]`; `None` (with the problem noted) when the name is missing or invalid.
pub(super) fn entry_name(
    kind: &str,
    i: usize,
    raw: Option<&str>,
    p: &mut Problems,
) -> Option<(String, String)> {
    let label = match raw {
        Some(n) => format!("{kind} \"{n}\""),
        None => format!("{kind}[{i}]"),
    };
    match raw.map(str::trim) {
        Some(n) if valid_name(n) => Some((label, n.to_string())),
        Some(n) => {
            p.push(
                &format!("{label}.name"),
                format!("\"{n}\" must be 1–64 letters, digits, '-', '_' or '.'"),
            );
            None
        }
        None => {
            p.push(
                &format!("{label}.name"),
                format!("missing: every [[{kind}]] needs a name"),
            );
            None
        }
    }
}
