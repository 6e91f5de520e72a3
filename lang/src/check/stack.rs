//! Stack keys: `ustack`, `kstack`, `ustack(N)`, `kstack(N)` as map keys, and the `ustack[N]` /
//! `kstack[N]` key types (codes E0230–E0233).
//!
//! A stack is not a value: the kernel records the frames in a stack map and hands back an id,
//! which only makes sense as (part of) an aggregation key that user space resolves later. So
//! the builtins are recognised only where a map key is written, and a stack type only among a
//! map's key types; everywhere else they are errors with a hint.

use super::{Checker, Val};
use crate::ast::{self, TypeExpr};
use crate::diag::Diagnostic;
use crate::hir::{self, ExprKind};
use crate::span::Span;
use crate::types::{Ty, DEFAULT_STACK_DEPTH};

/// The stack builtins' names.
pub(super) const STACK_BUILTINS: &[&str] = &["ustack", "kstack"];

/// A stack builtin as written: which stack and the depth argument, if any.
struct StackSyntax<'a> {
    user: bool,
    /// `None` for plain `ustack`; the argument expressions of `ustack(..)` otherwise.
    args: Option<&'a [ast::Expr]>,
}

fn stack_syntax(expr: &ast::Expr) -> Option<StackSyntax<'_>> {
    match &expr.kind {
        ast::ExprKind::Name(name) if STACK_BUILTINS.contains(&name.as_str()) => {
            Some(StackSyntax { user: name == "ustack", args: None })
        }
        ast::ExprKind::Call { name, args } if STACK_BUILTINS.contains(&name.node.as_str()) => {
            Some(StackSyntax { user: name.node == "ustack", args: Some(args) })
        }
        _ => None,
    }
}

/// Is `expr` written as `ustack`, `kstack`, `ustack(..)` or `kstack(..)`?
pub(super) fn is_stack_syntax(expr: &ast::Expr) -> bool {
    stack_syntax(expr).is_some()
}

fn stack_name(user: bool) -> &'static str {
    if user {
        "ustack"
    } else {
        "kstack"
    }
}

impl Checker<'_> {
    /// A map key at a position whose declared type is `ty`, when either side is a stack:
    /// `Some(checked key or None when reported)`; `None` when neither is a stack (the caller
    /// checks the key as an ordinary value).
    pub(super) fn stack_key(&mut self, key: &ast::Expr, ty: Ty, map_name: &str) -> Option<Option<hir::Expr>> {
        let syntax = stack_syntax(key);
        let declared = match ty {
            Ty::Stack { user, depth } => Some((user, depth)),
            _ => None,
        };
        if syntax.is_none() && declared.is_none() {
            return None;
        }
        let Some(syntax) = syntax else {
            let val = self.expr(key);
            self.materialize(val);
            self.report(
                Diagnostic::error("E0231", format!("a key of map `{map_name}` must be a stack, `{ty}`"), key.span)
                    .label("not a stack")
                    .with_help(format!("write `{}` here", stack_expr_text(ty))),
            );
            return Some(None);
        };
        let Some(depth) = self.stack_depth(&syntax, key.span) else {
            return Some(None); // reported
        };
        let Some((declared_user, declared_depth)) = declared else {
            self.report(
                Diagnostic::error(
                    "E0231",
                    format!("map `{map_name}` is not keyed by a stack here: this key is `{ty}`"),
                    key.span,
                )
                .label(format!("a `{}` stack", stack_name(syntax.user)))
                .with_help(format!(
                    "declare the key as `{}[{}]` in the map, or use a `{ty}` key here",
                    stack_name(syntax.user),
                    depth.unwrap_or(DEFAULT_STACK_DEPTH)
                )),
            );
            return Some(None);
        };
        let depth = depth.unwrap_or(declared_depth);
        if declared_user != syntax.user || declared_depth != depth {
            let written = Ty::Stack { user: syntax.user, depth };
            self.report(
                Diagnostic::error("E0231", format!("map `{map_name}` is keyed by `{ty}`, found `{written}`"), key.span)
                    .label(format!("a `{written}` stack"))
                    .with_help(format!("write `{}`, or change the map's key type to `{written}`", stack_expr_text(ty))),
            );
            return Some(None);
        }
        Some(Some(hir::Expr { kind: ExprKind::StackId { user: syntax.user, depth }, ty, span: key.span }))
    }

    /// The depth written in `ustack(N)`: `Some(None)` for a plain `ustack`, `None` when
    /// reported (the argument is not a constant in 1..=127, or there are several).
    fn stack_depth(&mut self, syntax: &StackSyntax<'_>, span: Span) -> Option<Option<u8>> {
        let Some(args) = syntax.args else { return Some(None) };
        let name = stack_name(syntax.user);
        let [arg] = args else {
            self.report(
                Diagnostic::error("E0233", format!("`{name}` takes at most one argument, found {}", args.len()), span)
                    .label("expected `(DEPTH)`")
                    .with_help(format!(
                        "write `{name}` or `{name}(16)` (the most frames kept, 1 to {DEFAULT_STACK_DEPTH})"
                    )),
            );
            return None;
        };
        match self.expr(arg) {
            Val::IntLit { value, .. } if (1..=DEFAULT_STACK_DEPTH as i128).contains(&value) => Some(Some(value as u8)),
            Val::Error => None,
            Val::IntLit { value, .. } => {
                self.report(
                    Diagnostic::error("E0233", format!("invalid stack depth {value}"), arg.span)
                        .label(format!("must be 1 to {DEFAULT_STACK_DEPTH}"))
                        .with_help(format!("e.g. `{name}(16)`; a plain `{name}` keeps {DEFAULT_STACK_DEPTH} frames")),
                );
                None
            }
            _ => {
                self.report(
                    Diagnostic::error("E0233", "stack depth is not a constant", arg.span)
                        .label("must be known when compiling")
                        .with_help(format!("write a number from 1 to {DEFAULT_STACK_DEPTH}, e.g. `{name}(16)`")),
                );
                None
            }
        }
    }

    /// `ustack`/`kstack` used as a value (not directly as a map key).
    pub(super) fn stack_outside_key(&mut self, name: &str, span: Span) -> Val {
        self.report(
            Diagnostic::error("E0230", format!("`{name}` is only allowed as a map key"), span)
                .label("a stack is not a value")
                .with_help(format!(
                    "count stacks with a map keyed by one: `map s: count[{name}] max 1024;` and `s[{name}].inc();`"
                )),
        );
        Val::Error
    }

    /// A stack type written where it cannot go (a value type, a cast): reported, `None`.
    pub(super) fn stack_type_misplaced(&mut self, ty: &TypeExpr, resolved: Option<Ty>, place: &str) -> Option<Ty> {
        if !matches!(resolved, Some(Ty::Stack { .. })) {
            return resolved;
        }
        self.report(
            Diagnostic::error("E0232", format!("a stack type cannot be {place}"), ty.span)
                .label("stacks are only map keys")
                .with_help("use the stack type among a map's key types: `map s: count[ustack] max 1024;`"),
        );
        None
    }

    /// `ustack[N]` / `kstack[N]` in a type position, checked for its depth.
    pub(super) fn resolve_stack_type(&mut self, user: bool, depth: u64, span: Span) -> Option<Ty> {
        if (1..=DEFAULT_STACK_DEPTH as u64).contains(&depth) {
            return Some(Ty::Stack { user, depth: depth as u8 });
        }
        let name = stack_name(user);
        self.report(
            Diagnostic::error("E0233", format!("invalid stack depth {depth}"), span)
                .label(format!("must be 1 to {DEFAULT_STACK_DEPTH}"))
                .with_help(format!("e.g. `{name}[16]`; a plain `{name}` keeps {DEFAULT_STACK_DEPTH} frames")),
        );
        None
    }
}

/// How to write a key of stack type `ty`: `ustack` at the default depth, else `ustack(N)`.
fn stack_expr_text(ty: Ty) -> String {
    match ty {
        Ty::Stack { user, depth } if depth == DEFAULT_STACK_DEPTH => stack_name(user).to_string(),
        Ty::Stack { user, depth } => format!("{}({depth})", stack_name(user)),
        other => other.to_string(),
    }
}
