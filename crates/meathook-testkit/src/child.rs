//! A test that needs a process of its own (to be killed, to run under a
//! smaller file limit, to take signals) runs one of its own tests again in a
//! child of the test binary. [`test_in_child!`](crate::test_in_child) builds
//! that command from the calling module's path, so the name follows the test
//! when its file moves: a wrong name would make the child run nothing and
//! pass.

use std::process::Command;

/// The command that runs test `name` of module `module_path` (as
/// `module_path!()` spells it, crate first) alone in the current test
/// binary, with its output shown.
///
/// # Panics
///
/// When the path of the current executable cannot be read.
#[must_use]
#[allow(clippy::expect_used)] // a test helper: no path, no test
pub fn command(module_path: &str, name: &str) -> Command {
    let exe = std::env::current_exe().expect("the path of the test binary");
    let mut cmd = Command::new(exe);
    cmd.args([
        "--exact",
        &test_name(module_path, name),
        "--nocapture",
        "--test-threads=1",
    ]);
    cmd
}

/// The name libtest gives test `name` in module `module_path`: the module
/// path without its crate, then the function.
#[must_use]
pub fn test_name(module_path: &str, name: &str) -> String {
    match module_path.split_once("::") {
        Some((_crate, module)) => format!("{module}::{name}"),
        None => name.to_owned(),
    }
}

/// [`command`] for test `$name` in the calling module.
#[macro_export]
macro_rules! test_in_child {
    ($name:expr) => {
        $crate::child::command(::std::module_path!(), $name)
    };
}

#[cfg(test)]
mod tests {
    use super::test_name;

    #[test]
    fn names_drop_the_crate_and_keep_the_module() {
        assert_eq!(
            test_name("it::kill", "child_process"),
            "kill::child_process"
        );
        assert_eq!(test_name("it::a::b", "t"), "a::b::t");
        assert_eq!(test_name("kill", "child_process"), "child_process");
    }
}
