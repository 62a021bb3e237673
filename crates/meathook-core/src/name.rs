//! Pipeline names in file and object paths.
//!
//! A pipeline's name becomes one path segment of every file it lands
//! (`data/{segment}/…`) and, raw, the name of its spool directory in the
//! example and most deployments. [`pipeline_segment`] escapes it
//! injectively; [`check_pipeline_name`] refuses, when a pipeline or sink is
//! built, a name whose segment could never be a file name: longer than
//! [`MAX_PIPELINE_SEGMENT`] bytes once escaped (filesystems allow 255 bytes
//! a name; a few are kept for suffixes such as `.dedupe`). Without the
//! check such a pipeline would collect, spool and then fail every delivery
//! with "file name too long", for ever.

use std::fmt::Write as _;

/// Words the dataset viewer reads as split names when they appear as a
/// folder or file name component (bounded by `-`, `.`, `_`, a space, a digit
/// or `/`). Generated paths never contain one as a letter run, in any case.
pub const SPLIT_KEYWORDS: &[&str] = &[
    "train",
    "training",
    "validation",
    "valid",
    "val",
    "dev",
    "test",
    "testing",
    "eval",
    "evaluation",
];

/// The longest escaped pipeline name, in bytes: the common 255-byte limit
/// of a file name, less room for the suffixes a deployment adds to it
/// (`{name}.scratch`, `{name}.dedupe`).
pub const MAX_PIPELINE_SEGMENT: usize = 240;

/// Why a pipeline name cannot name files.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "pipeline name {shown:?} is {raw} bytes and {escaped} once escaped for file paths; at most {MAX_PIPELINE_SEGMENT} fit in a file name (each byte other than ASCII letters, digits, `-` and `_` takes three): use a shorter name"
)]
pub struct NameError {
    /// The start of the name, for the message.
    shown: String,
    /// Bytes of the name.
    pub raw: usize,
    /// Bytes of its escaped form.
    pub escaped: usize,
}

/// Checks that `name`'s path segment fits in a file name; see the module
/// docs.
///
/// # Errors
///
/// [`NameError`] when the escaped name is longer than
/// [`MAX_PIPELINE_SEGMENT`] bytes.
pub fn check_pipeline_name(name: &str) -> Result<(), NameError> {
    let escaped = pipeline_segment(name).len();
    if escaped <= MAX_PIPELINE_SEGMENT {
        return Ok(());
    }
    let mut shown: String = name.chars().take(40).collect();
    if shown.len() < name.len() {
        shown.push('…');
    }
    Err(NameError {
        shown,
        raw: name.len(),
        escaped,
    })
}

/// Escapes a pipeline name into one path segment.
///
/// ASCII letters, digits, `-` and `_` are kept; every other byte becomes
/// `+XX` (two upper-case hex digits); a letter run that spells a split
/// keyword (case-insensitively) has its last letter escaped the same way, so
/// `test` becomes `tes+74`; and where an escape's hex letters would join the
/// letters after it into a keyword (`=Ev` read as `+3DEv`), letters of the
/// run are escaped from its end until none is spelt. The empty name becomes
/// `+`. Every `+` of the
/// output starts an escape, so the mapping can be undone and two names never
/// share a segment.
pub fn pipeline_segment(name: &str) -> String {
    if name.is_empty() {
        return "+".to_owned();
    }
    let bytes = name.as_bytes();
    let mut out = String::with_capacity(name.len());
    let mut i = 0;
    while i < bytes.len() {
        let b = bytes[i];
        if b.is_ascii_alphabetic() {
            let end = bytes[i..]
                .iter()
                .position(|c| !c.is_ascii_alphabetic())
                .map_or(bytes.len(), |n| i + n);
            let run = &name[i..end];
            // The hex letters (A-F) an escape just wrote join this run in
            // the output: "+3D" then "Ev" reads "DEv".
            let joined = out
                .bytes()
                .rev()
                .take_while(u8::is_ascii_alphabetic)
                .count();
            let before = out[out.len() - joined..].to_owned();
            // A keyword run loses its last letter to an escape (the rule
            // every earlier path was made by); then letters are escaped
            // from the run's end until what is left, with the letters
            // before it, spells no keyword. An escaped letter ends in a
            // digit or a single hex letter, which no keyword is.
            let mut keep = run.len() - usize::from(is_split_keyword(run));
            while keep > 0 && is_split_keyword(&format!("{before}{}", &run[..keep])) {
                keep -= 1;
            }
            out.push_str(&run[..keep]);
            for &letter in &bytes[i + keep..end] {
                escape(&mut out, letter);
            }
            i = end;
            continue;
        }
        if b.is_ascii_digit() || b == b'-' || b == b'_' {
            out.push(char::from(b));
        } else {
            escape(&mut out, b);
        }
        i += 1;
    }
    out
}

/// The pipeline name a segment made by [`pipeline_segment`] stands for;
/// `None` for a segment it cannot have made (an escape that is not `+`
/// and two hex digits, bytes that are not UTF-8, a byte it would have
/// escaped).
pub fn pipeline_from_segment(segment: &str) -> Option<String> {
    if segment == "+" {
        return Some(String::new());
    }
    let bytes = segment.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => {
                let hex = segment.get(i + 1..i + 3)?;
                if !hex
                    .bytes()
                    .all(|c| c.is_ascii_digit() || (b'A'..=b'F').contains(&c))
                {
                    return None;
                }
                out.push(u8::from_str_radix(hex, 16).ok()?);
                i += 3;
            }
            b if b.is_ascii_alphanumeric() || b == b'-' || b == b'_' => {
                out.push(b);
                i += 1;
            }
            _ => return None,
        }
    }
    let name = String::from_utf8(out).ok()?;
    (pipeline_segment(&name) == segment).then_some(name)
}

fn escape(out: &mut String, byte: u8) {
    let _ = write!(out, "+{byte:02X}");
}

/// Whether `word` is one of [`SPLIT_KEYWORDS`], ignoring case.
pub fn is_split_keyword(word: &str) -> bool {
    SPLIT_KEYWORDS.iter().any(|k| k.eq_ignore_ascii_case(word))
}

/// Whether any letter run of `path` spells a split keyword: the check the
/// tests run over every generated path.
pub fn contains_split_keyword(path: &str) -> bool {
    path.split(|c: char| !c.is_ascii_alphabetic())
        .any(is_split_keyword)
}

#[cfg(test)]
mod tests {
    use super::*;

    proptest::proptest! {
        #[test]
        fn a_segment_gives_back_its_name(name in proptest::prelude::any::<String>()) {
            let segment = pipeline_segment(&name);
            proptest::prop_assert_eq!(pipeline_from_segment(&segment), Some(name));
        }
    }

    #[test]
    fn segments_no_name_makes_are_refused() {
        for segment in ["a+", "a+4", "+zz", "a+4a", "a.b", "tes+74+", "test", "+61"] {
            assert_eq!(pipeline_from_segment(segment), None, "{segment}");
        }
        assert_eq!(pipeline_from_segment("tes+74").as_deref(), Some("test"));
        assert_eq!(
            pipeline_from_segment("air_temp-1").as_deref(),
            Some("air_temp-1")
        );
    }

    #[test]
    fn names_too_long_to_be_a_file_name_are_refused() {
        assert!(check_pipeline_name(&"a".repeat(240)).is_ok());
        let err = check_pipeline_name(&"a".repeat(256)).unwrap_err();
        assert_eq!((err.raw, err.escaped), (256, 256));
        // 86 punctuation characters escape to 258 bytes; 43 `é` to 258.
        let err = check_pipeline_name(&".".repeat(86)).unwrap_err();
        assert_eq!(err.escaped, 258);
        let err = check_pipeline_name(&"é".repeat(43)).unwrap_err();
        assert_eq!((err.raw, err.escaped), (86, 258));
        let message = err.to_string();
        assert!(message.contains("at most 240"), "{message}");
        assert!(message.contains("use a shorter name"), "{message}");
        assert!(check_pipeline_name("air_temperature").is_ok());
    }
}
