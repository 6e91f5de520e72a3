(** * Assumptions: the main theorems depend on no axiom.

    [make] compiles this file and fails unless every [Print Assumptions] below answers
    "Closed under the global context" (no [Admitted], no axiom, not even from the standard
    library). *)

From Ppis Require Import Soundness Loops.

Print Assumptions Soundness.run_terminates.
Print Assumptions Soundness.run_cost_le_wcet.
Print Assumptions Soundness.run_in_bounds.
Print Assumptions Soundness.certify.
Print Assumptions Loops.exec_cost_le_potential.
Print Assumptions Loops.exec_steps_le_potential.
Print Assumptions Loops.exec_stops_within_potential.
Print Assumptions Loops.certify_loops.
