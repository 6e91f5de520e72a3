//! The IR's stable text form, used by `ppisc ir` and snapshot tests.

use crate::*;
use std::fmt::Write;

pub fn print_module(module: &Module) -> String {
    let mut out = String::new();
    for (i, m) in module.maps.iter().enumerate() {
        let kind = match m.kind {
            MapType::Hash => "hash",
            MapType::Array => "array",
            MapType::PerCpuHash => "percpu_hash",
            MapType::PerCpuArray => "percpu_array",
            MapType::RingBuf => "ringbuf",
            MapType::StackTrace => "stack_trace",
            MapType::LruHash => "lru_hash",
            MapType::LruPerCpuHash => "lru_percpu_hash",
        };
        writeln!(out, "map m{i} {}: {kind} key {} value {} max {}", m.name, m.key_size, m.value_size, m.max_entries)
            .unwrap();
    }
    for f in &module.functions {
        out.push('\n');
        out.push_str(&print_function(f, &module.maps));
    }
    out
}

pub fn print_function(f: &Function, maps: &[Map]) -> String {
    let mut out = String::new();
    let ctx = match f.ctx {
        CtxKind::Tracepoint => "tracepoint",
        CtxKind::PtRegs => "pt_regs",
        CtxKind::RawTracepoint => "raw_tracepoint",
        CtxKind::PerfEvent => "perf_event",
    };
    let trigger = match f.probe.trigger {
        Trigger::Tracepoint => "tracepoint",
        Trigger::Uprobe => "uprobe",
        Trigger::Uretprobe => "uretprobe",
        Trigger::RawTracepoint => "raw_tracepoint",
        Trigger::PerfEvent => "perf_event",
        Trigger::Once => "once",
    };
    let rate = f.probe.rate.map(|(r, _)| format!(" rate {r}")).unwrap_or_default();
    writeln!(out, "fn {}(ctx: {ctx}) trigger {trigger}{rate} {{", f.name).unwrap();
    for (i, size) in f.slots.iter().enumerate() {
        writeln!(out, "  slot s{i}: {size}").unwrap();
    }
    for (i, ty) in f.vregs.iter().enumerate() {
        if let VregType::MapValue(m) = ty {
            writeln!(out, "  v{i}: *{}?", map_name(maps, *m)).unwrap();
        }
    }
    for b in f.cfg.node_indices() {
        let bb = &f.cfg[b];
        writeln!(out, "bb{}:{}", b.index(), if b == f.entry { " ; entry" } else { "" }).unwrap();
        for inst in &bb.insts {
            writeln!(out, "  {}", op(&inst.op, maps)).unwrap();
        }
        writeln!(out, "  {}", term(&bb.term)).unwrap();
    }
    out.push_str("}\n");
    out
}

fn map_name(maps: &[Map], m: MapId) -> String {
    maps.get(m).map(|m| m.name.clone()).unwrap_or_else(|| format!("m{m}"))
}

fn opnd(o: Operand) -> String {
    match o {
        Operand::Reg(r) => format!("v{}", r.0),
        Operand::Imm(i) => i.to_string(),
    }
}

fn op(op: &Op, maps: &[Map]) -> String {
    match op {
        Op::Mov { dst, src } => format!("v{} = {}", dst.0, opnd(*src)),
        Op::Alu { op, dst, lhs, rhs } => {
            format!("v{} = {} v{}, {}", dst.0, format!("{op:?}").to_lowercase(), lhs.0, opnd(*rhs))
        }
        Op::Neg { dst, src } => format!("v{} = neg v{}", dst.0, src.0),
        Op::SetCond { cond, dst, lhs, rhs } => {
            format!("v{} = set.{} v{}, {}", dst.0, cond_name(*cond), lhs.0, opnd(*rhs))
        }
        Op::Extend { dst, src, width, signed } => {
            format!("v{} = {}ext{} v{}", dst.0, if *signed { 's' } else { 'z' }, *width as u32 * 8, src.0)
        }
        Op::LoadCtx { dst, offset, width, signed } => {
            format!("v{} = load.ctx{} {}{}", dst.0, if *signed { ".s" } else { "" }, offset, width_suffix(*width))
        }
        Op::LoadSlot { dst, slot, offset, width } => {
            format!("v{} = load s{}+{}{}", dst.0, slot.0, offset, width_suffix(*width))
        }
        Op::StoreSlot { slot, offset, width, src } => {
            format!("store s{}+{}{}, {}", slot.0, offset, width_suffix(*width), opnd(*src))
        }
        Op::ZeroSlot { slot } => format!("zero s{}", slot.0),
        Op::Call { dst, helper } => {
            let call = match helper {
                Helper::GetCurrentPidTgid => "get_current_pid_tgid()".to_string(),
                Helper::GetCurrentUidGid => "get_current_uid_gid()".to_string(),
                Helper::GetCurrentComm { slot } => format!("get_current_comm(s{}, 16)", slot.0),
                Helper::KtimeGetNs => "ktime_get_ns()".to_string(),
                Helper::GetSmpProcessorId => "get_smp_processor_id()".to_string(),
                Helper::GetCurrentCgroupId => "get_current_cgroup_id()".to_string(),
                Helper::ProbeRead { slot, len, ptr, space } => {
                    let space = match space {
                        AddressSpace::User => "user",
                        AddressSpace::Kernel => "kernel",
                    };
                    format!("probe_read_{space}(s{}, {len}, v{})", slot.0, ptr.0)
                }
                Helper::ProbeReadStr { slot, len, ptr, space } => {
                    let space = match space {
                        AddressSpace::User => "user",
                        AddressSpace::Kernel => "kernel",
                    };
                    format!("probe_read_{space}_str(s{}, {len}, v{})", slot.0, ptr.0)
                }
                Helper::RingbufOutput { map, slot, len } => {
                    format!("ringbuf_output({}, s{}, {len})", map_name(maps, *map), slot.0)
                }
                Helper::GetStackId { map, user } => {
                    format!("get_stackid(ctx, {}, {})", map_name(maps, *map), if *user { "user" } else { "kernel" })
                }
            };
            match dst {
                Some(d) => format!("v{} = call {call}", d.0),
                None => format!("call {call}"),
            }
        }
        Op::MapLookup { dst, map, key } => format!("v{} = map.lookup {}, s{}", dst.0, map_name(maps, *map), key.0),
        Op::MapUpdate { map, key, value, flags } => {
            format!("map.update {}, s{}, s{}, {}", map_name(maps, *map), key.0, value.0, flags)
        }
        Op::MapDelete { map, key } => format!("map.delete {}, s{}", map_name(maps, *map), key.0),
        Op::LoadPtr { dst, ptr, offset, width } => {
            format!("v{} = load v{}+{}{}", dst.0, ptr.0, offset, width_suffix(*width))
        }
        Op::StorePtr { ptr, offset, width, src } => {
            format!("store v{}+{}{}, {}", ptr.0, offset, width_suffix(*width), opnd(*src))
        }
    }
}

fn width_suffix(w: Width) -> String {
    format!(" u{}", w as u32 * 8)
}

fn cond_name(c: Cond) -> &'static str {
    match c {
        Cond::Eq => "eq",
        Cond::Ne => "ne",
        Cond::Ult => "ult",
        Cond::Ule => "ule",
        Cond::Ugt => "ugt",
        Cond::Uge => "uge",
        Cond::Slt => "slt",
        Cond::Sle => "sle",
        Cond::Sgt => "sgt",
        Cond::Sge => "sge",
    }
}

fn term(t: &Terminator) -> String {
    match t {
        Terminator::Jump(b) => format!("jump bb{}", b.index()),
        Terminator::Branch { cond, lhs, rhs, then, otherwise } => {
            format!("br.{} v{}, {}, bb{}, bb{}", cond_name(*cond), lhs.0, opnd(*rhs), then.index(), otherwise.index())
        }
        Terminator::BranchNull { ptr, is_null, not_null } => {
            format!("br.null v{}, bb{}, bb{}", ptr.0, is_null.index(), not_null.index())
        }
        Terminator::Return => "ret".to_string(),
    }
}
