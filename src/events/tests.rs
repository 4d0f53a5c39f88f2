use super::*;

fn fixture(name: &str) -> Vec<u8> {
    let path = format!(
        "{}/tests/fixtures/events/{name}",
        env!("CARGO_MANIFEST_DIR")
    );
    std::fs::read(path).unwrap()
}

const D8E: &str = "sha256:8e60b2cd0b6fcf9e8d2d6b8d11f2c6c3a1e8f1c9d0b2a3e4f5a6b7c8d9e0f1a2";
const D954: &str = "sha256:954b378c375d852eb3c63ab88978f640b4348b01c1b3456a024a81536dafbbf4";

fn changes(notices: &[Notice]) -> Vec<Change> {
    notices.iter().map(|n| n.change.clone()).collect()
}

#[test]
fn distribution_envelope_keeps_tag_moves_and_deletes_only() {
    let (format, notices) = parse(&fixture("distribution.json")).unwrap();
    assert_eq!(format, Format::Distribution);
    assert_eq!(
        changes(&notices),
        vec![
            Change::Ignored(Ignored::NotAManifest),
            Change::Pushed {
                tag: "latest".into(),
                digest: Some(D8E.into())
            },
            Change::Ignored(Ignored::Pull),
            Change::Ignored(Ignored::Untagged),
            Change::ManifestDeleted { digest: D8E.into() },
            Change::TagDeleted {
                tag: "latest".into()
            },
        ]
    );
    for n in &notices {
        assert_eq!(n.repository, "team/app");
        assert_eq!(n.host.as_deref(), Some("registry.example.com:5000"));
    }
}

#[test]
fn acr_sends_one_event_without_the_envelope() {
    let (format, notices) = parse(&fixture("acr.json")).unwrap();
    assert_eq!(format, Format::Distribution);
    assert_eq!(notices.len(), 1);
    assert_eq!(notices[0].host.as_deref(), Some("myregistry.azurecr.io"));
    assert!(matches!(&notices[0].change, Change::Pushed { tag, digest: Some(_) } if tag == "v1"));
}

#[test]
fn harbor_default_and_cloudevents() {
    let (format, notices) = parse(&fixture("harbor.json")).unwrap();
    assert_eq!(format, Format::Harbor);
    assert_eq!(
        notices,
        vec![Notice {
            host: Some("harbor.example.com".into()),
            repository: "team/app".into(),
            change: Change::Pushed {
                tag: "v1.2.3".into(),
                digest: Some(D954.into())
            },
        }]
    );
    let (format, notices) = parse(&fixture("harbor-cloudevents.json")).unwrap();
    assert_eq!(format, Format::CloudEvents);
    assert_eq!(
        changes(&notices),
        vec![Change::Pushed {
            tag: "latest".into(),
            digest: Some(D954.into())
        }]
    );
    let (_, notices) = parse(&fixture("harbor-delete.json")).unwrap();
    assert_eq!(
        changes(&notices),
        vec![Change::ManifestDeleted {
            digest: D954.into()
        }]
    );
}

#[test]
fn harbor_push_by_digest_and_other_types_change_nothing() {
    let by_digest = String::from_utf8(fixture("harbor.json"))
        .unwrap()
        .replace("\"v1.2.3\"", &format!("\"{D954}\""));
    let (_, notices) = parse(by_digest.as_bytes()).unwrap();
    assert_eq!(changes(&notices), vec![Change::Ignored(Ignored::Untagged)]);
    for kind in ["PULL_ARTIFACT", "SCANNING_COMPLETED", "QUOTA_WARNING"] {
        let body = String::from_utf8(fixture("harbor.json"))
            .unwrap()
            .replace("PUSH_ARTIFACT", kind);
        let (_, notices) = parse(body.as_bytes()).unwrap();
        assert!(
            matches!(notices[0].change, Change::Ignored(_)),
            "{kind}: {notices:?}"
        );
    }
}

#[test]
fn quay_names_tags_without_digests() {
    let (format, notices) = parse(&fixture("quay.json")).unwrap();
    assert_eq!(format, Format::Quay);
    assert_eq!(
        changes(&notices),
        vec![
            Change::Pushed {
                tag: "latest".into(),
                digest: None
            },
            Change::Pushed {
                tag: "v2".into(),
                digest: None
            },
        ]
    );
    assert_eq!(notices[0].host.as_deref(), Some("quay.example.com"));
    // Old Quay: tag → image id, which is not a manifest digest.
    let old =
        r#"{"repository":"a/b","docker_url":"quay.io/a/b","updated_tags":{"latest":"b750fe79"}}"#;
    let (_, notices) = parse(old.as_bytes()).unwrap();
    assert_eq!(
        changes(&notices),
        vec![Change::Pushed {
            tag: "latest".into(),
            digest: None
        }]
    );
}

#[test]
fn garbage_is_an_error() {
    assert!(matches!(parse(b"not json"), Err(Error::NotJson(_))));
    assert!(matches!(parse(b"[1,2]"), Err(Error::Unknown)));
    assert!(matches!(parse(b"{\"hello\":1}"), Err(Error::Unknown)));
    assert!(matches!(
        parse(b"{\"events\":\"nope\"}"),
        Err(Error::Malformed {
            format: "distribution",
            ..
        })
    ));
    assert!(matches!(
        parse(b"{\"events\":[{\"action\":\"push\"}]}"),
        Err(Error::Malformed { .. })
    ));
    assert!(matches!(
        parse(b"{\"updated_tags\":[1]}"),
        Err(Error::Malformed { format: "quay", .. })
    ));
}
