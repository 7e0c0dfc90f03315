//! How numbers read in tables and on axes: about three significant digits, whole numbers without
//! decimals, thousands grouped. One place, so the HTML, the Markdown and the plots agree.

/// A measured value: `1,234,567`, `123`, `12.3`, `1.23`, `0.0123`, `45` (integers stay whole).
pub fn value(v: f64) -> String {
    if !v.is_finite() {
        return "n/a".into();
    }
    let a = v.abs();
    if v.fract() == 0.0 || a >= 100.0 {
        return group_thousands(v.round());
    }
    let decimals = if a >= 10.0 {
        1
    } else if a >= 1.0 {
        2
    } else {
        // Three significant digits below 1.
        (2 - a.log10().floor() as i32).max(0) as usize
    };
    format!("{v:.decimals$}")
}

fn group_thousands(v: f64) -> String {
    let digits = format!("{:.0}", v.abs());
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    if v < 0.0 {
        out.insert(0, '-');
    }
    out
}

/// A ratio to a reference: `1.83×`, `12×`.
pub fn ratio(r: f64) -> String {
    if !r.is_finite() {
        "n/a".into()
    } else if r >= 10.0 {
        format!("{r:.0}×")
    } else {
        format!("{r:.2}×")
    }
}

/// A fraction as a percentage: `7.3%`.
pub fn percent(fraction: f64) -> String {
    format!("{:.1}%", fraction * 100.0)
}

/// A signed relative change: `+12.5%`, `-3.0%`.
pub fn change(fraction: f64) -> String {
    format!("{:+.1}%", fraction * 100.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values() {
        assert_eq!(value(1_234_567.4), "1,234,567");
        assert_eq!(value(-1234.0), "-1,234");
        assert_eq!(value(999.6), "1,000");
        assert_eq!(value(123.4), "123");
        assert_eq!(value(45.0), "45");
        assert_eq!(value(12.34), "12.3");
        assert_eq!(value(1.234), "1.23");
        assert_eq!(value(0.012345), "0.0123");
        assert_eq!(value(0.0), "0");
        assert_eq!(value(f64::NAN), "n/a");
        assert_eq!(ratio(1.8333), "1.83×");
        assert_eq!(ratio(12.4), "12×");
        assert_eq!(percent(0.0734), "7.3%");
        assert_eq!(change(-0.03), "-3.0%");
    }
}
