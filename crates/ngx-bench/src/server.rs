//! Starting the service under test as a child process on a free loopback
//! port, with one configuration, and stopping it with SIGTERM.

use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::db::{Database, DbOptions};

/// Where the spawned service keeps its data.
#[derive(Debug, Clone)]
pub enum DataStore {
    /// A fresh SQLite file in a temporary directory, deleted afterwards.
    Sqlite,
    /// A PostgreSQL URL; the run uses a fresh schema it creates and drops.
    Postgres(String),
}

/// A running child `ngx-agent`.
#[derive(Debug)]
pub struct Server {
    child: Option<Child>,
    /// `http://127.0.0.1:port`.
    pub base: String,
    /// The admin token given to the child.
    pub admin_token: String,
    dir: Option<PathBuf>,
    schema: Option<(String, String)>,
}

impl Server {
    /// Starts `binary` with the cache on or off over a fresh database.
    /// Other settings (`REDIS_URL`, ...) come from this process's environment.
    pub fn spawn(
        binary: &PathBuf,
        cache: bool,
        store: &DataStore,
        tag: &str,
    ) -> Result<Self, String> {
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map_err(|e| format!("free port: {e}"))?
            .port();
        let admin_token = format!("{:032x}", rand::random::<u128>());
        let id = format!("{}_{}", std::process::id(), tag);
        let mut cmd = Command::new(binary);
        cmd.env("HTTP_ADDR", format!("127.0.0.1:{port}"))
            .env("CACHE_ENABLED", cache.to_string())
            .env("CACHE_NAMESPACE", format!("ngxbench{id}"))
            .env("ADMIN_TOKEN", &admin_token)
            .env(
                "RUST_LOG",
                std::env::var("BENCH_SERVER_LOG").unwrap_or_else(|_| "warn".into()),
            )
            .stdout(Stdio::null())
            .stderr(Stdio::inherit());
        let mut dir = None;
        let mut schema = None;
        match store {
            DataStore::Sqlite => {
                let d = std::env::temp_dir().join(format!("ngx-bench-{id}"));
                let _ = std::fs::remove_dir_all(&d);
                std::fs::create_dir_all(&d).map_err(|e| format!("temp dir: {e}"))?;
                cmd.env("DATABASE_URL", format!("sqlite://{}/ngx.db", d.display()))
                    .env_remove("DATABASE_SCHEMA");
                dir = Some(d);
            }
            DataStore::Postgres(url) => {
                let name = format!("bench_{id}");
                cmd.env("DATABASE_URL", url).env("DATABASE_SCHEMA", &name);
                schema = Some((url.clone(), name));
            }
        }
        let child = cmd
            .spawn()
            .map_err(|e| format!("starting {}: {e}", binary.display()))?;
        Ok(Self {
            child: Some(child),
            base: format!("http://127.0.0.1:{port}"),
            admin_token,
            dir,
            schema,
        })
    }

    /// SIGTERM, wait up to 10 s (then SIGKILL), and remove the data
    /// this run created. Returns the exit status's success.
    pub async fn stop(mut self) -> Result<bool, String> {
        let ok = self.terminate();
        if let Some((url, schema)) = self.schema.take() {
            let db = Database::connect_with(&url, DbOptions::default().schema(schema))
                .await
                .map_err(|e| format!("connect to drop the bench schema: {e}"))?;
            db.drop_schema()
                .await
                .map_err(|e| format!("drop the bench schema: {e}"))?;
        }
        Ok(ok)
    }

    fn terminate(&mut self) -> bool {
        let Some(mut child) = self.child.take() else {
            return false;
        };
        let _ = Command::new("kill")
            .args(["-TERM", &child.id().to_string()])
            .status();
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if let Ok(Some(status)) = child.try_wait() {
                return status.success();
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = child.kill();
        let _ = child.wait();
        false
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.terminate();
        if let Some(d) = self.dir.take() {
            let _ = std::fs::remove_dir_all(d);
        }
    }
}
