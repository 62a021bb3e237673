//! `HfToken`: the access token, kept out of every `Debug`, `Display`, log
//! line and error.
//!
//! **Invariant:** the token's text leaves this type only through
//! [`HfToken::bearer`], which builds the `Authorization` header value of a
//! request to the Hub itself. Nothing formats it.

use std::fmt;

/// A HuggingFace access token. `Debug` prints `HfToken(***)`.
#[derive(Clone, PartialEq, Eq)]
pub struct HfToken(String);

impl HfToken {
    /// Wraps a token (`hf_…`).
    pub fn new(token: impl Into<String>) -> Self {
        Self(token.into())
    }

    /// The `Authorization` header value, marked sensitive so that `http`
    /// and `reqwest` never print it.
    pub(crate) fn bearer(&self) -> Option<http::HeaderValue> {
        let mut value = http::HeaderValue::from_str(&format!("Bearer {}", self.0)).ok()?;
        value.set_sensitive(true);
        Some(value)
    }

    /// Whether the token is empty (no token configured).
    pub fn is_empty(&self) -> bool {
        self.0.trim().is_empty()
    }
}

impl From<String> for HfToken {
    fn from(token: String) -> Self {
        Self(token)
    }
}

impl From<&str> for HfToken {
    fn from(token: &str) -> Self {
        Self(token.to_owned())
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
}
