//! Sizes on the command line (`64MiB`, `1GiB`, `4096`, `4k`) and byte
//! figures printed for people (`1.5 GiB`). The JSON output keeps raw
//! numbers; only the text output goes through [`bytes`].

/// Parses a size: a whole number of bytes, optionally followed by a unit.
/// Binary units (`KiB`, `MiB`, `GiB`, `TiB`, and the short `k`, `m`, `g`,
/// `t`, `K`, `M`, `G`, `T`) are powers of 1024; decimal ones (`kB`, `MB`,
/// `GB`, `TB`) powers of 1000; `B` is bytes. A fraction is allowed with a
/// unit (`1.5GiB`) and rounded down to whole bytes. For clap's
/// `value_parser`.
///
/// ```text
/// 64MiB -> 67108864    4k -> 4096    1.5GB -> 1500000000    512 -> 512
/// ```
pub fn parse_size(s: &str) -> Result<u64, String> {
    let t = s.trim();
    let split = t
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let unit = unit.trim();
    let mult: u64 = match unit {
        "" | "B" | "b" => 1,
        "k" | "K" | "KiB" | "Ki" => 1 << 10,
        "m" | "M" | "MiB" | "Mi" => 1 << 20,
        "g" | "G" | "GiB" | "Gi" => 1 << 30,
        "t" | "T" | "TiB" | "Ti" => 1 << 40,
        "kB" | "KB" => 1_000,
        "MB" => 1_000_000,
        "GB" => 1_000_000_000,
        "TB" => 1_000_000_000_000,
        _ => {
            return Err(format!(
                "{s:?}: unknown unit {unit:?} (use B, KiB, MiB, GiB, TiB, k, m, g, t, kB, MB, GB or TB)"
            ))
        }
    };
    if num.is_empty() {
        return Err(format!("{s:?}: a size starts with a number, e.g. 64MiB"));
    }
    if num.contains('.') {
        if unit.is_empty() || mult == 1 {
            return Err(format!("{s:?}: a fraction of a byte"));
        }
        let f: f64 = num
            .parse()
            .map_err(|_| format!("{s:?}: {num:?} is not a number"))?;
        let v = f * mult as f64;
        if !v.is_finite() || v >= u64::MAX as f64 {
            return Err(format!("{s:?}: too large"));
        }
        return Ok(v as u64);
    }
    let n: u64 = num
        .parse()
        .map_err(|_| format!("{s:?}: {num:?} is not a whole number"))?;
    n.checked_mul(mult)
        .ok_or_else(|| format!("{s:?}: too large"))
}

/// [`parse_size`] for a size that must fit in `usize`.
pub fn parse_size_usize(s: &str) -> Result<usize, String> {
    let v = parse_size(s)?;
    usize::try_from(v).map_err(|_| format!("{s:?}: too large"))
}

/// A byte count for people: `812 B`, `4.0 KiB`, `1.50 GiB` (three
/// significant figures from KiB on).
pub fn bytes(n: u64) -> String {
    const UNITS: [&str; 6] = ["B", "KiB", "MiB", "GiB", "TiB", "PiB"];
    if n < 1024 {
        return format!("{n} B");
    }
    let mut v = n as f64;
    let mut i = 0;
    while v >= 1024.0 && i + 1 < UNITS.len() {
        v /= 1024.0;
        i += 1;
    }
    if v >= 100.0 {
        format!("{v:.0} {}", UNITS[i])
    } else if v >= 10.0 {
        format!("{v:.1} {}", UNITS[i])
    } else {
        format!("{v:.2} {}", UNITS[i])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_parse() {
        assert_eq!(parse_size("512"), Ok(512));
        assert_eq!(parse_size("512B"), Ok(512));
        assert_eq!(parse_size("4k"), Ok(4096));
        assert_eq!(parse_size("64MiB"), Ok(64 << 20));
        assert_eq!(parse_size("64 MiB"), Ok(64 << 20));
        assert_eq!(parse_size("1GiB"), Ok(1 << 30));
        assert_eq!(parse_size("1G"), Ok(1 << 30));
        assert_eq!(parse_size("1.5GiB"), Ok(3 << 29));
        assert_eq!(parse_size("2MB"), Ok(2_000_000));
        assert_eq!(parse_size("1kB"), Ok(1000));
        assert_eq!(parse_size("1TiB"), Ok(1 << 40));
    }

    #[test]
    fn bad_sizes_say_why() {
        for bad in [
            "",
            "MiB",
            "12XB",
            "1.5",
            "1.5B",
            "-3",
            "99999999999999999999",
            "20000000TiB",
            "1.2.3MiB",
        ] {
            let e = parse_size(bad).unwrap_err();
            assert!(e.contains(&format!("{bad:?}")), "{bad}: {e}");
        }
    }

    #[test]
    fn bytes_print_for_people() {
        assert_eq!(bytes(0), "0 B");
        assert_eq!(bytes(1023), "1023 B");
        assert_eq!(bytes(1024), "1.00 KiB");
        assert_eq!(bytes(1536), "1.50 KiB");
        assert_eq!(bytes(64 << 20), "64.0 MiB");
        assert_eq!(bytes(200 << 30), "200 GiB");
        assert_eq!(bytes(u64::MAX), "16384 PiB");
    }
}
