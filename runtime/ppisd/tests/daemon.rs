//! End-to-end tests of `ppisd`: real bundles built by `ppisc`, tampered by a "compromised build
//! host" that re-signs them with a trusted key (so only the proof check can catch them), the
//! audit-log CLI, and (as root) the daemon itself: loading, refusing, metrics, the overhead
//! breaker, clean shutdown with nothing left in the kernel, and a restart.

mod common;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::{exact_source, kernel_available, sample, scrape, Daemon, Fixture};
use object::{Object, ObjectSection, ObjectSymbol};
use ppis_bundle::{read_bundle, write_bundle, BundleContents, SigningKey, TrustList};

/// Kernel tests attach to shared tracepoints and count programs: one at a time.
static KERNEL: Mutex<()> = Mutex::new(());

const GETPID_SOURCE: &str = "//! Counts getpid calls.\nmap calls: count;\n\
    probe tracepoint:syscalls:sys_enter_getpid rate <= 1k/s { calls.inc(); }\n";

/// Re-signs `bundle` after `edit` changed its object's program code, with the certificate's
/// bytecode hash updated: what a compromised build host holding a trusted key could ship.
fn tamper(fixture: &Fixture, bundle: &Path, output_name: &str, edit: impl Fn(&mut [u8])) -> PathBuf {
    let key_text = std::fs::read(&fixture.key).unwrap();
    let key = SigningKey::from_key_file(&key_text).unwrap();
    let mut trust = TrustList::new();
    trust.add(key.public_key());
    let original = read_bundle(&std::fs::read(bundle).unwrap(), &trust).unwrap();
    let mut object = original.object.clone();
    let (start, end) = program_range(&object, "probe0");
    edit(&mut object[start..end]);
    let mut certificate: serde_json::Value = serde_json::from_slice(&original.certificate).unwrap();
    certificate["hashes"]["bytecode"] = format!("sha256:{}", ppis_bundle::sha256_hex(&object)).into();
    let contents = BundleContents {
        name: original.header.name.clone(),
        compiler_version: original.header.compiler_version.clone(),
        cost_profile_hash: original.header.cost_profile_hash.clone(),
        source_hash: original.header.source_hash.clone(),
        manifest: original.manifest.clone(),
        object,
        certificate: serde_json::to_vec_pretty(&certificate).unwrap(),
        extra: original.extra.clone(),
    };
    let path = fixture.dir.join(format!("{output_name}.ppb"));
    std::fs::write(&path, write_bundle(&contents, &key).unwrap()).unwrap();
    assert!(read_bundle(&std::fs::read(&path).unwrap(), &trust).is_ok(), "the tampered bundle is validly signed");
    path
}

/// Byte range of a program's code in the object file.
fn program_range(object: &[u8], program: &str) -> (usize, usize) {
    let file = object::File::parse(object).unwrap();
    let symbol = file.symbols().find(|s| s.name() == Ok(program)).unwrap();
    let section = file.section_by_index(symbol.section_index().unwrap()).unwrap();
    let (offset, _) = section.file_range().unwrap();
    let start = (offset + symbol.address()) as usize;
    (start, start + symbol.size() as usize)
}

/// Instruction slots of `code` whose opcode is `opcode`.
fn slots_with_opcode(code: &[u8], opcode: u8) -> Vec<usize> {
    code.chunks_exact(8).enumerate().filter(|(_, insn)| insn[0] == opcode).map(|(i, _)| i).collect()
}

/// Instruction slots of `code` that neither branch nor call nor exit, and are not part of a
/// 16-byte `ld_imm64` (a map reference: its relocation must stay): ALU, load and store
/// classes, so rewriting them keeps the control flow.
fn straight_line_slots(code: &[u8]) -> Vec<usize> {
    const CLASS_LDX: u8 = 0x01;
    const CLASS_ST: u8 = 0x02;
    const CLASS_STX: u8 = 0x03;
    const CLASS_ALU: u8 = 0x04;
    const CLASS_ALU64: u8 = 0x07;
    const LD_IMM64: u8 = 0x18;
    let mut slots = Vec::new();
    let mut index = 0;
    while index * 8 < code.len() {
        let opcode = code[index * 8];
        if opcode == LD_IMM64 {
            index += 2;
            continue;
        }
        if matches!(opcode & 0x07, CLASS_LDX | CLASS_ST | CLASS_STX | CLASS_ALU | CLASS_ALU64) {
            slots.push(index);
        }
        index += 1;
    }
    slots
}

#[test]
fn tampered_bundles_are_refused_by_the_proof_check() {
    let fixture = Fixture::new("tamper");
    let honest = fixture.build("exact", &exact_source("ppisd_exact"));
    let (ok, text) = fixture.check(&honest);
    assert!(ok, "{text}");
    assert!(text.contains("probe0: ") && text.contains("bytecode bound"), "{text}");

    // A helper call patched to bpf_probe_write_user (36).
    let write_user = tamper(&fixture, &honest, "write_user", |code| {
        let call = slots_with_opcode(code, 0x85)[0];
        code[call * 8 + 4..call * 8 + 8].copy_from_slice(&36i32.to_le_bytes());
    });
    let (ok, text) = fixture.check(&write_user);
    assert!(!ok);
    assert!(
        text.contains("refused: proof check failed: program probe0: insn") && text.contains("calls helper #36"),
        "{text}"
    );
    assert_eq!(text.lines().count(), 1, "one clear reason: {text}");

    // The final exit replaced by `ja -1`: a loop.
    let looping = tamper(&fixture, &honest, "looping", |code| {
        let exit = *slots_with_opcode(code, 0x95).last().unwrap();
        code[exit * 8..exit * 8 + 8].copy_from_slice(&[0x05, 0, 0xff, 0xff, 0, 0, 0, 0]);
    });
    let (ok, text) = fixture.check(&looping);
    assert!(!ok);
    assert!(text.contains("the bytecode has a loop"), "{text}");

    // Every straight-line instruction (moves, ALU, loads, stores: every program has them,
    // whatever the code generator's choices) turned into a costly helper call
    // (map_update_elem): the same control flow, many more nanoseconds.
    let costly_slots = std::cell::Cell::new(0);
    let costly = tamper(&fixture, &honest, "costly", |code| {
        let slots = straight_line_slots(code);
        costly_slots.set(slots.len());
        for slot in slots {
            code[slot * 8..slot * 8 + 8].copy_from_slice(&[0x85, 0, 0, 0, 2, 0, 0, 0]);
        }
    });
    // The tamper must have had something to rewrite, or the refusal below proves nothing.
    // (Each rewritten slot held no call before, so each one changed the code.)
    assert!(costly_slots.get() >= 8, "only {} instructions rewritten", costly_slots.get());
    let (ok, text) = fixture.check(&costly);
    assert!(!ok);
    assert!(text.contains("refused: proof check failed: program probe0: the bytecode costs up to"), "{text}");

    // Unchanged code but a certificate for other bytes: the hash does not match.
    let key = SigningKey::from_key_file(&std::fs::read(&fixture.key).unwrap()).unwrap();
    let mut trust = TrustList::new();
    trust.add(key.public_key());
    let original = read_bundle(&std::fs::read(&honest).unwrap(), &trust).unwrap();
    let mut object = original.object.clone();
    let (start, _) = program_range(&object, "probe0");
    object[start + 4] ^= 1;
    let contents = BundleContents {
        name: original.header.name.clone(),
        compiler_version: original.header.compiler_version.clone(),
        cost_profile_hash: original.header.cost_profile_hash.clone(),
        source_hash: original.header.source_hash.clone(),
        manifest: original.manifest.clone(),
        object,
        certificate: original.certificate.clone(),
        extra: original.extra.clone(),
    };
    let stale = fixture.dir.join("stale.ppb");
    std::fs::write(&stale, write_bundle(&contents, &key).unwrap()).unwrap();
    let (ok, text) = fixture.check(&stale);
    assert!(!ok);
    assert!(text.contains("the certificate is for bytecode sha256:"), "{text}");
}

/// A probe with a bounded loop: its bundle carries invariants (`invariants.json`) that the
/// proof check verifies, so `ppisd` accepts the back edge; without them it is refused.
#[test]
fn a_bundle_with_a_bounded_loop_passes_the_proof_check() {
    let fixture = Fixture::new("loop");
    let source = "//! Sums four slots per getpid call.\nmap slots: array[4] -> u64;\nmap total: sum;\n\
        probe tracepoint:syscalls:sys_enter_getpid rate <= 1k/s {\n    for i in 0..4 {\n        \
        total.add(slots[i] ?? 0);\n    }\n}\n";
    let bundle = fixture.build("looping_sum", source);
    let (ok, text) = fixture.check(&bundle);
    assert!(ok, "{text}");
    assert!(text.contains("probe0: ") && text.contains("bytecode bound"), "{text}");

    // The same bundle re-signed without its invariants: the loop has no certified bound.
    let key = SigningKey::from_key_file(&std::fs::read(&fixture.key).unwrap()).unwrap();
    let mut trust = TrustList::new();
    trust.add(key.public_key());
    let original = read_bundle(&std::fs::read(&bundle).unwrap(), &trust).unwrap();
    let mut extra = original.extra.clone();
    assert!(extra.remove(ppis_bundle::acc::INVARIANTS_ENTRY).is_some(), "ppisc ships invariants");
    let contents = BundleContents {
        name: original.header.name.clone(),
        compiler_version: original.header.compiler_version.clone(),
        cost_profile_hash: original.header.cost_profile_hash.clone(),
        source_hash: original.header.source_hash.clone(),
        manifest: original.manifest.clone(),
        object: original.object.clone(),
        certificate: original.certificate.clone(),
        extra,
    };
    let stripped = fixture.dir.join("stripped.ppb");
    std::fs::write(&stripped, write_bundle(&contents, &key).unwrap()).unwrap();
    let (ok, text) = fixture.check(&stripped);
    assert!(!ok);
    assert!(text.contains("the bytecode has a loop"), "{text}");
}

/// The daemon loads a loop bundle into the kernel, and the loop runs exactly its trips: each of
/// the workload's 100 getpgid calls counts 4 times.
#[test]
fn the_daemon_runs_a_loop_bundle_with_its_exact_trip_count() {
    let _serial = KERNEL.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
    if !kernel_available() {
        return;
    }
    let fixture = Fixture::new("daemon_loop");
    let pid = std::process::id();
    let source = format!(
        "//! Counts each getpgid call of one thread four times, in a loop.\nmap calls: count;\n\
         probe tracepoint:syscalls:sys_enter_getpgid rate <= 5k/s when comm == \"ppisd_loop\" && pid == {pid} {{\n\
         for _i in 0..4 {{\n        calls.inc();\n    }}\n}}\n"
    );
    let bundle = fixture.build("looping", &source);
    std::fs::copy(&bundle, fixture.dir.join("bundles").join("looping.ppb")).unwrap();
    let address = fixture.metrics_address();
    let daemon = Daemon::start(&fixture);
    assert!(daemon.wait_for_log("loaded looping", Duration::from_secs(10)), "{}", daemon.log());
    assert_eq!(bpf_ids_of("prog", daemon.child.id()).len(), 1, "{}", daemon.log());
    common::run_exact_workload("ppisd_loop", 100);
    std::thread::sleep(Duration::from_millis(1500));
    let metrics = scrape(&address);
    assert_eq!(sample(&metrics, "ppis_map_looping_calls_total "), Some(400.0), "{metrics}");
}

#[test]
fn audit_verify_detects_edits_drops_and_reorders() {
    let dir = std::env::temp_dir().join(format!("ppisd-test-{}-audit-cli", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let path = dir.join("audit.log");
    let (mut log, _) = ppisd::audit::AuditLog::open(&path).unwrap();
    for n in 0..4 {
        log.append("probe_attached", serde_json::json!({"probe": format!("probe{n}")})).unwrap();
    }
    let verify = |head: Option<&str>| {
        let mut command = Command::new(env!("CARGO_BIN_EXE_ppisd"));
        command.args(["audit", "verify"]).arg(&path);
        if let Some(head) = head {
            command.args(["--head", head]);
        }
        let out = command.output().unwrap();
        (out.status.success(), String::from_utf8_lossy(&out.stdout).into_owned())
    };
    let (ok, text) = verify(None);
    assert!(ok && text.contains("ok, 4 lines, head "), "{text}");
    let head = text.trim().rsplit(' ').next().unwrap().to_string();
    assert!(verify(Some(&head)).0);

    let lines: Vec<String> = std::fs::read_to_string(&path).unwrap().lines().map(String::from).collect();
    let write =
        |lines: &[String]| std::fs::write(&path, lines.iter().map(|l| format!("{l}\n")).collect::<String>()).unwrap();
    let mut edited = lines.clone();
    edited[1] = edited[1].replace("probe1", "probeX");
    write(&edited);
    let (ok, text) = verify(None);
    assert!(!ok && text.contains("line 3: the previous line's hash does not match"), "{text}");

    let mut dropped = lines.clone();
    dropped.remove(2);
    write(&dropped);
    let (ok, text) = verify(None);
    assert!(!ok && text.contains("line 3: sequence number Some(3), expected 2"), "{text}");

    let mut reordered = lines.clone();
    reordered.swap(0, 1);
    write(&reordered);
    assert!(!verify(None).0);

    // Editing the last line is caught only against a head recorded elsewhere.
    let mut last_edited = lines.clone();
    last_edited[3] = last_edited[3].replace("probe3", "probeY");
    write(&last_edited);
    let (ok, text) = verify(Some(&head));
    assert!(!ok && text.contains("not the expected head"), "{text}");
}

/// BPF object ids (`prog` or `map`) that process `pid` holds file descriptors of, from
/// `/proc/PID/fdinfo` (`prog_id:` / `map_id:` lines; link fds name their program too).
fn bpf_ids_of(kind: &str, pid: u32) -> BTreeSet<u64> {
    let field = format!("{kind}_id:");
    let mut ids = BTreeSet::new();
    for entry in std::fs::read_dir(format!("/proc/{pid}/fdinfo")).unwrap().flatten() {
        let Ok(text) = std::fs::read_to_string(entry.path()) else { continue };
        for line in text.lines() {
            if let Some(id) = line.strip_prefix(&field).and_then(|rest| rest.trim().parse().ok()) {
                ids.insert(id);
            }
        }
    }
    ids
}

fn all_bpf_ids(kind: &str) -> BTreeSet<u64> {
    let out = Command::new("bpftool").args(["-j", kind, "list"]).output().expect("bpftool is installed");
    let list: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap_or_default();
    list.as_array().into_iter().flatten().filter_map(|object| object["id"].as_u64()).collect()
}

fn audit_events(fixture: &Fixture) -> Vec<serde_json::Value> {
    std::fs::read_to_string(fixture.dir.join("audit.log"))
        .unwrap_or_default()
        .lines()
        .map(|line| serde_json::from_str(line).unwrap())
        .collect()
}

#[test]
fn the_daemon_loads_enforces_exports_and_cleans_up() {
    let _serial = KERNEL.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
    if !kernel_available() {
        return;
    }
    let fixture = Fixture::new("daemon");
    let exact = fixture.build("exact", &exact_source("ppisd_exact"));
    let getpid = fixture.build("getpid", GETPID_SOURCE);
    let bad = tamper(&fixture, &exact, "bad", |code| {
        let call = slots_with_opcode(code, 0x85)[0];
        code[call * 8 + 4..call * 8 + 8].copy_from_slice(&36i32.to_le_bytes());
    });
    let bundles = fixture.dir.join("bundles");
    std::fs::copy(&exact, bundles.join("exact.ppb")).unwrap();
    std::fs::copy(&bad, bundles.join("bad.ppb")).unwrap();
    let address = fixture.metrics_address();
    let programs_before = all_bpf_ids("prog");

    // 1. Start: the honest bundle runs, the tampered one is refused with one line.
    let daemon = Daemon::start(&fixture);
    assert!(daemon.wait_for_log("loaded exact", Duration::from_secs(10)), "{}", daemon.log());
    assert!(daemon.wait_for_log("refused", Duration::from_secs(5)), "{}", daemon.log());
    let refusals: Vec<String> = daemon.log().lines().filter(|l| l.contains("refused")).map(String::from).collect();
    assert_eq!(refusals.len(), 1, "{refusals:?}");
    assert!(refusals[0].contains("bad.ppb: proof check failed") && refusals[0].contains("helper #36"), "{refusals:?}");
    let pid = daemon.child.id();
    let ours = bpf_ids_of("prog", pid);
    assert_eq!(ours.len(), 1, "only the honest bundle's one program is loaded: {ours:?}");

    // 2. An exact workload, counted by the probe and exported.
    let calls = 300;
    std::thread::Builder::new()
        .name("ppisd_exact".into())
        .spawn(move || {
            for _ in 0..calls {
                // SAFETY: getpgid(0) only reads the caller's process group.
                unsafe { libc::getpgid(0) };
                std::thread::sleep(Duration::from_millis(1));
            }
        })
        .unwrap()
        .join()
        .unwrap();
    std::thread::sleep(Duration::from_millis(1500));
    let metrics = scrape(&address);
    assert_eq!(sample(&metrics, "ppis_map_exact_calls_total "), Some(f64::from(calls)), "{metrics}");
    assert_eq!(
        sample(&metrics, "ppis_map_exact_by_comm_total{key=\"ppisd_exact\"} "),
        Some(f64::from(calls)),
        "{metrics}"
    );
    assert_eq!(sample(&metrics, "ppis_probe_active{bundle=\"exact\",probe=\"probe0\"} "), Some(1.0), "{metrics}");
    assert!(
        sample(&metrics, "ppis_probe_events_total{bundle=\"exact\",probe=\"probe0\"} ").unwrap() >= f64::from(calls)
    );

    // 3. A bundle added while running, then a getpid storm far above its 1k/s: tripped
    // within 2 s, and its overhead falls back once it is detached.
    std::fs::copy(&getpid, bundles.join("getpid.ppb")).unwrap();
    assert!(daemon.wait_for_log("loaded getpid", Duration::from_secs(5)), "{}", daemon.log());
    let storm = Arc::new(AtomicBool::new(true));
    let running = Arc::clone(&storm);
    let storm_thread = std::thread::spawn(move || {
        while running.load(Ordering::Relaxed) {
            // SAFETY: a raw getpid syscall has no preconditions (glibc does not cache it).
            unsafe { libc::syscall(libc::SYS_getpid) };
        }
    });
    let storm_started = Instant::now();
    let tripped = daemon.wait_for_log("getpid: breaker tripped for probe probe0", Duration::from_secs(3));
    let trip_time = storm_started.elapsed();
    assert!(tripped, "{}", daemon.log());
    assert!(trip_time <= Duration::from_secs(2), "tripped after {trip_time:?}");
    std::thread::sleep(Duration::from_millis(1500));
    let metrics = scrape(&address);
    storm.store(false, Ordering::Relaxed);
    storm_thread.join().unwrap();
    assert_eq!(
        sample(&metrics, "ppis_probes_tripped_total{bundle=\"getpid\",probe=\"probe0\"} "),
        Some(1.0),
        "{metrics}"
    );
    assert_eq!(sample(&metrics, "ppis_probe_active{bundle=\"getpid\",probe=\"probe0\"} "), Some(0.0), "{metrics}");
    assert_eq!(
        sample(&metrics, "ppis_probe_overhead_ratio{bundle=\"getpid\",probe=\"probe0\"} "),
        Some(0.0),
        "{metrics}"
    );
    assert_eq!(sample(&metrics, "ppis_probe_active{bundle=\"exact\",probe=\"probe0\"} "), Some(1.0), "{metrics}");

    // 4. SIGTERM: nothing of ours is left in the kernel.
    let held_programs = bpf_ids_of("prog", pid);
    let held_maps = bpf_ids_of("map", pid);
    assert_eq!(held_programs.len(), 2, "{held_programs:?}");
    assert!(held_maps.len() >= 3, "{held_maps:?}");
    let log = daemon.stop();
    assert!(log.contains("stopped: every probe detached"), "{log}");
    let programs_after = all_bpf_ids("prog");
    let maps_after = all_bpf_ids("map");
    assert!(held_programs.is_disjoint(&programs_after), "programs left: {held_programs:?} in {programs_after:?}");
    assert!(held_maps.is_disjoint(&maps_after), "maps left: {held_maps:?} in {maps_after:?}");
    assert!(programs_before.is_disjoint(&held_programs));

    // 5. The audit log records it all and its chain holds.
    let events = audit_events(&fixture);
    let kinds: Vec<&str> = events.iter().map(|e| e["event"].as_str().unwrap()).collect();
    for expected in
        ["daemon_started", "bundle_accepted", "bundle_refused", "probe_attached", "breaker_tripped", "daemon_stopped"]
    {
        assert!(kinds.contains(&expected), "{expected} missing from {kinds:?}");
    }
    let trip = events.iter().find(|e| e["event"] == "breaker_tripped").unwrap();
    assert_eq!(trip["kind"], "rate");
    assert!(ppisd::audit::verify(&fixture.dir.join("audit.log")).is_ok());

    // 6. A restart reloads the same set and refuses the same bundle.
    let accepted_first: BTreeSet<String> = events
        .iter()
        .filter(|e| e["event"] == "bundle_accepted")
        .map(|e| e["sha256"].as_str().unwrap().to_string())
        .collect();
    let daemon = Daemon::start(&fixture);
    assert!(daemon.wait_for_log("loaded getpid", Duration::from_secs(10)), "{}", daemon.log());
    assert!(daemon.wait_for_log("loaded exact", Duration::from_secs(5)), "{}", daemon.log());
    assert!(daemon.wait_for_log("refused", Duration::from_secs(5)), "{}", daemon.log());
    daemon.stop();
    let events = audit_events(&fixture);
    let restart = events.iter().rposition(|e| e["event"] == "daemon_started").unwrap();
    let accepted_again: BTreeSet<String> = events[restart..]
        .iter()
        .filter(|e| e["event"] == "bundle_accepted")
        .map(|e| e["sha256"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(accepted_again, accepted_first);
    assert!(ppisd::audit::verify(&fixture.dir.join("audit.log")).is_ok());
}
