//! Reading the Hub's back-off hints: `Retry-After` and
//! `RateLimit: "api";r=<remaining>;t=<seconds to reset>`.
//!
//! **Invariant:** a hint is only ever a lower bound on the wait; a missing
//! or garbled header yields `None`, never a zero that would spin.

use std::time::Duration;

use http::HeaderMap;

/// The longest wait a header can ask for; longer values are clamped, so a
/// garbled header cannot park a sink for days.
pub const MAX_HINT: Duration = Duration::from_secs(3600);

/// The `RateLimit` header's remaining count and seconds to reset.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateLimit {
    /// Requests left in the current window (`r`).
    pub remaining: u64,
    /// Seconds until the window resets (`t`).
    pub reset: u64,
}

/// Parses `"api";r=0;t=42`.
pub fn parse_rate_limit(headers: &HeaderMap) -> Option<RateLimit> {
    let value = headers.get("ratelimit")?.to_str().ok()?;
    let mut remaining = None;
    let mut reset = None;
    for part in value.split(';') {
        let Some((k, v)) = part.trim().split_once('=') else {
            continue;
        };
        match k.trim() {
            "r" => remaining = v.trim().parse().ok(),
            "t" => reset = v.trim().parse().ok(),
            _ => {}
        }
    }
    Some(RateLimit {
        remaining: remaining?,
        reset: reset?,
    })
}

/// `Retry-After` in seconds (the HTTP-date form is not used by the Hub and
/// is ignored).
pub fn parse_retry_after(headers: &HeaderMap) -> Option<Duration> {
    let secs: u64 = headers
        .get("retry-after")?
        .to_str()
        .ok()?
        .trim()
        .parse()
        .ok()?;
    Some(Duration::from_secs(secs).min(MAX_HINT))
}

/// How long a 429 asks to wait: the longer of `Retry-After` and the
/// `RateLimit` reset. A quota 429 that still shows `r > 0` without a reset
/// waits `quota_floor` (minutes, per the Hub's docs on commit quotas).
pub fn wait_after_429(headers: &HeaderMap, quota_floor: Duration) -> Duration {
    let retry_after = parse_retry_after(headers);
    let reset = parse_rate_limit(headers).map(|rl| {
        if rl.remaining == 0 || rl.reset > 0 {
            Duration::from_secs(rl.reset)
        } else {
            quota_floor
        }
    });
    match (retry_after, reset) {
        (None, None) => quota_floor,
        (a, b) => a.unwrap_or_default().max(b.unwrap_or_default()),
    }
    .min(MAX_HINT)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.insert(*k, v.parse().unwrap());
        }
        h
    }

    #[test]
    fn rate_limit_header_is_parsed() {
        let h = headers(&[("ratelimit", "\"api\";r=0;t=42")]);
        assert_eq!(
            parse_rate_limit(&h),
            Some(RateLimit {
                remaining: 0,
                reset: 42
            })
        );
        assert_eq!(
            wait_after_429(&h, Duration::from_secs(60)),
            Duration::from_secs(42)
        );
        assert_eq!(
            parse_rate_limit(&headers(&[("ratelimit", "garbage")])),
            None
        );
    }

    #[test]
    fn retry_after_wins_when_longer_and_is_clamped() {
        let h = headers(&[("ratelimit", "\"api\";r=0;t=5"), ("retry-after", "30")]);
        assert_eq!(
            wait_after_429(&h, Duration::from_secs(60)),
            Duration::from_secs(30)
        );
        let h = headers(&[("retry-after", "999999")]);
        assert_eq!(parse_retry_after(&h), Some(MAX_HINT));
        assert_eq!(
            wait_after_429(&HeaderMap::new(), Duration::from_secs(60)),
            Duration::from_secs(60)
        );
    }
}
