//! Attach points beyond tracepoints and uprobes (raw tracepoints, `profile`, `interval`,
//! `begin`, `end`), wildcard expansion, the rates those kinds imply, and the `probe` builtin.
//!
//! Rates: `profile:hz:N` fires N times a second on every CPU and `interval` once per period,
//! so their rate is known without a `rate` declaration; a declared rate below it is an error
//! (E0113), one above it is kept (it is still a true upper bound). `begin` and `end` run
//! once and need no rate. A wildcard expands to one probe per match, and a declared `rate`
//! applies to each of them separately (per attach point), as it does for `probe a, b`.

use super::super::{Checker, Val};
use super::{ProbeCx, ProbeKind};
use crate::ast::{self, AttachKind};
use crate::attach_kinds::{is_wildcard, wildcard_matches, MAX_PROFILE_HZ, MAX_WILDCARD_MATCHES};
use crate::diag::Diagnostic;
use crate::hir::{self, ExprKind};
use crate::span::Span;
use crate::types::Ty;

pub(super) use crate::attach_kinds::KINDS;

/// The longest `interval` period, in milliseconds (one day): longer ones would not fire in any
/// sensible run, and the kernel's period in nanoseconds must fit 64 bits.
const MAX_INTERVAL_MS: u64 = 86_400_000;

/// How many matches a wildcard note lists before summarising the rest.
const NOTE_LISTED_MATCHES: usize = 8;

impl Checker<'_> {
    /// The concrete attach points `point` stands for: itself, or one per name its wildcard
    /// matches (reported in a note), or none when the wildcard cannot be expanded (reported).
    pub(super) fn expand_wildcards(&mut self, point: &ast::AttachPoint) -> Vec<ast::AttachPoint> {
        let span = point.span;
        let (fixed_parts, pattern) = match &point.kind {
            AttachKind::Tracepoint { category, name } => (vec![category.as_str()], name.as_str()),
            AttachKind::Uprobe { path, symbol } | AttachKind::Uretprobe { path, symbol } => {
                (vec![path.as_str()], symbol.as_str())
            }
            AttachKind::RawTracepoint { name } => (vec![], name.as_str()),
            AttachKind::Usdt { site: None, .. } => return self.expand_usdt(point),
            _ => return vec![point.clone()],
        };
        if let Some(fixed) = fixed_parts.iter().find(|part| is_wildcard(part)) {
            self.report(
                Diagnostic::error("E0116", format!("`{fixed}` holds a wildcard, which only the last part may"), span)
                    .label("wildcard in a category or path")
                    .with_help(
                        "wildcards match tracepoint names and symbols, e.g. `tracepoint:syscalls:sys_enter_open*`",
                    ),
            );
            return vec![];
        }
        if !is_wildcard(pattern) {
            return vec![point.clone()];
        }
        let listed = match &point.kind {
            AttachKind::Tracepoint { category, .. } => self.targets.tracepoint_names(category),
            AttachKind::Uprobe { path, .. } | AttachKind::Uretprobe { path, .. } => {
                self.targets.elf_function_symbols(path)
            }
            _ => self.targets.raw_tracepoint_names(),
        };
        let pattern_text = attach_text(&point.kind);
        let candidates = match listed {
            Ok(candidates) => candidates,
            Err(error) => {
                let help = if error.unavailable {
                    "wildcards expand from the host's tracefs and ELF files: build on the target host, as root"
                } else {
                    "check the category or path"
                };
                self.report(
                    Diagnostic::error("E0116", format!("cannot expand `{pattern_text}`"), span)
                        .label(error.message)
                        .with_help(help),
                );
                return vec![];
            }
        };
        let matches: Vec<&String> = candidates.iter().filter(|name| wildcard_matches(pattern, name)).collect();
        if matches.is_empty() {
            let suggestions = closest_to_pattern(pattern, &candidates);
            let help = match suggestions.as_slice() {
                [] => "no name is even close; list them (`ls /sys/kernel/tracing/events/CATEGORY`, `nm -D PATH`)"
                    .to_string(),
                names => format!("the closest names are {}", names.join(", ")),
            };
            self.report(
                Diagnostic::error("E0114", format!("`{pattern_text}` matches no attach point"), span)
                    .label("no match")
                    .with_help(help),
            );
            return vec![];
        }
        if matches.len() > MAX_WILDCARD_MATCHES {
            self.report(
                Diagnostic::error(
                    "E0117",
                    format!(
                        "`{pattern_text}` matches {} attach points, more than {MAX_WILDCARD_MATCHES}",
                        matches.len()
                    ),
                    span,
                )
                .label("too broad")
                .with_help("each match is a separate program in the kernel; narrow the pattern"),
            );
            return vec![];
        }
        let expanded: Vec<ast::AttachPoint> = matches
            .iter()
            .map(|name| {
                let name = (*name).clone();
                let kind = match &point.kind {
                    AttachKind::Tracepoint { category, .. } => {
                        AttachKind::Tracepoint { category: category.clone(), name }
                    }
                    AttachKind::Uprobe { path, .. } => AttachKind::Uprobe { path: path.clone(), symbol: name },
                    AttachKind::Uretprobe { path, .. } => AttachKind::Uretprobe { path: path.clone(), symbol: name },
                    _ => AttachKind::RawTracepoint { name },
                };
                ast::AttachPoint { kind, span }
            })
            .collect();
        let mut shown: Vec<String> = expanded.iter().take(NOTE_LISTED_MATCHES).map(|p| attach_text(&p.kind)).collect();
        if expanded.len() > NOTE_LISTED_MATCHES {
            shown.push(format!("and {} more", expanded.len() - NOTE_LISTED_MATCHES));
        }
        let count = expanded.len();
        self.report(
            Diagnostic::note(
                "W0100",
                format!(
                    "{pattern_text} matched {count} attach point{}: {}",
                    if count == 1 { "" } else { "s" },
                    shown.join(", ")
                ),
                span,
            )
            .label(format!("one probe per match{}", if count == 1 { "" } else { ", each checked on its own" })),
        );
        expanded
    }

    /// Checks an attach point of a kind handled here and sets the probe's context kind.
    pub(super) fn attach_other_kind(&mut self, point: &ast::AttachPoint, cx: &mut ProbeCx) -> Option<hir::Attach> {
        let span = point.span;
        match &point.kind {
            AttachKind::RawTracepoint { name } => {
                cx.kind = ProbeKind::RawTracepoint;
                if let Ok(names) = self.targets.raw_tracepoint_names() {
                    if !names.contains(name) {
                        let suggestions = closest_to_pattern(name, &names);
                        let help = match suggestions.as_slice() {
                            [] => "list them with `cut -d: -f2 /sys/kernel/tracing/available_events`".to_string(),
                            names => format!("did you mean one of {}?", names.join(", ")),
                        };
                        self.report(
                            Diagnostic::error("E0111", format!("unknown raw tracepoint `{name}`"), span)
                                .label("the host has no such tracepoint")
                                .with_help(help),
                        );
                    }
                }
                // An unavailable host is not reported: nothing the probe reads depends on it.
                Some(hir::Attach::RawTracepoint { name: name.clone(), span })
            }
            AttachKind::Profile { hz } => {
                cx.kind = ProbeKind::NoContext;
                if !(1..=MAX_PROFILE_HZ).contains(hz) {
                    self.report(
                        Diagnostic::error("E0112", format!("profile frequency {hz} Hz is out of range"), span)
                            .label(format!("must be 1 to {MAX_PROFILE_HZ} Hz"))
                            .with_help("sample at a modest frequency, e.g. `profile:hz:99`"),
                    );
                    return None;
                }
                Some(hir::Attach::Profile { hz: *hz, span })
            }
            AttachKind::Interval { unit, count } => {
                cx.kind = ProbeKind::NoContext;
                let period_ms = count.checked_mul(unit.millis()).filter(|ms| (1..=MAX_INTERVAL_MS).contains(ms));
                let Some(period_ms) = period_ms else {
                    self.report(
                        Diagnostic::error(
                            "E0112",
                            format!("interval period {count}{} is out of range", unit.as_str()),
                            span,
                        )
                        .label("must be 1 ms to 1 day")
                        .with_help("e.g. `interval:ms:100` or `interval:s:1`"),
                    );
                    return None;
                };
                Some(hir::Attach::Interval { period_ms, span })
            }
            AttachKind::Begin => {
                cx.kind = ProbeKind::NoContext;
                Some(hir::Attach::Begin { span })
            }
            AttachKind::End => {
                cx.kind = ProbeKind::NoContext;
                Some(hir::Attach::End { span })
            }
            _ => None,
        }
    }

    /// `arg0`..`arg5` and `retval` in a raw tracepoint or context-free probe.
    pub(super) fn other_kind_context_name(&mut self, name: &str, span: Span) -> Val {
        let Some(cx) = self.probe.as_ref() else { return Val::Error };
        let kind_name = cx.full_name.split(':').next().unwrap_or_default().to_string();
        match (cx.kind, name) {
            (ProbeKind::RawTracepoint, arg) if arg.starts_with("arg") => {
                let index = u32::from(arg.as_bytes()[3] - b'0');
                let kind = ExprKind::CtxField { offset: index * 8, size: 8, signed: false };
                Val::Typed(hir::Expr { kind, ty: Ty::U64, span })
            }
            (ProbeKind::RawTracepoint, _) => {
                self.report(
                    Diagnostic::error("E0115", "`retval` is not available in rawtracepoint probes", span)
                        .label("a raw tracepoint has arguments, not a return value")
                        .with_help("read its arguments as `arg0`..`arg5`; `retval` needs a uretprobe"),
                );
                Val::Error
            }
            _ => {
                self.report(
                    Diagnostic::error("E0115", format!("`{name}` is not available in {kind_name} probes"), span)
                        .label(format!("this {kind_name} probe has no arguments"))
                        .with_help("profile, interval, begin and end probes read builtins only (pid, tid, comm, cpu, nsecs, uid)"),
                );
                Val::Error
            }
        }
    }

    /// `args.FIELD` in a probe of a kind handled here.
    pub(super) fn report_args_unavailable(&mut self, span: Span) {
        let Some(cx) = self.probe.as_ref() else { return };
        let kind_name = cx.full_name.split(':').next().unwrap_or_default().to_string();
        let help = if cx.kind == ProbeKind::RawTracepoint {
            "raw tracepoints have no record to name fields of: read `arg0`..`arg5`, or use `tracepoint:CATEGORY:NAME`"
        } else {
            "profile, interval, begin and end probes read builtins only (pid, tid, comm, cpu, nsecs, uid)"
        };
        self.report(
            Diagnostic::error("E0115", format!("`args` is not available in {kind_name} probes"), span)
                .label("no tracepoint record here")
                .with_help(help),
        );
    }

    /// The probe's event rate: declared, or implied by its kind (`profile`, `interval`), the
    /// larger when both; `None` for a probe that runs once or declares nothing.
    pub(super) fn probe_rate(&mut self, decl: &ast::ProbeDecl, attach: &hir::Attach) -> Option<u64> {
        let declared = decl.rate.as_ref();
        let (implied, how) = match attach {
            hir::Attach::Profile { hz, .. } => {
                let Some(cpus) = self.targets.online_cpus() else {
                    // Unknown CPU count (no host): only a declared rate can be used.
                    return declared.map(|rate| rate.node);
                };
                (hz.saturating_mul(u64::from(cpus)), format!("{hz} Hz on each of {cpus} CPUs"))
            }
            hir::Attach::Interval { period_ms, .. } => {
                (1000u64.div_ceil(*period_ms), format!("one event every {period_ms} ms, rounded up per second"))
            }
            hir::Attach::Begin { span } | hir::Attach::End { span } => {
                if let Some(rate) = declared {
                    self.report(
                        Diagnostic::error(
                            "W0101",
                            format!("`{}` runs once: its rate is not used", attach.full_name()),
                            rate.span,
                        )
                        .label("ignored")
                        .with_secondary(*span, "runs exactly once")
                        .with_help("remove the `rate` declaration"),
                    );
                }
                return None;
            }
            _ => return declared.map(|rate| rate.node),
        };
        match declared {
            Some(rate) if rate.node < implied => {
                self.report(
                    Diagnostic::error(
                        "E0113",
                        format!(
                            "declared rate {}/s is below the {implied}/s `{}` fires at",
                            rate.node,
                            attach.full_name()
                        ),
                        rate.span,
                    )
                    .label(format!("{how} is {implied}/s"))
                    .with_help(format!("remove the declaration (the rate is known), or declare `rate <= {implied}/s`")),
                );
                Some(implied)
            }
            Some(rate) => Some(rate.node),
            None => Some(implied),
        }
    }

    /// The `probe` builtin: the attach point's full name, a string constant per probe.
    pub(in crate::check) fn probe_builtin(&mut self, name: &str, span: Span) -> Option<Val> {
        if name != "probe" {
            return None;
        }
        let Some(cx) = self.probe.as_ref() else {
            self.report(
                Diagnostic::error("E0217", "`probe` is not a constant", span)
                    .label("differs per attach point")
                    .with_help("use `probe` inside a probe, e.g. `hits[probe].inc();`"),
            );
            return Some(Val::Error);
        };
        if cx.full_name.is_empty() {
            // The attach point itself failed (reported there).
            return Some(Val::Error);
        }
        Some(Val::StrLit { bytes: cx.full_name.as_bytes().to_vec(), span })
    }
}

/// An attach point as written (for messages), wildcards included.
fn attach_text(kind: &AttachKind) -> String {
    match kind {
        AttachKind::Tracepoint { category, name } => format!("tracepoint:{category}:{name}"),
        AttachKind::Uprobe { path, symbol } => format!("uprobe:{path}:{symbol}"),
        AttachKind::Uretprobe { path, symbol } => format!("uretprobe:{path}:{symbol}"),
        AttachKind::Usdt { path, provider, name, .. } => format!("usdt:{path}:{provider}:{name}"),
        AttachKind::RawTracepoint { name } => format!("rawtracepoint:{name}"),
        AttachKind::Profile { hz } => format!("profile:hz:{hz}"),
        AttachKind::Interval { unit, count } => format!("interval:{}:{count}", unit.as_str()),
        AttachKind::Begin => "begin".to_string(),
        AttachKind::End => "end".to_string(),
        AttachKind::Unknown { kind, parts } => format!("{kind}:{}", parts.join(":")),
    }
}

/// Up to three candidates closest to `pattern` (its `*` removed), by Jaro-Winkler similarity;
/// poor matches are left out rather than offered as noise.
fn closest_to_pattern(pattern: &str, candidates: &[String]) -> Vec<String> {
    let literal: String = pattern.chars().filter(|&c| c != '*').collect();
    let mut scored: Vec<(f64, &String)> = candidates
        .iter()
        .map(|candidate| {
            // Compare against the candidate cut to the pattern's length too, so that a prefix
            // pattern (`sys_enter_opn*`) finds long names that start almost like it.
            let cut: String = candidate.chars().take(literal.chars().count()).collect();
            let score = strsim::jaro_winkler(&literal, candidate).max(strsim::jaro_winkler(&literal, &cut));
            (score, candidate)
        })
        .filter(|(score, _)| *score >= 0.85)
        .collect();
    scored.sort_by(|(a, name_a), (b, name_b)| b.total_cmp(a).then_with(|| name_a.cmp(name_b)));
    scored.into_iter().take(3).map(|(_, name)| format!("`{name}`")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn closest_names_prefer_near_prefixes() {
        let names: Vec<String> = ["sys_enter_openat", "sys_enter_close", "sched_switch"].map(String::from).to_vec();
        let close = closest_to_pattern("sys_enter_opn*", &names);
        assert_eq!(close.first().map(String::as_str), Some("`sys_enter_openat`"), "{close:?}");
        assert!(closest_to_pattern("zzzz*", &names).is_empty());
    }

    #[test]
    fn attach_text_keeps_wildcards() {
        let kind = AttachKind::Tracepoint { category: "syscalls".into(), name: "sys_enter_open*".into() };
        assert_eq!(attach_text(&kind), "tracepoint:syscalls:sys_enter_open*");
    }

    #[test]
    fn kinds_table_lists_every_parsed_kind() {
        for kind in ["rawtracepoint", "profile", "interval", "begin", "end"] {
            assert!(KINDS.contains(&kind), "{kind}");
            assert_ne!(crate::attach_kinds::syntax(kind), "KIND:...");
        }
    }
}
