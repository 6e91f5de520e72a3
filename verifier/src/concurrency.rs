//! Concurrency and growth of shared maps.
//!
//! Races: a `Hash` or `Array` map's values are shared by all CPUs, so writing back a value computed
//! from what was read from the same map (`m[k] = m[k] + 1`) loses updates when two CPUs
//! interleave (E0411). Found by a forward taint analysis: registers and slots carry the set
//! of maps their value was derived from (union at joins); a `store vP+..` into map M or a
//! `map.update M` whose value slot carries M's taint is a read-modify-write. Keys are not
//! compared, so writing `m[k2]` from `m[k1]` is flagged too (a conservative approximation).
//!
//! Growth: a `Hash` map that is inserted into but never deleted from anywhere fills up and
//! then silently drops inserts (W0400).

use crate::fmt::{duration, rate, thousands};
use ppis_ir::{Block, Function, Map, MapId, MapType, Module, Op, Operand, VregType};
use ppis_lang::Diagnostic;
use std::collections::BTreeSet;

type Taint = BTreeSet<MapId>;

#[derive(Clone, PartialEq, Eq)]
struct State {
    regs: Vec<Taint>,
    slots: Vec<Taint>,
}

impl State {
    fn union(&mut self, other: &State) -> bool {
        let mut changed = false;
        for (a, b) in self.regs.iter_mut().zip(&other.regs).chain(self.slots.iter_mut().zip(&other.slots)) {
            let before = a.len();
            a.extend(b.iter().copied());
            changed |= a.len() != before;
        }
        changed
    }
}

pub fn races(func: &Function, maps: &[Map]) -> Vec<Diagnostic> {
    let shared = |m: MapId| maps.get(m).is_some_and(|m| is_shared(m.kind));
    if !(0..maps.len()).any(shared) {
        return Vec::new();
    }
    let n = func.cfg.node_count();
    let empty = State { regs: vec![Taint::new(); func.vregs.len()], slots: vec![Taint::new(); func.slots.len()] };
    let mut entries: Vec<Option<State>> = vec![None; n];
    entries[func.entry.index()] = Some(empty);
    let order = func.reverse_postorder();
    // Taint sets only grow and are bounded by the map count: this terminates.
    let mut changed = true;
    while changed {
        changed = false;
        for &b in &order {
            let Some(mut state) = entries[b.index()].clone() else { continue };
            run_block(func, b, &mut state, maps, &mut |_| {});
            for succ in func.cfg[b].term.successors() {
                match &mut entries[succ.index()] {
                    Some(prev) => changed |= prev.union(&state),
                    slot @ None => {
                        *slot = Some(state.clone());
                        changed = true;
                    }
                }
            }
        }
    }
    let mut diags = Vec::new();
    for &b in &order {
        let Some(mut state) = entries[b.index()].clone() else { continue };
        run_block(func, b, &mut state, maps, &mut |d| diags.push(d));
    }
    diags
}

fn run_block(func: &Function, b: Block, state: &mut State, maps: &[Map], report: &mut dyn FnMut(Diagnostic)) {
    let reg = |state: &State, o: Operand| match o {
        Operand::Reg(r) => state.regs.get(r.0 as usize).cloned().unwrap_or_default(),
        Operand::Imm(_) => Taint::new(),
    };
    let race = |map: MapId, span| {
        let name = maps.get(map).map_or("?", |m| m.name.as_str());
        let what = if maps.get(map).is_some_and(|m| m.kind == MapType::Array) { "array" } else { "hash map" };
        Diagnostic::error(
            "E0411",
            format!("read-modify-write of {what} `{name}`: another CPU may change the entry between the read and this write"),
            span,
        )
        .label("writes back a value computed from the same map")
        .with_help("use an aggregation (`count`, `sum`): they are per-CPU and race-free")
    };
    for inst in &func.cfg[b].insts {
        let mut derived = Taint::new();
        for r in inst.op.uses() {
            derived.extend(reg(state, Operand::Reg(r)));
        }
        match inst.op {
            Op::LoadPtr { dst, ptr, .. } => {
                if let Some(VregType::MapValue(m)) = func.vregs.get(ptr.0 as usize) {
                    derived.insert(*m);
                }
                set(&mut state.regs, dst.0, derived);
            }
            Op::StorePtr { ptr, src, .. } => {
                if let Some(VregType::MapValue(m)) = func.vregs.get(ptr.0 as usize) {
                    let is_shared = maps.get(*m).is_some_and(|m| is_shared(m.kind));
                    if is_shared && reg(state, src).contains(m) {
                        report(race(*m, inst.span));
                    }
                }
            }
            Op::StoreSlot { slot, src, .. } => {
                let t = reg(state, src);
                if let Some(s) = state.slots.get_mut(slot.0 as usize) {
                    s.extend(t);
                }
            }
            Op::ZeroSlot { slot } => set(&mut state.slots, slot.0, Taint::new()),
            Op::LoadSlot { dst, slot, .. } => {
                let t = state.slots.get(slot.0 as usize).cloned().unwrap_or_default();
                set(&mut state.regs, dst.0, t);
            }
            Op::MapUpdate { map, value, .. } => {
                let is_shared = maps.get(map).is_some_and(|m| is_shared(m.kind));
                if is_shared && state.slots.get(value.0 as usize).is_some_and(|t| t.contains(&map)) {
                    report(race(map, inst.span));
                }
            }
            Op::Call {
                helper:
                    ppis_ir::Helper::GetCurrentComm { slot }
                    | ppis_ir::Helper::ProbeReadStr { slot, .. }
                    | ppis_ir::Helper::ProbeRead { slot, .. },
                dst,
            } => {
                set(&mut state.slots, slot.0, Taint::new());
                if let Some(d) = dst {
                    set(&mut state.regs, d.0, Taint::new());
                }
            }
            _ => {
                if let Some(dst) = inst.op.def() {
                    set(&mut state.regs, dst.0, derived);
                }
            }
        }
    }
}

/// Maps whose values all CPUs share (per-CPU maps give each CPU its own).
fn is_shared(kind: MapType) -> bool {
    matches!(kind, MapType::Hash | MapType::Array | MapType::LruHash)
}

fn set(v: &mut [Taint], i: u32, t: Taint) {
    if let Some(x) = v.get_mut(i as usize) {
        *x = t;
    }
}

/// `bpf_map_update_elem`'s flag for "insert only if absent", the way aggregations create
/// their entries.
const BPF_NOEXIST: u64 = 1;

/// W0400 for each `Hash` map, and each `PerCpuHash` written by whole-value stores (a
/// `percpu_hash`), of the module with inserts but no delete anywhere, reported at its first
/// insert, with how fast it fills at the declared rates.
pub fn growth(module: &Module) -> Vec<Diagnostic> {
    let mut diags = Vec::new();
    for (id, map) in module.maps.iter().enumerate() {
        if !matches!(map.kind, MapType::Hash | MapType::PerCpuHash) {
            continue;
        }
        // Keyed aggregations are per-CPU hashes too, but they only ever insert a zero value
        // if absent (`BPF_NOEXIST`) and keep their keys until read by design: a per-CPU hash
        // grows as a user map only through whole-value stores (`m[k] = v`).
        let is_insert = |flags: u64| map.kind == MapType::Hash || flags != BPF_NOEXIST;
        let ops = || {
            module
                .functions
                .iter()
                .flat_map(|f| f.cfg.node_weights().flat_map(move |b| b.insts.iter().map(move |i| (f, i))))
        };
        if ops().any(|(_, i)| matches!(i.op, Op::MapDelete { map, .. } if map == id)) {
            continue;
        }
        let inserts: Vec<_> = ops()
            .filter(|(_, i)| matches!(i.op, Op::MapUpdate { map, flags, .. } if map == id && is_insert(flags)))
            .collect();
        let Some((_, first)) = inserts.first() else { continue };
        // Each event inserts at most once per update instruction it runs; bound by the
        // probes' declared rates (unknown when one of them declares none).
        let mut per_sec: Option<u64> = Some(0);
        for f in module.functions.iter() {
            let sites = inserts.iter().filter(|(g, _)| std::ptr::eq(*g, f)).count() as u64;
            if sites > 0 {
                per_sec = match (per_sec, f.probe.rate) {
                    (Some(total), Some((r, _))) => Some(total.saturating_add(r.saturating_mul(sites))),
                    _ => None,
                };
            }
        }
        let fill = match per_sec {
            Some(r) if r > 0 => format!(
                "up to {}/s new keys fill its {} entries in {}",
                rate(r),
                thousands(map.max_entries as u64),
                duration(map.max_entries as f64 / r as f64)
            ),
            _ => format!("its {} entries fill at a rate no probe declares", thousands(map.max_entries as u64)),
        };
        diags.push(
            Diagnostic::error(
                "W0400",
                format!("hash map `{}` can only grow: it is inserted into but never deleted from; {fill}, then inserts fail", map.name),
                first.span,
            )
            .label("inserts here; nothing deletes")
            .with_help(format!(
                "delete entries once done (`delete {}[k]`), or make it an LRU map (`{}[..]`)",
                map.name,
                if map.kind == MapType::PerCpuHash { "lru_percpu_hash" } else { "lru_hash" }
            )),
        );
    }
    diags
}
