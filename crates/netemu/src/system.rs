//! Running `ip`, `nft` and processes inside namespaces, and checking this machine can do it.

use std::io::Write;
use std::path::PathBuf;
use std::process::{Command, Output, Stdio};

use crate::EmulateError;

/// Root and the tools the emulation runs; each missing piece says how to get it.
pub fn preflight() -> Result<(), EmulateError> {
    missing_pieces(is_root(), |tool| find_program(tool).is_some())
}

/// The preflight's decision, given whether this is root and which tools exist.
fn missing_pieces(root: bool, installed: impl Fn(&str) -> bool) -> Result<(), EmulateError> {
    let mut missing = Vec::new();
    if !root {
        missing.push(
            "root: network namespaces and nftables need it; run as root (e.g. `sudo membrain \
             network emulate ...`)"
                .to_owned(),
        );
    }
    for (tool, package) in [
        ("ip", "iproute2"),
        ("nft", "nftables"),
        ("python3", "python3"),
        ("bash", "bash"),
        ("timeout", "coreutils"),
    ] {
        if !installed(tool) {
            missing.push(format!(
                "`{tool}` is not installed: `apt-get install -y {package}`"
            ));
        }
    }
    if missing.is_empty() {
        Ok(())
    } else {
        Err(EmulateError::Missing(format!(
            "the emulation cannot run here; missing: {}",
            missing.join("; ")
        )))
    }
}

/// Whether this process runs as root (read from /proc, no `unsafe` needed).
pub fn is_root() -> bool {
    std::fs::read_to_string("/proc/self/status").is_ok_and(|status| {
        status
            .lines()
            .find(|l| l.starts_with("Uid:"))
            .and_then(|l| l.split_whitespace().nth(2))
            == Some("0")
    })
}

/// `name` on the PATH (and in /usr/sbin and /sbin, where Debian keeps `ip` and `nft`).
pub fn find_program(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain(["/usr/sbin".into(), "/sbin".into(), "/usr/bin".into()])
        .map(|dir| dir.join(name))
        .find(|candidate| candidate.is_file())
}

fn program(name: &str) -> PathBuf {
    find_program(name).unwrap_or_else(|| PathBuf::from(name))
}

fn describe(program: &str, args: &[&str]) -> String {
    let mut text = program.to_owned();
    for arg in args {
        text.push(' ');
        text.push_str(arg);
    }
    text
}

fn checked(command: String, output: Output) -> Result<Output, EmulateError> {
    if output.status.success() {
        Ok(output)
    } else {
        Err(EmulateError::Command {
            command,
            stderr: String::from_utf8_lossy(&output.stderr).trim().to_owned(),
        })
    }
}

/// Runs `ip <args>` and fails with its stderr.
pub fn ip(args: &[&str]) -> Result<Output, EmulateError> {
    let output = Command::new(program("ip"))
        .args(args)
        .stdin(Stdio::null())
        .output()
        .map_err(EmulateError::io("cannot run `ip`"))?;
    checked(describe("ip", args), output)
}

/// Runs `argv` inside `namespace` (`ip netns exec`) and fails with its stderr.
pub fn in_namespace(namespace: &str, argv: &[&str]) -> Result<Output, EmulateError> {
    let mut args = vec!["netns", "exec", namespace];
    args.extend_from_slice(argv);
    ip(&args)
}

/// Loads an nftables script inside `namespace` in one transaction.
pub fn nft_load(namespace: &str, script: &str) -> Result<(), EmulateError> {
    let mut child = Command::new(program("ip"))
        .args(["netns", "exec", namespace, "nft", "-f", "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(EmulateError::io("cannot run `nft`"))?;
    if let Some(mut stdin) = child.stdin.take() {
        stdin
            .write_all(script.as_bytes())
            .map_err(EmulateError::io("cannot write the ruleset to `nft`"))?;
    }
    let output = child
        .wait_with_output()
        .map_err(EmulateError::io("`nft` did not finish"))?;
    checked(format!("ip netns exec {namespace} nft -f -"), output).map(|_| ())
}

/// The network namespaces that exist now.
pub fn namespaces() -> Result<Vec<String>, EmulateError> {
    let output = ip(&["netns", "list"])?;
    Ok(String::from_utf8_lossy(&output.stdout)
        .lines()
        .filter_map(|l| l.split_whitespace().next())
        .map(str::to_owned)
        .collect())
}

/// Kills every process in `namespace` (TERM, then KILL) and removes it; absent is fine.
pub fn remove_namespace(namespace: &str) -> Result<(), EmulateError> {
    let exists = std::path::Path::new("/run/netns").join(namespace).exists();
    if !exists {
        return Ok(());
    }
    for signal in ["-TERM", "-KILL"] {
        let pids = ip(&["netns", "pids", namespace])
            .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
            .unwrap_or_default();
        let pids: Vec<&str> = pids.split_whitespace().collect();
        if pids.is_empty() {
            break;
        }
        let _ = Command::new("kill")
            .arg(signal)
            .args(&pids)
            .stderr(Stdio::null())
            .status();
        for _ in 0..50 {
            let left = ip(&["netns", "pids", namespace])
                .map(|o| !o.stdout.iter().all(u8::is_ascii_whitespace))
                .unwrap_or(false);
            if !left {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
    }
    match ip(&["netns", "del", namespace]) {
        Ok(_) => Ok(()),
        // Another clean-up (a concurrent run's start) got there first: gone is what we wanted.
        Err(_) if !namespaces()?.iter().any(|n| n == namespace) => Ok(()),
        Err(error) => Err(error),
    }
}

/// Whether process `pid` is alive (a zombie, killed but not yet reaped, is not).
pub fn alive(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        // The state follows the command name in parentheses: `123 (name) S ...`.
        Ok(stat) => stat
            .rsplit_once(')')
            .and_then(|(_, rest)| rest.split_whitespace().next())
            .is_some_and(|state| state != "Z" && state != "X"),
        Err(_) => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// (root?, tools installed, pieces the message must name).
    #[test]
    fn the_preflight_names_what_is_missing_and_how_to_install_it() {
        let all = ["ip", "nft", "python3", "bash", "timeout"];
        let cases: &[(bool, &[&str], &[&str])] = &[
            (true, &all, &[]),
            (false, &all, &["root", "sudo membrain network emulate"]),
            (
                true,
                &["ip", "python3", "bash", "timeout"],
                &["`nft` is not installed: `apt-get install -y nftables`"],
            ),
            (
                false,
                &["nft", "python3", "bash", "timeout"],
                &[
                    "root",
                    "`ip` is not installed: `apt-get install -y iproute2`",
                ],
            ),
        ];
        for (root, tools, pieces) in cases {
            let result = missing_pieces(*root, |tool| tools.contains(&tool));
            if pieces.is_empty() {
                assert!(result.is_ok(), "{result:?}");
                continue;
            }
            let message = result.unwrap_err().to_string();
            for piece in *pieces {
                assert!(message.contains(piece), "{message:?} lacks {piece:?}");
            }
        }
    }

    #[test]
    fn this_process_is_alive_and_an_exited_one_is_not() {
        assert!(alive(std::process::id()));
        let mut child = std::process::Command::new("true").spawn().unwrap();
        let pid = child.id();
        child.wait().unwrap();
        assert!(!alive(pid));
    }
}
