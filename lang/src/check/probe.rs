//! Probes: attach points checked against the host, context values (`args.FIELD`, `arg0`,
//! `retval`), locals and statements, and the map operations statements perform.
//!
//! Map rules: `m[k] = v` only on hash maps; `.inc()` on count, `.add(v)` on sum,
//! `.record(v)` on min/max/avg/hist/lhist; reading (`??`, `if let`) only hash maps, since
//! aggregations are per-CPU and write-only in probes. `delete m[k]` works on every keyed map
//! (for an aggregation it drops that key's values on every CPU).

use super::expr::CONTEXT_NAMES;
use super::{closest, did_you_mean, Checker, Val};
use crate::ast::{self, AttachKind};
use crate::diag::Diagnostic;
use crate::hir::{self, ExprKind, LocalId, MapId, MapKind, StmtKind};
use crate::span::{Ident, Span};
use crate::targets::TracepointField;
use crate::types::Ty;
use std::collections::HashMap;
use std::rc::Rc;

#[path = "attach.rs"]
mod attach;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum ProbeKind {
    Tracepoint,
    Uprobe,
    Uretprobe,
    /// An unknown kind (reported): context values are not checked.
    Unknown,
    /// A raw tracepoint: `arg0..arg5` are its u64 arguments.
    RawTracepoint,
    /// `profile`, `interval`, `begin`, `end`: no context values at all.
    NoContext,
    /// A USDT site: `arg0..` as its note describes them (`ProbeCx::usdt_args`).
    Usdt,
}

/// What the checker knows about the fields of the probe's tracepoint.
enum Fields {
    NotTracepoint,
    Known(Rc<[TracepointField]>),
    /// The host could not be asked; reported at the first `args.*` use.
    Unavailable {
        message: String,
        reported: bool,
    },
    /// The tracepoint does not exist (reported at the attach point).
    Failed,
}

/// Per-probe state: kind, tracepoint fields, locals and their scopes.
pub(super) struct ProbeCx {
    kind: ProbeKind,
    attach_span: Span,
    /// `category:name` of a tracepoint, for messages.
    tracepoint: String,
    fields: Fields,
    locals: Vec<hir::Local>,
    /// False for a local whose value had errors: its uses are silent errors.
    local_ok: Vec<bool>,
    local_used: Vec<bool>,
    /// True for `for` loop variables, which the body may read but not assign.
    local_readonly: Vec<bool>,
    scopes: Vec<HashMap<String, LocalId>>,
    /// The attach point's full name, the value of the `probe` builtin.
    full_name: String,
    /// A USDT site's arguments, each parsed or refused (reported when used).
    usdt_args: Vec<Result<crate::usdt::UsdtArg, String>>,
}

fn kind_name(kind: MapKind) -> &'static str {
    match kind {
        MapKind::Count => "count",
        MapKind::Sum => "sum",
        MapKind::Min => "min",
        MapKind::Max => "max",
        MapKind::Avg => "avg",
        MapKind::Stats => "stats",
        MapKind::Hist => "hist",
        MapKind::Lhist { .. } => "lhist",
        MapKind::Hash => "hash",
        MapKind::Array { per_cpu: false, .. } => "array",
        MapKind::Array { per_cpu: true, .. } => "percpu_array",
    }
}

/// The method an aggregation is updated with, and how many arguments it takes.
fn aggregation_method(kind: MapKind) -> (&'static str, usize) {
    match kind {
        MapKind::Count => ("inc", 0),
        MapKind::Sum => ("add", 1),
        _ => ("record", 1),
    }
}

impl Checker<'_> {
    /// One probe per attach point of `decl`. The predicate and body are checked again for
    /// each point, because what `args.FIELD`, `arg0` or `retval` mean depends on it; a
    /// problem found the same way for several points is reported once.
    pub(super) fn check_probe(&mut self, decl: &ast::ProbeDecl) -> Vec<hir::Probe> {
        if let Some(rate) = &decl.rate {
            if rate.node == 0 {
                self.report(
                    Diagnostic::error("E0309", "rate must be positive", rate.span)
                        .label("0 events per second")
                        .with_help("declare the expected system-wide event rate, e.g. `rate <= 1k/s`"),
                );
            }
        }
        let first_diagnostic = self.diagnostics.len();
        let mut probes = Vec::new();
        let points: Vec<ast::AttachPoint> = decl.attach.iter().flat_map(|point| self.expand_wildcards(point)).collect();
        for point in &points {
            let before = self.diagnostics.len();
            let probe = self.check_probe_at(decl, point);
            let (earlier, new) = self.diagnostics.split_at(before);
            let earlier = &earlier[first_diagnostic..];
            let fresh: Vec<Diagnostic> = new.iter().filter(|d| !earlier.contains(d)).cloned().collect();
            self.diagnostics.truncate(before);
            self.diagnostics.extend(fresh);
            probes.extend(probe);
        }
        if let Some(clause) = &decl.activation {
            let activation = self.check_activation(clause);
            for probe in &mut probes {
                probe.activation = activation.clone();
            }
        }
        probes
    }

    fn check_probe_at(&mut self, decl: &ast::ProbeDecl, point: &ast::AttachPoint) -> Option<hir::Probe> {
        let (cx, attach) = self.attach(point);
        self.probe = Some(cx);
        let predicate = decl.predicate.as_ref().and_then(|predicate| {
            let val = self.expr(predicate);
            self.condition(val, "the `when` predicate")
        });
        let body = self.block(&decl.body);
        let cx = self.probe.take()?;
        for (id, local) in cx.locals.iter().enumerate() {
            if !cx.local_used[id] && cx.local_ok[id] && !local.name.starts_with('_') {
                self.report(
                    Diagnostic::error("W0001", format!("unused local `{}`", local.name), local.span)
                        .label("never read")
                        .with_help(format!("remove it, or name it `_{}`", local.name)),
                );
            }
        }
        let attach = attach?;
        let rate = self.probe_rate(decl, &attach);
        Some(hir::Probe { attach, span: decl.span, rate, activation: None, predicate, body, locals: cx.locals })
    }

    fn tracepoint_fields(
        &mut self,
        category: &str,
        name: &str,
    ) -> Result<Rc<[TracepointField]>, crate::targets::TargetError> {
        let key = (category.to_string(), name.to_string());
        if let Some(cached) = self.tracepoint_cache.get(&key) {
            return cached.clone();
        }
        let answer = self.targets.tracepoint_fields(category, name).map(Rc::from);
        self.tracepoint_cache.insert(key, answer.clone());
        answer
    }

    fn attach(&mut self, point: &ast::AttachPoint) -> (ProbeCx, Option<hir::Attach>) {
        let span = point.span;
        let mut cx = ProbeCx {
            kind: ProbeKind::Unknown,
            attach_span: span,
            tracepoint: String::new(),
            fields: Fields::NotTracepoint,
            locals: Vec::new(),
            local_ok: Vec::new(),
            local_used: Vec::new(),
            local_readonly: Vec::new(),
            scopes: Vec::new(),
            full_name: String::new(),
            usdt_args: Vec::new(),
        };
        let attach = match &point.kind {
            AttachKind::Tracepoint { category, name } => {
                cx.kind = ProbeKind::Tracepoint;
                cx.tracepoint = format!("{category}:{name}");
                cx.fields = match self.tracepoint_fields(category, name) {
                    Ok(fields) => Fields::Known(fields),
                    Err(error) if error.unavailable => Fields::Unavailable { message: error.message, reported: false },
                    Err(error) => {
                        let help = did_you_mean(&error.suggestions).unwrap_or_else(|| {
                            format!("list the tracepoints with `ls /sys/kernel/tracing/events/{category}`")
                        });
                        self.report(
                            Diagnostic::error("E0302", format!("unknown tracepoint `{category}:{name}`"), span)
                                .label(error.message)
                                .with_help(help),
                        );
                        Fields::Failed
                    }
                };
                hir::Attach::Tracepoint { category: category.clone(), name: name.clone(), span }
            }
            AttachKind::Uprobe { path, symbol } | AttachKind::Uretprobe { path, symbol } => {
                let is_return = matches!(point.kind, AttachKind::Uretprobe { .. });
                cx.kind = if is_return { ProbeKind::Uretprobe } else { ProbeKind::Uprobe };
                if let Err(error) = self.targets.check_uprobe(path, symbol) {
                    if !error.unavailable {
                        let help = did_you_mean(&error.suggestions).unwrap_or_else(|| {
                            "check the path and that the binary defines the symbol (`nm -D PATH`)".to_string()
                        });
                        self.report(
                            Diagnostic::error("E0304", format!("cannot attach to `{path}:{symbol}`"), span)
                                .label(error.message)
                                .with_help(help),
                        );
                    }
                }
                let (path, symbol, span) = (path.clone(), symbol.clone(), span);
                if is_return {
                    hir::Attach::Uretprobe { path, symbol, span }
                } else {
                    hir::Attach::Uprobe { path, symbol, span }
                }
            }
            AttachKind::Usdt { path, provider, name, site } => {
                cx.kind = ProbeKind::Usdt;
                match self.attach_usdt(path, provider, name, *site, span) {
                    Some((attach, args)) => {
                        cx.usdt_args = args;
                        attach
                    }
                    None => return (cx, None),
                }
            }
            AttachKind::RawTracepoint { .. }
            | AttachKind::Profile { .. }
            | AttachKind::Interval { .. }
            | AttachKind::Begin
            | AttachKind::End => {
                let attach = self.attach_other_kind(point, &mut cx);
                cx.full_name = attach.as_ref().map(hir::Attach::full_name).unwrap_or_default();
                return (cx, attach);
            }
            AttachKind::Unknown { kind, .. } => {
                let help = match closest(kind, attach::KINDS.iter().copied()) {
                    _ if kind.starts_with('k') => {
                        "kernel functions cannot be probed; trace kernel events with a tracepoint, \
                         e.g. `tracepoint:syscalls:sys_enter_openat`"
                            .to_string()
                    }
                    Some(close) => {
                        format!("did you mean `{close}`? The probe kinds are {}", attach::KINDS.join(", "))
                    }
                    None => format!("the probe kinds are {}", attach::KINDS.join(", ")),
                };
                self.report(
                    Diagnostic::error("E0301", format!("unknown probe kind `{kind}`"), span)
                        .label("not a probe kind")
                        .with_help(help),
                );
                return (cx, None);
            }
        };
        cx.full_name = attach.full_name();
        (cx, Some(attach))
    }

    // ------------------------------------------------------------------------- locals

    fn declare_local(&mut self, name: &Ident, ty: Option<Ty>) -> Option<LocalId> {
        let cx = self.probe.as_mut()?;
        let id = cx.locals.len();
        cx.locals.push(hir::Local { name: name.node.clone(), ty: ty.unwrap_or(Ty::U64), span: name.span });
        cx.local_ok.push(ty.is_some());
        cx.local_used.push(false);
        cx.local_readonly.push(false);
        if let Some(scope) = cx.scopes.last_mut() {
            scope.insert(name.node.clone(), id);
        }
        Some(id)
    }

    fn lookup_local(&self, name: &str) -> Option<LocalId> {
        let cx = self.probe.as_ref()?;
        cx.scopes.iter().rev().find_map(|scope| scope.get(name).copied())
    }

    /// A read of local `name`, if one is in scope.
    pub(super) fn local(&mut self, name: &str, span: Span) -> Option<Val> {
        let id = self.lookup_local(name)?;
        let cx = self.probe.as_mut()?;
        cx.local_used[id] = true;
        if !cx.local_ok[id] {
            return Some(Val::Error);
        }
        Some(Val::Typed(hir::Expr { kind: ExprKind::Local(id), ty: cx.locals[id].ty, span }))
    }

    pub(super) fn visible_locals(&self) -> Vec<String> {
        let Some(cx) = &self.probe else { return Vec::new() };
        cx.scopes.iter().flat_map(|scope| scope.keys().cloned()).collect()
    }

    // ---------------------------------------------------------------- context values

    /// `arg0`..`arg5` and `retval`; `None` for other names.
    pub(super) fn context_name(&mut self, name: &str, span: Span) -> Option<Val> {
        if !CONTEXT_NAMES.contains(&name) {
            return None;
        }
        let kind = self.probe.as_ref()?.kind;
        let is_retval = name == "retval";
        let val = match kind {
            ProbeKind::Unknown => Val::Error,
            ProbeKind::Usdt => self.usdt_arg(name, span),
            ProbeKind::RawTracepoint | ProbeKind::NoContext => return Some(self.other_kind_context_name(name, span)),
            ProbeKind::Uretprobe if is_retval => Val::Typed(hir::Expr { kind: ExprKind::Retval, ty: Ty::U64, span }),
            ProbeKind::Uprobe | ProbeKind::Uretprobe if !is_retval => {
                let index = name.as_bytes()[3] - b'0';
                Val::Typed(hir::Expr { kind: ExprKind::Arg(index), ty: Ty::U64, span })
            }
            ProbeKind::Uprobe => {
                self.report(
                    Diagnostic::error("E0306", "`retval` is only available in uretprobe probes", span)
                        .label("this is a uprobe")
                        .with_help("attach with `uretprobe:PATH:SYMBOL` to read the return value"),
                );
                Val::Error
            }
            ProbeKind::Tracepoint | ProbeKind::Uretprobe => {
                let probes = if is_retval { "uretprobe probes" } else { "uprobe and uretprobe probes" };
                self.report(
                    Diagnostic::error("E0306", format!("`{name}` is only available in {probes}"), span)
                        .label("this is a tracepoint probe")
                        .with_help("tracepoint probes read their record with `args.FIELD`"),
                );
                Val::Error
            }
        };
        Some(val)
    }

    /// `argN` of a USDT probe: the site's N-th argument spec read as it says (a register of
    /// the context, a constant, or an integer in user memory).
    fn usdt_arg(&mut self, name: &str, span: Span) -> Val {
        let Some(cx) = self.probe.as_ref() else { return Val::Error };
        if name == "retval" {
            self.report(
                Diagnostic::error("E0306", "`retval` is not available in usdt probes", span)
                    .label("a USDT probe has arguments, no return value")
                    .with_help("read the probe's arguments as `arg0`, `arg1`, .."),
            );
            return Val::Error;
        }
        let index = (name.as_bytes()[3] - b'0') as usize;
        let count = cx.usdt_args.len();
        let arg = match cx.usdt_args.get(index).cloned() {
            Some(Ok(arg)) => arg,
            Some(Err(problem)) => {
                self.report(
                    Diagnostic::error("E0265", format!("cannot read USDT argument `{name}`"), span)
                        .label(problem)
                        .with_help("ppis reads registers, constants and register+offset memory operands"),
                );
                return Val::Error;
            }
            None => {
                self.report(
                    Diagnostic::error("E0267", format!("the USDT probe has no `{name}`"), span)
                        .label(format!("its note declares {count} argument{}", if count == 1 { "" } else { "s" }))
                        .with_help("list a binary's probes and their arguments with `readelf -n PATH`"),
                );
                return Val::Error;
            }
        };
        let ty = Ty::Int { bytes: arg.size, signed: arg.signed };
        let kind = match arg.operand {
            crate::usdt::UsdtOperand::Constant(value) => ExprKind::Int(value as u64),
            crate::usdt::UsdtOperand::Register { offset } => {
                ExprKind::CtxField { offset, size: u32::from(arg.size), signed: arg.signed }
            }
            crate::usdt::UsdtOperand::Memory { base_offset, displacement } => {
                let base = hir::Expr {
                    kind: ExprKind::CtxField { offset: base_offset, size: 8, signed: false },
                    ty: Ty::U64,
                    span,
                };
                let displacement = hir::Expr { kind: ExprKind::Int(displacement as u64), ty: Ty::U64, span };
                let address = hir::Expr {
                    kind: ExprKind::Binary {
                        op: crate::ast::BinaryOp::Add,
                        lhs: Box::new(base),
                        rhs: Box::new(displacement),
                    },
                    ty: Ty::U64,
                    span,
                };
                ExprKind::ReadInt { address: Box::new(address), size: arg.size, signed: arg.signed }
            }
        };
        Val::Typed(hir::Expr { kind, ty, span })
    }

    /// The tracepoint field `args.NAME`, or `None` (reported) if there is none to read.
    fn resolve_field(&mut self, field: &Ident, span: Span) -> Option<TracepointField> {
        let Some(cx) = self.probe.as_mut() else {
            self.report(
                Diagnostic::error("E0217", format!("`args.{}` is not a constant", field.node), span)
                    .label("a run-time value")
                    .with_help("consts are fixed at compile time; use it inside a probe"),
            );
            return None;
        };
        match cx.kind {
            ProbeKind::Unknown => None,
            ProbeKind::RawTracepoint | ProbeKind::NoContext | ProbeKind::Usdt => {
                self.report_args_unavailable(span);
                None
            }
            ProbeKind::Uprobe | ProbeKind::Uretprobe => {
                self.report(
                    Diagnostic::error("E0306", "`args` is only available in tracepoint probes", span)
                        .label("this is a uprobe")
                        .with_help("uprobes read their arguments as `arg0`..`arg5`"),
                );
                None
            }
            ProbeKind::Tracepoint => match &mut cx.fields {
                Fields::NotTracepoint | Fields::Failed => None,
                Fields::Unavailable { reported: true, .. } => None,
                Fields::Unavailable { message, reported } => {
                    *reported = true;
                    let message = format!("the fields of tracepoint `{}` are unavailable: {message}", cx.tracepoint);
                    let attach_span = cx.attach_span;
                    self.report(
                        Diagnostic::error("E0303", message, span)
                            .label("needs the tracepoint's format")
                            .with_secondary(attach_span, "this tracepoint")
                            .with_help("mount tracefs (`mount -t tracefs nodev /sys/kernel/tracing`) and run as root"),
                    );
                    None
                }
                Fields::Known(fields) => {
                    if let Some(found) = fields.iter().find(|f| f.name == field.node) {
                        return Some(found.clone());
                    }
                    let names: Vec<&str> =
                        fields.iter().map(|f| f.name.as_str()).filter(|n| !n.starts_with("common_")).collect();
                    let help = match closest(&field.node, names.iter().copied()) {
                        Some(close) => format!("did you mean `args.{close}`?"),
                        None if names.is_empty() => "this tracepoint has no fields of its own".to_string(),
                        None => format!("its fields are: {}", names.join(", ")),
                    };
                    let message = format!("tracepoint `{}` has no field `{}`", cx.tracepoint, field.node);
                    self.report(Diagnostic::error("E0305", message, field.span).label("unknown field").with_help(help));
                    None
                }
            },
        }
    }

    /// A scalar read of `field` at `offset` (an element of an array field, or the field).
    fn scalar_field(&mut self, field: &TracepointField, offset: u32, span: Span) -> Val {
        if !matches!(field.size, 1 | 2 | 4 | 8) {
            self.report(
                Diagnostic::error(
                    "E0310",
                    format!("field `{}` has an unsupported size ({} bytes)", field.name, field.size),
                    span,
                )
                .label(format!("declared as `{}`", field.c_decl))
                .with_help("only 1, 2, 4 and 8-byte integers and char arrays can be read"),
            );
            return Val::Error;
        }
        let ty = Ty::Int { bytes: field.size as u8, signed: field.signed };
        Val::Typed(hir::Expr { kind: ExprKind::CtxField { offset, size: field.size, signed: field.signed }, ty, span })
    }

    pub(super) fn field(&mut self, field: &Ident, span: Span) -> Val {
        let Some(resolved) = self.resolve_field(field, span) else { return Val::Error };
        match resolved.array_len {
            None => self.scalar_field(&resolved, resolved.offset, span),
            Some(len) if resolved.is_char_array => {
                if !(1..=super::items::MAX_STR_LEN as u32).contains(&len) {
                    self.report(
                        Diagnostic::error(
                            "E0310",
                            format!("field `{}` is a string of {len} bytes", resolved.name),
                            span,
                        )
                        .label(format!("declared as `{}`", resolved.c_decl))
                        .with_help("char arrays of 1 to 256 bytes can be read; index single bytes with `[i]`"),
                    );
                    return Val::Error;
                }
                let ty = Ty::Str { len };
                Val::Typed(hir::Expr { kind: ExprKind::CtxStr { offset: resolved.offset, len }, ty, span })
            }
            Some(len) => {
                self.report(
                    Diagnostic::error("E0218", format!("`args.{}` is an array of {len} elements", resolved.name), span)
                        .label("read one element at a time")
                        .with_help(format!("index it with a constant, e.g. `args.{}[0]`", resolved.name)),
                );
                Val::Error
            }
        }
    }

    pub(super) fn index(&mut self, base: &ast::Expr, index: &ast::Expr, span: Span) -> Val {
        let ast::ExprKind::Field(field) = &base.kind else {
            if !matches!(base.kind, ast::ExprKind::Error) {
                self.report(
                    Diagnostic::error("E0218", "only tracepoint array fields can be indexed", base.span)
                        .label("not an array field")
                        .with_help("index arrays like `args.args[0]`; maps like `m[k] ?? 0`"),
                );
            }
            return Val::Error;
        };
        let index_val = self.expr(index);
        let Some(resolved) = self.resolve_field(field, base.span) else { return Val::Error };
        let Some(len) = resolved.array_len else {
            self.report(
                Diagnostic::error("E0218", format!("`args.{}` is not an array", resolved.name), span)
                    .label(format!("declared as `{}`", resolved.c_decl))
                    .with_help(format!("read it as `args.{}`", resolved.name)),
            );
            return Val::Error;
        };
        let position = match index_val {
            Val::Error => return Val::Error,
            Val::IntLit { value, .. } if (0..len as i128).contains(&value) => value as u32,
            Val::IntLit { value, span: index_span } => {
                self.report(
                    Diagnostic::error("E0218", format!("index {value} is out of bounds"), index_span)
                        .label(format!("`args.{}` has {len} elements", resolved.name))
                        .with_help(format!("use an index from 0 to {}", len.saturating_sub(1))),
                );
                return Val::Error;
            }
            _ => {
                self.report(
                    Diagnostic::error("E0218", "array index must be a constant", index.span)
                        .label("computed at run time")
                        .with_help("use an integer literal or a const"),
                );
                return Val::Error;
            }
        };
        let element_size = if resolved.is_char_array { 1 } else { resolved.size };
        let element = TracepointField { size: element_size, ..resolved.clone() };
        self.scalar_field(&element, resolved.offset + position * element_size, span)
    }

    // ------------------------------------------------------------------------- maps

    fn resolve_map(&mut self, name: &Ident) -> Option<MapId> {
        if let Some(&id) = self.map_ids.get(&name.node) {
            self.used_maps.insert(id);
            return Some(id);
        }
        let mut names: Vec<&str> = self.map_ids.keys().map(String::as_str).collect();
        names.sort_unstable();
        let help = match closest(&name.node, names.iter().copied()) {
            Some(close) => format!("did you mean `{close}`?"),
            None => format!("declare it, e.g. `map {}: count[u32] max 1024;`", name.node),
        };
        self.report(
            Diagnostic::error("E0102", format!("undeclared map `{}`", name.node), name.span)
                .label("no map of this name")
                .with_help(help),
        );
        None
    }

    /// Checks key expressions without a map to check them against.
    fn check_loose(&mut self, exprs: &[ast::Expr]) {
        for expr in exprs {
            // A stack written as a key of a map that could not be checked is not misplaced:
            // the map's own error says what is wrong.
            if super::stack::is_stack_syntax(expr) {
                continue;
            }
            let val = self.expr(expr);
            self.materialize(val);
        }
    }

    /// The keys of `target`, converted to map `id`'s key types.
    fn map_keys(&mut self, id: MapId, target: &ast::MapRef) -> Option<Vec<hir::Expr>> {
        let Some(key_types) = self.maps[id].key.clone() else {
            self.check_loose(&target.keys);
            return None;
        };
        let name = self.maps[id].name.clone();
        if key_types.len() != target.keys.len() {
            let help = if key_types.is_empty() {
                format!("`{name}` has no key: write just `{name}`")
            } else {
                let types: Vec<String> = key_types.iter().map(Ty::to_string).collect();
                format!("`{name}` is keyed by `[{}]`", types.join(", "))
            };
            let map_span = self.maps[id].span;
            self.report(
                Diagnostic::error(
                    "E0210",
                    format!("map `{name}` takes {} key(s), found {}", key_types.len(), target.keys.len()),
                    target.span,
                )
                .label("wrong number of keys")
                .with_secondary(map_span, "declared here")
                .with_help(help),
            );
            self.check_loose(&target.keys);
            return None;
        }
        let purpose = format!("a key of map `{name}`");
        let keys: Vec<Option<hir::Expr>> = target
            .keys
            .iter()
            .zip(key_types)
            .map(|(key, ty)| {
                if let Some(stack) = self.stack_key(key, ty, &name) {
                    return stack;
                }
                let val = self.expr(key);
                self.coerce(val, ty, &purpose)
            })
            .collect();
        keys.into_iter().collect()
    }

    /// Reports a read of map `id` unless it is a hash map; true if the read is fine.
    fn check_readable(&mut self, id: MapId, span: Span) -> bool {
        match self.maps[id].kind {
            Some(MapKind::Hash | MapKind::Array { .. }) => true,
            None => false,
            Some(kind) => {
                let name = self.maps[id].name.clone();
                let map_span = self.maps[id].span;
                self.report(
                    Diagnostic::error(
                        "E0209",
                        "aggregations are per-CPU and write-only in probes; read them from user space",
                        span,
                    )
                    .label(format!("`{name}` is a {} map", kind_name(kind)))
                    .with_secondary(map_span, "declared here")
                    .with_help("if a probe must read a value back, keep it in a hash map (`hash[KEY] -> u64`) or an `array[N]`"),
                );
                false
            }
        }
    }

    pub(super) fn bare_map_read(&mut self, target: &ast::MapRef) -> Val {
        let Some(id) = self.resolve_map(&target.map) else {
            self.check_loose(&target.keys);
            return Val::Error;
        };
        if self.check_readable(id, target.span) {
            let name = &target.map.node;
            self.report(
                Diagnostic::error("E0208", format!("map `{name}` read without a default"), target.span)
                    .label("the key may be missing")
                    .with_help(format!("use `{name}[k] ?? 0` or `if let v = {name}[k] {{ .. }}`")),
            );
        }
        Val::Error
    }

    pub(super) fn coalesce(&mut self, source: &ast::MapRef, default: &ast::Expr, span: Span) -> Val {
        let Some(id) = self.resolve_map(&source.map) else {
            self.check_loose(&source.keys);
            self.check_loose(std::slice::from_ref(default));
            return Val::Error;
        };
        if !self.check_readable(id, source.span) {
            self.check_loose(&source.keys);
            self.check_loose(std::slice::from_ref(default));
            return Val::Error;
        }
        let keys = self.map_keys(id, source);
        let value_ty = self.maps[id].value;
        let default_val = self.expr(default);
        let default = match value_ty {
            Some(ty) => {
                let purpose = format!("the default of `{}`, whose values are `{ty}`", source.map.node);
                self.coerce(default_val, ty, &purpose)
            }
            None => None,
        };
        match (keys, default, value_ty) {
            (Some(keys), Some(default), Some(ty)) => Val::Typed(hir::Expr {
                kind: ExprKind::Coalesce { map: id, keys, default: Box::new(default) },
                ty,
                span,
            }),
            _ => Val::Error,
        }
    }

    // ------------------------------------------------------------------- statements

    fn block(&mut self, block: &ast::Block) -> Vec<hir::Stmt> {
        if let Some(cx) = self.probe.as_mut() {
            cx.scopes.push(HashMap::new());
        }
        let stmts = block.stmts.iter().filter_map(|stmt| self.stmt(stmt)).collect();
        if let Some(cx) = self.probe.as_mut() {
            cx.scopes.pop();
        }
        stmts
    }

    fn stmt(&mut self, stmt: &ast::Stmt) -> Option<hir::Stmt> {
        let kind = match &stmt.kind {
            ast::StmtKind::Let { name, value } => {
                let val = self.expr(value);
                let value = self.materialize(val);
                let local = self.declare_local(name, value.as_ref().map(|v| v.ty))?;
                StmtKind::Assign { local, value: value? }
            }
            ast::StmtKind::Assign { name, value } => self.assign(name, value)?,
            ast::StmtKind::MapAssign { target, value } => self.map_assign(target, value)?,
            ast::StmtKind::MapCall { target, method, args } => self.map_call(target, method, args)?,
            ast::StmtKind::Delete { target } => {
                let id = self.resolve_map(&target.map);
                let Some(id) = id else {
                    self.check_loose(&target.keys);
                    return None;
                };
                if let Some(MapKind::Array { len, .. }) = self.maps[id].kind {
                    let name = &target.map.node;
                    let map_span = self.maps[id].span;
                    self.report(
                        Diagnostic::error("E0223", format!("cannot delete from array `{name}`"), stmt.span)
                            .label(format!("an array always holds its {len} slots"))
                            .with_secondary(map_span, "declared here")
                            .with_help(format!("reset the slot instead: `{name}[i] = 0;`")),
                    );
                    self.check_loose(&target.keys);
                    return None;
                }
                if self.maps[id].key.as_ref().is_some_and(Vec::is_empty) {
                    let name = &target.map.node;
                    self.report(
                        Diagnostic::error("E0222", format!("cannot delete from unkeyed map `{name}`"), stmt.span)
                            .label("an unkeyed map holds exactly one value")
                            .with_help("remove the `delete`; only keyed maps have entries to delete"),
                    );
                    return None;
                }
                let keys = self.map_keys(id, target)?;
                StmtKind::Delete { map: id, keys }
            }
            ast::StmtKind::If { cond, then, otherwise } => {
                let val = self.expr(cond);
                let cond = self.condition(val, "the `if` condition");
                let then = self.block(then);
                let otherwise = otherwise.as_ref().map(|block| self.block(block)).unwrap_or_default();
                StmtKind::If { cond: cond?, then, otherwise }
            }
            ast::StmtKind::IfLet { name, source, then, otherwise } => {
                self.if_let(name, source, then, otherwise.as_ref())?
            }
            ast::StmtKind::Return => StmtKind::Return,
            ast::StmtKind::For { var, start, end, body } => self.for_loop(var, start, end, body)?,
            ast::StmtKind::Emit { name, fields } => self.emit(name, fields, stmt.span)?,
            ast::StmtKind::Print { args } => self.print(args, stmt.span)?,
            ast::StmtKind::Clear { map } => {
                let id = self.resolve_map(map)?;
                self.clear(id, stmt.span)?
            }
            ast::StmtKind::Error => {
                self.saw_parse_error = true;
                return None;
            }
        };
        Some(hir::Stmt { kind, span: stmt.span })
    }

    fn assign(&mut self, name: &Ident, value: &ast::Expr) -> Option<StmtKind> {
        let val = self.expr(value);
        if let Some(local) = self.lookup_local(&name.node) {
            let cx = self.probe.as_ref()?;
            if !cx.local_ok[local] {
                return None;
            }
            if cx.local_readonly[local] {
                let declared = cx.locals[local].span;
                self.report(
                    Diagnostic::error("E0106", format!("cannot assign to loop variable `{}`", name.node), name.span)
                        .label("the loop counts it; the body may only read it")
                        .with_secondary(declared, "declared by this `for`")
                        .with_help(format!("copy it into a local first: `let j = {};`", name.node)),
                );
                return None;
            }
            let ty = cx.locals[local].ty;
            let value = self.coerce(val, ty, &format!("local `{}`", name.node))?;
            return Some(StmtKind::Assign { local, value });
        }
        let text = &name.node;
        let diagnostic = if self.declared_consts.contains_key(text) {
            Diagnostic::error("E0106", format!("cannot assign to const `{text}`"), name.span)
                .label("consts are fixed")
                .with_help(format!("declare a local instead: `let {} = ...;`", text.to_lowercase()))
        } else if super::expr::BUILTINS.iter().any(|(b, ..)| b == text) || CONTEXT_NAMES.contains(&text.as_str()) {
            Diagnostic::error("E0106", format!("cannot assign to `{text}`"), name.span)
                .label("a read-only value of the probe's context")
                .with_help(format!("declare a local instead: `let my_{text} = ...;`"))
        } else if self.map_ids.contains_key(text) {
            Diagnostic::error("E0106", format!("cannot assign to map `{text}` without a key"), name.span)
                .label("a map, not a local")
                .with_help(format!("update one entry: `{text}[key] = value;`"))
        } else {
            let locals = self.visible_locals();
            let help = match closest(text, locals.iter().map(String::as_str)) {
                Some(close) => format!("did you mean `{close}`?"),
                None => format!("declare it first: `let {text} = ...;`"),
            };
            Diagnostic::error("E0101", format!("undeclared local `{text}`"), name.span)
                .label("not declared")
                .with_help(help)
        };
        self.report(diagnostic);
        None
    }

    fn map_assign(&mut self, target: &ast::MapRef, value: &ast::Expr) -> Option<StmtKind> {
        let id = self.resolve_map(&target.map);
        let Some(id) = id else {
            self.check_loose(&target.keys);
            self.check_loose(std::slice::from_ref(value));
            return None;
        };
        match self.maps[id].kind {
            Some(MapKind::Hash | MapKind::Array { .. }) => {}
            None => {
                self.check_loose(&target.keys);
                self.check_loose(std::slice::from_ref(value));
                return None;
            }
            Some(kind) => {
                let (method, arity) = aggregation_method(kind);
                let call = if arity == 0 { format!("{method}()") } else { format!("{method}(value)") };
                let name = &target.map.node;
                let map_span = self.maps[id].span;
                self.report(
                    Diagnostic::error("E0221", format!("cannot assign to aggregation `{name}`"), target.span)
                        .label(format!("`{name}` is a {} map", kind_name(kind)))
                        .with_secondary(map_span, "declared here")
                        .with_help(format!("update it with `{name}[..].{call};`")),
                );
                self.check_loose(&target.keys);
                self.check_loose(std::slice::from_ref(value));
                return None;
            }
        }
        let keys = self.map_keys(id, target);
        let val = self.expr(value);
        let value_ty = self.maps[id].value?;
        let value = self.coerce(val, value_ty, &format!("a value of map `{}`", target.map.node));
        Some(StmtKind::MapUpdate { map: id, keys: keys?, value: value? })
    }

    fn map_call(&mut self, target: &ast::MapRef, method: &Ident, args: &[ast::Expr]) -> Option<StmtKind> {
        let id = self.resolve_map(&target.map);
        let Some(id) = id else {
            self.check_loose(&target.keys);
            self.check_loose(args);
            return None;
        };
        let name = target.map.node.clone();
        let map_span = self.maps[id].span;
        let kind = match self.maps[id].kind {
            None => {
                self.check_loose(&target.keys);
                self.check_loose(args);
                return None;
            }
            Some(kind @ (MapKind::Hash | MapKind::Array { .. })) => {
                let kind = kind_name(kind);
                self.report(
                    Diagnostic::error(
                        "E0207",
                        format!("{kind} map `{name}` has no method `{}`", method.node),
                        method.span,
                    )
                    .label(format!("{kind} maps have no methods"))
                    .with_secondary(map_span, "declared here")
                    .with_help(format!("assign an entry: `{name}[key] = value;`")),
                );
                self.check_loose(&target.keys);
                self.check_loose(args);
                return None;
            }
            Some(kind) => kind,
        };
        let (expected, arity) = aggregation_method(kind);
        if method.node != expected {
            let example = if arity == 0 { format!("{expected}()") } else { format!("{expected}(value)") };
            self.report(
                Diagnostic::error(
                    "E0207",
                    format!("{} map `{name}` has no method `{}`", kind_name(kind), method.node),
                    method.span,
                )
                .label("wrong method for this map kind")
                .with_secondary(map_span, "declared here")
                .with_help(format!("{} maps are updated with `.{example}`", kind_name(kind))),
            );
            self.check_loose(&target.keys);
            self.check_loose(args);
            return None;
        }
        if args.len() != arity {
            let span = args.first().map_or(method.span, |first| first.span.to(args[args.len() - 1].span));
            let help =
                if arity == 0 { format!("write `.{expected}()`") } else { format!("write `.{expected}(value)`") };
            self.report(
                Diagnostic::error(
                    "E0219",
                    format!("`.{expected}()` takes {arity} argument(s), found {}", args.len()),
                    span,
                )
                .label("wrong number of arguments")
                .with_help(help),
            );
            self.check_loose(&target.keys);
            self.check_loose(args);
            return None;
        }
        let keys = self.map_keys(id, target);
        let value = match args.first() {
            None => None,
            Some(arg) => {
                let val = self.expr(arg);
                let value = match val {
                    Val::Error => return None,
                    Val::Typed(ref expr) if !expr.ty.is_int() => {
                        self.report(
                            Diagnostic::error(
                                "E0201",
                                format!("mismatched types: expected an integer, found `{}`", expr.ty),
                                expr.span,
                            )
                            .label(format!("{} maps record integers", kind_name(kind)))
                            .with_help("record a number, e.g. a latency `nsecs - t0`"),
                        );
                        return None;
                    }
                    Val::StrLit { span, .. } => {
                        self.report(
                            Diagnostic::error("E0201", "mismatched types: expected an integer, found a string", span)
                                .label(format!("{} maps record integers", kind_name(kind)))
                                .with_help("record a number, e.g. a latency `nsecs - t0`"),
                        );
                        return None;
                    }
                    other => self.materialize(other)?,
                };
                if value.ty.is_signed() {
                    self.maps[id].records_signed = true;
                }
                // Converted to the map's final value type once every probe is checked.
                Some(value)
            }
        };
        Some(StmtKind::Aggregate { map: id, keys: keys?, value })
    }

    /// `for var in start..end { body }`: both bounds are `u64`, `var` a read-only `u64` in
    /// the body. Whether the loop is bounded is the verifier's to prove (a constant `end`, or
    /// one a guard keeps small).
    fn for_loop(&mut self, var: &Ident, start: &ast::Expr, end: &ast::Expr, body: &ast::Block) -> Option<StmtKind> {
        let start_val = self.expr(start);
        let start = self.coerce(start_val, Ty::U64, "the start of a `for` range");
        let end_val = self.expr(end);
        let end = self.coerce(end_val, Ty::U64, "the end of a `for` range");
        if let Some(cx) = self.probe.as_mut() {
            cx.scopes.push(HashMap::new());
        }
        let local = self.declare_local(var, Some(Ty::U64));
        if let (Some(local), Some(cx)) = (local, self.probe.as_mut()) {
            cx.local_readonly[local] = true;
        }
        let body = self.block(body);
        if let Some(cx) = self.probe.as_mut() {
            cx.scopes.pop();
        }
        Some(StmtKind::For { local: local?, start: start?, end: end?, body })
    }

    /// A call of a built-in function; today only `str(ptr, N)`.
    pub(super) fn call(&mut self, name: &Ident, args: &[ast::Expr], span: Span) -> Val {
        if super::stack::STACK_BUILTINS.contains(&name.node.as_str()) {
            self.check_loose(args);
            return self.stack_outside_key(&name.node, span);
        }
        if name.node != "str" && name.node != "buf" {
            let help = match closest(&name.node, ["str", "buf"]) {
                Some(close) => format!("did you mean `{close}`? The built-in functions are `str(ptr, N)`"),
                None => "the only built-in function is `str(ptr, N)`, a bounded string read".to_string(),
            };
            self.report(
                Diagnostic::error("E0225", format!("unknown function `{}`", name.node), name.span)
                    .label("not a function")
                    .with_help(help),
            );
            self.check_loose(args);
            return Val::Error;
        }
        let [ptr, len] = args else {
            self.report(
                Diagnostic::error("E0226", format!("`str` takes 2 arguments, found {}", args.len()), span)
                    .label("expected `str(ptr, N)`")
                    .with_help("pass the pointer and the most bytes to read, e.g. `str(args.filename, 64)`"),
            );
            self.check_loose(args);
            return Val::Error;
        };
        let ptr_val = self.expr(ptr);
        let ptr = self.coerce(ptr_val, Ty::U64, "the pointer of `str(ptr, N)`");
        let max = super::items::MAX_STR_LEN;
        let len = match self.expr(len) {
            Val::Error => None,
            Val::IntLit { value, .. } if (1..=max as i128).contains(&value) => Some(value as u32),
            Val::IntLit { value, span: len_span } => {
                self.report(
                    Diagnostic::error("E0415", format!("string read of {value} bytes"), len_span)
                        .label(format!("must be 1 to {max}: the string lands in a stack buffer"))
                        .with_help("read at most 256 bytes, e.g. `str(ptr, 64)`"),
                );
                None
            }
            other => {
                let len_span = len.span;
                drop(other);
                self.report(
                    Diagnostic::error("E0415", "unbounded string read: the length is not a constant", len_span)
                        .label("computed at run time")
                        .with_help("give the most bytes to read as a constant, e.g. `str(ptr, 64)`"),
                );
                None
            }
        };
        let Some(cx) = self.probe.as_ref() else {
            self.report(
                Diagnostic::error("E0217", "`str(..)` is not a constant", span)
                    .label("reads memory at run time")
                    .with_help("consts are fixed at compile time; use it inside a probe"),
            );
            return Val::Error;
        };
        // Uprobe arguments are user pointers; so are the pointer arguments of syscalls, which
        // is what the `syscalls` and `raw_syscalls` tracepoints record. Other tracepoints
        // record kernel pointers.
        let space = match cx.kind {
            ProbeKind::Tracepoint
                if !(cx.tracepoint.starts_with("syscalls:") || cx.tracepoint.starts_with("raw_syscalls:")) =>
            {
                hir::AddressSpace::Kernel
            }
            _ => hir::AddressSpace::User,
        };
        match (ptr, len) {
            (Some(ptr), Some(len)) if name.node == "buf" => Val::Typed(hir::Expr {
                kind: ExprKind::ReadBuf { ptr: Box::new(ptr), len, space },
                ty: Ty::Buf { len },
                span,
            }),
            (Some(ptr), Some(len)) => Val::Typed(hir::Expr {
                kind: ExprKind::ReadStr { ptr: Box::new(ptr), len, space },
                ty: Ty::Str { len },
                span,
            }),
            _ => Val::Error,
        }
    }

    fn if_let(
        &mut self,
        name: &Ident,
        source: &ast::MapRef,
        then: &ast::Block,
        otherwise: Option<&ast::Block>,
    ) -> Option<StmtKind> {
        let id = self.resolve_map(&source.map);
        let readable = match id {
            Some(id) => self.check_readable(id, source.span),
            None => false,
        };
        let keys = match id {
            Some(id) if readable => self.map_keys(id, source),
            _ => {
                self.check_loose(&source.keys);
                None
            }
        };
        let value_ty = id.and_then(|id| self.maps[id].value).filter(|_| readable);
        if let Some(cx) = self.probe.as_mut() {
            cx.scopes.push(HashMap::new());
        }
        let local = self.declare_local(name, value_ty);
        let then = self.block(then);
        if let Some(cx) = self.probe.as_mut() {
            cx.scopes.pop();
        }
        let otherwise = otherwise.map(|block| self.block(block)).unwrap_or_default();
        Some(StmtKind::IfLet { local: local?, map: id?, keys: keys?, then, otherwise })
    }
}
