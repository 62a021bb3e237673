//! `HfToken`: the access token, kept out of every `Debug`, `Display`, log
//! line and error.
//!
//! A token is trimmed of surrounding whitespace when it is made: a token
//! read from a file (a Kubernetes secret made with `--from-file`, a
//! `.env` line) usually ends in a newline, which is not part of the token.
//! What is left must be a valid `Authorization` header value made of
//! visible ASCII; [`HfToken::check`] says what is wrong with one that is
//! not (empty, a space, a control character or a non-ASCII character
//! inside it), without ever printing it. [`HfToken::parse`] refuses such a
//! token at once; a sink given one refuses it at its first `open` or
//! `ingest`, before any request.
//!
//! **Invariant:** the token's text leaves this type only through
//! [`HfToken::bearer`], which builds the `Authorization` header value of a
//! request to the Hub itself; a request that should carry it and cannot is
//! never sent without it. Nothing formats it.

use std::fmt;

/// A HuggingFace access token. `Debug` prints `HfToken(***)`.
#[derive(Clone, PartialEq, Eq)]
pub struct HfToken(String);

/// What is wrong with a token: never its text, only where and what.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum InvalidToken {
    /// Nothing is left once surrounding whitespace is trimmed.
    #[error("the token is empty")]
    Empty,
    /// A space or tab inside the token (surrounding ones are trimmed).
    #[error(
        "the token has a space or tab at character {at}: a token is one word; \
         check that the variable holds only the token"
    )]
    Space {
        /// The character's position in the trimmed token, from 1.
        at: usize,
    },
    /// A control character (a newline, a carriage return, …) inside the
    /// token.
    #[error(
        "the token has a control character (U+{code:04X}) at character {at}: \
         check that the variable holds only the token, on one line"
    )]
    Control {
        /// The character's position in the trimmed token, from 1.
        at: usize,
        /// Its code point.
        code: u32,
    },
    /// A character outside ASCII: tokens are ASCII, so this is a copying
    /// mistake (a typographic quote, a non-breaking space).
    #[error(
        "the token has a non-ASCII character at character {at}: tokens are plain \
         ASCII; copy it again from https://huggingface.co/settings/tokens"
    )]
    NotAscii {
        /// The character's position in the trimmed token, from 1.
        at: usize,
    },
}

impl HfToken {
    /// Wraps a token (`hf_…`), trimmed of surrounding whitespace. Never
    /// fails: a sink refuses an invalid token at its first `open` or
    /// `ingest` (see [`check`](Self::check)); use [`parse`](Self::parse) to
    /// refuse it here.
    pub fn new(token: impl Into<String>) -> Self {
        let token = token.into();
        let trimmed = token.trim();
        if trimmed.len() == token.len() {
            Self(token)
        } else {
            Self(trimmed.to_owned())
        }
    }

    /// Wraps a token trimmed of surrounding whitespace, or says what is
    /// wrong with it.
    ///
    /// # Errors
    ///
    /// [`InvalidToken`] when the trimmed token is empty or holds a space, a
    /// control character or a non-ASCII character.
    pub fn parse(token: impl Into<String>) -> Result<Self, InvalidToken> {
        let token = Self::new(token);
        token.check()?;
        Ok(token)
    }

    /// Whether the token can be sent as a `Bearer` header value.
    ///
    /// # Errors
    ///
    /// What is wrong with it, as for [`parse`](Self::parse).
    pub fn check(&self) -> Result<(), InvalidToken> {
        if self.0.is_empty() {
            return Err(InvalidToken::Empty);
        }
        for (i, c) in self.0.chars().enumerate() {
            let at = i + 1;
            if c == ' ' || c == '\t' {
                return Err(InvalidToken::Space { at });
            }
            if c.is_control() {
                return Err(InvalidToken::Control {
                    at,
                    code: u32::from(c),
                });
            }
            if !c.is_ascii_graphic() {
                // Every visible ASCII character passed above; what is left
                // is outside ASCII (a Unicode space, a quote, a letter).
                return Err(InvalidToken::NotAscii { at });
            }
        }
        Ok(())
    }

    /// The `Authorization` header value, marked sensitive so that `http`
    /// and `reqwest` never print it.
    pub(crate) fn bearer(&self) -> Result<http::HeaderValue, http::header::InvalidHeaderValue> {
        let mut value = http::HeaderValue::from_str(&format!("Bearer {}", self.0))?;
        value.set_sensitive(true);
        Ok(value)
    }

    /// Whether the token is empty (no token configured).
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl From<String> for HfToken {
    fn from(token: String) -> Self {
        Self::new(token)
    }
}

impl From<&str> for HfToken {
    fn from(token: &str) -> Self {
        Self::new(token)
    }
}

impl fmt::Debug for HfToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("HfToken(***)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_hides_the_token_and_the_header_is_sensitive() {
        let t = HfToken::new("hf_secretvalue");
        assert_eq!(format!("{t:?}"), "HfToken(***)");
        let header = t.bearer().unwrap();
        assert!(header.is_sensitive());
        assert!(!format!("{header:?}").contains("secretvalue"));
    }

    #[test]
    fn surrounding_whitespace_is_trimmed() {
        for raw in ["hf_abc\n", "hf_abc\r\n", "  hf_abc\t", "\nhf_abc \n"] {
            let t = HfToken::parse(raw).unwrap();
            assert_eq!(t.bearer().unwrap(), "Bearer hf_abc", "{raw:?}");
            assert_eq!(HfToken::from(raw), t);
        }
    }

    #[test]
    fn invalid_tokens_say_what_is_wrong_without_the_token() {
        let cases = [
            ("", InvalidToken::Empty),
            (" \n ", InvalidToken::Empty),
            ("hf_ab cd", InvalidToken::Space { at: 6 }),
            ("hf_ab\tcd", InvalidToken::Space { at: 6 }),
            ("hf_ab\ncd\n", InvalidToken::Control { at: 6, code: 0x0a }),
            ("hf_ab\u{7f}cd", InvalidToken::Control { at: 6, code: 0x7f }),
            ("hf_ab\u{a0}cd", InvalidToken::NotAscii { at: 6 }),
            ("“hf_abcd”", InvalidToken::NotAscii { at: 1 }),
        ];
        for (raw, want) in cases {
            let e = HfToken::parse(raw).expect_err(raw);
            assert_eq!(e, want, "{raw:?}");
            let text = e.to_string();
            assert!(!text.contains("hf_ab"), "{text}");
            assert_eq!(HfToken::new(raw).check(), Err(want));
        }
    }
}
