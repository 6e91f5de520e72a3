//! Cranelift-style file tests: `tests/filetests/verify/*.ir` hold IR text and, in a trailing
//! `; expect:` comment block, what the verifier must say. `BLESS=1` rewrites the blocks.

use ppis_verifier::verify;
use std::path::Path;

const EXPECT: &str = "; expect:";

/// What the verifier says about an IR text: per function, its diagnostics as
/// `CODE line N: message`, or its facts when clean.
fn run(ir: &str) -> String {
    let module = match ppis_ir::parse_module(ir) {
        Ok(m) => m,
        Err(e) => return format!("parse error: {e}\n"),
    };
    let verdict = verify(&module);
    let line_of = |offset: u32| ir[..offset as usize].matches('\n').count() + 1;
    let mut out = String::new();
    for (func, facts) in module.functions.iter().zip(&verdict.functions) {
        let own: Vec<_> = verdict
            .diagnostics
            .iter()
            .filter(|d| func.cfg.node_weights().any(|b| b.insts.iter().any(|i| i.span == d.primary.span) || b.term_span == d.primary.span) || d.primary.span == func.span)
            .collect();
        if own.is_empty() {
            out.push_str(&format!(
                "{}: ok, {} instructions, {} stack bytes, longest path {}\n",
                facts.name, facts.instructions, facts.stack_bytes, facts.longest_path
            ));
        }
        for d in own {
            out.push_str(&format!("{}: {} line {}: {}\n", facts.name, d.code, line_of(d.primary.span.start), d.message));
        }
    }
    out
}

#[test]
fn verify_filetests() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/filetests/verify");
    let bless = std::env::var_os("BLESS").is_some();
    let mut files: Vec<_> = std::fs::read_dir(&dir).expect("filetests dir").map(|e| e.unwrap().path()).collect();
    files.retain(|p| p.extension().is_some_and(|e| e == "ir"));
    files.sort();
    assert!(!files.is_empty(), "no file tests in {}", dir.display());
    let mut failures = Vec::new();
    for path in &files {
        let text = std::fs::read_to_string(path).unwrap();
        assert!(text.starts_with("; test verify"), "{}: header must name the harness", path.display());
        let (ir, expected) = match text.find(EXPECT) {
            Some(i) => (&text[..i], text[i + EXPECT.len()..].lines().map(|l| l.trim_start_matches(';').trim()).filter(|l| !l.is_empty()).collect::<Vec<_>>().join("\n")),
            None => (text.as_str(), String::new()),
        };
        let actual = run(ir);
        if actual.trim_end() != expected {
            if bless {
                let block: String = actual.lines().map(|l| format!("; {l}\n")).collect();
                std::fs::write(path, format!("{ir}{EXPECT}\n{block}")).unwrap();
            } else {
                failures.push(format!("{}:\n--- expected\n{expected}\n--- actual\n{actual}", path.display()));
            }
        }
    }
    assert!(failures.is_empty(), "file tests failed (BLESS=1 to accept):\n{}", failures.join("\n"));
}
