//! Nesting limits, enforced on the token stream before parsing so that no later stage
//! (parser stack, tree drop, checker, compiler) ever sees a tree deeper than a few hundred
//! levels, whatever the input (e.g. 10,000 nested parentheses or `!!!!...`).
//!
//! The stream is cut into items at the top-level keywords (`budget`, `const`, `map`,
//! `probe`: they cannot appear inside an item). An item that breaks a limit is reported
//! once and withheld from the parser; the caller puts an `Item::Error` in its place.

use crate::diag::Diagnostic;
use crate::lexer::{SpannedTok, Tok};
use crate::span::Span;
use std::collections::VecDeque;

/// Operators, `as` and opening brackets allowed in one expression (between `;`, `{`, `}`).
/// Every expression tree node with children is made by one of these tokens, so this bounds
/// the depth of any expression tree.
pub const MAX_EXPRESSION_WEIGHT: usize = 256;

/// Blocks nested in one probe, counting each `else if` as one more level (the tree nests
/// an `else if` chain inside the previous `else`).
pub const MAX_BLOCK_DEPTH: usize = 64;

fn is_item_start(token: &Tok<'_>) -> bool {
    matches!(token, Tok::Budget | Tok::Const | Tok::Map | Tok::Probe | Tok::Use)
}

/// Tokens that add a level to an expression tree.
fn adds_expression_level(token: &Tok<'_>) -> bool {
    matches!(
        token,
        Tok::LParen
            | Tok::LBracket
            | Tok::As
            | Tok::Coalesce
            | Tok::Question
            | Tok::EqEq
            | Tok::NotEq
            | Tok::Lt
            | Tok::Le
            | Tok::Gt
            | Tok::Ge
            | Tok::AndAnd
            | Tok::OrOr
            | Tok::Bang
            | Tok::Tilde
            | Tok::Plus
            | Tok::Minus
            | Tok::Star
            | Tok::Slash
            | Tok::Percent
            | Tok::Amp
            | Tok::Pipe
            | Tok::Caret
            | Tok::Shl
            | Tok::Shr
    )
}

/// Running depth measurements of the current item.
#[derive(Default)]
struct ItemDepth {
    expression_weight: usize,
    /// One entry per open `{`: the length of the `else if` chain running at that level.
    else_if_chains: Vec<usize>,
    else_if_total: usize,
    previous_was_else: bool,
    previous_was_close_brace: bool,
}

impl ItemDepth {
    /// Accounts for `token`; returns the diagnostic if it breaks a limit.
    fn step(&mut self, token: &Tok<'_>, span: Span) -> Option<Diagnostic> {
        if self.previous_was_close_brace && *token != Tok::Else {
            // The `if` chain at this level ended.
            if let Some(chain) = self.else_if_chains.last_mut() {
                self.else_if_total -= *chain;
                *chain = 0;
            }
        }
        let mut violation = None;
        match token {
            Tok::LBrace => {
                self.expression_weight = 0;
                self.else_if_chains.push(0);
                if self.block_depth() > MAX_BLOCK_DEPTH {
                    violation = Some(block_violation(span));
                }
            }
            Tok::RBrace => {
                self.expression_weight = 0;
                if let Some(chain) = self.else_if_chains.pop() {
                    self.else_if_total -= chain;
                }
            }
            Tok::Semi => self.expression_weight = 0,
            Tok::If if self.previous_was_else => {
                if let Some(chain) = self.else_if_chains.last_mut() {
                    *chain += 1;
                    self.else_if_total += 1;
                }
                if self.block_depth() > MAX_BLOCK_DEPTH {
                    violation = Some(block_violation(span));
                }
            }
            other if adds_expression_level(other) => {
                self.expression_weight += 1;
                if self.expression_weight > MAX_EXPRESSION_WEIGHT {
                    violation = Some(
                        Diagnostic::error("E0005", "expression too deeply nested or too long", span)
                            .label(format!(
                                "more than {MAX_EXPRESSION_WEIGHT} operators and brackets in one expression"
                            ))
                            .with_help("split it into smaller expressions with `let`"),
                    );
                }
            }
            _ => {}
        }
        self.previous_was_else = *token == Tok::Else;
        self.previous_was_close_brace = *token == Tok::RBrace;
        violation
    }

    fn block_depth(&self) -> usize {
        self.else_if_chains.len() + self.else_if_total
    }
}

fn block_violation(span: Span) -> Diagnostic {
    Diagnostic::error("E0006", "blocks nested too deeply", span)
        .label(format!("more than {MAX_BLOCK_DEPTH} nested blocks (each `else if` counts as one)"))
        .with_help("flatten the conditions, e.g. with `&&` or an early `return`")
}

/// Passes the tokens of items within the limits; swallows the others.
pub struct ItemGuard<I: Iterator> {
    tokens: I,
    /// The first token of the next item, already pulled.
    lookahead: Option<I::Item>,
    /// The current item's tokens, checked and ready to hand out.
    ready: VecDeque<I::Item>,
    pub diagnostics: Vec<Diagnostic>,
    /// Spans of withheld items.
    pub rejected: Vec<Span>,
    /// Where each item's region (passed or withheld) starts, in order: the end of the
    /// previous item, so that anything between two items counts with the second.
    pub item_starts: Vec<u32>,
    previous_item_end: usize,
}

impl<'src, I: Iterator<Item = SpannedTok<'src>>> ItemGuard<I> {
    pub fn new(mut tokens: I) -> ItemGuard<I> {
        let lookahead = tokens.next();
        ItemGuard {
            tokens,
            lookahead,
            ready: VecDeque::new(),
            diagnostics: Vec::new(),
            rejected: Vec::new(),
            item_starts: Vec::new(),
            previous_item_end: 0,
        }
    }

    /// Buffers the next item; returns false at the end of input.
    fn fill(&mut self) -> bool {
        while self.ready.is_empty() {
            let Some(first) = self.lookahead.take() else { return false };
            let item_start = first.0;
            self.item_starts.push(self.previous_item_end as u32);
            let mut item_end = first.2;
            let mut depth = ItemDepth::default();
            let mut violation = depth.step(&first.1, Span::new(first.0, first.2));
            if violation.is_none() {
                self.ready.push_back(first);
            }
            for token in self.tokens.by_ref() {
                if is_item_start(&token.1) {
                    self.lookahead = Some(token);
                    break;
                }
                item_end = token.2;
                if violation.is_none() {
                    violation = depth.step(&token.1, Span::new(token.0, token.2));
                    if violation.is_some() {
                        self.ready.clear();
                    } else {
                        self.ready.push_back(token);
                    }
                }
            }
            self.previous_item_end = item_end;
            if let Some(diagnostic) = violation {
                self.diagnostics.push(diagnostic);
                self.rejected.push(Span::new(item_start, item_end));
            }
        }
        true
    }
}

impl<'src, I: Iterator<Item = SpannedTok<'src>>> Iterator for ItemGuard<I> {
    type Item = SpannedTok<'src>;

    fn next(&mut self) -> Option<SpannedTok<'src>> {
        if self.ready.is_empty() && !self.fill() {
            return None;
        }
        self.ready.pop_front()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lexer::Lexer;

    fn run(source: &str) -> (usize, Vec<&'static str>, Vec<Span>) {
        let mut guard = ItemGuard::new(Lexer::new(source));
        let passed = guard.by_ref().count();
        (passed, guard.diagnostics.iter().map(|d| d.code).collect(), guard.rejected)
    }

    #[test]
    fn deep_parentheses_withhold_only_their_item() {
        let deep = format!("const A = {}1{};\nconst B = 2;", "(".repeat(300), ")".repeat(300));
        let (passed, codes, rejected) = run(&deep);
        assert_eq!(codes, vec!["E0005"]);
        assert_eq!(passed, 5, "only `const B = 2;` passes");
        assert_eq!(rejected.len(), 1);
    }

    #[test]
    fn else_if_chains_reset_between_statements() {
        let chain = "if a { } else if b { } ".repeat(MAX_BLOCK_DEPTH + 10);
        let (_, codes, _) = run(&format!("probe x {{ {chain} }}"));
        assert!(codes.is_empty(), "{codes:?}");
        let long_chain = format!("if a {{ }}{}", " else if b { }".repeat(MAX_BLOCK_DEPTH + 1));
        let (_, codes, _) = run(&format!("probe x {{ {long_chain} }}"));
        assert_eq!(codes, vec!["E0006"]);
    }
}
