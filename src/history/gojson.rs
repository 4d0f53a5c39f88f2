//! Go 1.19 `encoding/json` output, byte for byte (history-conversion.md §4.1 and §5 step 4).
//!
//! `serde_json` differs from Go in exactly the places that matter here: it does not HTML-escape
//! `<`, `>`, `&`, does not escape U+2028/U+2029, and writes `\b`/`\f` where Go 1.19 writes
//! `\u0008`/`\u000c`. So the strings we build are written by [`write_string`], and the raw values we
//! copy from the config go through [`compact`], which is Go's `json.Compact` with `escapeHTML`.

const HEX: &[u8; 16] = b"0123456789abcdef";

/// Appends `s` as a JSON string the way Go 1.19's `json.Marshal` writes it (HTML escaping on).
pub(crate) fn write_string(out: &mut Vec<u8>, s: &str) {
    out.push(b'"');
    let bytes = s.as_bytes();
    let mut start = 0;
    let mut i = 0;
    while i < bytes.len() {
        let b = bytes[i];
        let escape: Option<&[u8]> = match b {
            b'"' => Some(b"\\\""),
            b'\\' => Some(b"\\\\"),
            b'\n' => Some(b"\\n"),
            b'\r' => Some(b"\\r"),
            b'\t' => Some(b"\\t"),
            // Other control characters and the HTML-sensitive three become \u00XX (lower-case hex).
            0x00..=0x1f | b'<' | b'>' | b'&' => None,
            // U+2028 and U+2029 (E2 80 A8/A9) break JavaScript string literals; Go escapes them.
            0xE2 if bytes.get(i + 1) == Some(&0x80)
                && matches!(bytes.get(i + 2), Some(0xA8 | 0xA9)) =>
            {
                out.extend_from_slice(&bytes[start..i]);
                out.extend_from_slice(b"\\u202");
                out.push(HEX[usize::from(bytes[i + 2] & 0xF)]);
                i += 3;
                start = i;
                continue;
            }
            _ => {
                i += 1;
                continue;
            }
        };
        out.extend_from_slice(&bytes[start..i]);
        match escape {
            Some(e) => out.extend_from_slice(e),
            None => push_u00(out, b),
        }
        i += 1;
        start = i;
    }
    out.extend_from_slice(&bytes[start..]);
    out.push(b'"');
}

fn push_u00(out: &mut Vec<u8>, b: u8) {
    out.extend_from_slice(b"\\u00");
    out.push(HEX[usize::from(b >> 4)]);
    out.push(HEX[usize::from(b & 0xF)]);
}

/// Appends the valid JSON text `raw` compacted as Go's `json.Compact(dst, src)` with HTML escaping
/// does when it marshals a `json.RawMessage`: whitespace outside strings is dropped, escapes inside
/// strings stay exactly as written, raw `<` `>` `&` become `\u003c` `\u003e` `\u0026`, and raw
/// U+2028/U+2029 become `\u2028`/`\u2029`. Numbers, key order and duplicate keys are untouched.
///
/// `raw` must already be valid JSON (it comes out of `serde_json::value::RawValue`).
pub(crate) fn compact(out: &mut Vec<u8>, raw: &[u8], escape_html: bool) {
    let mut in_string = false;
    let mut escaped = false;
    let mut start = 0;
    let mut i = 0;
    while i < raw.len() {
        let b = raw[i];
        if escape_html {
            if matches!(b, b'<' | b'>' | b'&') {
                out.extend_from_slice(&raw[start..i]);
                push_u00(out, b);
                i += 1;
                start = i;
                continue;
            }
            if b == 0xE2
                && raw.get(i + 1) == Some(&0x80)
                && matches!(raw.get(i + 2), Some(0xA8 | 0xA9))
            {
                out.extend_from_slice(&raw[start..i]);
                out.extend_from_slice(b"\\u202");
                out.push(HEX[usize::from(raw[i + 2] & 0xF)]);
                i += 3;
                start = i;
                continue;
            }
        }
        if in_string {
            if escaped {
                escaped = false;
            } else if b == b'\\' {
                escaped = true;
            } else if b == b'"' {
                in_string = false;
            }
        } else if b == b'"' {
            in_string = true;
        } else if matches!(b, b' ' | b'\t' | b'\n' | b'\r') {
            out.extend_from_slice(&raw[start..i]);
            start = i + 1;
        }
        i += 1;
    }
    out.extend_from_slice(&raw[start..]);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn enc(s: &str) -> String {
        let mut out = Vec::new();
        write_string(&mut out, s);
        String::from_utf8(out).unwrap()
    }

    fn comp(s: &str) -> String {
        let mut out = Vec::new();
        compact(&mut out, s.as_bytes(), true);
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn strings_follow_go_1_19() {
        assert_eq!(enc("a\"b\\c"), r#""a\"b\\c""#);
        assert_eq!(enc("\n\r\t"), r#""\n\r\t""#);
        assert_eq!(
            enc("\u{8}\u{c}\u{1b}\u{0}"),
            r#""\u0008\u000c\u001b\u0000""#
        );
        assert_eq!(enc("<x> & y"), r#""\u003cx\u003e \u0026 y""#);
        assert_eq!(enc("\u{2028}\u{2029}"), r#""\u2028\u2029""#);
        assert_eq!(enc("é/\u{7f}日本"), "\"é/\u{7f}日本\"");
    }

    #[test]
    fn compaction_keeps_escapes_and_numbers_verbatim() {
        assert_eq!(
            comp(
                "{ \"a&b\" : \"<x> \\u00e9 é \\/ end\",\n \"n\": 1.0, \"m\": 1e3, \"d\": 1, \"d\": 2 }\n"
            ),
            r#"{"a\u0026b":"\u003cx\u003e \u00e9 é \/ end","n":1.0,"m":1e3,"d":1,"d":2}"#
        );
        assert_eq!(comp("\"a \\\" b\\\\\" "), r#""a \" b\\""#);
        assert_eq!(comp("[\"\u{2028}\"]"), r#"["\u2028"]"#);
    }
}
