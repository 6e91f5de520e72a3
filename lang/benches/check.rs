//! Front-end throughput: parse + check of one large generated file (reported in lines per
//! second), and of 100 ordinary files in a row (what `ppisc check probes/*.ppl` does).
//! Run with `cargo bench -p ppis-lang --bench check`.

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use ppis_lang::targets::{TargetError, Targets, TracepointField};
use ppis_lang::{check_source, CheckOptions};
use std::hint::black_box;
use std::time::Instant;

/// Every tracepoint has the fields `id` and `ret`; every uprobe target exists.
struct BenchTargets;

impl Targets for BenchTargets {
    fn tracepoint_fields(&self, _category: &str, _name: &str) -> Result<Vec<TracepointField>, TargetError> {
        let field = |name: &str, offset| TracepointField {
            name: name.into(),
            offset,
            size: 8,
            signed: true,
            array_len: None,
            is_char_array: false,
            c_decl: format!("long {name}"),
        };
        Ok(vec![field("id", 8), field("ret", 16)])
    }
    fn check_uprobe(&self, _path: &str, _symbol: &str) -> Result<(), TargetError> {
        Ok(())
    }
}

/// A file of `probes` probe pairs with their maps, consts and comments (about 19 lines a
/// pair); `tag` prefixes the names.
fn generated_file(tag: &str, probes: usize) -> String {
    let mut source = String::from("//! Generated for the front-end benchmark.\nbudget 0.25%;\n");
    for number in 0..probes {
        let index = format!("{tag}{number}");
        source.push_str(&format!(
            "\nconst LIMIT_{index} = {number} * 1_000 + 7;\nmap calls_{index}: count[u32, str[16]] max 1024;\n\
map start_{index}: hash[u32] -> u64 max 4096;\nmap lat_{index}: hist[i64] max 64;\n\n\
// Pair {index}: latency of syscalls of one process.\n\
probe tracepoint:raw_syscalls:sys_enter rate <= 10k/s when pid > LIMIT_{index} && comm != \"bench\" {{\n\
    calls_{index}[pid, comm].inc();\n    start_{index}[tid] = nsecs;\n}}\n\n\
probe tracepoint:raw_syscalls:sys_exit rate <= 10k/s {{\n    if let t0 = start_{index}[tid] {{\n\
        let elapsed = (nsecs - t0) / 1000;\n        lat_{index}[args.id].record(elapsed);\n        delete start_{index}[tid];\n    }}\n}}\n"
        ));
    }
    source
}

fn check(source: &str) -> usize {
    let (program, diagnostics) = check_source(source, &BenchTargets, &CheckOptions::default());
    assert!(program.is_some(), "the generated file checks clean: {diagnostics:?}");
    diagnostics.len()
}

fn bench_large_file(c: &mut Criterion) {
    let source = generated_file("", 500);
    let lines = source.lines().count() as u64;
    // One plain measurement, printed in the unit people ask about.
    let started = Instant::now();
    let rounds = 5;
    for _ in 0..rounds {
        black_box(check(&source));
    }
    let seconds = started.elapsed().as_secs_f64() / rounds as f64;
    println!(
        "large file: {lines} lines parsed and checked in {:.1} ms: {:.0} lines/s",
        seconds * 1e3,
        lines as f64 / seconds
    );

    let mut group = c.benchmark_group("parse+check");
    group.throughput(Throughput::Elements(lines));
    group.sample_size(20);
    group.bench_function(format!("one file of {lines} lines"), |b| b.iter(|| check(black_box(&source))));
    group.finish();
}

fn bench_hundred_files(c: &mut Criterion) {
    let files: Vec<String> = (0..100).map(|file| generated_file(&format!("f{file}_"), 8)).collect();
    let lines: u64 = files.iter().map(|file| file.lines().count() as u64).sum();
    let started = Instant::now();
    for file in &files {
        black_box(check(file));
    }
    let seconds = started.elapsed().as_secs_f64();
    println!(
        "100 files: {lines} lines parsed and checked in {:.1} ms: {:.0} lines/s",
        seconds * 1e3,
        lines as f64 / seconds
    );

    let mut group = c.benchmark_group("parse+check");
    group.throughput(Throughput::Elements(files.len() as u64));
    group.sample_size(20);
    group.bench_function("100 files", |b| b.iter(|| files.iter().map(|file| check(black_box(file))).sum::<usize>()));
    group.finish();
}

criterion_group!(benches, bench_large_file, bench_hundred_files);
criterion_main!(benches);
