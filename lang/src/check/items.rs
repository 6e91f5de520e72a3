//! Top-level items: the budget, consts and map declarations.

use super::{closest, Checker, ConstInfo, ConstValue, MapInfo, Val, DEFAULT_BUDGET_PERCENT};
use crate::ast::{self, MapKindAst, TypeExpr, TypeExprKind};
use crate::diag::Diagnostic;
use crate::hir::{ExprKind, MapKind};
use crate::lexer::{Lexer, Tok};
use crate::span::{Ident, Span};
use crate::types::Ty;
use std::collections::HashMap;

/// Longest `str[N]` a key or value may be (eBPF keeps keys and values on a 512-byte stack).
pub const MAX_STR_LEN: u64 = 256;

/// Most buckets an `lhist` may have (its value is one array of counters).
pub const MAX_LHIST_BUCKETS: i128 = 1024;

/// Most slots an `array[N]` may have (its kernel map is allocated whole when loaded).
pub const MAX_ARRAY_LEN: u64 = 1 << 20;

const MAP_KINDS: &[&str] = &[
    "count",
    "sum",
    "min",
    "max",
    "avg",
    "stats",
    "hist",
    "lhist",
    "hash",
    "lru_hash",
    "percpu_hash",
    "lru_percpu_hash",
    "array",
    "percpu_array",
];
const TYPE_NAMES: &[&str] = &["u8", "u16", "u32", "u64", "i8", "i16", "i32", "i64", "bool", "str"];

impl Checker<'_> {
    /// The file's budget: the first `budget` item, within `(0, 0.5]`.
    pub(super) fn check_budget(&mut self, file: &ast::File) -> f64 {
        let mut first: Option<Span> = None;
        let mut budget = DEFAULT_BUDGET_PERCENT;
        for item in &file.items {
            let ast::Item::Budget { percent, span } = item else { continue };
            if let Some(first_span) = first {
                self.report(
                    Diagnostic::error("E0307", "budget declared twice", *span)
                        .label("second budget")
                        .with_secondary(first_span, "first declared here")
                        .with_help("keep one `budget` line"),
                );
                continue;
            }
            first = Some(*span);
            let value = percent.node;
            if value > DEFAULT_BUDGET_PERCENT {
                self.report(
                    Diagnostic::error("E0308", "budget may only be lowered below the 0.5 % invariant", percent.span)
                        .label(format!("{value}% is above 0.5%"))
                        .with_help("use a budget in (0, 0.5], e.g. `budget 0.25%;`"),
                );
            } else if value <= 0.0 {
                self.report(
                    Diagnostic::error("E0308", "budget must be positive", percent.span)
                        .label("no probe can run within a budget of 0%")
                        .with_help("use a budget in (0, 0.5], e.g. `budget 0.25%;`"),
                );
            } else {
                budget = value;
            }
        }
        budget
    }

    /// Declares every map (so probes may use maps declared below them) and evaluates the
    /// consts in file order.
    pub(super) fn declare_globals(&mut self, file: &ast::File) {
        let mut defined: HashMap<String, Span> = HashMap::new();
        for item in &file.items {
            let name = match item {
                ast::Item::Map(map) => &map.name,
                ast::Item::Const { name, .. } => name,
                _ => continue,
            };
            if let Some(first) = defined.get(&name.node) {
                self.report(
                    Diagnostic::error("E0103", format!("`{}` is defined twice", name.node), name.span)
                        .label("defined again here")
                        .with_secondary(*first, "first defined here")
                        .with_help("maps and consts share one namespace; rename one of them"),
                );
                continue;
            }
            defined.insert(name.node.clone(), name.span);
            match item {
                ast::Item::Map(map) => self.declare_map(map),
                ast::Item::Const { name, .. } => {
                    self.declared_consts.insert(name.node.clone(), name.span);
                }
                _ => {}
            }
        }
        for item in &file.items {
            if let ast::Item::Const { name, value, .. } = item {
                if self.consts.contains_key(&name.node) || defined.get(&name.node) != Some(&name.span) {
                    continue; // a duplicate, already reported
                }
                let mut value = self.const_value(value);
                if let Some(text) = self.override_for(&name.node) {
                    value = self.overridden_value(name, value, &text);
                }
                self.consts.insert(name.node.clone(), ConstInfo { value });
            }
        }
        self.report_unknown_overrides();
    }

    /// The last `-D` value given for const `name` (a later `-D` wins, as in C compilers).
    fn override_for(&self, name: &str) -> Option<String> {
        self.const_overrides.iter().rev().find(|(n, _)| n == name).map(|(_, value)| value.clone())
    }

    /// The value `-D NAME=text` gives const `name`, which was declared as `declared`.
    fn overridden_value(&mut self, name: &Ident, declared: Option<ConstValue>, text: &str) -> Option<ConstValue> {
        let kind = |value: &ConstValue| match value {
            ConstValue::Int(_) => "an integer",
            ConstValue::Str(_) => "a string",
            ConstValue::Bool(_) => "a bool",
        };
        let Some(given) = override_literal(text) else {
            self.report(
                Diagnostic::error("E0502", format!("`-D {}={text}` is not a literal", name.node), name.span)
                    .label("the const it overrides")
                    .with_help("give an integer (`-D N=42`), a quoted string (`-D S='\"bash\"'`) or `true`/`false`"),
            );
            return None;
        };
        match declared {
            Some(declared) if std::mem::discriminant(&declared) != std::mem::discriminant(&given) => {
                self.report(
                    Diagnostic::error(
                        "E0502",
                        format!(
                            "`-D {}={text}` gives {}, but the const is {}",
                            name.node,
                            kind(&given),
                            kind(&declared)
                        ),
                        name.span,
                    )
                    .label(format!("declared as {} here", kind(&declared)))
                    .with_help(format!("override it with {}", kind(&declared))),
                );
                None
            }
            // The declared value had errors (already reported): keep the file failing.
            None => None,
            Some(_) => Some(given),
        }
    }

    /// `-D` names that match no const: one error listing the consts there are.
    fn report_unknown_overrides(&mut self) {
        let mut known: Vec<&String> = self.declared_consts.keys().collect();
        known.sort();
        let unknown: Vec<String> = self
            .const_overrides
            .iter()
            .map(|(name, _)| name)
            .filter(|name| !self.declared_consts.contains_key(*name))
            .cloned()
            .collect();
        let listing = match known.as_slice() {
            [] => "the file declares no consts".to_string(),
            names => format!(
                "its consts are: {}",
                names.iter().map(|name| format!("`{name}`")).collect::<Vec<_>>().join(", ")
            ),
        };
        let suggestion_pool: Vec<String> = known.iter().map(|name| name.to_string()).collect();
        for name in unknown {
            let help = match closest(&name, suggestion_pool.iter().map(String::as_str)) {
                Some(close) => format!("did you mean `-D {close}=...`? {listing}"),
                None => listing.clone(),
            };
            self.report(
                Diagnostic::error(
                    "E0502",
                    format!("`-D {name}`: the file declares no const `{name}`"),
                    Span::new(0, 0),
                )
                .label("-D names a `const` of this file")
                .with_help(help),
            );
        }
    }

    fn const_value(&mut self, expr: &ast::Expr) -> Option<ConstValue> {
        self.probe = None;
        match self.expr(expr) {
            Val::IntLit { value, .. } => Some(ConstValue::Int(value)),
            Val::StrLit { bytes, .. } => Some(ConstValue::Str(bytes)),
            Val::Typed(typed) => match typed.kind {
                ExprKind::Bool(value) => Some(ConstValue::Bool(value)),
                _ => {
                    self.report(
                        Diagnostic::error("E0217", "const value is not a constant", expr.span)
                            .label(format!("a run-time value of type `{}`", typed.ty))
                            .with_help("a const is an integer, string or bool literal, or arithmetic on them"),
                    );
                    None
                }
            },
            Val::Error => None,
        }
    }

    fn declare_map(&mut self, decl: &ast::MapDecl) {
        let kind = self.map_kind(&decl.kind);
        let key: Option<Vec<Ty>> =
            decl.key.iter().map(|ty| self.resolve_type(ty)).collect::<Vec<_>>().into_iter().collect();
        let value = decl.value.as_ref().and_then(|ty| {
            let resolved = self.resolve_type(ty);
            self.stack_type_misplaced(ty, resolved, "a map's value type")
        });
        let name = &decl.name.node;
        // Checked as an array even when its length was invalid (reported), so that its
        // declaration is not also judged by the rules of keyed maps.
        let is_array = matches!(decl.kind.node, MapKindAst::Array { .. });
        if is_array {
            self.check_array_decl(decl, value);
        }
        let is_hash = kind == Some(MapKind::Hash);
        if is_hash && decl.value.is_none() {
            self.report(
                Diagnostic::error("E0214", format!("hash map `{name}` needs a value type"), decl.kind.span)
                    .label("no `-> TYPE`")
                    .with_help(format!("declare the value type, e.g. `map {name}: hash[u32] -> u64 max 1024;`")),
            );
        }
        if is_hash && decl.key.is_empty() {
            self.report(
                Diagnostic::error("E0214", format!("hash map `{name}` needs a key type"), decl.kind.span)
                    .label("no `[KEY]`")
                    .with_help(format!("declare the key type, e.g. `map {name}: hash[u32] -> u64 max 1024;`")),
            );
        }
        if let (Some(kind), Some(value_ty)) = (kind, &decl.value) {
            if !kind.is_plain() {
                self.report(
                    Diagnostic::error("E0214", "only hash maps have a value type", value_ty.span)
                        .label("aggregations infer their value type")
                        .with_help("remove `-> TYPE`"),
                );
            }
        }
        match (&decl.max, decl.key.is_empty()) {
            // Arrays: reported by `check_array_decl`.
            _ if is_array => {}
            (None, false) => self.report(
                Diagnostic::error("E0212", format!("keyed map `{name}` needs a size"), decl.span)
                    .label("no `max N`")
                    .with_help("add `max 1024` (the most distinct keys it holds) before the `;`"),
            ),
            (Some(max), false) if max.node == 0 => self.report(
                Diagnostic::error("E0212", format!("map `{name}` cannot hold 0 entries"), max.span)
                    .label("`max` must be at least 1")
                    .with_help("use e.g. `max 1024`"),
            ),
            (Some(max), true) => self.report(
                Diagnostic::error("E0213", format!("unkeyed map `{name}` holds one value"), max.span)
                    .label("`max` only applies to keyed maps")
                    .with_help("remove `max N`, or add a key like `[u32]`"),
            ),
            _ => {}
        }
        let (key, max_entries) = match kind {
            // An array is indexed by one `u64` (stored as the kernel's `u32` index).
            Some(MapKind::Array { len, .. }) => (Some(vec![Ty::U64]), Some(len as u64)),
            _ => (key, decl.max.as_ref().map(|max| max.node)),
        };
        let lru = self.map_flags(decl, is_array);
        let per_cpu = self.check_per_cpu_hash_decl(decl, value);
        let id = self.maps.len();
        self.maps.push(MapInfo {
            name: name.clone(),
            span: decl.name.span,
            kind,
            key,
            value: if kind.is_some_and(MapKind::is_plain) { value } else { None },
            max_entries,
            records_signed: false,
            lru,
            per_cpu,
        });
        self.map_ids.insert(name.clone(), id);
    }

    /// Whether the declaration is a `percpu_hash` / `lru_percpu_hash`; its values must be
    /// integers (E0214), as each CPU holds its own and reading sums them.
    fn check_per_cpu_hash_decl(&mut self, decl: &ast::MapDecl, value: Option<Ty>) -> bool {
        let shared_kind = match decl.kind.node {
            MapKindAst::PerCpuHash => "hash",
            MapKindAst::LruPerCpuHash => "lru_hash",
            _ => return false,
        };
        if let (Some(ty), Some(resolved)) = (&decl.value, value) {
            if !resolved.is_int() {
                let name = &decl.name.node;
                self.report(
                    Diagnostic::error("E0214", format!("per-CPU hash map `{name}` must hold integers"), ty.span)
                        .label(format!("`{resolved}` values of several CPUs cannot be summed"))
                        .with_help(format!("use an integer type, or a shared `{shared_kind}` map")),
                );
            }
        }
        true
    }

    /// Whether the map is LRU-backed: `lru_hash`, or the `lru` flag after `max N` on a keyed map
    /// (E0260 for an unknown flag, E0261 for `lru` on a map without keys).
    fn map_flags(&mut self, decl: &ast::MapDecl, is_array: bool) -> bool {
        let name = &decl.name.node;
        let mut lru = matches!(decl.kind.node, MapKindAst::LruHash | MapKindAst::LruPerCpuHash);
        for flag in &decl.flags {
            if flag.node != "lru" {
                self.report(
                    Diagnostic::error("E0260", format!("unknown map flag `{}`", flag.node), flag.span)
                        .label("not a map flag")
                        .with_help("the only map flag is `lru`, after `max N`: `map seen: count[u32] max 1024 lru;`"),
                );
            } else if is_array || decl.key.is_empty() {
                self.report(
                    Diagnostic::error("E0261", format!("map `{name}` has no keys to evict"), flag.span)
                        .label("`lru` applies to keyed maps")
                        .with_help("remove `lru`, or give the map keys and a size: `count[u32] max 1024 lru`"),
                );
            } else {
                lru = true;
            }
        }
        lru
    }

    /// The parts of an array declaration `map NAME: array[N] -> TYPE;` that `map_kind`
    /// cannot see: no key types, no `max`, a value type (an integer for per-CPU arrays,
    /// whose per-CPU values are summed when read).
    fn check_array_decl(&mut self, decl: &ast::MapDecl, value: Option<Ty>) {
        let name = &decl.name.node;
        let MapKindAst::Array { per_cpu, .. } = decl.kind.node else { return };
        if let Some(first) = decl.key.first() {
            self.report(
                Diagnostic::error(
                    "E0224",
                    format!("array `{name}` is indexed by position, not by key types"),
                    first.span,
                )
                .label("key types are for hash maps and aggregations")
                .with_help(format!("give the length instead: `map {name}: array[256] -> u64;`")),
            );
        }
        if let Some(max) = &decl.max {
            self.report(
                Diagnostic::error("E0224", format!("array `{name}` has a fixed length"), max.span)
                    .label("`max` is for keyed maps")
                    .with_help("remove `max N`; the length goes in brackets: `array[256]`"),
            );
        }
        match (&decl.value, value) {
            (None, _) => self.report(
                Diagnostic::error("E0214", format!("array `{name}` needs a value type"), decl.kind.span)
                    .label("no `-> TYPE`")
                    .with_help(format!("declare the value type, e.g. `map {name}: array[256] -> u64;`")),
            ),
            (Some(ty), Some(resolved)) if per_cpu && !resolved.is_int() => self.report(
                Diagnostic::error("E0214", format!("per-CPU array `{name}` must hold integers"), ty.span)
                    .label(format!("`{resolved}` values of several CPUs cannot be summed"))
                    .with_help("use an integer type, or a shared `array[N]`"),
            ),
            _ => {}
        }
    }

    fn map_kind(&mut self, kind: &crate::span::Spanned<MapKindAst>) -> Option<MapKind> {
        Some(match &kind.node {
            MapKindAst::Array { len, per_cpu } => match len {
                Some(len) if (1..=MAX_ARRAY_LEN).contains(len) => {
                    MapKind::Array { len: *len as u32, per_cpu: *per_cpu }
                }
                Some(len) => {
                    self.report(
                        Diagnostic::error("E0224", format!("invalid array length {len}"), kind.span)
                            .label(format!("must be 1 to {MAX_ARRAY_LEN}"))
                            .with_help("e.g. `array[256] -> u64`"),
                    );
                    return None;
                }
                None => {
                    self.report(
                        Diagnostic::error("E0224", "array map without a length", kind.span)
                            .label("expected `array[N]`")
                            .with_help("give the number of slots, e.g. `map slots: array[256] -> u64;`"),
                    );
                    return None;
                }
            },
            MapKindAst::Count => MapKind::Count,
            MapKindAst::Sum => MapKind::Sum,
            MapKindAst::Min => MapKind::Min,
            MapKindAst::Max => MapKind::Max,
            MapKindAst::Avg => MapKind::Avg,
            MapKindAst::Hist => MapKind::Hist,
            MapKindAst::Hash | MapKindAst::LruHash | MapKindAst::PerCpuHash | MapKindAst::LruPerCpuHash => {
                MapKind::Hash
            }
            MapKindAst::Stats => MapKind::Stats,
            MapKindAst::Lhist { lo, hi, step } => {
                let (lo, hi, step) = (*lo, *hi, *step);
                let problem = if lo >= hi {
                    Some(format!("`lo` ({lo}) must be below `hi` ({hi})"))
                } else if step <= 0 {
                    Some(format!("`step` ({step}) must be positive"))
                } else if (hi as i128 - lo as i128 + step as i128 - 1) / step as i128 + 2 > MAX_LHIST_BUCKETS {
                    Some(format!("more than {MAX_LHIST_BUCKETS} buckets"))
                } else {
                    None
                };
                if let Some(problem) = problem {
                    self.report(
                        Diagnostic::error("E0215", "invalid `lhist` bounds", kind.span).label(problem).with_help(
                            "write `lhist(lo, hi, step)` with lo < hi, step > 0, e.g. `lhist(0, 1000, 100)`",
                        ),
                    );
                    return None;
                }
                MapKind::Lhist { lo, hi, step }
            }
            MapKindAst::Unknown(name) => {
                let help = match closest(name, MAP_KINDS.iter().copied()) {
                    Some(kind) => format!("did you mean `{kind}`?"),
                    None => {
                        "the map kinds are count, sum, min, max, avg, stats, hist, lhist(lo, hi, step), hash, lru_hash, percpu_hash, lru_percpu_hash, array[N] and percpu_array[N]".to_string()
                    }
                };
                self.report(
                    Diagnostic::error("E0104", format!("unknown map kind `{name}`"), kind.span)
                        .label("not a map kind")
                        .with_help(help),
                );
                return None;
            }
        })
    }

    /// A key, value or cast type; `None` (reported) if it is not one.
    pub(super) fn resolve_type(&mut self, ty: &TypeExpr) -> Option<Ty> {
        match &ty.kind {
            TypeExprKind::Named(name) => {
                if let Some(resolved) = Ty::from_name(name) {
                    return Some(resolved);
                }
                if name == "ustack" || name == "kstack" {
                    return Some(Ty::Stack { user: name == "ustack", depth: crate::types::DEFAULT_STACK_DEPTH });
                }
                let help = if name == "str" {
                    "strings need a length: `str[16]`".to_string()
                } else {
                    match closest(name, TYPE_NAMES.iter().copied()) {
                        Some(known) => format!("did you mean `{known}`?"),
                        None => "the types are u8, u16, u32, u64, i8, i16, i32, i64, bool and str[N]".to_string(),
                    }
                };
                self.report(
                    Diagnostic::error("E0105", format!("unknown type `{name}`"), ty.span)
                        .label("not a type")
                        .with_help(help),
                );
                None
            }
            TypeExprKind::Str(len) if (1..=MAX_STR_LEN).contains(len) => Some(Ty::Str { len: *len as u32 }),
            TypeExprKind::Stack { user, depth } => self.resolve_stack_type(*user, *depth, ty.span),
            TypeExprKind::Buf(len) if (1..=MAX_STR_LEN).contains(len) => Some(Ty::Buf { len: *len as u32 }),
            TypeExprKind::Buf(len) => {
                self.report(
                    Diagnostic::error("E0262", format!("invalid buffer length {len}"), ty.span)
                        .label(format!("must be 1 to {MAX_STR_LEN}"))
                        .with_help("e.g. `buf[16]` for 16 raw bytes"),
                );
                None
            }
            TypeExprKind::Str(len) => {
                self.report(
                    Diagnostic::error("E0216", format!("invalid string length {len}"), ty.span)
                        .label(format!("must be 1 to {MAX_STR_LEN}"))
                        .with_help("e.g. `str[16]` for a command name"),
                );
                None
            }
        }
    }
}

/// A `-D` value read by the language's own lexer: an integer (optionally negated), a
/// quoted string, or `true`/`false`. `None` for anything else, including lexical errors.
fn override_literal(text: &str) -> Option<ConstValue> {
    let mut lexer = Lexer::new(text);
    let tokens: Vec<Tok<'_>> = lexer.by_ref().map(|(_, token, _)| token).collect();
    if !lexer.diagnostics.is_empty() {
        return None;
    }
    match tokens.as_slice() {
        [Tok::Int(value)] => Some(ConstValue::Int(*value as i128)),
        [Tok::Minus, Tok::Int(value)] => Some(ConstValue::Int(-(*value as i128))),
        [Tok::Str(value)] => Some(ConstValue::Str(value.as_bytes().to_vec())),
        [Tok::True] => Some(ConstValue::Bool(true)),
        [Tok::False] => Some(ConstValue::Bool(false)),
        _ => None,
    }
}
