//! Running commands from the workspace root, loudly; where cargo puts what
//! it builds.

use std::path::PathBuf;
use std::process::Command;
use std::time::Instant;

/// The workspace root (the parent of `xtask/`).
pub(crate) fn root() -> PathBuf {
    let manifest = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    manifest.parent().map_or(manifest.clone(), PathBuf::from)
}

/// `cargo` as invoked by this xtask, run from the workspace root.
pub(crate) fn cargo<I, S>(args: I) -> Command
where
    I: IntoIterator<Item = S>,
    S: AsRef<std::ffi::OsStr>,
{
    let mut cmd = Command::new(std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into()));
    cmd.args(args).current_dir(root());
    cmd
}

/// Runs `cmd`, echoing it; on failure returns `hint` with the exit status.
pub(crate) fn run(mut cmd: Command, hint: &str) -> Result<(), String> {
    let shown = format!("{cmd:?}").replace('"', "");
    eprintln!("$ {shown}");
    let started = Instant::now();
    let status = cmd
        .status()
        .map_err(|e| format!("cannot start {shown}: {e}"))?;
    eprintln!("  ({:.1} s)", started.elapsed().as_secs_f64());
    if status.success() {
        Ok(())
    } else {
        Err(format!("{shown} failed ({status})\n  how to fix: {hint}"))
    }
}

/// Runs `cmd` and returns its standard output.
pub(crate) fn output(mut cmd: Command) -> Result<String, String> {
    let shown = format!("{cmd:?}").replace('"', "");
    let out = cmd
        .output()
        .map_err(|e| format!("cannot start {shown}: {e}"))?;
    if !out.status.success() {
        return Err(format!(
            "{shown} failed ({}):\n{}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// `cargo metadata` for the workspace alone.
fn metadata() -> Command {
    cargo(["metadata", "--format-version", "1", "--no-deps"])
}

/// The directory cargo builds into, as `cargo metadata` reports it
/// (`target_directory`): `CARGO_TARGET_DIR` and `build.target-dir` are
/// honoured, so a binary is started from where it was built.
pub(crate) fn target_dir() -> Result<PathBuf, String> {
    let metadata = output(metadata())?;
    json_string_field(&metadata, "target_directory")
        .map(PathBuf::from)
        .ok_or_else(|| "`cargo metadata` printed no target_directory".to_owned())
}

/// The string value of `key` at the top level of the JSON object `json`;
/// `None` if it has none, or the text is not such an object. xtask has no
/// dependencies, and this one field of `cargo metadata` is all the JSON it
/// reads: enough of a scanner to step over nested values and strings
/// (which may hold the key's name) and to decode escapes.
fn json_string_field(json: &str, key: &str) -> Option<String> {
    let mut p = Scanner {
        s: json.as_bytes(),
        at: 0,
    };
    p.space();
    p.eat(b'{')?;
    loop {
        p.space();
        let name = p.string()?;
        p.space();
        p.eat(b':')?;
        p.space();
        if name == key {
            return p.string();
        }
        p.skip_value()?;
        p.space();
        p.eat(b',')?;
    }
}

struct Scanner<'a> {
    s: &'a [u8],
    at: usize,
}

impl Scanner<'_> {
    fn peek(&self) -> Option<u8> {
        self.s.get(self.at).copied()
    }

    fn next(&mut self) -> Option<u8> {
        let b = self.peek()?;
        self.at += 1;
        Some(b)
    }

    fn eat(&mut self, want: u8) -> Option<()> {
        (self.next()? == want).then_some(())
    }

    fn space(&mut self) {
        while self.peek().is_some_and(|b| b.is_ascii_whitespace()) {
            self.at += 1;
        }
    }

    fn string(&mut self) -> Option<String> {
        self.eat(b'"')?;
        let mut out = String::new();
        let mut plain = self.at;
        loop {
            match self.next()? {
                b'"' => {
                    out.push_str(std::str::from_utf8(&self.s[plain..self.at - 1]).ok()?);
                    return Some(out);
                }
                b'\\' => {
                    out.push_str(std::str::from_utf8(&self.s[plain..self.at - 1]).ok()?);
                    out.push(match self.next()? {
                        c @ (b'"' | b'\\' | b'/') => char::from(c),
                        b'b' => '\u{8}',
                        b'f' => '\u{c}',
                        b'n' => '\n',
                        b'r' => '\r',
                        b't' => '\t',
                        b'u' => self.unicode()?,
                        _ => return None,
                    });
                    plain = self.at;
                }
                _ => {}
            }
        }
    }

    fn hex4(&mut self) -> Option<u32> {
        let digits = self.s.get(self.at..self.at + 4)?;
        if !digits.iter().all(u8::is_ascii_hexdigit) {
            return None;
        }
        self.at += 4;
        u32::from_str_radix(std::str::from_utf8(digits).ok()?, 16).ok()
    }

    /// After `\u`: one code point, from a surrogate pair if it is one.
    fn unicode(&mut self) -> Option<char> {
        let high = self.hex4()?;
        if !(0xD800..0xDC00).contains(&high) {
            return char::from_u32(high);
        }
        self.eat(b'\\')?;
        self.eat(b'u')?;
        let low = self.hex4()?;
        if !(0xDC00..0xE000).contains(&low) {
            return None;
        }
        char::from_u32(0x10000 + ((high - 0xD800) << 10) + (low - 0xDC00))
    }

    fn skip_value(&mut self) -> Option<()> {
        match self.peek()? {
            b'"' => self.string().map(drop),
            b'{' | b'[' => {
                let mut depth = 0usize;
                loop {
                    match self.peek()? {
                        b'"' => {
                            self.string()?;
                            continue;
                        }
                        b'{' | b'[' => depth += 1,
                        b'}' | b']' => {
                            depth -= 1;
                            if depth == 0 {
                                self.at += 1;
                                return Some(());
                            }
                        }
                        _ => {}
                    }
                    self.at += 1;
                }
            }
            _ => {
                while self
                    .peek()
                    .is_some_and(|b| !matches!(b, b',' | b'}' | b']') && !b.is_ascii_whitespace())
                {
                    self.at += 1;
                }
                Some(())
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_top_level_field_is_found_past_lookalikes_and_escapes_decoded() {
        // The key's name inside a string and inside a nested object, before
        // the real one; escapes in the value.
        let json = r#"{"packages":[{"name":"x","description":"say \"target_directory\":\"/no\"",
            "metadata":{"target_directory":"/nested"},"n":[1,2.5e3,true,null,{}]}],
            "workspace_root" : "/w" , "target_directory":"/t\\a\u00e9\ud83d\ude00\/b","version":1}"#;
        assert_eq!(
            json_string_field(json, "target_directory").as_deref(),
            Some("/t\\a\u{e9}\u{1f600}/b")
        );
        assert_eq!(
            json_string_field(json, "workspace_root").as_deref(),
            Some("/w")
        );
        assert_eq!(json_string_field(json, "missing"), None);
        assert_eq!(
            json_string_field(r#"{"version":1}"#, "target_directory"),
            None
        );
        assert_eq!(json_string_field("not json", "target_directory"), None);
        assert_eq!(
            json_string_field(r#"{"target_directory":"cut"#, "target_directory"),
            None
        );
    }

    #[test]
    fn cargo_reports_the_target_directory_it_is_told() {
        let elsewhere = std::env::temp_dir().join("meathook-xtask-target-dir-test");
        let mut cmd = metadata();
        cmd.env("CARGO_TARGET_DIR", &elsewhere);
        let found = json_string_field(&output(cmd).unwrap(), "target_directory");
        assert_eq!(found.map(PathBuf::from), Some(elsewhere));
    }
}
