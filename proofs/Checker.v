(** * Checker: executable checks on a probe, run by [vm_compute] in each probe's proof file.

    - [check_acyclic]: the blocks are listed in an order where every edge goes forward (a
      topological numbering, which the exporter chooses), and every target exists;
    - [wcet]: the costliest path from the entry, by one pass over that order;
    - [check_bounds]: every slot and map-value access stays within its declared size (a string
      or raw read's bound [len] and a ring buffer record's [len] included), the ring buffer and
      stack-trace helpers name a map of their kind, and
      map-value pointers keep the map their register is declared with. *)

From Coq Require Import ZArith NArith List Bool.
From Ppis Require Import IR Semantics.
Import ListNotations.

(** [f] holds of every block, given its index (starting at [i]). *)
Fixpoint all_indexed (f : nat -> block -> bool) (i : nat) (l : list block) : bool :=
  match l with
  | [] => true
  | b :: rest => f i b && all_indexed f (S i) rest
  end.

Definition edges_forward (n : nat) (i : nat) (b : block) : bool :=
  forallb (fun t => Nat.ltb i t && Nat.ltb t n) (successors (b_term b)).

Definition check_acyclic (p : function) : bool :=
  let n := length (fn_blocks p) in
  Nat.ltb 0 n && all_indexed (edges_forward n) 0 (fn_blocks p).

Definition max_list (l : list N) : N := fold_right N.max 0%N l.

(** The costliest path from each block of [blocks], which start at index [i]: element [j] of
    the result is block [i + j]'s. A successor [t] of block [i] is looked up in the table of
    the blocks after it, at [t - (i + 1)]; when edges go forward that is block [t]'s entry. *)
Fixpoint wcet_from (ct : cost_table) (p : function) (i : nat) (blocks : list block) : list N :=
  match blocks with
  | [] => []
  | b :: rest =>
      let later := wcet_from ct p (S i) rest in
      (block_cost ct p b + max_list (map (fun t => nth (t - S i) later 0%N) (successors (b_term b))))%N
        :: later
  end.

Definition wcet_table (ct : cost_table) (p : function) : list N := wcet_from ct p 0 (fn_blocks p).

Definition wcet (ct : cost_table) (p : function) : N := nth 0 (wcet_table ct p) 0%N.

Definition option_nat_eqb (a b : option nat) : bool :=
  match a, b with
  | Some x, Some y => Nat.eqb x y
  | None, None => true
  | _, _ => false
  end.

Definition ptr_ok (p : function) (r : nat) (offset width : N) : bool :=
  match reg_type p r with
  | Some m =>
      match nth_error (fn_maps p) m with
      | Some d => N.leb (offset + width) (value_size d)
      | None => false
      end
  | None => false
  end.

Definition op_ok (p : function) (o : op) : bool :=
  match o with
  | Mov dst (Reg src) =>
      match reg_type p src with
      | Some m => option_nat_eqb (reg_type p dst) (Some m)
      | None => true
      end
  | LoadSlot _ slot offset w => slot_ok p slot offset w
  | StoreSlot slot offset w _ => slot_ok p slot offset w
  | ZeroSlot slot => match nth_error (fn_slots p) slot with Some _ => true | None => false end
  | Call _ (GetCurrentComm slot) => slot_ok p slot 0 16
  | Call _ (ProbeReadStr slot len _ _) => slot_ok p slot 0 len
  | Call _ (ProbeRead slot len _) => slot_ok p slot 0 len
  | Call _ (RingbufOutput m slot len) =>
      slot_ok p slot 0 len
      && match nth_error (fn_maps p) m with Some d => is_ring_buffer (map_type d) | None => false end
  | Call _ (GetStackId m _) =>
      match nth_error (fn_maps p) m with Some d => is_stack_trace (map_type d) | None => false end
  | MapLookup dst m key =>
      match nth_error (fn_maps p) m with
      | Some d => slot_ok p key 0 (key_size d) && option_nat_eqb (reg_type p dst) (Some m)
      | None => false
      end
  | MapUpdate m key v _ =>
      match nth_error (fn_maps p) m with
      | Some d => slot_ok p key 0 (key_size d) && slot_ok p v 0 (value_size d)
      | None => false
      end
  | MapDelete m key =>
      match nth_error (fn_maps p) m with
      | Some d => slot_ok p key 0 (key_size d)
      | None => false
      end
  | LoadPtr _ r offset w => ptr_ok p r offset w
  | StorePtr r offset w _ => ptr_ok p r offset w
  | _ => true
  end.

Definition check_bounds (p : function) : bool :=
  forallb (fun b => forallb (op_ok p) (b_ops b)) (fn_blocks p).
