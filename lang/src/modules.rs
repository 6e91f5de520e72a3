//! Modules: `use stdlib::syscalls::latency;` joins another file's consts, maps and probes to
//! the program, before checking.
//!
//! `lang` reads no files: a [`ModuleLoader`] (from `ppisc`, or a table in tests) answers with
//! a module's text. [`resolve`] parses the main file, loads every module it uses (and the
//! modules those use, each once, dependencies first), and merges their items into one
//! [`ast::File`] that the checker sees as a single program.
//!
//! Spans stay plain byte offsets: every file gets its own range of offsets in one [`Sources`]
//! (the main file at 0, each module after the previous file plus a gap), so a diagnostic's
//! span says which file it is in, the renderer ([`Sources::render_text`], [`Sources::render_json`])
//! prints that file's name and lines, and later stages that slice the source text use
//! [`Sources::combined`].
//!
//! Rules: a module's `const` items are parameters (`-D NAME=VALUE` overrides them like the main
//! file's); a module cannot set the `budget` (E0016: the program's budget is the main file's);
//! maps and consts share one namespace across all files (E0015 names both definitions).

use crate::ast;
use crate::diag::{Diagnostic, Severity};
use crate::parser::parse;
use crate::span::Span;
use codespan_reporting::diagnostic::{Diagnostic as Report, Label as ReportLabel};
use codespan_reporting::files::SimpleFiles;
use codespan_reporting::term::termcolor::Ansi;
use std::collections::HashMap;

/// A module's source, as a loader found it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LoadedModule {
    /// How messages name the file, e.g. `stdlib/syscalls/latency.ppl`.
    pub name: String,
    pub text: String,
}

/// Why a module could not be loaded: the message says where the loader looked.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ModuleError {
    pub message: String,
    /// Existing modules with a close name, as full paths (`stdlib::syscalls::count`).
    pub suggestions: Vec<String>,
}

/// Finds modules by path (`["stdlib", "syscalls", "latency"]`).
pub trait ModuleLoader {
    fn load(&self, path: &[String]) -> Result<LoadedModule, ModuleError>;
}

/// Knows no modules: every `use` is an unknown module (E0013). For checking one file alone.
pub struct NoModules;

impl ModuleLoader for NoModules {
    fn load(&self, path: &[String]) -> Result<LoadedModule, ModuleError> {
        Err(ModuleError {
            message: format!("no module loader: `{}` cannot be loaded here", path.join("::")),
            suggestions: Vec::new(),
        })
    }
}

/// A loader over an in-memory table of `(path, text)`, e.g. `("stdlib::syscalls::count", ..)`.
/// For tests, and for modules compiled into a binary.
pub struct TableLoader<'t> {
    pub modules: &'t [(&'t str, &'t str)],
}

impl ModuleLoader for TableLoader<'_> {
    fn load(&self, path: &[String]) -> Result<LoadedModule, ModuleError> {
        let wanted = path.join("::");
        match self.modules.iter().find(|(name, _)| *name == wanted) {
            Some((_, text)) => Ok(LoadedModule { name: module_file_name(path), text: text.to_string() }),
            None => Err(ModuleError {
                message: format!("no module `{wanted}`"),
                suggestions: closest_modules(&wanted, self.modules.iter().map(|(name, _)| *name)),
            }),
        }
    }
}

/// `stdlib/syscalls/latency.ppl` for `stdlib::syscalls::latency`.
pub fn module_file_name(path: &[String]) -> String {
    format!("{}.ppl", path.join("/"))
}

/// The module paths in `candidates` close to `wanted` (a typo in one segment), best first.
pub fn closest_modules<'c>(wanted: &str, candidates: impl IntoIterator<Item = &'c str>) -> Vec<String> {
    let mut scored: Vec<(usize, &str)> = candidates
        .into_iter()
        .map(|candidate| (strsim::levenshtein(wanted, candidate), candidate))
        .filter(|(distance, _)| *distance <= (wanted.len() / 4).max(2))
        .collect();
    scored.sort();
    scored.into_iter().map(|(_, candidate)| candidate.to_string()).collect()
}

/// One file of a program: the main file or a module.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SourceFile {
    pub name: String,
    pub text: String,
    /// Where the file's offsets start in the program's offset space.
    pub base: usize,
}

/// Every file of a program, each at its own range of offsets; `files[0]` is the main file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Sources {
    pub files: Vec<SourceFile>,
}

impl Sources {
    /// Just a main file (no modules).
    pub fn single(name: &str, text: &str) -> Sources {
        Sources { files: vec![SourceFile { name: name.to_string(), text: text.to_string(), base: 0 }] }
    }

    /// The offset a file added next would start at: one byte past the end of the last file,
    /// so that no span can cover the end of one file and the start of another.
    fn next_base(&self) -> usize {
        self.files.last().map_or(0, |file| file.base + file.text.len() + 1)
    }

    /// The index of the file `offset` falls in (offsets in a gap count as the file before it).
    pub fn file_at(&self, offset: u32) -> usize {
        let offset = offset as usize;
        self.files.iter().rposition(|file| file.base <= offset).unwrap_or(0)
    }

    /// The text of every file at its offsets, gaps as newlines: `combined()[span]` is the
    /// source text of any span of the program, whichever file it is in.
    pub fn combined(&self) -> String {
        let mut text = String::with_capacity(self.next_base());
        for file in &self.files {
            while text.len() < file.base {
                text.push('\n');
            }
            text.push_str(&file.text);
        }
        text
    }

    /// `span` relative to the file it is in.
    fn local(&self, file: usize, span: Span) -> Span {
        let base = self.files[file].base as u32;
        Span { start: span.start.saturating_sub(base), end: span.end.saturating_sub(base) }
    }

    /// A diagnostic split by file: the primary span's file, and the diagnostic with every span
    /// relative to that file. Secondary labels in other files become notes naming file and line.
    fn localise(&self, diagnostic: &Diagnostic) -> (usize, Diagnostic) {
        let file = self.file_at(diagnostic.primary.span.start);
        let mut local = diagnostic.clone();
        local.primary.span = self.local(file, diagnostic.primary.span);
        local.secondary.clear();
        let mut elsewhere = Vec::new();
        for label in &diagnostic.secondary {
            let label_file = self.file_at(label.span.start);
            if label_file == file {
                local
                    .secondary
                    .push(crate::diag::Label { span: self.local(file, label.span), message: label.message.clone() });
            } else {
                let other = &self.files[label_file];
                let line = crate::render::line_of(&other.text, self.local(label_file, label.span).start as usize);
                elsewhere.push(format!("{}: {}:{line}", label.message, other.name));
            }
        }
        if !elsewhere.is_empty() {
            let note = elsewhere.join("; ");
            local.help = Some(match local.help {
                Some(help) => format!("{help} ({note})"),
                None => note,
            });
        }
        (file, local)
    }

    /// The diagnostics of each file (indexed like `files`), with spans relative to that file,
    /// e.g. for SARIF, which lists results per file.
    pub fn by_file(&self, diagnostics: &[Diagnostic]) -> Vec<Vec<Diagnostic>> {
        let mut split = vec![Vec::new(); self.files.len()];
        for diagnostic in diagnostics {
            let (file, local) = self.localise(diagnostic);
            split[file].push(local);
        }
        split
    }

    /// Renders diagnostics as [`crate::render::text`] does, each label in the file it is in
    /// (a secondary label in another file shows that file's lines under its name).
    pub fn render_text(&self, diagnostics: &[Diagnostic], color: bool) -> String {
        if self.files.len() == 1 {
            let main = &self.files[0];
            return crate::render::text(diagnostics, &main.name, &main.text, color);
        }
        let mut files = SimpleFiles::new();
        for file in &self.files {
            files.add(file.name.as_str(), file.text.as_str());
        }
        let config = codespan_reporting::term::Config::default();
        let mut out = String::new();
        for diagnostic in diagnostics {
            let report = self.to_report(diagnostic);
            let rendered = if color {
                let mut writer = Ansi::new(Vec::new());
                codespan_reporting::term::emit_to_write_style(&mut writer, &config, &files, &report)
                    .map(|()| String::from_utf8_lossy(&writer.into_inner()).into_owned())
            } else {
                let mut plain = String::new();
                codespan_reporting::term::emit_to_string(&mut plain, &config, &files, &report).map(|()| plain)
            };
            match rendered {
                Ok(rendered) => out.push_str(&rendered),
                // Spans are clamped, so this should not happen; fall back to one file at a time.
                Err(_) => {
                    let (file, local) = self.localise(diagnostic);
                    let file = &self.files[file];
                    out.push_str(&crate::render::text(std::slice::from_ref(&local), &file.name, &file.text, color));
                }
            }
        }
        out
    }

    /// The byte range of `span` inside the file it starts in, clamped to that file and to
    /// character boundaries, with the file's index.
    fn clamped(&self, span: Span) -> (usize, std::ops::Range<usize>) {
        let file = self.file_at(span.start);
        let local = self.local(file, span);
        let text = &self.files[file].text;
        let mut start = (local.start as usize).min(text.len());
        while !text.is_char_boundary(start) {
            start -= 1;
        }
        let mut end = (local.end as usize).clamp(start, text.len());
        while !text.is_char_boundary(end) {
            end += 1;
        }
        (file, start..end)
    }

    fn to_report(&self, diagnostic: &Diagnostic) -> Report<usize> {
        let report = match diagnostic.severity {
            Severity::Error => Report::error(),
            Severity::Warning => Report::warning(),
            _ => Report::note(),
        };
        let (file, range) = self.clamped(diagnostic.primary.span);
        let mut labels = vec![ReportLabel::primary(file, range).with_message(&diagnostic.primary.message)];
        for label in &diagnostic.secondary {
            let (file, range) = self.clamped(label.span);
            labels.push(ReportLabel::secondary(file, range).with_message(&label.message));
        }
        let notes = diagnostic.help.iter().map(|help| format!("help: {help}")).collect();
        report.with_code(diagnostic.code).with_message(&diagnostic.message).with_labels(labels).with_notes(notes)
    }

    /// Renders diagnostics as [`crate::render::json`] does (one array); each object's `file`
    /// names the file its primary span is in, and its offsets, lines and columns are that file's.
    pub fn render_json(&self, diagnostics: &[Diagnostic]) -> String {
        let mut entries: Vec<serde_json::Value> = Vec::new();
        for diagnostic in diagnostics {
            let (file, local) = self.localise(diagnostic);
            let file = &self.files[file];
            let rendered = crate::render::json(std::slice::from_ref(&local), &file.name, &file.text);
            if let Ok(serde_json::Value::Array(values)) = serde_json::from_str(&rendered) {
                entries.extend(values);
            }
        }
        serde_json::to_string_pretty(&entries).unwrap_or_else(|_| "[]".to_string())
    }
}

/// The main file and its modules merged: one tree for the checker, the files its spans point
/// into, and the problems found while parsing and loading (source order within each file).
#[derive(Clone, Debug)]
pub struct Resolved {
    pub file: ast::File,
    pub sources: Sources,
    pub diagnostics: Vec<Diagnostic>,
    /// Paths of the modules loaded, in the order their items were merged.
    pub modules: Vec<String>,
}

/// Parses `main_text` and every module it uses, transitively, and merges them (see the
/// module docs). Never fails: problems are diagnostics, and a module that could not be loaded
/// contributes nothing.
pub fn resolve(main_name: &str, main_text: &str, loader: &dyn ModuleLoader) -> Resolved {
    let (main, mut diagnostics) = parse(main_text);
    let mut resolver = Resolver {
        loader,
        sources: Sources::single(main_name, main_text),
        loading: Vec::new(),
        loaded: HashMap::new(),
        order: Vec::new(),
        items: Vec::new(),
        item_files: Vec::new(),
        diagnostics: Vec::new(),
    };
    resolver.use_all(&main, 0);
    resolver.items.extend(main.items.iter().filter(|item| !matches!(item, ast::Item::Use(_))).cloned());
    resolver.item_files.resize(resolver.items.len(), 0);
    diagnostics.append(&mut resolver.diagnostics);
    let items = resolver.drop_cross_file_duplicates(&mut diagnostics);
    Resolved {
        file: ast::File { doc: main.doc, items },
        sources: resolver.sources,
        diagnostics,
        modules: resolver.order,
    }
}

struct Resolver<'l> {
    loader: &'l dyn ModuleLoader,
    sources: Sources,
    /// Modules being loaded, outermost first, with the `use` that started each: a `use` of
    /// one of them is a cycle.
    loading: Vec<(String, Span)>,
    /// Modules loaded (or that failed to load), by path: each is merged once.
    loaded: HashMap<String, usize>,
    order: Vec<String>,
    items: Vec<ast::Item>,
    /// The file each of `items` came from.
    item_files: Vec<usize>,
    diagnostics: Vec<Diagnostic>,
}

impl Resolver<'_> {
    /// Loads the modules `file` uses, in order, each followed by nothing of `file` itself.
    fn use_all(&mut self, file: &ast::File, file_index: usize) {
        for item in &file.items {
            if let ast::Item::Use(decl) = item {
                self.use_module(decl);
            }
        }
        // Budgets set the whole program's overhead budget: only the main file may.
        if file_index != 0 {
            for item in &file.items {
                if let ast::Item::Budget { span, .. } = item {
                    self.diagnostics.push(
                        Diagnostic::error("E0016", "a module cannot set the program's budget", *span)
                            .label("`budget` in a module")
                            .with_help("remove it from the module; the main file's `budget` applies to every probe"),
                    );
                }
            }
        }
    }

    fn use_module(&mut self, decl: &ast::UseDecl) {
        let path: Vec<String> = decl.path.iter().map(|segment| segment.node.clone()).collect();
        let key = decl.path_text();
        if let Some(start) = self.loading.iter().position(|(loading, _)| *loading == key) {
            let mut chain: Vec<&str> = self.loading[start..].iter().map(|(name, _)| name.as_str()).collect();
            chain.push(&key);
            let first_use = self.loading[start].1;
            self.diagnostics.push(
                Diagnostic::error("E0014", format!("module cycle: {}", chain.join(" uses ")), decl.span)
                    .label(format!("`{key}` is already being loaded"))
                    .with_secondary(first_use, "the cycle starts here")
                    .with_help("move what both modules need into a third module that neither uses back"),
            );
            return;
        }
        if self.loaded.contains_key(&key) {
            return;
        }
        let module =
            match self.loader.load(&path) {
                Ok(module) => module,
                Err(error) => {
                    let help = match error.suggestions.as_slice() {
                    [] => "the standard library's modules live under `stdlib::` (e.g. `use stdlib::syscalls::count;`); \
                           `ppisc --stdlib DIR` or `PPIS_STDLIB` points at another copy"
                        .to_string(),
                    [one, ..] => format!("did you mean `{one}`?"),
                };
                    self.loaded.insert(key.clone(), usize::MAX);
                    self.diagnostics.push(
                        Diagnostic::error("E0013", format!("unknown module `{key}`"), decl.span)
                            .label(error.message)
                            .with_help(help),
                    );
                    return;
                }
            };
        let base = self.sources.next_base();
        // Parsed at its own offsets: the padding is whitespace, which the lexer skips, so every
        // span (and every diagnostic of the parser) already points into this file's range.
        let mut padded = " ".repeat(base);
        padded.push_str(&module.text);
        let (file, diagnostics) = parse(&padded);
        drop(padded);
        let index = self.sources.files.len();
        self.sources.files.push(crate::modules::SourceFile { name: module.name, text: module.text, base });
        self.loaded.insert(key.clone(), index);
        self.diagnostics.extend(diagnostics);
        self.loading.push((key.clone(), decl.span));
        self.use_all(&file, index);
        self.loading.pop();
        for item in file.items {
            if !matches!(item, ast::Item::Use(_) | ast::Item::Budget { .. }) {
                self.items.push(item);
                self.item_files.push(index);
            }
        }
        self.order.push(key);
    }

    /// E0015 for a map or const name defined in two files; the later definition (the main
    /// file's, or the module used later) is dropped so the checker does not report it again.
    /// Duplicates within one file stay for the checker's E0103.
    fn drop_cross_file_duplicates(&mut self, diagnostics: &mut Vec<Diagnostic>) -> Vec<ast::Item> {
        let mut first: HashMap<String, (usize, Span)> = HashMap::new();
        let mut kept = Vec::with_capacity(self.items.len());
        for (item, &file) in std::mem::take(&mut self.items).into_iter().zip(&self.item_files) {
            let name = match &item {
                ast::Item::Map(map) => Some(&map.name),
                ast::Item::Const { name, .. } => Some(name),
                _ => None,
            };
            if let Some(name) = name {
                match first.get(&name.node) {
                    Some(&(other_file, other_span)) if other_file != file => {
                        let (this_name, other_name) =
                            (&self.sources.files[file].name, &self.sources.files[other_file].name);
                        diagnostics.push(
                            Diagnostic::error(
                                "E0015",
                                format!("`{}` is defined in both `{other_name}` and `{this_name}`", name.node),
                                name.span,
                            )
                            .label(format!("defined again here, in `{this_name}`"))
                            .with_secondary(other_span, "first defined here")
                            .with_help("maps and consts share one namespace across modules; rename this one"),
                        );
                        continue;
                    }
                    Some(_) => {}
                    None => {
                        first.insert(name.node.clone(), (file, name.span));
                    }
                }
            }
            kept.push(item);
        }
        kept
    }
}
