//! The standard library compiled into `ppisc` (`modules::EMBEDDED_STDLIB`) is exactly the
//! `stdlib/` directory, and the loader's search order falls back to it.

use ppis_compiler::modules::{source_tree_stdlib, StdlibLoader, EMBEDDED_STDLIB};
use ppis_lang::modules::ModuleLoader;
use std::path::Path;

fn modules_under(dir: &Path, prefix: &str, out: &mut Vec<(String, String)>) {
    for entry in std::fs::read_dir(dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display())) {
        let path = entry.expect("readable entry").path();
        let stem = path.file_stem().and_then(|s| s.to_str()).expect("UTF-8 names").to_string();
        if path.is_dir() {
            modules_under(&path, &format!("{prefix}::{stem}"), out);
        } else if path.extension().is_some_and(|e| e == "ppl") {
            out.push((format!("{prefix}::{stem}"), std::fs::read_to_string(&path).expect("readable module")));
        }
    }
}

#[test]
fn embedded_table_is_the_stdlib_directory() {
    let mut on_disk = Vec::new();
    modules_under(&source_tree_stdlib(), "stdlib", &mut on_disk);
    on_disk.sort();
    let mut embedded: Vec<(String, String)> =
        EMBEDDED_STDLIB.iter().map(|(path, text)| (path.to_string(), text.to_string())).collect();
    embedded.sort();
    let names = |v: &[(String, String)]| v.iter().map(|(n, _)| n.clone()).collect::<Vec<_>>();
    assert_eq!(names(&embedded), names(&on_disk), "add every stdlib/ file to EMBEDDED_STDLIB (and only those)");
    assert_eq!(embedded, on_disk);
}

#[test]
fn loader_prefers_directories_then_falls_back_to_the_embedded_copy() {
    let dir = std::env::temp_dir().join(format!("ppis-stdlib-loader-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(dir.join("syscalls")).unwrap();
    std::fs::write(dir.join("syscalls/count.ppl"), "// a local copy\n").unwrap();
    let path = |p: &str| p.split("::").map(str::to_string).collect::<Vec<_>>();

    let loader = StdlibLoader { dirs: vec![dir.clone()], embedded: true };
    let local = loader.load(&path("stdlib::syscalls::count")).expect("found in the directory");
    assert_eq!(local.text, "// a local copy\n");
    assert!(local.name.ends_with("syscalls/count.ppl") && local.name.starts_with(dir.to_str().unwrap()));
    // Not in the directory: the compiled-in copy.
    let embedded = loader.load(&path("stdlib::syscalls::latency")).expect("found compiled in");
    assert!(embedded.name.starts_with("<ppisc>/"), "{}", embedded.name);
    assert!(embedded.text.contains("syscall_latency_ns"));

    let nowhere = StdlibLoader { dirs: vec![dir.clone()], embedded: false };
    let error = nowhere.load(&path("stdlib::syscalls::latency")).expect_err("not in the directory");
    assert!(error.message.contains("syscalls/latency.ppl"), "{}", error.message);
    let typo = loader.load(&path("stdlib::syscalls::cuont")).expect_err("no such module");
    assert_eq!(typo.suggestions.first().map(String::as_str), Some("stdlib::syscalls::count"));
    for bad in ["syscalls::count", "stdlib", "stdlib::..::etc", "stdlib::a/b"] {
        assert!(loader.load(&path(bad)).is_err(), "{bad} must not load");
    }
    let _ = std::fs::remove_dir_all(&dir);
}
