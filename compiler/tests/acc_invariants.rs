//! Abstraction-carrying code end to end: every example and every codegen filetest is compiled,
//! annotated with the bytecode invariants `ppisc build` ships (`invariants.json`), and checked
//! by the loader's one-pass checker (`ppis_bundle::pcc`); a tamper matrix edits the bytecode or
//! the invariants of real programs while keeping the certificate valid-looking, and each edit
//! must be refused with its reason (snapshotted).

#[path = "../../lang/tests/common/mod.rs"]
mod common;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use ppis_bundle::acc::LoopBound;
use ppis_bundle::pcc::{self, HostPolicy};
use ppis_bundle::Header;
use ppis_compiler::driver::{self, CompileOptions, Compiled};
use ppis_compiler::lower::LowerOptions;
use ppis_lang::targets::Targets;
use ppis_manifest::profile::CostProfile;

fn options() -> CompileOptions {
    CompileOptions { lower: LowerOptions::default(), profile: CostProfile::reference(), cpus: 2 }
}

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn ppl_files(dir: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir).unwrap().map(|e| e.unwrap().path()).collect();
    files.retain(|p| p.extension().is_some_and(|e| e == "ppl"));
    files.sort();
    assert!(!files.is_empty(), "no programs in {}", dir.display());
    files
}

/// The parts of a bundle, as `ppisc build` would sign them.
struct Parts {
    header: Header,
    manifest: ppis_manifest::Manifest,
    object: Vec<u8>,
    certificate: Vec<u8>,
    invariants: Vec<u8>,
}

fn compile(source: &str, targets: &dyn Targets) -> Option<Compiled> {
    let (compiled, diags) = driver::compile(source, targets, &options());
    if compiled.is_none() {
        eprintln!("{}", ppis_lang::render::text(&diags, "input.ppl", source, false));
    }
    compiled
}

fn parts(compiled: &Compiled, source: &str) -> Parts {
    let profile = CostProfile::reference();
    let object = driver::object(compiled);
    let certificate = driver::certificate_json(compiled, source.as_bytes(), &object, &profile).into_bytes();
    let invariants = driver::invariants_json(&object);
    let header = Header {
        name: "t".into(),
        compiler_version: "test".into(),
        cost_profile_hash: profile.hash(),
        source_hash: ppis_bundle::sha256_hex(source.as_bytes()),
        entries: vec![],
    };
    Parts { header, manifest: compiled.lowered.manifest.clone(), object, certificate, invariants }
}

fn check(parts: &Parts) -> Result<pcc::PccReport, pcc::PccError> {
    let profile = CostProfile::reference();
    let policy = HostPolicy { profile: &profile, cpus: 2, require_profile_match: true };
    pcc::check_with_invariants(
        &parts.header,
        &parts.manifest,
        &parts.object,
        &parts.certificate,
        Some(&parts.invariants),
        &policy,
    )
}

/// Every program of the object has invariants: none was skipped by the producer.
fn assert_all_annotated(label: &str, parts: &Parts) {
    let (_, skipped) = pcc::produce_invariants(&parts.object).unwrap();
    assert!(skipped.is_empty(), "{label}: programs without invariants: {skipped:?}");
}

/// Annotates and checks every program of `source`: the invariants part always, the whole
/// load-time check (hashes, cost, budget, ...) when `whole` is set. Returns the loop bounds and
/// the time the invariants check took per program.
fn check_all(label: &str, parts: &Parts, whole: bool) -> (BTreeMap<String, Vec<LoopBound>>, Duration) {
    let start = Instant::now();
    let result = pcc::check_invariants(&parts.object, &parts.invariants);
    let elapsed = start.elapsed();
    let bounds = result.unwrap_or_else(|error| {
        panic!("{label}: {error}\n{}", String::from_utf8_lossy(&parts.invariants));
    });
    if whole {
        if let Err(error) = check(parts) {
            panic!("{label}: {error}");
        }
    }
    (bounds.clone(), elapsed / bounds.len().max(1) as u32)
}

/// Filetests that exercise only what the loader knows (helpers, map and program types) must be
/// annotated completely; the others must check for every program they have invariants for.
const FULLY_ANNOTATED_FILETESTS: [&str; 2] = ["loop.ppl", "spec.ppl"];

#[test]
fn every_codegen_filetest_carries_invariants_that_check() {
    let mut checked = Vec::new();
    for file in ppl_files(&root().join("tests/filetests/codegen")) {
        let label = file.display().to_string();
        let source = std::fs::read_to_string(&file).unwrap();
        let source = source.split("// expect:").next().unwrap();
        let compiled = compile(source, &common::FakeTargets).unwrap_or_else(|| panic!("{label} does not compile"));
        let parts = parts(&compiled, source);
        let file_name = file.file_name().unwrap().to_str().unwrap().to_string();
        match pcc::produce_invariants(&parts.object) {
            Ok((_, skipped)) if FULLY_ANNOTATED_FILETESTS.contains(&file_name.as_str()) => {
                assert!(skipped.is_empty(), "{label}: programs without invariants: {skipped:?}")
            }
            Ok((_, skipped)) => {
                for (program, why) in skipped {
                    eprintln!("{label}: {program} has no invariants: {why}");
                }
            }
            Err(error) => {
                assert!(!FULLY_ANNOTATED_FILETESTS.contains(&file_name.as_str()), "{label}: {error}");
                eprintln!("{label}: the loader does not read this object yet: {error}");
                continue;
            }
        }
        let (bounds, _) = check_all(&label, &parts, false);
        if file_name == "loop.ppl" {
            // `for i in 1..4`: the back edge is taken 3 times.
            assert_eq!(bounds["probe0"], vec![LoopBound { header: 2, back_edge: 58, max_trips: 3 }]);
        }
        checked.push(file_name);
    }
    for required in FULLY_ANNOTATED_FILETESTS {
        assert!(checked.iter().any(|f| f == required), "{required} was not checked");
    }
}

#[test]
fn every_example_carries_invariants_that_check() {
    if !Path::new("/sys/kernel/tracing/events").exists() {
        assert_ne!(std::env::var("CI").as_deref(), Ok("true"), "tracefs is not mounted");
        eprintln!("skipping: tracefs is not mounted (the examples need this host's tracepoint formats)");
        return;
    }
    for file in ppl_files(&root().join("examples")) {
        let source = std::fs::read_to_string(&file).unwrap();
        let label = file.display().to_string();
        let compiled = compile(&source, &ppis_compiler::targets::HostTargets)
            .unwrap_or_else(|| panic!("{label} does not compile"));
        let parts = parts(&compiled, &source);
        assert_all_annotated(&label, &parts);
        let (_, per_program) = check_all(&label, &parts, true);
        eprintln!("{}: invariants checked in {per_program:?} per program", file.display());
    }
}

// ---------------------------------------------------------------------------------------------
// Tamper matrix: a compromised build host changes the code or the invariants of loop.ppl and
// re-hashes the certificate, so only the invariants check can catch it.

/// `tests/filetests/codegen/loop.ppl`'s program `probe0`, instruction numbers as in its
/// `// expect:` block: 2 `if r7 < 4` (loop header), 4 `*(u64 *)(r10 - 32) = 0`,
/// 14 `r1 = *(u64 *)(r10 - 48)`, 40 `if r9 == 0 goto +3` (null check), 41 `r1 = *(u64 *)(r9 + 0)`,
/// 42 `r1 += r8`, 44 `r0 = 0`, 45 `exit`, 57 `r7 += 1`, 58 `goto -57` (back edge).
fn loop_parts() -> Parts {
    let text = std::fs::read_to_string(root().join("tests/filetests/codegen/loop.ppl")).unwrap();
    let source = text.split("// expect:").next().unwrap().to_string();
    let compiled = compile(&source, &common::FakeTargets).unwrap();
    parts(&compiled, &source)
}

fn encode(opcode: u8, dst: u8, src: u8, offset: i16, imm: i32) -> [u8; 8] {
    let mut b = [0u8; 8];
    b[0] = opcode;
    b[1] = dst | (src << 4);
    b[2..4].copy_from_slice(&offset.to_le_bytes());
    b[4..8].copy_from_slice(&imm.to_le_bytes());
    b
}

/// Byte range of `probe0`'s code in the object file.
fn program_range(object: &[u8]) -> (usize, usize) {
    use object::{Object, ObjectSection, ObjectSymbol};
    let file = object::File::parse(object).unwrap();
    let symbol = file.symbols().find(|s| s.name() == Ok("probe0")).unwrap();
    let section = file.section_by_index(symbol.section_index().unwrap()).unwrap();
    let (offset, _) = section.file_range().unwrap();
    let start = (offset + symbol.address()) as usize;
    (start, start + symbol.size() as usize)
}

/// Edits instruction slots of `probe0` and re-hashes the certificate.
fn with_code(mut parts: Parts, edits: &[(usize, [u8; 8])]) -> Parts {
    let (start, _) = program_range(&parts.object);
    for (slot, insn) in edits {
        parts.object[start + slot * 8..start + slot * 8 + 8].copy_from_slice(insn);
    }
    let mut certificate: serde_json::Value = serde_json::from_slice(&parts.certificate).unwrap();
    certificate["hashes"]["bytecode"] = format!("sha256:{}", ppis_bundle::sha256_hex(&parts.object)).into();
    parts.certificate = serde_json::to_vec(&certificate).unwrap();
    parts
}

/// Edits `probe0`'s invariants.
fn with_invariants(mut parts: Parts, edit: impl FnOnce(&mut serde_json::Value)) -> Parts {
    let mut invariants: serde_json::Value = serde_json::from_slice(&parts.invariants).unwrap();
    edit(&mut invariants["programs"]["probe0"]);
    parts.invariants = serde_json::to_vec(&invariants).unwrap();
    parts
}

#[test]
fn the_honest_loop_bundle_passes_the_whole_check_with_the_loop_priced_per_trip() {
    let bound = |trips: u64| {
        let parts = with_invariants(loop_parts(), |p| p["loops"][0]["max_trips"] = trips.into());
        check(&parts).unwrap().probes[0].bytecode_bound_ns
    };
    // The honest count is 3; a higher one is conservative and accepted, and each extra trip
    // adds the same iteration cost.
    let (three, four, five) = (bound(3), bound(4), bound(5));
    let iteration = four - three;
    assert!(iteration > 0.0);
    assert!((five - four - iteration).abs() < 1e-6, "{three} {four} {five}");
}

#[test]
fn tampered_code_or_invariants_are_refused_with_their_reason() {
    const JLT_IMM: u8 = 0xa5;
    const ST_DW: u8 = 0x7a;
    const LDX_DW: u8 = 0x79;
    const MOV64_REG: u8 = 0xbf;
    const DIV64_REG: u8 = 0x3f;
    const JA: u8 = 0x05;
    let honest = loop_parts();
    check(&honest).unwrap();
    let cases: Vec<(&str, Parts)> = vec![
        // The loop index (an array index of `slots`) may now run to 400.
        ("widened array index", with_code(loop_parts(), &[(2, encode(JLT_IMM, 7, 0, 43, 400))])),
        // The check becomes `r9 = r9` and the state after it is dropped from the invariants.
        (
            "removed null check",
            with_invariants(with_code(loop_parts(), &[(40, encode(MOV64_REG, 9, 9, 0, 0))]), |p| {
                p["states"].as_object_mut().unwrap().remove("44");
            }),
        ),
        ("map value read past its end", with_code(loop_parts(), &[(41, encode(LDX_DW, 1, 9, 8, 0))])),
        ("stated interval narrowed", with_invariants(loop_parts(), |p| p["states"]["2"]["r7"] = "s[1,3]".into())),
        ("lowered trip count", with_invariants(loop_parts(), |p| p["loops"][0]["max_trips"] = 2.into())),
        ("loop bound removed", with_invariants(loop_parts(), |p| p["loops"] = serde_json::json!([]))),
        // `r0 = 0; exit` becomes `r0 = 0; goto -2`: a loop with no counter.
        ("back edge added", with_code(loop_parts(), &[(45, encode(JA, 0, 0, -2, 0))])),
        ("stack offset out of 512", with_code(loop_parts(), &[(4, encode(ST_DW, 10, 0, -520, 0))])),
        ("uninitialised stack read", with_code(loop_parts(), &[(14, encode(LDX_DW, 1, 10, -64, 0))])),
        ("division by a register that may be zero", with_code(loop_parts(), &[(42, encode(DIV64_REG, 1, 1, 0, 0))])),
        ("entry state not the real one", with_invariants(loop_parts(), |p| p["states"]["0"]["r1"] = "s[0,0]".into())),
        ("state at a non-leader", with_invariants(loop_parts(), |p| p["states"]["3"] = serde_json::json!({"r1": "?"}))),
        ("malformed value", with_invariants(loop_parts(), |p| p["states"]["2"]["r7"] = "s[4,1]".into())),
    ];
    let mut reasons = String::new();
    for (name, parts) in cases {
        let error = check(&parts).expect_err(name);
        assert_eq!(error.rule, pcc::Rule::Invariants, "{name}: {error}");
        reasons.push_str(&format!("{name}: {error}\n"));
    }
    insta::assert_snapshot!(reasons);
}

// ---------------------------------------------------------------------------------------------
// Random well-typed programs with loops: whatever compiles gets invariants, and they check.
//
// Like `kernel_accepts.rs`, the generator reads its decisions from a byte tape proptest
// generates and shrinks (an exhausted tape takes the first, simplest choice); this one adds
// `for` loops (constant and clamped bounds, nested) and needs no kernel.

struct Tape<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl Tape<'_> {
    fn pick(&mut self, n: usize) -> usize {
        let byte = self.bytes.get(self.at).copied().unwrap_or(0);
        self.at += 1;
        byte as usize % n.max(1)
    }
}

const RANDOM_MAPS: &str = "\
map slots: array[16] -> u64;
map by_key: count[u32] max 64;
map by_comm: count[str[16]] max 64;
map sums: sum;
map last: hash[u32] -> u64 max 64;
map lat: hist[u32] max 64;
";

struct Generator<'a> {
    tape: Tape<'a>,
    /// Integer variables in scope (loop indices included).
    scope: Vec<String>,
    next_var: usize,
    statements_left: usize,
}

impl Generator<'_> {
    fn atom(&mut self) -> String {
        match self.tape.pick(5) {
            0 => format!("{}", self.tape.pick(100)),
            1 => ["pid", "tid", "cpu", "arg0", "arg1"][self.tape.pick(5)].to_string(),
            2 if !self.scope.is_empty() => self.scope[self.tape.pick(self.scope.len())].clone(),
            3 => format!("(slots[({}) % 16] ?? 0)", self.scope.last().cloned().unwrap_or_else(|| "tid".into())),
            _ => "arg2".to_string(),
        }
    }

    fn expr(&mut self, depth: usize) -> String {
        if depth == 0 || self.tape.pick(3) == 0 {
            return self.atom();
        }
        let lhs = self.expr(depth - 1);
        match self.tape.pick(5) {
            0 => format!("({lhs} + {})", self.expr(depth - 1)),
            1 => format!("({lhs} * {})", self.expr(depth - 1)),
            2 => format!("({lhs} {} {})", ["/", "%"][self.tape.pick(2)], 1 + self.tape.pick(9)),
            3 => format!("({lhs} >> {})", self.tape.pick(32)),
            _ => format!("({lhs} & {})", self.expr(depth - 1)),
        }
    }

    fn block(&mut self, depth: usize, out: &mut String, indent: usize) {
        let count = 1 + self.tape.pick(3);
        for _ in 0..count {
            self.statement(depth, out, indent);
        }
    }

    fn statement(&mut self, depth: usize, out: &mut String, indent: usize) {
        if self.statements_left == 0 {
            return;
        }
        self.statements_left -= 1;
        let pad = "    ".repeat(indent);
        match self.tape.pick(if depth == 0 { 6 } else { 9 }) {
            0 => {
                let name = format!("v{}", self.next_var);
                self.next_var += 1;
                out.push_str(&format!("{pad}let {name} = {};\n", self.expr(2)));
                self.scope.push(name);
            }
            1 => out.push_str(&format!("{pad}by_key[({}) as u32].inc();\n", self.expr(1))),
            2 => out.push_str(&format!("{pad}by_comm[comm].inc();\n")),
            3 => out.push_str(&format!("{pad}sums.add(({}) as u64);\n", self.expr(2))),
            4 => out.push_str(&format!("{pad}slots[({}) % 16] = ({}) as u64;\n", self.expr(1), self.expr(1))),
            5 => out.push_str(&format!("{pad}lat[({}) as u32].record({});\n", self.expr(1), self.expr(1))),
            6 => {
                out.push_str(&format!("{pad}if {} < {} {{\n", self.expr(1), self.expr(1)));
                self.block(depth - 1, out, indent + 1);
                out.push_str(&format!("{pad}}}\n"));
            }
            7 => {
                let name = format!("v{}", self.next_var);
                self.next_var += 1;
                out.push_str(&format!("{pad}if let {name} = last[({}) as u32] {{\n", self.expr(1)));
                self.scope.push(name);
                self.block(depth - 1, out, indent + 1);
                self.scope.pop();
                out.push_str(&format!("{pad}}}\n"));
            }
            _ => {
                let index = format!("i{}", self.next_var);
                self.next_var += 1;
                let start = self.tape.pick(3);
                if self.tape.pick(2) == 0 {
                    out.push_str(&format!("{pad}for {index} in {start}..{} {{\n", start + 1 + self.tape.pick(8)));
                } else {
                    // A bound clamped by a guard, as docs/language.md shows.
                    let bound = format!("n{}", self.next_var);
                    self.next_var += 1;
                    let limit = 1 + self.tape.pick(8);
                    out.push_str(&format!(
                        "{pad}let {bound} = {};\n{pad}if {bound} > {limit} {{\n{pad}    {bound} = {limit};\n{pad}}}\n",
                        self.expr(1)
                    ));
                    out.push_str(&format!("{pad}for {index} in {start}..{bound} {{\n"));
                }
                self.scope.push(index);
                self.block(depth - 1, out, indent + 1);
                self.scope.pop();
                out.push_str(&format!("{pad}}}\n"));
            }
        }
    }
}

fn random_program(tape: &[u8]) -> String {
    let mut generator = Generator { tape: Tape { bytes: tape, at: 0 }, scope: vec![], next_var: 0, statements_left: 6 };
    let mut out = String::from(RANDOM_MAPS);
    out.push_str("\nprobe uprobe:/usr/bin/app:handle_request rate <= 100/s {\n");
    generator.block(2, &mut out, 1);
    out.push_str("}\n");
    out
}

/// Found by `invariants_of_random_programs_always_check`: `arg2 < 0` is never true (unsigned),
/// so the verifier leaves the two map updates out of the certified bound, while the bytecode's
/// structural heaviest path has them (over the bound + 50 %). The invariants prove that branch
/// is never taken, and the checker prices the code without it.
#[test]
fn a_branch_the_invariants_prove_dead_is_not_priced() {
    let source = "map slots: array[16] -> u64;\n\
                  map by_key: count[u32] max 64;\n\
                  probe uprobe:/usr/bin/app:handle_request rate <= 100/s {\n\
                  \x20   if arg2 < (0 >> 0) {\n\
                  \x20       if (arg2 >> 16) < tid {\n\
                  \x20           by_key[(((slots[(tid) % 16] ?? 0) >> 0)) as u32].inc();\n\
                  \x20           by_key[(0) as u32].inc();\n\
                  \x20       }\n\
                  \x20   }\n\
                  }\n";
    let compiled = compile(source, &common::FakeTargets).expect("compiles");
    let parts = parts(&compiled, source);
    let profile = CostProfile::reference();
    let policy = HostPolicy { profile: &profile, cpus: 2, require_profile_match: true };
    let without_invariants =
        pcc::check(&parts.header, &parts.manifest, &parts.object, &parts.certificate, &policy).unwrap_err();
    assert_eq!(without_invariants.rule, pcc::Rule::Cost, "{without_invariants}");
    let probe = &check(&parts).unwrap().probes[0];
    assert!(probe.bytecode_bound_ns <= probe.certified_bound_ns * 1.5, "{probe:?}");
}

#[test]
fn invariants_of_random_programs_always_check() {
    use proptest::prelude::*;
    use proptest::test_runner::{Config, TestCaseError, TestRunner};
    let cases = std::env::var("PPIS_RANDOM_CASES").ok().and_then(|n| n.parse().ok()).unwrap_or(48);
    let mut runner = TestRunner::new(Config { cases, failure_persistence: None, ..Config::default() });
    let compiled_with_loops = std::cell::Cell::new(0u32);
    let result = runner.run(&proptest::collection::vec(any::<u8>(), 16..200), |tape| {
        let source = random_program(&tape);
        let (compiled, _) = driver::compile(&source, &common::FakeTargets, &options());
        let Some(compiled) = compiled else { return Ok(()) };
        let parts = parts(&compiled, &source);
        let (_, skipped) = pcc::produce_invariants(&parts.object).unwrap();
        if !skipped.is_empty() {
            return Err(TestCaseError::fail(format!("no invariants for:\n{source}\n{skipped:?}")));
        }
        let bounds = pcc::check_invariants(&parts.object, &parts.invariants)
            .map_err(|e| TestCaseError::fail(format!("{e}\n{source}")))?;
        if bounds.values().any(|b| !b.is_empty()) {
            compiled_with_loops.set(compiled_with_loops.get() + 1);
        }
        check(&parts).map_err(|e| TestCaseError::fail(format!("whole check: {e}\n{source}")))?;
        Ok(())
    });
    if let Err(error) = result {
        panic!("{error}");
    }
    eprintln!("{} random programs with loops checked", compiled_with_loops.get());
    assert!(compiled_with_loops.get() > 0, "the generator made no program with a loop that compiles");
}

#[test]
fn the_language_guide_loop_example_checks() {
    let source = "map slots: array[16] -> u64;\nmap totals: sum;\n\
        probe uprobe:/usr/bin/app:handle_request rate <= 100/s {\n    let n = arg0;\n    if n > 8 {\n        n = 8;\n    }\n\
        let total = 0;\n    for k in 0..n {\n        total = total + (slots[k] ?? 0);\n    }\n    totals.add(total);\n}\n";
    let compiled = compile(source, &common::FakeTargets).expect("the guide's example compiles");
    let parts = parts(&compiled, source);
    assert_all_annotated("guide", &parts);
    let bounds = pcc::check_invariants(&parts.object, &parts.invariants).unwrap();
    let trips: Vec<u64> = bounds["probe0"].iter().map(|b| b.max_trips).collect();
    // `k` runs 0..n with n ≤ 8: at most 8 back edges.
    assert_eq!(trips, vec![8]);
    check(&parts).unwrap();
}
