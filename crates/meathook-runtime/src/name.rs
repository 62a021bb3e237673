//! Which pipeline names the runtime accepts.
//!
//! A pipeline name names directories, file paths and metric labels, so the
//! supervisor checks every name before anything runs.

use crate::error::RuntimeError;

/// Checks that `name` can name directories, paths and metric labels.
pub(crate) fn validate_name(name: &str) -> Result<(), RuntimeError> {
    let reason = if name.is_empty() {
        Some("it is empty")
    } else if name.contains('/') || name.contains('\\') {
        Some("it contains a path separator")
    } else if name.contains("..") {
        Some("it contains `..`")
    } else if name.chars().any(char::is_control) {
        Some("it contains a control character")
    } else if meathook_core::name::check_pipeline_name(name).is_err() {
        Some(
            "it is too long to name files: at most 240 bytes once escaped for paths, where each byte other than ASCII letters, digits, `-` and `_` counts three",
        )
    } else {
        None
    };
    match reason {
        Some(reason) => Err(RuntimeError::BadPipelineName {
            name: name.to_owned(),
            reason,
        }),
        None => Ok(()),
    }
}
