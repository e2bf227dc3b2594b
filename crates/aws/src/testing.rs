//! Test support: a `moto` server on 127.0.0.1 (a local stand-in for the AWS APIs) and the Python
//! tools the tests run (`aws`, `cfn-lint`, `checkov`).
//!
//! Tools are looked up in `MEMBRAIN_TOOLS_BIN` (the `bin` folder of the environment
//! `scripts/test` prepares), then on `PATH`. A missing tool fails the test with a message that
//! says how to install it: tests never skip.

use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The path of a Python tool, from `MEMBRAIN_TOOLS_BIN` or `PATH`.
pub fn tool_path(name: &str) -> PathBuf {
    if let Ok(dir) = std::env::var("MEMBRAIN_TOOLS_BIN") {
        let candidate = PathBuf::from(dir).join(name);
        if candidate.exists() {
            return candidate;
        }
    }
    let on_path = std::env::var_os("PATH").map(|paths| {
        std::env::split_paths(&paths)
            .map(|p| p.join(name))
            .find(|p| p.exists())
    });
    on_path.flatten().unwrap_or_else(|| {
        panic!(
            "{name} is not installed: run ./scripts/test (which prepares $CARGO_TARGET_DIR/test-venv), \
             or set MEMBRAIN_TOOLS_BIN to a folder holding it (pip install -r tests/requirements.txt)"
        )
    })
}

/// A command for a Python tool, with an environment that never reaches a real AWS account.
pub fn tool(name: &str) -> Command {
    let mut command = Command::new(tool_path(name));
    command
        .env("AWS_ACCESS_KEY_ID", "testing")
        .env("AWS_SECRET_ACCESS_KEY", "testing")
        .env("AWS_SESSION_TOKEN", "testing")
        .env("AWS_DEFAULT_REGION", "us-east-1")
        .env("AWS_REGION", "us-east-1")
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .env_remove("AWS_PROFILE");
    command
}

/// A running `moto_server`, stopped when dropped. Each test gets its own, so state never leaks.
#[derive(Debug)]
pub struct MotoServer {
    child: Child,
    /// `http://127.0.0.1:PORT`, for `--endpoint-url`.
    pub endpoint: String,
}

impl MotoServer {
    pub fn start() -> Self {
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map(|a| a.port())
            .expect("a free loopback port");
        let child = tool("moto_server")
            .args(["-H", "127.0.0.1", "-p", &port.to_string()])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start moto_server");
        let server = Self {
            child,
            endpoint: format!("http://127.0.0.1:{port}"),
        };
        let address = SocketAddr::from(([127, 0, 0, 1], port));
        let deadline = Instant::now() + Duration::from_secs(30);
        while TcpStream::connect_timeout(&address, Duration::from_millis(200)).is_err() {
            assert!(
                Instant::now() < deadline,
                "moto_server did not start on {address}"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        server
    }

    pub const REGION: &'static str = "us-east-1";
}

impl Drop for MotoServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
