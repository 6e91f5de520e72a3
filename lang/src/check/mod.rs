//! Name resolution and type checking: an [`ast::File`] to a [`hir::Program`].
//!
//! The checker keeps going after an error so that one run reports every independent
//! problem; an expression that failed becomes [`Val::Error`], which every consumer accepts
//! silently, so one mistake is reported once. The program is returned only when there
//! were no errors.
//!
//! Submodules: `items` (budget, consts, map declarations), `probe` (attach points, context
//! values, statements), `expr` (expressions, literals and conversions).

mod activation;
mod expr;
mod items;
mod lints;
mod output;
mod probe;
mod stack;
mod usdt;

use crate::ast;
use crate::diag::Diagnostic;
use crate::hir::{self, MapId};
use crate::span::Span;
use crate::targets::Targets;
use crate::types::Ty;
use std::collections::HashMap;

/// Options for [`check`]. Construct with `CheckOptions::default()`: fields may be added.
#[derive(Clone, Debug, Default)]
#[non_exhaustive]
pub struct CheckOptions {
    /// `-D NAME=VALUE` on the command line: replaces the value of `const NAME` with VALUE, an
    /// integer (optionally negative), string (quoted, as in source) or bool literal of the
    /// same kind as the declared value. An unknown NAME or a mismatched kind is error E0502.
    pub const_overrides: Vec<(String, String)>,
}

impl CheckOptions {
    /// Options overriding consts, as `(NAME, VALUE)` pairs from `-D NAME=VALUE`.
    pub fn with_const_overrides(const_overrides: Vec<(String, String)>) -> CheckOptions {
        CheckOptions { const_overrides }
    }
}

/// Codes of the lints (`lints.rs`): the callers drop them when parsing already failed, since
/// the checker cannot see the parser's errors and a broken file's fallout is not worth a lint.
pub const LINT_CODES: &[&str] = &["W0002", "W0003", "W0004", "W0005"];

/// The overhead budget every probe gets unless the file lowers it, in percent.
pub const DEFAULT_BUDGET_PERCENT: f64 = 0.5;

/// Checks a parsed file against the host's targets. Returns the program only if there were
/// no errors (warnings allowed); the diagnostics are in source order per stage.
pub fn check(file: &ast::File, targets: &dyn Targets, opts: &CheckOptions) -> (Option<hir::Program>, Vec<Diagnostic>) {
    let mut checker = Checker::new(targets);
    checker.const_overrides = opts.const_overrides.clone();
    let program = checker.check_file(file);
    let failed = checker.diagnostics.iter().any(Diagnostic::is_error) || checker.saw_parse_error;
    (if failed { None } else { Some(program) }, checker.diagnostics)
}

/// A declared map as the checker knows it. `None` parts were invalid in the declaration
/// (already reported): uses of them are checked leniently so as not to pile on.
struct MapInfo {
    name: String,
    span: Span,
    kind: Option<hir::MapKind>,
    key: Option<Vec<Ty>>,
    value: Option<Ty>,
    max_entries: Option<u64>,
    /// An aggregation recorded a signed value somewhere: its value type is `i64`.
    records_signed: bool,
    /// Backed by an LRU kernel map (`lru_hash`, or the `lru` flag).
    lru: bool,
    /// A `percpu_hash` / `lru_percpu_hash`: each CPU holds its own value per key.
    per_cpu: bool,
}

/// A `const`: its folded value, or `None` when its expression had errors.
#[derive(Clone, Debug)]
enum ConstValue {
    Int(i128),
    Str(Vec<u8>),
    Bool(bool),
}

struct ConstInfo {
    value: Option<ConstValue>,
}

/// The result of checking an expression: typed, or a constant still waiting for a type
/// from its context, or an error that was already reported.
#[derive(Clone, Debug)]
enum Val {
    Typed(hir::Expr),
    /// An integer constant (folded), typed by context; `u64` (or `i64` if negative) if the
    /// context has no type.
    IntLit {
        value: i128,
        span: Span,
    },
    /// A string constant; `str[len + 1]` unless the context wants a longer string.
    StrLit {
        bytes: Vec<u8>,
        span: Span,
    },
    Error,
}

/// What the host said about one tracepoint (asked once per file).
type TracepointAnswer = Result<std::rc::Rc<[crate::targets::TracepointField]>, crate::targets::TargetError>;

struct Checker<'t> {
    targets: &'t dyn Targets,
    diagnostics: Vec<Diagnostic>,
    maps: Vec<MapInfo>,
    map_ids: HashMap<String, MapId>,
    consts: HashMap<String, ConstInfo>,
    /// Every const declared anywhere, to tell "used before its declaration" from
    /// "undeclared".
    declared_consts: HashMap<String, Span>,
    tracepoint_cache: HashMap<(String, String), TracepointAnswer>,
    /// `-D NAME=VALUE` overrides, applied as the consts are evaluated.
    const_overrides: Vec<(String, String)>,
    /// The probe being checked; `None` while evaluating consts.
    probe: Option<probe::ProbeCx>,
    /// An `Error` node of the parser was met. The parser's diagnostics explain it, so the
    /// checker says nothing, but the tree is incomplete and yields no program.
    saw_parse_error: bool,
    /// Maps some probe (or activation rule) named, for the unused-map lint.
    used_maps: std::collections::HashSet<MapId>,
    /// Consts some expression read, for the unused-const lint.
    used_consts: std::collections::HashSet<String>,
    /// Event types of `emit` and `print`.
    events: output::Events,
}

impl<'t> Checker<'t> {
    fn new(targets: &'t dyn Targets) -> Checker<'t> {
        Checker {
            targets,
            diagnostics: Vec::new(),
            maps: Vec::new(),
            map_ids: HashMap::new(),
            consts: HashMap::new(),
            declared_consts: HashMap::new(),
            tracepoint_cache: HashMap::new(),
            const_overrides: Vec::new(),
            probe: None,
            saw_parse_error: false,
            used_maps: Default::default(),
            used_consts: Default::default(),
            events: output::Events::default(),
        }
    }

    fn report(&mut self, diagnostic: Diagnostic) {
        self.diagnostics.push(diagnostic);
    }

    fn check_file(&mut self, file: &ast::File) -> hir::Program {
        self.saw_parse_error |= file.items.iter().any(|item| matches!(item, ast::Item::Error(_)));
        let budget_percent = self.check_budget(file);
        self.declare_globals(file);
        let mut probes = Vec::new();
        for item in &file.items {
            if let ast::Item::Probe(decl) = item {
                probes.extend(self.check_probe(decl));
            }
        }
        self.report_unresolved_uses(file);
        self.lint(&probes);
        let maps: Vec<hir::MapDef> = self.maps.iter().map(MapInfo::to_def).collect();
        for probe in &mut probes {
            convert_aggregate_values(&mut probe.body, &maps);
        }
        let events = std::mem::take(&mut self.events.defs);
        hir::Program { doc: file.doc.clone(), budget_percent, maps, probes, events }
    }
}

impl MapInfo {
    fn to_def(&self) -> hir::MapDef {
        let kind = self.kind.unwrap_or(hir::MapKind::Hash);
        let value = match kind {
            hir::MapKind::Hash | hir::MapKind::Array { .. } => self.value.unwrap_or(Ty::U64),
            hir::MapKind::Count => Ty::U64,
            _ if self.records_signed => Ty::I64,
            _ => Ty::U64,
        };
        hir::MapDef {
            name: self.name.clone(),
            span: self.span,
            kind,
            key: self.key.clone().unwrap_or_default(),
            value,
            max_entries: self.max_entries,
            lru: self.lru,
            per_cpu: self.per_cpu,
        }
    }
}

/// Aggregation values were checked before every probe was seen; now that each map's value
/// type is final, converts each recorded value to it. Depth is bounded by the nesting guard.
fn convert_aggregate_values(stmts: &mut [hir::Stmt], maps: &[hir::MapDef]) {
    for stmt in stmts {
        match &mut stmt.kind {
            hir::StmtKind::Aggregate { map, value: Some(value), .. } => {
                let target = maps[*map].value;
                if value.ty != target {
                    let inner = std::mem::replace(
                        value,
                        hir::Expr { kind: hir::ExprKind::Int(0), ty: target, span: value.span },
                    );
                    *value = expr::cast_to(inner, target);
                }
            }
            hir::StmtKind::If { then, otherwise, .. } | hir::StmtKind::IfLet { then, otherwise, .. } => {
                convert_aggregate_values(then, maps);
                convert_aggregate_values(otherwise, maps);
            }
            hir::StmtKind::For { body, .. } => convert_aggregate_values(body, maps),
            _ => {}
        }
    }
}

/// The closest candidate to `name`, if close enough to be a likely typo: a small edit
/// distance, or an abbreviation (`cnt` for `count`) or extension (`histogram` for `hist`)
/// of at least three characters.
fn closest<'c>(name: &str, candidates: impl IntoIterator<Item = &'c str>) -> Option<&'c str> {
    let limit = (name.chars().count() / 3).max(1);
    let mut best: Option<(usize, &str)> = None;
    for candidate in candidates {
        if candidate == name {
            continue;
        }
        let mut distance = strsim::damerau_levenshtein(name, candidate);
        let related =
            name.len().min(candidate.len()) >= 3 && (name.starts_with(candidate) || is_subsequence(name, candidate));
        if related {
            distance = distance.min(limit);
        }
        if distance > limit {
            continue;
        }
        // Ties go to the alphabetically first, so output is stable whatever the order.
        let better = match best {
            None => true,
            Some((d, c)) => distance < d || (distance == d && candidate < c),
        };
        if better {
            best = Some((distance, candidate));
        }
    }
    best.map(|(_, candidate)| candidate)
}

/// Whether the characters of `short` appear in order in `long`.
fn is_subsequence(short: &str, long: &str) -> bool {
    let mut rest = long.chars();
    short.chars().all(|c| rest.any(|l| l == c))
}

/// `did you mean `x`?` for a help line, from a list of suggestions.
fn did_you_mean(suggestions: &[String]) -> Option<String> {
    match suggestions {
        [] => None,
        [one] => Some(format!("did you mean `{one}`?")),
        many => {
            let shown: Vec<String> = many.iter().take(3).map(|s| format!("`{s}`")).collect();
            Some(format!("did you mean one of {}?", shown.join(", ")))
        }
    }
}
