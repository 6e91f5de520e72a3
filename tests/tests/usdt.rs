//! USDT probes against the kernel: the workload's `ppis:fire` probe (two sites, `.note.stapsdt`
//! notes written with inline assembly, whose arguments sit in different registers) fires exactly
//! N times, each site through its own program, and its three arguments (a register, a constant
//! and a word in memory at a register plus an offset) read back exactly.

use ppis_tests::{child_command, map_number, parse_maps, require_kernel, run_ppisc, scratch_dir, workload, write_file};

const FIRES: u64 = 500;

#[test]
fn a_usdt_probe_counts_every_fire_and_reads_register_constant_and_memory_arguments() {
    if !require_kernel("a_usdt_probe_counts_every_fire_and_reads_register_constant_and_memory_arguments") {
        return;
    }
    let dir = scratch_dir(env!("CARGO_TARGET_TMPDIR"), "usdt_fire");
    let workload = workload(env!("CARGO_BIN_EXE_ppis-workload"));
    let target = workload.display();
    let probe = write_file(
        &dir,
        "usdt.ppl",
        format!(
            "map fires: count;\n\
             map values: sum;\n\
             map constants: sum;\n\
             map seconds: sum;\n\
             probe usdt:{target}:ppis:fire rate <= 1k/s {{\n    \
                 fires.inc();\n    \
                 values.add(arg0);\n    \
                 constants.add(arg1);\n    \
                 seconds.add(arg2);\n\
             }}\n"
        ),
    );
    let child = child_command(&workload, &["usdt", &FIRES.to_string()]);
    let outcome = run_ppisc(&dir, ["run", &probe.to_string_lossy(), "--format", "json", "-c", &child]);
    outcome.assert_success();
    // One program per site: their arguments are in different registers.
    assert!(outcome.stderr.contains("Attached 2 probes"), "{}", outcome.transcript());
    let maps = parse_maps(&outcome);
    let sum_values = FIRES * (FIRES + 1) / 2;
    assert_eq!(map_number(&maps, "fires"), FIRES, "{}", outcome.transcript());
    // arg0: `8@%rdi`, the value 1..=FIRES.
    assert_eq!(map_number(&maps, "values"), sum_values, "{}", outcome.transcript());
    // arg1: `-4@$-3`, a signed constant.
    assert_eq!(maps["constants"].as_i64(), Some(-3 * FIRES as i64), "{}", outcome.transcript());
    // arg2: `8@8(%rsi)`, the second word of the pair, 10 × value.
    assert_eq!(map_number(&maps, "seconds"), 10 * sum_values, "{}", outcome.transcript());
    let workload_line = format!("usdt_fires={FIRES} sum_values={sum_values} sum_seconds={}", 10 * sum_values);
    assert!(
        !outcome.stdout.contains("usdt_fires=") || outcome.stdout.contains(&workload_line),
        "{}",
        outcome.transcript()
    );
}

#[test]
fn the_runtime_finds_the_workloads_usdt_site_in_its_notes() {
    let workload = workload(env!("CARGO_BIN_EXE_ppis-workload"));
    let sites = ppis_runtime::usdt::sites(&workload).expect("the workload is an ELF file");
    let fire: Vec<_> =
        sites.iter().filter(|site| (site.provider.as_str(), site.name.as_str()) == ("ppis", "fire")).collect();
    assert_eq!(fire.len(), 2, "{sites:?}");
    let args: Vec<&str> = fire.iter().map(|site| site.args.as_str()).collect();
    assert_eq!(args, ["8@%rdi -4@$-3 8@8(%rsi)", "8@%rsi -4@$-3 8@8(%rdi)"]);
    assert!(fire.iter().all(|site| site.semaphore == 0));
    let offset = ppis_runtime::usdt::file_offset(&workload, fire[0].address).expect("the site is in .text");
    // The site is `ppis_usdt_fire`'s `nop`: 0x90 in the file at that offset.
    let bytes = std::fs::read(&workload).unwrap();
    assert_eq!(bytes[offset as usize], 0x90);
}
