//! Output statements: `emit NAME { field: expr, .. };` and `print("fmt", args..);`.
//!
//! Every `emit` of one name shares one event type (the first fixes its fields and their
//! types; later ones must name the same fields and are converted to those types). Each
//! `print` statement is its own event type whose fields are the arguments; its format is
//! checked against them here, so the runtime never meets a bad one. Every record must fit
//! on the eBPF stack, where the probe builds it before sending it.

use super::{Checker, Val};
use crate::ast;
use crate::diag::Diagnostic;
use crate::hir::{self, Conversion, EventDef, EventField, EventId, FormatPiece, PrintFormat, StmtKind};
use crate::span::{Ident, Span};
use crate::types::Ty;
use std::collections::HashMap;

/// The eBPF stack a probe builds its record on, in bytes.
pub const STACK_BYTES: u32 = 512;

/// Event types found so far, shared by every probe of the file.
#[derive(Default)]
pub(super) struct Events {
    pub(super) defs: Vec<EventDef>,
    /// `emit` names to their event type.
    by_name: HashMap<String, EventId>,
    /// `print` statements (by span) to their event type: a probe with several attach points
    /// is checked once per point, and must not define its `print`s again.
    by_print: HashMap<Span, EventId>,
}

/// A format string cut into text and conversions, each conversion with its span.
struct ParsedFormat {
    pieces: Vec<FormatPiece>,
    conversions: Vec<(Conversion, Span)>,
}

impl Checker<'_> {
    pub(super) fn emit(&mut self, name: &Ident, fields: &[ast::EmitField], span: Span) -> Option<StmtKind> {
        let mut seen: HashMap<&str, Span> = HashMap::new();
        let mut duplicate = false;
        for field in fields {
            if let Some(first) = seen.insert(field.name.node.as_str(), field.name.span) {
                duplicate = true;
                self.report(
                    Diagnostic::error("E0245", format!("field `{}` given twice", field.name.node), field.name.span)
                        .label("given again here")
                        .with_secondary(first, "first given here")
                        .with_help("give each field of an event once"),
                );
            }
        }
        if duplicate {
            self.check_emit_values(fields);
            return None;
        }
        let Some(&event) = self.events.by_name.get(&name.node) else {
            return self.define_emit(name, fields, span);
        };
        let declared = self.events.defs[event].clone();
        let given: Vec<&str> = fields.iter().map(|f| f.name.node.as_str()).collect();
        let missing: Vec<&str> =
            declared.fields.iter().map(|f| f.name.as_str()).filter(|name| !given.contains(name)).collect();
        let extra: Vec<&ast::EmitField> =
            fields.iter().filter(|f| !declared.fields.iter().any(|d| d.name == f.name.node)).collect();
        if !missing.is_empty() || !extra.is_empty() {
            let shape = declared.fields.iter().map(|f| format!("{}: {}", f.name, f.ty)).collect::<Vec<_>>().join(", ");
            let (label_span, label) = match (extra.first(), missing.as_slice()) {
                (Some(field), _) => {
                    (field.name.span, format!("event `{}` has no field `{}`", name.node, field.name.node))
                }
                (None, missing) => (name.span, format!("missing {}", quoted_list(missing))),
            };
            self.report(
                Diagnostic::error("E0245", format!("`emit {}` with different fields", name.node), label_span)
                    .label(label)
                    .with_secondary(declared.span, format!("first emitted here as {{ {shape} }}"))
                    .with_help(
                        "every `emit` of a name sends the same fields: rename one event or give the same fields",
                    ),
            );
            self.check_emit_values(fields);
            return None;
        }
        let mut values = Vec::new();
        let mut ok = true;
        for declared_field in &declared.fields {
            let Some(field) = fields.iter().find(|f| f.name.node == declared_field.name) else { continue };
            let val = self.expr(&field.value);
            let purpose = format!("field `{}` of event `{}`", declared_field.name, name.node);
            match self.coerce(val, declared_field.ty, &purpose) {
                Some(value) => values.push(value),
                None => ok = false,
            }
        }
        ok.then_some(StmtKind::Emit { event, values })
    }

    /// `clear m;` for map `map`: a record of the reserved event type [`hir::CLEAR_EVENT`]
    /// (one `u32` field, the map's id) that tells user space to empty the map. The runtime
    /// clears it when it reads the record, so clearing is asynchronous: updates the probes
    /// make before the runtime gets there are cleared too.
    pub(super) fn clear(&mut self, map: hir::MapId, span: Span) -> Option<StmtKind> {
        let event = match self.events.by_name.get(hir::CLEAR_EVENT) {
            Some(&event) => event,
            None => {
                let event = self.events.defs.len();
                self.events.defs.push(EventDef {
                    name: hir::CLEAR_EVENT.to_string(),
                    span,
                    fields: vec![EventField { name: hir::CLEAR_EVENT_MAP_FIELD.to_string(), ty: Ty::U32 }],
                    format: None,
                });
                self.events.by_name.insert(hir::CLEAR_EVENT.to_string(), event);
                event
            }
        };
        let id = hir::Expr { kind: hir::ExprKind::Int(map as u64), ty: Ty::U32, span };
        Some(StmtKind::Emit { event, values: vec![id] })
    }

    /// The first `emit` of a name: its values' types become the event's field types.
    fn define_emit(&mut self, name: &Ident, fields: &[ast::EmitField], span: Span) -> Option<StmtKind> {
        let mut values = Vec::new();
        let mut ok = true;
        for field in fields {
            let val = self.expr(&field.value);
            match self.materialize(val) {
                Some(value) => values.push(value),
                None => ok = false,
            }
        }
        if !ok {
            return None;
        }
        let def = EventDef {
            name: name.node.clone(),
            span,
            fields: fields
                .iter()
                .zip(&values)
                .map(|(field, value)| EventField { name: field.name.node.clone(), ty: value.ty })
                .collect(),
            format: None,
        };
        if !self.record_fits(&def, name.span) {
            return None;
        }
        let event = self.events.defs.len();
        self.events.defs.push(def);
        self.events.by_name.insert(name.node.clone(), event);
        Some(StmtKind::Emit { event, values })
    }

    fn check_emit_values(&mut self, fields: &[ast::EmitField]) {
        for field in fields {
            let val = self.expr(&field.value);
            self.materialize(val);
        }
    }

    pub(super) fn print(&mut self, args: &[ast::Expr], span: Span) -> Option<StmtKind> {
        let Some((format, args)) = args.split_first() else {
            self.report(
                Diagnostic::error("E0241", "`print` without a format string", span)
                    .label("nothing to print")
                    .with_help("give a format and its arguments: `print(\"n=%d\\n\", arg0);`"),
            );
            return None;
        };
        let ast::ExprKind::Str(text) = &format.kind else {
            self.report(
                Diagnostic::error("E0241", "the format of `print` must be a string literal", format.span)
                    .label("not a string literal")
                    .with_help("the format is checked at compile time: write it out, e.g. `print(\"n=%d\\n\", arg0);`"),
            );
            self.check_loose_values(args);
            return None;
        };
        let Some(parsed) = self.parse_format(text, format.span) else {
            self.check_loose_values(args);
            return None;
        };
        let vals: Vec<Val> = args.iter().map(|arg| self.expr(arg)).collect();
        if parsed.conversions.len() != args.len() {
            let (at, label) = if parsed.conversions.len() > args.len() {
                (parsed.conversions[args.len()].1, "this conversion has no argument".to_string())
            } else {
                (args[parsed.conversions.len()].span, "this argument has no conversion".to_string())
            };
            self.report(
                Diagnostic::error(
                    "E0242",
                    format!(
                        "the format has {} conversion{} but `print` got {} argument{}",
                        parsed.conversions.len(),
                        plural(parsed.conversions.len()),
                        args.len(),
                        plural(args.len())
                    ),
                    at,
                )
                .label(label)
                .with_help("give one argument per `%d`, `%u`, `%x` or `%s` (write `%%` for a percent sign)"),
            );
            for val in vals {
                self.materialize(val);
            }
            return None;
        }
        let mut values = Vec::new();
        let mut ok = true;
        for ((val, arg), &(conversion, conversion_span)) in vals.into_iter().zip(args).zip(&parsed.conversions) {
            let Some(value) = self.materialize(val) else {
                ok = false;
                continue;
            };
            let fits = match conversion {
                Conversion::Signed | Conversion::Unsigned | Conversion::Hex => value.ty.is_int(),
                Conversion::Str => matches!(value.ty, Ty::Str { .. }),
            };
            if !fits {
                let wanted = match conversion {
                    Conversion::Str => "a string",
                    _ => "an integer",
                };
                let help = match (conversion, value.ty) {
                    (Conversion::Str, _) => "`%s` prints strings; print integers with `%d`, `%u` or `%x`".to_string(),
                    (_, Ty::Bool) => "print a bool as a number with `b ? 1 : 0`".to_string(),
                    _ => "print strings with `%s`".to_string(),
                };
                self.report(
                    Diagnostic::error(
                        "E0243",
                        format!("`{}` expects {wanted}, found `{}`", conversion.specifier(), value.ty),
                        conversion_span,
                    )
                    .label(format!("expects {wanted}"))
                    .with_secondary(arg.span, format!("this argument is `{}`", value.ty))
                    .with_help(help),
                );
                ok = false;
                continue;
            }
            values.push(value);
        }
        if !ok {
            return None;
        }
        if let Some(&event) = self.events.by_print.get(&span) {
            return Some(StmtKind::Emit { event, values });
        }
        let def = EventDef {
            name: "print".to_string(),
            span,
            fields: values.iter().enumerate().map(|(i, v)| EventField { name: format!("arg{i}"), ty: v.ty }).collect(),
            format: Some(PrintFormat { pieces: parsed.pieces }),
        };
        if !self.record_fits(&def, format.span) {
            return None;
        }
        let event = self.events.defs.len();
        self.events.defs.push(def);
        self.events.by_print.insert(span, event);
        Some(StmtKind::Emit { event, values })
    }

    fn check_loose_values(&mut self, args: &[ast::Expr]) {
        for arg in args {
            let val = self.expr(arg);
            self.materialize(val);
        }
    }

    /// Cuts `text` (the decoded literal at `literal`) into pieces; reports a bad specifier.
    fn parse_format(&mut self, text: &str, literal: Span) -> Option<ParsedFormat> {
        // Source offset of each decoded byte: an escape (`\n`, `\t`, `\r`, `\0`, `\\`, `\"`)
        // is two source bytes for one. When the sum disagrees with the literal's length (a raw
        // control character), specifiers are pointed at with the whole literal.
        let mut source_at = Vec::with_capacity(text.len() + 1);
        let mut offset = literal.start as usize + 1;
        for byte in text.bytes() {
            source_at.push(offset);
            offset += if matches!(byte, b'\n' | b'\t' | b'\r' | 0 | b'\\' | b'"') { 2 } else { 1 };
        }
        source_at.push(offset);
        let exact = offset + 1 == literal.end as usize;
        let spec_span = |at: usize, len: usize| match (exact, source_at.get(at), source_at.get(at + len)) {
            (true, Some(&start), Some(&end)) => Span::new(start, end),
            _ => literal,
        };
        let mut pieces = Vec::new();
        let mut conversions = Vec::new();
        let mut current = String::new();
        let mut chars = text.char_indices().peekable();
        while let Some((at, c)) = chars.next() {
            if c != '%' {
                current.push(c);
                continue;
            }
            let conversion = match chars.next() {
                Some((_, '%')) => {
                    current.push('%');
                    continue;
                }
                Some((_, 'd')) | Some((_, 'i')) => Conversion::Signed,
                Some((_, 'u')) => Conversion::Unsigned,
                Some((_, 'x')) => Conversion::Hex,
                Some((_, 's')) => Conversion::Str,
                Some((_, other)) => {
                    self.report(
                        Diagnostic::error(
                            "E0241",
                            format!("unknown conversion `%{other}` in the format"),
                            spec_span(at, 1 + other.len_utf8()),
                        )
                        .label("not a conversion")
                        .with_help("the conversions are `%d`, `%u`, `%x` and `%s`; write `%%` for a percent sign"),
                    );
                    return None;
                }
                None => {
                    self.report(
                        Diagnostic::error("E0241", "the format ends in a lone `%`", spec_span(at, 1))
                            .label("a conversion without its letter")
                            .with_help("write `%%` for a percent sign"),
                    );
                    return None;
                }
            };
            if !current.is_empty() {
                pieces.push(FormatPiece::Text(std::mem::take(&mut current)));
            }
            pieces.push(FormatPiece::Conversion(conversion));
            conversions.push((conversion, spec_span(at, 2)));
        }
        if !current.is_empty() {
            pieces.push(FormatPiece::Text(current));
        }
        Some(ParsedFormat { pieces, conversions })
    }

    /// Whether the event's record fits on the stack; reports it with the numbers otherwise.
    fn record_fits(&mut self, def: &EventDef, at: Span) -> bool {
        let size = def.record_size();
        if size <= STACK_BYTES {
            return true;
        }
        let what = if def.format.is_some() { "this `print`".to_string() } else { format!("event `{}`", def.name) };
        let largest = def.fields.iter().max_by_key(|f| f.ty.size());
        let help = match largest {
            Some(field) if matches!(field.ty, Ty::Str { .. }) => {
                format!("send fewer or shorter values: `{}` alone takes {} bytes", field.name, field.ty.size())
            }
            _ => "send fewer values, or split them over two events".to_string(),
        };
        self.report(
            Diagnostic::error(
                "E0244",
                format!("{what} needs a {size}-byte record, but the eBPF stack holds {STACK_BYTES} bytes",),
                at,
            )
            .label({
                let values: u32 = def.fields.iter().map(|f| f.ty.size()).sum();
                let padding = size - hir::EVENT_HEADER_BYTES - values;
                format!(
                    "{} bytes of header, {values} of values, {padding} of alignment padding",
                    hir::EVENT_HEADER_BYTES
                )
            })
            .with_help(help),
        );
        false
    }
}

fn plural(n: usize) -> &'static str {
    if n == 1 {
        ""
    } else {
        "s"
    }
}

fn quoted_list(names: &[&str]) -> String {
    let quoted: Vec<String> = names.iter().map(|n| format!("`{n}`")).collect();
    format!("field{} {}", plural(names.len()), quoted.join(", "))
}
