//! Schedule expressions as EventBridge writes them, checked at load:
//! `rate(5 minutes)` (singular unit when the value is 1) or a six-field
//! `cron(minutes hours day-of-month month day-of-week year)`.

/// `Ok` when `expr` is a schedule EventBridge would accept.
pub(crate) fn check(expr: &str) -> Result<(), String> {
    let expr = expr.trim();
    if let Some(inner) = expr.strip_prefix("rate(").and_then(|s| s.strip_suffix(')')) {
        return rate(inner.trim());
    }
    if let Some(inner) = expr.strip_prefix("cron(").and_then(|s| s.strip_suffix(')')) {
        return cron(inner.trim());
    }
    Err(format!(
        "{expr:?} is not a schedule; write rate(5 minutes) or cron(0 2 * * ? *)"
    ))
}

fn rate(inner: &str) -> Result<(), String> {
    let mut parts = inner.split_whitespace();
    let (Some(n), Some(unit), None) = (parts.next(), parts.next(), parts.next()) else {
        return Err(format!(
            "rate({inner}): expected a number and a unit, e.g. rate(5 minutes)"
        ));
    };
    let n: u64 = match n.parse() {
        Ok(n) if n > 0 => n,
        _ => {
            return Err(format!(
                "rate({inner}): {n:?} is not a whole number of at least 1"
            ));
        }
    };
    match (unit, n == 1) {
        ("minute" | "hour" | "day", true) | ("minutes" | "hours" | "days", false) => Ok(()),
        ("minute" | "hour" | "day", false) => Err(format!(
            "rate({inner}): use the plural, {unit}s, when the value is not 1"
        )),
        ("minutes" | "hours" | "days", true) => Err(format!(
            "rate({inner}): use the singular, {}, when the value is 1 (as EventBridge does)",
            unit.trim_end_matches('s')
        )),
        _ => Err(format!(
            "rate({inner}): the unit is minute(s), hour(s) or day(s)"
        )),
    }
}

fn cron(inner: &str) -> Result<(), String> {
    let fields: Vec<&str> = inner.split_whitespace().collect();
    if fields.len() != 6 {
        return Err(format!(
            "cron({inner}): takes 6 fields (minutes hours day-of-month month day-of-week year), found {}",
            fields.len()
        ));
    }
    if fields[2] != "?" && fields[4] != "?" {
        return Err(format!(
            "cron({inner}): one of day-of-month and day-of-week must be `?`, as in EventBridge"
        ));
    }
    const NAMES: [&str; 6] = [
        "minutes",
        "hours",
        "day-of-month",
        "month",
        "day-of-week",
        "year",
    ];
    for (i, f) in fields.iter().enumerate() {
        let ok_char = |c: char| {
            c.is_ascii_alphanumeric() || ",-*/#".contains(c) || (c == '?' && (i == 2 || i == 4))
        };
        if !f.chars().all(ok_char) {
            return Err(format!(
                "cron({inner}): {} field {f:?} has characters cron does not use",
                NAMES[i]
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::check;

    #[test]
    fn rates_follow_eventbridge_grammar() {
        assert!(check("rate(5 minutes)").is_ok());
        assert!(check("rate(1 hour)").is_ok());
        assert!(
            check("rate(1 hours)")
                .unwrap_err()
                .contains("singular, hour,")
        );
        assert!(check("rate(2 day)").unwrap_err().contains("plural"));
        assert!(check("rate(0 minutes)").is_err());
        assert!(
            check("rate(5 weeks)")
                .unwrap_err()
                .contains("minute(s), hour(s) or day(s)")
        );
        assert!(check("every 5 minutes").is_err());
    }

    #[test]
    fn crons_have_six_fields_and_a_question_mark() {
        assert!(check("cron(0 2 * * ? *)").is_ok());
        assert!(check("cron(0/15 8-17 ? * MON-FRI *)").is_ok());
        assert!(check("cron(0 2 * * *)").unwrap_err().contains("6 fields"));
        assert!(check("cron(0 2 * * * *)").unwrap_err().contains("`?`"));
        assert!(check("cron(0 ? * * ? *)").is_err());
    }
}
