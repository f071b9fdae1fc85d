//! Progress bars on standard error, drawn only when it is a terminal.

use std::io::IsTerminal as _;

use indicatif::{ProgressBar, ProgressStyle};

/// True when standard error is a terminal (a person is watching).
pub(crate) fn on_terminal() -> bool {
    std::io::stderr().is_terminal()
}

/// A bar of `len` steps named `name`; indicatif hides it when standard
/// error is not a terminal.
pub(crate) fn bar(name: &str, len: u64) -> ProgressBar {
    let bar = ProgressBar::new(len);
    if let Ok(style) = ProgressStyle::with_template("{msg} [{bar:30}] {pos}/{len} eta {eta}") {
        bar.set_style(style.progress_chars("=> "));
    }
    bar.set_message(name.to_owned());
    bar
}
