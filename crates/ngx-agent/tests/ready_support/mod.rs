//! Waiting for a started `ngx-agent` binary to answer.

#![allow(dead_code, unreachable_pub)]

use std::process::Child;
use std::time::{Duration, Instant};

/// Polls `GET {base}/health/ready` (with `token` as the bearer) every
/// 100 ms until the service answers, and returns the body as text. Fails
/// the test when `child` exits first or nothing answers within 60 s.
pub async fn ready_body(child: &mut Child, base: &str, token: &str) -> String {
    let client = reqwest::Client::builder().no_proxy().build().unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if let Ok(r) = client
            .get(format!("{base}/health/ready"))
            .bearer_auth(token)
            .send()
            .await
        {
            return r.text().await.unwrap();
        }
        assert!(Instant::now() < deadline, "never answered");
        assert!(child.try_wait().unwrap().is_none(), "exited early");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// [`ready_body`] parsed as JSON.
pub async fn ready_json(child: &mut Child, base: &str, token: &str) -> serde_json::Value {
    let body = ready_body(child, base, token).await;
    serde_json::from_str(&body).unwrap_or_else(|e| panic!("{e}: {body}"))
}
