//! The checked program: names resolved, types known, implicit conversions made explicit.
//!
//! This is what the compiler lowers. Every `Expr` carries its type; where the source relied
//! on an implicit conversion (an `i64` used as a `u64` key, `"ret"` used as a `str[16]` key)
//! the checker inserted a `Cast`, so a consumer never has to re-derive a type rule.

use crate::span::Span;
use crate::types::Ty;

pub type MapId = usize;
pub type LocalId = usize;

#[derive(Clone, Debug, PartialEq)]
pub struct Program {
    pub doc: Vec<String>,
    /// Per-probe CPU overhead budget in percent (0.5 unless the file lowers it).
    pub budget_percent: f64,
    pub maps: Vec<MapDef>,
    pub probes: Vec<Probe>,
}

#[derive(Clone, Debug, PartialEq)]
pub struct MapDef {
    pub name: String,
    pub span: Span,
    pub kind: MapKind,
    /// Key types; empty for an unkeyed map.
    pub key: Vec<Ty>,
    /// For `Hash`: the declared value type. For aggregations: the type of recorded values
    /// (`i64` if any recorded value is signed, else `u64`); `u64` for `count`.
    pub value: Ty,
    /// `max N`: required for keyed maps, `None` for unkeyed ones.
    pub max_entries: Option<u64>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MapKind {
    Count,
    Sum,
    Min,
    Max,
    Avg,
    /// Power-of-two histogram: bucket 0 counts negative values, bucket 1 zero, bucket
    /// `2 + k` the values in `[2^k, 2^(k+1))`.
    Hist,
    /// Linear histogram: bucket 0 counts values below `lo`, bucket `1 + i` the values in
    /// `[lo + i*step, lo + (i+1)*step)`, the last bucket values at or above `hi`.
    Lhist {
        lo: i64,
        hi: i64,
        step: i64,
    },
    /// Plain key/value map.
    Hash,
    /// `array[len]` (or `percpu_array[len]`): `len` values indexed by a `u64` key in
    /// `0..len`, every slot present (zero) from the start; read and written like `Hash`.
    Array {
        len: u32,
        per_cpu: bool,
    },
}

impl MapKind {
    pub fn is_aggregation(self) -> bool {
        !matches!(self, MapKind::Hash | MapKind::Array { .. })
    }
    /// Maps read and written with `m[k] = v`, `m[k] ?? d` and `if let`.
    pub fn is_plain(self) -> bool {
        matches!(self, MapKind::Hash | MapKind::Array { .. })
    }
}

#[derive(Clone, Debug, PartialEq)]
pub struct Probe {
    pub attach: Attach,
    pub span: Span,
    /// Declared event rate, events per second.
    pub rate: Option<u64>,
    /// Evaluated first; the body runs only when it is true.
    pub predicate: Option<Expr>,
    pub body: Vec<Stmt>,
    /// Every local of the probe, indexed by `LocalId`.
    pub locals: Vec<Local>,
}

#[derive(Clone, Debug, PartialEq)]
pub enum Attach {
    Tracepoint { category: String, name: String, span: Span },
    Uprobe { path: String, symbol: String, span: Span },
    Uretprobe { path: String, symbol: String, span: Span },
}

#[derive(Clone, Debug, PartialEq)]
pub struct Local {
    pub name: String,
    pub ty: Ty,
    pub span: Span,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Stmt {
    pub kind: StmtKind,
    pub span: Span,
}

#[derive(Clone, Debug, PartialEq)]
pub enum StmtKind {
    /// `let x = e;` and `x = e;` both assign a local.
    Assign {
        local: LocalId,
        value: Expr,
    },
    /// `m[k] = e;` on a `Hash` map. `keys` are already of the map's key types, `value` of
    /// its value type.
    MapUpdate {
        map: MapId,
        keys: Vec<Expr>,
        value: Expr,
    },
    /// `m[k].inc()` (value `None`), `.add(e)`, `.record(e)` on an aggregation. `value` is of
    /// the map's value type.
    Aggregate {
        map: MapId,
        keys: Vec<Expr>,
        value: Option<Expr>,
    },
    /// `delete m[k];`
    Delete {
        map: MapId,
        keys: Vec<Expr>,
    },
    If {
        cond: Expr,
        then: Vec<Stmt>,
        otherwise: Vec<Stmt>,
    },
    /// `if let x = m[k] { then } else { otherwise }`: `local` holds the value in `then`.
    IfLet {
        local: LocalId,
        map: MapId,
        keys: Vec<Expr>,
        then: Vec<Stmt>,
        otherwise: Vec<Stmt>,
    },
    Return,
    /// `for local in start..end { body }`: `start` and `end` (both `u64`) are evaluated once
    /// before the loop; `local` (read-only in `body`) counts up by 1 while below `end`.
    For {
        local: LocalId,
        start: Expr,
        end: Expr,
        body: Vec<Stmt>,
    },
}

/// Which memory a pointer read by `str(ptr, N)` points into.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AddressSpace {
    /// User memory: uprobe arguments, and the pointer arguments of syscall tracepoints.
    User,
    /// Kernel memory: pointers in other tracepoints' records.
    Kernel,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Expr {
    pub kind: ExprKind,
    pub ty: Ty,
    pub span: Span,
}

#[derive(Clone, Debug, PartialEq)]
pub enum ExprKind {
    /// An integer constant of type `ty`, as its 64-bit two's-complement pattern.
    Int(u64),
    Bool(bool),
    /// A string constant, NUL-padded to `ty`'s length.
    Str(Vec<u8>),
    Local(LocalId),
    Builtin(Builtin),
    /// `arg0`..`arg5` of a uprobe (`u64`).
    Arg(u8),
    /// `retval` of a uretprobe (`u64`).
    Retval,
    /// A scalar tracepoint field (or one element of an array field) read from the context.
    CtxField {
        offset: u32,
        size: u32,
        signed: bool,
    },
    /// A `char[N]` tracepoint field read from the context as `str[N]`.
    CtxStr {
        offset: u32,
        len: u32,
    },
    /// `str(ptr, N)`: the NUL-terminated string at `ptr` (a `u64`), at most `len - 1` bytes
    /// and a NUL, read from `space` into a zeroed `str[len]`; a faulting read gives "".
    ReadStr {
        ptr: Box<Expr>,
        len: u32,
        space: AddressSpace,
    },
    /// `m[k] ?? default` on a `Hash` or `Array` map.
    Coalesce {
        map: MapId,
        keys: Vec<Expr>,
        default: Box<Expr>,
    },
    Unary {
        op: crate::ast::UnaryOp,
        operand: Box<Expr>,
    },
    /// `cond ? then : otherwise`: `cond` is a `bool`, `then` and `otherwise` have the
    /// expression's type; only the chosen operand is evaluated.
    Conditional {
        cond: Box<Expr>,
        then: Box<Expr>,
        otherwise: Box<Expr>,
    },
    /// Both operands have the same type (the checker cast them); comparisons have type
    /// `bool`, `&&`/`||` short-circuit.
    Binary {
        op: crate::ast::BinaryOp,
        lhs: Box<Expr>,
        rhs: Box<Expr>,
    },
    /// Conversion to `ty`: integer truncation/extension per the source's signedness,
    /// `str[N]` to a longer `str[M]` by NUL padding.
    Cast(Box<Expr>),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Builtin {
    /// Process id (thread group id), `u32`.
    Pid,
    /// Thread id, `u32`.
    Tid,
    /// User id, `u32`.
    Uid,
    /// Group id, `u32` (the upper half of `bpf_get_current_uid_gid`).
    Gid,
    /// Current task's command name, `str[16]`.
    Comm,
    /// CPU number, `u32`.
    Cpu,
    /// Monotonic clock in nanoseconds, `u64`.
    Nsecs,
    /// Pid of the child `ppisc run -c CMD` started, `u32`; a compile-time constant.
    Cpid,
}
