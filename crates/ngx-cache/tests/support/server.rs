//! A real `redis-server` on a free loopback port, in a temporary directory,
//! killed on drop. Faults are injected with signals to the process we own.

use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The user of `NGX_TEST_REDIS_ACL=1`.
const ACL_USER: &str = "ngx-test";
const ACL_PASSWORD: &str = "ngx-test-pass";

/// A `redis-server` process started by a test.
pub struct RedisServer {
    child: Option<Child>,
    port: u16,
    dir: tempfile::TempDir,
    password: Option<String>,
    extra: Vec<String>,
}

impl RedisServer {
    /// Starts a server on a free port.
    pub fn start() -> Self {
        Self::start_with(None, &[])
    }

    /// Starts a server that requires `password`.
    pub fn with_password(password: &str) -> Self {
        Self::start_with(Some(password.to_owned()), &[])
    }

    /// Starts a server with extra command-line arguments (`--cluster-enabled yes`, ...).
    pub fn start_with(password: Option<String>, extra: &[&str]) -> Self {
        let extra: Vec<String> = extra.iter().map(|s| (*s).to_owned()).collect();
        for _ in 0..10 {
            let port = free_port();
            // The server owns its directory, so `restart` can use it again.
            let mut server = RedisServer {
                child: None,
                port,
                dir: tempfile::tempdir().expect("temp dir"),
                password: password.clone(),
                extra: extra.clone(),
            };
            if server.spawn() {
                return server;
            }
        }
        panic!("could not start redis-server on a free port");
    }

    fn spawn(&mut self) -> bool {
        let mut cmd = Command::new("redis-server");
        cmd.args(["--port", &self.port.to_string()])
            .args(["--bind", "127.0.0.1"])
            .args(["--save", "", "--appendonly", "no"])
            .arg("--dir")
            .arg(self.dir.path())
            .args(["--logfile", "redis.log"])
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        if let Some(pw) = &self.password {
            cmd.args(["--requirepass", pw]);
        }
        cmd.args(&self.extra);
        let child = cmd
            .spawn()
            .expect("redis-server must be installed (make test installs it)");
        self.child = Some(child);
        let ready = self.wait_ready(Duration::from_secs(5));
        if ready && self.acl_mode() {
            self.create_acl_user();
        }
        ready
    }

    /// `NGX_TEST_REDIS_ACL=1`: the cache connects as a user made with
    /// `ngx_cache::acl_rule` (any key and channel, so every suite's
    /// namespace works), the test's own checks as the default user, and
    /// dropping the server asserts that `ACL LOG` is empty.
    /// Cluster nodes are left alone: the cluster's launcher administers them
    /// through `url`.
    fn acl_mode(&self) -> bool {
        self.password.is_none()
            && !self.extra.iter().any(|a| a == "--cluster-enabled")
            && std::env::var("NGX_TEST_REDIS_ACL").is_ok_and(|v| v == "1")
    }

    fn create_acl_user(&self) {
        let rule = ngx_cache::acl_rule(&ngx_cache::CacheConfig::default())
            .replace("~ngx:*", "~*")
            .replace("&ngx:__invalidation", "&*");
        let mut cmd = redis::cmd("ACL");
        cmd.arg("SETUSER")
            .arg(ACL_USER)
            .arg(format!(">{ACL_PASSWORD}"));
        for part in rule.split_whitespace() {
            cmd.arg(part);
        }
        let _: () = cmd.query(&mut self.conn()).expect("ACL SETUSER");
        // Tests count clients: wait until that connection is gone.
        let deadline = Instant::now() + Duration::from_secs(2);
        while Instant::now() < deadline {
            let info: String = redis::cmd("INFO")
                .arg("clients")
                .query(&mut self.conn())
                .unwrap_or_default();
            if info.contains("connected_clients:1\r") {
                break;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    fn wait_ready(&mut self, limit: Duration) -> bool {
        let deadline = Instant::now() + limit;
        while Instant::now() < deadline {
            if let Some(Ok(Some(_))) = self.child.as_mut().map(Child::try_wait) {
                return false; // exited: port taken, most likely
            }
            if self.ping() {
                return true;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        false
    }

    /// A blocking PING over a plain TCP connection.
    pub fn ping(&self) -> bool {
        let Ok(client) = redis::Client::open(self.admin_url()) else {
            return false;
        };
        let Ok(mut conn) = client.get_connection_with_timeout(Duration::from_millis(200)) else {
            return false;
        };
        redis::cmd("PING").query::<String>(&mut conn).is_ok()
    }

    /// The URL the cache under test uses: [`admin_url`](Self::admin_url), or
    /// the ACL user's with `NGX_TEST_REDIS_ACL=1`.
    pub fn url(&self) -> String {
        if self.acl_mode() {
            return format!("redis://{ACL_USER}:{ACL_PASSWORD}@127.0.0.1:{}", self.port);
        }
        self.admin_url()
    }

    /// `redis://[:password@]127.0.0.1:port`, the default user.
    pub fn admin_url(&self) -> String {
        match &self.password {
            Some(pw) => format!("redis://:{pw}@127.0.0.1:{}", self.port),
            None => format!("redis://127.0.0.1:{}", self.port),
        }
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    pub fn pid(&self) -> u32 {
        self.child.as_ref().expect("running").id()
    }

    pub fn dir(&self) -> PathBuf {
        self.dir.path().to_owned()
    }

    /// A synchronous connection for checking what the cache wrote.
    pub fn conn(&self) -> redis::Connection {
        redis::Client::open(self.admin_url())
            .expect("url")
            .get_connection_with_timeout(Duration::from_secs(2))
            .expect("connect to test redis")
    }

    /// SIGKILL, and reap the process.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// SIGSTOP: the server keeps accepting TCP connections but answers nothing.
    pub fn pause(&self) {
        self.signal("-STOP");
    }

    /// SIGCONT after [`pause`](Self::pause).
    pub fn resume(&self) {
        self.signal("-CONT");
    }

    fn signal(&self, sig: &str) {
        let status = Command::new("kill")
            .args([sig, &self.pid().to_string()])
            .status()
            .expect("kill");
        assert!(status.success(), "kill {sig} failed");
    }

    /// Starts a new process on the same port after [`kill`](Self::kill).
    pub fn restart(&mut self) {
        self.kill();
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline {
            if self.spawn() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!("could not restart redis-server on port {}", self.port);
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        if self.child.is_some() {
            // A paused process would ignore nothing, but be sure it can die.
            let _ = Command::new("kill")
                .args(["-CONT", &self.pid().to_string()])
                .status();
            if self.acl_mode() && !std::thread::panicking() {
                let log: Vec<redis::Value> = redis::cmd("ACL")
                    .arg("LOG")
                    .query(&mut self.conn())
                    .unwrap_or_default();
                self.kill();
                assert!(log.is_empty(), "the ACL user was denied: {log:?}");
            }
        }
        self.kill();
    }
}

/// A port that was free a moment ago (bind to port 0, read it, release it).
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("free port")
}
