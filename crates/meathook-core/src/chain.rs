//! [`ErrorChain`]: an error and every cause below it, on one line.

use std::error::Error;
use std::fmt;

/// Displays an error followed by each of its sources, `a: b: c`, on one
/// line: what a log line needs to say *why* (a DNS failure, a refused
/// connection, an expired certificate) and not only *what* failed.
///
/// A source whose text the line already holds is left out, so an error
/// that writes its source into its own message (`request failed: {source}`)
/// is not repeated.
///
/// ```
/// use meathook_core::ErrorChain;
///
/// let io = std::io::Error::new(std::io::ErrorKind::ConnectionRefused, "connection refused");
/// let outer = std::io::Error::other(Wrapped(io));
/// assert_eq!(
///     ErrorChain(&outer).to_string(),
///     "sending the request: connection refused"
/// );
///
/// #[derive(Debug)]
/// struct Wrapped(std::io::Error);
/// impl std::fmt::Display for Wrapped {
///     fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
///         f.write_str("sending the request")
///     }
/// }
/// impl std::error::Error for Wrapped {
///     fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
///         Some(&self.0)
///     }
/// }
/// ```
#[derive(Clone, Copy)]
pub struct ErrorChain<'a>(pub &'a (dyn Error + 'static));

impl fmt::Display for ErrorChain<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut line = self.0.to_string();
        let mut source = self.0.source();
        while let Some(cause) = source {
            let text = cause.to_string();
            if !text.is_empty() && !line.contains(&text) {
                line.push_str(": ");
                line.push_str(&text);
            }
            source = cause.source();
        }
        f.write_str(&line)
    }
}

impl fmt::Debug for ErrorChain<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An error with a message and an optional source.
    #[derive(Debug)]
    struct E(&'static str, Option<Box<E>>);

    impl fmt::Display for E {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str(self.0)
        }
    }

    impl Error for E {
        fn source(&self) -> Option<&(dyn Error + 'static)> {
            self.1.as_deref().map(|e| e as &(dyn Error + 'static))
        }
    }

    fn e(text: &'static str, source: Option<E>) -> E {
        E(text, source.map(Box::new))
    }

    #[test]
    fn every_cause_is_on_the_line_in_order() {
        let error = e(
            "poll failed",
            Some(e(
                "error sending request",
                Some(e("dns error", Some(e("no such host", None)))),
            )),
        );
        assert_eq!(
            ErrorChain(&error).to_string(),
            "poll failed: error sending request: dns error: no such host"
        );
    }

    #[test]
    fn a_cause_the_message_already_holds_is_not_repeated() {
        let error = e(
            "request to http://x/ failed: error sending request",
            Some(e(
                "error sending request",
                Some(e("connection refused", None)),
            )),
        );
        assert_eq!(
            ErrorChain(&error).to_string(),
            "request to http://x/ failed: error sending request: connection refused"
        );
    }

    #[test]
    fn an_error_without_a_source_is_its_message() {
        assert_eq!(ErrorChain(&e("disk full", None)).to_string(), "disk full");
    }
}
