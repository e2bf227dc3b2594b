//! Command output on stdout. A closed pipe (`membrain network plan | head`) ends the process
//! quietly, as other command-line tools do, instead of panicking inside `println!`.

use std::fmt;
use std::io::{ErrorKind, Write};

/// Writes text to stdout; exits with 0 if the reader went away, 1 on any other write error.
pub fn write(args: fmt::Arguments<'_>) {
    let mut out = std::io::stdout().lock();
    if let Err(error) = out.write_fmt(args).and_then(|()| out.flush()) {
        if error.kind() == ErrorKind::BrokenPipe {
            std::process::exit(0);
        }
        eprintln!("error: cannot write to standard output: {error}");
        std::process::exit(1);
    }
}

/// `println!` for command output.
macro_rules! say {
    () => { $crate::output::write(format_args!("\n")) };
    ($($arg:tt)*) => { $crate::output::write(format_args!("{}\n", format_args!($($arg)*))) };
}
pub(crate) use say;
