//! Which documents of a multi-document YAML file apply, as Spring Boot decides it (Clouddriver
//! reads its files through Spring Boot): a document with `spring.config.activate.on-profile` (or
//! the older `spring.profiles`) applies only while that profile expression holds for the active
//! profiles (`SPRING_PROFILES_ACTIVE`, or `--profiles`).

use serde_yaml::Value;

/// The document's profile condition, if it has one.
pub(super) fn condition(document: &Value) -> Option<&Value> {
    let spring = document.get("spring")?;
    spring
        .get("config")
        .and_then(|c| c.get("activate"))
        .and_then(|a| a.get("on-profile").or_else(|| a.get("onProfile")))
        .or_else(|| spring.get("profiles"))
}

/// Whether `condition` (a string or a list of expressions, any of which may hold) holds for
/// `active`. An expression is Spring's: `!a`, `a & b`, `a | b`; parentheses are refused rather
/// than guessed at.
pub(super) fn holds(condition: &Value, active: &[String]) -> Result<bool, String> {
    let expressions: Vec<&str> = match condition {
        Value::String(s) => s.split(',').collect(),
        Value::Sequence(items) => items
            .iter()
            .map(|v| v.as_str().ok_or("a profile list holds only strings"))
            .collect::<Result<_, _>>()?,
        _ => return Err("the profile condition must be a string or a list".to_owned()),
    };
    for expression in expressions {
        if expression.contains(['(', ')']) {
            return Err(format!(
                "profile expression {expression:?}: parentheses are not supported; split the document"
            ));
        }
        let any = expression.split('|').any(|all| {
            all.split('&').all(|term| {
                let term = term.trim();
                match term.strip_prefix('!') {
                    Some(name) => !active.iter().any(|a| a == name.trim()),
                    None => active.iter().any(|a| a == term),
                }
            })
        });
        if any {
            return Ok(true);
        }
    }
    Ok(false)
}

/// The active profiles in `SPRING_PROFILES_ACTIVE`'s form: comma-separated, blanks dropped.
pub(super) fn active(value: Option<String>) -> Vec<String> {
    value
        .unwrap_or_default()
        .split(',')
        .map(str::trim)
        .filter(|p| !p.is_empty())
        .map(str::to_owned)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spring_profile_expressions() {
        let active = active(Some("prod, eu".to_owned()));
        let holds = |yaml: &str| holds(&serde_yaml::from_str(yaml).unwrap(), &active);
        assert_eq!(holds("prod"), Ok(true));
        assert_eq!(holds("dev"), Ok(false));
        assert_eq!(holds("dev, eu"), Ok(true), "a comma is any of");
        assert_eq!(holds("[dev, prod]"), Ok(true));
        assert_eq!(holds("'!dev'"), Ok(true));
        assert_eq!(holds("'!prod'"), Ok(false));
        assert_eq!(holds("prod & eu"), Ok(true));
        assert_eq!(holds("prod & us"), Ok(false));
        assert_eq!(holds("us | eu"), Ok(true));
        assert!(holds("(prod & eu) | us").is_err());
        let doc: Value =
            serde_yaml::from_str("spring: {config: {activate: {on-profile: prod}}}").unwrap();
        assert_eq!(condition(&doc).and_then(Value::as_str), Some("prod"));
        let legacy: Value = serde_yaml::from_str("spring: {profiles: prod}").unwrap();
        assert_eq!(condition(&legacy).and_then(Value::as_str), Some("prod"));
    }
}
