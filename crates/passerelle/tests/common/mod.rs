//! What the binary's tests share: the command on a throwaway data dir (the embedded default,
//! whatever the environment says), and `serve` started on a free port.

#![allow(dead_code, clippy::unwrap_used)]

use std::{
    io::{BufRead, BufReader},
    process::{Child, Command, Stdio},
};

/// `passerelle` run in `dir`, with its data in `dir/data` and no database or Redis from the
/// environment.
pub fn passerelle(dir: &std::path::Path) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_passerelle"));
    command
        .current_dir(dir)
        .env_remove("DATABASE_URL")
        .env_remove("REDIS_URL")
        .env_remove("PASSERELLE_MIGRATION_DATABASE_URL")
        .env_remove("RUST_BACKTRACE")
        .env("PASSERELLE_DATA_DIR", dir.join("data"))
        .env("PASSERELLE_LOG_FORMAT", "json");
    command
}

/// A directory removed when the test ends.
pub struct Dir(pub std::path::PathBuf);

impl Drop for Dir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

pub fn temp_dir() -> Dir {
    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos();
    let dir = std::env::temp_dir().join(format!("passerelle-bin-{}-{nanos}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    Dir(dir)
}

/// A running `passerelle serve`, killed when dropped.
pub struct Server {
    pub child: Child,
    /// What it printed first (the line with the URL).
    pub banner: String,
    /// `http://127.0.0.1:PORT/graphql`.
    pub url: String,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts `serve` on a free port from `command` (its environment and stderr already set) and
/// waits for the line that says where it listens.
pub async fn serve(mut command: Command) -> Server {
    let mut child =
        command.args(["serve", "--listen", "127.0.0.1:0"]).stdout(Stdio::piped()).spawn().unwrap();
    let stdout = child.stdout.take().unwrap();
    let banner = tokio::task::spawn_blocking(move || {
        let mut line = String::new();
        BufReader::new(stdout).read_line(&mut line).unwrap();
        line
    })
    .await
    .unwrap();
    let url = banner.split_whitespace().find(|w| w.starts_with("http://")).unwrap().to_owned();
    Server { child, banner, url }
}
