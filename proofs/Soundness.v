(** * Soundness: what the checkers' verdicts mean for every run, proved once for all probes.

    - [exec_terminates]/[run_terminates]: when [check_acyclic p = true], every run stops
      (returns or faults) within [length (fn_blocks p)] block steps, and more fuel changes
      nothing;
    - [run_cost_le_wcet]: and every run that returns has cost at most [wcet ct p];
    - [run_in_bounds]: when [check_bounds p = true], no run faults with [OutOfBounds];
    - [certify]: the three together, for a bound [N] with [wcet ct p <= N]. *)

From Coq Require Import ZArith NArith List Bool Lia.
From Ppis Require Import IR Semantics Checker.
Import ListNotations.

(** ** List facts *)

Lemma all_indexed_nth : forall f l i j b,
  all_indexed f i l = true -> nth_error l j = Some b -> f (i + j) b = true.
Proof.
  induction l as [| x rest IH]; intros i j b Hall Hnth.
  - destruct j; discriminate.
  - simpl in Hall. apply andb_prop in Hall as [Hx Hrest]. destruct j as [| j]; simpl in Hnth.
    + inversion Hnth; subst. rewrite Nat.add_0_r. exact Hx.
    + rewrite <- Nat.add_succ_comm. apply IH; assumption.
Qed.

Lemma skipn_nth_error : forall (A : Type) (l : list A) a x,
  nth_error l a = Some x -> skipn a l = x :: skipn (S a) l.
Proof.
  intros A l. induction l as [| y rest IH]; intros a x H.
  - destruct a; discriminate.
  - destruct a as [| a]; simpl in *.
    + inversion H; subst. reflexivity.
    + apply IH. exact H.
Qed.

Lemma nth_skipn : forall (A : Type) k (l : list A) j d, nth j (skipn k l) d = nth (k + j) l d.
Proof.
  intros A k. induction k as [| k IH]; intros l j d.
  - reflexivity.
  - destruct l as [| x rest]; simpl.
    + destruct j; reflexivity.
    + apply IH.
Qed.

Lemma nth_as_skipn : forall (A : Type) a (l : list A) d,
  nth a l d = match skipn a l with x :: _ => x | [] => d end.
Proof.
  intros A a. induction a as [| a IH]; intros l d; destruct l; simpl; auto.
Qed.

Lemma le_max_list : forall l x, In x l -> (x <= max_list l)%N.
Proof.
  induction l as [| y rest IH]; intros x Hin; simpl in *.
  - contradiction.
  - destruct Hin as [-> | Hin].
    + apply N.le_max_l.
    + eapply N.le_trans; [apply IH; exact Hin | apply N.le_max_r].
Qed.

(** ** Acyclicity *)

Lemma acyclic_edge : forall p a blk t,
  check_acyclic p = true -> nth_error (fn_blocks p) a = Some blk -> In t (successors (b_term blk)) ->
  a < t /\ t < length (fn_blocks p).
Proof.
  intros p a blk t Hacyc Hnth Hin. unfold check_acyclic in Hacyc.
  apply andb_prop in Hacyc as [_ Hall].
  pose proof (all_indexed_nth _ _ _ _ _ Hall Hnth) as Hedge. simpl in Hedge.
  unfold edges_forward in Hedge. rewrite forallb_forall in Hedge.
  apply Hedge in Hin. apply andb_prop in Hin as [H1 H2].
  apply Nat.ltb_lt in H1. apply Nat.ltb_lt in H2. auto.
Qed.

Lemma acyclic_nonempty : forall p, check_acyclic p = true -> 0 < length (fn_blocks p).
Proof.
  intros p H. unfold check_acyclic in H. apply andb_prop in H as [H _]. apply Nat.ltb_lt. exact H.
Qed.

Lemma exec_term_successor : forall t s b, exec_term t s = NGoto b -> In b (successors t).
Proof.
  intros t s b H. destruct t; simpl in *.
  - inversion H; subst. left. reflexivity.
  - destruct (get_int s lhs), (eval_operand s rhs); try discriminate.
    destruct (eval_cond c z z0); inversion H; subst; simpl; auto.
  - destruct (st_regs s ptr); inversion H; subst; simpl; auto.
  - discriminate.
Qed.

(** ** Termination *)

Theorem exec_terminates : forall ct p e fuel a s,
  check_acyclic p = true -> a < length (fn_blocks p) -> length (fn_blocks p) - a <= fuel ->
  exec ct p e fuel a s <> OutOfFuel.
Proof.
  intros ct p e fuel. induction fuel as [| fuel IH]; intros a s Hacyc Ha Hfuel.
  - lia.
  - simpl. destruct (nth_error (fn_blocks p) a) as [blk |] eqn:Hnth; [| discriminate].
    destruct (exec_ops p e (b_ops blk) s) as [s' | f]; [| discriminate].
    destruct (exec_term (b_term blk) s') as [| t | f] eqn:Hterm; try discriminate.
    pose proof (acyclic_edge _ _ _ _ Hacyc Hnth (exec_term_successor _ _ _ Hterm)) as [Hat Htn].
    specialize (IH t s' Hacyc Htn ltac:(lia)).
    destruct (exec ct p e fuel t s'); congruence.
Qed.

Theorem exec_fuel_mono : forall ct p e fuel a s,
  exec ct p e fuel a s <> OutOfFuel -> forall fuel', fuel <= fuel' -> exec ct p e fuel' a s = exec ct p e fuel a s.
Proof.
  intros ct p e fuel. induction fuel as [| fuel IH]; intros a s Hnot fuel' Hle.
  - simpl in Hnot. congruence.
  - destruct fuel' as [| fuel']; [lia |]. simpl in *.
    destruct (nth_error (fn_blocks p) a) as [blk |]; [| reflexivity].
    destruct (exec_ops p e (b_ops blk) s) as [s' | f]; [| reflexivity].
    destruct (exec_term (b_term blk) s') as [| t | f]; try reflexivity.
    destruct (exec ct p e fuel t s') eqn:Hrun.
    + rewrite (IH t s' ltac:(congruence) fuel' ltac:(lia)), Hrun. reflexivity.
    + rewrite (IH t s' ltac:(congruence) fuel' ltac:(lia)), Hrun. reflexivity.
    + contradiction.
Qed.

Theorem exec_steps_bounded : forall ct p e fuel a s s' c steps,
  check_acyclic p = true -> exec ct p e fuel a s = Done s' c steps -> steps <= length (fn_blocks p) - a.
Proof.
  intros ct p e fuel. induction fuel as [| fuel IH]; intros a s s' c steps Hacyc Hrun; simpl in Hrun.
  - discriminate.
  - destruct (nth_error (fn_blocks p) a) as [blk |] eqn:Hnth; [| discriminate].
    assert (a < length (fn_blocks p)) by (apply nth_error_Some; congruence).
    destruct (exec_ops p e (b_ops blk) s) as [s1 | f]; [| discriminate].
    destruct (exec_term (b_term blk) s1) as [| t | f] eqn:Hterm; try discriminate.
    + inversion Hrun; subst. lia.
    + pose proof (acyclic_edge _ _ _ _ Hacyc Hnth (exec_term_successor _ _ _ Hterm)) as [Hat Htn].
      destruct (exec ct p e fuel t s1) as [s2 c2 n2 | |] eqn:Hnext; try discriminate.
      inversion Hrun; subst. specialize (IH _ _ _ _ _ Hacyc Hnext). lia.
Qed.

(** Every run of an acyclic probe stops within [length (fn_blocks p)] block steps: with that
    much fuel it is never out of fuel, any more fuel gives the same result, and a run that
    returns entered at most that many blocks. *)
Theorem run_terminates : forall ct p e,
  check_acyclic p = true ->
  run ct p e (length (fn_blocks p)) <> OutOfFuel
  /\ (forall fuel, length (fn_blocks p) <= fuel -> run ct p e fuel = run ct p e (length (fn_blocks p)))
  /\ (forall fuel s c steps, run ct p e fuel = Done s c steps -> steps <= length (fn_blocks p)).
Proof.
  intros ct p e Hacyc. pose proof (acyclic_nonempty p Hacyc) as Hn. unfold run.
  assert (Hstop : exec ct p e (length (fn_blocks p)) 0 (initial_state e) <> OutOfFuel)
    by (apply exec_terminates; [exact Hacyc | exact Hn | lia]).
  split; [exact Hstop | split].
  - intros fuel Hle. apply exec_fuel_mono; assumption.
  - intros fuel s c steps Hrun. pose proof (exec_steps_bounded _ _ _ _ _ _ _ _ _ Hacyc Hrun). lia.
Qed.

(** ** Cost *)

Lemma wcet_from_length : forall ct p l i, length (wcet_from ct p i l) = length l.
Proof.
  induction l as [| b rest IH]; intros i; simpl; auto.
Qed.

Lemma skipn_wcet_from : forall ct p k l i, skipn k (wcet_from ct p i l) = wcet_from ct p (i + k) (skipn k l).
Proof.
  intros ct p k. induction k as [| k IH]; intros l i.
  - rewrite Nat.add_0_r. reflexivity.
  - destruct l as [| b rest]; simpl.
    + reflexivity.
    + rewrite IH. f_equal. lia.
Qed.

(** The table's recurrence: a block's entry covers its own cost plus any successor's entry. *)
Lemma wcet_table_step : forall ct p a blk,
  check_acyclic p = true -> nth_error (fn_blocks p) a = Some blk ->
  (forall t, In t (successors (b_term blk)) -> block_cost ct p blk + nth t (wcet_table ct p) 0 <= nth a (wcet_table ct p) 0)%N
  /\ (block_cost ct p blk <= nth a (wcet_table ct p) 0)%N.
Proof.
  intros ct p a blk Hacyc Hnth. unfold wcet_table.
  assert (Hentry : nth a (wcet_from ct p 0 (fn_blocks p)) 0%N
    = (block_cost ct p blk + max_list (map (fun t => nth (t - S a) (wcet_from ct p (S a) (skipn (S a) (fn_blocks p))) 0%N)
                                          (successors (b_term blk))))%N).
  { rewrite nth_as_skipn, skipn_wcet_from, (skipn_nth_error _ _ _ _ Hnth). reflexivity. }
  rewrite Hentry. split.
  - intros t Hin. pose proof (acyclic_edge _ _ _ _ Hacyc Hnth Hin) as [Hat _].
    apply N.add_le_mono_l.
    replace (nth t (wcet_from ct p 0 (fn_blocks p)) 0%N)
      with (nth (t - S a) (wcet_from ct p (S a) (skipn (S a) (fn_blocks p))) 0%N).
    + apply le_max_list. apply in_map_iff. exists t. auto.
    + pose proof (skipn_wcet_from ct p (S a) (fn_blocks p) 0) as Hskip.
      cbn [Nat.add] in Hskip. rewrite <- Hskip, nth_skipn. f_equal. lia.
  - apply N.le_add_r.
Qed.

Theorem exec_cost_le : forall ct p e fuel a s s' c steps,
  check_acyclic p = true -> exec ct p e fuel a s = Done s' c steps -> (c <= nth a (wcet_table ct p) 0)%N.
Proof.
  intros ct p e fuel. induction fuel as [| fuel IH]; intros a s s' c steps Hacyc Hrun; simpl in Hrun.
  - discriminate.
  - destruct (nth_error (fn_blocks p) a) as [blk |] eqn:Hnth; [| discriminate].
    pose proof (wcet_table_step ct p a blk Hacyc Hnth) as [Hstep Hret].
    destruct (exec_ops p e (b_ops blk) s) as [s1 | f]; [| discriminate].
    destruct (exec_term (b_term blk) s1) as [| t | f] eqn:Hterm; try discriminate.
    + inversion Hrun; subst. exact Hret.
    + destruct (exec ct p e fuel t s1) as [s2 c2 n2 | |] eqn:Hnext; try discriminate.
      inversion Hrun; subst. specialize (IH _ _ _ _ _ Hacyc Hnext).
      specialize (Hstep t (exec_term_successor _ _ _ Hterm)). lia.
Qed.

(** Every run that returns costs at most [wcet ct p], whatever the environment and fuel. *)
Theorem run_cost_le_wcet : forall ct p e fuel s c steps,
  check_acyclic p = true -> run ct p e fuel = Done s c steps -> (c <= wcet ct p)%N.
Proof.
  intros ct p e fuel s c steps Hacyc Hrun. exact (exec_cost_le _ _ _ _ _ _ _ _ _ Hacyc Hrun).
Qed.

(** ** Bounds *)

(** A register holding a pointer into map [m] is declared as pointing into map [m]. *)
Definition regs_typed (p : function) (s : state) : Prop :=
  forall r m k, st_regs s r = VPtr m k -> reg_type p r = Some m.

Lemma option_nat_eqb_eq : forall a b, option_nat_eqb a b = true -> a = b.
Proof.
  intros [x |] [y |] H; simpl in H; try discriminate; auto.
  apply Nat.eqb_eq in H. subst. reflexivity.
Qed.

Lemma set_reg_typed : forall p s r v,
  regs_typed p s -> (forall m k, v = VPtr m k -> reg_type p r = Some m) -> regs_typed p (set_reg s r v).
Proof.
  intros p s r v Hs Hv r' m k. unfold set_reg. simpl.
  destruct (Nat.eqb r' r) eqn:E.
  - apply Nat.eqb_eq in E. subst. apply Hv.
  - apply Hs.
Qed.

Lemma set_reg_int_typed : forall p s r z, regs_typed p s -> regs_typed p (set_reg s r (VInt z)).
Proof.
  intros p s r z Hs. apply set_reg_typed; [exact Hs | discriminate].
Qed.

Lemma set_int_typed : forall p s r z, regs_typed p s ->
  match set_int s r z with OpOk s' => regs_typed p s' | OpFault f => f <> OutOfBounds end.
Proof.
  intros p s r z Hs. apply set_reg_typed; [exact Hs | discriminate].
Qed.

(** What [exec_op] (or a sequence of them) may do to a well-typed state: keep it well typed,
    or fault for any reason but [OutOfBounds]. *)
Definition safe_outcome (p : function) (r : op_result) : Prop :=
  match r with
  | OpOk s' => regs_typed p s'
  | OpFault f => f <> OutOfBounds
  end.

Ltac safe_cases :=
  repeat match goal with
  | H : _ && _ = true |- _ => apply andb_prop in H as [? ?]
  | H : option_nat_eqb _ _ = true |- _ => apply option_nat_eqb_eq in H
  | H : ?x = true |- context[?x] => rewrite H
  | H : ?x = Some _ |- context[?x] => rewrite H
  | |- context[match ?x with _ => _ end] =>
      (* innermost first, so that the outer matches then reduce *)
      match x with
      | context[match _ with _ => _ end] => fail 1
      | _ => destruct x eqn:?; cbn
      end
  end;
  simpl; try discriminate; try (apply set_int_typed; assumption); try (apply set_reg_int_typed; assumption);
  try assumption.

Lemma exec_op_safe : forall p e o s,
  op_ok p o = true -> regs_typed p s -> safe_outcome p (exec_op p e o s).
Proof.
  intros p e o s Hok Hs. unfold safe_outcome.
  destruct o; simpl in Hok; simpl;
    unfold with_int, with_operand, with_slot, with_map, with_ptr, set_int in *.
  - (* Mov *)
    destruct src as [src | z].
    + apply set_reg_typed; [exact Hs |]. intros m k Hv.
      pose proof (Hs _ _ _ Hv) as Hsrc. rewrite Hsrc in Hok. apply option_nat_eqb_eq in Hok. exact Hok.
    + apply set_reg_int_typed. exact Hs.
  - safe_cases.
  - safe_cases.
  - safe_cases.
  - safe_cases.
  - apply set_reg_int_typed. exact Hs.
  - safe_cases.
  - safe_cases.
  - safe_cases.
  - (* Call *)
    destruct h; simpl in *; safe_cases.
  - (* MapLookup *)
    destruct (nth_error (fn_maps p) map) as [d |] eqn:Hm; [| discriminate].
    apply andb_prop in Hok as [Hkey Hdst]. rewrite Hkey.
    apply set_reg_typed; [exact Hs |]. intros m k Hv.
    apply option_nat_eqb_eq in Hdst. destruct (lookup d (st_maps s map) _); inversion Hv; subst. exact Hdst.
  - safe_cases.
  - safe_cases.
  - (* LoadPtr *)
    unfold ptr_ok in Hok.
    destruct (st_regs s ptr) as [z | | m key] eqn:Hptr; try discriminate.
    rewrite (Hs _ _ _ Hptr) in Hok. safe_cases.
  - (* StorePtr *)
    unfold ptr_ok in Hok.
    destruct (st_regs s ptr) as [z | | m key] eqn:Hptr; try discriminate.
    rewrite (Hs _ _ _ Hptr) in Hok. safe_cases.
Qed.

Lemma exec_ops_safe : forall p e ops s,
  forallb (op_ok p) ops = true -> regs_typed p s -> safe_outcome p (exec_ops p e ops s).
Proof.
  intros p e ops. induction ops as [| o rest IH]; intros s Hok Hs; simpl in *.
  - exact Hs.
  - apply andb_prop in Hok as [Ho Hrest].
    pose proof (exec_op_safe p e o s Ho Hs) as Hstep.
    destruct (exec_op p e o s) as [s' | f]; simpl in *.
    + apply IH; assumption.
    + exact Hstep.
Qed.

Lemma exec_term_fault : forall t s f, exec_term t s = NFault f -> f = IllTyped.
Proof.
  intros t s f H. destruct t; simpl in H.
  - discriminate.
  - destruct (get_int s lhs), (eval_operand s rhs); try destruct (eval_cond _ _ _); congruence.
  - destruct (st_regs s ptr); congruence.
  - discriminate.
Qed.

Theorem exec_in_bounds : forall ct p e fuel a s,
  check_bounds p = true -> regs_typed p s -> exec ct p e fuel a s <> Failed OutOfBounds.
Proof.
  intros ct p e fuel. induction fuel as [| fuel IH]; intros a s Hbounds Hs; simpl.
  - discriminate.
  - destruct (nth_error (fn_blocks p) a) as [blk |] eqn:Hnth; [| discriminate].
    assert (Hops : forallb (op_ok p) (b_ops blk) = true).
    { unfold check_bounds in Hbounds. rewrite forallb_forall in Hbounds.
      apply (Hbounds blk). eapply nth_error_In. exact Hnth. }
    pose proof (exec_ops_safe p e (b_ops blk) s Hops Hs) as Hsafe.
    destruct (exec_ops p e (b_ops blk) s) as [s1 | f]; simpl in Hsafe.
    + destruct (exec_term (b_term blk) s1) as [| t | f] eqn:Hterm.
      * discriminate.
      * specialize (IH t s1 Hbounds Hsafe).
        destruct (exec ct p e fuel t s1); congruence.
      * (* terminators only fault for typing: they access no memory *)
        rewrite (exec_term_fault _ _ _ Hterm). discriminate.
    + congruence.
Qed.

Lemma initial_state_typed : forall p e, regs_typed p (initial_state e).
Proof.
  intros p e r m k H. simpl in H. discriminate.
Qed.

(** No run of a probe that passes [check_bounds] reads or writes a slot or a map value outside
    its declared size, uses a map that does not exist, or dereferences a pointer as if it
    pointed into another map than its register's declared one. *)
Theorem run_in_bounds : forall ct p e fuel,
  check_bounds p = true -> run ct p e fuel <> Failed OutOfBounds.
Proof.
  intros ct p e fuel H. apply exec_in_bounds; [exact H | apply initial_state_typed].
Qed.

(** ** Per-probe certificate *)

(** What a probe's proof file establishes: for every environment, the run stops within
    [length (fn_blocks p)] block steps (and more fuel changes nothing), a run that returns
    costs at most [bound], and no run accesses memory out of bounds. *)
Definition guarantees (ct : cost_table) (p : function) (bound : N) : Prop :=
  forall e,
    run ct p e (length (fn_blocks p)) <> OutOfFuel
    /\ (forall fuel, length (fn_blocks p) <= fuel -> run ct p e fuel = run ct p e (length (fn_blocks p)))
    /\ (forall fuel s c steps, run ct p e fuel = Done s c steps -> steps <= length (fn_blocks p) /\ (c <= bound)%N)
    /\ (forall fuel, run ct p e fuel <> Failed OutOfBounds).

Theorem certify : forall ct p bound,
  check_acyclic p = true -> (wcet ct p <= bound)%N -> check_bounds p = true -> guarantees ct p bound.
Proof.
  intros ct p bound Hacyc Hwcet Hbounds e.
  destruct (run_terminates ct p e Hacyc) as [Hstop [Hmono Hsteps]].
  split; [exact Hstop | split; [exact Hmono | split]].
  - intros fuel s c steps Hrun. split.
    + exact (Hsteps _ _ _ _ Hrun).
    + eapply N.le_trans; [exact (run_cost_le_wcet _ _ _ _ _ _ _ Hacyc Hrun) | exact Hwcet].
  - intros fuel. apply run_in_bounds. exact Hbounds.
Qed.
