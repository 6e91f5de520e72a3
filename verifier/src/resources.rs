//! Resource limits: instruction count and stack use against the kernel's limits.

use crate::cost::CostGraph;
use crate::termination::BoundedLoop;
use crate::FunctionFacts;
use ppis_ir::Function;
use ppis_lang::Diagnostic;

/// The classic per-program limit; the kernel allows more to privileged loaders, but staying
/// under it keeps verification fast and probes cheap.
pub const MAX_INSTRUCTIONS: usize = 4096;
/// The eBPF stack is 512 bytes.
pub const MAX_STACK_BYTES: u32 = 512;
/// Most instructions one event may execute, loops run at their bounds: the kernel verifier
/// walks every loop iteration and gives up after a million instructions in all, so probes
/// stay well below that.
pub const MAX_EXECUTED_INSTRUCTIONS: usize = 100_000;

pub fn instruction_count(func: &Function) -> usize {
    func.cfg.node_weights().map(|b| b.insts.len() + 1).sum()
}

pub fn stack_bytes(func: &Function) -> u32 {
    func.slots.iter().sum()
}

/// Instructions (plus terminators) on the longest entry-to-exit path, each bounded loop
/// counted `trips × longest iteration + header` (as the cost analysis prices it).
pub fn longest_path(func: &Function, loops: &[BoundedLoop]) -> usize {
    let mut graph = CostGraph {
        entry: func.entry.index(),
        block_costs: func.cfg.node_weights().map(|b| Some(b.insts.len() as u64 + 1)).collect(),
        edges: func
            .cfg
            .node_indices()
            .flat_map(|b| func.cfg[b].term.successors().into_iter().map(move |s| (b.index(), s.index())))
            .collect(),
        trigger: 0,
    };
    graph.collapse_loops_unchecked(loops);
    graph.worst_path().map_or(0, |(_, n)| usize::try_from(n).unwrap_or(usize::MAX))
}

pub fn check(func: &Function, facts: &FunctionFacts) -> Vec<Diagnostic> {
    let mut diags = Vec::new();
    if facts.instructions > MAX_INSTRUCTIONS {
        diags.push(
            Diagnostic::error(
                "E0402",
                format!("probe has {} instructions, more than the limit of {MAX_INSTRUCTIONS}", facts.instructions),
                func.span,
            )
            .label("this probe")
            .with_help("split the work over several probes or shorten string compares and keys"),
        );
    }
    if facts.longest_path > MAX_EXECUTED_INSTRUCTIONS {
        diags.push(
            Diagnostic::error(
                "E0402",
                format!(
                    "probe may execute {} instructions per event (loops at their bounds), more than the limit of {MAX_EXECUTED_INSTRUCTIONS}",
                    facts.longest_path
                ),
                func.span,
            )
            .label("this probe")
            .with_help("lower the loop bounds or move work out of the loop bodies"),
        );
    }
    if facts.stack_bytes > MAX_STACK_BYTES {
        diags.push(
            Diagnostic::error(
                "E0403",
                format!(
                    "probe needs {} bytes of stack, more than the {MAX_STACK_BYTES} eBPF allows",
                    facts.stack_bytes
                ),
                func.span,
            )
            .label("this probe")
            .with_help("use shorter strings (str[N]) and fewer string locals or keys"),
        );
    }
    diags
}
