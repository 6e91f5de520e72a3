(** * Semantics: a fuel-based big-step semantics of one probe, with its cost.

    Model (see docs/proofs.md for what it leaves out):
    - a register holds a 64-bit integer (a [Z] in [0, 2^64)), a null map-value pointer, or a
      pointer to the value stored under [key] in map [m];
    - a slot is byte memory; its declared size in [fn_slots] is what an access must stay within
      (an access past it is the fault [OutOfBounds], which [check_bounds] rules out);
    - maps are association lists from key bytes to value bytes; hash maps hold at most
      [max_entries] keys, array maps have every index below [max_entries] (zero until written);
      a ring buffer holds the records sent to it, in order, each under the empty key (a
      [RingbufOutput] that the environment says succeeded (result 0) appends the [len] bytes
      it read from its slot); a stack-trace map is never read by probes, and [GetStackId]
      leaves it as it was;
    - everything the program cannot know in advance comes from an environment [env]: the
      context bytes, helper results, the initial registers, stack bytes and map contents.
      The theorems quantify over every environment, so they hold whatever the kernel returns;
    - the cost of a run is the sum of the static cost of each block it enters. *)

From Coq Require Import ZArith NArith List Bool.
From Ppis Require Import IR.
Import ListNotations.
Local Open Scope Z_scope.

Definition modulus : Z := 2 ^ 64.
Definition norm (z : Z) : Z := Z.modulo z modulus.
Definition to_signed (z : Z) : Z :=
  let u := norm z in if Z.ltb u (2 ^ 63) then u else Z.sub u modulus.
Definition byte (z : Z) : Z := Z.modulo z 256.

Inductive value : Type :=
| VInt (z : Z)
| VNull
| VPtr (m : nat) (key : list Z).

Record state : Type := mk_state {
  st_regs : nat -> value;
  st_slots : nat -> N -> Z;
  st_maps : nat -> list (list Z * list Z);
  (** helper calls made so far: indexes the environment's helper results *)
  st_calls : nat;
}.

Record env : Type := mk_env {
  env_ctx : N -> Z;
  env_helper : nat -> Z;
  env_comm : N -> Z;
  (** the bytes the [n]th helper call copies when it is a string read (the string and its
      terminating NUL, as long as the kernel found it); the read keeps at most its bound *)
  env_str : nat -> list Z;
  env_regs : nat -> Z;
  env_stack : nat -> N -> Z;
  env_maps : nat -> list (list Z * list Z);
}.

Inductive fault : Type :=
| OutOfBounds
| NullDeref
| IllTyped
| BadBlock.

Inductive op_result : Type :=
| OpOk (s : state)
| OpFault (f : fault).

(** ** Values and bytes *)

Definition le_bytes (v : Z) (width : N) : list Z :=
  map (fun i => Z.land (Z.shiftr v (8 * Z.of_nat i)) 255) (seq 0 (N.to_nat width)).

Fixpoint le_value (bytes : list Z) : Z :=
  match bytes with
  | [] => 0
  | b :: rest => byte b + 256 * le_value rest
  end.

(** Keeps the low [width] bytes, zero- or sign-extended to 64 bits. *)
Definition extend (v : Z) (width : N) (signed : bool) : Z :=
  let bits := 8 * Z.of_N width in
  let low := Z.modulo v (2 ^ bits) in
  if signed && Z.leb (2 ^ (bits - 1)) low then norm (low - 2 ^ bits) else norm low.

Definition alu (o : aluop) (a b : Z) : Z :=
  let a := norm a in
  let b := norm b in
  match o with
  | Add => norm (a + b)
  | Sub => norm (a - b)
  | Mul => norm (a * b)
  | UDiv => if Z.eqb b 0 then 0 else a / b
  | UMod => if Z.eqb b 0 then a else Z.modulo a b
  | And => Z.land a b
  | Or => Z.lor a b
  | Xor => Z.lxor a b
  | Shl => norm (Z.shiftl a (Z.land b 63))
  | LShr => Z.shiftr a (Z.land b 63)
  | AShr => norm (Z.shiftr (to_signed a) (Z.land b 63))
  end.

Definition eval_cond (c : cond) (a b : Z) : bool :=
  let a := norm a in
  let b := norm b in
  match c with
  | Ceq => Z.eqb a b
  | Cne => negb (Z.eqb a b)
  | Cult => Z.ltb a b
  | Cule => Z.leb a b
  | Cugt => Z.ltb b a
  | Cuge => Z.leb b a
  | Cslt => Z.ltb (to_signed a) (to_signed b)
  | Csle => Z.leb (to_signed a) (to_signed b)
  | Csgt => Z.ltb (to_signed b) (to_signed a)
  | Csge => Z.leb (to_signed b) (to_signed a)
  end.

(** ** State access *)

Definition set_reg (s : state) (r : nat) (v : value) : state :=
  mk_state (fun r' => if Nat.eqb r' r then v else st_regs s r') (st_slots s) (st_maps s) (st_calls s).

Definition set_slots (s : state) (mem : nat -> N -> Z) : state :=
  mk_state (st_regs s) mem (st_maps s) (st_calls s).

Definition set_map (s : state) (m : nat) (entries : list (list Z * list Z)) : state :=
  mk_state (st_regs s) (st_slots s) (fun m' => if Nat.eqb m' m then entries else st_maps s m') (st_calls s).

Definition bump_calls (s : state) : state :=
  mk_state (st_regs s) (st_slots s) (st_maps s) (S (st_calls s)).

Definition get_int (s : state) (r : nat) : option Z :=
  match st_regs s r with
  | VInt z => Some z
  | _ => None
  end.

Definition eval_operand (s : state) (o : operand) : option Z :=
  match o with
  | Reg r => get_int s r
  | Imm z => Some (norm z)
  end.

(** Whether bytes [offset, offset + width) lie within slot [slot] as declared: the guard of
    every slot access, and what [check_bounds] checks statically. *)
Definition slot_ok (p : function) (slot : nat) (offset width : N) : bool :=
  match nth_error (fn_slots p) slot with
  | Some size => N.leb (offset + width) size
  | None => false
  end.

Definition read_bytes (mem : N -> Z) (offset width : N) : list Z :=
  map (fun i => byte (mem (offset + N.of_nat i)%N)) (seq 0 (N.to_nat width)).

Definition write_bytes (mem : nat -> N -> Z) (slot : nat) (offset : N) (bytes : list Z) : nat -> N -> Z :=
  fun s i =>
    if Nat.eqb s slot && N.leb offset i && N.ltb i (offset + N.of_nat (length bytes)) then
      byte (nth (N.to_nat (i - offset)) bytes 0)
    else mem s i.

(** Overwrites positions [offset ..] of a map value, keeping its length. *)
Fixpoint list_write (v : list Z) (pos offset : N) (bytes : list Z) : list Z :=
  match v with
  | [] => []
  | x :: rest =>
      (if N.leb offset pos && N.ltb pos (offset + N.of_nat (length bytes))
       then byte (nth (N.to_nat (pos - offset)) bytes 0) else x)
      :: list_write rest (N.succ pos) offset bytes
  end.

Fixpoint list_eqb (a b : list Z) : bool :=
  match a, b with
  | [], [] => true
  | x :: a', y :: b' => Z.eqb x y && list_eqb a' b'
  | _, _ => false
  end.

Fixpoint assoc (k : list Z) (l : list (list Z * list Z)) : option (list Z) :=
  match l with
  | [] => None
  | (k', v) :: rest => if list_eqb k k' then Some v else assoc k rest
  end.

(** Replaces the value under [k] in place, or appends a new entry. *)
Fixpoint assoc_set (k v : list Z) (l : list (list Z * list Z)) : list (list Z * list Z) :=
  match l with
  | [] => [(k, v)]
  | (k', v') :: rest => if list_eqb k k' then (k, v) :: rest else (k', v') :: assoc_set k v rest
  end.

Fixpoint assoc_remove (k : list Z) (l : list (list Z * list Z)) : list (list Z * list Z) :=
  match l with
  | [] => []
  | (k', v') :: rest => if list_eqb k k' then rest else (k', v') :: assoc_remove k rest
  end.

Definition is_array (k : map_kind) : bool :=
  match k with
  | Array | PerCpuArray => true
  | Hash | PerCpuHash | RingBuf | StackTrace | LruHash | LruPerCpuHash => false
  end.

(** An array map's index: the key's first four bytes, little-endian. *)
Definition array_index (key : list Z) : Z := le_value (firstn 4 key).

Definition lookup (d : map_decl) (entries : list (list Z * list Z)) (key : list Z) : bool :=
  if is_array (map_type d) then Z.ltb (array_index key) (Z.of_N (max_entries d))
  else match assoc key entries with Some _ => true | None => false end.

(** [bpf_map_update_elem]: flags 0 (any), 1 (only a new key), 2 (only an existing key);
    a failed update leaves the map as it was. *)
Definition update (d : map_decl) (entries : list (list Z * list Z)) (key v : list Z) (flags : Z)
  : list (list Z * list Z) :=
  let exists_ := lookup d entries key in
  let allowed :=
    if Z.eqb flags 0 then true
    else if Z.eqb flags 1 then negb exists_
    else if Z.eqb flags 2 then exists_
    else false in
  if negb allowed then entries
  else if is_array (map_type d) then assoc_set key v entries
  else if exists_ || Nat.ltb (length entries) (N.to_nat (max_entries d)) then assoc_set key v entries
  else entries.

(** Array elements cannot be deleted. *)
Definition delete (d : map_decl) (entries : list (list Z * list Z)) (key : list Z) : list (list Z * list Z) :=
  if is_array (map_type d) then entries else assoc_remove key entries.

(** ** Instructions *)

Definition with_int (s : state) (r : nat) (k : Z -> op_result) : op_result :=
  match get_int s r with
  | Some z => k z
  | None => OpFault IllTyped
  end.

Definition with_operand (s : state) (o : operand) (k : Z -> op_result) : op_result :=
  match eval_operand s o with
  | Some z => k z
  | None => OpFault IllTyped
  end.

Definition with_slot (p : function) (slot : nat) (offset width : N) (k : unit -> op_result) : op_result :=
  if slot_ok p slot offset width then k tt else OpFault OutOfBounds.

Definition with_map (p : function) (m : nat) (k : map_decl -> op_result) : op_result :=
  match nth_error (fn_maps p) m with
  | Some d => k d
  | None => OpFault OutOfBounds
  end.

(** Resolves a map-value pointer access of [width] bytes at [offset]. *)
Definition with_ptr (p : function) (s : state) (r : nat) (offset width : N)
  (k : nat -> map_decl -> list Z -> op_result) : op_result :=
  match st_regs s r with
  | VNull => OpFault NullDeref
  | VInt _ => OpFault IllTyped
  | VPtr m key =>
      match nth_error (fn_maps p) m with
      | Some d => if N.leb (offset + width) (value_size d) then k m d key else OpFault OutOfBounds
      | None => OpFault OutOfBounds
      end
  end.

Definition set_int (s : state) (dst : nat) (z : Z) : op_result := OpOk (set_reg s dst (VInt (norm z))).

Definition exec_op (p : function) (e : env) (o : op) (s : state) : op_result :=
  match o with
  | Mov dst (Reg src) => OpOk (set_reg s dst (st_regs s src))
  | Mov dst (Imm z) => set_int s dst z
  | Alu a dst lhs rhs => with_int s lhs (fun x => with_operand s rhs (fun y => set_int s dst (alu a x y)))
  | Neg dst src => with_int s src (fun x => set_int s dst (0 - x))
  | SetCond c dst lhs rhs =>
      with_int s lhs (fun x => with_operand s rhs (fun y => set_int s dst (if eval_cond c x y then 1 else 0)))
  | Extend dst src w signed => with_int s src (fun x => set_int s dst (extend x w signed))
  | LoadCtx dst offset w signed =>
      set_int s dst (extend (le_value (read_bytes (env_ctx e) offset w)) w signed)
  | LoadSlot dst slot offset w =>
      with_slot p slot offset w (fun _ => set_int s dst (le_value (read_bytes (st_slots s slot) offset w)))
  | StoreSlot slot offset w src =>
      with_slot p slot offset w (fun _ => with_operand s src (fun x =>
        OpOk (set_slots s (write_bytes (st_slots s) slot offset (le_bytes x w)))))
  | ZeroSlot slot =>
      match nth_error (fn_slots p) slot with
      | Some size => OpOk (set_slots s (write_bytes (st_slots s) slot 0 (repeat 0 (N.to_nat size))))
      | None => OpFault OutOfBounds
      end
  | Call dst h =>
      let s' := match h with
                | GetCurrentComm slot =>
                    if slot_ok p slot 0 16 then
                      OpOk (set_slots s (write_bytes (st_slots s) slot 0 (read_bytes (env_comm e) 0 16)))
                    else OpFault OutOfBounds
                | ProbeReadStr slot len _ _ =>
                    (* the helper never writes past [len] bytes, whatever it finds at [ptr] *)
                    if slot_ok p slot 0 len then
                      OpOk (set_slots s (write_bytes (st_slots s) slot 0
                                           (firstn (N.to_nat len) (env_str e (st_calls s)))))
                    else OpFault OutOfBounds
                | ProbeRead slot len _ =>
                    (* raw bytes: never more than [len], whatever the oracle supplies *)
                    if slot_ok p slot 0 len then
                      OpOk (set_slots s (write_bytes (st_slots s) slot 0
                                           (firstn (N.to_nat len) (env_str e (st_calls s)))))
                    else OpFault OutOfBounds
                | RingbufOutput m slot len =>
                    (* reads [len] bytes of the slot: the record; the buffer keeps it when the
                       helper reports success (0), a full buffer loses it *)
                    match nth_error (fn_maps p) m with
                    | Some d =>
                        if slot_ok p slot 0 len then
                          if is_ring_buffer (map_type d) then
                            if Z.eqb (norm (env_helper e (st_calls s))) 0 then
                              OpOk (set_map s m (st_maps s m ++ [([], read_bytes (st_slots s slot) 0 len)]))
                            else OpOk s
                          else OpFault IllTyped
                        else OpFault OutOfBounds
                    | None => OpFault OutOfBounds
                    end
                | GetStackId m _ =>
                    (* the stack id is the oracle's result; nothing the program reads changes *)
                    match nth_error (fn_maps p) m with
                    | Some d => if is_stack_trace (map_type d) then OpOk s else OpFault IllTyped
                    | None => OpFault OutOfBounds
                    end
                | _ => OpOk s
                end in
      let result := match h with GetCurrentComm _ => 0 | _ => env_helper e (st_calls s) end in
      match s' with
      | OpOk s' =>
          match dst with
          | Some d => set_int (bump_calls s') d result
          | None => OpOk (bump_calls s')
          end
      | f => f
      end
  | MapLookup dst m key =>
      with_map p m (fun d => with_slot p key 0 (key_size d) (fun _ =>
        let k := read_bytes (st_slots s key) 0 (key_size d) in
        OpOk (set_reg s dst (if lookup d (st_maps s m) k then VPtr m k else VNull))))
  | MapUpdate m key v flags =>
      with_map p m (fun d => with_slot p key 0 (key_size d) (fun _ => with_slot p v 0 (value_size d) (fun _ =>
        let k := read_bytes (st_slots s key) 0 (key_size d) in
        let bytes := read_bytes (st_slots s v) 0 (value_size d) in
        OpOk (set_map s m (update d (st_maps s m) k bytes (norm flags))))))
  | MapDelete m key =>
      with_map p m (fun d => with_slot p key 0 (key_size d) (fun _ =>
        OpOk (set_map s m (delete d (st_maps s m) (read_bytes (st_slots s key) 0 (key_size d))))))
  | LoadPtr dst ptr offset w =>
      with_ptr p s ptr offset w (fun m d key =>
        let stored := match assoc key (st_maps s m) with Some v => v | None => [] end in
        set_int s dst (le_value (map (fun i => nth (N.to_nat offset + i) stored 0) (seq 0 (N.to_nat w)))))
  | StorePtr ptr offset w src =>
      with_ptr p s ptr offset w (fun m d key => with_operand s src (fun x =>
        let bytes := le_bytes x w in
        match assoc key (st_maps s m) with
        | Some stored => OpOk (set_map s m (assoc_set key (list_write stored 0 offset bytes) (st_maps s m)))
        | None =>
            (* an array element not written yet is zeros; a hash entry deleted since the
               lookup is gone, and the write is lost *)
            if is_array (map_type d) then
              OpOk (set_map s m (assoc_set key
                (list_write (repeat 0 (N.to_nat (value_size d))) 0 offset bytes) (st_maps s m)))
            else OpOk s
        end))
  end.

Fixpoint exec_ops (p : function) (e : env) (ops : list op) (s : state) : op_result :=
  match ops with
  | [] => OpOk s
  | o :: rest =>
      match exec_op p e o s with
      | OpOk s' => exec_ops p e rest s'
      | OpFault f => OpFault f
      end
  end.

Inductive next : Type :=
| NReturn
| NGoto (b : nat)
| NFault (f : fault).

Definition exec_term (t : terminator) (s : state) : next :=
  match t with
  | Jump b => NGoto b
  | Branch c lhs rhs b1 b2 =>
      match get_int s lhs, eval_operand s rhs with
      | Some x, Some y => NGoto (if eval_cond c x y then b1 else b2)
      | _, _ => NFault IllTyped
      end
  | BranchNull r b1 b2 =>
      match st_regs s r with
      | VNull => NGoto b1
      | VPtr _ _ => NGoto b2
      | VInt _ => NFault IllTyped
      end
  | Return => NReturn
  end.

(** ** Runs *)

(** [Done s cost steps]: returned in state [s] after entering [steps] blocks whose costs add
    up to [cost]. *)
Inductive result : Type :=
| Done (s : state) (cost : N) (steps : nat)
| Failed (f : fault)
| OutOfFuel.

(** Runs from block [b]; each block entered takes one unit of [fuel]. *)
Fixpoint exec (ct : cost_table) (p : function) (e : env) (fuel : nat) (b : nat) (s : state) : result :=
  match fuel with
  | O => OutOfFuel
  | S fuel' =>
      match nth_error (fn_blocks p) b with
      | None => Failed BadBlock
      | Some blk =>
          match exec_ops p e (b_ops blk) s with
          | OpFault f => Failed f
          | OpOk s' =>
              match exec_term (b_term blk) s' with
              | NFault f => Failed f
              | NReturn => Done s' (block_cost ct p blk) 1
              | NGoto t =>
                  match exec ct p e fuel' t s' with
                  | Done s'' c n => Done s'' (block_cost ct p blk + c)%N (S n)
                  | r => r
                  end
              end
          end
      end
  end.

Definition initial_state (e : env) : state :=
  mk_state (fun r => VInt (norm (env_regs e r))) (env_stack e) (env_maps e) 0.

(** A probe runs from its entry, block 0. *)
Definition run (ct : cost_table) (p : function) (e : env) (fuel : nat) : result :=
  exec ct p e fuel 0 (initial_state e).

(** ** Observation, for comparing with other interpreters

    A run as a list of integers: [0; cost; steps] then each register (a pointer as -2, null as
    -1), each slot's declared bytes, and per map its entry count then each entry's key and
    value bytes; [1; fault] for a fault; [2] when out of fuel. *)
Definition value_code (v : value) : Z :=
  match v with
  | VInt z => z
  | VNull => -1
  | VPtr _ _ => -2
  end.

Definition fault_code (f : fault) : Z :=
  match f with
  | OutOfBounds => 0
  | NullDeref => 1
  | IllTyped => 2
  | BadBlock => 3
  end.

Definition observe (p : function) (nregs : nat) (r : result) : list Z :=
  match r with
  | Done s c n =>
      [0; Z.of_N c; Z.of_nat n]
        ++ map (fun i => value_code (st_regs s i)) (seq 0 nregs)
        ++ concat (map (fun '(slot, size) => read_bytes (st_slots s slot) 0 size)
                     (combine (seq 0 (length (fn_slots p))) (fn_slots p)))
        ++ concat (map (fun m => let entries := st_maps s m in
                          Z.of_nat (length entries) :: concat (map (fun '(k, v) => k ++ v) entries))
                     (seq 0 (length (fn_maps p))))
  | Failed f => [1; fault_code f]
  | OutOfFuel => [2]
  end.
