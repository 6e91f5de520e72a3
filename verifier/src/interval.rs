//! Unsigned 64-bit intervals: the numeric abstract domain of the memory-safety analysis.
//!
//! A register's value is over-approximated by `lo..=hi` read as unsigned. Operations that may
//! wrap return the full range, so every result contains every concrete result.

use ppis_ir::{AluOp, Cond};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Interval {
    pub lo: u64,
    pub hi: u64,
}

impl Interval {
    pub const TOP: Interval = Interval { lo: 0, hi: u64::MAX };

    pub fn constant(v: u64) -> Interval {
        Interval { lo: v, hi: v }
    }

    /// `lo..=hi`, or `None` when empty.
    pub fn new(lo: u64, hi: u64) -> Option<Interval> {
        (lo <= hi).then_some(Interval { lo, hi })
    }

    /// All values of an unsigned `width`-byte integer.
    pub fn of_width(width: u8) -> Interval {
        if width >= 8 {
            Interval::TOP
        } else {
            Interval { lo: 0, hi: (1u64 << (width as u32 * 8)) - 1 }
        }
    }

    pub fn as_constant(self) -> Option<u64> {
        (self.lo == self.hi).then_some(self.lo)
    }

    pub fn contains(self, v: u64) -> bool {
        self.lo <= v && v <= self.hi
    }

    pub fn hull(self, other: Interval) -> Interval {
        Interval { lo: self.lo.min(other.lo), hi: self.hi.max(other.hi) }
    }

    pub fn meet(self, other: Interval) -> Option<Interval> {
        Interval::new(self.lo.max(other.lo), self.hi.min(other.hi))
    }

    /// Standard interval widening: a bound that moved jumps to the end of the range, so
    /// ascending chains through loops stabilise.
    pub fn widen(self, next: Interval) -> Interval {
        Interval {
            lo: if next.lo < self.lo { 0 } else { self.lo },
            hi: if next.hi > self.hi { u64::MAX } else { self.hi },
        }
    }

    /// Widening with thresholds: a bound that moved goes to the nearest threshold beyond it
    /// (`thresholds` ascending), or to the end of the range when there is none. Each bound
    /// can move only through finitely many thresholds, so ascending chains still stabilise.
    pub fn widen_to(self, next: Interval, thresholds: &[u64]) -> Interval {
        let lo = if next.lo < self.lo {
            thresholds.iter().rev().copied().find(|t| *t <= next.lo).unwrap_or(0)
        } else {
            self.lo
        };
        let hi = if next.hi > self.hi {
            thresholds.iter().copied().find(|t| *t >= next.hi).unwrap_or(u64::MAX)
        } else {
            self.hi
        };
        Interval { lo, hi }
    }

    /// True when every value is a non-negative `i64`, so signed and unsigned order agree.
    fn signed_safe(self) -> bool {
        self.hi <= i64::MAX as u64
    }

    /// The smallest `2^k - 1` at or above `v`: an upper bound for `or`/`xor` of values ≤ `v`.
    fn fill_ones(v: u64) -> u64 {
        if v == 0 {
            0
        } else {
            u64::MAX >> v.leading_zeros()
        }
    }
}

/// The interval of `lhs OP rhs` (eBPF semantics: `x / 0 = 0`, `x % 0 = x`).
pub fn alu(op: AluOp, a: Interval, b: Interval) -> Interval {
    if let (Some(x), Some(y)) = (a.as_constant(), b.as_constant()) {
        return Interval::constant(eval_alu(op, x, y));
    }
    let top = Interval::TOP;
    match op {
        AluOp::Add => match (a.lo.checked_add(b.lo), a.hi.checked_add(b.hi)) {
            (Some(lo), Some(hi)) => Interval { lo, hi },
            _ => top,
        },
        AluOp::Sub => {
            if a.lo >= b.hi {
                Interval { lo: a.lo - b.hi, hi: a.hi - b.lo }
            } else {
                top
            }
        }
        AluOp::Mul => match (a.lo.checked_mul(b.lo), a.hi.checked_mul(b.hi)) {
            (Some(lo), Some(hi)) => Interval { lo, hi },
            _ => top,
        },
        AluOp::UDiv => match a.hi.checked_div(b.lo) {
            Some(hi) => Interval { lo: a.lo / b.hi, hi },
            // Division by zero yields 0; any other divisor shrinks the dividend.
            None => Interval { lo: 0, hi: a.hi },
        },
        AluOp::UMod => {
            if b.lo == 0 {
                // `x % 0 = x`.
                Interval { lo: 0, hi: a.hi }
            } else {
                Interval { lo: 0, hi: a.hi.min(b.hi - 1) }
            }
        }
        AluOp::And => Interval { lo: 0, hi: a.hi.min(b.hi) },
        AluOp::Or | AluOp::Xor => Interval { lo: 0, hi: Interval::fill_ones(a.hi.max(b.hi)) },
        AluOp::Shl => match b.as_constant() {
            Some(k) if k < 64 && a.hi.leading_zeros() as u64 >= k => Interval { lo: a.lo << k, hi: a.hi << k },
            _ => top,
        },
        AluOp::LShr => match b.as_constant() {
            Some(k) if k < 64 => Interval { lo: a.lo >> k, hi: a.hi >> k },
            _ => Interval { lo: 0, hi: a.hi },
        },
        AluOp::AShr => {
            if a.signed_safe() {
                alu(AluOp::LShr, a, b)
            } else {
                top
            }
        }
    }
}

/// The concrete result, shared with the reference interpreter.
pub fn eval_alu(op: AluOp, x: u64, y: u64) -> u64 {
    match op {
        AluOp::Add => x.wrapping_add(y),
        AluOp::Sub => x.wrapping_sub(y),
        AluOp::Mul => x.wrapping_mul(y),
        AluOp::UDiv => x.checked_div(y).unwrap_or(0),
        AluOp::UMod => x.checked_rem(y).unwrap_or(x),
        AluOp::And => x & y,
        AluOp::Or => x | y,
        AluOp::Xor => x ^ y,
        // eBPF masks the shift amount to 6 bits for 64-bit shifts.
        AluOp::Shl => x.wrapping_shl((y & 63) as u32),
        AluOp::LShr => x.wrapping_shr((y & 63) as u32),
        AluOp::AShr => ((x as i64).wrapping_shr((y & 63) as u32)) as u64,
    }
}

pub fn eval_cond(cond: Cond, x: u64, y: u64) -> bool {
    let (sx, sy) = (x as i64, y as i64);
    match cond {
        Cond::Eq => x == y,
        Cond::Ne => x != y,
        Cond::Ult => x < y,
        Cond::Ule => x <= y,
        Cond::Ugt => x > y,
        Cond::Uge => x >= y,
        Cond::Slt => sx < sy,
        Cond::Sle => sx <= sy,
        Cond::Sgt => sx > sy,
        Cond::Sge => sx >= sy,
    }
}

/// Narrows `(a, b)` to the values for which `a COND b` can hold; `None` when it cannot.
/// Sound: every concrete pair satisfying the condition stays inside the result.
pub fn refine(cond: Cond, a: Interval, b: Interval) -> Option<(Interval, Interval)> {
    if let (Some(x), Some(y)) = (a.as_constant(), b.as_constant()) {
        return eval_cond(cond, x, y).then_some((a, b));
    }
    let unsigned = match cond {
        Cond::Slt | Cond::Sle | Cond::Sgt | Cond::Sge if !(a.signed_safe() && b.signed_safe()) => {
            // Mixed signs: no narrowing, but never call a satisfiable condition infeasible.
            return Some((a, b));
        }
        Cond::Slt => Cond::Ult,
        Cond::Sle => Cond::Ule,
        Cond::Sgt => Cond::Ugt,
        Cond::Sge => Cond::Uge,
        other => other,
    };
    match unsigned {
        Cond::Eq => {
            let both = a.meet(b)?;
            Some((both, both))
        }
        Cond::Ne => Some((shave(a, b)?, shave(b, a)?)),
        Cond::Ult => Some((
            a.meet(Interval::new(0, b.hi.checked_sub(1)?)?)?,
            b.meet(Interval::new(a.lo.checked_add(1)?, u64::MAX)?)?,
        )),
        Cond::Ule => Some((a.meet(Interval { lo: 0, hi: b.hi })?, b.meet(Interval { lo: a.lo, hi: u64::MAX })?)),
        Cond::Ugt => refine(Cond::Ult, b, a).map(|(nb, na)| (na, nb)),
        Cond::Uge => refine(Cond::Ule, b, a).map(|(nb, na)| (na, nb)),
        _ => Some((a, b)),
    }
}

/// `a` without the single value of `b`, when that value is one of `a`'s ends.
fn shave(a: Interval, b: Interval) -> Option<Interval> {
    match b.as_constant() {
        Some(c) if a.as_constant() == Some(c) => None,
        Some(c) if a.lo == c => Some(Interval { lo: c + 1, hi: a.hi }),
        Some(c) if a.hi == c => Some(Interval { lo: a.lo, hi: c - 1 }),
        _ => Some(a),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn iv(lo: u64, hi: u64) -> Interval {
        Interval { lo, hi }
    }

    #[test]
    fn widening_stops_at_the_next_threshold_then_at_the_end_of_the_range() {
        let thresholds = [0, 15, 16, 17];
        assert_eq!(iv(0, 3).widen_to(iv(0, 4), &thresholds), iv(0, 15));
        assert_eq!(iv(0, 15).widen_to(iv(0, 16), &thresholds), iv(0, 16));
        assert_eq!(iv(0, 17).widen_to(iv(0, 18), &thresholds), iv(0, u64::MAX));
        assert_eq!(iv(10, 20).widen_to(iv(9, 20), &thresholds), iv(0, 20));
        // Bounds that did not move stay.
        assert_eq!(iv(2, 5).widen_to(iv(3, 4), &thresholds), iv(2, 5));
    }

    #[test]
    fn refinement_narrows_and_detects_infeasible_edges() {
        assert_eq!(refine(Cond::Eq, Interval::constant(5), Interval::constant(0)), None);
        assert_eq!(refine(Cond::Ne, iv(0, 255), Interval::constant(0)), Some((iv(1, 255), Interval::constant(0))));
        assert_eq!(refine(Cond::Ult, iv(0, 100), Interval::constant(10)).map(|r| r.0), Some(iv(0, 9)));
        assert_eq!(refine(Cond::Ult, iv(0, 100), Interval::constant(0)), None);
        assert_eq!(refine(Cond::Ugt, iv(0, 100), Interval::constant(10)).map(|r| r.0), Some(iv(11, 100)));
        assert_eq!(refine(Cond::Uge, iv(0, 5), Interval::constant(10)), None);
        // Signed comparisons of possibly negative values stay feasible.
        assert!(refine(Cond::Slt, Interval::TOP, Interval::constant(0)).is_some());
    }

    #[test]
    fn arithmetic_contains_every_concrete_result() {
        for (op, a, b) in [
            (AluOp::Add, iv(1, 3), iv(10, 20)),
            (AluOp::Sub, iv(10, 20), iv(1, 3)),
            (AluOp::Mul, iv(2, 4), iv(3, 5)),
            (AluOp::UDiv, iv(10, 20), iv(0, 3)),
            (AluOp::UMod, iv(10, 20), iv(0, 3)),
            (AluOp::And, iv(10, 20), iv(0, 3)),
            (AluOp::Or, iv(10, 20), iv(0, 3)),
            (AluOp::Xor, iv(10, 20), iv(0, 3)),
            (AluOp::Shl, iv(10, 20), iv(3, 3)),
            (AluOp::LShr, iv(10, 20), iv(0, 3)),
        ] {
            let r = alu(op, a, b);
            for x in a.lo..=a.hi {
                for y in b.lo..=b.hi {
                    assert!(r.contains(eval_alu(op, x, y)), "{op:?} {x} {y} -> {r:?}");
                }
            }
        }
        assert_eq!(alu(AluOp::Sub, iv(0, 1), iv(1, 1)), Interval::TOP);
    }
}
