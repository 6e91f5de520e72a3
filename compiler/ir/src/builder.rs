//! Builds a [`Function`] block by block, keeping the graph's edges equal to the terminators.

use crate::*;

pub struct FunctionBuilder {
    func: Function,
    current: Block,
    /// Blocks whose terminator has been set.
    terminated: Vec<bool>,
}

impl FunctionBuilder {
    pub fn new(name: impl Into<String>, ctx: CtxKind, span: Span) -> FunctionBuilder {
        let mut cfg = DiGraph::new();
        let entry = cfg.add_node(BasicBlock { insts: Vec::new(), term: Terminator::Return, term_span: span });
        FunctionBuilder {
            func: Function {
                name: name.into(),
                ctx,
                vregs: Vec::new(),
                slots: Vec::new(),
                cfg,
                entry,
                span,
                probe: ProbeMeta {
                    trigger: if ctx == CtxKind::PtRegs { Trigger::Uprobe } else { Trigger::Tracepoint },
                    rate: None,
                },
            },
            current: entry,
            terminated: vec![false],
        }
    }

    pub fn new_vreg(&mut self, ty: VregType) -> Vreg {
        self.func.vregs.push(ty);
        Vreg(self.func.vregs.len() as u32 - 1)
    }

    /// A new stack slot of at least `size` bytes (rounded up to a multiple of 8).
    pub fn new_slot(&mut self, size: u32) -> Slot {
        self.func.slots.push(size.max(1).div_ceil(8) * 8);
        Slot(self.func.slots.len() as u32 - 1)
    }

    pub fn new_block(&mut self) -> Block {
        let b = self.func.cfg.add_node(BasicBlock {
            insts: Vec::new(),
            term: Terminator::Return,
            term_span: Span::default(),
        });
        self.terminated.push(false);
        b
    }

    /// Makes `block` the one `push` and `terminate` append to.
    pub fn switch_to(&mut self, block: Block) {
        self.current = block;
    }

    /// Sets the trigger and declared rate (by default: tracepoint or uprobe per context, no rate).
    pub fn set_probe(&mut self, probe: ProbeMeta) {
        self.func.probe = probe;
    }

    pub fn current(&self) -> Block {
        self.current
    }

    /// True once the current block has its terminator (code after a `return`).
    pub fn is_terminated(&self) -> bool {
        self.terminated[self.current.index()]
    }

    pub fn push(&mut self, op: Op, span: Span) {
        assert!(!self.is_terminated(), "push into terminated block {:?}", self.current);
        self.func.cfg[self.current].insts.push(Inst { op, span });
    }

    pub fn terminate(&mut self, term: Terminator, span: Span) {
        assert!(!self.is_terminated(), "block {:?} terminated twice", self.current);
        let bb = &mut self.func.cfg[self.current];
        bb.term = term;
        bb.term_span = span;
        self.terminated[self.current.index()] = true;
    }

    /// Finishes the function: unterminated blocks return, edges follow terminators, blocks
    /// unreachable from the entry are removed (so printing and analysis see only live code).
    pub fn finish(mut self) -> Function {
        let nodes: Vec<Block> = self.func.cfg.node_indices().collect();
        for b in &nodes {
            for succ in self.func.cfg[*b].term.successors() {
                self.func.cfg.add_edge(*b, succ, ());
            }
        }
        let mut func = self.func;
        remove_unreachable(&mut func);
        func
    }
}

/// Rebuilds the graph with only the blocks reachable from the entry, renumbered in creation
/// order so that printed block numbers are dense.
fn remove_unreachable(func: &mut Function) {
    let mut reachable = vec![false; func.cfg.node_count()];
    let mut dfs = petgraph::visit::Dfs::new(&func.cfg, func.entry);
    while let Some(b) = dfs.next(&func.cfg) {
        reachable[b.index()] = true;
    }
    if reachable.iter().all(|r| *r) {
        return;
    }
    let mut map = vec![None; reachable.len()];
    let mut cfg: DiGraph<BasicBlock, ()> = DiGraph::new();
    for b in func.cfg.node_indices().filter(|b| reachable[b.index()]) {
        map[b.index()] = Some(cfg.add_node(func.cfg[b].clone()));
    }
    let remap = |b: Block| map[b.index()].expect("edge into unreachable block");
    for b in cfg.node_indices().collect::<Vec<_>>() {
        let term = &mut cfg[b].term;
        *term = match *term {
            Terminator::Jump(t) => Terminator::Jump(remap(t)),
            Terminator::Branch { cond, lhs, rhs, then, otherwise } => {
                Terminator::Branch { cond, lhs, rhs, then: remap(then), otherwise: remap(otherwise) }
            }
            Terminator::BranchNull { ptr, is_null, not_null } => {
                Terminator::BranchNull { ptr, is_null: remap(is_null), not_null: remap(not_null) }
            }
            Terminator::Return => Terminator::Return,
        };
        for succ in cfg[b].term.successors() {
            cfg.add_edge(b, succ, ());
        }
    }
    func.entry = remap(func.entry);
    func.cfg = cfg;
}
