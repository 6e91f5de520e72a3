//! Lints: warnings about programs that check but probably do not do what was meant.
//!
//! They run only on a program without errors (an error's fallout would otherwise read as
//! "unused" or "always false"), after every probe is checked:
//! - W0002 unused map: declared, never named by a probe (nor as an activation sentinel);
//! - W0003 unused const: declared, never read (by a probe or by another const);
//! - W0004 always-false predicate: `when` folds to false over literals and consts
//!   (`when 1 > 2`), or its `&&` conjuncts pin one value to two constants
//!   (`when pid == 0 && pid == 1`, `when pid == 7 && pid != 7`): the probe never runs;
//! - W0005 truncated string compare: `str(ptr, 8) == "twelve bytes"` can never be equal,
//!   because `str(ptr, N)` and `comm` hold at most N-1 bytes (`==` is always false, `!=`
//!   always true); a `char[N]` tracepoint field holds at most N.
//!
//! Names starting with `_` are exempt from W0002 and W0003, as locals are from W0001; a file
//! without probes gets neither (it is not a program: the driver reports E0501).
//!
//! Not here on purpose: a hash map that is inserted into and never deleted from. The
//! verifier reports it (W0400) on every `ppisc check`, with how fast the declared rates fill
//! the map's `max` entries; the checker cannot compute that rate, and a second, vaguer warning
//! for the same map would only be noise. (`max` is required on keyed maps, E0212, so "grows
//! without a bound" cannot happen.)

use super::Checker;
use crate::ast::{self, BinaryOp, UnaryOp};
use crate::diag::Diagnostic;
use crate::hir::{self, Builtin, ExprKind, StmtKind};
use crate::span::Span;
use crate::types::Ty;

impl Checker<'_> {
    /// Reports `use` items that reached the checker: modules are merged by
    /// `modules::resolve` before checking, so the caller did not resolve them.
    pub(super) fn report_unresolved_uses(&mut self, file: &ast::File) {
        for item in &file.items {
            if let ast::Item::Use(decl) = item {
                self.report(
                    Diagnostic::error("E0013", format!("unknown module `{}`", decl.path_text()), decl.span)
                        .label("modules are not available here")
                        .with_help("check the file with `ppisc check`, which loads modules from the standard library"),
                );
            }
        }
    }

    /// Runs every lint over the checked probes (see the module docs).
    pub(super) fn lint(&mut self, probes: &[hir::Probe]) {
        if self.saw_parse_error || self.diagnostics.iter().any(Diagnostic::is_error) {
            return;
        }
        // A file without probes is not a program (the driver reports E0501): everything in it
        // would be "unused".
        if !probes.is_empty() {
            self.lint_unused_maps();
            self.lint_unused_consts();
        }
        for probe in probes {
            if let Some(predicate) = &probe.predicate {
                if let Some(why) = always_false(predicate) {
                    let warning = Diagnostic::error(
                        "W0004",
                        "this predicate is always false: the probe never runs",
                        predicate.span,
                    )
                    .label(why)
                    .with_help("fix the comparison (`||` instead of `&&`?), or remove the probe");
                    // A probe with several attach points is one declaration: warn once.
                    if !self.diagnostics.contains(&warning) {
                        self.report(warning);
                    }
                }
            }
            let mut compares = Vec::new();
            if let Some(predicate) = &probe.predicate {
                truncated_compares(predicate, &mut compares);
            }
            for stmt in &probe.body {
                stmt_truncated_compares(stmt, &mut compares);
            }
            for compare in compares {
                if !self.diagnostics.iter().any(|d| d.code == "W0005" && d.primary.span == compare.span) {
                    self.report(compare.diagnostic());
                }
            }
        }
    }

    fn lint_unused_maps(&mut self) {
        let unused: Vec<(String, Span)> = self
            .maps
            .iter()
            .enumerate()
            .filter(|(id, map)| !self.used_maps.contains(id) && !map.name.starts_with('_'))
            .map(|(_, map)| (map.name.clone(), map.span))
            .collect();
        for (name, span) in unused {
            self.report(
                Diagnostic::error("W0002", format!("unused map `{name}`"), span)
                    .label("no probe uses this map")
                    .with_help(format!("remove it, or name it `_{name}`")),
            );
        }
    }

    fn lint_unused_consts(&mut self) {
        let mut unused: Vec<(Span, String)> = self
            .declared_consts
            .iter()
            .filter(|(name, _)| !self.used_consts.contains(*name) && !name.starts_with('_'))
            .map(|(name, span)| (*span, name.clone()))
            .collect();
        unused.sort();
        for (span, name) in unused {
            self.report(
                Diagnostic::error("W0003", format!("unused const `{name}`"), span)
                    .label("never read")
                    .with_help(format!("remove it, or name it `_{name}`")),
            );
        }
    }
}

// ------------------------------------------------------------------ always-false predicates

/// A compile-time value of an expression.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Const {
    Bool(bool),
    /// The 64-bit pattern and the type it is of.
    Int(u64, Ty),
    /// The bytes up to the first NUL.
    Str(Vec<u8>),
}

/// The value of `expr` if it is made only of literals (consts are literals in the HIR).
fn constant(expr: &hir::Expr) -> Option<Const> {
    match &expr.kind {
        ExprKind::Bool(value) => Some(Const::Bool(*value)),
        ExprKind::Int(pattern) => Some(Const::Int(*pattern, expr.ty)),
        ExprKind::Str(bytes) => Some(Const::Str(until_nul(bytes).to_vec())),
        ExprKind::Cast(inner) => match (constant(inner)?, expr.ty) {
            (Const::Int(pattern, from), to @ Ty::Int { .. }) => Some(Const::Int(convert(pattern, from, to), to)),
            (Const::Str(bytes), Ty::Str { .. }) => Some(Const::Str(bytes)),
            _ => None,
        },
        ExprKind::Unary { op: UnaryOp::Not, operand } => match constant(operand)? {
            Const::Bool(value) => Some(Const::Bool(!value)),
            _ => None,
        },
        ExprKind::Binary { op, lhs, rhs } => match op {
            BinaryOp::And | BinaryOp::Or => {
                let (l, r) = (constant(lhs), constant(rhs));
                let is_and = *op == BinaryOp::And;
                // A constant side that decides the result decides it whatever the other is.
                for side in [&l, &r] {
                    if *side == Some(Const::Bool(!is_and)) {
                        return Some(Const::Bool(!is_and));
                    }
                }
                match (l?, r?) {
                    (Const::Bool(a), Const::Bool(b)) => Some(Const::Bool(if is_and { a && b } else { a || b })),
                    _ => None,
                }
            }
            BinaryOp::Eq | BinaryOp::Ne | BinaryOp::Lt | BinaryOp::Le | BinaryOp::Gt | BinaryOp::Ge => {
                compare(*op, &constant(lhs)?, &constant(rhs)?).map(Const::Bool)
            }
            _ => None,
        },
        _ => None,
    }
}

fn until_nul(bytes: &[u8]) -> &[u8] {
    let end = bytes.iter().position(|&b| b == 0).unwrap_or(bytes.len());
    &bytes[..end]
}

/// An integer pattern of type `from` converted to `to`, as the HIR's `Cast` does.
fn convert(pattern: u64, from: Ty, to: Ty) -> u64 {
    let value = signed_value(pattern, from);
    let Ty::Int { bytes, signed } = to else { return pattern };
    let bits = bytes as u32 * 8;
    let truncated = if bits == 64 { value as u64 } else { (value as u64) & ((1u64 << bits) - 1) };
    if signed && bits < 64 && truncated >> (bits - 1) & 1 == 1 {
        truncated | !((1u64 << bits) - 1)
    } else {
        truncated
    }
}

/// The mathematical value of a pattern of type `ty`.
fn signed_value(pattern: u64, ty: Ty) -> i128 {
    match ty {
        Ty::Int { bytes, signed: true } => {
            let bits = bytes as u32 * 8;
            let shift = 64 - bits;
            (((pattern << shift) as i64) >> shift) as i128
        }
        Ty::Int { bytes, signed: false } => {
            let bits = bytes as u32 * 8;
            if bits == 64 {
                pattern as i128
            } else {
                (pattern & ((1u64 << bits) - 1)) as i128
            }
        }
        _ => pattern as i128,
    }
}

fn compare(op: BinaryOp, lhs: &Const, rhs: &Const) -> Option<bool> {
    let ordering = match (lhs, rhs) {
        (Const::Int(a, ta), Const::Int(b, tb)) => signed_value(*a, *ta).cmp(&signed_value(*b, *tb)),
        (Const::Str(a), Const::Str(b)) if matches!(op, BinaryOp::Eq | BinaryOp::Ne) => a.cmp(b),
        (Const::Bool(a), Const::Bool(b)) if matches!(op, BinaryOp::Eq | BinaryOp::Ne) => a.cmp(b),
        _ => return None,
    };
    Some(match op {
        BinaryOp::Eq => ordering.is_eq(),
        BinaryOp::Ne => ordering.is_ne(),
        BinaryOp::Lt => ordering.is_lt(),
        BinaryOp::Le => ordering.is_le(),
        BinaryOp::Gt => ordering.is_gt(),
        _ => ordering.is_ge(),
    })
}

/// A name for a value that is the same every time a predicate reads it during one event
/// (not `nsecs`, not a string read from memory that may change between reads).
fn stable_value(expr: &hir::Expr) -> Option<String> {
    match &expr.kind {
        ExprKind::Builtin(Builtin::Nsecs) => None,
        ExprKind::Builtin(builtin) => Some(format!("{builtin:?}")),
        ExprKind::Arg(n) => Some(format!("arg{n}")),
        ExprKind::Retval => Some("retval".to_string()),
        ExprKind::CtxField { offset, size, signed } => Some(format!("field@{offset}:{size}:{signed}")),
        ExprKind::CtxStr { offset, len } => Some(format!("str@{offset}:{len}")),
        ExprKind::Cast(inner) => Some(format!("{}as{}", stable_value(inner)?, expr.ty)),
        _ => None,
    }
}

/// Why `predicate` can never be true, if it cannot.
fn always_false(predicate: &hir::Expr) -> Option<String> {
    if constant(predicate) == Some(Const::Bool(false)) {
        return Some("folds to `false` at compile time".to_string());
    }
    if let ExprKind::Binary { op: BinaryOp::Or, lhs, rhs } = &predicate.kind {
        return (always_false(lhs).is_some() && always_false(rhs).is_some())
            .then(|| "both sides of `||` are always false".to_string());
    }
    let mut conjuncts = Vec::new();
    flatten_and(predicate, &mut conjuncts);
    if conjuncts.len() < 2 {
        return None;
    }
    // value → the constant a conjunct says it equals / the constants conjuncts say it differs from.
    let mut equal: Vec<(String, Const, &hir::Expr)> = Vec::new();
    let mut differ: Vec<(String, Const, &hir::Expr)> = Vec::new();
    for conjunct in &conjuncts {
        if always_false(conjunct).is_some() {
            return Some("one of the `&&` operands is always false".to_string());
        }
        let ExprKind::Binary { op: op @ (BinaryOp::Eq | BinaryOp::Ne), lhs, rhs } = &conjunct.kind else {
            continue;
        };
        let pinned = match (stable_value(lhs), constant(rhs), stable_value(rhs), constant(lhs)) {
            (Some(value), Some(c), _, _) | (_, _, Some(value), Some(c)) => (value, c),
            _ => continue,
        };
        if *op == BinaryOp::Eq {
            equal.push((pinned.0, pinned.1, conjunct));
        } else {
            differ.push((pinned.0, pinned.1, conjunct));
        }
    }
    for (i, (value, c, _)) in equal.iter().enumerate() {
        if let Some((_, other, _)) = equal[i + 1..].iter().find(|(v, o, _)| v == value && o != c) {
            return Some(format!("requires one value to equal both {} and {}", show(c), show(other)));
        }
        if differ.iter().any(|(v, o, _)| v == value && o == c) {
            return Some(format!("requires one value to equal and differ from {}", show(c)));
        }
    }
    None
}

fn flatten_and<'e>(expr: &'e hir::Expr, out: &mut Vec<&'e hir::Expr>) {
    match &expr.kind {
        ExprKind::Binary { op: BinaryOp::And, lhs, rhs } => {
            flatten_and(lhs, out);
            flatten_and(rhs, out);
        }
        _ => out.push(expr),
    }
}

fn show(c: &Const) -> String {
    match c {
        Const::Bool(value) => value.to_string(),
        Const::Int(pattern, ty) => signed_value(*pattern, *ty).to_string(),
        Const::Str(bytes) => format!("{:?}", String::from_utf8_lossy(bytes)),
    }
}

// --------------------------------------------------------------- truncated string compares

/// A `==`/`!=` between a bounded string and a literal too long for it.
struct TruncatedCompare {
    span: Span,
    equal: bool,
    source: &'static str,
    capacity: u32,
    literal_len: usize,
}

impl TruncatedCompare {
    fn diagnostic(&self) -> Diagnostic {
        let (verdict, outcome) =
            if self.equal { ("never equal", "always false") } else { ("always different", "always true") };
        Diagnostic::error(
            "W0005",
            format!("{} and a literal of {} bytes are {verdict}", self.source, self.literal_len),
            self.span,
        )
        .label(format!("{outcome}: it holds at most {} bytes", self.capacity))
        .with_help("read a longer string (`str(ptr, N)` with a larger N), or compare a shorter literal")
    }
}

/// The kind of bounded string `expr` is (casts to a longer `str` removed) and how many bytes
/// of text it can hold at most.
fn bounded_string(expr: &hir::Expr) -> Option<(&'static str, u32)> {
    match &expr.kind {
        ExprKind::Cast(inner) => bounded_string(inner),
        ExprKind::ReadStr { len, .. } => Some(("`str(ptr, N)`", len.saturating_sub(1))),
        ExprKind::Builtin(Builtin::Comm) => Some(("`comm`", 15)),
        ExprKind::CtxStr { len, .. } => Some(("this `char` array field", *len)),
        _ => None,
    }
}

fn truncated_compares(expr: &hir::Expr, out: &mut Vec<TruncatedCompare>) {
    match &expr.kind {
        ExprKind::Binary { op, lhs, rhs } => {
            if matches!(op, BinaryOp::Eq | BinaryOp::Ne) {
                for (bounded, literal) in [(lhs, rhs), (rhs, lhs)] {
                    if let (Some((source, capacity)), Some(Const::Str(bytes))) =
                        (bounded_string(bounded), constant(literal))
                    {
                        if bytes.len() > capacity as usize {
                            out.push(TruncatedCompare {
                                span: expr.span,
                                equal: *op == BinaryOp::Eq,
                                source,
                                capacity,
                                literal_len: bytes.len(),
                            });
                        }
                    }
                }
            }
            truncated_compares(lhs, out);
            truncated_compares(rhs, out);
        }
        ExprKind::Unary { operand, .. } | ExprKind::Cast(operand) => truncated_compares(operand, out),
        ExprKind::Conditional { cond, then, otherwise } => {
            for part in [cond, then, otherwise] {
                truncated_compares(part, out);
            }
        }
        ExprKind::Coalesce { keys, default, .. } => {
            keys.iter().for_each(|key| truncated_compares(key, out));
            truncated_compares(default, out);
        }
        ExprKind::ReadStr { ptr, .. } => truncated_compares(ptr, out),
        // Leaves, and expression kinds added later: nothing to find (a missed warning, never a
        // wrong one).
        _ => {}
    }
}

fn stmt_truncated_compares(stmt: &hir::Stmt, out: &mut Vec<TruncatedCompare>) {
    let exprs = |exprs: &[hir::Expr], out: &mut Vec<TruncatedCompare>| {
        exprs.iter().for_each(|expr| truncated_compares(expr, out));
    };
    match &stmt.kind {
        StmtKind::Assign { value, .. } => truncated_compares(value, out),
        StmtKind::MapUpdate { keys, value, .. } => {
            exprs(keys, out);
            truncated_compares(value, out);
        }
        StmtKind::Aggregate { keys, value, .. } => {
            exprs(keys, out);
            if let Some(value) = value {
                truncated_compares(value, out);
            }
        }
        StmtKind::Delete { keys, .. } => exprs(keys, out),
        StmtKind::If { cond, then, otherwise } => {
            truncated_compares(cond, out);
            then.iter().chain(otherwise).for_each(|stmt| stmt_truncated_compares(stmt, out));
        }
        StmtKind::IfLet { keys, then, otherwise, .. } => {
            exprs(keys, out);
            then.iter().chain(otherwise).for_each(|stmt| stmt_truncated_compares(stmt, out));
        }
        StmtKind::For { start, end, body, .. } => {
            truncated_compares(start, out);
            truncated_compares(end, out);
            body.iter().for_each(|stmt| stmt_truncated_compares(stmt, out));
        }
        // `return`, and statement kinds added later: nothing to find.
        _ => {}
    }
}
