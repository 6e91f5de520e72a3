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
    /// Event types sent by `emit` and `print`, indexed by `EventId`.
    pub events: Vec<EventDef>,
}

pub type EventId = usize;

/// Bytes before an event record's fields: the `u32` event-type id, then padding.
pub const EVENT_HEADER_BYTES: u32 = 4;

impl EventDef {
    /// Byte offset of each field in the record (see [`record_layout`]).
    pub fn field_offsets(&self) -> Vec<u32> {
        record_layout(self.fields.iter().map(|f| f.ty)).0
    }

    /// The record's size in bytes (see [`record_layout`]).
    pub fn record_size(&self) -> u32 {
        record_layout(self.fields.iter().map(|f| f.ty)).1
    }
}

/// The byte layout of an event record holding values of `types`, in order: the header
/// ([`EVENT_HEADER_BYTES`]), then each value at its type's alignment, like a C struct, except
/// that strings start on 8 bytes (so that the probe copies them a word at a time); the size
/// is rounded up to 8 bytes (a stack slot's unit). Returns the offsets and the size.
pub fn record_layout(types: impl IntoIterator<Item = Ty>) -> (Vec<u32>, u32) {
    let mut end = EVENT_HEADER_BYTES;
    let offsets = types
        .into_iter()
        .map(|ty| {
            let align = if matches!(ty, Ty::Str { .. }) { 8 } else { ty.align().max(1) };
            let at = end.div_ceil(align) * align;
            end = at + ty.size();
            at
        })
        .collect();
    (offsets, end.div_ceil(8) * 8)
}

/// The event type of `clear m;` records: user space empties map number `map` (its index in
/// the program's maps) when it reads one. The `.` keeps it apart from every `emit` name.
pub const CLEAR_EVENT: &str = "ppis.clear";
/// The one field of a [`CLEAR_EVENT`] record: the map's index, a `u32`.
pub const CLEAR_EVENT_MAP_FIELD: &str = "map";

/// One event type: an `emit NAME` (all `emit`s of a name share it) or one `print` statement.
#[derive(Clone, Debug, PartialEq)]
pub struct EventDef {
    /// The `emit`'s name; `print` for a `print` statement.
    pub name: String,
    /// The first `emit` of the name, or the `print` statement.
    pub span: Span,
    /// The values the record carries, in order.
    pub fields: Vec<EventField>,
    /// For `print`: the format, whose conversions take the fields in order.
    pub format: Option<PrintFormat>,
}

#[derive(Clone, Debug, PartialEq)]
pub struct EventField {
    /// The field's name (`arg0`, `arg1`, .. for `print`).
    pub name: String,
    pub ty: Ty,
}

/// A checked `print` format: literal text and conversions, alternating as written.
#[derive(Clone, Debug, PartialEq)]
pub struct PrintFormat {
    pub pieces: Vec<FormatPiece>,
}

#[derive(Clone, Debug, PartialEq)]
pub enum FormatPiece {
    /// Text printed as is (`%%` already turned into `%`).
    Text(String),
    /// A conversion of the next argument.
    Conversion(Conversion),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Conversion {
    /// `%d`: a signed decimal integer.
    Signed,
    /// `%u`: an unsigned decimal integer.
    Unsigned,
    /// `%x`: lower-case hexadecimal.
    Hex,
    /// `%s`: a string.
    Str,
}

impl Conversion {
    /// The specifier as written, e.g. `%d`.
    pub fn specifier(self) -> &'static str {
        match self {
            Conversion::Signed => "%d",
            Conversion::Unsigned => "%u",
            Conversion::Hex => "%x",
            Conversion::Str => "%s",
        }
    }
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
    /// `lru_hash`, or a keyed map declared `lru`: when full, an insert evicts the least
    /// recently used entry instead of failing.
    pub lru: bool,
    /// `percpu_hash` / `lru_percpu_hash`: a plain keyed map of which every CPU holds its own
    /// value for each key (integers, summed over the CPUs when read). Aggregations are
    /// per-CPU whatever this says; arrays say it in their kind.
    pub per_cpu: bool,
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
    /// `stats`: per CPU the sum and the number of recorded values (like `Avg`), read as
    /// count, total and average.
    Stats,
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
    /// A dormant probe's activation rule; `None`: attached as soon as it is loaded.
    pub activation: Option<Activation>,
    /// Evaluated first; the body runs only when it is true.
    pub predicate: Option<Expr>,
    pub body: Vec<Stmt>,
    /// Every local of the probe, indexed by `LocalId`.
    pub locals: Vec<Local>,
}

/// `activate when anomaly(SIGNAL) > threshold for for_seconds`, checked.
#[derive(Clone, Debug, PartialEq)]
pub struct Activation {
    /// The sentinel aggregation: a map of this file, or `bundle::map` in another bundle.
    pub signal: String,
    /// In (0, 1).
    pub threshold: f64,
    /// Positive.
    pub for_seconds: f64,
    pub span: Span,
}

/// Where a probe attaches. `RawTracepoint`: a raw tracepoint, whose `arg0..` are its u64
/// arguments; `Profile`: perf-event CPU sampling at `hz` on every CPU; `Interval`: a timer
/// firing every `period_ms` on one CPU; `Begin`/`End`: run once before the other probes
/// attach / after they are detached. `Usdt`: one site of USDT probe `PROVIDER:NAME` in the ELF
/// file at `path`, a uprobe at `address` whose `arg0..` are read as the site's note describes.
#[derive(Clone, Debug, PartialEq)]
pub enum Attach {
    Tracepoint { category: String, name: String, span: Span },
    Uprobe { path: String, symbol: String, span: Span },
    Uretprobe { path: String, symbol: String, span: Span },
    Usdt { path: String, provider: String, name: String, address: u64, span: Span },
    RawTracepoint { name: String, span: Span },
    Profile { hz: u64, span: Span },
    Interval { period_ms: u64, span: Span },
    Begin { span: Span },
    End { span: Span },
}

impl Attach {
    /// The attach point's full name, as the `probe` builtin gives it and messages print it:
    /// `tracepoint:CAT:NAME`, `uprobe:PATH:SYMBOL`, `profile:hz:99`, `begin`, ... (intervals in
    /// milliseconds whatever unit the source used).
    pub fn full_name(&self) -> String {
        match self {
            Attach::Tracepoint { category, name, .. } => format!("tracepoint:{category}:{name}"),
            Attach::Uprobe { path, symbol, .. } => format!("uprobe:{path}:{symbol}"),
            Attach::Uretprobe { path, symbol, .. } => format!("uretprobe:{path}:{symbol}"),
            Attach::Usdt { path, provider, name, .. } => format!("usdt:{path}:{provider}:{name}"),
            Attach::RawTracepoint { name, .. } => format!("rawtracepoint:{name}"),
            Attach::Profile { hz, .. } => format!("profile:hz:{hz}"),
            Attach::Interval { period_ms, .. } => format!("interval:ms:{period_ms}"),
            Attach::Begin { .. } => "begin".to_string(),
            Attach::End { .. } => "end".to_string(),
        }
    }
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
    /// `emit NAME { .. }` and `print(..)`: sends one record of event type `event` with
    /// `values` (of the event's field types, in field order) to user space.
    Emit {
        event: EventId,
        values: Vec<Expr>,
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
    /// `buf(ptr, N)`: exactly `len` bytes at `ptr` (a `u64`) read from `space` into a
    /// `buf[len]`; a faulting read gives `len` zero bytes.
    ReadBuf {
        ptr: Box<Expr>,
        len: u32,
        space: AddressSpace,
    },
    /// A `size`-byte integer at user address `address` (a `u64`), sign-extended when `signed`
    /// (a USDT argument in memory); a faulting read gives 0.
    ReadInt {
        address: Box<Expr>,
        size: u8,
        signed: bool,
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
    /// `ustack`/`kstack(N)` as a map key (type `Ty::Stack`): the current user or kernel stack
    /// recorded in the program's stack map for (`user`, `depth`), as its stack id.
    StackId {
        user: bool,
        depth: u8,
    },
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
    /// Id of the current task's cgroup v2 (the inode number of its directory), `u64`.
    Cgroup,
}
