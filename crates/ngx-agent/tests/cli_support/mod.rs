//! Running the real `ngx-agent` binary: one-shot commands with a given
//! environment, and the service as a child process on a free port, stopped
//! with SIGTERM on drop.

use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use super::server::{RedisServer, free_port};

/// The binary under test.
pub const BIN: &str = env!("CARGO_BIN_EXE_ngx-agent");

/// A command with a clean environment pointing at `redis` and namespace `ns`.
pub fn command(redis: &RedisServer, ns: &str) -> Command {
    let mut cmd = Command::new(BIN);
    for (name, _) in std::env::vars() {
        if name.starts_with("CACHE_")
            || name.starts_with("REDIS_")
            || name.starts_with("DATABASE_")
            || name.starts_with("HTTP_")
        {
            cmd.env_remove(name);
        }
    }
    cmd.env("REDIS_URL", redis.url())
        .env("CACHE_NAMESPACE", ns)
        .env("RUST_LOG", "warn");
    cmd
}

/// Runs `ngx-agent args...` to completion.
pub fn run(redis: &RedisServer, ns: &str, args: &[&str]) -> Output {
    command(redis, ns)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .expect("run ngx-agent")
}

/// Standard output as text.
pub fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Standard error as text.
pub fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// Standard output parsed as JSON, with both streams in the panic message.
pub fn json(out: &Output) -> serde_json::Value {
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "not JSON ({e}): stdout {:?}, stderr {:?}",
            stdout(out),
            stderr(out)
        )
    })
}

/// `ngx-agent serve` as a child process.
pub struct Service {
    child: Child,
    stopped: bool,
    /// `http://127.0.0.1:port`.
    pub base: String,
    /// The port it listens on.
    pub port: u16,
}

impl Service {
    /// Starts `serve --port <free>` over a fresh SQLite file in `dir`, with
    /// `HTTP_ADDR` pointing elsewhere so the flag must win; waits until
    /// `/health/ready` answers.
    pub async fn start(
        redis: &RedisServer,
        ns: &str,
        dir: &Path,
        extra_env: &[(&str, &str)],
    ) -> Self {
        let port = free_port();
        let mut cmd = command(redis, ns);
        cmd.args(["serve", "--port", &port.to_string()])
            .env("HTTP_ADDR", "127.0.0.1:1")
            .env("DATABASE_URL", format!("sqlite://{}/ngx.db", dir.display()))
            .env("CACHE_OP_TIMEOUT_MS", "100")
            .env("CACHE_CONNECT_TIMEOUT_MS", "300")
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        for (k, v) in extra_env {
            cmd.env(k, v);
        }
        let mut child = cmd.spawn().expect("start ngx-agent serve");
        let base = format!("http://127.0.0.1:{port}");
        let client = reqwest::Client::builder().no_proxy().build().unwrap();
        let deadline = Instant::now() + Duration::from_secs(90);
        loop {
            let ok = client
                .get(format!("{base}/health/ready"))
                .send()
                .await
                .is_ok_and(|r| r.status().is_success());
            if ok {
                break;
            }
            assert!(
                child.try_wait().unwrap().is_none(),
                "ngx-agent serve exited early"
            );
            assert!(
                Instant::now() < deadline,
                "ngx-agent serve never became ready"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        Self {
            child,
            stopped: false,
            base,
            port,
        }
    }

    /// `GET path` as JSON.
    pub async fn get_json(&self, path: &str) -> serde_json::Value {
        reqwest::Client::builder()
            .no_proxy()
            .build()
            .unwrap()
            .get(format!("{}{path}", self.base))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap()
    }

    /// SIGTERM and wait (SIGKILL after 10 s).
    pub fn stop(&mut self) {
        if std::mem::replace(&mut self.stopped, true) {
            return;
        }
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Service {
    fn drop(&mut self) {
        self.stop();
    }
}
