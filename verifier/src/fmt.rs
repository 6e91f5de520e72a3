//! Number formatting for diagnostics: people read `1,240 ns`, `200k/s`, `12.4 %`.

/// `1234567` → `1,234,567`.
pub fn thousands(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// Nanoseconds: whole with separators from 100 up, else with one decimal.
pub fn ns(v: f64) -> String {
    if v >= 100.0 {
        format!("{} ns", thousands(v.round() as u64))
    } else {
        format!("{v:.1} ns")
    }
}

/// An event rate as the language writes it: `50`, `200k`, `1M`, `1200k`.
pub fn rate(r: u64) -> String {
    if r >= 1_000_000 && r.is_multiple_of(1_000_000) {
        format!("{}M", r / 1_000_000)
    } else if r >= 1000 && r.is_multiple_of(1000) {
        format!("{}k", r / 1000)
    } else {
        r.to_string()
    }
}

/// A percentage with enough digits to compare against budgets like 0.5 %.
pub fn percent(p: f64) -> String {
    if p >= 10.0 {
        format!("{p:.1} %")
    } else if p >= 0.01 {
        format!("{p:.2} %")
    } else {
        format!("{p:.4} %")
    }
}

/// Seconds as the largest sensible unit: `45 s`, `12 min`, `3.5 h`, `2.0 days`.
pub fn duration(secs: f64) -> String {
    if secs < 1.0 {
        format!("{:.0} ms", secs * 1000.0)
    } else if secs < 120.0 {
        format!("{secs:.0} s")
    } else if secs < 7200.0 {
        format!("{:.0} min", secs / 60.0)
    } else if secs < 172_800.0 {
        format!("{:.1} h", secs / 3600.0)
    } else {
        format!("{:.1} days", secs / 86_400.0)
    }
}

/// The largest "nice" rate at or below `max`: two significant digits, rounded down, so a
/// suggested `rate <= N/s` is easy to read and still within the budget.
pub fn nice_rate_floor(max: f64) -> u64 {
    if !max.is_finite() || max >= u64::MAX as f64 {
        return u64::MAX;
    }
    if max < 1.0 {
        return 0;
    }
    let whole = max.floor() as u64;
    let digits = whole.to_string().len() as u32;
    let unit = 10u64.pow(digits.saturating_sub(2));
    whole / unit * unit
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats() {
        assert_eq!(thousands(1_240), "1,240");
        assert_eq!(thousands(999), "999");
        assert_eq!(ns(1240.2), "1,240 ns");
        assert_eq!(ns(62.25), "62.2 ns");
        assert_eq!(
            (rate(200_000), rate(1_000_000), rate(980), rate(1_200_000)),
            ("200k".into(), "1M".into(), "980".into(), "1200k".into())
        );
        assert_eq!(percent(12.4), "12.4 %");
        assert_eq!(percent(0.5), "0.50 %");
        assert_eq!(duration(82.0), "82 s");
    }

    #[test]
    fn nice_rates_round_down_to_two_digits() {
        assert_eq!(nice_rate_floor(987.6), 980);
        assert_eq!(nice_rate_floor(98_765.0), 98_000);
        assert_eq!(nice_rate_floor(7.9), 7);
        assert_eq!(nice_rate_floor(0.3), 0);
    }
}
