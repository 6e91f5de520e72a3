//! USDT probes against the kernel: the workload's `ppis:fire` probe (two sites, `.note.stapsdt`
//! notes written with inline assembly, whose arguments sit in different registers) fires exactly
//! N times, each site through its own program, and its three arguments (a register, a constant
//! and a word in memory at a register plus an offset) read back exactly. The workload's
//! `ppis:guarded` probe fires only while its semaphore is set: attached (by `ppisc run` or by a
//! signed bundle under `ppisd`, one loader), the kernel sets it, every fire counts, and once the
//! probe is gone the semaphore is clear again.

use object::{Object, ObjectSection, ObjectSymbol};
use ppis_tests::{child_command, map_number, parse_maps, require_kernel, run_ppisc, scratch_dir, workload, write_file};

const FIRES: u64 = 500;
/// How many times `usdt-guarded` checks its semaphore (and fires, when it is set).
const GUARDED_FIRES: u64 = 300;

/// The tests that attach to `ppis:guarded` or read its semaphore take turns: a probe on the
/// site is system-wide, so one test's probe would set the semaphore in another test's workload
/// and count its fires.
static GUARDED_SITE: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn guarded_site_turn() -> std::sync::MutexGuard<'static, ()> {
    GUARDED_SITE.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

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
fn a_usdt_probe_guarded_by_a_semaphore_is_enabled_by_the_kernel_and_counts_every_fire() {
    let _turn = guarded_site_turn();
    if !require_kernel("a_usdt_probe_guarded_by_a_semaphore_is_enabled_by_the_kernel_and_counts_every_fire") {
        return;
    }
    let dir = scratch_dir(env!("CARGO_TARGET_TMPDIR"), "usdt_guarded");
    let workload = workload(env!("CARGO_BIN_EXE_ppis-workload"));
    let target = workload.display();
    let probe = write_file(
        &dir,
        "guarded.ppl",
        format!(
            "map fires: count;\n\
             map values: sum;\n\
             probe usdt:{target}:ppis:guarded rate <= 1k/s {{\n    \
                 fires.inc();\n    \
                 values.add(arg0);\n\
             }}\n"
        ),
    );
    let child = child_command(&workload, &["usdt-guarded", &GUARDED_FIRES.to_string()]);
    let outcome = run_ppisc(&dir, ["run", &probe.to_string_lossy(), "--format", "json", "-c", &child]);
    outcome.assert_success();
    let maps = parse_maps(&outcome);
    // The workload fires only while the semaphore is non-zero: every check saw it set (the
    // kernel counted it when the workload mapped its binary, before its first instruction).
    assert_eq!(map_number(&maps, "fires"), GUARDED_FIRES, "{}", outcome.transcript());
    assert_eq!(map_number(&maps, "values"), GUARDED_FIRES * (GUARDED_FIRES + 1) / 2, "{}", outcome.transcript());
    let workload_line = format!(
        "guarded_fires={GUARDED_FIRES} guarded_sum_values={} semaphore_seen=1",
        GUARDED_FIRES * (GUARDED_FIRES + 1) / 2
    );
    assert!(outcome.stdout.contains(&workload_line), "{}", outcome.transcript());
}

#[test]
fn without_a_tracer_the_guarded_site_never_fires() {
    // The other half of the guarded test: the semaphore, not the probe, decides the count.
    let _turn = guarded_site_turn();
    let workload = workload(env!("CARGO_BIN_EXE_ppis-workload"));
    let output = std::process::Command::new(&workload).args(["usdt-guarded", "10"]).output().unwrap();
    assert!(output.status.success(), "{output:?}");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert_eq!(stdout.trim(), "guarded_fires=0 guarded_sum_values=0 semaphore_seen=0");
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

#[test]
fn the_runtime_finds_the_guarded_sites_semaphore_in_the_file() {
    let workload = workload(env!("CARGO_BIN_EXE_ppis-workload"));
    let sites = ppis_runtime::usdt::sites(&workload).expect("the workload is an ELF file");
    let guarded: Vec<_> =
        sites.iter().filter(|site| (site.provider.as_str(), site.name.as_str()) == ("ppis", "guarded")).collect();
    assert_eq!(guarded.len(), 1, "{sites:?}");
    let site = guarded[0];
    assert_eq!(site.args, "8@%rdi");
    let bytes = std::fs::read(&workload).unwrap();
    let file = object::File::parse(&*bytes).unwrap();
    // The note names the static the workload reads.
    let symbol = file.symbols().find(|symbol| symbol.name() == Ok("ppis_guarded_semaphore")).expect("the semaphore");
    assert_eq!(site.semaphore, symbol.address());
    // `.probes` is PROGBITS: the semaphore has bytes in the file (0: no tracer), and the
    // offset the kernel gets is theirs.
    let section = file.section_by_name(".probes").expect("the semaphore's section");
    let (section_offset, section_size) = section.file_range().expect(".probes has bytes in the file");
    let offset = site.semaphore_offset.clone().expect("a semaphore").expect("the kernel can set it");
    assert_eq!(offset, section_offset + (site.semaphore - section.address()));
    assert!(offset + 2 <= section_offset + section_size);
    assert_eq!(&bytes[offset as usize..offset as usize + 2], &[0, 0]);
    assert_eq!(ppis_runtime::usdt::semaphore_offset(&workload, site.semaphore), Ok(offset));
    let offsets = ppis_runtime::usdt::attach_offsets(&workload, "ppis", "guarded", site.address).unwrap();
    assert_eq!(offsets.semaphore, Some(offset));
    assert_eq!(bytes[offsets.site as usize], 0x90, "the site is a nop");
}

#[test]
fn a_semaphore_the_kernel_cannot_count_is_refused_with_the_reason() {
    let workload = workload(env!("CARGO_BIN_EXE_ppis-workload"));
    let bytes = std::fs::read(&workload).unwrap();
    let file = object::File::parse(&*bytes).unwrap();
    let address_of = |name: &str| file.section_by_name(name).unwrap_or_else(|| panic!("no {name}")).address();
    let refusal = |address: u64| ppis_runtime::usdt::semaphore_offset(&workload, address).unwrap_err();
    assert!(refusal(address_of(".text")).contains("read-only section `.text`"), "{}", refusal(address_of(".text")));
    assert!(refusal(address_of(".bss")).contains("no bytes in the file"), "{}", refusal(address_of(".bss")));
    assert!(refusal(address_of(".data") + 1).contains("not 2-byte aligned"), "{}", refusal(address_of(".data") + 1));
    assert!(refusal(u64::MAX - 1).contains("in no section"), "{}", refusal(u64::MAX - 1));
}

/// `ppisd` next to `ppisc` in the target directory, (re)built like `ppisc` is.
fn ppisd() -> std::path::PathBuf {
    let ppisc = ppis_tests::ppisc();
    let profile_dir = ppisc.parent().expect("ppisc is in a profile directory").to_path_buf();
    let profile = match profile_dir.file_name().and_then(|name| name.to_str()) {
        Some("debug") | None => "dev".to_string(),
        Some(other) => other.to_string(),
    };
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let mut build = std::process::Command::new(cargo);
    build.current_dir(env!("CARGO_MANIFEST_DIR")).args(["build", "--quiet", "-p", "ppisd", "--bin", "ppisd"]);
    build.args(["--profile", &profile]);
    if let Some(target_dir) = profile_dir.parent() {
        build.arg("--target-dir").arg(target_dir);
    }
    let output = build.output().expect("cargo runs");
    assert!(output.status.success(), "cannot build ppisd:\n{}", String::from_utf8_lossy(&output.stderr));
    profile_dir.join("ppisd")
}

/// The `/metrics` page of a daemon listening on `address`; empty while it does not answer.
fn scrape(address: &str) -> String {
    use std::io::{Read, Write};
    let Ok(mut stream) = std::net::TcpStream::connect(address) else { return String::new() };
    let _ = write!(stream, "GET /metrics HTTP/1.1\r\nHost: ppisd\r\n\r\n");
    let mut response = String::new();
    let _ = stream.read_to_string(&mut response);
    response
}

/// Runs the workload's `usdt-guarded` directly (not under `ppisc run`): its output line.
fn run_guarded_workload(workload: &std::path::Path, count: u64) -> String {
    let output = std::process::Command::new(workload).args(["usdt-guarded", &count.to_string()]).output().unwrap();
    assert!(output.status.success(), "{output:?}");
    String::from_utf8_lossy(&output.stdout).trim().to_string()
}

#[test]
fn a_signed_bundle_with_a_guarded_usdt_probe_runs_under_ppisd_and_clears_the_semaphore_on_shutdown() {
    let _turn = guarded_site_turn();
    if !require_kernel(
        "a_signed_bundle_with_a_guarded_usdt_probe_runs_under_ppisd_and_clears_the_semaphore_on_shutdown",
    ) {
        return;
    }
    let dir = scratch_dir(env!("CARGO_TARGET_TMPDIR"), "usdt_guarded_ppisd");
    let workload = workload(env!("CARGO_BIN_EXE_ppis-workload"));
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let profile = root.join("profiles/reference.json").canonicalize().expect("the reference profile");
    let keygen = run_ppisc(&dir, ["keygen", "-o", "key"]);
    keygen.assert_success();
    let source = write_file(
        &dir,
        "guarded.ppl",
        format!(
            "//! Counts the workload's semaphore-guarded USDT probe.\nmap fires: count;\n\
             probe usdt:{}:ppis:guarded rate <= 1k/s {{\n    fires.inc();\n}}\n",
            workload.display()
        ),
    );
    std::fs::create_dir_all(dir.join("bundles")).unwrap();
    let build = run_ppisc(
        &dir,
        [
            "--profile",
            &profile.to_string_lossy(),
            "build",
            &source.to_string_lossy(),
            "-o",
            "bundles/guarded.ppb",
            "--key",
            "key",
        ],
    );
    build.assert_success();
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let address = format!("127.0.0.1:{port}");
    write_file(
        &dir,
        "ppisd.toml",
        format!(
            "trusted_keys = [\"key.pub\"]\nbundle_dir = \"bundles\"\naudit_log = \"audit.log\"\n\
             cost_profile = \"{}\"\nmetrics_listen = \"{address}\"\n",
            profile.display()
        ),
    );
    /// Kills the daemon whatever happens below; a clean stop is part of the test.
    struct KillOnDrop(std::process::Child);
    impl Drop for KillOnDrop {
        fn drop(&mut self) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
    let mut daemon = KillOnDrop(
        std::process::Command::new(ppisd())
            .current_dir(&dir)
            .args(["run", "--config", "ppisd.toml"])
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("ppisd starts"),
    );
    let metric = "ppis_map_guarded_fires_total ";
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    let value_of = |metrics: &str| {
        metrics
            .lines()
            .find(|line| line.starts_with(metric))
            .and_then(|line| line.rsplit(' ').next()?.parse::<f64>().ok())
    };
    while value_of(&scrape(&address)).is_none() {
        if let Some(status) = daemon.0.try_wait().unwrap() {
            panic!("ppisd exited with {status} before loading the bundle");
        }
        assert!(std::time::Instant::now() < deadline, "ppisd never exported {metric}: {}", scrape(&address));
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    let sum = GUARDED_FIRES * (GUARDED_FIRES + 1) / 2;
    // Attached by the daemon, the kernel sets the semaphore in a process started afterwards.
    assert_eq!(
        run_guarded_workload(&workload, GUARDED_FIRES),
        format!("guarded_fires={GUARDED_FIRES} guarded_sum_values={sum} semaphore_seen=1")
    );
    let counted = loop {
        let value = value_of(&scrape(&address));
        if value == Some(GUARDED_FIRES as f64) || std::time::Instant::now() > deadline {
            break value;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    };
    assert_eq!(counted, Some(GUARDED_FIRES as f64), "{}", scrape(&address));
    // SAFETY: plain kill(2) on our own child: a clean shutdown detaches everything.
    unsafe { libc::kill(daemon.0.id() as libc::pid_t, libc::SIGTERM) };
    let status = daemon.0.wait().unwrap();
    assert!(status.success(), "ppisd exited with {status}");
    // With the daemon gone, nothing holds the uprobe: the semaphore stays clear.
    assert_eq!(run_guarded_workload(&workload, 10), "guarded_fires=0 guarded_sum_values=0 semaphore_seen=0");
}

#[test]
fn a_process_already_running_gets_its_semaphore_set_while_the_probe_is_attached_and_cleared_after() {
    let _turn = guarded_site_turn();
    if !require_kernel("a_process_already_running_gets_its_semaphore_set_while_the_probe_is_attached_and_cleared_after")
    {
        return;
    }
    use std::io::BufRead;
    let dir = scratch_dir(env!("CARGO_TARGET_TMPDIR"), "usdt_guarded_running");
    let workload = workload(env!("CARGO_BIN_EXE_ppis-workload"));
    let probe = write_file(
        &dir,
        "guarded.ppl",
        format!(
            "map fires: count;\nprobe usdt:{}:ppis:guarded rate <= 2k/s {{\n    fires.inc();\n}}\n",
            workload.display()
        ),
    );
    // Build ppisc (if it must be) before the workload's clock starts.
    ppis_tests::ppisc();
    let mut watcher = std::process::Command::new(&workload)
        .args(["usdt-guarded-watch", "6000"])
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("the workload starts");
    let mut lines = std::io::BufReader::new(watcher.stdout.take().unwrap()).lines();
    assert_eq!(lines.next().transpose().unwrap().as_deref(), Some("watching"));
    // Attached after the workload mapped its binary: the kernel sets the semaphore in the
    // running process too, and clears it when the run ends.
    let outcome = run_ppisc(&dir, ["run", &probe.to_string_lossy(), "--format", "json", "--for", "1s"]);
    let status = watcher.wait().unwrap();
    outcome.assert_success();
    assert!(status.success(), "{status}");
    let report = lines.next().transpose().unwrap().unwrap_or_default();
    let field = |name: &str| -> u64 {
        report
            .split(' ')
            .find_map(|pair| pair.strip_prefix(name)?.strip_prefix('=')?.parse().ok())
            .unwrap_or_else(|| panic!("no {name} in {report:?}"))
    };
    assert_eq!(field("semaphore_seen"), 1, "{report}\n{}", outcome.transcript());
    assert_eq!(field("semaphore_at_end"), 0, "the semaphore must be cleared on detach: {report}");
    let (fired, counted) = (field("guarded_fires"), map_number(&parse_maps(&outcome), "fires"));
    // About one fire per millisecond while the probe was attached (a second). The semaphore is
    // set from when the kernel registers the uprobe, a moment before the program is linked to
    // it, until the kernel has unregistered it, some milliseconds after the program was
    // unlinked (measured: ~1% of this run's fires): fires in those gaps are not counted. So:
    // never more counts than fires, and nearly all of them.
    assert!(fired > 100, "{report}");
    assert!(
        counted <= fired && counted >= fired - fired / 10,
        "counted {counted} of {fired} fires\n{}",
        outcome.transcript()
    );
}
