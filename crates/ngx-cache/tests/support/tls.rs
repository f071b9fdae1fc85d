//! TLS test material made with the `openssl` command line: a CA, a server
//! certificate for 127.0.0.1 and localhost, and a client certificate, in a
//! temporary directory; and a `redis-server` that also listens with TLS.

use std::path::{Path, PathBuf};
use std::process::Command;

use super::server::{RedisServer, free_port};

/// Certificates and keys in PEM files.
pub struct Certs {
    dir: tempfile::TempDir,
}

fn openssl(dir: &Path, args: &[&str]) {
    let out = Command::new("openssl")
        .args(args)
        .current_dir(dir)
        .output()
        .expect("openssl must be installed (.ci/run installs it)");
    assert!(
        out.status.success(),
        "openssl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

impl Certs {
    /// A fresh CA with a server and a client certificate signed by it.
    pub fn generate() -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        let d = dir.path();
        std::fs::write(
            d.join("server.ext"),
            "subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth\n",
        )
        .unwrap();
        std::fs::write(d.join("client.ext"), "extendedKeyUsage=clientAuth\n").unwrap();
        let days = "2";
        openssl(
            d,
            &[
                "req",
                "-x509",
                "-newkey",
                "rsa:2048",
                "-nodes",
                "-keyout",
                "ca.key",
                "-out",
                "ca.crt",
                "-days",
                days,
                "-subj",
                "/CN=ngx test CA",
            ],
        );
        for (name, ext) in [("server", "server.ext"), ("client", "client.ext")] {
            let (key, csr, crt) = (
                format!("{name}.key"),
                format!("{name}.csr"),
                format!("{name}.crt"),
            );
            openssl(
                d,
                &[
                    "req",
                    "-newkey",
                    "rsa:2048",
                    "-nodes",
                    "-keyout",
                    &key,
                    "-out",
                    &csr,
                    "-subj",
                    &format!("/CN=ngx test {name}"),
                ],
            );
            openssl(
                d,
                &[
                    "x509",
                    "-req",
                    "-in",
                    &csr,
                    "-CA",
                    "ca.crt",
                    "-CAkey",
                    "ca.key",
                    "-CAcreateserial",
                    "-out",
                    &crt,
                    "-days",
                    days,
                    "-extfile",
                    ext,
                ],
            );
        }
        // A second CA that signed nothing the server shows.
        openssl(
            d,
            &[
                "req",
                "-x509",
                "-newkey",
                "rsa:2048",
                "-nodes",
                "-keyout",
                "other.key",
                "-out",
                "other.crt",
                "-days",
                days,
                "-subj",
                "/CN=other CA",
            ],
        );
        Self { dir }
    }

    pub fn path(&self, file: &str) -> PathBuf {
        self.dir.path().join(file)
    }

    pub fn ca(&self) -> PathBuf {
        self.path("ca.crt")
    }
    pub fn other_ca(&self) -> PathBuf {
        self.path("other.crt")
    }
    pub fn client_cert(&self) -> PathBuf {
        self.path("client.crt")
    }
    pub fn client_key(&self) -> PathBuf {
        self.path("client.key")
    }
}

/// A `redis-server` with a TLS port next to its plain one (the plain port
/// is for the test's own checks). With `client_auth`, TLS clients must show
/// a certificate signed by the CA.
pub struct TlsServer {
    pub server: RedisServer,
    pub tls_port: u16,
}

impl TlsServer {
    pub fn start(certs: &Certs, client_auth: bool) -> Self {
        let tls_port = free_port();
        let args = [
            "--tls-port".to_owned(),
            tls_port.to_string(),
            "--tls-cert-file".to_owned(),
            certs.path("server.crt").display().to_string(),
            "--tls-key-file".to_owned(),
            certs.path("server.key").display().to_string(),
            "--tls-ca-cert-file".to_owned(),
            certs.ca().display().to_string(),
            "--tls-auth-clients".to_owned(),
            if client_auth { "yes" } else { "no" }.to_owned(),
        ];
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let server = RedisServer::start_with(None, &args);
        Self { server, tls_port }
    }

    /// `rediss://127.0.0.1:{tls port}`.
    pub fn url(&self) -> String {
        format!("rediss://127.0.0.1:{}", self.tls_port)
    }
}

/// Three Redis Cluster primaries with TLS ports next to their plain ones.
/// With `tls-cluster yes` the cluster bus runs over TLS and a TLS client is
/// told the nodes' TLS ports. TLS clients must show a certificate signed by
/// the CA. The plain ports are for the test's own checks.
pub struct TlsCluster {
    pub nodes: Vec<TlsServer>,
}

impl TlsCluster {
    /// Starts the nodes, creates the cluster over TLS with `redis-cli` and
    /// waits until every node serves every slot.
    pub fn start(certs: &Certs) -> Self {
        let nodes: Vec<TlsServer> = (0..3)
            .map(|_| {
                let tls_port = free_port().to_string();
                let bus = free_port().to_string();
                let path = |f: &str| certs.path(f).display().to_string();
                let args = [
                    "--tls-port".to_owned(),
                    tls_port.clone(),
                    "--tls-cert-file".to_owned(),
                    path("server.crt"),
                    "--tls-key-file".to_owned(),
                    path("server.key"),
                    // What a node shows when it connects to another.
                    "--tls-client-cert-file".to_owned(),
                    path("client.crt"),
                    "--tls-client-key-file".to_owned(),
                    path("client.key"),
                    "--tls-ca-cert-file".to_owned(),
                    certs.ca().display().to_string(),
                    "--tls-auth-clients".to_owned(),
                    "yes".to_owned(),
                    "--tls-cluster".to_owned(),
                    "yes".to_owned(),
                    "--cluster-enabled".to_owned(),
                    "yes".to_owned(),
                    "--cluster-config-file".to_owned(),
                    "nodes.conf".to_owned(),
                    "--cluster-port".to_owned(),
                    bus,
                ];
                let args: Vec<&str> = args.iter().map(String::as_str).collect();
                let server = RedisServer::start_with(None, &args);
                TlsServer {
                    server,
                    tls_port: tls_port.parse().unwrap(),
                }
            })
            .collect();
        let mut create = Command::new("redis-cli");
        create
            .arg("--tls")
            .arg("--cacert")
            .arg(certs.ca())
            .arg("--cert")
            .arg(certs.client_cert())
            .arg("--key")
            .arg(certs.client_key())
            .args(["--cluster", "create"]);
        for n in &nodes {
            create.arg(format!("127.0.0.1:{}", n.tls_port));
        }
        let out = create
            .args(["--cluster-replicas", "0", "--cluster-yes"])
            .output()
            .expect("redis-cli must be installed");
        assert!(
            out.status.success(),
            "redis-cli --cluster create over TLS failed: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        let cluster = Self { nodes };
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
        while !cluster.healthy() {
            assert!(
                std::time::Instant::now() < deadline,
                "the TLS cluster did not become healthy"
            );
            std::thread::sleep(std::time::Duration::from_millis(100));
        }
        cluster
    }

    fn healthy(&self) -> bool {
        self.nodes.iter().all(|n| {
            let info: Option<String> = redis::cmd("CLUSTER")
                .arg("INFO")
                .query(&mut n.server.conn())
                .ok();
            info.is_some_and(|i| {
                i.contains("cluster_state:ok") && i.contains("cluster_slots_assigned:16384")
            })
        })
    }

    /// Comma-separated `rediss://` seed URLs of every node (`REDIS_URL`).
    pub fn urls(&self) -> String {
        self.nodes
            .iter()
            .map(TlsServer::url)
            .collect::<Vec<_>>()
            .join(",")
    }
}
