//! A test harness that runs the real `oddity` binary and talks HTTP to it.
#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

/// A running `oddity serve`, killed when dropped.
pub struct TestServer {
    pub child: Child,
    pub base: String,
    pub data_dir: PathBuf,
}

impl TestServer {
    /// Starts `oddity serve` on a free port with `data_dir` and extra arguments, and waits until
    /// it listens.
    pub fn start(data_dir: &Path, extra: &[&str]) -> TestServer {
        let mut child = Command::new(env!("CARGO_BIN_EXE_oddity"))
            .args(["serve", "--listen", "127.0.0.1:0", "--data-dir"])
            .arg(data_dir)
            .args(extra)
            .env("ODDITY_LOG", "warn")
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("oddity binary should start");
        let stdout = child.stdout.take().expect("stdout is piped");
        let mut lines = BufReader::new(stdout).lines();
        let deadline = Instant::now() + Duration::from_secs(60);
        let base = loop {
            assert!(
                Instant::now() < deadline,
                "server did not report its address in time"
            );
            match lines.next() {
                Some(Ok(line)) => {
                    if let Some(addr) = line.strip_prefix("oddity listening on ") {
                        break addr.trim().to_owned();
                    }
                }
                _ => panic!("server exited before listening"),
            }
        };
        // Keep draining stdout so the child never blocks on a full pipe.
        std::thread::spawn(move || for _ in lines {});
        TestServer {
            child,
            base,
            data_dir: data_dir.to_owned(),
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// Sends SIGTERM and waits for the exit status.
    pub fn terminate(mut self) -> std::process::ExitStatus {
        let pid = self.child.id().to_string();
        // The shell's built-in `kill`: no dependency on a kill binary being installed.
        let _ = Command::new("sh")
            .args(["-c", &format!("kill -TERM {pid}")])
            .status();
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if let Some(status) = self.child.try_wait().expect("child should be waitable") {
                return status;
            }
            assert!(
                Instant::now() < deadline,
                "server did not stop after SIGTERM"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// `kill -9`.
    pub fn kill9(mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .build()
        .expect("client should build")
}

/// GET a JSON document, asserting 200.
pub async fn get_json(client: &reqwest::Client, url: &str) -> Value {
    let resp = client
        .get(url)
        .send()
        .await
        .expect("GET should reach the server");
    let status = resp.status();
    let body: Value = resp.json().await.expect("response should be JSON");
    assert_eq!(status, 200, "GET {url}: {body}");
    body
}

/// Polls until every acknowledged event is processed (lag 0).
pub async fn wait_until_caught_up(client: &reqwest::Client, server: &TestServer) {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let stats = get_json(client, &server.url("/v1/stats")).await;
        if stats["lag"] == 0 {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "pipeline did not catch up: {stats}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
