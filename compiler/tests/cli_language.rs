//! `ppisc build` of newer language features end to end (no kernel needed): several attach
//! points on one probe become several programs, and `?:` compiles and passes the verifier.

mod cli_support;

use object::{Object, ObjectSection};
use std::path::Path;

use cli_support::{assert_ok, ppisc, s, tempdir};

/// Program section names and the manifest of a built object.
fn programs_and_manifest(object_path: &Path) -> (Vec<String>, ppis_manifest::Manifest) {
    let bytes = std::fs::read(object_path).unwrap();
    let file = object::File::parse(&*bytes).unwrap();
    let programs = file
        .sections()
        .filter(|section| section.kind() == object::SectionKind::Text)
        .map(|section| section.name().unwrap().to_string())
        .collect();
    let manifest = file.section_by_name(".ppis.manifest").expect("manifest section");
    let manifest = ppis_manifest::Manifest::from_json(std::str::from_utf8(manifest.data().unwrap()).unwrap()).unwrap();
    (programs, manifest)
}

// Uprobes resolve against ELF files, so this needs no tracefs.
const MULTI_ATTACH: &str = "map n: count[u32] max 64;\n\
probe uprobe:/bin/bash:readline, uretprobe:/bin/bash:readline rate <= 10/s when pid != 0 {\n\
    n[pid == 1 ? 0 : 1].inc();\n\
}\n";

#[test]
fn several_attach_points_build_one_program_each() {
    let dir = tempdir("language-multi");
    let src = dir.join("multi.ppl");
    std::fs::write(&src, MULTI_ATTACH).unwrap();
    let object_path = dir.join("multi.o");
    assert_ok(&ppisc(&["build", s(&src), "-o", s(&object_path)]), "build");
    let (programs, manifest) = programs_and_manifest(&object_path);
    assert_eq!(programs, ["uprobe/probe0", "uretprobe/probe1"]);
    let attach: Vec<String> = manifest.probes.iter().map(|probe| probe.attach.to_string()).collect();
    assert_eq!(attach, ["uprobe:/bin/bash:readline", "uretprobe:/bin/bash:readline"]);
    assert!(manifest.probes.iter().all(|probe| probe.rate_per_sec == Some(10) && probe.line == 2));
}
