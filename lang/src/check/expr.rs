//! Expressions: names, operators, literals and the implicit conversions between types.
//!
//! Typing rules (see also the crate docs of `hir`):
//! - arithmetic and bitwise operators compute in 64 bits: both operands are converted to
//!   `i64` if either is signed (or is a negative literal), else to `u64`;
//! - comparisons compare at the operands' type if they agree, else at that 64-bit type;
//!   an integer literal takes the other operand's type; strings compare (`==`, `!=` only) at
//!   the longer of the two lengths;
//! - `c ? a : b` unifies `a` and `b` like comparison operands, except that two integer
//!   literals take the narrowest type holding both; with a constant `c` it folds to its pick;
//! - integer constants are folded while untyped, so `-5`, `1 << 10` or `4 * 1024` are
//!   literals that take the type of their context.

use super::{closest, Checker, ConstValue, Val};
use crate::ast::{self, BinaryOp, UnaryOp};
use crate::diag::Diagnostic;
use crate::hir::{self, Builtin, ExprKind};
use crate::span::Span;
use crate::types::Ty;

/// The run-time values every probe can read, with their types.
pub(super) const BUILTINS: &[(&str, Builtin, Ty)] = &[
    ("pid", Builtin::Pid, Ty::U32),
    ("tid", Builtin::Tid, Ty::U32),
    ("uid", Builtin::Uid, Ty::U32),
    ("gid", Builtin::Gid, Ty::U32),
    ("comm", Builtin::Comm, Ty::Str { len: 16 }),
    ("cpu", Builtin::Cpu, Ty::U32),
    ("nsecs", Builtin::Nsecs, Ty::U64),
    ("cpid", Builtin::Cpid, Ty::U32),
    ("cgroup", Builtin::Cgroup, Ty::U64),
];

/// Probe-kind specific names (`arg0`..`arg5`, `retval`).
pub(super) const CONTEXT_NAMES: &[&str] = &["arg0", "arg1", "arg2", "arg3", "arg4", "arg5", "retval"];

fn typed(kind: ExprKind, ty: Ty, span: Span) -> Val {
    Val::Typed(hir::Expr { kind, ty, span })
}

/// `expr` converted to `ty` (no conversion if it already is).
pub(super) fn cast_to(expr: hir::Expr, ty: Ty) -> hir::Expr {
    if expr.ty == ty {
        return expr;
    }
    let span = expr.span;
    hir::Expr { kind: ExprKind::Cast(Box::new(expr)), ty, span }
}

/// The range of an integer type, as `i128`.
fn int_range(ty: Ty) -> Option<(i128, i128)> {
    let Ty::Int { bytes, signed } = ty else { return None };
    let bits = bytes as u32 * 8;
    Some(if signed { (-(1i128 << (bits - 1)), (1i128 << (bits - 1)) - 1) } else { (0, (1i128 << bits) - 1) })
}

/// The 64-bit two's-complement pattern of `value` stored as `ty`, truncating and (for
/// signed types) sign-extending, as an explicit cast does.
fn int_pattern(value: i128, ty: Ty) -> u64 {
    let Ty::Int { bytes, signed } = ty else { return 0 };
    let bits = bytes as u32 * 8;
    let raw = value as u64; // two's complement low 64 bits
    if bits == 64 {
        return raw;
    }
    let truncated = raw & ((1u64 << bits) - 1);
    if signed && truncated >> (bits - 1) == 1 {
        truncated | !((1u64 << bits) - 1)
    } else {
        truncated
    }
}

/// Integer constants the folder keeps: anything representable as `u64` or `i64`.
fn constant_in_range(value: i128) -> bool {
    (i64::MIN as i128..=u64::MAX as i128).contains(&value)
}

fn str_const(bytes: &[u8], len: u32, span: Span) -> hir::Expr {
    let mut padded = bytes.to_vec();
    padded.resize(len as usize, 0);
    hir::Expr { kind: ExprKind::Str(padded), ty: Ty::Str { len }, span }
}

fn is_comparison(op: BinaryOp) -> bool {
    matches!(op, BinaryOp::Eq | BinaryOp::Ne | BinaryOp::Lt | BinaryOp::Le | BinaryOp::Gt | BinaryOp::Ge)
}

/// The type of a value for messages.
/// When either operand is a `buf`: their common type, or (as an error) both types when they
/// differ. `None` when neither is a buffer.
fn buffer_operands(lhs: &Val, rhs: &Val) -> Option<Result<Ty, (String, String)>> {
    let ty = |val: &Val| match val {
        Val::Typed(expr) => Some(expr.ty),
        _ => None,
    };
    let is_buf = |ty: Option<Ty>| matches!(ty, Some(Ty::Buf { .. }));
    let (l, r) = (ty(lhs), ty(rhs));
    if !is_buf(l) && !is_buf(r) {
        return None;
    }
    match (l, r) {
        (Some(l), Some(r)) if l == r => Some(Ok(l)),
        _ => Some(Err((describe(lhs), describe(rhs)))),
    }
}

fn describe(val: &Val) -> String {
    match val {
        Val::Typed(expr) => format!("`{}`", expr.ty),
        Val::IntLit { .. } => "an integer".to_string(),
        Val::StrLit { bytes, .. } => format!("`str[{}]`", bytes.len() + 1),
        Val::Error => "an error".to_string(),
    }
}

fn val_span(val: &Val) -> Option<Span> {
    match val {
        Val::Typed(expr) => Some(expr.span),
        Val::IntLit { span, .. } | Val::StrLit { span, .. } => Some(*span),
        Val::Error => None,
    }
}

/// Whether a value is an integer (typed or not).
fn is_int(val: &Val) -> bool {
    matches!(val, Val::IntLit { .. }) || matches!(val, Val::Typed(e) if e.ty.is_int())
}

fn is_str(val: &Val) -> bool {
    matches!(val, Val::StrLit { .. }) || matches!(val, Val::Typed(e) if matches!(e.ty, Ty::Str { .. }))
}

fn is_bool(val: &Val) -> bool {
    matches!(val, Val::Typed(e) if e.ty == Ty::Bool)
}

impl Checker<'_> {
    pub(super) fn expr(&mut self, expr: &ast::Expr) -> Val {
        let span = expr.span;
        match &expr.kind {
            ast::ExprKind::Int(value) => Val::IntLit { value: *value as i128, span },
            ast::ExprKind::Str(text) => Val::StrLit { bytes: text.as_bytes().to_vec(), span },
            ast::ExprKind::Bool(value) => typed(ExprKind::Bool(*value), Ty::Bool, span),
            ast::ExprKind::Name(name) => self.name(name, span),
            ast::ExprKind::Field(field) => self.field(field, span),
            ast::ExprKind::Index { base, index } => self.index(base, index, span),
            ast::ExprKind::MapGet(target) => self.bare_map_read(target),
            ast::ExprKind::Coalesce { source, default } => self.coalesce(source, default, span),
            ast::ExprKind::Unary { op, operand } => {
                let operand = self.expr(operand);
                self.unary(*op, operand, span)
            }
            ast::ExprKind::Binary { op, lhs, rhs } => {
                let lhs = self.expr(lhs);
                let rhs = self.expr(rhs);
                self.binary(*op, lhs, rhs, span)
            }
            ast::ExprKind::Conditional { cond, then, otherwise } => {
                let cond = self.expr(cond);
                let then = self.expr(then);
                let otherwise = self.expr(otherwise);
                self.conditional(cond, then, otherwise, span)
            }
            ast::ExprKind::Cast { expr: inner, ty } => {
                let value = self.expr(inner);
                let target = self.resolve_type(ty);
                let target = self.stack_type_misplaced(ty, target, "the target of a cast");
                match target {
                    Some(target) => self.explicit_cast(value, target, span),
                    None => Val::Error,
                }
            }
            ast::ExprKind::Call { name, args } => self.call(name, args, span),
            ast::ExprKind::Error => {
                self.saw_parse_error = true;
                Val::Error
            }
        }
    }

    /// Gives a constant its default type (`u64`, `i64` if negative, `str[len + 1]`).
    pub(super) fn materialize(&mut self, val: Val) -> Option<hir::Expr> {
        match val {
            Val::Typed(expr) => Some(expr),
            Val::IntLit { value, span } => {
                let ty = if value < 0 { Ty::I64 } else { Ty::U64 };
                Some(hir::Expr { kind: ExprKind::Int(int_pattern(value, ty)), ty, span })
            }
            Val::StrLit { bytes, span } => {
                let len = bytes.len() as u32 + 1;
                Some(str_const(&bytes, len, span))
            }
            Val::Error => None,
        }
    }

    /// Converts `val` implicitly to `target` (for a key, a map value, a local, an operand):
    /// widening integers (sign changes allowed), padding strings, typing constants.
    /// `purpose` finishes the label "expected `T` for ...".
    pub(super) fn coerce(&mut self, val: Val, target: Ty, purpose: &str) -> Option<hir::Expr> {
        let found = describe(&val);
        match (val, target) {
            (Val::Error, _) => None,
            (Val::IntLit { value, span }, Ty::Int { .. }) => {
                let (min, max) = int_range(target).unwrap_or((0, 0));
                if value < min || value > max {
                    self.report(
                        Diagnostic::error("E0203", format!("integer `{value}` does not fit in `{target}`"), span)
                            .label(format!("`{target}` holds {min} to {max}; needed for {purpose}"))
                            .with_help(format!("use a value in range, or truncate explicitly with `as {target}`")),
                    );
                    return None;
                }
                Some(hir::Expr { kind: ExprKind::Int(int_pattern(value, target)), ty: target, span })
            }
            (Val::StrLit { bytes, span }, Ty::Str { len }) => {
                if bytes.len() as u64 + 1 > len as u64 {
                    self.report(
                        Diagnostic::error("E0211", "string too long", span)
                            .label(format!(
                                "{} bytes and a NUL do not fit in `{target}`, needed for {purpose}",
                                bytes.len()
                            ))
                            .with_help(format!("use at most {} characters", len.saturating_sub(1))),
                    );
                    return None;
                }
                Some(str_const(&bytes, len, span))
            }
            (Val::Typed(expr), _) if expr.ty == target => Some(expr),
            (Val::Typed(expr), Ty::Int { bytes: to_bytes, .. }) if expr.ty.is_int() => {
                let Ty::Int { bytes: from_bytes, .. } = expr.ty else { return None };
                if from_bytes <= to_bytes {
                    return Some(cast_to(expr, target));
                }
                self.report(
                    Diagnostic::error(
                        "E0202",
                        format!("`{}` does not convert implicitly to `{target}`", expr.ty),
                        expr.span,
                    )
                    .label(format!("narrowing to `{target}` for {purpose} may lose bits"))
                    .with_help(format!("convert explicitly: `(...) as {target}`")),
                );
                None
            }
            (Val::Typed(expr), Ty::Str { len: to_len }) if matches!(expr.ty, Ty::Str { .. }) => {
                if expr.ty.size() <= to_len {
                    return Some(cast_to(expr, target));
                }
                self.report(
                    Diagnostic::error("E0211", format!("`{}` does not fit in `{target}`", expr.ty), expr.span)
                        .label(format!("too long for {purpose}"))
                        .with_help("strings only convert to equal or longer ones; declare a longer `str[N]`"),
                );
                None
            }
            (val, _) => {
                let span = val_span(&val).unwrap_or_default();
                let help = match (&val, target) {
                    (v, Ty::Bool) if is_int(v) => "compare with 0: `x != 0`".to_string(),
                    _ => format!("use a `{target}` value here"),
                };
                self.report(
                    Diagnostic::error("E0201", format!("mismatched types: expected `{target}`, found {found}"), span)
                        .label(format!("expected `{target}` for {purpose}"))
                        .with_help(help),
                );
                None
            }
        }
    }

    /// A `bool` condition for `if`, `when`, `&&`, `||` or `!`.
    pub(super) fn condition(&mut self, val: Val, what: &str) -> Option<hir::Expr> {
        match val {
            Val::Error => None,
            Val::Typed(expr) if expr.ty == Ty::Bool => Some(expr),
            other => {
                let span = val_span(&other).unwrap_or_default();
                let help = if is_int(&other) {
                    "compare with 0: `x != 0`"
                } else if is_str(&other) {
                    "compare it: `comm == \"name\"`"
                } else {
                    "use a comparison"
                };
                self.report(
                    Diagnostic::error("E0204", format!("{what} must be a `bool`, found {}", describe(&other)), span)
                        .label("not a bool")
                        .with_help(help),
                );
                None
            }
        }
    }

    fn name(&mut self, name: &str, span: Span) -> Val {
        if let Some(val) = self.local(name, span) {
            return val;
        }
        if let Some(val) = self.probe_builtin(name, span) {
            return val;
        }
        if let Some(info) = self.consts.get(name) {
            self.used_consts.insert(name.to_string());
            return match &info.value {
                Some(ConstValue::Int(value)) => Val::IntLit { value: *value, span },
                Some(ConstValue::Str(bytes)) => Val::StrLit { bytes: bytes.clone(), span },
                Some(ConstValue::Bool(value)) => typed(ExprKind::Bool(*value), Ty::Bool, span),
                None => Val::Error,
            };
        }
        if let Some(declared) = self.declared_consts.get(name).copied() {
            self.report(
                Diagnostic::error("E0101", format!("const `{name}` is used before its declaration"), span)
                    .label("not declared yet")
                    .with_secondary(declared, "declared here")
                    .with_help("move the `const` above its first use"),
            );
            return Val::Error;
        }
        if super::stack::STACK_BUILTINS.contains(&name) {
            return self.stack_outside_key(name, span);
        }
        let is_builtin = BUILTINS.iter().any(|(builtin, ..)| *builtin == name);
        if self.probe.is_none() && (is_builtin || CONTEXT_NAMES.contains(&name)) {
            self.report(
                Diagnostic::error("E0217", format!("`{name}` is not a constant"), span)
                    .label("a run-time value")
                    .with_help("consts are fixed at compile time; use it inside a probe"),
            );
            return Val::Error;
        }
        if let Some((_, builtin, ty)) = BUILTINS.iter().find(|(builtin, ..)| *builtin == name) {
            return typed(ExprKind::Builtin(*builtin), *ty, span);
        }
        if let Some(val) = self.context_name(name, span) {
            return val;
        }
        if name == "args" {
            self.report(
                Diagnostic::error("E0101", "`args` is not a value", span)
                    .label("needs a field")
                    .with_help("read a tracepoint field: `args.FIELD`"),
            );
            return Val::Error;
        }
        if let Some(&id) = self.map_ids.get(name) {
            let map_span = self.maps[id].span;
            self.report(
                Diagnostic::error("E0107", format!("map `{name}` used as a value"), span)
                    .label("a map, not a value")
                    .with_secondary(map_span, "declared here")
                    .with_help(format!("read one entry with `{name}[key] ?? 0` or `if let v = {name}[key] {{ .. }}`")),
            );
            return Val::Error;
        }
        let mut candidates: Vec<String> = self.visible_locals();
        candidates.extend(self.consts.keys().cloned());
        if self.probe.is_some() {
            candidates.extend(BUILTINS.iter().map(|(builtin, ..)| builtin.to_string()));
            candidates.extend(CONTEXT_NAMES.iter().map(|n| n.to_string()));
        }
        let help = match closest(name, candidates.iter().map(String::as_str)) {
            Some(close) => format!("did you mean `{close}`?"),
            None if self.probe.is_some() => format!("declare it first: `let {name} = ...;`"),
            None => "consts may only use other consts declared above them".to_string(),
        };
        self.report(
            Diagnostic::error("E0101", format!("undeclared name `{name}`"), span).label("not declared").with_help(help),
        );
        Val::Error
    }

    fn unary(&mut self, op: UnaryOp, operand: Val, span: Span) -> Val {
        match (op, operand) {
            (_, Val::Error) => Val::Error,
            (UnaryOp::Neg, Val::IntLit { value, .. }) => Val::IntLit { value: -value, span },
            (UnaryOp::Not, operand) => match self.condition(operand, "the operand of `!`") {
                Some(operand) => typed(ExprKind::Unary { op, operand: Box::new(operand) }, Ty::Bool, span),
                None => Val::Error,
            },
            (UnaryOp::Neg | UnaryOp::BitNot, operand) if is_int(&operand) => {
                let Some(operand) = self.materialize(operand) else { return Val::Error };
                let ty = if op == UnaryOp::Neg || operand.ty.is_signed() { Ty::I64 } else { Ty::U64 };
                typed(ExprKind::Unary { op, operand: Box::new(cast_to(operand, ty)) }, ty, span)
            }
            (_, operand) => {
                let symbol = if op == UnaryOp::Neg { "-" } else { "~" };
                let operand_span = val_span(&operand).unwrap_or(span);
                self.report(
                    Diagnostic::error(
                        "E0205",
                        format!("`{symbol}` needs an integer, found {}", describe(&operand)),
                        operand_span,
                    )
                    .label("not an integer")
                    .with_help(if is_bool(&operand) {
                        "negate a bool with `!`"
                    } else {
                        "apply it to an integer"
                    }),
                );
                Val::Error
            }
        }
    }

    fn binary(&mut self, op: BinaryOp, lhs: Val, rhs: Val, span: Span) -> Val {
        if matches!(lhs, Val::Error) || matches!(rhs, Val::Error) {
            return Val::Error;
        }
        match op {
            BinaryOp::And | BinaryOp::Or => {
                let what = format!("an operand of `{}`", op.symbol());
                let lhs = self.condition(lhs, &what);
                let rhs = self.condition(rhs, &what);
                match (lhs, rhs) {
                    (Some(lhs), Some(rhs)) => {
                        typed(ExprKind::Binary { op, lhs: Box::new(lhs), rhs: Box::new(rhs) }, Ty::Bool, span)
                    }
                    _ => Val::Error,
                }
            }
            _ if is_comparison(op) => self.comparison(op, lhs, rhs, span),
            _ => self.arithmetic(op, lhs, rhs, span),
        }
    }

    /// `c ? a : b`: `a` and `b` unify as the operands of a comparison do (same type kept,
    /// a literal takes the other's type, integers widen to 64 bits, strings to the longer).
    /// A constant condition picks its operand at compile time, so constants stay constants.
    fn conditional(&mut self, cond: Val, then: Val, otherwise: Val, span: Span) -> Val {
        let cond = self.condition(cond, "the condition of `?:`");
        if matches!(then, Val::Error) || matches!(otherwise, Val::Error) {
            return Val::Error;
        }
        let Some(cond) = cond else { return Val::Error };
        if let ExprKind::Bool(value) = cond.kind {
            if matches!(then, Val::IntLit { .. } | Val::StrLit { .. })
                && matches!(otherwise, Val::IntLit { .. } | Val::StrLit { .. })
                && is_int(&then) == is_int(&otherwise)
            {
                return if value { then } else { otherwise };
            }
        }
        let result_ty = if is_int(&then) && is_int(&otherwise) {
            match (&then, &otherwise) {
                (Val::Typed(a), Val::Typed(b)) if a.ty == b.ty => a.ty,
                (Val::Typed(a), Val::IntLit { .. }) => a.ty,
                (Val::IntLit { .. }, Val::Typed(b)) => b.ty,
                (Val::Typed(a), Val::Typed(b)) => wide_int(a.ty.is_signed() || b.ty.is_signed()),
                // Two literals take the narrowest type holding both, so the result widens
                // implicitly wherever it is used (a `u32` key, a `u8` value, ...).
                (Val::IntLit { value: a, .. }, Val::IntLit { value: b, .. }) => narrowest_int(*a.min(b), *a.max(b)),
                _ => Ty::U64,
            }
        } else if is_str(&then) && is_str(&otherwise) {
            let len = |v: &Val| match v {
                Val::Typed(e) => e.ty.size(),
                Val::StrLit { bytes, .. } => bytes.len() as u32 + 1,
                _ => 0,
            };
            Ty::Str { len: len(&then).max(len(&otherwise)) }
        } else if is_bool(&then) && is_bool(&otherwise) {
            Ty::Bool
        } else {
            self.report(
                Diagnostic::error(
                    "E0227",
                    format!(
                        "the branches of `?:` have incompatible types: {} and {}",
                        describe(&then),
                        describe(&otherwise)
                    ),
                    span,
                )
                .label("incompatible branches")
                .with_help("give both branches integers, strings or bools"),
            );
            return Val::Error;
        };
        let then = self.coerce(then, result_ty, "a branch of `?:`");
        let otherwise = self.coerce(otherwise, result_ty, "a branch of `?:`");
        match (then, otherwise) {
            (Some(then), Some(otherwise)) => typed(
                ExprKind::Conditional { cond: Box::new(cond), then: Box::new(then), otherwise: Box::new(otherwise) },
                result_ty,
                span,
            ),
            _ => Val::Error,
        }
    }

    fn comparison(&mut self, op: BinaryOp, lhs: Val, rhs: Val, span: Span) -> Val {
        let equality = matches!(op, BinaryOp::Eq | BinaryOp::Ne);
        if let (Val::IntLit { value: a, .. }, Val::IntLit { value: b, .. }) = (&lhs, &rhs) {
            let result = match op {
                BinaryOp::Eq => a == b,
                BinaryOp::Ne => a != b,
                BinaryOp::Lt => a < b,
                BinaryOp::Le => a <= b,
                BinaryOp::Gt => a > b,
                _ => a >= b,
            };
            return typed(ExprKind::Bool(result), Ty::Bool, span);
        }
        let operand_ty = if is_int(&lhs) && is_int(&rhs) {
            match (&lhs, &rhs) {
                (Val::Typed(l), Val::Typed(r)) if l.ty == r.ty => l.ty,
                (Val::Typed(l), Val::IntLit { .. }) => l.ty,
                (Val::IntLit { .. }, Val::Typed(r)) => r.ty,
                (Val::Typed(l), Val::Typed(r)) => wide_int(l.ty.is_signed() || r.ty.is_signed()),
                _ => Ty::U64,
            }
        } else if is_str(&lhs) && is_str(&rhs) && equality {
            let len = |v: &Val| match v {
                Val::Typed(e) => e.ty.size(),
                Val::StrLit { bytes, .. } => bytes.len() as u32 + 1,
                _ => 0,
            };
            Ty::Str { len: len(&lhs).max(len(&rhs)) }
        } else if is_bool(&lhs) && is_bool(&rhs) && equality {
            Ty::Bool
        } else if let (Some(buffer), true) = (buffer_operands(&lhs, &rhs), equality) {
            // Raw bytes compare whole: only buffers of one length.
            match buffer {
                Ok(ty) => ty,
                Err((l, r)) => {
                    self.report(
                        Diagnostic::error("E0263", format!("cannot compare {l} with {r}"), span)
                            .label("buffers compare only with buffers of the same length")
                            .with_help("read both with the same length: `buf(p, N) == buf(q, N)`"),
                    );
                    return Val::Error;
                }
            }
        } else {
            let help = if is_str(&lhs) && is_str(&rhs) {
                "strings compare only with `==` and `!=`"
            } else if is_bool(&lhs) && is_bool(&rhs) {
                "bools compare only with `==` and `!=`"
            } else {
                "compare values of the same kind (integers, strings or bools)"
            };
            self.report(
                Diagnostic::error(
                    "E0205",
                    format!("cannot compare {} with {} using `{}`", describe(&lhs), describe(&rhs), op.symbol()),
                    span,
                )
                .label("incompatible operands")
                .with_help(help),
            );
            return Val::Error;
        };
        let purpose = format!("the comparison `{}`", op.symbol());
        let lhs = self.coerce(lhs, operand_ty, &purpose);
        let rhs = self.coerce(rhs, operand_ty, &purpose);
        match (lhs, rhs) {
            (Some(lhs), Some(rhs)) => {
                typed(ExprKind::Binary { op, lhs: Box::new(lhs), rhs: Box::new(rhs) }, Ty::Bool, span)
            }
            _ => Val::Error,
        }
    }

    fn arithmetic(&mut self, op: BinaryOp, lhs: Val, rhs: Val, span: Span) -> Val {
        for operand in [&lhs, &rhs] {
            if !is_int(operand) {
                let operand_span = val_span(operand).unwrap_or(span);
                self.report(
                    Diagnostic::error(
                        "E0205",
                        format!("`{}` needs integer operands, found {}", op.symbol(), describe(operand)),
                        operand_span,
                    )
                    .label("not an integer")
                    .with_help(if is_bool(operand) {
                        "combine bools with `&&` and `||`"
                    } else {
                        "use integers"
                    }),
                );
                return Val::Error;
            }
        }
        if let (Val::IntLit { value: a, .. }, Val::IntLit { value: b, .. }) = (&lhs, &rhs) {
            return self.fold(op, *a, *b, span);
        }
        let signed = |v: &Val| match v {
            Val::Typed(e) => e.ty.is_signed(),
            Val::IntLit { value, .. } => *value < 0,
            _ => false,
        };
        let ty = wide_int(signed(&lhs) || signed(&rhs));
        let purpose = format!("an operand of `{}`", op.symbol());
        let lhs = self.coerce(lhs, ty, &purpose);
        let rhs = self.coerce(rhs, ty, &purpose);
        match (lhs, rhs) {
            (Some(lhs), Some(rhs)) => typed(ExprKind::Binary { op, lhs: Box::new(lhs), rhs: Box::new(rhs) }, ty, span),
            _ => Val::Error,
        }
    }

    /// Folds an operator on two integer constants.
    fn fold(&mut self, op: BinaryOp, a: i128, b: i128, span: Span) -> Val {
        let result = match op {
            BinaryOp::Add => a.checked_add(b),
            BinaryOp::Sub => a.checked_sub(b),
            BinaryOp::Mul => a.checked_mul(b),
            BinaryOp::Div => a.checked_div(b),
            BinaryOp::Rem => a.checked_rem(b),
            BinaryOp::BitAnd => Some(a & b),
            BinaryOp::BitOr => Some(a | b),
            BinaryOp::BitXor => Some(a ^ b),
            BinaryOp::Shl => u32::try_from(b).ok().filter(|&shift| shift < 64).and_then(|shift| a.checked_shl(shift)),
            BinaryOp::Shr => u32::try_from(b).ok().filter(|&shift| shift < 64).map(|shift| a >> shift),
            _ => None,
        };
        match result {
            Some(value) if constant_in_range(value) => Val::IntLit { value, span },
            _ => {
                let why = match op {
                    BinaryOp::Div | BinaryOp::Rem if b == 0 => "division by zero".to_string(),
                    BinaryOp::Shl | BinaryOp::Shr if !(0..64).contains(&b) => format!("shift by {b} (must be 0 to 63)"),
                    _ => "the result does not fit in 64 bits".to_string(),
                };
                self.report(
                    Diagnostic::error("E0220", format!("constant arithmetic fails: {why}"), span)
                        .label(format!("`{a} {} {b}`", op.symbol()))
                        .with_help("fix the constant expression"),
                );
                Val::Error
            }
        }
    }

    fn explicit_cast(&mut self, val: Val, target: Ty, span: Span) -> Val {
        match (val, target) {
            (Val::Error, _) => Val::Error,
            (Val::IntLit { value, .. }, Ty::Int { .. }) => {
                typed(ExprKind::Int(int_pattern(value, target)), target, span)
            }
            (Val::StrLit { bytes, span: literal_span }, Ty::Str { .. }) => {
                match self.coerce(Val::StrLit { bytes, span: literal_span }, target, "the cast") {
                    Some(expr) => Val::Typed(hir::Expr { span, ..expr }),
                    None => Val::Error,
                }
            }
            (Val::Typed(expr), Ty::Int { .. }) if expr.ty.is_int() => {
                Val::Typed(hir::Expr { span, ..cast_to(expr, target) })
            }
            (Val::Typed(expr), Ty::Str { len }) if matches!(expr.ty, Ty::Str { .. }) && expr.ty.size() <= len => {
                Val::Typed(hir::Expr { span, ..cast_to(expr, target) })
            }
            (Val::Typed(expr), Ty::Bool) if expr.ty == Ty::Bool => Val::Typed(expr),
            (val, _) => {
                let help = match (&val, target) {
                    (v, Ty::Bool) if is_int(v) => "compare with 0 instead: `x != 0`",
                    (v, Ty::Int { .. }) if is_bool(v) => "bools do not convert to integers; branch with `if`",
                    (v, Ty::Str { .. }) if is_str(v) => "strings convert only to equal or longer `str[N]`",
                    _ => "`as` converts between integer types, or to a longer `str[N]`",
                };
                self.report(
                    Diagnostic::error("E0206", format!("cannot cast {} to `{target}`", describe(&val)), span)
                        .label("invalid cast")
                        .with_help(help),
                );
                Val::Error
            }
        }
    }
}

/// The smallest integer type holding `min..=max`, unsigned unless `min` is negative.
fn narrowest_int(min: i128, max: i128) -> Ty {
    let signed = min < 0;
    [1u8, 2, 4, 8]
        .into_iter()
        .map(|bytes| Ty::Int { bytes, signed })
        .find(|&ty| int_range(ty).is_some_and(|(lo, hi)| lo <= min && max <= hi))
        .unwrap_or(wide_int(signed))
}

/// The 64-bit type arithmetic happens in.
fn wide_int(signed: bool) -> Ty {
    if signed {
        Ty::I64
    } else {
        Ty::U64
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn patterns_truncate_and_sign_extend() {
        assert_eq!(int_pattern(-1, Ty::U32), 0xFFFF_FFFF);
        assert_eq!(int_pattern(-1, Ty::I32), u64::MAX);
        assert_eq!(int_pattern(0x1_0000_0005, Ty::U32), 5);
        assert_eq!(int_pattern(200, Ty::I8), (-56i64) as u64);
        assert_eq!(int_range(Ty::I16), Some((-32768, 32767)));
    }

    #[test]
    fn two_literals_take_the_narrowest_type_holding_both() {
        assert_eq!(narrowest_int(0, 1), Ty::U8);
        assert_eq!(narrowest_int(0, 256), Ty::U16);
        assert_eq!(narrowest_int(-1, 127), Ty::I8);
        assert_eq!(narrowest_int(-1, 128), Ty::I16);
        assert_eq!(narrowest_int(0, u32::MAX as i128 + 1), Ty::U64);
        assert_eq!(narrowest_int(-1, u64::MAX as i128), Ty::I64);
    }
}
