//! Throwaway PostgreSQL clusters for tests, on 127.0.0.1 and a free port.
//!
//! `initdb` runs once per machine into a template directory; every test copies the template and
//! starts its own `postgres`, so tests never share state and need no running server. As root
//! (CI), the binaries refuse to run, so they run as the `postgres` user through `runuser`. In CI
//! (`CI=true`) missing binaries fail the test; elsewhere the test says loudly that it skipped.

use std::{
    path::{Path, PathBuf},
    process::{Command, Stdio},
};

/// A running cluster; stopped and deleted on drop.
pub struct PgCluster {
    bin: PathBuf,
    data: PathBuf,
    pub port: u16,
}

fn bin_dir() -> Option<PathBuf> {
    let mut found: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .ok()?
        .filter_map(|e| e.ok().map(|e| e.path().join("bin")))
        .filter(|bin| bin.join("initdb").exists() && bin.join("pg_ctl").exists())
        .collect();
    found.sort();
    found.pop()
}

fn as_root() -> bool {
    // SAFETY-free check: root's home and id are what `id -u` reports.
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
}

/// Runs a PostgreSQL binary, as the `postgres` user when we are root.
fn pg_command(bin: &Path, tool: &str) -> Command {
    if as_root() {
        let mut c = Command::new("runuser");
        c.args(["-u", "postgres", "--"]).arg(bin.join(tool));
        c
    } else {
        Command::new(bin.join(tool))
    }
}

fn run(mut cmd: Command, what: &str) {
    let out = cmd
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("{what}: {e}"));
    assert!(
        out.status.success(),
        "{what} failed:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

fn give_to_postgres(path: &Path) {
    if as_root() {
        run(
            {
                let mut c = Command::new("chown");
                c.args(["-R", "postgres:postgres"]).arg(path);
                c
            },
            "chown",
        );
    }
}

/// The machine-wide template, made once. Concurrent test processes may race to make it: each
/// builds its own copy and renames it into place; the loser's copy is discarded.
fn template(bin: &Path) -> PathBuf {
    let root = std::env::temp_dir().join("eventyay-bbb-pg");
    let template = root.join("template-v1");
    if template.join("PG_VERSION").exists() {
        return template;
    }
    std::fs::create_dir_all(&root).unwrap();
    give_to_postgres(&root);
    let building = root.join(format!("building-{}", uuid::Uuid::new_v4()));
    let mut initdb = pg_command(bin, "initdb");
    initdb.arg("-D").arg(&building).args([
        "-U",
        "postgres",
        "-A",
        "trust",
        "-E",
        "UTF8",
        "--no-sync",
        "--locale=C",
    ]);
    run(initdb, "initdb");
    if std::fs::rename(&building, &template).is_err() {
        let _ = std::fs::remove_dir_all(&building);
    }
    template
}

impl PgCluster {
    /// Starts a cluster, or returns `None` (having said so on stderr) when PostgreSQL is not
    /// installed outside CI.
    pub fn start() -> Option<Self> {
        let Some(bin) = bin_dir() else {
            if std::env::var("CI").is_ok_and(|v| v == "true") {
                panic!("PostgreSQL binaries are missing in CI: install the postgresql package");
            }
            crate::common::skip_loudly(
                "PostgreSQL binaries not found under /usr/lib/postgresql; \
                 install Debian's `postgresql` package to run the PostgreSQL half of the suite",
            );
            return None;
        };
        let template = template(&bin);
        let data = std::env::temp_dir()
            .join("eventyay-bbb-pg")
            .join(format!("cluster-{}", uuid::Uuid::new_v4()));
        run(
            {
                let mut c = Command::new("cp");
                c.arg("-a").arg(&template).arg(&data);
                c
            },
            "copy the template cluster",
        );
        give_to_postgres(&data);
        let port = super::free_port();
        let cluster = Self { bin, data, port };
        cluster.start_server();
        Some(cluster)
    }

    /// Starts (or restarts) the server on the same data and port.
    pub fn start_server(&self) {
        let options = format!(
            "-c listen_addresses=127.0.0.1 -p {} -k {} -c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=200",
            self.port,
            self.data.display()
        );
        let mut ctl = pg_command(&self.bin, "pg_ctl");
        ctl.arg("-D")
            .arg(&self.data)
            .args(["-w", "-t", "30", "-o", &options, "-l"])
            .arg(self.data.join("log"))
            .arg("start");
        run(ctl, "pg_ctl start");
    }

    /// Stops the server, keeping its data, as a restart does (clients are disconnected at once;
    /// committed data survives, which an immediate stop with `synchronous_commit=off` would not
    /// promise).
    pub fn stop_server(&self) {
        let mut ctl = pg_command(&self.bin, "pg_ctl");
        ctl.arg("-D")
            .arg(&self.data)
            .args(["-w", "-m", "fast", "stop"]);
        run(ctl, "pg_ctl stop");
    }

    /// A URL of a new, empty database on this cluster.
    pub fn new_database(&self) -> String {
        let name = format!("t_{}", uuid::Uuid::new_v4().simple());
        let mut psql = Command::new(self.bin.join("psql"));
        psql.args([
            "-h",
            "127.0.0.1",
            "-p",
            &self.port.to_string(),
            "-U",
            "postgres",
            "-d",
            "postgres",
            "-c",
        ])
        .arg(format!("CREATE DATABASE {name}"));
        run(psql, "create a database");
        self.url(&name)
    }

    pub fn url(&self, database: &str) -> String {
        format!("postgres://postgres@127.0.0.1:{}/{database}", self.port)
    }
}

impl Drop for PgCluster {
    fn drop(&mut self) {
        let mut ctl = pg_command(&self.bin, "pg_ctl");
        ctl.arg("-D")
            .arg(&self.data)
            .args(["-m", "immediate", "stop"])
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        let _ = ctl.status();
        let _ = std::fs::remove_dir_all(&self.data);
    }
}
