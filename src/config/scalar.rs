//! A number or boolean of the `dimsum:` section as written: its value, or why it is not one.
//!
//! Reading never fails on a bad value; validation reports it with its key. So `config check`
//! lists every bad value at once instead of stopping at the first, and a `0` where zero means
//! nothing is refused by name rather than silently replaced by the default.

use serde::{Deserialize, Deserializer};
use serde_yaml::Value;

/// One scalar setting.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub(crate) enum Scalar<T> {
    /// Not written (or `null`).
    #[default]
    Unset,
    /// A good value.
    Set(T),
    /// Written, but not a value of the type: why.
    Bad(String),
}

impl<'de> Deserialize<'de> for Scalar<u64> {
    /// Spring binds `"5000"` as a number; so do we.
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let bad = |v: &dyn std::fmt::Debug| {
            Scalar::Bad(format!("expected a non-negative integer, got {v:?}"))
        };
        Ok(match Value::deserialize(d)? {
            Value::Null => Scalar::Unset,
            Value::Number(n) => n.as_u64().map_or_else(|| bad(&n), Scalar::Set),
            Value::String(s) => s.trim().parse().map_or_else(|_| bad(&s), Scalar::Set),
            other => bad(&other),
        })
    }
}

impl<'de> Deserialize<'de> for Scalar<bool> {
    /// Spring binds `"true"` as a boolean; so do we, and nothing else.
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let bad =
            |v: &dyn std::fmt::Debug| Scalar::Bad(format!("expected true or false, got {v:?}"));
        Ok(match Value::deserialize(d)? {
            Value::Null => Scalar::Unset,
            Value::Bool(b) => Scalar::Set(b),
            Value::String(s) => match s.trim() {
                "true" => Scalar::Set(true),
                "false" => Scalar::Set(false),
                _ => bad(&s),
            },
            other => bad(&other),
        })
    }
}

impl<T: Copy> Scalar<T> {
    /// The value if set and good; a bad one is a problem naming `key` (its whole path).
    pub(crate) fn get(&self, key: &str, problems: &mut Vec<String>) -> Option<T> {
        match self {
            Scalar::Unset => None,
            Scalar::Set(v) => Some(*v),
            Scalar::Bad(why) => {
                problems.push(format!("{key}: {why}"));
                None
            }
        }
    }
}

impl Scalar<u64> {
    /// As [`Scalar::get`], for a setting where zero means nothing: 0 is a problem too.
    pub(crate) fn positive(&self, key: &str, problems: &mut Vec<String>) -> Option<u64> {
        match self.get(key, problems) {
            Some(0) => {
                problems.push(format!(
                    "{key}: 0 is not allowed here; leave the key out for the default"
                ));
                None
            }
            other => other,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bad_values_are_kept_with_their_reason() {
        let n = |yaml: &str| serde_yaml::from_str::<Scalar<u64>>(yaml).unwrap();
        let b = |yaml: &str| serde_yaml::from_str::<Scalar<bool>>(yaml).unwrap();
        assert_eq!(n("5000"), Scalar::Set(5000));
        assert_eq!(n("\"5000\""), Scalar::Set(5000));
        assert_eq!(n("~"), Scalar::Unset);
        assert!(matches!(n("-1"), Scalar::Bad(_)));
        assert!(matches!(n("ten"), Scalar::Bad(_)));
        assert_eq!(b("\"true\""), Scalar::Set(true));
        assert!(matches!(b("yes_please"), Scalar::Bad(_)));
        assert!(matches!(b("1"), Scalar::Bad(_)));
        let mut problems = Vec::new();
        assert_eq!(
            n("0").positive("dimsum.callTimeoutMillis", &mut problems),
            None
        );
        assert_eq!(n("ten").get("dimsum.retries", &mut problems), None);
        assert_eq!(
            problems,
            [
                "dimsum.callTimeoutMillis: 0 is not allowed here; leave the key out for the default",
                "dimsum.retries: expected a non-negative integer, got \"ten\""
            ]
        );
    }
}
