//! dimsum's answers where distribution 2.8.2 refuses or crashes (history-conversion.md §11).
//!
//! These rules are ours, not distribution's. Whenever one fires, the caller is told out of band
//! (the list in [`super::History::extensions`]); the v1Compatibility bytes themselves never say so.

use serde_json::value::RawValue;

use super::config::{Entry, Kind, kind_of};

/// A §11 rule that fired.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Extension {
    /// `history` missing, `null` or `[]` (distribution: 400): one entry per layer was synthesised.
    EmptyHistory,
    /// `rootfs` missing or `null` (distribution drops the connection): treated as no `diff_ids`.
    MissingRootfs,
    /// `len(rootfs.diff_ids) != len(layers)` (distribution: 400): `diff_ids` ignored.
    DiffIdsMismatch {
        /// Entries in `rootfs.diff_ids`.
        diff_ids: usize,
        /// Layers in the manifest.
        layers: usize,
    },
    /// More non-empty history entries than layers (distribution: 400): one entry per layer was
    /// synthesised, because there is no telling which entry owns which layer.
    TooManyNonEmptyEntries {
        /// Non-empty history entries.
        entries: usize,
        /// Layers in the manifest.
        layers: usize,
    },
    /// A `created` Go 1.19 cannot parse (distribution: 400): read leniently, else the zero time.
    LenientTime {
        /// Index in the config's `history`.
        index: usize,
        /// The value as written.
        value: String,
    },
}

impl Extension {
    /// A stable snake_case name for logs, headers and `warnings` fields.
    pub fn name(&self) -> &'static str {
        match self {
            Extension::EmptyHistory => "empty_history",
            Extension::MissingRootfs => "missing_rootfs",
            Extension::DiffIdsMismatch { .. } => "diff_ids_mismatch",
            Extension::TooManyNonEmptyEntries { .. } => "too_many_non_empty_entries",
            Extension::LenientTime { .. } => "lenient_time",
        }
    }
}

impl std::fmt::Display for Extension {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Extension::EmptyHistory => f.write_str("the config has no history"),
            Extension::MissingRootfs => f.write_str("the config has no rootfs"),
            Extension::DiffIdsMismatch { diff_ids, layers } => {
                write!(
                    f,
                    "rootfs.diff_ids has {diff_ids} entries but the manifest has {layers} layers"
                )
            }
            Extension::TooManyNonEmptyEntries { entries, layers } => write!(
                f,
                "the history has {entries} non-empty entries but the manifest has {layers} layers"
            ),
            Extension::LenientTime { index, value } => {
                write!(
                    f,
                    "history[{index}].created {value:?} is not RFC 3339 as Go 1.19 reads it"
                )
            }
        }
    }
}

/// One non-empty entry per layer, oldest first, each `created` = the config's top-level `created`
/// (its raw text, re-parsed later like any entry's); with no layers, one `empty_layer` entry.
pub(crate) fn synthesize(layers: usize, created: Option<&RawValue>) -> Vec<Entry> {
    let created = created.filter(|v| kind_of(v) == Kind::String).map(|v| {
        let raw = v.get();
        raw[1..raw.len() - 1].to_owned()
    });
    let entry = |empty_layer| Entry {
        created: created.clone(),
        empty_layer,
        ..Entry::default()
    };
    if layers == 0 {
        return vec![entry(true)];
    }
    vec![entry(false); layers]
}
