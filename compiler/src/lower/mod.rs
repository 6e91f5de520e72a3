//! Lowering: a checked program (HIR) to an IR module plus the manifest that describes it.

pub mod events;
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
    module.maps.extend(layout::stack_maps(&program.maps).into_iter().map(|(_, _, map)| map));
    // The hidden maps of `emit`/`print` come right after the stack maps: see `hidden_map_ids`.
    let mut record_ids = events::RecordIds::default();
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
            hir::Attach::Usdt { path, provider, name, address, .. } => (
                "uprobe",
                manifest::Attach::Usdt {
                    path: path.clone(),
                    provider: provider.clone(),
                    name: name.clone(),
                    address: *address,
                },
            ),
            hir::Attach::Uretprobe { path, symbol, .. } => {
                ("uretprobe", manifest::Attach::Uretprobe { path: path.clone(), symbol: symbol.clone() })
            }
            hir::Attach::RawTracepoint { name, .. } => {
                ("raw_tracepoint", manifest::Attach::RawTracepoint { name: name.clone() })
            }
            hir::Attach::Profile { hz, .. } => ("perf_event", manifest::Attach::Profile { hz: *hz }),
            hir::Attach::Interval { period_ms, .. } => {
                ("perf_event", manifest::Attach::Interval { period_ms: *period_ms })
            }
            // Run once through BPF_PROG_TEST_RUN, which raw tracepoint programs support.
            hir::Attach::Begin { .. } => ("raw_tracepoint", manifest::Attach::Begin),
            hir::Attach::End { .. } => ("raw_tracepoint", manifest::Attach::End),
        };
        sections.push(format!("{kind}/{name}"));
        probes.push(manifest::ProbeInfo {
            program: name.clone(),
            attach,
            rate_per_sec: probe.rate,
            line: line_of(source, probe.span.start as usize),
            activation: probe.activation.as_ref().map(|rule| manifest::Activation {
                signal: rule.signal.clone(),
                threshold: rule.threshold,
                for_seconds: rule.for_seconds,
            }),
        });
        let probe = record_ids.number(i, probe);
        module.functions.push(func::FnLowerer::lower(name, &probe, &layouts, &program.maps, opts));
    }
    let manifest = manifest::Manifest {
        version: manifest::MANIFEST_VERSION,
        budget_percent: program.budget_percent,
        probes,
        maps: layouts.into_iter().map(|l| l.info).collect(),
        events: (!record_ids.is_empty()).then(|| record_ids.manifest(&program.events, |probe| format!("probe{probe}"))),
    };
    if !record_ids.is_empty() {
        debug_assert_eq!(module.maps.len(), events::hidden_map_ids(&program.maps).0);
        module.maps.extend(events::hidden_maps());
    }
    Lowered { module, sections, manifest }
}

/// 1-based line number of a byte offset.
fn line_of(source: &str, offset: usize) -> u32 {
    source.as_bytes()[..offset.min(source.len())].iter().filter(|b| **b == b'\n').count() as u32 + 1
}
