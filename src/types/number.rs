//! Numbers as text on the request path, without `core::fmt`.

/// `v` in decimal as `format!("{v}")` prints it: the fewest digits that read back as exactly
/// `v`, never an exponent (where two forms are equally short, ryu's choice may be the other).
/// From ryu's digits: std's formatting was ~1.3 k instructions per value, and the cost and
/// key-spend headers and the key's budget header print one on every answer.
pub fn decimal(v: f64) -> String {
    if !v.is_finite() {
        return format!("{v}");
    }
    let mut buf = ryu::Buffer::new();
    let short = buf.format_finite(v);
    if !short.contains('e') {
        // Already positional (every cost and spend in practice); std prints `1` for `1.0`.
        return short.strip_suffix(".0").unwrap_or(short).to_owned();
    }
    let (neg, short) = match short.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, short),
    };
    let (mantissa, exp) = short.split_once('e').unwrap_or((short, "0"));
    let exp: i32 = exp.parse().unwrap_or(0);
    let (int, frac) = mantissa.split_once('.').unwrap_or((mantissa, ""));
    let frac = frac.trim_end_matches('0');
    // digits × 10^(point - digits.len()): the decimal point sits after `point` digits.
    let digits: String = [int, frac].concat();
    let lead = digits.len() - digits.trim_start_matches('0').len();
    let digits = &digits[lead..];
    let point = int.len() as i32 - lead as i32 + exp;
    let mut out = String::with_capacity(digits.len() + 8);
    if neg {
        out.push('-');
    }
    if digits.is_empty() {
        out.push('0');
    } else if point <= 0 {
        out.push_str("0.");
        out.extend(std::iter::repeat_n('0', (-point) as usize));
        out.push_str(digits);
    } else if point as usize >= digits.len() {
        out.push_str(digits);
        out.extend(std::iter::repeat_n('0', point as usize - digits.len()));
    } else {
        out.push_str(&digits[..point as usize]);
        out.push('.');
        out.push_str(&digits[point as usize..]);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decimal_prints_as_display() {
        let mut values = vec![
            0.0,
            -0.0,
            1.0,
            -1.0,
            0.1,
            0.5,
            1.5,
            10.0,
            100.0,
            123.456,
            1e-5,
            1.5e-7,
            2.5e-10,
            0.000105,
            1e15,
            1e16,
            1.2345e17,
            1e21,
            1e300,
            5e-324,
            f64::MAX,
            f64::MIN_POSITIVE,
            0.30000000000000004,
            7.000000000000001e-6,
            1_000_000.0,
            12.5e3,
        ];
        // Costs and spends of every magnitude, from a fixed seed.
        let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
        for _ in 0..20_000 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let mantissa = (x >> 11) as f64 / (1u64 << 53) as f64;
            let exp = (x % 40) as i32 - 25;
            values.push(mantissa * 10f64.powi(exp));
            values.push(f64::from_bits(x >> 2));
        }
        let mut same = 0;
        let n = values.len();
        for v in values {
            let (ours, std) = (decimal(v), format!("{v}"));
            // Reads back as exactly `v`, in decimal, and no longer than std's.
            assert_eq!(
                ours.parse::<f64>().unwrap().to_bits(),
                v.to_bits(),
                "{ours} for {v:e}"
            );
            assert!(
                !ours.contains('e') && ours.len() <= std.len(),
                "{ours} vs {std}"
            );
            same += usize::from(ours == std);
        }
        // Differences are ties between equally short forms: rare.
        assert!(same * 1000 >= n * 999, "{same} of {n} as std prints them");
    }
}
