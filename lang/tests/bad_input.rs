//! Hostile input: empty files, random bytes, token soup, pathological nesting and 10 MB
//! files. The front end must answer with diagnostics, never panic or overflow its stack
//! (in parsing, checking, rendering or dropping the tree), and stay linear in time.

mod common;

use common::FakeTargets;
use ppis_lang::{check_source, parse, render, CheckOptions, Diagnostic};
use std::time::{Duration, Instant};

/// Runs `body` on a thread with a small stack, so that any unbounded recursion fails the
/// test instead of passing on a generous main-thread stack.
fn on_small_stack<T: Send + 'static>(body: impl FnOnce() -> T + Send + 'static) -> T {
    std::thread::Builder::new()
        .stack_size(256 * 1024)
        .spawn(body)
        .expect("spawn test thread")
        .join()
        .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
}

/// Parse, check and render both ways; returns the diagnostics.
fn run_everything(source: &str) -> Vec<Diagnostic> {
    let (program, diagnostics) = check_source(source, &FakeTargets, &CheckOptions::default());
    if program.is_some() {
        assert!(!diagnostics.iter().any(Diagnostic::is_error), "a program came back despite errors");
    }
    let text = render::text(&diagnostics, "input.ppl", source, false);
    let json = render::json(&diagnostics, "input.ppl", source);
    assert_eq!(text.matches("error[").count(), diagnostics.iter().filter(|d| d.is_error()).count());
    assert!(json.starts_with('['));
    diagnostics
}

fn codes(diagnostics: &[Diagnostic]) -> Vec<&'static str> {
    diagnostics.iter().map(|d| d.code).collect()
}

/// A deterministic xorshift generator: reproducible "random" input without a dependency.
struct XorShift(u64);

impl XorShift {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, bound: usize) -> usize {
        (self.next() % bound as u64) as usize
    }
}

#[test]
fn empty_and_blank_files_are_empty_programs() {
    for source in ["", "\n\n  \t", "// just a comment\n", "//! only docs\n"] {
        let (program, diagnostics) = check_source(source, &FakeTargets, &CheckOptions::default());
        assert!(diagnostics.is_empty(), "{source:?}: {diagnostics:?}");
        let program = program.expect("an empty file checks");
        assert!(program.probes.is_empty() && program.maps.is_empty());
        assert_eq!(program.budget_percent, 0.5);
    }
}

#[test]
fn random_bytes_never_panic() {
    on_small_stack(|| {
        let mut rng = XorShift(0x9E37_79B9_7F4A_7C15);
        for _ in 0..300 {
            let len = rng.below(2000);
            let bytes: Vec<u8> = (0..len).map(|_| rng.next() as u8).collect();
            run_everything(&String::from_utf8_lossy(&bytes));
        }
    });
}

#[test]
fn random_bytes_snapshot() {
    let mut rng = XorShift(42);
    let bytes: Vec<u8> = (0..48).map(|_| rng.next() as u8).collect();
    let source = String::from_utf8_lossy(&bytes).into_owned();
    let diagnostics = run_everything(&source);
    assert!(!diagnostics.is_empty());
    let summary: Vec<String> = diagnostics.iter().map(|d| format!("{} {}", d.code, d.message)).collect();
    insta::assert_snapshot!(summary.join("\n"));
}

/// Long tokens of multi-byte characters: a lexer that recursed per character (as logos'
/// default tail-call code does in debug builds) would overflow here.
#[test]
fn megabyte_tokens_on_a_small_stack() {
    on_small_stack(|| {
        let long = "é".repeat(1 << 19);
        for source in [
            format!("// {long}\nmap m: sum;"),
            format!("const S = \"{long}\";"),
            format!("{}map m: sum;", " \n\t".repeat(1 << 18)),
            format!("const {} = 1;", "x".repeat(1 << 20)),
            long.clone(),
        ] {
            run_everything(&source);
        }
    });
}

const SOUP: &[&str] = &[
    "budget",
    "const",
    "map",
    "probe",
    "rate",
    "when",
    "let",
    "if",
    "else",
    "delete",
    "return",
    "as",
    "true",
    "false",
    "max",
    "x",
    "calls",
    "pid",
    "comm",
    "args",
    "arg0",
    "retval",
    "count",
    "hash",
    "lhist",
    "u32",
    "str",
    "0",
    "7",
    "0x1f",
    "200k",
    "0.5",
    "\"s\"",
    "(",
    ")",
    "[",
    "]",
    "{",
    "}",
    ",",
    ":",
    ";",
    ".",
    "->",
    "??",
    "=",
    "==",
    "!=",
    "<",
    "<=",
    ">",
    ">=",
    "&&",
    "||",
    "!",
    "~",
    "+",
    "-",
    "*",
    "/",
    "%",
    "&",
    "|",
    "^",
    "<<",
    ">>",
    "tracepoint:raw_syscalls:sys_enter",
    "uprobe:/usr/bin/app:main",
    "kprobe:x",
    "\n",
    "// c\n",
];

#[test]
fn token_soup_never_panics() {
    on_small_stack(|| {
        let mut rng = XorShift(7);
        for _ in 0..2000 {
            let len = rng.below(80);
            let source: Vec<&str> = (0..len).map(|_| SOUP[rng.below(SOUP.len())]).collect();
            run_everything(&source.join(" "));
        }
    });
}

/// Mostly well-formed programs with random damage: exercises the checker deeply.
#[test]
fn mutated_programs_never_panic() {
    let base = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data/ok/locals_and_control.ppl"))
        .expect("data file");
    on_small_stack(move || {
        let tokens: Vec<&str> = base.split_whitespace().collect();
        let mut rng = XorShift(99);
        for _ in 0..500 {
            let mut mutated: Vec<&str> = tokens.clone();
            for _ in 0..1 + rng.below(3) {
                let at = rng.below(mutated.len());
                match rng.below(3) {
                    0 => {
                        mutated.remove(at);
                    }
                    1 => mutated.insert(at, SOUP[rng.below(SOUP.len())]),
                    _ => mutated[at] = SOUP[rng.below(SOUP.len())],
                }
            }
            run_everything(&mutated.join(" "));
        }
    });
}

fn deep_case(name: &'static str, body: String) -> Vec<&'static str> {
    on_small_stack(move || {
        let source = format!("map m: hash[u64] -> u64 max 8;\nprobe tracepoint:raw_syscalls:sys_enter {{ {body} }}\n");
        let diagnostics = run_everything(&source);
        assert!(!diagnostics.is_empty(), "{name}: no diagnostic");
        codes(&diagnostics)
    })
}

#[test]
fn ten_thousand_nested_parentheses() {
    let codes = deep_case("parens", format!("m[0] = {}1{};", "(".repeat(10_000), ")".repeat(10_000)));
    assert_eq!(codes, vec!["E0005"]);
}

#[test]
fn ten_thousand_prefix_operators() {
    for operator in ["!", "-", "~"] {
        let codes = deep_case("prefix", format!("m[0] = {}pid;", operator.repeat(10_000)));
        assert_eq!(codes, vec!["E0005"], "{operator}");
    }
}

#[test]
fn ten_thousand_term_expression() {
    let codes = deep_case("flat", format!("m[0] = 1{};", " + pid".repeat(10_000)));
    assert_eq!(codes, vec!["E0005"]);
}

#[test]
fn ten_thousand_nested_blocks_and_else_ifs() {
    let codes = deep_case("blocks", format!("{}return;{}", "if true { ".repeat(10_000), " }".repeat(10_000)));
    assert_eq!(codes, vec!["E0006"]);
    let codes =
        deep_case("else if", format!("if false {{ }}{} else {{ return; }}", " else if false { }".repeat(10_000)));
    assert_eq!(codes, vec!["E0006"]);
}

#[test]
fn ten_thousand_nested_map_keys_and_coalesces() {
    let codes = deep_case("keys", format!("m[0] = {}0{};", "m[".repeat(10_000), "] ?? 0".repeat(10_000)));
    assert_eq!(codes, vec!["E0005"]);
}

/// The deepest expression the guard lets through checks fine on a small stack, so the
/// limit (not luck) is what protects the recursive stages.
#[test]
fn deepest_allowed_expression_checks_on_a_small_stack() {
    // `m[` weighs 1, each `(-` 2: the total is just under the limit.
    let depth = (ppis_lang::nesting::MAX_EXPRESSION_WEIGHT - 1) / 2;
    let codes = on_small_stack(move || {
        let body = format!("m[0] = {}pid{};", "(-".repeat(depth), ")".repeat(depth));
        let source = format!("map m: hash[u64] -> i64 max 8;\nprobe tracepoint:raw_syscalls:sys_enter {{ {body} }}\n");
        codes(&run_everything(&source))
    });
    assert_eq!(codes, Vec::<&str>::new());
}

#[test]
fn deep_input_snapshot() {
    let source = format!("const A = {}1{};\nmap m: sum;\n", "(".repeat(10_000), ")".repeat(10_000));
    let diagnostics = on_small_stack(move || run_everything(&source));
    let summary: Vec<String> =
        diagnostics.iter().map(|d| format!("{} {}: {}", d.code, d.message, d.primary.message)).collect();
    insta::assert_snapshot!(summary.join("\n"));
}

const PROBE: &str = "probe tracepoint:raw_syscalls:sys_exit when comm == \"nginx\" {\n    calls[comm].inc();\n    if let t0 = start[tid] {\n        lat[args.id].record(nsecs - t0);\n        delete start[tid];\n    }\n}\n";

fn ten_megabytes(probe: &str) -> (String, usize) {
    let header =
        "map calls: count[str[16]] max 1024;\nmap lat: hist[u64] max 512;\nmap start: hash[u32] -> u64 max 10240;\n";
    let copies = (10 << 20) / probe.len() + 1;
    let mut source = String::with_capacity(header.len() + copies * probe.len());
    source.push_str(header);
    for _ in 0..copies {
        source.push_str(probe);
    }
    (source, copies)
}

/// Linear time: a 10 MB file checks in seconds (the bound is generous for debug builds on
/// a shared machine; quadratic behaviour would take hours).
#[test]
fn ten_megabyte_file() {
    let (source, copies) = ten_megabytes(PROBE);
    assert!(source.len() >= 10 << 20);
    let started = Instant::now();
    let (program, diagnostics) = check_source(&source, &FakeTargets, &CheckOptions::default());
    let elapsed = started.elapsed();
    println!("10 MB, {copies} probes: {elapsed:?}");
    assert!(diagnostics.is_empty(), "{:?}", &diagnostics[..diagnostics.len().min(3)]);
    assert_eq!(program.expect("checks").probes.len(), copies);
    assert!(elapsed < Duration::from_secs(120), "took {elapsed:?}");
}

#[test]
fn ten_megabyte_file_of_errors() {
    let (source, copies) = ten_megabytes(&PROBE.replace("calls[comm]", "cals[comm]"));
    let started = Instant::now();
    let (program, diagnostics) = check_source(&source, &FakeTargets, &CheckOptions::default());
    println!("10 MB, {copies} errors: {:?}", started.elapsed());
    assert!(program.is_none());
    assert_eq!(diagnostics.len(), copies);
    assert!(diagnostics.iter().all(|d| d.code == "E0102"));
    assert!(started.elapsed() < Duration::from_secs(120));
}

/// Error recovery stays linear: 10 MB of token soup, and one probe whose body is 10 MB
/// of statements the parser must skip.
#[test]
fn ten_megabytes_of_garbage() {
    let mut rng = XorShift(5);
    let mut soup = String::with_capacity(11 << 20);
    while soup.len() < 10 << 20 {
        soup.push_str(SOUP[rng.below(SOUP.len())]);
        soup.push(' ');
    }
    let skipped = format!("probe tracepoint:raw_syscalls:sys_enter {{ {} }}", "x y ".repeat(10 << 18));
    for source in [soup, skipped] {
        let started = Instant::now();
        let (_, diagnostics) = check_source(&source, &FakeTargets, &CheckOptions::default());
        println!("10 MB of garbage: {} diagnostics in {:?}", diagnostics.len(), started.elapsed());
        assert!(diagnostics.iter().any(Diagnostic::is_error));
        assert!(started.elapsed() < Duration::from_secs(120));
    }
}

#[test]
fn ten_megabytes_in_one_deep_item() {
    let source = "(".repeat(10 << 20);
    let diagnostics = on_small_stack(move || {
        let (file, diagnostics) = parse(&source);
        assert_eq!(file.items.len(), 1, "the whole file is one withheld item");
        diagnostics
    });
    assert_eq!(codes(&diagnostics), vec!["E0005"]);
}
