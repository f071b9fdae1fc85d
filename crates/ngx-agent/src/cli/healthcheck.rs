//! `ngx-agent healthcheck`: one HTTP/1.1 GET over a plain `std` socket to
//! the service's health endpoint, exit 0 on a 2xx answer and 1 otherwise.
//! No runtime, no configuration beyond `HTTP_ADDR`: a container's
//! `HEALTHCHECK CMD ["ngx-agent", "healthcheck"]` costs a few milliseconds.

use std::io::{Read as _, Write as _};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, TcpStream};
use std::process::ExitCode;
use std::time::Duration;

use super::{EnvArgs, Output};

/// Options of `healthcheck`.
#[derive(Debug, clap::Args)]
pub(crate) struct HealthcheckArgs {
    /// Check readiness (`/health/ready`: database up) instead of liveness (`/health`).
    #[arg(long)]
    ready: bool,
    /// Address to check (default: HTTP_ADDR, with 0.0.0.0 or [::] read as loopback).
    #[arg(long, value_name = "HOST:PORT")]
    addr: Option<SocketAddr>,
    /// Give up after this many milliseconds.
    #[arg(long, value_name = "MS", default_value_t = 2000)]
    timeout_ms: u64,
}

#[derive(serde::Serialize)]
struct Verdict {
    healthy: bool,
    url: String,
    status: Option<u16>,
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<String>,
}

pub(crate) fn run(args: &HealthcheckArgs, env: &EnvArgs, out: Output) -> ExitCode {
    let addr = match args.addr {
        Some(a) => Ok(a),
        None => {
            let raw = env
                .get("HTTP_ADDR")
                .unwrap_or_else(|| "127.0.0.1:8000".into());
            raw.trim()
                .parse::<SocketAddr>()
                .map_err(|_| format!("HTTP_ADDR: `{raw}` is not an address like 127.0.0.1:8000"))
        }
    };
    let path = if args.ready {
        "/health/ready"
    } else {
        "/health"
    };
    let verdict = match addr {
        Err(e) => Verdict {
            healthy: false,
            url: path.to_owned(),
            status: None,
            error: Some(e),
        },
        Ok(addr) => {
            let addr = loopback_for_wildcard(addr);
            let url = format!("http://{addr}{path}");
            match get_status(addr, path, Duration::from_millis(args.timeout_ms.max(1))) {
                Ok(code) => Verdict {
                    healthy: (200..300).contains(&code),
                    url,
                    status: Some(code),
                    error: None,
                },
                Err(e) => Verdict {
                    healthy: false,
                    url,
                    status: None,
                    error: Some(e.to_string()),
                },
            }
        }
    };
    out.print(&verdict, || match (&verdict.status, &verdict.error) {
        (Some(code), _) => println!(
            "{} {} -> {code}",
            if verdict.healthy {
                "healthy:"
            } else {
                "unhealthy:"
            },
            verdict.url
        ),
        (None, Some(e)) => println!("unhealthy: {} ({e})", verdict.url),
        (None, None) => println!("unhealthy: {}", verdict.url),
    });
    if verdict.healthy {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

/// A service listening on every interface is checked on loopback.
fn loopback_for_wildcard(mut addr: SocketAddr) -> SocketAddr {
    match addr.ip() {
        IpAddr::V4(ip) if ip.is_unspecified() => addr.set_ip(IpAddr::V4(Ipv4Addr::LOCALHOST)),
        IpAddr::V6(ip) if ip.is_unspecified() => addr.set_ip(IpAddr::V6(Ipv6Addr::LOCALHOST)),
        _ => {}
    }
    addr
}

/// Sends `GET path` and returns the status code of the answer.
fn get_status(addr: SocketAddr, path: &str, timeout: Duration) -> std::io::Result<u16> {
    let mut stream = TcpStream::connect_timeout(&addr, timeout)?;
    stream.set_read_timeout(Some(timeout))?;
    stream.set_write_timeout(Some(timeout))?;
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\nUser-Agent: ngx-agent-healthcheck\r\n\r\n"
    )?;
    let mut head = [0u8; 64];
    let mut len = 0;
    while len < 12 {
        let n = stream.read(&mut head[len..])?;
        if n == 0 {
            break;
        }
        len += n;
    }
    // "HTTP/1.1 200 OK"
    std::str::from_utf8(&head[..len])
        .ok()
        .and_then(|line| line.split(' ').nth(1))
        .and_then(|code| code.get(..3)?.parse().ok())
        .ok_or_else(|| std::io::Error::other("not an HTTP answer"))
}
