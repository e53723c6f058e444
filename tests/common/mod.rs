//! Shared helpers for end-to-end tests: start the real `tollgate` binary on port 0 with a
//! generated config, against a mock upstream on loopback, and stop it when the test ends.

#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use tempfile::TempDir;

/// A running gateway. Killed (SIGKILL) on drop unless stopped first.
pub struct Gateway {
    pub child: Option<Child>,
    pub url: String,
    pub dir: TempDir,
    pub stderr: std::sync::Arc<std::sync::Mutex<String>>,
}

pub struct GatewayBuilder {
    config: String,
    env: Vec<(String, String)>,
    args: Vec<String>,
    dir: Option<TempDir>,
}

impl GatewayBuilder {
    pub fn env(mut self, k: &str, v: &str) -> Self {
        self.env.push((k.into(), v.into()));
        self
    }

    pub fn arg(mut self, a: &str) -> Self {
        self.args.push(a.into());
        self
    }

    /// Reuse a folder (and so its SQLite database) from an earlier gateway.
    pub fn dir(mut self, dir: TempDir) -> Self {
        self.dir = Some(dir);
        self
    }

    pub fn start(self) -> Gateway {
        let dir = self
            .dir
            .unwrap_or_else(|| tempfile::tempdir().expect("tempdir"));
        let cfg_path = dir.path().join("config.yaml");
        std::fs::write(&cfg_path, &self.config).expect("write config");
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_tollgate"));
        cmd.arg("--config")
            .arg(&cfg_path)
            .args(["--host", "127.0.0.1", "--port", "0"])
            .args(&self.args)
            .env_remove("LITELLM_MASTER_KEY")
            .env_remove("DATABASE_URL")
            .env_remove("REDIS_URL")
            .env_remove("REDIS_HOST")
            .env("TOLLGATE_LOG", "info")
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        for (k, v) in &self.env {
            cmd.env(k, v);
        }
        let mut child = cmd.spawn().expect("start tollgate");
        let stdout = child.stdout.take().expect("stdout");
        let stderr = child.stderr.take().expect("stderr");
        let log = std::sync::Arc::new(std::sync::Mutex::new(String::new()));
        let log2 = log.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if let Ok(mut l) = log2.lock() {
                    l.push_str(&line);
                    l.push('\n');
                }
            }
        });
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if let Some(url) = line.strip_prefix("tollgate listening on ") {
                    let _ = tx.send(url.trim().to_owned());
                }
            }
        });
        let url = match rx.recv_timeout(Duration::from_secs(30)) {
            Ok(url) => url,
            Err(_) => {
                let _ = child.kill();
                let _ = child.wait();
                std::thread::sleep(Duration::from_millis(100));
                panic!(
                    "tollgate did not start; stderr:\n{}",
                    log.lock().map(|l| l.clone()).unwrap_or_default()
                );
            }
        };
        Gateway {
            child: Some(child),
            url,
            dir,
            stderr: log,
        }
    }
}

/// A gateway with this config.yaml text.
pub fn gateway(config: &str) -> GatewayBuilder {
    GatewayBuilder {
        config: config.to_owned(),
        env: Vec::new(),
        args: Vec::new(),
        dir: None,
    }
}

impl Gateway {
    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.url, path)
    }

    pub fn logs(&self) -> String {
        self.stderr.lock().map(|l| l.clone()).unwrap_or_default()
    }

    /// Sends SIGTERM and waits for a clean exit; returns the exit code.
    pub fn terminate(&mut self) -> Option<i32> {
        let child = self.child.as_mut()?;
        let pid = child.id().to_string();
        let _ = Command::new("kill").args(["-TERM", &pid]).status();
        for _ in 0..300 {
            if let Ok(Some(status)) = child.try_wait() {
                self.child = None;
                return status.code();
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!("tollgate did not exit within 15 s of SIGTERM");
    }

    /// Stops the gateway and hands back its folder (and database) for a restart.
    pub fn into_dir(mut self) -> TempDir {
        self.terminate();
        std::mem::replace(&mut self.dir, tempfile::tempdir().expect("tempdir"))
    }

    pub fn config_dir(&self) -> PathBuf {
        self.dir.path().to_path_buf()
    }
}

impl Drop for Gateway {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// A mock upstream (OpenAI + Anthropic shapes) served from this test process.
pub async fn mock_upstream() -> (String, tollgate::mock_upstream::MockState) {
    tollgate::mock_upstream::spawn()
        .await
        .expect("mock upstream")
}

pub fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(Duration::from_secs(60))
        .build()
        .expect("client")
}

/// A file of `shared/reference/`, which sits beside the checkout (CI lays a copy there): found by
/// walking up from the crate, as the Python suites do. Missing is a failure, not a skip.
pub fn reference_file(name: &str) -> std::path::PathBuf {
    let crate_dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    crate_dir
        .ancestors()
        .map(|p| p.join("shared").join("reference").join(name))
        .find(|p| p.is_file())
        .unwrap_or_else(|| panic!("shared/reference/{name} not found beside the checkout"))
}
