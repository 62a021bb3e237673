//! The filesystem seam lives in `meathook-files` (the runtime needs it too,
//! without the spool); the spool's modules reach it through this path.

pub(crate) use meathook_files::fs::*;
