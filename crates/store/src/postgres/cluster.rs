//! A private PostgreSQL server for tests and benchmarks: `initdb` and `pg_ctl` (Debian's
//! `postgresql` package) on a temporary directory, listening on a free loopback port only,
//! its unix socket in that directory, trusting local connections (nothing outside the machine
//! can reach it). One per process is shared ([`PrivateCluster::shared`]); each test takes a
//! fresh database of it ([`PrivateCluster::fresh_database`]).
//!
//! It lives in the store crate, public, so the store's, the server's and the CLI's tests and
//! `smartlic bench` start PostgreSQL the same way. It uses the standard library only (processes
//! and files), so it adds no dependency to the store; the server is stopped (`pg_ctl stop -m
//! immediate`) and its directory removed by a small watchdog process once the process that
//! started it has ended, however it ended.

use crate::PostgresUrl;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::OnceLock;

/// The superuser the cluster is created with.
const SUPERUSER: &str = "postgres";

pub struct PrivateCluster {
    /// The temporary directory: `data` (the cluster), `log`, and the unix socket.
    dir: PathBuf,
    bin: PathBuf,
    port: u16,
    /// Run the server tools as the `postgres` user (PostgreSQL refuses to run as root).
    as_postgres: bool,
    databases: AtomicU64,
}

impl PrivateCluster {
    /// The process's cluster, started at the first call. When the PostgreSQL tools are missing
    /// or it cannot start, None after saying why on stderr (the caller's test is ignored),
    /// unless `SMARTLIC_REQUIRE_POSTGRES` is set (as `.ci/run` does): then it panics, failing
    /// the test.
    pub fn shared() -> Option<&'static PrivateCluster> {
        static CLUSTER: OnceLock<Result<PrivateCluster, String>> = OnceLock::new();
        match CLUSTER.get_or_init(PrivateCluster::start) {
            Ok(cluster) => Some(cluster),
            Err(why) => {
                assert!(std::env::var_os("SMARTLIC_REQUIRE_POSTGRES").is_none(), "PostgreSQL is required: {why}");
                eprintln!("ignored: {why} (apt-get install postgresql)");
                None
            }
        }
    }

    /// Creates and starts a new cluster; it stops when this process has ended.
    pub fn start() -> Result<PrivateCluster, String> {
        let bin = tools()?;
        let as_postgres = running_as_root();
        let dir = std::env::temp_dir().join(format!("smartlic-pg-{}-{}", std::process::id(), unique()));
        std::fs::create_dir_all(&dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
        let port = free_port()?;
        let cluster = PrivateCluster { dir, bin, port, as_postgres, databases: AtomicU64::new(0) };
        if as_postgres {
            run(Command::new("chown").args([&format!("{SUPERUSER}:{SUPERUSER}"), &cluster.dir.display().to_string()]))?;
        }
        cluster.watchdog()?;
        let data = cluster.dir.join("data");
        run(cluster
            .server_tool("initdb")
            .args(["-U", SUPERUSER, "--auth=trust", "--encoding=UTF8", "--locale=C", "--lc-ctype=C.UTF-8", "-D"])
            .arg(&data))?;
        let options =
            format!("-c listen_addresses=127.0.0.1 -p {port} -k {} -c max_connections=300", cluster.dir.display());
        run(cluster
            .server_tool("pg_ctl")
            .args(["start", "-w", "-t", "60", "-D"])
            .arg(&data)
            .arg("-l")
            .arg(cluster.dir.join("log"))
            .args(["-o", &options]))?;
        Ok(cluster)
    }

    /// A new, empty database of the cluster, owned by the superuser.
    pub fn fresh_database(&self) -> Result<PostgresUrl, String> {
        let n = self.databases.fetch_add(1, Ordering::SeqCst);
        let database = format!("smartlic_{}_{n}", std::process::id());
        run(Command::new(self.bin.join("createdb"))
            .args(["-h", "127.0.0.1", "-p", &self.port.to_string(), "-U", SUPERUSER])
            .arg(&database))?;
        Ok(self.url(&database))
    }

    /// Runs `sql` in the database `url` names, as its superuser (tests use it to change data
    /// behind the store's back, as a damaged database would hold it).
    pub fn execute(&self, url: &PostgresUrl, sql: &str) -> Result<(), String> {
        self.query(url, sql).map(drop)
    }

    /// Runs `sql` as [`execute`](Self::execute) does; answers its rows unaligned, one a line,
    /// columns separated by `|`.
    pub fn query(&self, url: &PostgresUrl, sql: &str) -> Result<String, String> {
        output(
            Command::new(self.bin.join("psql"))
                .args(["-h", "127.0.0.1", "-p", &self.port.to_string(), "-U", &url.user, "-d", &url.database])
                .args(["-v", "ON_ERROR_STOP=1", "-q", "-t", "-A", "-c", sql]),
        )
    }

    /// Where database `name` of the cluster is.
    pub fn url(&self, name: &str) -> PostgresUrl {
        PostgresUrl {
            user: SUPERUSER.into(),
            password: None,
            host: "127.0.0.1".into(),
            port: self.port,
            database: name.into(),
        }
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// A tool that must not run as root: as the `postgres` user when this process is root.
    fn server_tool(&self, name: &str) -> Command {
        let tool = self.bin.join(name);
        let mut command = if self.as_postgres {
            let mut c = Command::new("runuser");
            c.args(["-u", SUPERUSER, "--"]).arg(tool);
            c
        } else {
            Command::new(tool)
        };
        command.stdin(Stdio::null());
        command
    }

    /// Starts a shell that waits for this process to end, then stops the server at once and
    /// removes its directory: a test process ends without running destructors of statics, and
    /// may be killed.
    fn watchdog(&self) -> Result<(), String> {
        let stop = self.server_tool("pg_ctl");
        let stop = std::iter::once(stop.get_program())
            .chain(stop.get_args())
            .map(|a| shell_quote(&a.to_string_lossy()))
            .collect::<Vec<_>>()
            .join(" ");
        let dir = shell_quote(&self.dir.display().to_string());
        let script = format!(
            "while kill -0 {pid} 2>/dev/null; do sleep 1; done; {stop} stop -m immediate -D {dir}/data; rm -rf {dir}",
            pid = std::process::id()
        );
        // Its own process group, so a signal to the test's group (Ctrl-C, a timeout) leaves it
        // to clean up after the test.
        Command::new("sh")
            .process_group(0)
            .args(["-c", &script])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .map(drop)
            .map_err(|e| format!("cannot start the cluster's watchdog: {e}"))
    }
}

/// The directory holding `initdb`, `pg_ctl`, `createdb` and `psql`: on PATH, or Debian's newest
/// `/usr/lib/postgresql/*/bin`.
fn tools() -> Result<PathBuf, String> {
    let on_path = std::env::var_os("PATH").map(|p| std::env::split_paths(&p).collect::<Vec<_>>()).unwrap_or_default();
    let mut debian: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .map(|entries| entries.filter_map(|e| e.ok()).map(|e| e.path().join("bin")).collect())
        .unwrap_or_default();
    debian.sort_by_key(|p| version_of(p));
    on_path
        .into_iter()
        .chain(debian.into_iter().rev())
        .find(|dir| ["initdb", "pg_ctl", "createdb", "psql"].iter().all(|t| dir.join(t).is_file()))
        .ok_or_else(|| "PostgreSQL's initdb, pg_ctl, createdb and psql are not installed".into())
}

/// The major version a Debian directory `/usr/lib/postgresql/N/bin` is of.
fn version_of(bin: &Path) -> u32 {
    bin.parent().and_then(|p| p.file_name()).and_then(|n| n.to_str()).and_then(|n| n.parse().ok()).unwrap_or(0)
}

/// Whether this process runs as root (its real user id in /proc is 0).
fn running_as_root() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| s.lines().find(|l| l.starts_with("Uid:")).map(|l| l.split_whitespace().nth(1) == Some("0")))
        .unwrap_or(false)
}

fn free_port() -> Result<u16, String> {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").map_err(|e| format!("no free loopback port: {e}"))?;
    listener.local_addr().map(|a| a.port()).map_err(|e| e.to_string())
}

/// A number no other cluster of this process used.
fn unique() -> u64 {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    NEXT.fetch_add(1, Ordering::SeqCst)
}

fn shell_quote(text: &str) -> String {
    format!("'{}'", text.replace('\'', "'\\''"))
}

/// Runs a tool to its end; its output is the error when it fails.
fn run(command: &mut Command) -> Result<(), String> {
    output(command).map(drop)
}

/// Runs `command` to its end; answers its standard output, or an error with both outputs.
fn output(command: &mut Command) -> Result<String, String> {
    let program = command.get_program().to_string_lossy().into_owned();
    let out = command.stdin(Stdio::null()).output().map_err(|e| format!("cannot run {program}: {e}"))?;
    if out.status.success() {
        return Ok(String::from_utf8_lossy(&out.stdout).into_owned());
    }
    Err(format!(
        "{program} failed ({}): {}{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    ))
}
