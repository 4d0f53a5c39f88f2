//! The documentation holds together: every relative link in the Markdown resolves to a file and,
//! with a `#fragment`, to a heading there (as GitHub renders it); the README stays a front door
//! (the two commands first, the walk, a map naming every page of `docs/`, short). The walk itself
//! is run by `scripts/walk` from `scripts/test`.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The Markdown files that are documentation (not fixtures or build output).
fn markdown() -> Vec<PathBuf> {
    let mut files = vec![
        root().join("README.md"),
        root().join("plugin/README.md"),
        root().join("orca-config/README.md"),
    ];
    let mut docs: Vec<PathBuf> = std::fs::read_dir(root().join("docs"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "md"))
        .collect();
    docs.sort();
    files.extend(docs);
    files
}

/// The text outside fenced code blocks, line by line.
fn prose(text: &str) -> Vec<&str> {
    let mut fenced = false;
    text.lines()
        .filter(|l| {
            if l.trim_start().starts_with("```") {
                fenced = !fenced;
                return false;
            }
            !fenced
        })
        .collect()
}

/// GitHub's anchor for a heading: lower case, punctuation other than `-` and `_` dropped, spaces
/// to `-`.
fn slug(heading: &str) -> String {
    heading
        .trim()
        .to_lowercase()
        .chars()
        .filter_map(|c| match c {
            ' ' => Some('-'),
            c if c.is_alphanumeric() || c == '-' || c == '_' => Some(c),
            _ => None,
        })
        .collect()
}

fn anchors(file: &Path) -> BTreeSet<String> {
    let text = std::fs::read_to_string(file).unwrap();
    prose(&text)
        .into_iter()
        .filter_map(|l| l.strip_prefix('#'))
        .map(|h| slug(h.trim_start_matches('#')))
        .collect()
}

/// `(line, target)` of every inline link `[text](target)` in prose.
fn links(text: &str) -> Vec<(usize, String)> {
    let mut out = Vec::new();
    for (n, line) in prose(text).iter().enumerate() {
        let mut rest = *line;
        while let Some(i) = rest.find("](") {
            let tail = &rest[i + 2..];
            let Some(end) = tail.find(')') else { break };
            out.push((n + 1, tail[..end].to_owned()));
            rest = &tail[end..];
        }
    }
    out
}

#[test]
fn every_relative_link_resolves() {
    let mut broken = Vec::new();
    let mut checked = 0;
    for file in markdown() {
        let text = std::fs::read_to_string(&file).unwrap();
        for (line, target) in links(&text) {
            if target.contains("://") || target.starts_with("mailto:") {
                continue;
            }
            checked += 1;
            let (path, fragment) = match target.split_once('#') {
                Some((p, f)) => (p, Some(f)),
                None => (target.as_str(), None),
            };
            let resolved = if path.is_empty() {
                file.clone()
            } else {
                file.parent().unwrap().join(path)
            };
            let at = format!(
                "{}:{line}: {target}",
                file.strip_prefix(root()).unwrap().display()
            );
            if !resolved.exists() {
                broken.push(format!("{at}: no such file"));
                continue;
            }
            if let Some(fragment) = fragment {
                if resolved.is_file() && !anchors(&resolved).contains(fragment) {
                    broken.push(format!("{at}: no such heading"));
                }
            }
        }
    }
    assert!(broken.is_empty(), "broken links:\n{}", broken.join("\n"));
    assert!(
        checked > 30,
        "only {checked} links found: is the scanner broken?"
    );
}

#[test]
fn the_readme_is_a_front_door() {
    let readme = std::fs::read_to_string(root().join("README.md")).unwrap();
    let lines: Vec<&str> = readme.lines().collect();
    assert!(lines.len() <= 150, "README.md has {} lines", lines.len());
    // The two commands come first, and CI runs exactly the second.
    let first_block: Vec<&str> = lines
        .iter()
        .skip_while(|l| !l.starts_with("```"))
        .skip(1)
        .take_while(|l| !l.starts_with("```"))
        .copied()
        .collect();
    assert!(
        first_block[0].starts_with("scripts/run "),
        "{first_block:?}"
    );
    assert!(
        first_block[1].starts_with("scripts/test "),
        "{first_block:?}"
    );
    let ci = std::fs::read_to_string(root().join(".ci/run")).unwrap();
    assert!(ci.lines().any(|l| l.trim() == "exec scripts/test"), "{ci}");
    assert!(readme.contains("<!-- walk -->") && readme.contains("<!-- /walk -->"));
    // Every page of docs/ is on the map.
    for file in markdown()
        .iter()
        .filter(|f| f.parent() == Some(&root().join("docs")))
    {
        let name = file.file_name().unwrap().to_str().unwrap();
        assert!(
            readme.contains(&format!("(docs/{name})")),
            "docs/{name} is not on the README's map"
        );
    }
}

#[test]
fn the_link_scanner_sees_what_it_must() {
    let text =
        "# A Title: with, punctuation\n[a](b.md#x) and [c](#d)\n```\n[not](a-link.md)\n```\n";
    assert_eq!(
        links(text),
        [(2, "b.md#x".to_owned()), (2, "#d".to_owned())]
    );
    assert_eq!(
        slug(" A Title: with, punctuation"),
        "a-title-with-punctuation"
    );
    assert_eq!(slug("`dimsum:` settings"), "dimsum-settings");
}

/// `dimsum --help` and every subcommand's help point to pages that exist, and headings there.
#[test]
fn help_points_to_pages_that_exist() {
    let mut pointed = 0;
    for args in [
        &["--help"][..],
        &["serve", "--help"],
        &["stdio", "--help"],
        &["history", "--help"],
        &["manifest", "--help"],
        &["labels", "--help"],
        &["origin", "--help"],
        &["config", "--help"],
    ] {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_dimsum"))
            .args(args)
            .output()
            .unwrap();
        assert!(out.status.success(), "{args:?}");
        let help = String::from_utf8(out.stdout).unwrap();
        let mut seen = 0;
        for word in help.split(|c: char| c.is_whitespace() || matches!(c, '(' | ')' | ',' | ';')) {
            let word = word.trim_end_matches('.');
            let Some(page) = word.strip_prefix("docs/") else {
                continue;
            };
            let (file, fragment) = page.split_once('#').unwrap_or((page, ""));
            let path = root().join("docs").join(file);
            assert!(
                path.is_file(),
                "{args:?} points to docs/{file}, which does not exist"
            );
            if !fragment.is_empty() {
                assert!(anchors(&path).contains(fragment), "{args:?}: docs/{page}");
            }
            seen += 1;
        }
        assert!(seen > 0, "{args:?}: the help names no docs/ page:\n{help}");
        pointed += seen;
    }
    assert!(pointed >= 8);
}

/// docs/api.md's error table and the OpenRPC document say what the code does: every
/// application code with its name, HTTP status and CLI exit status, and JSON-RPC's own codes
/// that reach a caller (the 401 of a missing token included).
#[test]
fn the_error_table_holds() {
    use dimsum_rest::Code;
    let api = std::fs::read_to_string(root().join("docs/api.md")).unwrap();
    for code in Code::ALL {
        let row = api
            .lines()
            .find(|l| l.starts_with(&format!("| {} | `{}`", code.number(), code.name())))
            .unwrap_or_else(|| panic!("{} has no row", code.name()));
        let exit = dimsum::error::exit_status(code);
        assert!(
            row.ends_with(&format!("| {} | {exit} |", code.http_status())),
            "{row}"
        );
    }
    for (number, status) in [("-32001", 401), ("-32602", 400), ("-32601", 404)] {
        assert!(
            api.lines()
                .any(|l| l.starts_with(&format!("| {number} |"))
                    && l.contains(&format!("| {status} |"))),
            "{number} is in the table with {status}"
        );
    }
    let openrpc: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(root().join("src/rpc/openrpc.json")).unwrap(),
    )
    .unwrap();
    for method in openrpc["methods"].as_array().unwrap() {
        if method["name"] == "rpc.discover" {
            continue;
        }
        let codes: Vec<i64> = method["errors"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["code"].as_i64().unwrap())
            .collect();
        for code in [-32001, -32602] {
            assert!(codes.contains(&code), "{} lacks {code}", method["name"]);
        }
    }
}
