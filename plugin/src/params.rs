//! The parameters each JSON-RPC method and REST route takes, by their wire names, and the message
//! for one it does not take.
//!
//! Nothing a caller sends is ignored: a misspelt `signedby` that was dropped would turn a
//! signature gate off, so an unknown name is a bad request that says what was meant.

/// What every image method takes by name, in positional order.
pub const IMAGE: &[&str] = &[
    "account",
    "repository",
    "reference",
    "platform",
    "tag",
    "digest",
    "signedBy",
];

/// `getHistory`'s params, in positional order.
pub const HISTORY: &[&str] = &[
    "account",
    "repository",
    "reference",
    "level",
    "platform",
    "strict",
    "tag",
    "digest",
    "signedBy",
];

/// Methods that name an image by its reference alone (`getDigest`, `getPlatforms`): no
/// platform, since they answer for the reference as named.
pub const REFERENCE: &[&str] = &["account", "repository", "reference", "tag"];

/// The message for `name`, which is not among `known`: the nearest spelling when one is close,
/// and the whole list.
pub fn unknown(name: &str, known: &[&str]) -> String {
    let hint = match closest(name, known) {
        Some(right) => format!(" (did you mean {right:?}?)"),
        None => String::new(),
    };
    format!(
        "unknown parameter {name:?}{hint}; accepted: {}",
        known.join(", ")
    )
}

/// The known name `name` most likely meant: the same ignoring case, else within two edits.
pub fn closest<'a>(name: &str, known: &[&'a str]) -> Option<&'a str> {
    if let Some(same) = known.iter().find(|k| k.eq_ignore_ascii_case(name)) {
        return Some(same);
    }
    let lower = name.to_ascii_lowercase();
    known
        .iter()
        .map(|k| (edits(&lower, &k.to_ascii_lowercase()), *k))
        .filter(|(d, _)| *d <= 2)
        .min_by_key(|(d, _)| *d)
        .map(|(_, k)| k)
}

/// Levenshtein distance, one row at a time (names are a few bytes long).
fn edits(a: &str, b: &str) -> usize {
    let b = b.as_bytes();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.bytes().enumerate() {
        let mut diagonal = row[0];
        row[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let substitution = diagonal + usize::from(ca != *cb);
            diagonal = row[j + 1];
            row[j + 1] = substitution.min(row[j] + 1).min(diagonal + 1);
        }
    }
    row[b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_nearest_spelling_is_named() {
        assert_eq!(closest("signedby", IMAGE), Some("signedBy"));
        assert_eq!(closest("signed_by", IMAGE), Some("signedBy"));
        assert_eq!(closest("plaform", IMAGE), Some("platform"));
        assert_eq!(closest("lvl", HISTORY), Some("level"));
        assert_eq!(closest("x", HISTORY), None);
        assert_eq!(closest("levle", HISTORY), Some("level"));
        assert_eq!(closest("zzzzzz", IMAGE), None);
        assert_eq!(
            unknown("signedby", IMAGE),
            "unknown parameter \"signedby\" (did you mean \"signedBy\"?); accepted: account, repository, reference, platform, tag, digest, signedBy"
        );
        assert_eq!(edits("kitten", "sitting"), 3);
        assert_eq!(edits("", "abc"), 3);
    }
}
