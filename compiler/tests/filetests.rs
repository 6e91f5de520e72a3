//! Cranelift-style file tests for the compiler stages: `tests/filetests/{lower,codegen}/*.ppl`.
//! The first line names the harness (`// test lower` prints the IR, `// test codegen` the
//! eBPF of every probe); the expected output is the trailing `// expect:` comment block.
//! `BLESS=1` rewrites the blocks.

#[path = "../../lang/tests/common/mod.rs"]
mod common;

use ppis_compiler::driver::{self, CompileOptions};
use ppis_compiler::lower::LowerOptions;
use ppis_manifest::profile::CostProfile;
use std::path::Path;

const EXPECT: &str = "// expect:";

fn options() -> CompileOptions {
    // Fixed inputs so that expectations do not depend on the host running the tests.
    CompileOptions { lower: LowerOptions::default(), profile: CostProfile::reference(), cpus: 2 }
}

fn diagnostics(source: &str, diags: &[ppis_lang::Diagnostic]) -> String {
    ppis_lang::render::text(diags, "input.ppl", source, false)
}

fn lower(source: &str) -> String {
    let (program, diags) = ppis_lang::check_source(source, &common::FakeTargets, &ppis_lang::CheckOptions::default());
    match program {
        Some(p) => ppis_ir::print_module(&ppis_compiler::lower::lower(&p, source, &LowerOptions::default()).module),
        None => diagnostics(source, &diags),
    }
}

fn codegen(source: &str) -> String {
    let (compiled, diags) = driver::compile(source, &common::FakeTargets, &options());
    let Some(compiled) = compiled else { return diagnostics(source, &diags) };
    let maps = &compiled.lowered.module.maps;
    let mut out = String::new();
    for (section, program) in compiled.lowered.sections.iter().zip(&compiled.programs) {
        out.push_str(&format!("{section} ({} bytes of stack):\n", program.stack_size));
        out.push_str(&ppis_compiler::disasm::disassemble(&program.insns, &program.reloc_names(maps)));
        out.push('\n');
    }
    out
}

fn run_dir(stage: &str, harness: fn(&str) -> String) {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/filetests").join(stage);
    let bless = std::env::var_os("BLESS").is_some();
    let mut files: Vec<_> = std::fs::read_dir(&dir).expect("filetests dir").map(|e| e.unwrap().path()).collect();
    files.retain(|p| p.extension().is_some_and(|e| e == "ppl"));
    files.sort();
    assert!(!files.is_empty(), "no file tests in {}", dir.display());
    let mut failures = Vec::new();
    for path in &files {
        let text = std::fs::read_to_string(path).unwrap();
        let header = format!("// test {stage}");
        assert!(text.starts_with(&header), "{}: first line must be `{header}`", path.display());
        let (source, expected) = match text.find(EXPECT) {
            Some(i) => (
                &text[..i],
                text[i + EXPECT.len()..]
                    .lines()
                    .map(|l| l.strip_prefix("// ").unwrap_or(l.trim_start_matches("//")))
                    .collect::<Vec<_>>()
                    .join("\n"),
            ),
            None => (text.as_str(), String::new()),
        };
        let actual = harness(source);
        if actual.trim() != expected.trim() {
            if bless {
                let block: String = actual
                    .trim_end()
                    .lines()
                    .map(|l| if l.is_empty() { "//\n".to_string() } else { format!("// {l}\n") })
                    .collect();
                std::fs::write(path, format!("{source}{EXPECT}\n{block}")).unwrap();
            } else {
                failures.push(format!("{}:\n--- expected\n{expected}\n--- actual\n{actual}", path.display()));
            }
        }
    }
    assert!(failures.is_empty(), "file tests failed (BLESS=1 to accept):\n{}", failures.join("\n"));
}

#[test]
fn lower_filetests() {
    run_dir("lower", lower);
}

#[test]
fn codegen_filetests() {
    run_dir("codegen", codegen);
}
