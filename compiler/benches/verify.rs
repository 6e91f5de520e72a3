//! Verification time per example and for all examples, Z3's share of it, and bpftrace's
//! compile time for the equivalent script (`bench/bpftrace/NAME.bt`, when bpftrace is
//! installed). Run with `cargo bench -p ppis-compiler --bench verify`; prints a table.

use ppis_compiler::driver::{self, CompileOptions};
use ppis_compiler::lower::LowerOptions;
use ppis_compiler::targets::HostTargets;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

const RUNS: u32 = 20;

fn median(mut samples: Vec<Duration>) -> Duration {
    samples.sort();
    samples[samples.len() / 2]
}

fn ms(d: Duration) -> String {
    format!("{:.2}", d.as_secs_f64() * 1e3)
}

fn bpftrace_ms(script: &Path) -> String {
    if !script.exists() || Command::new("bpftrace").arg("--version").output().is_err() {
        return "-".into();
    }
    let out = std::env::temp_dir().join("ppis-bench-bpftrace.o");
    let mut samples = Vec::new();
    for _ in 0..5 {
        let start = Instant::now();
        let compiled = Command::new("bpftrace").arg("--emit-elf").arg(&out).arg(script).output();
        // A script bpftrace refuses fails fast: its time would flatter bpftrace.
        if !compiled.is_ok_and(|output| output.status.success()) {
            return "fails".into();
        }
        samples.push(start.elapsed());
    }
    ms(median(samples))
}

fn main() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let mut files: Vec<_> = std::fs::read_dir(root.join("examples")).unwrap().map(|e| e.unwrap().path()).collect();
    files.retain(|p| p.extension().is_some_and(|e| e == "ppl"));
    files.sort();
    let opts = CompileOptions::for_this_host(LowerOptions::default());
    println!("| example | ppisc check (ms) | verifier (ms) | Z3 (ms) | Z3 share | bpftrace --emit-elf (ms) |");
    println!("|---|---|---|---|---|---|");
    let (mut all_check, mut all_verify, mut all_z3) = (Duration::ZERO, Duration::ZERO, Duration::ZERO);
    for file in &files {
        let source = std::fs::read_to_string(file).unwrap();
        let (mut check, mut verify, mut z3) = (Vec::new(), Vec::new(), Vec::new());
        for _ in 0..RUNS {
            let z3_before = ppis_verifier::smt::time_in_z3();
            let start = Instant::now();
            let (compiled, diags) = driver::compile(&source, &HostTargets, &opts);
            check.push(start.elapsed());
            z3.push(ppis_verifier::smt::time_in_z3() - z3_before);
            let Some(compiled) = compiled else { panic!("{} does not compile: {diags:?}", file.display()) };
            // The verifier alone, on the same IR.
            let verify_opts = ppis_verifier::VerifyOptions {
                profile: &opts.profile,
                budget_percent: compiled.program.budget_percent,
                cpus: opts.cpus,
            };
            let start = Instant::now();
            let _ = ppis_verifier::verify(&compiled.lowered.module, &verify_opts);
            verify.push(start.elapsed());
        }
        let (c, v, z) = (median(check), median(verify), median(z3));
        all_check += c;
        all_verify += v;
        all_z3 += z;
        let name = file.file_stem().unwrap().to_string_lossy().to_string();
        let bt = bpftrace_ms(&root.join("bench/bpftrace").join(format!("{name}.bt")));
        let share = 100.0 * z.as_secs_f64() / c.as_secs_f64().max(1e-9);
        println!("| {name} | {} | {} | {} | {share:.0} % | {bt} |", ms(c), ms(v), ms(z));
    }
    let share = 100.0 * all_z3.as_secs_f64() / all_check.as_secs_f64().max(1e-9);
    println!("| all {} | {} | {} | {} | {share:.0} % | |", files.len(), ms(all_check), ms(all_verify), ms(all_z3));
}
