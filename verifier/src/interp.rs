//! A reference interpreter of the IR: runs one function on a context byte array and an
//! in-memory model of the maps, counting executed instructions, helper calls and their
//! profile cost. Tests use it to check the verifier's claims: an accepted function never
//! faults, and no execution costs more than the static bound.
//!
//! Semantics follow eBPF and the kernel helpers, except that what the verifier promises to
//! exclude (a zero divisor, a read of an unset register or uninitialised stack byte, an
//! access out of bounds or through null) is a [`Fault`] instead of kernel behaviour.
//! Map values live in an arena and are never freed, like RCU-protected values whose pointer
//! outlives a delete.

use crate::cost::{op_cost, term_cost, trigger_cost, Picos};
use crate::interval::{eval_alu, eval_cond};
use ppis_ir::{Function, Helper, Map, MapId, MapType, Op, Operand, Terminator, Vreg};
use ppis_manifest::profile::CostProfile;
use std::collections::BTreeMap;

/// Upper bound on executed instructions, so a cyclic function cannot hang a test.
pub const STEP_LIMIT: u64 = 1_000_000;

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Fault {
    UnsetRegister {
        reg: u32,
    },
    SlotOutOfBounds {
        slot: u32,
        end: u64,
    },
    UninitialisedStack {
        slot: u32,
        byte: u32,
    },
    ContextOutOfBounds {
        end: u64,
    },
    NullDereference,
    MapValueOutOfBounds {
        end: u64,
    },
    DivisionByZero,
    /// An array map accessed at an index at or past its length (the kernel would answer
    /// null or fail the update; the verifier promises it cannot happen).
    ArrayIndexOutOfBounds {
        index: u64,
        len: u32,
    },
    /// A reference to a register, slot, map or block that does not exist, or a pointer
    /// used as a number.
    Malformed(String),
    StepLimit,
}

/// Values the helpers return.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct Env {
    pub pid_tgid: u64,
    pub uid_gid: u64,
    pub comm: [u8; 16],
    pub ktime_ns: u64,
    pub cpu: u32,
    /// What `bpf_get_current_cgroup_id` returns.
    pub cgroup: u64,
    /// The id `bpf_get_stackid` returns; `None` (the default): every walk fails with
    /// -EFAULT, as for a task without a user stack.
    pub stack_id: Option<u32>,
    /// Whether the ring buffer refuses records (`bpf_ringbuf_output` returns -ENOSPC, the
    /// program takes its drop-counting path); by default it always has room.
    pub ringbuf_full: bool,
}

/// The maps' contents: per map, key bytes to an arena index; the arena holds the values.
#[derive(Clone, Debug, Default)]
pub struct MapState {
    entries: Vec<BTreeMap<Vec<u8>, usize>>,
    arena: Vec<Vec<u8>>,
}

impl MapState {
    pub fn new(maps: &[Map]) -> MapState {
        MapState { entries: vec![BTreeMap::new(); maps.len()], arena: Vec::new() }
    }

    /// Sets `map[key] = value` (for setting up test states); ignores full maps.
    pub fn insert(&mut self, maps: &[Map], map: MapId, key: &[u8], value: &[u8]) {
        let _ = self.update(maps, map, key, value, 0);
    }

    pub fn get(&self, map: MapId, key: &[u8]) -> Option<&[u8]> {
        self.entries.get(map)?.get(key).map(|i| self.arena[*i].as_slice())
    }

    pub fn len(&self, map: MapId) -> usize {
        self.entries.get(map).map_or(0, |m| m.len())
    }

    pub fn is_empty(&self) -> bool {
        self.entries.iter().all(|m| m.is_empty())
    }

    /// Arrays hold every index below `max_entries` (zero-filled until written).
    fn array_index(def: &Map, key: &[u8]) -> Option<u32> {
        let index = u32::from_le_bytes(key.get(..4)?.try_into().ok()?);
        (index < def.max_entries).then_some(index)
    }

    fn is_array(def: &Map) -> bool {
        matches!(def.kind, MapType::Array | MapType::PerCpuArray)
    }

    fn lookup(&mut self, maps: &[Map], map: MapId, key: &[u8]) -> Option<usize> {
        let def = maps.get(map)?;
        if let Some(i) = self.entries.get(map)?.get(key) {
            return Some(*i);
        }
        if Self::is_array(def) && Self::array_index(def, key).is_some() {
            let i = self.alloc(vec![0; def.value_size as usize]);
            self.entries[map].insert(key.to_vec(), i);
            return Some(i);
        }
        None
    }

    fn alloc(&mut self, value: Vec<u8>) -> usize {
        self.arena.push(value);
        self.arena.len() - 1
    }

    /// `bpf_map_update_elem`: returns whether it succeeded.
    fn update(&mut self, maps: &[Map], map: MapId, key: &[u8], value: &[u8], flags: u64) -> bool {
        let Some(def) = maps.get(map) else { return false };
        let exists = self.lookup(maps, map, key).is_some();
        if (flags == 1 && exists) || (flags == 2 && !exists) {
            return false;
        }
        if Self::is_array(def) && Self::array_index(def, key).is_none() {
            return false;
        }
        if !exists && self.entries[map].len() >= def.max_entries as usize {
            return false;
        }
        match self.entries[map].get(key) {
            // Updates replace the value in place (what a concurrent reader may observe).
            Some(&i) => self.arena[i] = value.to_vec(),
            None => {
                let i = self.alloc(value.to_vec());
                self.entries[map].insert(key.to_vec(), i);
            }
        }
        true
    }

    fn delete(&mut self, maps: &[Map], map: MapId, key: &[u8]) -> bool {
        match maps.get(map) {
            Some(def) if !Self::is_array(def) => self.entries[map].remove(key).is_some(),
            _ => false,
        }
    }
}

/// What one run did.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct Execution {
    /// Instructions and terminators executed.
    pub instructions: u64,
    pub helper_calls: u64,
    /// Trigger plus every executed instruction's profile cost.
    pub cost_ps: Picos,
    /// Blocks in execution order.
    pub blocks: Vec<usize>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Reg {
    Scalar(u64),
    /// Arena index of a map value, or null.
    Ptr(Option<usize>),
}

pub fn run(
    func: &Function,
    maps: &[Map],
    profile: &CostProfile,
    ctx: &[u8],
    state: &mut MapState,
    env: &Env,
) -> Result<Execution, Fault> {
    let mut m = Machine {
        func,
        maps,
        state,
        regs: vec![None; func.vregs.len()],
        slots: func.slots.iter().map(|s| vec![None; *s as usize]).collect(),
    };
    let mut exec = Execution { cost_ps: trigger_cost(func.probe.trigger, profile), ..Execution::default() };
    let mut block = func.entry;
    loop {
        let bb =
            func.cfg.node_weight(block).ok_or_else(|| Fault::Malformed(format!("no block bb{}", block.index())))?;
        exec.blocks.push(block.index());
        for inst in &bb.insts {
            exec.instructions += 1;
            if exec.instructions > STEP_LIMIT {
                return Err(Fault::StepLimit);
            }
            let c = op_cost(&inst.op, func, maps, profile);
            exec.cost_ps += c.total();
            exec.helper_calls += c.helper.is_some() as u64;
            m.op(&inst.op, ctx, env)?;
        }
        exec.instructions += 1;
        exec.cost_ps += term_cost(&bb.term, func.probe.trigger, profile);
        block = match bb.term {
            Terminator::Return => return Ok(exec),
            Terminator::Jump(t) => t,
            Terminator::Branch { cond, lhs, rhs, then, otherwise } => {
                let a = m.scalar(Operand::Reg(lhs))?;
                let b = m.scalar(rhs)?;
                if eval_cond(cond, a, b) {
                    then
                } else {
                    otherwise
                }
            }
            Terminator::BranchNull { ptr, is_null, not_null } => match m.reg(ptr)? {
                Reg::Ptr(None) => is_null,
                Reg::Ptr(Some(_)) => not_null,
                Reg::Scalar(_) => return Err(Fault::Malformed(format!("v{} is not a pointer", ptr.0))),
            },
        };
    }
}

struct Machine<'a> {
    func: &'a Function,
    maps: &'a [Map],
    state: &'a mut MapState,
    regs: Vec<Option<Reg>>,
    slots: Vec<Vec<Option<u8>>>,
}

impl Machine<'_> {
    fn reg(&self, r: Vreg) -> Result<Reg, Fault> {
        match self.regs.get(r.0 as usize) {
            Some(Some(v)) => Ok(*v),
            Some(None) => Err(Fault::UnsetRegister { reg: r.0 }),
            None => Err(Fault::Malformed(format!("no register v{}", r.0))),
        }
    }

    fn scalar(&self, o: Operand) -> Result<u64, Fault> {
        match o {
            Operand::Imm(i) => Ok(i as u64),
            Operand::Reg(r) => match self.reg(r)? {
                Reg::Scalar(v) => Ok(v),
                Reg::Ptr(_) => Err(Fault::Malformed(format!("pointer v{} used as a number", r.0))),
            },
        }
    }

    fn set(&mut self, r: Vreg, v: Reg) -> Result<(), Fault> {
        let slot = self.regs.get_mut(r.0 as usize).ok_or_else(|| Fault::Malformed(format!("no register v{}", r.0)))?;
        *slot = Some(v);
        Ok(())
    }

    fn slot_bytes(&mut self, slot: u32, offset: u32, len: u32) -> Result<&mut [Option<u8>], Fault> {
        let bytes = self.slots.get_mut(slot as usize).ok_or_else(|| Fault::Malformed(format!("no slot s{slot}")))?;
        let end = offset as u64 + len as u64;
        if end > bytes.len() as u64 {
            return Err(Fault::SlotOutOfBounds { slot, end });
        }
        Ok(&mut bytes[offset as usize..end as usize])
    }

    /// The initialised bytes `offset..offset+len` of a slot.
    fn read_slot(&mut self, slot: u32, offset: u32, len: u32) -> Result<Vec<u8>, Fault> {
        let bytes = self.slot_bytes(slot, offset, len)?;
        bytes
            .iter()
            .enumerate()
            .map(|(i, b)| b.ok_or(Fault::UninitialisedStack { slot, byte: offset + i as u32 }))
            .collect()
    }

    fn write_slot(&mut self, slot: u32, offset: u32, data: &[u8]) -> Result<(), Fault> {
        let bytes = self.slot_bytes(slot, offset, data.len() as u32)?;
        for (b, d) in bytes.iter_mut().zip(data) {
            *b = Some(*d);
        }
        Ok(())
    }

    fn map_def(&self, map: MapId) -> Result<&Map, Fault> {
        self.maps.get(map).ok_or_else(|| Fault::Malformed(format!("no map m{map}")))
    }

    /// The key of an array map must index one of its elements.
    fn check_array_index(&self, map: MapId, key: &[u8]) -> Result<(), Fault> {
        let def = self.map_def(map)?;
        if matches!(def.kind, MapType::Array | MapType::PerCpuArray) {
            let index = le(key);
            if index >= def.max_entries as u64 {
                return Err(Fault::ArrayIndexOutOfBounds { index, len: def.max_entries });
            }
        }
        Ok(())
    }

    fn value(&mut self, ptr: Vreg, offset: u32, width: u8) -> Result<&mut [u8], Fault> {
        let Reg::Ptr(p) = self.reg(ptr)? else {
            return Err(Fault::Malformed(format!("v{} is not a pointer", ptr.0)));
        };
        let index = p.ok_or(Fault::NullDereference)?;
        let value = &mut self.state.arena[index];
        let end = offset as u64 + width as u64;
        if end > value.len() as u64 {
            return Err(Fault::MapValueOutOfBounds { end });
        }
        Ok(&mut value[offset as usize..end as usize])
    }

    fn op(&mut self, op: &Op, ctx: &[u8], env: &Env) -> Result<(), Fault> {
        match *op {
            Op::Mov { dst, src } => {
                let v = match src {
                    Operand::Imm(i) => Reg::Scalar(i as u64),
                    Operand::Reg(r) => self.reg(r)?,
                };
                self.set(dst, v)
            }
            Op::Alu { op, dst, lhs, rhs } => {
                let a = self.scalar(Operand::Reg(lhs))?;
                let b = self.scalar(rhs)?;
                if matches!(op, ppis_ir::AluOp::UDiv | ppis_ir::AluOp::UMod) && b == 0 {
                    return Err(Fault::DivisionByZero);
                }
                self.set(dst, Reg::Scalar(eval_alu(op, a, b)))
            }
            Op::Neg { dst, src } => {
                let a = self.scalar(Operand::Reg(src))?;
                self.set(dst, Reg::Scalar(a.wrapping_neg()))
            }
            Op::SetCond { cond, dst, lhs, rhs } => {
                let a = self.scalar(Operand::Reg(lhs))?;
                let b = self.scalar(rhs)?;
                self.set(dst, Reg::Scalar(eval_cond(cond, a, b) as u64))
            }
            Op::Extend { dst, src, width, signed } => {
                let a = self.scalar(Operand::Reg(src))?;
                self.set(dst, Reg::Scalar(extend(a, width, signed)))
            }
            Op::LoadCtx { dst, offset, width, signed } => {
                let end = offset as u64 + width as u64;
                let bytes = ctx.get(offset as usize..end as usize).ok_or(Fault::ContextOutOfBounds { end })?;
                self.set(dst, Reg::Scalar(extend(le(bytes), width, signed)))
            }
            Op::LoadSlot { dst, slot, offset, width } => {
                let bytes = self.read_slot(slot.0, offset, width as u32)?;
                self.set(dst, Reg::Scalar(le(&bytes)))
            }
            Op::StoreSlot { slot, offset, width, src } => {
                let v = self.scalar(src)?;
                self.write_slot(slot.0, offset, &v.to_le_bytes()[..width as usize])
            }
            Op::ZeroSlot { slot } => {
                let size = self.func.slots.get(slot.0 as usize).copied().unwrap_or(0);
                self.write_slot(slot.0, 0, &vec![0; size as usize])
            }
            Op::Call { dst, helper } => {
                let v = match helper {
                    Helper::GetCurrentPidTgid => env.pid_tgid,
                    Helper::GetCurrentUidGid => env.uid_gid,
                    Helper::KtimeGetNs => env.ktime_ns,
                    Helper::GetSmpProcessorId => env.cpu as u64,
                    Helper::GetCurrentComm { slot } => {
                        self.write_slot(slot.0, 0, &env.comm)?;
                        0
                    }
                    // The model has no user or kernel memory: every string read faults, and
                    // the kernel then zeroes the buffer and returns -EFAULT.
                    Helper::ProbeReadStr { slot, len, ptr, .. } => {
                        self.scalar(Operand::Reg(ptr))?;
                        self.write_slot(slot.0, 0, &vec![0; len as usize])?;
                        (-14i64) as u64
                    }
                    // The model reads the record (faulting on uninitialised bytes, as the kernel
                    // verifier would reject) and succeeds, unless `env` says the buffer is full.
                    Helper::RingbufOutput { slot, len, .. } => {
                        self.read_slot(slot.0, 0, len)?;
                        if env.ringbuf_full {
                            (-28i64) as u64
                        } else {
                            0
                        }
                    }
                    // The model has no stacks to walk: the id comes from `env`, or the walk
                    // fails with -EFAULT, as a kernel walk of a task without a user stack does.
                    Helper::GetStackId { .. } => env.stack_id.map_or((-14i64) as u64, u64::from),
                    Helper::GetCurrentCgroupId => env.cgroup,
                    // No memory in the model, as for string reads: the read faults and the
                    // kernel zeroes the buffer.
                    Helper::ProbeRead { slot, len, ptr, .. } => {
                        self.scalar(Operand::Reg(ptr))?;
                        self.write_slot(slot.0, 0, &vec![0; len as usize])?;
                        (-14i64) as u64
                    }
                };
                match dst {
                    Some(d) => self.set(d, Reg::Scalar(v)),
                    None => Ok(()),
                }
            }
            Op::MapLookup { dst, map, key } => {
                let size = self.map_def(map)?.key_size;
                let k = self.read_slot(key.0, 0, size)?;
                self.check_array_index(map, &k)?;
                let found = self.state.lookup(self.maps, map, &k);
                self.set(dst, Reg::Ptr(found))
            }
            Op::MapUpdate { map, key, value, flags } => {
                let def = self.map_def(map)?;
                let (ks, vs) = (def.key_size, def.value_size);
                let k = self.read_slot(key.0, 0, ks)?;
                self.check_array_index(map, &k)?;
                let v = self.read_slot(value.0, 0, vs)?;
                self.state.update(self.maps, map, &k, &v, flags);
                Ok(())
            }
            Op::MapDelete { map, key } => {
                let size = self.map_def(map)?.key_size;
                let k = self.read_slot(key.0, 0, size)?;
                self.check_array_index(map, &k)?;
                self.state.delete(self.maps, map, &k);
                Ok(())
            }
            Op::LoadPtr { dst, ptr, offset, width } => {
                let v = le(self.value(ptr, offset, width)?);
                self.set(dst, Reg::Scalar(v))
            }
            Op::StorePtr { ptr, offset, width, src } => {
                let v = self.scalar(src)?;
                self.value(ptr, offset, width)?.copy_from_slice(&v.to_le_bytes()[..width as usize]);
                Ok(())
            }
        }
    }
}

/// Little-endian bytes (at most 8) as an unsigned integer.
fn le(bytes: &[u8]) -> u64 {
    bytes.iter().rev().take(8).fold(0, |acc, b| (acc << 8) | *b as u64)
}

fn extend(v: u64, width: u8, signed: bool) -> u64 {
    if width >= 8 {
        return v;
    }
    if width == 0 {
        return 0;
    }
    let bits = width as u32 * 8;
    let low = v & ((1u64 << bits) - 1);
    if signed && low >> (bits - 1) == 1 {
        low | (u64::MAX << bits)
    } else {
        low
    }
}
