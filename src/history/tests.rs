//! The reference vectors of history-conversion.md §9, produced by distribution 2.8.2 itself.

use super::*;

const L_A: &str = "sha256:589f0d58b9053a4ff7329b8fdb4f9dd120e29354c086ad0b3b10733f6cfd6de3";
const L_B: &str = "sha256:55fea2a37a9fc5963f1beccd0d162b856e6bd05ca07cdd3726847846ab740f0d";

fn expected(text: &str) -> Vec<String> {
    text.lines().map(str::to_owned).collect()
}

fn layers(l: &[&str]) -> Vec<String> {
    l.iter().map(|s| (*s).to_owned()).collect()
}

#[test]
fn vector_a_real_umoci_image() {
    let config = include_bytes!("../../tests/fixtures/vectors/a.config.json");
    let layer = "sha256:d72681653818fd12f3213724ee1e9b926a589589be2907952ab95241277a6d3c";
    let h = build(config, &layers(&[layer]), Options::default()).unwrap();
    assert_eq!(
        h.entries,
        expected(include_str!("../../tests/fixtures/vectors/a.history.txt"))
    );
    assert_eq!(h.fs_layers, [layer, EMPTY_LAYER]);
    assert!(h.extensions.is_empty());
    // The raw bytes are hashed: without the final LF the top id changes.
    let trimmed = build(
        &config[..config.len() - 1],
        &layers(&[layer]),
        Options::default(),
    )
    .unwrap();
    assert!(trimmed.entries[0].contains("da54801899da7ca8"));
}

#[test]
fn vector_b_escapes_sorting_duplicates_times() {
    let config = include_bytes!("../../tests/fixtures/vectors/b.config.json");
    let h = build(config, &layers(&[L_A, L_B]), Options::default()).unwrap();
    assert_eq!(
        h.entries,
        expected(include_str!("../../tests/fixtures/vectors/b.history.txt"))
    );
    assert_eq!(h.fs_layers, [EMPTY_LAYER, L_B, EMPTY_LAYER, L_A]);
    assert!(h.extensions.is_empty());
}

#[test]
fn vector_c_windows_base_layer() {
    let config = include_bytes!("../../tests/fixtures/vectors/c.config.json");
    let h = build(config, &layers(&[L_A, L_B]), Options::default()).unwrap();
    assert_eq!(
        h.entries,
        expected(include_str!("../../tests/fixtures/vectors/c.history.txt"))
    );
    assert_eq!(h.fs_layers, [L_B, L_A]);
}

#[test]
fn one_entry_history_hashes_two_spaces() {
    let config = br#"{"history":[{"created_by":"x"}],"rootfs":{"diff_ids":["a"]}}"#;
    let h = build(config, &layers(&[L_A]), Options::default()).unwrap();
    let mut sha = Sha256::new();
    sha.update(format!("{}  ", encoded(L_A)).as_bytes());
    sha.update(config);
    assert_eq!(
        h.entries,
        [format!("{{\"id\":\"{}\"}}", hex::encode(sha.finalize()))]
    );
}

#[test]
fn case_insensitive_keys_null_and_later_duplicates() {
    let config = br#"{"History":[{"Created_By":"a","created_by":null,"EMPTY_LAYER":true}],"ROOTFS":{"diff_ids":[]},"history":null}"#;
    // `history: null` later clears the slice: empty history, synthesised, flagged.
    let h = build(config, &[], Options::default()).unwrap();
    assert_eq!(h.extensions, [Extension::EmptyHistory]);
    // Without the trailing null the mixed-case keys are read, and null leaves created_by alone;
    // the top entry keeps `History`/`ROOTFS` because deletion is case-sensitive.
    let config = br#"{"History":[{"Created_By":"a","created_by":null,"EMPTY_LAYER":true}],"ROOTFS":{"diff_ids":[]}}"#;
    let h = build(config, &[], Options::default()).unwrap();
    assert!(h.extensions.is_empty(), "{:?}", h.extensions);
    assert!(h.entries[0].starts_with(r#"{"History":[{"Created_By":"a","created_by":null,"EMPTY_LAYER":true}],"ROOTFS":{"diff_ids":[]},"id":""#));
    assert!(h.entries[0].ends_with(r#","throwaway":true}"#));
}

#[test]
fn wrong_types_fail_with_the_field() {
    let cases: [(&[u8], &str); 5] = [
        (
            br#"{"history":[{"created_by":5}],"rootfs":{}}"#,
            "history[0].created_by",
        ),
        (br#"{"history":{},"rootfs":{}}"#, "history"),
        (br#"{"architecture":1}"#, "architecture"),
        (
            br#"{"history":[{"empty_layer":"yes"}]}"#,
            "history[0].empty_layer",
        ),
        (br#"{"rootfs":{"diff_ids":[1]}}"#, "rootfs.diff_ids"),
    ];
    for (config, field) in cases {
        match build(config, &[], Options::default()) {
            Err(Error::WrongType { field: f, .. }) => assert_eq!(f, field),
            other => panic!("{field}: {other:?}"),
        }
    }
    assert_eq!(
        build(b"[1]", &[], Options::default()),
        Err(Error::NotAnObject("image config".into()))
    );
    assert!(matches!(
        build(b"{", &[], Options::default()),
        Err(Error::InvalidJson(_))
    ));
}

#[test]
fn extensions_fire_and_strict_refuses() {
    // More layers than non-empty entries is not an error: extra layers are dropped.
    let config =
        br#"{"history":[{"created":"2020-01-01T00:00:00Z"}],"rootfs":{"diff_ids":["a","b"]}}"#;
    let h = build(config, &layers(&[L_A, L_B]), Options::default()).unwrap();
    assert_eq!(h.fs_layers, [L_A]);
    assert!(h.extensions.is_empty());

    let cases: [(&[u8], usize, Extension); 4] = [
        (
            br#"{"created":"2020-01-01T00:00:00Z","rootfs":{"diff_ids":["a","b"]}}"#,
            2,
            Extension::EmptyHistory,
        ),
        (br#"{"history":[{}]}"#, 1, Extension::MissingRootfs),
        (
            br#"{"history":[{}],"rootfs":{"diff_ids":[]}}"#,
            1,
            Extension::DiffIdsMismatch {
                diff_ids: 0,
                layers: 1,
            },
        ),
        (
            br#"{"history":[{},{},{}],"rootfs":{"diff_ids":["a"]}}"#,
            1,
            Extension::TooManyNonEmptyEntries {
                entries: 3,
                layers: 1,
            },
        ),
    ];
    for (config, n, ext) in cases.clone() {
        let l = layers(&[L_A, L_B][..n]);
        let h = build(config, &l, Options::default()).unwrap();
        assert_eq!(h.extensions, std::slice::from_ref(&ext));
        assert_eq!(h.entries.len(), n, "one entry per layer");
        assert_eq!(
            build(config, &l, Options { strict: true }),
            Err(Error::Strict(ext))
        );
    }
    // Synthesised entries take the config's created.
    let h = build(cases[0].0, &layers(&[L_A, L_B]), Options::default()).unwrap();
    assert!(
        h.entries[1].contains(r#""created":"2020-01-01T00:00:00Z""#),
        "{}",
        h.entries[1]
    );

    let config = br#"{"history":[{"created":"2020-01-01t00:00:00z"},{"created":"soon"}],"rootfs":{"diff_ids":["a","b"]}}"#;
    let h = build(config, &layers(&[L_A, L_B]), Options::default()).unwrap();
    assert_eq!(h.extensions.len(), 2);
    assert!(h.entries[1].contains(r#""created":"2020-01-01T00:00:00Z""#));
}

#[test]
fn labels_are_read_case_insensitively() {
    assert_eq!(
        labels(include_bytes!("../../tests/fixtures/vectors/a.config.json")).unwrap(),
        r#"{"org.opencontainers.image.source":"https://example.com/repo","revision":"abc123"}"#
    );
    assert_eq!(labels(br#"{"config":{"Labels":null}}"#).unwrap(), "{}");
    assert_eq!(labels(br#"{}"#).unwrap(), "{}");
    assert_eq!(
        labels(br#"{"Config":{"labels":{"a": "<b>"}}}"#).unwrap(),
        r#"{"a":"<b>"}"#
    );
    assert!(labels(br#"{"config":{"Labels":"x"}}"#).is_err());
}
