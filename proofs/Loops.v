(** * Loops: termination and cost of probes with bounded loops, from untrusted hints.

    A probe with loops comes with [hints] that the exporter computes and this file checks:
    - per block, interval [facts] about some registers on entry to the block (each holds an
      integer within [lo, hi], and within [0, 2^64)); [check_hints] re-derives them on every
      edge by a small abstract interpretation ([transfer_op], [narrow]) and fails unless the
      target's facts follow;
    - per loop, its blocks, latch, counter [c], step [k], the limit the counter stays below in
      the latch, the counter's least start value and a trip count [T]; [loop_ok] checks that
      only the latch writes [c], once, by [c := c + k], that [c] is below the limit on entry to
      the latch (from the facts, so without wrapping), and [entry_ok] that on every edge into
      the loop [c] is at least the start, with [T >= ceil((limit - start) / k)].
    Then [rem] (how many more times the latch can run, from [c]'s value) drops by one at each
    run of the latch and is at most [T] when the loop is entered. A [potentials] certificate
    gives each block a number [P b] (an integer, possibly negative) and each loop a weight [W];
    [check_potentials w] checks locally, on every edge, that [w block + P t + deltas <= P b],
    where entering a loop adds [T * W], running its latch subtracts [W] and leaving subtracts
    the [W] the facts guarantee at the block (the counter below the limit: [rem >= 1]), and at
    every block that [w block <= P b + guaranteed weights]. By induction on the run, the
    potential [P b + sum of rem * W] bounds the weight of the rest of the run: with [w] the
    block cost it bounds the cost ([exec_cost_le_potential]), with [w = 1] the number of blocks
    entered ([exec_steps_le_potential], and so termination: [exec_stops_within_potential]).
    Nothing about the hints is trusted: a wrong fact, trip count or potential makes a check
    fail. *)

From Coq Require Import ZArith NArith List Bool Lia.
From Ppis Require Import IR Semantics Checker Soundness.
Import ListNotations.
Local Open Scope Z_scope.

(** ** Abstract states: intervals for some registers *)

Definition interval : Type := (Z * Z)%type.

(** A list of (register, what is known); the first entry for a register wins. *)
Definition astate : Type := list (nat * option interval).

Fixpoint aget (A : astate) (r : nat) : option interval :=
  match A with
  | [] => None
  | (r', v) :: rest => if Nat.eqb r r' then v else aget rest r
  end.

(** Any value [set_int] writes. *)
Definition full : option interval := Some (0, modulus - 1).

Definition fact_ok (f : option interval) (v : value) : Prop :=
  match f with
  | Some (lo, hi) => exists x, v = VInt x /\ lo <= x <= hi /\ 0 <= x < modulus
  | None => True
  end.

Definition holds (A : astate) (s : state) : Prop := forall r, fact_ok (aget A r) (st_regs s r).

(** The register an instruction writes. *)
Definition op_dst (o : op) : option nat :=
  match o with
  | Mov d _ | Alu _ d _ _ | Neg d _ | SetCond _ d _ _ | Extend d _ _ _ | LoadCtx d _ _ _
  | LoadSlot d _ _ _ | MapLookup d _ _ | LoadPtr d _ _ _ => Some d
  | Call d _ => d
  | StoreSlot _ _ _ _ | ZeroSlot _ | MapUpdate _ _ _ _ | MapDelete _ _ | StorePtr _ _ _ _ => None
  end.

Definition op_interval (A : astate) (o : op) : option interval :=
  match o with
  | Mov _ (Imm z) => Some (norm z, norm z)
  | Mov _ (Reg r) => aget A r
  | Alu Add _ l (Imm k) =>
      match aget A l with
      | Some (lo, hi) => if hi + norm k <? modulus then Some (lo + norm k, hi + norm k) else full
      | None => full
      end
  | MapLookup _ _ _ => None
  | _ => full
  end.

Definition transfer_op (A : astate) (o : op) : astate :=
  match op_dst o with
  | Some d => (d, op_interval A o) :: A
  | None => A
  end.

Definition transfer_ops (A : astate) (ops : list op) : astate := fold_left transfer_op ops A.

Definition operand_interval (A : astate) (o : operand) : option interval :=
  match o with
  | Imm z => Some (norm z, norm z)
  | Reg r => aget A r
  end.

(** What taking a branch says about its left operand (unsigned comparisons only). *)
Definition narrow (c : cond) (taken : bool) (l : nat) (rhs : operand) (A : astate) : astate :=
  match aget A l, operand_interval A rhs with
  | Some (lo, hi), Some (ylo, yhi) =>
      let iv := match c, taken with
                | Cult, true | Cuge, false => (lo, Z.min hi (yhi - 1))
                | Cult, false | Cuge, true => (Z.max lo ylo, hi)
                | Cugt, true | Cule, false => (Z.max lo (ylo + 1), hi)
                | Cugt, false | Cule, true => (lo, Z.min hi yhi)
                | _, _ => (lo, hi)
                end in
      (l, Some iv) :: A
  | _, _ => A
  end.

(** Each successor of a block with what is known on that edge, from the facts [A] at its entry. *)
Definition out_edges (A : astate) (blk : block) : list (nat * astate) :=
  let A' := transfer_ops A (b_ops blk) in
  match b_term blk with
  | Jump t => [(t, A')]
  | Branch c l r t1 t2 => [(t1, narrow c true l r A'); (t2, narrow c false l r A')]
  | BranchNull _ t1 t2 => [(t1, A'); (t2, A')]
  | Return => []
  end.

Definition within_iv (inner outer : option interval) : bool :=
  match outer with
  | None => true
  | Some (lo, hi) =>
      match inner with
      | Some (lo', hi') => (lo <=? lo') && (hi' <=? hi)
      | None => false
      end
  end.

Definition implies (A F : astate) : bool := forallb (fun '(r, _) => within_iv (aget A r) (aget F r)) F.

(** ** Hints *)

Record loop_hint : Type := mk_loop {
  lp_blocks : list nat;
  lp_latch : nat;
  lp_counter : nat;
  lp_step : Z;
  (** the counter is below it on entry to the latch *)
  lp_limit : Z;
  (** the counter is at least this on every edge into the loop *)
  lp_start : Z;
  lp_trips : N;
}.

Record hints : Type := mk_hints {
  h_facts : list astate;
  h_loops : list loop_hint;
}.

Definition facts_at (h : hints) (b : nat) : astate := nth b (h_facts h) [].

Definition mem (b : nat) (l : list nat) : bool := existsb (Nat.eqb b) l.

(** How many more times a latch can run when its counter is [x]: [ceil((limit - x) / step)]. *)
Definition rem_z (limit step x : Z) : Z := if x <? limit then (limit - x + step - 1) / step else 0.

Definition counter_rem (l : loop_hint) (s : state) : Z :=
  match get_int s (lp_counter l) with
  | Some x => rem_z (lp_limit l) (lp_step l) x
  | None => 0
  end.

Definition writes (r : nat) (o : op) : bool :=
  match op_dst o with Some d => Nat.eqb d r | None => false end.

Definition is_step (c : nat) (k : Z) (o : op) : bool :=
  match o with
  | Alu Add d l (Imm k') => Nat.eqb d c && Nat.eqb l c && Z.eqb k' k
  | _ => false
  end.

(** [c] is written exactly once in [ops], by [c := c + k]. *)
Fixpoint steps_once (c : nat) (k : Z) (ops : list op) : bool :=
  match ops with
  | [] => false
  | o :: rest =>
      if is_step c k o then forallb (fun o => negb (writes c o)) rest
      else negb (writes c o) && steps_once c k rest
  end.

Definition loop_ok (p : function) (h : hints) (l : loop_hint) : bool :=
  let c := lp_counter l in
  let k := lp_step l in
  (0 <? k) && (k <? modulus) && (0 <=? lp_limit l) && (lp_limit l - 1 + k <? modulus)
  && negb (mem 0 (lp_blocks l))
  && match aget (facts_at h (lp_latch l)) c with
     | Some (_, hi) => hi <? lp_limit l
     | None => false
     end
  && forallb (fun b =>
       match nth_error (fn_blocks p) b with
       | Some blk =>
           if Nat.eqb b (lp_latch l) then steps_once c k (b_ops blk)
           else forallb (fun o => negb (writes c o)) (b_ops blk)
       | None => false
       end) (lp_blocks l).

(** On an edge [b -> t] into loop [l] (with [A] known on it): the counter starts high enough
    for the trip count. *)
Definition entry_ok (b t : nat) (A : astate) (l : loop_hint) : bool :=
  if negb (mem b (lp_blocks l)) && mem t (lp_blocks l) then
    match aget A (lp_counter l) with
    | Some (lo, _) => (lp_start l <=? lo) && (rem_z (lp_limit l) (lp_step l) (lp_start l) <=? Z.of_N (lp_trips l))
    | None => false
    end
  else true.

Definition edge_ok (p : function) (h : hints) (b : nat) (e : nat * astate) : bool :=
  let '(t, A) := e in
  Nat.ltb t (length (fn_blocks p)) && implies A (facts_at h t) && forallb (entry_ok b t A) (h_loops h).

Definition check_hints (p : function) (h : hints) : bool :=
  Nat.ltb 0 (length (fn_blocks p))
  && match facts_at h 0 with [] => true | _ => false end
  && forallb (loop_ok p h) (h_loops h)
  && all_indexed (fun b blk => forallb (edge_ok p h b) (out_edges (facts_at h b) blk)) 0 (fn_blocks p).

(** ** Potentials *)

Record potentials : Type := mk_potentials {
  pot_blocks : list Z;
  pot_loops : list N;
}.

Definition loop_weights (h : hints) (pot : potentials) : list (loop_hint * N) :=
  combine (h_loops h) (pot_loops pot).

Definition sumZ {A : Type} (f : A -> Z) (l : list A) : Z := fold_right (fun x acc => f x + acc) 0 l.

(** A loop's weight that block [b] is sure to hold: where the facts put the counter below the
    limit, at least one more run of the latch remains. *)
Definition guaranteed (h : hints) (b : nat) (lw : loop_hint * N) : Z :=
  let '(l, w) := lw in
  if mem b (lp_blocks l) then
    match aget (facts_at h b) (lp_counter l) with
    | Some (_, hi) => if hi <? lp_limit l then Z.of_N w else 0
    | None => 0
    end
  else 0.

(** What edge [b -> t] changes in loop [l]'s share of the potential: entering adds the trip
    count times the weight, running the latch gives one weight back, and leaving gives back
    the weight the facts guarantee at [b]. *)
Definition delta (h : hints) (b t : nat) (lw : loop_hint * N) : Z :=
  let '(l, w) := lw in
  if mem t (lp_blocks l) then
    if mem b (lp_blocks l) then (if Nat.eqb b (lp_latch l) then - Z.of_N w else 0)
    else Z.of_N (lp_trips l) * Z.of_N w
  else - guaranteed h b lw.

Definition pot_at (pot : potentials) (b : nat) : Z := nth b (pot_blocks pot) 0.


Definition check_potentials (w : block -> N) (p : function) (h : hints) (pot : potentials) : bool :=
  all_indexed (fun b blk =>
    (Z.of_N (w blk) <=? pot_at pot b + sumZ (guaranteed h b) (loop_weights h pot))
    && forallb (fun e => Z.of_N (w blk) + pot_at pot (fst e) + sumZ (delta h b (fst e)) (loop_weights h pot)
                          <=? pot_at pot b)
               (out_edges (facts_at h b) blk)) 0 (fn_blocks p).

Definition contrib (b : nat) (s : state) (lw : loop_hint * N) : Z :=
  let '(l, w) := lw in if mem b (lp_blocks l) then counter_rem l s * Z.of_N w else 0.

Definition potential (h : hints) (pot : potentials) (b : nat) (s : state) : Z :=
  pot_at pot b + sumZ (contrib b s) (loop_weights h pot).

(** The bound a certificate proves: the entry's potential, when every check passes. *)
Definition loop_bound (w : block -> N) (p : function) (h : hints) (pot : potentials) : option Z :=
  if check_hints p h && check_potentials w p h pot then Some (pot_at pot 0) else None.

Definition within (o : option Z) (bound : N) : bool :=
  match o with Some x => x <=? Z.of_N bound | None => false end.

(** ** Soundness of the abstract interpretation *)

Lemma norm_small : forall x, 0 <= x < modulus -> norm x = x.
Proof. intros x H. unfold norm. apply Z.mod_small. exact H. Qed.

Lemma modulus_pos : 0 < modulus.
Proof. unfold modulus. lia. Qed.

Lemma norm_range : forall z, 0 <= norm z < modulus.
Proof. intros z. unfold norm. apply Z.mod_pos_bound. exact modulus_pos. Qed.

Lemma full_ok : forall z, fact_ok full (VInt (norm z)).
Proof. intros z. unfold fact_ok, full. pose proof (norm_range z). exists (norm z). repeat split; lia. Qed.

(** What an instruction does to the registers: only its destination changes. *)
Lemma exec_op_other : forall p e o s s' r,
  exec_op p e o s = OpOk s' -> op_dst o <> Some r -> st_regs s' r = st_regs s r.
Proof.
  intros p e o s s' r H Hne.
  destruct o; simpl in H, Hne;
    unfold with_int, with_operand, with_slot, with_map, with_ptr, set_int, set_reg, set_slots, set_map,
      bump_calls in H;
    repeat match goal with
           | H' : context[match ?x with _ => _ end] |- _ =>
               match x with
               | context[match _ with _ => _ end] => fail 1
               | _ => destruct x eqn:?
               end
           end;
    try discriminate;
    repeat match goal with H' : OpOk _ = OpOk _ |- _ => injection H' as H'; subst end;
    simpl; try reflexivity;
    match goal with
    | |- (if Nat.eqb r ?d then _ else _) = _ =>
        destruct (Nat.eqb r d) eqn:E; [apply Nat.eqb_eq in E; subst; congruence | reflexivity]
    end.
Qed.

(** Its destination gets an integer [set_int] normalised, except for copies and lookups. *)
Lemma exec_op_dst_int : forall p e o s s' d,
  exec_op p e o s = OpOk s' -> op_dst o = Some d ->
  (forall r, o <> Mov d (Reg r)) -> (forall m k, o <> MapLookup d m k) ->
  exists z, st_regs s' d = VInt (norm z).
Proof.
  intros p e o s s' d H Hd Hmov Hlook.
  destruct o; simpl in H, Hd;
    try (destruct src; [exfalso; inversion Hd; subst; eapply Hmov; reflexivity |]);
    try (exfalso; inversion Hd; subst; exact (Hlook _ _ eq_refl));
    try discriminate;
    unfold with_int, with_operand, with_slot, with_map, with_ptr, set_int, set_reg, set_slots, set_map,
      bump_calls in H;
    repeat match goal with
           | H' : context[match ?x with _ => _ end] |- _ =>
               match x with
               | context[match _ with _ => _ end] => fail 1
               | _ => destruct x eqn:?
               end
           end;
    try discriminate;
    repeat match goal with H' : OpOk _ = OpOk _ |- _ => injection H' as H'; subst end;
    simpl; inversion Hd; subst; rewrite Nat.eqb_refl; eexists; reflexivity.
Qed.

Lemma aget_cons : forall A d v r, aget ((d, v) :: A) r = if Nat.eqb r d then v else aget A r.
Proof. reflexivity. Qed.

Lemma transfer_op_sound : forall p e A o s s',
  holds A s -> exec_op p e o s = OpOk s' -> holds (transfer_op A o) s'.
Proof.
  intros p e A o s s' Hs H r. unfold transfer_op.
  destruct (op_dst o) as [d |] eqn:Hd.
  2: { rewrite (exec_op_other _ _ _ _ _ r H ltac:(congruence)). apply Hs. }
  rewrite aget_cons. destruct (Nat.eqb r d) eqn:E.
  2: { apply Nat.eqb_neq in E. rewrite (exec_op_other _ _ _ _ _ r H ltac:(congruence)). apply Hs. }
  apply Nat.eqb_eq in E. subst r.
  destruct o; simpl in Hd; try discriminate; subst; try (inversion Hd; subst).
  1: { (* Mov *)
    destruct src as [r | z]; simpl in H |- *.
    + inversion H; subst. simpl. rewrite Nat.eqb_refl. apply Hs.
    + unfold set_int, set_reg in H. inversion H; subst. simpl. rewrite Nat.eqb_refl.
      pose proof (norm_range z). exists (norm z). repeat split; lia. }
  1: { (* Alu: an addition of a constant follows the interval *)
    destruct (exec_op_dst_int _ _ _ _ _ d H eq_refl ltac:(discriminate) ltac:(discriminate)) as [z Hz].
    assert (Hgen : fact_ok full (st_regs s' d)) by (rewrite Hz; apply full_ok).
    destruct o; try exact Hgen. destruct rhs as [r | k]; try exact Hgen. simpl.
    destruct (aget A lhs) as [[lo hi] |] eqn:Hl; [| exact Hgen].
    destruct (hi + norm k <? modulus) eqn:Hwrap; [| exact Hgen].
    apply Z.ltb_lt in Hwrap.
    simpl in H. unfold with_int, with_operand, set_int, set_reg in H.
    pose proof (Hs lhs) as Hfact. rewrite Hl in Hfact. destruct Hfact as [x [Hx [Hrange Hnorm]]].
    unfold get_int in H. rewrite Hx in H. simpl in H. inversion H; subst. simpl. rewrite Nat.eqb_refl.
    pose proof (norm_range k) as Hk.
    rewrite (norm_small x Hnorm), (norm_small (norm k) Hk), !(norm_small (x + norm k)) by lia.
    exists (x + norm k). repeat split; lia. }
  (* a lookup: nothing known *)
  all: try (simpl; exact I).
  (* the remaining writers use [set_int]: a normalised integer *)
  all: destruct (exec_op_dst_int _ _ _ _ _ d H eq_refl ltac:(discriminate) ltac:(discriminate)) as [z Hz];
    simpl; rewrite Hz; apply full_ok.
Qed.

Lemma transfer_ops_sound : forall p e ops A s s',
  holds A s -> exec_ops p e ops s = OpOk s' -> holds (transfer_ops A ops) s'.
Proof.
  intros p e ops. induction ops as [| o rest IH]; intros A s s' Hs H; simpl in H.
  - inversion H; subst. exact Hs.
  - destruct (exec_op p e o s) as [s1 |] eqn:Ho; [| discriminate].
    unfold transfer_ops. simpl. apply (IH _ s1); [eapply transfer_op_sound; eassumption | exact H].
Qed.

Lemma operand_interval_ok : forall A s o y,
  holds A s -> eval_operand s o = Some y ->
  match operand_interval A o with
  | Some (ylo, yhi) => ylo <= y <= yhi /\ 0 <= y < modulus
  | None => True
  end.
Proof.
  intros A s o y Hs H. destruct o as [r | z]; simpl in *.
  - pose proof (Hs r) as Hr. destruct (aget A r) as [[lo hi] |]; [| exact I].
    destruct Hr as [x [Hx [H1 H2]]]. unfold get_int in H. rewrite Hx in H. inversion H; subst. lia.
  - inversion H; subst. pose proof (norm_range z). lia.
Qed.

Lemma narrow_sound : forall A s c taken l rhs x y,
  holds A s -> get_int s l = Some x -> eval_operand s rhs = Some y -> eval_cond c x y = taken ->
  holds (narrow c taken l rhs A) s.
Proof.
  intros A s c taken l rhs x y Hs Hx Hy Hc. unfold narrow.
  pose proof (Hs l) as Hl. pose proof (operand_interval_ok A s rhs y Hs Hy) as Hr.
  destruct (aget A l) as [[lo hi] |]; [| exact Hs].
  destruct (operand_interval A rhs) as [[ylo yhi] |]; [| exact Hs].
  destruct Hl as [x' [Hx' [Hlo Hnorm]]]. unfold get_int in Hx. rewrite Hx' in Hx. inversion Hx; subst x'.
  intros r. rewrite aget_cons. destruct (Nat.eqb r l) eqn:E; [| apply Hs].
  apply Nat.eqb_eq in E. subst r. rewrite Hx'.
  unfold eval_cond in Hc. rewrite (norm_small x Hnorm), (norm_small y) in Hc by lia.
  destruct c, taken; simpl in Hc |- *; exists x; split; try reflexivity;
    repeat match goal with
           | H : (_ <? _) = true |- _ => apply Z.ltb_lt in H
           | H : (_ <? _) = false |- _ => apply Z.ltb_ge in H
           | H : (_ <=? _) = true |- _ => apply Z.leb_le in H
           | H : (_ <=? _) = false |- _ => apply Z.leb_gt in H
           end;
    lia.
Qed.

Lemma aget_in : forall F r iv, aget F r = Some iv -> exists v, In (r, v) F.
Proof.
  induction F as [| rv rest IH]; intros r iv H; [discriminate |]. destruct rv as [r' v]. simpl in H.
  destruct (Nat.eqb r r') eqn:E.
  - apply Nat.eqb_eq in E. subst r'. exists v. left. reflexivity.
  - destruct (IH r iv H) as [v' Hin]. exists v'. right. exact Hin.
Qed.

Lemma implies_sound : forall A F s, holds A s -> implies A F = true -> holds F s.
Proof.
  intros A F s Hs H r. destruct (aget F r) as [[lo hi] |] eqn:Hf; [| exact I].
  destruct (aget_in F r _ Hf) as [v Hin]. unfold implies in H. rewrite forallb_forall in H.
  specialize (H _ Hin). simpl in H. rewrite Hf in H.
  pose proof (Hs r) as Hr. destruct (aget A r) as [[lo' hi'] |]; [| discriminate].
  apply andb_prop in H as [H1 H2]. apply Z.leb_le in H1. apply Z.leb_le in H2.
  destruct Hr as [x [Hx [Hrange Hn]]]. exists x. repeat split; lia || assumption.
Qed.

(** Every step a block takes is one of its [out_edges], with what it says true. *)
Lemma out_edges_sound : forall p e A blk s s' t,
  holds A s -> exec_ops p e (b_ops blk) s = OpOk s' -> exec_term (b_term blk) s' = NGoto t ->
  exists A', In (t, A') (out_edges A blk) /\ holds A' s'.
Proof.
  intros p e A blk s s' t Hs Hops Hterm.
  pose proof (transfer_ops_sound p e (b_ops blk) A s s' Hs Hops) as Hs'.
  unfold out_edges. destruct (b_term blk) as [t1 | c l r t1 t2 | ptr t1 t2 |]; simpl in Hterm.
  - inversion Hterm; subst. eexists. split; [left; reflexivity | exact Hs'].
  - destruct (get_int s' l) as [x |] eqn:Hx; [| discriminate].
    destruct (eval_operand s' r) as [y |] eqn:Hy; [| discriminate].
    destruct (eval_cond c x y) eqn:Hc; inversion Hterm; subst.
    + eexists. split; [left; reflexivity | eapply narrow_sound; eassumption].
    + eexists. split; [right; left; reflexivity | eapply narrow_sound; eassumption].
  - destruct (st_regs s' ptr); inversion Hterm; subst.
    + eexists. split; [left; reflexivity | exact Hs'].
    + eexists. split; [right; left; reflexivity | exact Hs'].
  - discriminate.
Qed.

(** ** The counter of a loop *)

Lemma writes_false : forall c o, writes c o = false -> op_dst o <> Some c.
Proof. intros c o H Hd. unfold writes in H. rewrite Hd, Nat.eqb_refl in H. discriminate. Qed.

Lemma no_write_ops : forall p e c ops s s',
  forallb (fun o => negb (writes c o)) ops = true -> exec_ops p e ops s = OpOk s' -> st_regs s' c = st_regs s c.
Proof.
  intros p e c ops. induction ops as [| o rest IH]; intros s s' Hw H; simpl in *.
  - inversion H; reflexivity.
  - apply andb_prop in Hw as [Ho Hrest]. apply negb_true_iff in Ho.
    destruct (exec_op p e o s) as [s1 |] eqn:E; [| discriminate].
    rewrite (IH s1 s' Hrest H). exact (exec_op_other _ _ _ _ _ _ E (writes_false _ _ Ho)).
Qed.

Lemma step_op : forall p e c k s s' x,
  exec_op p e (Alu Add c c (Imm k)) s = OpOk s' -> get_int s c = Some x ->
  0 <= x -> 0 < k < modulus -> x + k < modulus -> get_int s' c = Some (x + k).
Proof.
  intros p e c k s s' x H Hx H0 Hk Hw. simpl in H. unfold with_int, with_operand, set_int, set_reg in H.
  rewrite Hx in H. simpl in H. inversion H; subst. unfold get_int. simpl. rewrite Nat.eqb_refl.
  rewrite !(norm_small k) by lia. rewrite !(norm_small x) by lia. rewrite !(norm_small (x + k)) by lia.
  reflexivity.
Qed.

Lemma is_step_eq : forall c k o, is_step c k o = true -> o = Alu Add c c (Imm k).
Proof.
  intros c k o H. destruct o as [| a d l rhs | | | | | | | | | | | | |]; try discriminate.
  destruct a; try discriminate. destruct rhs as [| k']; try discriminate. simpl in H.
  apply andb_prop in H as [H H3]. apply andb_prop in H as [H1 H2].
  apply Nat.eqb_eq in H1. apply Nat.eqb_eq in H2. apply Z.eqb_eq in H3. subst. reflexivity.
Qed.

Lemma steps_once_ops : forall p e c k ops s s' x,
  steps_once c k ops = true -> exec_ops p e ops s = OpOk s' -> get_int s c = Some x ->
  0 <= x -> 0 < k < modulus -> x + k < modulus -> get_int s' c = Some (x + k).
Proof.
  intros p e c k ops. induction ops as [| o rest IH]; intros s s' x Hst H Hx H0 Hk Hw; simpl in *.
  - discriminate.
  - destruct (exec_op p e o s) as [s1 |] eqn:E; [| discriminate].
    destruct (is_step c k o) eqn:Hs.
    + apply is_step_eq in Hs. subst o.
      pose proof (step_op _ _ _ _ _ _ _ E Hx H0 Hk Hw) as H1.
      unfold get_int in *. rewrite (no_write_ops _ _ _ _ _ _ Hst H). exact H1.
    + apply andb_prop in Hst as [Ho Hrest]. apply negb_true_iff in Ho.
      apply (IH s1 s' x Hrest H); try assumption.
      unfold get_int in *. rewrite (exec_op_other _ _ _ _ _ _ E (writes_false _ _ Ho)). exact Hx.
Qed.

Lemma rem_nonneg : forall limit k x, 0 < k -> 0 <= rem_z limit k x.
Proof.
  intros limit k x Hk. unfold rem_z.
  destruct (x <? limit) eqn:E; [apply Z.ltb_lt in E; apply Z.div_pos; lia | lia].
Qed.

Lemma rem_antitone : forall limit k x y, 0 < k -> y <= x -> rem_z limit k x <= rem_z limit k y.
Proof.
  intros limit k x y Hk Hxy. unfold rem_z.
  destruct (x <? limit) eqn:Ex, (y <? limit) eqn:Ey;
    try apply Z.ltb_lt in Ex; try apply Z.ltb_ge in Ex; try apply Z.ltb_lt in Ey; try apply Z.ltb_ge in Ey;
    try lia.
  - apply Z.div_le_mono; lia.
  - apply Z.div_pos; lia.
Qed.

(** One more step of the counter: one run of the latch fewer. *)
Lemma rem_step : forall limit k x, 0 < k -> 0 <= x < limit -> rem_z limit k (x + k) + 1 = rem_z limit k x.
Proof.
  intros limit k x Hk Hx. unfold rem_z.
  destruct (x <? limit) eqn:Ex; [| apply Z.ltb_ge in Ex; lia].
  destruct (x + k <? limit) eqn:Exk.
  - apply Z.ltb_lt in Exk.
    replace (limit - x + k - 1) with ((limit - (x + k) + k - 1) + 1 * k) by lia.
    rewrite Z.div_add by lia. lia.
  - apply Z.ltb_ge in Exk.
    assert (H1 : (limit - x + k - 1) / k = 1).
    { symmetry. apply Z.div_unique with (r := limit - x - 1); [left; lia | lia]. }
    lia.
Qed.

(** ** Sums over loops *)

Lemma sumZ_le : forall {A : Type} (f g d : A -> Z) l,
  (forall x, In x l -> f x <= g x + d x) -> sumZ f l <= sumZ g l + sumZ d l.
Proof.
  intros A f g d l. induction l as [| x rest IH]; intros H; simpl; [lia |].
  pose proof (H x (or_introl eq_refl)).
  assert (sumZ f rest <= sumZ g rest + sumZ d rest) by (apply IH; intros y Hy; apply H; right; exact Hy).
  lia.
Qed.

Lemma sumZ_nonneg : forall {A : Type} (f : A -> Z) l, (forall x, In x l -> 0 <= f x) -> 0 <= sumZ f l.
Proof.
  intros A f l. induction l as [| x rest IH]; intros H; simpl; [lia |].
  pose proof (H x (or_introl eq_refl)).
  assert (0 <= sumZ f rest) by (apply IH; intros y Hy; apply H; right; exact Hy).
  lia.
Qed.

Lemma sumZ_zero : forall {A : Type} (f : A -> Z) l, (forall x, In x l -> f x = 0) -> sumZ f l = 0.
Proof.
  intros A f l. induction l as [| x rest IH]; intros H; simpl; [reflexivity |].
  rewrite (H x (or_introl eq_refl)), IH; [reflexivity |]. intros y Hy. apply H. right. exact Hy.
Qed.

Lemma mem_in : forall b l, mem b l = true -> In b l.
Proof.
  intros b l H. unfold mem in H. apply existsb_exists in H as [x [Hin Heq]].
  apply Nat.eqb_eq in Heq. subst. exact Hin.
Qed.

Lemma in_weights : forall h pot l w, In (l, w) (loop_weights h pot) -> In l (h_loops h).
Proof. intros h pot l w H. exact (in_combine_l _ _ _ _ H). Qed.

Lemma loop_ok_step : forall p h l, loop_ok p h l = true -> 0 < lp_step l.
Proof.
  intros p h l H. unfold loop_ok in H. repeat (apply andb_prop in H as [H ?]). apply Z.ltb_lt. assumption.
Qed.

Lemma contrib_nonneg : forall p h l w b s, loop_ok p h l = true -> 0 <= contrib b s (l, w).
Proof.
  intros p h l w b s H. pose proof (loop_ok_step _ _ _ H) as Hk. unfold contrib.
  destruct (mem b (lp_blocks l)); [| lia].
  unfold counter_rem. destruct (get_int s (lp_counter l)); [| lia].
  apply Z.mul_nonneg_nonneg; [apply rem_nonneg; exact Hk | lia].
Qed.

Lemma rem_positive : forall limit k x, 0 < k -> x < limit -> 1 <= rem_z limit k x.
Proof.
  intros limit k x Hk Hx. unfold rem_z. destruct (x <? limit) eqn:E; [| apply Z.ltb_ge in E; lia].
  apply Z.div_le_lower_bound; lia.
Qed.

Lemma guaranteed_le_contrib : forall p h l w b s,
  loop_ok p h l = true -> holds (facts_at h b) s -> guaranteed h b (l, w) <= contrib b s (l, w).
Proof.
  intros p h l w b s Hok Hs. pose proof (loop_ok_step _ _ _ Hok) as Hk.
  pose proof (contrib_nonneg p h l w b s Hok) as H0. unfold guaranteed, contrib in *.
  destruct (mem b (lp_blocks l)); [| lia].
  destruct (aget (facts_at h b) (lp_counter l)) as [[lo hi] |] eqn:Hf; [| lia].
  destruct (hi <? lp_limit l) eqn:Hlt; [| lia]. apply Z.ltb_lt in Hlt.
  pose proof (Hs (lp_counter l)) as Hc. rewrite Hf in Hc. destruct Hc as [x [Hx [Hxr _]]].
  unfold counter_rem, get_int. rewrite Hx.
  pose proof (rem_positive (lp_limit l) (lp_step l) x Hk ltac:(lia)). nia.
Qed.

(** What one edge does to one loop's share of the potential. *)
Lemma loop_edge : forall p e h l w b blk s s' t A',
  loop_ok p h l = true -> nth_error (fn_blocks p) b = Some blk ->
  holds (facts_at h b) s -> exec_ops p e (b_ops blk) s = OpOk s' ->
  holds A' s' -> entry_ok b t A' l = true ->
  contrib t s' (l, w) <= contrib b s (l, w) + delta h b t (l, w).
Proof.
  intros p e h l w b blk s s' t A' Hok Hnth Hs Hops Hs' Hentry.
  pose proof (contrib_nonneg p h l w b s Hok) as Hb0.
  pose proof (guaranteed_le_contrib p h l w b s Hok Hs) as Hg.
  unfold loop_ok in Hok.
  apply andb_prop in Hok as [Hok Hall]. apply andb_prop in Hok as [Hok Hlatch].
  apply andb_prop in Hok as [Hok H0]. apply andb_prop in Hok as [Hok Hwrap].
  apply andb_prop in Hok as [Hok Hlim]. apply andb_prop in Hok as [Hk0 Hkm].
  apply Z.ltb_lt in Hk0. apply Z.ltb_lt in Hkm. apply Z.leb_le in Hlim. apply Z.ltb_lt in Hwrap.
  unfold contrib, delta in *.
  destruct (mem t (lp_blocks l)) eqn:Ht; [| lia].
  destruct (mem b (lp_blocks l)) eqn:Hb.
  - rewrite forallb_forall in Hall. specialize (Hall b (mem_in _ _ Hb)). rewrite Hnth in Hall.
    destruct (Nat.eqb b (lp_latch l)) eqn:HL.
    + (* the latch: the counter steps, one run fewer remains *)
      apply Nat.eqb_eq in HL. subst b.
      destruct (aget (facts_at h (lp_latch l)) (lp_counter l)) as [[lo hi] |] eqn:Hf; [| discriminate].
      apply Z.ltb_lt in Hlatch.
      pose proof (Hs (lp_counter l)) as Hc. rewrite Hf in Hc. destruct Hc as [x [Hx [Hxr Hxn]]].
      assert (Hget : get_int s (lp_counter l) = Some x) by (unfold get_int; rewrite Hx; reflexivity).
      try rewrite Nat.eqb_refl in Hall.
      pose proof (steps_once_ops _ _ _ _ _ _ _ _ Hall Hops Hget ltac:(lia) ltac:(lia) ltac:(lia)) as Hget'.
      unfold counter_rem. rewrite Hget, Hget'.
      pose proof (rem_step (lp_limit l) (lp_step l) x Hk0 ltac:(lia)) as Hstep.
      rewrite <- Hstep. nia.
    + (* elsewhere in the loop the counter does not change *)
      unfold counter_rem, get_int. rewrite (no_write_ops _ _ _ _ _ _ Hall Hops). lia.
  - (* entering the loop: at most [trips] runs of the latch remain *)
    unfold entry_ok in Hentry. rewrite Hb, Ht in Hentry. simpl in Hentry.
    destruct (aget A' (lp_counter l)) as [[lo hi] |] eqn:Hf; [| discriminate].
    apply andb_prop in Hentry as [Hstart Htrips]. apply Z.leb_le in Hstart. apply Z.leb_le in Htrips.
    pose proof (Hs' (lp_counter l)) as Hc. rewrite Hf in Hc. destruct Hc as [x [Hx [Hxr Hxn]]].
    unfold counter_rem, get_int. rewrite Hx.
    pose proof (rem_antitone (lp_limit l) (lp_step l) x (lp_start l) Hk0 ltac:(lia)) as Hmono.
    pose proof (rem_nonneg (lp_limit l) (lp_step l) x Hk0).
    assert (0 <= Z.of_N w) by lia. nia.
Qed.

(** ** One block step *)

Lemma hints_loops : forall p h l, check_hints p h = true -> In l (h_loops h) -> loop_ok p h l = true.
Proof.
  intros p h l H Hin. unfold check_hints in H.
  apply andb_prop in H as [H _]. apply andb_prop in H as [_ H].
  rewrite forallb_forall in H. exact (H l Hin).
Qed.

Lemma potential_lower : forall p h pot b s,
  check_hints p h = true -> holds (facts_at h b) s ->
  pot_at pot b + sumZ (guaranteed h b) (loop_weights h pot) <= potential h pot b s.
Proof.
  intros p h pot b s H Hs. unfold potential.
  assert (sumZ (guaranteed h b) (loop_weights h pot) <= sumZ (contrib b s) (loop_weights h pot) + sumZ (fun _ => 0) (loop_weights h pot)).
  { apply sumZ_le. intros [l w] Hin. pose proof (hints_loops p h l H (in_weights _ _ _ _ Hin)) as Hok.
    pose proof (guaranteed_le_contrib p h l w b s Hok Hs). lia. }
  assert (Hz : sumZ (fun _ : loop_hint * N => 0) (loop_weights h pot) = 0) by (apply sumZ_zero; auto).
  lia.
Qed.

(** The potential drops by at least the block's weight on every step, and the facts hold on. *)
Lemma potential_step : forall w p e h pot b blk s s' t,
  check_hints p h = true -> check_potentials w p h pot = true ->
  nth_error (fn_blocks p) b = Some blk -> holds (facts_at h b) s ->
  exec_ops p e (b_ops blk) s = OpOk s' -> exec_term (b_term blk) s' = NGoto t ->
  holds (facts_at h t) s' /\ Z.of_N (w blk) + potential h pot t s' <= potential h pot b s
  /\ (t < length (fn_blocks p))%nat.
Proof.
  intros w p e h pot b blk s s' t Hh Hpot Hnth Hs Hops Hterm.
  destruct (out_edges_sound p e _ blk s s' t Hs Hops Hterm) as [A' [Hin Hs']].
  pose proof Hh as Hh'. unfold check_hints in Hh'. apply andb_prop in Hh' as [_ Hedges].
  pose proof (all_indexed_nth _ _ _ _ _ Hedges Hnth) as Hb. simpl in Hb. rewrite forallb_forall in Hb.
  specialize (Hb _ Hin). unfold edge_ok in Hb.
  apply andb_prop in Hb as [Hb Hentries]. apply andb_prop in Hb as [Ht Himp].
  apply Nat.ltb_lt in Ht. rewrite forallb_forall in Hentries.
  pose proof (all_indexed_nth _ _ _ _ _ Hpot Hnth) as Hp. simpl in Hp.
  apply andb_prop in Hp as [_ Hp]. rewrite forallb_forall in Hp. specialize (Hp _ Hin). simpl in Hp.
  apply Z.leb_le in Hp.
  split; [exact (implies_sound _ _ _ Hs' Himp) | split; [| exact Ht]].
  unfold potential.
  assert (sumZ (contrib t s') (loop_weights h pot)
          <= sumZ (contrib b s) (loop_weights h pot) + sumZ (delta h b t) (loop_weights h pot)); [| lia].
  apply sumZ_le. intros [l lw] Hlw. pose proof (in_weights _ _ _ _ Hlw) as Hl.
  eapply loop_edge; eauto. apply (hints_loops p h l Hh Hl).
Qed.

Lemma potential_return : forall w p h pot b blk s,
  check_hints p h = true -> check_potentials w p h pot = true ->
  nth_error (fn_blocks p) b = Some blk -> holds (facts_at h b) s -> Z.of_N (w blk) <= potential h pot b s.
Proof.
  intros w p h pot b blk s Hh Hpot Hnth Hs.
  pose proof (all_indexed_nth _ _ _ _ _ Hpot Hnth) as Hp. simpl in Hp.
  apply andb_prop in Hp as [Hp _]. apply Z.leb_le in Hp.
  pose proof (potential_lower p h pot b s Hh Hs). lia.
Qed.

(** ** Runs *)

Theorem exec_cost_le_potential : forall ct p e h pot fuel b s s' c n,
  check_hints p h = true -> check_potentials (block_cost ct p) p h pot = true ->
  holds (facts_at h b) s -> exec ct p e fuel b s = Done s' c n -> Z.of_N c <= potential h pot b s.
Proof.
  intros ct p e h pot fuel. induction fuel as [| fuel IH]; intros b s s' c n Hh Hpot Hs Hrun; simpl in Hrun.
  - discriminate.
  - destruct (nth_error (fn_blocks p) b) as [blk |] eqn:Hnth; [| discriminate].
    destruct (exec_ops p e (b_ops blk) s) as [s1 | f] eqn:Hops; [| discriminate].
    destruct (exec_term (b_term blk) s1) as [| t | f] eqn:Hterm; try discriminate.
    + inversion Hrun; subst. exact (potential_return _ _ _ _ _ _ s Hh Hpot Hnth Hs).
    + destruct (exec ct p e fuel t s1) as [s2 c2 n2 | |] eqn:Hnext; try discriminate.
      inversion Hrun; subst.
      destruct (potential_step _ _ _ _ _ _ _ _ _ _ Hh Hpot Hnth Hs Hops Hterm) as [Hs1 [Hle _]].
      pose proof (IH _ _ _ _ _ Hh Hpot Hs1 Hnext). rewrite N2Z.inj_add. lia.
Qed.

Definition one (_ : block) : N := 1%N.

Theorem exec_steps_le_potential : forall ct p e h pot fuel b s s' c n,
  check_hints p h = true -> check_potentials one p h pot = true ->
  holds (facts_at h b) s -> exec ct p e fuel b s = Done s' c n -> Z.of_nat n <= potential h pot b s.
Proof.
  intros ct p e h pot fuel. induction fuel as [| fuel IH]; intros b s s' c n Hh Hpot Hs Hrun; simpl in Hrun.
  - discriminate.
  - destruct (nth_error (fn_blocks p) b) as [blk |] eqn:Hnth; [| discriminate].
    destruct (exec_ops p e (b_ops blk) s) as [s1 | f] eqn:Hops; [| discriminate].
    destruct (exec_term (b_term blk) s1) as [| t | f] eqn:Hterm; try discriminate.
    + inversion Hrun; subst. pose proof (potential_return _ _ _ _ _ _ s Hh Hpot Hnth Hs). unfold one in *. lia.
    + destruct (exec ct p e fuel t s1) as [s2 c2 n2 | |] eqn:Hnext; try discriminate.
      inversion Hrun; subst.
      destruct (potential_step _ _ _ _ _ _ _ _ _ _ Hh Hpot Hnth Hs Hops Hterm) as [Hs1 [Hle _]].
      pose proof (IH _ _ _ _ _ Hh Hpot Hs1 Hnext). unfold one in *. lia.
Qed.

Theorem exec_stops_within_potential : forall ct p e h pot fuel b s,
  check_hints p h = true -> check_potentials one p h pot = true ->
  holds (facts_at h b) s -> (b < length (fn_blocks p))%nat -> potential h pot b s <= Z.of_nat fuel ->
  exec ct p e fuel b s <> OutOfFuel.
Proof.
  intros ct p e h pot fuel. induction fuel as [| fuel IH]; intros b s Hh Hpot Hs Hb Hfuel.
  - destruct (nth_error (fn_blocks p) b) as [blk |] eqn:Hnth.
    + pose proof (potential_return _ _ _ _ _ _ s Hh Hpot Hnth Hs). unfold one in *. lia.
    + apply nth_error_None in Hnth. lia.
  - simpl. destruct (nth_error (fn_blocks p) b) as [blk |] eqn:Hnth; [| discriminate].
    destruct (exec_ops p e (b_ops blk) s) as [s1 | f] eqn:Hops; [| discriminate].
    destruct (exec_term (b_term blk) s1) as [| t | f] eqn:Hterm; try discriminate.
    destruct (potential_step _ _ _ _ _ _ _ _ _ _ Hh Hpot Hnth Hs Hops Hterm) as [Hs1 [Hle Ht]].
    unfold one in Hle. specialize (IH t s1 Hh Hpot Hs1 Ht ltac:(lia)).
    destruct (exec ct p e fuel t s1); congruence.
Qed.

(** ** Per-probe certificate *)

Lemma potential_entry : forall p h pot s, check_hints p h = true -> potential h pot 0 s = pot_at pot 0.
Proof.
  intros p h pot s Hh. unfold potential. rewrite sumZ_zero; [lia |].
  intros [l w] Hin. pose proof (hints_loops p h l Hh (in_weights _ _ _ _ Hin)) as Hok.
  unfold loop_ok in Hok. repeat (apply andb_prop in Hok as [Hok ?]).
  unfold contrib. destruct (mem 0 (lp_blocks l)); [discriminate | reflexivity].
Qed.

Lemma entry_facts : forall p h e, check_hints p h = true -> holds (facts_at h 0) (initial_state e).
Proof.
  intros p h e Hh r. unfold check_hints in Hh. repeat (apply andb_prop in Hh as [Hh ?]).
  destruct (facts_at h 0); [exact I | discriminate].
Qed.

Lemma loop_bound_checks : forall w p h pot x,
  within (loop_bound w p h pot) x = true ->
  check_hints p h = true /\ check_potentials w p h pot = true /\ (pot_at pot 0 <= Z.of_N x).
Proof.
  intros w p h pot x H. unfold within, loop_bound in H.
  destruct (check_hints p h && check_potentials w p h pot) eqn:E; [| discriminate].
  apply andb_prop in E as [E1 E2]. apply Z.leb_le in H. repeat split; auto.
Qed.

(** What a loop probe's proof file establishes: for every environment, the run stops within
    [steps] block steps (and more fuel changes nothing), a run that returns entered at most
    [steps] blocks and costs at most [bound], and no run accesses memory out of bounds. *)
Definition guarantees_within (ct : cost_table) (p : function) (steps bound : N) : Prop :=
  forall e,
    run ct p e (N.to_nat steps) <> OutOfFuel
    /\ (forall fuel, (N.to_nat steps <= fuel)%nat -> run ct p e fuel = run ct p e (N.to_nat steps))
    /\ (forall fuel s c n, run ct p e fuel = Done s c n -> (n <= N.to_nat steps)%nat /\ (c <= bound)%N)
    /\ (forall fuel, run ct p e fuel <> Failed OutOfBounds).

Theorem certify_loops : forall ct p h steps_pot cost_pot steps bound,
  within (loop_bound one p h steps_pot) steps = true ->
  within (loop_bound (block_cost ct p) p h cost_pot) bound = true ->
  check_bounds p = true ->
  guarantees_within ct p steps bound.
Proof.
  intros ct p h steps_pot cost_pot steps bound Hsteps Hcost Hbounds e.
  destruct (loop_bound_checks _ _ _ _ _ Hsteps) as [Hh [Hps Hs0]].
  destruct (loop_bound_checks _ _ _ _ _ Hcost) as [_ [Hpc Hc0]].
  pose proof (entry_facts p h e Hh) as Hinit.
  assert (Hn : (0 < length (fn_blocks p))%nat).
  { unfold check_hints in Hh. repeat (apply andb_prop in Hh as [Hh ?]). apply Nat.ltb_lt. assumption. }
  assert (Hstop : run ct p e (N.to_nat steps) <> OutOfFuel).
  { unfold run. apply (exec_stops_within_potential ct p e h steps_pot); auto.
    rewrite (potential_entry p h steps_pot _ Hh). lia. }
  split; [exact Hstop | split; [| split]].
  - intros fuel Hle. unfold run in *. apply exec_fuel_mono; assumption.
  - intros fuel s c n Hrun. unfold run in Hrun. split.
    + pose proof (exec_steps_le_potential _ _ _ _ _ _ _ _ _ _ _ Hh Hps Hinit Hrun) as H.
      rewrite (potential_entry p h steps_pot _ Hh) in H. lia.
    + pose proof (exec_cost_le_potential _ _ _ _ _ _ _ _ _ _ _ Hh Hpc Hinit Hrun) as H.
      rewrite (potential_entry p h cost_pot _ Hh) in H. lia.
  - intros fuel. apply run_in_bounds. exact Hbounds.
Qed.
