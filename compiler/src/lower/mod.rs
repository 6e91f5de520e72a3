//! Lowering: a checked program (HIR) to an IR module plus the manifest that describes it.

mod func;
pub mod layout;

use ppis_lang::hir;
use ppis_manifest as manifest;

#[derive(Clone, Debug, Default)]
pub struct LowerOptions {
    /// Value of the `cpid` builtin (the `-c` child's pid); 0 when there is none.
    pub cpid: Option<u32>,
}

/// The result of lowering: the IR, each program's object section, and the manifest.
#[derive(Clone, Debug)]
pub struct Lowered {
    pub module: ppis_ir::Module,
    /// ELF section of each function, e.g. `tracepoint/probe0`.
    pub sections: Vec<String>,
    pub manifest: manifest::Manifest,
}

pub fn lower(program: &hir::Program, source: &str, opts: &LowerOptions) -> Lowered {
    let layouts: Vec<layout::MapLayout> = program.maps.iter().map(layout::layout).collect();
    let mut module =
        ppis_ir::Module { maps: layouts.iter().map(|l| l.kernel.clone()).collect(), functions: Vec::new() };
    let mut sections = Vec::new();
    let mut probes = Vec::new();
    for (i, probe) in program.probes.iter().enumerate() {
        let name = format!("probe{i}");
        let (kind, attach) = match &probe.attach {
            hir::Attach::Tracepoint { category, name, .. } => {
                ("tracepoint", manifest::Attach::Tracepoint { category: category.clone(), name: name.clone() })
            }
            hir::Attach::Uprobe { path, symbol, .. } => {
                ("uprobe", manifest::Attach::Uprobe { path: path.clone(), symbol: symbol.clone() })
            }
            hir::Attach::Uretprobe { path, symbol, .. } => {
                ("uretprobe", manifest::Attach::Uretprobe { path: path.clone(), symbol: symbol.clone() })
            }
        };
        sections.push(format!("{kind}/{name}"));
        probes.push(manifest::ProbeInfo {
            program: name.clone(),
            attach,
            rate_per_sec: probe.rate,
            line: line_of(source, probe.span.start as usize),
        });
        module.functions.push(func::FnLowerer::lower(name, probe, &layouts, &program.maps, opts));
    }
    let manifest = manifest::Manifest {
        version: manifest::MANIFEST_VERSION,
        budget_percent: program.budget_percent,
        probes,
        maps: layouts.into_iter().map(|l| l.info).collect(),
    };
    Lowered { module, sections, manifest }
}

/// 1-based line number of a byte offset.
fn line_of(source: &str, offset: usize) -> u32 {
    source.as_bytes()[..offset.min(source.len())].iter().filter(|b| **b == b'\n').count() as u32 + 1
}
