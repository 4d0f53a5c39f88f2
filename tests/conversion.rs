//! History and manifests against the registry's own schema1 conversion.

use std::path::Path;

use crate::harness::images::{self, LIST, OCI, OCI_INDEX, Pusher, SCHEMA2};
use crate::harness::images::{VA, VA_LAYER, VB, VC};
use crate::harness::registry::{Mode, Registry};
use crate::harness::run::{account_yaml, config, dimsum};

struct Open {
    registry: Registry,
    pusher: Pusher,
    dir: tempfile::TempDir,
    config: std::path::PathBuf,
}

fn open() -> Open {
    let registry = Registry::start(Mode::Open);
    let pusher = Pusher::new(&registry.url(), None);
    let dir = tempfile::tempdir().unwrap();
    let config = config(dir.path(), &account_yaml("local", &registry.url(), ""));
    Open {
        registry,
        pusher,
        dir,
        config,
    }
}

/// Asserts dimsum's list form and every `--level` equal the registry's conversion.
async fn assert_oracle(
    cfg: &Path,
    pusher: &Pusher,
    repo: &str,
    tag: &str,
    every_level: bool,
) -> Vec<String> {
    let oracle = pusher.oracle(repo, tag).await.expect("registry converts");
    let ours = dimsum(Some(cfg), &["history", "local", repo, tag], None)
        .await
        .history_list();
    assert_eq!(ours, oracle, "{repo}:{tag}");
    let levels: Vec<usize> = if every_level {
        (0..oracle.len()).collect()
    } else {
        vec![0, oracle.len() - 1]
    };
    for level in levels {
        let out = dimsum(
            Some(cfg),
            &["history", "local", repo, tag, "--level", &level.to_string()],
            None,
        )
        .await;
        assert_eq!(out.ok(), oracle[level], "{repo}:{tag} level {level}");
    }
    oracle
}

fn lines(text: &str) -> Vec<String> {
    text.lines().map(str::to_owned).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reference_vectors_match_the_registry_and_the_document() {
    let o = open();
    o.pusher
        .image("team/app", "v1-docker", SCHEMA2, VA, &[VA_LAYER])
        .await;
    o.pusher
        .image("team/app", "vb", SCHEMA2, VB, &[b"layer-a", b"layer-b"])
        .await;
    o.pusher
        .image("team/app", "vc", SCHEMA2, VC, &[b"layer-a", b"layer-b"])
        .await;
    let a = assert_oracle(&o.config, &o.pusher, "team/app", "v1-docker", true).await;
    assert_eq!(a, lines(include_str!("fixtures/vectors/a.history.txt")));
    let b = assert_oracle(&o.config, &o.pusher, "team/app", "vb", true).await;
    assert_eq!(b, lines(include_str!("fixtures/vectors/b.history.txt")));
    let c = assert_oracle(&o.config, &o.pusher, "team/app", "vc", true).await;
    assert_eq!(c, lines(include_str!("fixtures/vectors/c.history.txt")));
    let labels = dimsum(
        Some(&o.config),
        &["labels", "local", "team/app", "v1-docker"],
        None,
    )
    .await
    .ok();
    assert_eq!(
        labels,
        r#"{"org.opencontainers.image.source":"https://example.com/repo","revision":"abc123"}"#
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oci_twins_get_their_docker_twins_history() {
    let o = open();
    for (tag, config, layers) in [
        ("a", VA, vec![VA_LAYER]),
        ("b", VB, vec![&b"layer-a"[..], b"layer-b"]),
    ] {
        o.pusher
            .image("twins", &format!("{tag}-docker"), SCHEMA2, config, &layers)
            .await;
        o.pusher
            .image("twins", &format!("{tag}-oci"), OCI, config, &layers)
            .await;
        let oracle = o
            .pusher
            .oracle("twins", &format!("{tag}-docker"))
            .await
            .unwrap();
        // Distribution never converts OCI: 404 without an OCI Accept.
        assert_eq!(
            o.pusher
                .oracle("twins", &format!("{tag}-oci"))
                .await
                .unwrap_err()
                .0,
            404
        );
        for (level, want) in oracle.iter().enumerate() {
            let out = dimsum(
                Some(&o.config),
                &[
                    "history",
                    "local",
                    "twins",
                    &format!("{tag}-oci"),
                    "--level",
                    &level.to_string(),
                ],
                None,
            )
            .await;
            assert_eq!(&out.ok(), want);
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn generated_configs_match_distribution() {
    let o = open();
    let mut rng = Rng(0x5eed_d155_0000_0001);
    for i in 0..60 {
        let (config, layers) = generate(&mut rng);
        let layer_refs: Vec<&[u8]> = layers.iter().map(Vec::as_slice).collect();
        let tag = format!("gen-{i}");
        o.pusher
            .image("gen/app", &tag, SCHEMA2, config.as_bytes(), &layer_refs)
            .await;
        let oracle = o
            .pusher
            .oracle("gen/app", &tag)
            .await
            .unwrap_or_else(|e| panic!("registry refused {config}: {e:?}"));
        let ours = dimsum(
            Some(&o.config),
            &["history", "local", "gen/app", &tag],
            None,
        )
        .await
        .history_list();
        assert_eq!(ours, oracle, "config {i}: {config}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn real_images_built_with_umoci_and_pushed_with_skopeo() {
    let o = open();
    let work = tempfile::tempdir().unwrap();
    let layout = images::umoci_image(
        work.path(),
        "v1",
        &[
            ("revision", "abc123"),
            ("build.url", "https://ci.example/job/1?a=1&b=<2>"),
            ("owner", "équipe \"core\""),
        ],
        3,
    );
    let dest = |tag: &str| format!("{}/real/app:{tag}", o.registry.addr);
    images::skopeo_copy(&layout, "v1", &dest("v1-docker"), "v2s2", None);
    images::skopeo_copy(&layout, "v1", &dest("v1-oci"), "oci", None);
    let oracle = assert_oracle(&o.config, &o.pusher, "real/app", "v1-docker", true).await;
    assert!(oracle.len() >= 4, "config + layers: {}", oracle.len());
    for (level, want) in oracle.iter().enumerate() {
        let out = dimsum(
            Some(&o.config),
            &[
                "history",
                "local",
                "real/app",
                "v1-oci",
                "--level",
                &level.to_string(),
            ],
            None,
        )
        .await;
        assert_eq!(&out.ok(), want, "OCI twin level {level}");
    }
    let labels: serde_json::Value = serde_json::from_str(
        &dimsum(
            Some(&o.config),
            &["labels", "local", "real/app", "v1-oci"],
            None,
        )
        .await
        .ok(),
    )
    .unwrap();
    assert_eq!(labels["owner"], "équipe \"core\"");
    assert_eq!(labels["build.url"], "https://ci.example/job/1?a=1&b=<2>");
    drop(o.dir);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn manifest_lists_and_indexes_choose_a_platform() {
    let o = open();
    let (amd, amd_digest) = o
        .pusher
        .image("multi", "amd64", SCHEMA2, VA, &[VA_LAYER])
        .await;
    let (arm, arm_digest) = o
        .pusher
        .image("multi", "arm64", SCHEMA2, VB, &[b"layer-a", b"layer-b"])
        .await;
    let entry = |bytes: &[u8], digest: &str, arch: &str, variant: Option<&str>| {
        let mut platform = serde_json::json!({"os": "linux", "architecture": arch});
        if let Some(v) = variant {
            platform["variant"] = v.into();
        }
        serde_json::json!({"mediaType": SCHEMA2, "size": bytes.len(), "digest": digest, "platform": platform})
    };
    let entries = vec![
        entry(&arm, &arm_digest, "arm64", Some("v8")),
        entry(&amd, &amd_digest, "amd64", None),
    ];
    for (tag, media_type) in [("list", LIST), ("index", OCI_INDEX)] {
        let index = serde_json::to_vec(
            &serde_json::json!({"schemaVersion": 2, "mediaType": media_type, "manifests": entries}),
        )
        .unwrap();
        o.pusher.manifest("multi", tag, media_type, &index).await;
    }
    // Distribution's choice for the list is our default, for lists and (as an extension) indexes.
    let oracle = o.pusher.oracle("multi", "list").await.unwrap();
    assert_eq!(oracle, o.pusher.oracle("multi", "amd64").await.unwrap());
    for tag in ["list", "index"] {
        let level0 = dimsum(
            Some(&o.config),
            &["history", "local", "multi", tag, "--level", "0"],
            None,
        )
        .await
        .ok();
        assert_eq!(level0, oracle[0]);
        let arm_oracle = o.pusher.oracle("multi", "arm64").await.unwrap();
        for p in ["linux/arm64", "linux/aarch64", "linux/arm64/v8"] {
            let out = dimsum(
                Some(&o.config),
                &[
                    "history",
                    "local",
                    "multi",
                    tag,
                    "--level",
                    "1",
                    "--platform",
                    p,
                ],
                None,
            )
            .await;
            assert_eq!(out.ok(), arm_oracle[1], "{p}");
        }
        let manifest = dimsum(
            Some(&o.config),
            &[
                "manifest",
                "local",
                "multi",
                tag,
                "--platform",
                "linux/arm64",
            ],
            None,
        )
        .await;
        assert_eq!(manifest.stdout, arm, "manifest bytes unchanged");
        dimsum(
            Some(&o.config),
            &[
                "history",
                "local",
                "multi",
                tag,
                "--platform",
                "linux/s390x",
            ],
            None,
        )
        .await
        .fails(
            4,
            "no manifest for platform linux/s390x; the index has linux/arm64/v8, linux/amd64",
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn digests_repository_shapes_and_native_schema1() {
    let o = open();
    let (bytes, digest) = o.pusher.image("solo", "v1", SCHEMA2, VA, &[VA_LAYER]).await;
    o.pusher
        .image("a/b/c/d", "v1", SCHEMA2, VA, &[VA_LAYER])
        .await;
    let want = lines(include_str!("fixtures/vectors/a.history.txt"));
    for (repo, reference) in [
        ("solo", "v1"),
        ("solo", digest.as_str()),
        ("a/b/c/d", "v1"),
        ("a/b/c/d", digest.as_str()),
    ] {
        let out = dimsum(
            Some(&o.config),
            &["history", "local", repo, reference, "--level", "0"],
            None,
        )
        .await;
        assert_eq!(out.ok(), want[0], "{repo} {reference}");
    }
    let manifest = dimsum(
        Some(&o.config),
        &["manifest", "local", "solo", &digest],
        None,
    )
    .await;
    assert_eq!(manifest.stdout, bytes);

    // A schema1 manifest stored natively (the registry's own signed conversion, pushed back).
    let signed = o.pusher.schema1_bytes("solo", "v1").await;
    let native_digest = o
        .pusher
        .manifest(
            "solo",
            "v1-native",
            "application/vnd.docker.distribution.manifest.v1+prettyjws",
            &signed,
        )
        .await;
    for reference in ["v1-native", native_digest.as_str()] {
        let ours = dimsum(
            Some(&o.config),
            &["history", "local", "solo", reference],
            None,
        )
        .await
        .history_list();
        assert_eq!(ours, want, "schema1 passes through ({reference})");
    }
    let labels = dimsum(
        Some(&o.config),
        &["labels", "local", "solo", "v1-native"],
        None,
    )
    .await
    .ok();
    assert!(labels.contains(r#""revision":"abc123""#), "{labels}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn where_distribution_fails_we_answer_and_strict_refuses() {
    let o = open();
    let config = br#"{"architecture":"amd64","os":"linux","created":"2024-01-02T03:04:05Z","config":{"Labels":{"revision":"r1"}},"rootfs":{"type":"layers","diff_ids":["sha256:1111111111111111111111111111111111111111111111111111111111111111"]}}"#;
    o.pusher
        .image("ext", "no-history", SCHEMA2, config, &[b"layer-a"])
        .await;
    let (status, body) = o.pusher.oracle("ext", "no-history").await.unwrap_err();
    assert_eq!(status, 400, "{body}");
    let list = dimsum(
        Some(&o.config),
        &["history", "local", "ext", "no-history"],
        None,
    )
    .await
    .history_list();
    assert_eq!(list.len(), 1, "one synthesised entry per layer");
    let labels = dimsum(
        Some(&o.config),
        &["labels", "local", "ext", "no-history"],
        None,
    )
    .await
    .ok();
    assert_eq!(labels, r#"{"revision":"r1"}"#);
    dimsum(
        Some(&o.config),
        &["history", "local", "ext", "no-history", "--strict"],
        None,
    )
    .await
    .fails(7, "the config has no history");

    let helm = b"{}";
    o.pusher
        .image_typed(
            "ext",
            "chart",
            OCI,
            "application/vnd.cncf.helm.config.v1+json",
            "application/vnd.cncf.helm.chart.content.v1.tar+gzip",
            helm,
            &[b"chart"],
        )
        .await;
    dimsum(Some(&o.config), &["history", "local", "ext", "chart"], None)
        .await
        .fails(7, "not a container image config");
}

/// xorshift64*: a fixed seed gives the same corpus on every machine.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
    fn chance(&mut self, percent: u64) -> bool {
        self.below(100) < percent
    }
    fn pick<'a>(&mut self, items: &[&'a str]) -> &'a str {
        items[self.below(items.len() as u64) as usize]
    }
}

/// A JSON string literal for `s`, escaping at random the way different writers do.
fn json_str(rng: &mut Rng, s: &str) -> String {
    let mut out = String::from("\"");
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str(if rng.chance(50) { "\\n" } else { "\\u000a" }),
            '\t' => out.push_str("\\t"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04x}", c as u32)),
            '/' if rng.chance(30) => out.push_str("\\/"),
            c if (c as u32) < 0x10000 && rng.chance(20) => out.push_str(&if rng.chance(50) {
                format!("\\u{:04x}", c as u32)
            } else {
                format!("\\u{:04X}", c as u32)
            }),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

fn text(rng: &mut Rng) -> String {
    const PIECES: &[&str] = &[
        "RUN apt-get install -y curl",
        " && ",
        "<script>",
        "a&b",
        ">",
        "é",
        "日本",
        "\u{2028}",
        "\u{2029}",
        "\n",
        "\t",
        "\u{1}",
        "\u{1b}[0m",
        "\u{7f}",
        "\"quoted\"",
        "back\\slash",
        "/usr/bin",
        "#(nop) ",
        "CMD [\"sh\"]",
        "😀",
        " ",
        "\u{8}",
        "\u{c}",
    ];
    (0..rng.below(5)).map(|_| rng.pick(PIECES)).collect()
}

fn time(rng: &mut Rng) -> String {
    let mut t = format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}",
        1990 + rng.below(40),
        1 + rng.below(12),
        1 + rng.below(28),
        rng.below(24),
        rng.below(60),
        rng.below(60)
    );
    if rng.chance(60) {
        t.push(if rng.chance(80) { '.' } else { ',' });
        for _ in 0..1 + rng.below(12) {
            t.push(char::from(b'0' + rng.below(10) as u8));
        }
    }
    t.push_str(rng.pick(&["Z", "+00:00", "-00:00", "+02:00", "-05:30", "+14:00", "Z"]));
    t
}

/// A config distribution converts: history non-empty, no more non-empty entries than layers,
/// diff_ids matching layers, valid times; everything else as varied as real writers are.
fn generate(rng: &mut Rng) -> (String, Vec<Vec<u8>>) {
    let n = 1 + rng.below(8) as usize;
    let mut entries = Vec::new();
    let mut non_empty = 0;
    for i in 0..n {
        let empty = rng.chance(40);
        if !empty {
            non_empty += 1;
        }
        let mut fields = Vec::new();
        if rng.chance(90) {
            fields.push(format!("\"created\":\"{}\"", time(rng)));
        } else if rng.chance(50) {
            fields.push("\"created\":null".to_owned());
        }
        if rng.chance(85) {
            let t = text(rng);
            fields.push(format!("\"created_by\":{}", json_str(rng, &t)));
        }
        for key in ["author", "comment"] {
            if rng.chance(30) {
                let t = text(rng);
                fields.push(format!("\"{key}\":{}", json_str(rng, &t)));
            }
        }
        if empty {
            fields.push("\"empty_layer\":true".to_owned());
        } else if rng.chance(20) {
            fields.push("\"empty_layer\":false".to_owned());
        }
        if rng.chance(10) {
            fields.push(format!("\"x-extra-{i}\":[1,{{\"a\":null}}]"));
        }
        entries.push(format!("{{{}}}", fields.join(",")));
    }
    let layers = non_empty + rng.below(2) as usize;
    let diff_ids: Vec<String> = (0..layers)
        .map(|i| format!("\"sha256:{:064x}\"", i + 1))
        .collect();
    let mut rootfs = format!(
        "{{\"type\":\"layers\",\"diff_ids\":[{}]",
        diff_ids.join(",")
    );
    if rng.chance(10) {
        rootfs.push_str(",\"base_layer\":\"sha256:base\"");
    }
    rootfs.push('}');
    let mut labels = Vec::new();
    for _ in 0..rng.below(5) {
        let k = text(rng);
        let v = text(rng);
        labels.push(format!("{}:{}", json_str(rng, &k), json_str(rng, &v)));
    }
    if rng.chance(30) {
        labels.push("\"n\": 1.0, \"m\" : 1e3, \"d\":1, \"d\":2".to_owned());
    }
    let mut top = vec![
        format!(
            "\"architecture\":\"{}\"",
            rng.pick(&["amd64", "arm64", "ppc64le"])
        ),
        format!("\"os\":\"{}\"", rng.pick(&["linux", "windows"])),
        format!("\"created\":\"{}\"", time(rng)),
        format!(
            "\"config\":{{\"Labels\":{{{}}},\"Env\":[\"PATH=/usr/bin\"],\"Cmd\":null}}",
            labels.join(",")
        ),
        format!("\"rootfs\":{rootfs}"),
        format!("\"history\":[{}]", entries.join(",")),
    ];
    if rng.chance(30) {
        top.push("\"Zeta\":true".to_owned());
        top.push("\"\\u0041key\":\"escaped key\"".to_owned());
    }
    if rng.chance(20) {
        top.push("\"os\":\"duplicate-wins\"".to_owned());
    }
    if rng.chance(20) {
        top.push(
            "\"id\":\"overwritten\",\"parent\":\"kept-or-overwritten\",\"throwaway\":false"
                .to_owned(),
        );
    }
    // Shuffle member order.
    for i in (1..top.len()).rev() {
        let j = rng.below(i as u64 + 1) as usize;
        top.swap(i, j);
    }
    let config = if rng.chance(30) {
        format!("{{\n  {}\n}}\n", top.join(",\n  "))
    } else {
        format!(
            "{{{}}}{}",
            top.join(","),
            if rng.chance(30) { "\n" } else { "" }
        )
    };
    let layer_blobs = (0..layers)
        .map(|i| format!("layer-{i}-{}", rng.next()).into_bytes())
        .collect();
    (config, layer_blobs)
}
