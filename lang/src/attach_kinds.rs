//! The attach kinds beyond tracepoints and uprobes (raw tracepoints, `profile`, `interval`,
//! `begin`, `end`), and the wildcard matching every name-based kind shares. One table of
//! syntaxes and examples, so that a new kind (e.g. USDT) is one more row and one more arm.

use crate::ast::{AttachKind, IntervalUnit};

/// Every probe kind the language knows, for "unknown probe kind" suggestions.
pub const KINDS: &[&str] =
    &["tracepoint", "uprobe", "uretprobe", "usdt", "rawtracepoint", "profile", "interval", "begin", "end"];

/// The highest `profile:hz:N` accepted: beyond this the kernel's `perf_event_max_sample_rate`
/// (100 kHz by default, lowered under load) refuses or throttles the event anyway.
pub const MAX_PROFILE_HZ: u64 = 100_000;

/// The shortest `interval` period, in milliseconds: shorter timers would be a busy loop on one
/// CPU rather than a periodic probe.
pub const MIN_INTERVAL_MS: u64 = 1;

/// At most this many attach points per wildcard: each one is a separate program to load.
pub const MAX_WILDCARD_MATCHES: usize = 256;

/// The syntax of `kind` (one of the kinds this module parses), for messages.
pub fn syntax(kind: &str) -> &'static str {
    match kind {
        "rawtracepoint" => "rawtracepoint:NAME",
        "profile" => "profile:hz:N",
        "interval" => "interval:ms:N` or `interval:s:N",
        "begin" => "begin",
        "end" => "end",
        _ => "KIND:...",
    }
}

/// One example use of `kind`, as a help line.
pub fn example(kind: &str) -> String {
    let example = match kind {
        "rawtracepoint" => "probe rawtracepoint:sys_enter { .. }",
        "profile" => "probe profile:hz:99 { samples[pid].inc(); }",
        "interval" => "probe interval:ms:100 { .. } or probe interval:s:1 { .. }",
        "begin" => "probe begin { .. } (no `:` parts)",
        "end" => "probe end { .. } (no `:` parts)",
        _ => "probe tracepoint:CATEGORY:NAME { .. }",
    };
    format!("e.g. `{example}`")
}

/// Parses the `:`-separated parts after one of `rawtracepoint`, `profile`, `interval`, `begin`
/// and `end`; on failure returns the expected syntax.
pub fn parse_timed_or_once(kind: &str, parts: &[String]) -> Result<AttachKind, &'static str> {
    let number = |text: &str| text.parse::<u64>().ok().filter(|_| text.bytes().all(|b| b.is_ascii_digit()));
    let parsed = match (kind, parts) {
        ("rawtracepoint", [name]) if !name.is_empty() => Some(AttachKind::RawTracepoint { name: name.clone() }),
        ("profile", [unit, hz]) if unit == "hz" => number(hz).map(|hz| AttachKind::Profile { hz }),
        ("interval", [unit, count]) => {
            let unit = match unit.as_str() {
                "ms" => Some(IntervalUnit::Millis),
                "s" => Some(IntervalUnit::Seconds),
                _ => None,
            };
            unit.zip(number(count)).map(|(unit, count)| AttachKind::Interval { unit, count })
        }
        ("begin", []) => Some(AttachKind::Begin),
        ("end", []) => Some(AttachKind::End),
        _ => None,
    };
    parsed.ok_or_else(|| syntax(kind))
}

/// Does `name` contain a wildcard?
pub fn is_wildcard(name: &str) -> bool {
    name.contains('*')
}

/// Glob matching with `*` (any run of characters, possibly empty); every other character
/// matches itself. Iterative with one backtrack point, so linear-ish and never recursive.
pub fn wildcard_matches(pattern: &str, name: &str) -> bool {
    let (pattern, name) = (pattern.as_bytes(), name.as_bytes());
    let (mut p, mut n) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while n < name.len() {
        if p < pattern.len() && pattern[p] == b'*' {
            star = Some((p, n));
            p += 1;
        } else if p < pattern.len() && pattern[p] == name[n] {
            p += 1;
            n += 1;
        } else if let Some((star_p, star_n)) = star {
            p = star_p + 1;
            n = star_n + 1;
            star = Some((star_p, star_n + 1));
        } else {
            return false;
        }
    }
    pattern[p..].iter().all(|&b| b == b'*')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wildcards_match_like_shell_globs() {
        assert!(wildcard_matches("sys_enter_open*", "sys_enter_openat"));
        assert!(wildcard_matches("sys_enter_open*", "sys_enter_open"));
        assert!(wildcard_matches("*open*", "sys_enter_openat2"));
        assert!(wildcard_matches("handle_*_req", "handle_get_req"));
        assert!(!wildcard_matches("handle_*_req", "handle_get_reply"));
        assert!(!wildcard_matches("sys_enter_open*", "sys_exit_openat"));
        assert!(wildcard_matches("*", ""));
        assert!(!wildcard_matches("a", ""));
    }

    #[test]
    fn timed_kinds_parse_and_reject_bad_parts() {
        let parts = |text: &[&str]| text.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert_eq!(parse_timed_or_once("profile", &parts(&["hz", "99"])), Ok(AttachKind::Profile { hz: 99 }));
        assert_eq!(
            parse_timed_or_once("interval", &parts(&["s", "2"])),
            Ok(AttachKind::Interval { unit: IntervalUnit::Seconds, count: 2 })
        );
        assert_eq!(parse_timed_or_once("interval", &parts(&["us", "2"])), Err(syntax("interval")));
        assert_eq!(parse_timed_or_once("profile", &parts(&["hz", "+5"])), Err(syntax("profile")));
        assert_eq!(parse_timed_or_once("begin", &parts(&["x"])), Err("begin"));
        assert_eq!(parse_timed_or_once("rawtracepoint", &parts(&[""])), Err(syntax("rawtracepoint")));
    }
}
