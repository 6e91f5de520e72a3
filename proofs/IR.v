(** * IR: the syntax of the ppis IR, mirroring [compiler/ir/src/lib.rs], and its cost table.

    Abstractions against the Rust IR:
    - virtual registers, slots, maps and blocks are numbered by [nat] (their index);
    - the entry block is block 0 and blocks are numbered as the exporter listed them
      (in a topological order when the control flow is acyclic; unreachable blocks dropped);
    - offsets, widths and sizes are [N] (binary, so large constants stay cheap to compute with);
    - immediates are [Z]; the semantics reduces every value modulo 2^64;
    - source spans and the probe's trigger/rate metadata are left out: they carry no meaning
      for termination, cost or memory safety. *)

From Coq Require Import ZArith NArith List.
Import ListNotations.

Inductive operand : Type :=
| Reg (r : nat)
| Imm (z : Z).

Inductive aluop : Type :=
| Add | Sub | Mul | UDiv | UMod | And | Or | Xor | Shl | LShr | AShr.

Inductive cond : Type :=
| Ceq | Cne | Cult | Cule | Cugt | Cuge | Cslt | Csle | Csgt | Csge.

(** The memory a probe-read helper reads from. *)
Inductive space : Type :=
| UserSpace
| KernelSpace.

(** Kernel helpers; [GetCurrentComm s] fills the first 16 bytes of slot [s];
    [ProbeReadStr s len ptr sp] ([bpf_probe_read_user_str]/[bpf_probe_read_kernel_str]) copies
    at most [len] bytes of the string at [ptr] into slot [s], from offset 0. *)
Inductive helper : Type :=
| GetCurrentPidTgid
| GetCurrentUidGid
| GetCurrentComm (slot : nat)
| KtimeGetNs
| GetSmpProcessorId
| ProbeReadStr (slot : nat) (len : N) (ptr : nat) (sp : space)
(* [bpf_get_current_cgroup_id]: an oracle scalar, no memory effect. *)
| GetCurrentCgroupId
(* [bpf_probe_read_user]/[bpf_probe_read_kernel] of [len] raw bytes at [ptr] into slot [slot],
   from offset 0: the bytes are an oracle's, bounded by [len] like a string read's. *)
| ProbeRead (slot : nat) (len : N) (ptr : nat)
(* [bpf_ringbuf_output(map, slot, len, 0)] ([emit], [print]): reads the first [len] bytes of
   slot [slot] and sends them to ring buffer [map] as one record; the result (0, or < 0 when
   the buffer is full and the record is lost) is an oracle's. *)
| RingbufOutput (map : nat) (slot : nat) (len : N)
(* [bpf_get_stackid(ctx, map, flags)] ([ustack], [kstack] keys): walks the user ([user] =
   true) or kernel stack into stack-trace map [map]; the id (or a negative errno, which the
   program then tests) is an oracle's. It touches no slot, and programs never read the
   stack-trace map, so the model leaves the map as it was. *)
| GetStackId (map : nat) (user : bool).

(** The helper's identity without its arguments: what the cost table is indexed by. *)
Inductive helper_kind : Type :=
| HPidTgid | HUidGid | HComm | HKtime | HSmpId | HReadUserStr | HReadKernelStr | HCgroup | HProbeRead
| HRingbufOutput | HGetStackId.

Definition kind_of_helper (h : helper) : helper_kind :=
  match h with
  | GetCurrentPidTgid => HPidTgid
  | GetCurrentUidGid => HUidGid
  | GetCurrentComm _ => HComm
  | KtimeGetNs => HKtime
  | GetSmpProcessorId => HSmpId
  | ProbeReadStr _ _ _ UserSpace => HReadUserStr
  | ProbeReadStr _ _ _ KernelSpace => HReadKernelStr
  | GetCurrentCgroupId => HCgroup
  | ProbeRead _ _ _ => HProbeRead
  | RingbufOutput _ _ _ => HRingbufOutput
  | GetStackId _ _ => HGetStackId
  end.

Inductive op : Type :=
| Mov (dst : nat) (src : operand)
| Alu (o : aluop) (dst lhs : nat) (rhs : operand)
| Neg (dst src : nat)
| SetCond (c : cond) (dst lhs : nat) (rhs : operand)
| Extend (dst src : nat) (width : N) (signed : bool)
| LoadCtx (dst : nat) (offset width : N) (signed : bool)
| LoadSlot (dst slot : nat) (offset width : N)
| StoreSlot (slot : nat) (offset width : N) (src : operand)
| ZeroSlot (slot : nat)
| Call (dst : option nat) (h : helper)
| MapLookup (dst map key : nat)
| MapUpdate (map key value : nat) (flags : Z)
| MapDelete (map key : nat)
| LoadPtr (dst ptr : nat) (offset width : N)
| StorePtr (ptr : nat) (offset width : N) (src : operand).

Inductive terminator : Type :=
| Jump (target : nat)
| Branch (c : cond) (lhs : nat) (rhs : operand) (then_ otherwise : nat)
| BranchNull (ptr : nat) (is_null not_null : nat)
| Return.

Record block : Type := mk_block {
  b_ops : list op;
  b_term : terminator;
}.

(** [RingBuf]: [BPF_MAP_TYPE_RINGBUF], written only by [RingbufOutput] ([max_entries] is its
    size in bytes, key and value sizes 0); its contents are the records sent, in order, each as
    an entry with an empty key. [StackTrace]: [BPF_MAP_TYPE_STACK_TRACE], the map
    [GetStackId] records stacks in. [LruHash], [LruPerCpuHash]: hash maps that evict their
    least recently used entry on an insert into a full map; the model does not evict (the
    insert fails, as into a full hash map), which changes values only, never termination, cost
    or bounds. They are kinds of their own so that the cost table can price them apart. *)
Inductive map_kind : Type :=
| Hash | Array | PerCpuHash | PerCpuArray | RingBuf | StackTrace | LruHash | LruPerCpuHash.

Definition is_ring_buffer (k : map_kind) : bool :=
  match k with RingBuf => true | _ => false end.

Definition is_stack_trace (k : map_kind) : bool :=
  match k with StackTrace => true | _ => false end.

Record map_decl : Type := mk_map {
  map_type : map_kind;
  key_size : N;
  value_size : N;
  max_entries : N;
}.

(** One probe. [fn_reg_types] gives, per register, [Some m] when it holds a pointer to a
    value of map [m] (or null) and [None] for a scalar; registers past its end are scalars. *)
Record function : Type := mk_function {
  fn_slots : list N;
  fn_maps : list map_decl;
  fn_reg_types : list (option nat);
  fn_blocks : list block;
}.

Definition successors (t : terminator) : list nat :=
  match t with
  | Jump b => [b]
  | Branch _ _ _ b1 b2 => [b1; b2]
  | BranchNull _ b1 b2 => [b1; b2]
  | Return => []
  end.

Definition reg_type (p : function) (r : nat) : option nat :=
  match nth_error (fn_reg_types p) r with
  | Some t => t
  | None => None
  end.

(** ** Cost table

    What each instruction class, helper and terminator costs, in whatever unit the caller
    chose (the exporter copies the compiler's table). Costs are static: they depend on the
    instruction (and, for map operations, on the map's type), never on run-time values.
    A string read costs its kind's [c_helper] plus [c_helper_per_byte] per byte of its bound
    [len] (the bound, not the bytes actually copied: those are only known at run time); a raw
    read likewise, and a ring buffer output [c_helper_per_byte] per byte of its record. *)
Record cost_table : Type := mk_costs {
  c_mov : N;
  c_alu : aluop -> N;
  c_neg : N;
  c_set_cond : N;
  c_extend : N;
  c_load_ctx : N;
  c_load_slot : N;
  c_store_slot : N;
  c_zero_slot : N;
  c_helper : helper_kind -> N;
  c_helper_per_byte : helper_kind -> N;
  c_map_lookup : map_kind -> N;
  c_map_update : map_kind -> N;
  c_map_delete : map_kind -> N;
  c_load_ptr : N;
  c_store_ptr : N;
  c_jump : N;
  c_branch : N;
  c_branch_null : N;
  c_return : N;
}.

(** The cost of a map operation on map [m]; a map that does not exist costs nothing (such a
    program is rejected by [check_bounds] anyway). *)
Definition map_cost (f : map_kind -> N) (p : function) (m : nat) : N :=
  match nth_error (fn_maps p) m with
  | Some d => f (map_type d)
  | None => 0%N
  end.

(** The part of a helper's cost that grows with its byte count: string and raw-byte reads (by
    their bound) and ring buffer output (by the record's size) have one. *)
Definition helper_bytes_cost (ct : cost_table) (h : helper) : N :=
  match h with
  | ProbeReadStr _ len _ _ => c_helper_per_byte ct (kind_of_helper h) * len
  | ProbeRead _ len _ => c_helper_per_byte ct (kind_of_helper h) * len
  | RingbufOutput _ _ len => c_helper_per_byte ct (kind_of_helper h) * len
  | _ => 0
  end.

Definition op_cost (ct : cost_table) (p : function) (o : op) : N :=
  match o with
  | Mov _ _ => c_mov ct
  | Alu a _ _ _ => c_alu ct a
  | Neg _ _ => c_neg ct
  | SetCond _ _ _ _ => c_set_cond ct
  | Extend _ _ _ _ => c_extend ct
  | LoadCtx _ _ _ _ => c_load_ctx ct
  | LoadSlot _ _ _ _ => c_load_slot ct
  | StoreSlot _ _ _ _ => c_store_slot ct
  | ZeroSlot _ => c_zero_slot ct
  | Call _ h => c_helper ct (kind_of_helper h) + helper_bytes_cost ct h
  | MapLookup _ m _ => map_cost (c_map_lookup ct) p m
  | MapUpdate m _ _ _ => map_cost (c_map_update ct) p m
  | MapDelete m _ => map_cost (c_map_delete ct) p m
  | LoadPtr _ _ _ _ => c_load_ptr ct
  | StorePtr _ _ _ _ => c_store_ptr ct
  end.

Definition term_cost (ct : cost_table) (t : terminator) : N :=
  match t with
  | Jump _ => c_jump ct
  | Branch _ _ _ _ _ => c_branch ct
  | BranchNull _ _ _ => c_branch_null ct
  | Return => c_return ct
  end.

(** Every instruction of a block runs once the block is entered (a fault aside), so a block
    has one static cost. *)
Definition block_cost (ct : cost_table) (p : function) (b : block) : N :=
  (fold_left (fun acc o => acc + op_cost ct p o) (b_ops b) 0 + term_cost ct (b_term b))%N.
