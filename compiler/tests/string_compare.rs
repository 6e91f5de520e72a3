//! The word-at-a-time lowering of `comm == "..."` keeps C-string semantics: for every constant
//! length around the 8-byte word boundaries and many `comm` values (equal, prefixes, longer
//! names, a difference at each byte, bytes after the NUL, no NUL at all), the lowered probe run
//! by the verifier's reference interpreter takes the branch exactly when the two strings are
//! equal as C strings over the 16 bytes of `comm`.

#[path = "../../lang/tests/common/mod.rs"]
mod common;

use ppis_compiler::lower::{lower, LowerOptions};
use ppis_manifest::profile::CostProfile;
use ppis_verifier::interp::{run, Env, MapState};

/// C-string equality of `comm` (16 bytes, maybe without a NUL) and `target`.
fn c_string_equal(comm: &[u8; 16], target: &[u8]) -> bool {
    let end = comm.iter().position(|&b| b == 0).unwrap_or(16);
    &comm[..end] == target
}

/// `comm` values worth comparing with `target`.
fn comms_for(target: &[u8]) -> Vec<[u8; 16]> {
    let mut out = Vec::new();
    let padded = |bytes: &[u8]| {
        let mut comm = [0u8; 16];
        let n = bytes.len().min(16);
        comm[..n].copy_from_slice(&bytes[..n]);
        comm
    };
    out.push(padded(target));
    // Garbage after the NUL must not matter.
    let mut garbage = padded(target);
    for byte in garbage.iter_mut().skip(target.len() + 1) {
        *byte = 0xa5;
    }
    out.push(garbage);
    for cut in 0..target.len() {
        out.push(padded(&target[..cut]));
    }
    for extra in [&b"x"[..], b"xxxxxxxx", b"\x80", b"\x01\x01"] {
        out.push(padded(&[target, extra].concat()));
    }
    for at in 0..target.len() {
        for delta in [1u8, 0x80, 0xff] {
            let mut changed = padded(target);
            changed[at] = changed[at].wrapping_add(delta);
            out.push(changed);
        }
    }
    out.push([b'q'; 16]);
    out.push([0xff; 16]);
    out.push([0u8; 16]);
    out
}

#[test]
fn word_compares_agree_with_c_string_equality() {
    let profile = CostProfile::reference();
    let mut checked = 0;
    // Every length around the word boundaries, and UTF-8 (bytes >= 0x80, the word trick's
    // borrow cases) at and across them.
    let mut targets: Vec<String> = (0..=15u8).map(|len| (0..len).map(|i| char::from(b'a' + i)).collect()).collect();
    targets.extend(["é", "ééé", "éééé", "aéééé", "aaaaaaaé", "ééééééé", "aéééééé"].map(String::from));
    for text in &targets {
        let target = text.as_bytes();
        assert!(target.len() <= 15, "{text} is longer than comm");
        for (op, want_equal) in [("==", true), ("!=", false)] {
            let source = format!(
                "map hits: count[u64] max 1;\n\
                 probe tracepoint:raw_syscalls:sys_enter rate <= 1/s when comm {op} \"{text}\" {{ hits[0].inc(); }}\n"
            );
            let (program, diags) =
                ppis_lang::check_source(&source, &common::FakeTargets, &ppis_lang::CheckOptions::default());
            let program = program.unwrap_or_else(|| panic!("{source}\n{diags:?}"));
            let lowered = lower(&program, &source, &LowerOptions::default());
            let module = &lowered.module;
            let func = &module.functions[0];
            for comm in comms_for(target) {
                let mut state = MapState::new(&module.maps);
                let env = Env { comm, ..Env::default() };
                let ctx = [0u8; 64];
                run(func, &module.maps, &profile, &ctx, &mut state, &env)
                    .unwrap_or_else(|fault| panic!("{source}: comm {comm:?} faults: {fault:?}"));
                let fired = !state.is_empty() && state.len(0) > 0;
                let equal = c_string_equal(&comm, target);
                assert_eq!(fired, equal == want_equal, "comm {comm:?} {op} {target:?}");
                checked += 1;
            }
        }
    }
    assert!(checked > 1000, "only {checked} cases");
}
