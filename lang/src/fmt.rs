//! `ppisc fmt`: the one canonical layout of a `.ppl` file, keeping every comment.
//!
//! The layout: 4-space indents, one statement per line, a blank line around every probe,
//! maps/consts/budget grouped as written (a blank line between two of them only where the
//! source had one), blank lines between statements kept (at most one). A probe header
//! `probe X rate <= N/s when P {` stays on one line when it fits in [`MAX_WIDTH`] columns
//! and has no comment inside; otherwise `rate` and `when` go on indented continuation lines
//! and `{` on a line of its own. Expressions get exactly the parentheses precedence needs.
//! Literals keep their spelling (`0x1F`, `10k`, `1_000`); strings are re-escaped.
//!
//! Comments: the tree has none, so the tokens are lexed again and every `//` comment is
//! collected from the gaps between them. A comment with code before it on its line is a
//! *trailing* comment: it stays at the end of the output line holding that code. Any other
//! comment goes on its own line before the next item or statement (or before the `}` that
//! closes its block). A comment inside a construct printed on one line moves above it,
//! except the last trailing one, which trails the line. Every placement is one a second run
//! leaves alone, so formatting is idempotent.

use crate::ast::*;
use crate::diag::Diagnostic;
use crate::lexer::{Lexer, Tok};
use crate::span::Span;
use logos::Logos;

/// Column limit for one-line probe headers.
pub const MAX_WIDTH: usize = 100;
const INDENT: &str = "    ";

/// Formats `source`. Files with syntax errors are refused: the errors come back instead,
/// since there is no telling what a broken file was meant to look like.
pub fn format_source(source: &str) -> Result<String, Vec<Diagnostic>> {
    let (file, diagnostics) = crate::parse(source);
    let errors: Vec<Diagnostic> = diagnostics.into_iter().filter(Diagnostic::is_error).collect();
    if !errors.is_empty() {
        return Err(errors);
    }
    let mut printer = Printer::new(source, collect_comments(source));
    printer.file(&file);
    Ok(printer.finish())
}

/// Whether `source` is already in canonical layout (`ppisc fmt --check`). Files with syntax
/// errors give their errors.
pub fn is_formatted(source: &str) -> Result<bool, Vec<Diagnostic>> {
    format_source(source).map(|formatted| formatted == source)
}

/// One `//` comment of the source.
#[derive(Clone, Debug)]
struct Comment {
    /// Byte offset of the `//`.
    start: usize,
    /// End of its text (trailing whitespace excluded).
    end: usize,
    /// Code precedes it on its line; `anchor` is where that code ends.
    trailing: bool,
    anchor: usize,
    emitted: bool,
}

/// Every comment, in source order, found in the gaps between tokens (the lexer skips them;
/// scanning the gaps rather than the text keeps `//` inside strings and attach-point paths
/// such as `uprobe:/a//b:f` from counting).
fn collect_comments(source: &str) -> Vec<Comment> {
    let mut comments = Vec::new();
    let mut previous_end = None;
    let mut gap_start = 0;
    for (start, _, end) in Lexer::new(source) {
        scan_gap(source, gap_start, start, previous_end, &mut comments);
        previous_end = Some(end);
        gap_start = end;
    }
    scan_gap(source, gap_start, source.len(), previous_end, &mut comments);
    comments
}

fn scan_gap(source: &str, from: usize, to: usize, previous_token_end: Option<usize>, out: &mut Vec<Comment>) {
    let bytes = source.as_bytes();
    let mut index = from;
    let mut newline_seen = false;
    while index < to.min(bytes.len()) {
        match bytes[index] {
            b'\n' => {
                newline_seen = true;
                index += 1;
            }
            b'/' if bytes.get(index + 1) == Some(&b'/') => {
                let line_end = source[index..to].find('\n').map_or(to, |offset| index + offset);
                let text_end = index + source[index..line_end].trim_end().len();
                let trailing = previous_token_end.is_some() && !newline_seen;
                out.push(Comment {
                    start: index,
                    end: text_end,
                    trailing,
                    anchor: if trailing { from } else { index },
                    emitted: false,
                });
                index = line_end;
            }
            _ => index += 1,
        }
    }
}

/// Whether a line may be preceded by a blank line.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Blank {
    /// Never (continuation lines, braces).
    Never,
    /// Where the source had one.
    Preserve,
    /// Always (before a probe and after one), unless at the top of the file.
    Force,
}

/// The output line being built: its text and the source range it covers.
struct OpenLine {
    text: String,
    start: usize,
    end: usize,
    blank: Blank,
    indent: usize,
    /// Indent of the comments moved above it: a line starting with `}` puts them inside
    /// the block it closes, where a second run finds them.
    above_indent: usize,
}

struct Printer<'src> {
    source: &'src str,
    comments: Vec<Comment>,
    /// Every comment before this index is emitted.
    first_pending: usize,
    out: String,
    indent: usize,
    line: Option<OpenLine>,
    /// Source offset of the end of the last emitted thing, for blank-line detection.
    last_source_end: usize,
    /// Nothing emitted since the last `{`: no blank line here.
    at_block_start: bool,
}

impl<'src> Printer<'src> {
    fn new(source: &'src str, comments: Vec<Comment>) -> Printer<'src> {
        Printer {
            source,
            comments,
            first_pending: 0,
            out: String::new(),
            indent: 0,
            line: None,
            last_source_end: 0,
            at_block_start: false,
        }
    }

    fn finish(mut self) -> String {
        self.finish_line();
        self.flush_comments_before(usize::MAX, 0);
        self.out
    }

    // ------------------------------------------------------------------ lines and comments

    fn source_has_blank_line(&self, from: usize, to: usize) -> bool {
        from < to && self.source.get(from..to).is_some_and(|gap| gap.matches('\n').count() >= 2)
    }

    fn blank_line_if(&mut self, blank: Blank, source_start: usize) {
        if self.out.is_empty() || self.at_block_start || self.out.ends_with("\n\n") {
            return;
        }
        let wanted = match blank {
            Blank::Never => false,
            Blank::Force => true,
            Blank::Preserve => self.source_has_blank_line(self.last_source_end, source_start),
        };
        if wanted {
            self.out.push('\n');
        }
    }

    fn push_indent(&mut self, indent: usize) {
        for _ in 0..indent {
            self.out.push_str(INDENT);
        }
    }

    fn emit_comment_line(&mut self, index: usize, indent: usize, blank: Blank) {
        let (start, end) = (self.comments[index].start, self.comments[index].end);
        self.blank_line_if(blank, start);
        self.push_indent(indent);
        self.out.push_str(&self.source[start..end]);
        self.out.push('\n');
        self.comments[index].emitted = true;
        self.last_source_end = self.last_source_end.max(end);
        self.at_block_start = false;
    }

    fn advance_first_pending(&mut self) {
        while self.comments.get(self.first_pending).is_some_and(|c| c.emitted) {
            self.first_pending += 1;
        }
    }

    /// Emits every pending comment before `limit` on its own line (dangling comments at the
    /// end of a block or file).
    fn flush_comments_before(&mut self, limit: usize, indent: usize) {
        for index in self.first_pending..self.comments.len() {
            if self.comments[index].start >= limit {
                break;
            }
            if !self.comments[index].emitted {
                self.emit_comment_line(index, indent, Blank::Preserve);
            }
        }
        self.advance_first_pending();
    }

    fn has_pending_comment_in(&self, from: usize, to: usize) -> bool {
        self.comments[self.first_pending..].iter().take_while(|c| c.start < to).any(|c| !c.emitted && c.start >= from)
    }

    /// Starts an output line for source that begins at `start`.
    fn open_line(&mut self, start: usize, text: impl Into<String>, blank: Blank) {
        self.finish_line();
        let text = text.into();
        self.line = Some(OpenLine { text, start, end: start, blank, indent: self.indent, above_indent: self.indent });
    }

    /// Appends to the open line; `end` is where the source of what was appended ends.
    fn append(&mut self, text: &str, end: usize) {
        if let Some(line) = &mut self.line {
            line.text.push_str(text);
            line.end = line.end.max(end);
        }
    }

    fn finish_line(&mut self) {
        let Some(line) = self.line.take() else { return };
        let (start, end) = (line.start, line.end);
        // The comment trailing this line: the one right after it, else the last trailing
        // comment inside it.
        let pending = || (self.first_pending..self.comments.len()).filter(|&i| !self.comments[i].emitted);
        let after = pending()
            .take_while(|&i| self.comments[i].anchor <= end)
            .find(|&i| self.comments[i].trailing && self.comments[i].anchor == end && self.comments[i].start >= end);
        let chosen = after.or_else(|| {
            pending()
                .take_while(|&i| self.comments[i].start < end)
                .filter(|&i| self.comments[i].trailing && self.comments[i].start >= start)
                .last()
        });
        let above: Vec<usize> =
            pending().take_while(|&i| self.comments[i].start < end).filter(|&i| Some(i) != chosen).collect();
        let mut blank = line.blank;
        for index in above {
            self.emit_comment_line(index, line.above_indent, blank);
            if blank == Blank::Force {
                blank = Blank::Preserve;
            }
        }
        self.blank_line_if(blank, start);
        self.push_indent(line.indent);
        self.out.push_str(&line.text);
        self.last_source_end = self.last_source_end.max(end);
        if let Some(index) = chosen {
            let (comment_start, comment_end) = (self.comments[index].start, self.comments[index].end);
            self.out.push(' ');
            self.out.push_str(&self.source[comment_start..comment_end]);
            self.comments[index].emitted = true;
            self.last_source_end = self.last_source_end.max(comment_end);
        }
        self.out.push('\n');
        self.at_block_start = false;
        self.advance_first_pending();
    }

    // ------------------------------------------------------------------------------ items

    fn file(&mut self, file: &File) {
        let mut previous_was_probe = false;
        for (index, item) in file.items.iter().enumerate() {
            let is_probe = matches!(item, Item::Probe(_));
            let blank = if index > 0 && (is_probe || previous_was_probe) { Blank::Force } else { Blank::Preserve };
            self.item(item, blank);
            previous_was_probe = is_probe;
        }
    }

    fn item(&mut self, item: &Item, blank: Blank) {
        match item {
            Item::Budget { percent, span } => {
                let text = format!("budget {}%;", self.token_text(percent.span));
                self.single_line(*span, text, blank);
            }
            Item::Const { name, value, span } => {
                let text = format!("const {} = {};", name.node, self.expr(value));
                self.single_line(*span, text, blank);
            }
            Item::Map(map) => {
                let text = self.map_decl(map);
                self.single_line(map.span, text, blank);
            }
            Item::Probe(probe) => self.probe(probe, blank),
            Item::Use(decl) => {
                let text = format!("use {};", decl.path_text());
                self.single_line(decl.span, text, blank);
            }
            Item::Error(span) => self.single_line(*span, self.verbatim(*span), blank),
        }
    }

    fn single_line(&mut self, span: Span, text: String, blank: Blank) {
        self.open_line(span.start as usize, text, blank);
        if let Some(line) = &mut self.line {
            line.end = span.end as usize;
        }
        self.finish_line();
    }

    fn map_decl(&self, map: &MapDecl) -> String {
        let mut text = format!("map {}: {}", map.name.node, self.map_kind(&map.kind.node, map.kind.span));
        if !map.key.is_empty() {
            let keys: Vec<String> = map.key.iter().map(type_text).collect();
            text.push_str(&format!("[{}]", keys.join(", ")));
        }
        if let Some(value) = &map.value {
            text.push_str(&format!(" -> {}", type_text(value)));
        }
        if let Some(max) = &map.max {
            text.push_str(&format!(" max {}", self.token_text(max.span)));
        }
        for flag in &map.flags {
            text.push_str(&format!(" {}", flag.node));
        }
        text.push(';');
        text
    }

    /// A map kind as written, tokens re-spaced: `lhist(0, 0x100, 16)`, `count`.
    fn map_kind(&self, kind: &MapKindAst, span: Span) -> String {
        let simple = match kind {
            MapKindAst::Count => "count",
            MapKindAst::Sum => "sum",
            MapKindAst::Min => "min",
            MapKindAst::Max => "max",
            MapKindAst::Avg => "avg",
            MapKindAst::Hist => "hist",
            MapKindAst::Hash => "hash",
            MapKindAst::Stats => "stats",
            MapKindAst::LruHash => "lru_hash",
            MapKindAst::PerCpuHash => "percpu_hash",
            MapKindAst::LruPerCpuHash => "lru_percpu_hash",
            // Keep the spelling of `lhist` bounds and array lengths (hex, underscores) and of
            // unknown kinds; an array's kind span covers its `[N]`.
            _ => return respace_tokens(self.source.get(span.range()).unwrap_or("")),
        };
        simple.to_string()
    }

    fn probe(&mut self, probe: &ProbeDecl, blank: Blank) {
        let start = probe.span.start as usize;
        let attach = probe.attach.iter().map(|point| attach_text(&point.kind)).collect::<Vec<_>>().join(", ");
        let attach_end = probe.attach.last().map_or(start, |point| point.span.end as usize);
        let rate = probe.rate.as_ref().map(|rate| (format!("rate <= {}/s", self.rate_value(rate.span)), rate.span));
        let when = probe.predicate.as_ref().map(|predicate| (format!("when {}", self.expr(predicate)), predicate.span));
        let activate = probe.activation.as_ref().map(|activation| (self.activation(activation), activation.span));
        // Clauses in source order: `rate`, `activate`, `when`.
        let clauses: Vec<(String, Span)> = rate.into_iter().chain(activate).chain(when).collect();
        let mut one_line = format!("probe {attach}");
        for (clause, _) in &clauses {
            one_line.push(' ');
            one_line.push_str(clause);
        }
        let has_clauses = !clauses.is_empty();
        let fits = one_line.chars().count() + " {".len() <= MAX_WIDTH;
        let commented = self.has_pending_comment_in(attach_end, probe.body.span.start as usize);
        if !has_clauses || (fits && !commented) {
            self.open_line(start, one_line, blank);
            self.block(&probe.body);
        } else {
            self.open_line(start, format!("probe {attach}"), blank);
            self.append("", attach_end);
            self.indent += 1;
            for (clause, span) in &clauses {
                self.open_line(span.start as usize, clause.clone(), Blank::Never);
                self.append("", span.end as usize);
            }
            self.indent -= 1;
            self.open_line(probe.body.span.start as usize, "", Blank::Never);
            self.block(&probe.body);
        }
        self.finish_line();
    }

    // ------------------------------------------------------------------------- statements

    /// Appends ` {`..`}` for `block` to the open line, leaving the line holding `}` open.
    fn block(&mut self, block: &Block) {
        let open = block.span.start as usize;
        let close = (block.span.end as usize).saturating_sub(1).max(open);
        let separator = if self.line.as_ref().is_some_and(|line| line.text.is_empty()) { "" } else { " " };
        if block.stmts.is_empty() && !self.has_pending_comment_in(open, close) {
            self.append(&format!("{separator}{{}}"), block.span.end as usize);
            return;
        }
        self.append(&format!("{separator}{{"), open + 1);
        self.finish_line();
        self.at_block_start = true;
        self.indent += 1;
        for stmt in &block.stmts {
            self.stmt(stmt);
        }
        self.finish_line();
        self.flush_comments_before(close, self.indent);
        self.indent -= 1;
        self.open_line(close, "}", Blank::Never);
        if let Some(line) = &mut self.line {
            line.end = block.span.end as usize;
            line.above_indent = self.indent + 1;
        }
    }

    fn stmt(&mut self, stmt: &Stmt) {
        let start = stmt.span.start as usize;
        let end = stmt.span.end as usize;
        let simple = match &stmt.kind {
            StmtKind::Let { name, value } => format!("let {} = {};", name.node, self.expr(value)),
            StmtKind::Assign { name, value } => format!("{} = {};", name.node, self.expr(value)),
            StmtKind::MapAssign { target, value } => {
                format!("{} = {};", self.map_ref(target, true), self.expr(value))
            }
            StmtKind::MapCall { target, method, args } => {
                let args: Vec<String> = args.iter().map(|arg| self.expr(arg)).collect();
                format!("{}.{}({});", self.map_ref(target, false), method.node, args.join(", "))
            }
            StmtKind::Delete { target } => format!("delete {};", self.map_ref(target, false)),
            StmtKind::Clear { map } => format!("clear {};", map.node),
            StmtKind::Return => "return;".to_string(),
            StmtKind::If { .. } | StmtKind::IfLet { .. } => {
                self.if_chain(stmt, Blank::Preserve);
                self.finish_line();
                return;
            }
            StmtKind::For { var, start: from, end: to, body } => {
                let header = format!("for {} in {}..{}", var.node, self.expr(from), self.expr(to));
                self.open_line(start, header, Blank::Preserve);
                self.block(body);
                self.finish_line();
                return;
            }
            StmtKind::Emit { name, fields } => {
                let fields: Vec<String> =
                    fields.iter().map(|field| format!("{}: {}", field.name.node, self.expr(&field.value))).collect();
                if fields.is_empty() {
                    format!("emit {} {{}};", name.node)
                } else {
                    format!("emit {} {{ {} }};", name.node, fields.join(", "))
                }
            }
            StmtKind::Print { args } => {
                let args: Vec<String> = args.iter().map(|arg| self.expr(arg)).collect();
                format!("print({});", args.join(", "))
            }
            StmtKind::Error => self.verbatim(stmt.span),
            // Statements added to the language after this printer: kept as written.
            #[allow(unreachable_patterns)]
            _ => self.verbatim(stmt.span),
        };
        self.open_line(start, simple, Blank::Preserve);
        self.append("", end);
        self.finish_line();
    }

    /// `if ..` / `if let ..` with its `else` chain, on the open line (opened here unless
    /// continuing an `else`).
    fn if_chain(&mut self, stmt: &Stmt, blank: Blank) {
        let (header, then, otherwise) = match &stmt.kind {
            StmtKind::If { cond, then, otherwise } => (format!("if {}", self.expr(cond)), then, otherwise),
            StmtKind::IfLet { name, source, then, otherwise } => {
                (format!("if let {} = {}", name.node, self.map_ref(source, false)), then, otherwise)
            }
            _ => return,
        };
        if self.line.is_some() {
            self.append(&header, stmt.span.start as usize);
        } else {
            self.open_line(stmt.span.start as usize, header, blank);
        }
        self.block(then);
        let Some(otherwise) = otherwise else { return };
        match else_if(otherwise) {
            Some(nested) => {
                self.append(" else ", otherwise.span.start as usize);
                self.if_chain(nested, Blank::Never);
            }
            None => {
                self.append(" else", otherwise.span.start as usize);
                self.block(otherwise);
            }
        }
    }

    // ------------------------------------------------------------------------ expressions

    fn map_ref(&self, target: &MapRef, always_brackets: bool) -> String {
        if target.keys.is_empty() && !always_brackets {
            return target.map.node.clone();
        }
        let keys: Vec<String> = target.keys.iter().map(|key| self.expr(key)).collect();
        format!("{}[{}]", target.map.node, keys.join(", "))
    }

    fn expr(&self, expr: &Expr) -> String {
        let mut out = String::new();
        self.write_expr(&mut out, expr, 0);
        out
    }

    /// Writes `expr`, parenthesised if it binds looser than `min_level` allows there.
    fn write_expr(&self, out: &mut String, expr: &Expr, min_level: u8) {
        let parenthesise = level(expr) < min_level;
        if parenthesise {
            out.push('(');
        }
        match &expr.kind {
            ExprKind::Int(value) => out.push_str(&self.int_text(expr.span, *value)),
            ExprKind::Str(value) => out.push_str(&quote(value)),
            ExprKind::Bool(value) => out.push_str(if *value { "true" } else { "false" }),
            ExprKind::Name(name) => out.push_str(name),
            ExprKind::Field(field) => {
                out.push_str("args.");
                out.push_str(&field.node);
            }
            ExprKind::Index { base, index } => {
                self.write_expr(out, base, ATOM);
                out.push('[');
                self.write_expr(out, index, 0);
                out.push(']');
            }
            ExprKind::MapGet(target) => out.push_str(&self.map_ref(target, true)),
            ExprKind::Coalesce { source, default } => {
                out.push_str(&self.map_ref(source, false));
                out.push_str(" ?? ");
                self.write_expr(out, default, COALESCE);
            }
            ExprKind::Conditional { cond, then, otherwise } => {
                // Right-associative: a nested conditional needs parentheses only as the condition.
                self.write_expr(out, cond, OR);
                out.push_str(" ? ");
                self.write_expr(out, then, CONDITIONAL);
                out.push_str(" : ");
                self.write_expr(out, otherwise, CONDITIONAL);
            }
            ExprKind::Unary { op, operand } => {
                out.push(match op {
                    UnaryOp::Neg => '-',
                    UnaryOp::Not => '!',
                    UnaryOp::BitNot => '~',
                });
                self.write_expr(out, operand, UNARY);
            }
            ExprKind::Binary { op, lhs, rhs } => {
                let own = binary_level(*op);
                // Comparisons do not chain; every other tier is left-associative.
                let (left_min, right_min) = if own == COMPARISON { (COALESCE, COALESCE) } else { (own, own + 1) };
                self.write_expr(out, lhs, left_min);
                out.push(' ');
                out.push_str(op.symbol());
                out.push(' ');
                self.write_expr(out, rhs, right_min);
            }
            ExprKind::Cast { expr: inner, ty } => {
                self.write_expr(out, inner, CAST);
                out.push_str(" as ");
                out.push_str(&type_text(ty));
            }
            ExprKind::Call { name, args } => {
                out.push_str(&name.node);
                out.push('(');
                for (index, arg) in args.iter().enumerate() {
                    if index > 0 {
                        out.push_str(", ");
                    }
                    self.write_expr(out, arg, 0);
                }
                out.push(')');
            }
            ExprKind::Error => out.push_str(&self.verbatim(expr.span)),
            // Expressions added to the language after this printer: kept as written, in
            // parentheses since their binding strength is unknown here.
            #[allow(unreachable_patterns)]
            _ => {
                out.push('(');
                out.push_str(&self.verbatim(expr.span));
                out.push(')');
            }
        }
        if parenthesise {
            out.push(')');
        }
    }

    // --------------------------------------------------------------------- source slices

    /// The tokens under `span`, one space apart (a fallback for constructs this printer
    /// does not know). Comments are left out of the text: the line logic places them.
    fn verbatim(&self, span: Span) -> String {
        let text = self.source.get(span.range()).unwrap_or("");
        let mut lexer = Tok::lexer(text);
        let mut tokens = Vec::new();
        while lexer.next().is_some() {
            tokens.push(lexer.slice());
        }
        tokens.join(" ")
    }

    /// The text of the single token at `span` (`0.5`, `10_240`).
    fn token_text(&self, span: Span) -> String {
        self.source.get(span.range()).unwrap_or("").trim().to_string()
    }

    /// An integer literal as written (`0x1F`, `1_000`), found among the parentheses the
    /// span may include; its decimal value if that fails.
    fn int_text(&self, span: Span, value: u64) -> String {
        let text = self.source.get(span.range()).unwrap_or("");
        let mut lexer = Tok::lexer(text);
        while let Some(token) = lexer.next() {
            if let Ok(Tok::Int(lexed)) = token {
                if lexed == value {
                    return lexer.slice().to_string();
                }
            }
        }
        value.to_string()
    }

    /// `activate when anomaly(SENTINEL) > P for Ns`, keeping the threshold as written.
    fn activation(&self, activation: &Activation) -> String {
        let bundle = activation.bundle.as_ref().map(|bundle| format!("{}::", bundle.node)).unwrap_or_default();
        let threshold = self.source.get(activation.threshold.span.range()).unwrap_or("").trim().to_string();
        format!(
            "activate when anomaly({bundle}{}) > {threshold} for {}{}",
            activation.sentinel.node, activation.duration.node, activation.unit.node
        )
    }

    /// The number of `rate <= N/s` as written (`10k`): the span covers `N/s`, and `N` is
    /// everything before the first `/`.
    fn rate_value(&self, span: Span) -> String {
        let text = self.source.get(span.range()).unwrap_or("");
        text.split('/').next().unwrap_or("").trim().to_string()
    }
}

/// The `if` an `else if` holds: the else block is that one statement, with the same span
/// (an explicit `else { if .. }` block is wider than the `if` inside it).
fn else_if(otherwise: &Block) -> Option<&Stmt> {
    match otherwise.stmts.as_slice() {
        [only] if only.span == otherwise.span && matches!(only.kind, StmtKind::If { .. } | StmtKind::IfLet { .. }) => {
            Some(only)
        }
        _ => None,
    }
}

// Binding strength, loosest first, as in the grammar.
/// `c ? a : b`, looser than every binary operator.
const CONDITIONAL: u8 = 0;
const OR: u8 = 1;
const AND: u8 = 2;
const COMPARISON: u8 = 3;
const COALESCE: u8 = 4;
const BIT_OR: u8 = 5;
const BIT_XOR: u8 = 6;
const BIT_AND: u8 = 7;
const SHIFT: u8 = 8;
const ADDITIVE: u8 = 9;
const MULTIPLICATIVE: u8 = 10;
const CAST: u8 = 11;
const UNARY: u8 = 12;
const ATOM: u8 = 13;

fn binary_level(op: BinaryOp) -> u8 {
    match op {
        BinaryOp::Or => OR,
        BinaryOp::And => AND,
        BinaryOp::Eq | BinaryOp::Ne | BinaryOp::Lt | BinaryOp::Le | BinaryOp::Gt | BinaryOp::Ge => COMPARISON,
        BinaryOp::BitOr => BIT_OR,
        BinaryOp::BitXor => BIT_XOR,
        BinaryOp::BitAnd => BIT_AND,
        BinaryOp::Shl | BinaryOp::Shr => SHIFT,
        BinaryOp::Add | BinaryOp::Sub => ADDITIVE,
        BinaryOp::Mul | BinaryOp::Div | BinaryOp::Rem => MULTIPLICATIVE,
    }
}

fn level(expr: &Expr) -> u8 {
    match &expr.kind {
        ExprKind::Binary { op, .. } => binary_level(*op),
        ExprKind::Coalesce { .. } => COALESCE,
        ExprKind::Conditional { .. } => CONDITIONAL,
        ExprKind::Cast { .. } => CAST,
        ExprKind::Unary { .. } => UNARY,
        _ => ATOM,
    }
}

fn type_text(ty: &TypeExpr) -> String {
    match &ty.kind {
        TypeExprKind::Named(name) => name.clone(),
        TypeExprKind::Str(len) => format!("str[{len}]"),
        TypeExprKind::Stack { user, depth } => format!("{}stack[{depth}]", if *user { 'u' } else { 'k' }),
        TypeExprKind::Buf(len) => format!("buf[{len}]"),
    }
}

fn attach_text(kind: &AttachKind) -> String {
    let (kind, parts): (&str, Vec<&str>) = match kind {
        AttachKind::Tracepoint { category, name } => ("tracepoint", vec![category, name]),
        AttachKind::Uprobe { path, symbol } => ("uprobe", vec![path, symbol]),
        AttachKind::Uretprobe { path, symbol } => ("uretprobe", vec![path, symbol]),
        AttachKind::Usdt { path, provider, name, .. } => ("usdt", vec![path, provider, name]),
        AttachKind::Unknown { kind, parts } => (kind.as_str(), parts.iter().map(String::as_str).collect()),
        AttachKind::RawTracepoint { name } => ("rawtracepoint", vec![name]),
        AttachKind::Profile { hz } => return format!("profile:hz:{hz}"),
        AttachKind::Interval { unit, count } => return format!("interval:{}:{count}", unit.as_str()),
        AttachKind::Begin => return "begin".to_string(),
        AttachKind::End => return "end".to_string(),
    };
    let mut text = kind.to_string();
    for part in parts {
        text.push(':');
        if part.bytes().all(is_path_byte) {
            text.push_str(part);
        } else {
            text.push_str(&quote(part));
        }
    }
    text
}

/// Characters an unquoted attach-point part may hold (as the lexer reads them).
fn is_path_byte(byte: u8) -> bool {
    byte.is_ascii_alphanumeric() || matches!(byte, b'/' | b'.' | b'-' | b'_' | b'+' | b'@' | b'$' | b'*')
}

/// A string literal with the lexer's escapes.
fn quote(value: &str) -> String {
    let mut out = String::with_capacity(value.len() + 2);
    out.push('"');
    for c in value.chars() {
        match c {
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            '\r' => out.push_str("\\r"),
            '\0' => out.push_str("\\0"),
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            other => out.push(other),
        }
    }
    out.push('"');
    out
}

/// Tokens of `text` joined canonically: a space after `,` only (`lhist(0, -5, 0x10)`).
fn respace_tokens(text: &str) -> String {
    let mut lexer = Tok::lexer(text);
    let mut out = String::new();
    while let Some(token) = lexer.next() {
        out.push_str(lexer.slice());
        if token == Ok(Tok::Comma) {
            out.push(' ');
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn comments_in_strings_and_paths_are_not_comments() {
        let source = "probe uprobe:/a//b:f { x = \"//\"; } // real\n";
        let comments = collect_comments(source);
        assert_eq!(comments.len(), 1);
        assert_eq!(&source[comments[0].start..comments[0].end], "// real");
        assert!(comments[0].trailing);
    }

    #[test]
    fn respacing_keeps_spelling() {
        assert_eq!(respace_tokens("lhist ( 0 ,- 5 , 0x10 )"), "lhist(0, -5, 0x10)");
    }

    #[test]
    fn quoting_round_trips_escapes() {
        assert_eq!(quote("a\"b\\\n"), r#""a\"b\\\n""#);
    }
}
