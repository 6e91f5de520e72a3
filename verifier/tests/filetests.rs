//! Cranelift-style file tests: `tests/filetests/verify/*.ir` hold IR text and, in a trailing
//! `; expect:` comment block, what the verifier must say. `BLESS=1` rewrites the blocks.
//!
//! Options, as comment lines before the IR: `; budget PERCENT` (default 0.5) and `; cpus N`
//! (default 2). Costs come from `test-profile.json` next to the tests (round numbers).

mod common;

use ppis_verifier::{verify, VerifyOptions};

const EXPECT: &str = "; expect:";

struct Options {
    budget_percent: f64,
    cpus: u32,
}

fn options(text: &str) -> Result<Options, String> {
    let mut opts = Options { budget_percent: 0.5, cpus: 2 };
    for line in text.lines().filter_map(|l| l.trim().strip_prefix(';')) {
        let words: Vec<&str> = line.split_whitespace().collect();
        match words[..] {
            ["budget", v] => opts.budget_percent = v.parse().map_err(|_| format!("bad budget `{v}`"))?,
            ["cpus", v] => opts.cpus = v.parse().map_err(|_| format!("bad cpus `{v}`"))?,
            _ => {}
        }
    }
    Ok(opts)
}

/// What the verifier says about an IR text: per function, `ok` with its facts when it has
/// no errors, then its diagnostics as `CODE line N: message`.
fn run(ir: &str) -> String {
    let module = match ppis_ir::parse_module(ir) {
        Ok(m) => m,
        Err(e) => return format!("parse error: {e}\n"),
    };
    let opts = match options(ir) {
        Ok(o) => o,
        Err(e) => return format!("bad options: {e}\n"),
    };
    let profile = common::test_profile();
    let verdict =
        verify(&module, &VerifyOptions { profile: &profile, budget_percent: opts.budget_percent, cpus: opts.cpus });
    let line_of = |offset: u32| ir[..offset as usize].matches('\n').count() + 1;
    let mut out = String::new();
    for (func, facts) in module.functions.iter().zip(&verdict.functions) {
        let own: Vec<_> = verdict
            .diagnostics
            .iter()
            .filter(|d| {
                func.cfg
                    .node_weights()
                    .any(|b| b.insts.iter().any(|i| i.span == d.primary.span) || b.term_span == d.primary.span)
                    || d.primary.span == func.span
            })
            .collect();
        if !own.iter().any(|d| d.is_error()) {
            let cost = facts.cost.as_ref().map_or("no cost bound".to_string(), |c| format!("cost {} ns", c.bound_ns));
            let overhead = facts.overhead_percent.map_or(String::new(), |p| format!(", overhead {p:.6} %"));
            out.push_str(&format!(
                "{}: ok, {} instructions, {} stack bytes, longest path {}, {cost}{overhead}\n",
                facts.name, facts.instructions, facts.stack_bytes, facts.longest_path
            ));
        }
        for d in own {
            out.push_str(&format!(
                "{}: {} line {}: {}\n",
                facts.name,
                d.code,
                line_of(d.primary.span.start),
                d.message
            ));
            if let Some(help) = &d.help {
                out.push_str(&format!("  help: {help}\n"));
            }
        }
    }
    out
}

#[test]
fn verify_filetests() {
    let dir = common::filetests_dir();
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
            Some(i) => (
                &text[..i],
                text[i + EXPECT.len()..]
                    .lines()
                    .map(|l| l.strip_prefix("; ").or_else(|| l.strip_prefix(';')).unwrap_or(l).trim_end())
                    .filter(|l| !l.trim().is_empty())
                    .collect::<Vec<_>>()
                    .join("\n"),
            ),
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
