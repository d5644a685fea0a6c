//! The expiry policy of `[expiry]`: thresholds that are a duration ("30d"), a share of the
//! certificate's lifetime ("33%"), or both ("30d or 33%": the smaller of the two), and the stage
//! of a certificate's life at `now` under them. Pure; parsing gives one-line reasons.

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use time::OffsetDateTime;

use super::text::signed;

/// A share of a lifetime, in basis points (1/100 of a percent), strictly between 0 % and 100 %.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Share(u16);

impl Share {
    const WHOLE: u16 = 10_000;

    /// From basis points; `None` unless strictly between 0 and 10,000.
    pub const fn from_basis_points(bp: u16) -> Option<Self> {
        if bp > 0 && bp < Self::WHOLE {
            Some(Self(bp))
        } else {
            None
        }
    }

    /// 0.33 for 33 %.
    pub fn ratio(self) -> f64 {
        f64::from(self.0) / f64::from(Self::WHOLE)
    }

    /// This share of `lifetime` (zero for a lifetime that is not positive).
    pub fn of(self, lifetime: time::Duration) -> time::Duration {
        let nanos =
            lifetime.whole_nanoseconds().max(0) * i128::from(self.0) / i128::from(Self::WHOLE);
        time::Duration::nanoseconds(i64::try_from(nanos).unwrap_or(i64::MAX))
    }
}

impl fmt::Display for Share {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (whole, frac) = (self.0 / 100, self.0 % 100);
        match frac {
            0 => write!(f, "{whole}%"),
            n if n % 10 == 0 => write!(f, "{whole}.{}%", n / 10),
            n => write!(f, "{whole}.{n:02}%"),
        }
    }
}

impl FromStr for Share {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, String> {
        let number = text.trim().strip_suffix('%').unwrap_or(text).trim();
        let value: f64 = number
            .parse()
            .ok()
            .filter(|v: &f64| v.is_finite())
            .ok_or_else(|| format!("\"{text}\" is not a percentage such as \"33%\""))?;
        let bp = (value * 100.0).round();
        if bp <= 0.0 {
            return Err(format!(
                "\"{text}\" is no share of the lifetime: give more than 0%, e.g. \"33%\""
            ));
        }
        if bp >= f64::from(Self::WHOLE) {
            return Err(format!(
                "\"{text}\" would hold for the whole lifetime: give less than 100%, e.g. \"33%\""
            ));
        }
        Ok(Self(bp as u16))
    }
}

/// A threshold: a duration, a share of the lifetime, or both (then the smaller one applies).
/// At least one part is always there.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Threshold {
    duration: Option<Duration>,
    share: Option<Share>,
}

impl Threshold {
    pub const fn duration(d: Duration) -> Self {
        Self {
            duration: Some(d),
            share: None,
        }
    }

    pub const fn share(s: Share) -> Self {
        Self {
            duration: None,
            share: Some(s),
        }
    }

    pub const fn duration_or_share(d: Duration, s: Share) -> Self {
        Self {
            duration: Some(d),
            share: Some(s),
        }
    }

    /// The duration part, if any.
    pub fn duration_part(&self) -> Option<Duration> {
        self.duration
    }

    /// The share part, if any.
    pub fn share_part(&self) -> Option<Share> {
        self.share
    }

    /// How long before `not_after` this threshold begins for a certificate valid from
    /// `not_before` to `not_after`.
    pub fn before_expiry(
        &self,
        not_before: OffsetDateTime,
        not_after: OffsetDateTime,
    ) -> time::Duration {
        let share = self.share.map(|s| s.of(not_after - not_before));
        match (self.duration.map(signed), share) {
            (Some(d), Some(s)) => d.min(s),
            (Some(d), None) => d,
            (None, Some(s)) => s,
            (None, None) => time::Duration::ZERO,
        }
    }

    /// Where `self` (a critical threshold) comes before `warning`, part by part: the reason, if
    /// any part of it is looser.
    pub fn looser_than(&self, warning: &Threshold) -> Option<String> {
        if let (Some(c), Some(w)) = (self.duration, warning.duration) {
            if c > w {
                return Some(format!(
                    "its duration {} is longer than the warning's {}",
                    short(c),
                    short(w)
                ));
            }
        }
        if let (Some(c), Some(w)) = (self.share, warning.share) {
            if c > w {
                return Some(format!("its share {c} is more than the warning's {w}"));
            }
        }
        None
    }
}

impl fmt::Display for Threshold {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (self.duration, self.share) {
            (Some(d), Some(s)) => write!(f, "{} or {s}", short(d)),
            (Some(d), None) => f.write_str(&short(d)),
            (None, Some(s)) => write!(f, "{s}"),
            (None, None) => f.write_str("0s"),
        }
    }
}

impl FromStr for Threshold {
    type Err = String;

    /// "30d", "33%", "30d or 33%" (either order). Durations are humantime strings, so "1h 30m"
    /// is one part.
    fn from_str(text: &str) -> Result<Self, String> {
        const HINT: &str = "write a duration, a share of the lifetime or both, e.g. \"30d\", \"33%\", \"30d or 33%\"";
        let mut parts: Vec<Vec<&str>> = vec![Vec::new()];
        for word in text.split_whitespace() {
            if word.eq_ignore_ascii_case("or") {
                parts.push(Vec::new());
            } else if let Some(last) = parts.last_mut() {
                last.push(word);
            }
        }
        if parts.iter().all(Vec::is_empty) && parts.len() == 1 {
            return Err(format!("is empty: {HINT}"));
        }
        if parts.first().is_some_and(Vec::is_empty) {
            return Err(format!("\"{text}\" has nothing before `or`: {HINT}"));
        }
        if parts.last().is_some_and(Vec::is_empty) {
            return Err(format!("\"{text}\" has nothing after `or`: {HINT}"));
        }
        if parts.len() > 2 {
            return Err(format!("\"{text}\" has more than two parts: {HINT}"));
        }
        let mut threshold = Threshold {
            duration: None,
            share: None,
        };
        for words in parts {
            let part = words.join(" ");
            if part.ends_with('%') {
                if threshold.share.replace(part.parse()?).is_some() {
                    return Err(format!("\"{text}\" has two shares: {HINT}"));
                }
            } else {
                let d = humantime::parse_duration(&part).map_err(|e| {
                    format!("\"{part}\" is neither a duration ({e}) nor a share such as \"33%\": {HINT}")
                })?;
                if d.is_zero() {
                    return Err(format!("\"{part}\" must be longer than zero"));
                }
                if threshold.duration.replace(d).is_some() {
                    return Err(format!("\"{text}\" has two durations: {HINT}"));
                }
            }
        }
        Ok(threshold)
    }
}

/// "30d", "12h", "90s": the one unit that divides the duration, as people write it in the file.
fn short(d: Duration) -> String {
    let secs = d.as_secs();
    match secs {
        _ if d.subsec_nanos() != 0 => humantime::format_duration(d).to_string(),
        s if s % 86_400 == 0 => format!("{}d", s / 86_400),
        s if s % 3_600 == 0 => format!("{}h", s / 3_600),
        s if s % 60 == 0 => format!("{}m", s / 60),
        s => format!("{s}s"),
    }
}

/// Where a certificate is in its life at some moment, under an [`ExpiryPolicy`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stage {
    /// Outside both thresholds.
    Fine,
    /// Inside the warning threshold, not the critical one.
    Warning,
    /// Inside the critical threshold, not expired.
    Critical,
    Expired,
}

/// Thresholds from `[expiry]`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ExpiryPolicy {
    pub warning: Threshold,
    pub critical: Threshold,
    pub renewal_grace: Duration,
}

/// `warning = "30d or 33%"`.
pub const DEFAULT_WARNING: Threshold = match Share::from_basis_points(3_300) {
    Some(s) => Threshold::duration_or_share(Duration::from_secs(30 * 86_400), s),
    None => Threshold::duration(Duration::from_secs(30 * 86_400)),
};

/// `critical = "7d or 10%"`.
pub const DEFAULT_CRITICAL: Threshold = match Share::from_basis_points(1_000) {
    Some(s) => Threshold::duration_or_share(Duration::from_secs(7 * 86_400), s),
    None => Threshold::duration(Duration::from_secs(7 * 86_400)),
};

impl Default for ExpiryPolicy {
    fn default() -> Self {
        Self {
            warning: DEFAULT_WARNING,
            critical: DEFAULT_CRITICAL,
            renewal_grace: Duration::from_secs(86_400),
        }
    }
}

impl ExpiryPolicy {
    /// The stage at `now` of a certificate valid from `not_before` to `not_after`: inside a
    /// threshold when no more than it remains.
    pub fn stage(
        &self,
        not_before: OffsetDateTime,
        not_after: OffsetDateTime,
        now: OffsetDateTime,
    ) -> Stage {
        let left = not_after - now;
        if left <= time::Duration::ZERO {
            Stage::Expired
        } else if left <= self.critical.before_expiry(not_before, not_after) {
            Stage::Critical
        } else if left <= self.warning.before_expiry(not_before, not_after) {
            Stage::Warning
        } else {
            Stage::Fine
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    const NOT_BEFORE: OffsetDateTime = datetime!(2026-01-01 0:00 UTC);

    fn days(n: i64) -> time::Duration {
        time::Duration::days(n)
    }

    fn parse(text: &str) -> Result<Threshold, String> {
        text.parse()
    }

    #[test]
    fn the_three_forms_parse_and_print() {
        assert_eq!(
            parse("30d").unwrap(),
            Threshold::duration(Duration::from_secs(30 * 86_400))
        );
        let share = parse("33%").unwrap();
        assert_eq!(share.share_part().map(Share::ratio), Some(0.33));
        assert_eq!(share.duration_part(), None);
        assert_eq!(parse("30d or 33%").unwrap(), DEFAULT_WARNING);
        assert_eq!(parse("33% OR 30d").unwrap(), DEFAULT_WARNING);
        assert_eq!(parse("7d or 10%").unwrap(), DEFAULT_CRITICAL);
        assert_eq!(
            parse("1h 30m").unwrap().duration_part(),
            Some(Duration::from_secs(5_400))
        );
        assert_eq!(parse("12.5%").unwrap().to_string(), "12.5%");
        assert_eq!(parse("33.33 %").unwrap().to_string(), "33.33%");
        assert_eq!(DEFAULT_WARNING.to_string(), "30d or 33%");
    }

    #[test]
    fn bad_thresholds_say_why() {
        for (text, why) in [
            ("0%", "more than 0%"),
            ("150%", "less than 100%"),
            ("100%", "less than 100%"),
            ("30d or", "nothing after `or`"),
            ("or 33%", "nothing before `or`"),
            ("", "empty"),
            ("30d or 7d", "two durations"),
            ("3% or 5%", "two shares"),
            ("30d or 33% or 1d", "more than two parts"),
            ("soon", "neither a duration"),
            ("0s", "longer than zero"),
            ("x%", "not a percentage"),
        ] {
            let err = parse(text).unwrap_err();
            assert!(err.contains(why), "{text:?}: {err}");
        }
    }

    #[test]
    fn critical_is_compared_with_warning_part_by_part() {
        let w = parse("30d or 33%").unwrap();
        assert_eq!(parse("7d or 10%").unwrap().looser_than(&w), None);
        assert!(parse("40d")
            .unwrap()
            .looser_than(&w)
            .unwrap()
            .contains("40d"));
        assert!(parse("7d or 40%")
            .unwrap()
            .looser_than(&w)
            .unwrap()
            .contains("40%"));
        // Parts without a counterpart are not compared.
        assert_eq!(
            parse("50%").unwrap().looser_than(&parse("30d").unwrap()),
            None
        );
    }

    /// The stage just outside and just inside each threshold, for a certificate of `lifetime`
    /// days under the default policy: `(warning starts, critical starts)` before expiry.
    fn edges(lifetime: i64, warning: time::Duration, critical: time::Duration) {
        let policy = ExpiryPolicy::default();
        let not_after = NOT_BEFORE + days(lifetime);
        let at = |left: time::Duration| policy.stage(NOT_BEFORE, not_after, not_after - left);
        let second = time::Duration::SECOND;
        assert_eq!(at(warning + second), Stage::Fine, "{lifetime}d lifetime");
        assert_eq!(at(warning), Stage::Warning, "{lifetime}d lifetime");
        assert_eq!(
            at(critical + second),
            Stage::Warning,
            "{lifetime}d lifetime"
        );
        assert_eq!(at(critical), Stage::Critical, "{lifetime}d lifetime");
        assert_eq!(at(second), Stage::Critical, "{lifetime}d lifetime");
        assert_eq!(
            at(time::Duration::ZERO),
            Stage::Expired,
            "{lifetime}d lifetime"
        );
        // Renewed on a normal schedule (at two thirds of the lifetime): never in warning.
        assert_eq!(
            at(days(lifetime) / 3 + second),
            Stage::Fine,
            "{lifetime}d lifetime"
        );
    }

    #[test]
    fn thresholds_scale_with_a_6_day_lifetime() {
        // min(30d, 33% of 6d = 47h31m12s), min(7d, 10% of 6d = 14h24m)
        edges(
            6,
            time::Duration::seconds(171_072),
            time::Duration::seconds(51_840),
        );
    }

    #[test]
    fn thresholds_scale_with_a_45_day_lifetime() {
        // min(30d, 14.85d), min(7d, 4.5d)
        edges(
            45,
            time::Duration::seconds(1_283_040),
            time::Duration::seconds(388_800),
        );
    }

    #[test]
    fn thresholds_of_a_90_day_lifetime_are_nearly_the_old_defaults() {
        // min(30d, 29.7d), min(7d, 9d)
        edges(90, time::Duration::seconds(2_566_080), days(7));
    }

    #[test]
    fn thresholds_of_a_398_day_lifetime_are_the_durations() {
        // min(30d, 131.34d), min(7d, 39.8d)
        edges(398, days(30), days(7));
    }

    #[test]
    fn a_duration_only_policy_ignores_the_lifetime() {
        let policy = ExpiryPolicy {
            warning: parse("30d").unwrap(),
            critical: parse("7d").unwrap(),
            ..ExpiryPolicy::default()
        };
        let not_after = NOT_BEFORE + days(6);
        assert_eq!(
            policy.stage(NOT_BEFORE, not_after, NOT_BEFORE),
            Stage::Critical
        );
        let share_only = ExpiryPolicy {
            warning: parse("50%").unwrap(),
            critical: parse("10%").unwrap(),
            ..ExpiryPolicy::default()
        };
        let not_after = NOT_BEFORE + days(398);
        assert_eq!(
            share_only.stage(NOT_BEFORE, not_after, NOT_BEFORE + days(200)),
            Stage::Warning
        );
        assert_eq!(
            share_only.stage(NOT_BEFORE, not_after, NOT_BEFORE + days(198)),
            Stage::Fine
        );
    }
}
