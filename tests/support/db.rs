//! Real MariaDB and PostgreSQL servers for the shared-store tests: each on
//! a free loopback port with a private data directory in a temp dir, a
//! password user, stopped (and the directory removed) when dropped. Like
//! `redis.rs`, nothing is mocked; a missing server binary fails the test
//! with the command that installs it.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub const USER: &str = "llm";
pub const PASSWORD: &str = "pw-Secret-4711";
const INSTALL: &str = "run ./scripts/bootstrap test (it installs mariadb-server and postgresql)";

fn free_port() -> u16 {
    let probe = std::net::TcpListener::bind("127.0.0.1:0").expect("free port");
    probe.local_addr().expect("addr").port()
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
        .unwrap_or(false)
}

/// `name` on the PATH or in one of `dirs`.
fn find(name: &str, dirs: &[PathBuf]) -> Option<PathBuf> {
    std::env::var_os("PATH")
        .iter()
        .flat_map(std::env::split_paths)
        .chain(dirs.iter().cloned())
        .map(|d| d.join(name))
        .find(|p| p.is_file())
}

fn run(cmd: &mut Command, what: &str) {
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("{what}: cannot run: {e}"));
    assert!(
        out.status.success(),
        "{what} failed ({}):\n{}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Wait until `url` accepts a real login (a TCP accept is not enough: both
/// servers accept while still starting).
async fn wait_login(url: &str, log: &Path, child: &mut Child) {
    use sqlx::Connection;
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let ok = if url.starts_with("mysql") {
            sqlx::MySqlConnection::connect(url).await.map(|_| ()).err()
        } else {
            sqlx::PgConnection::connect(url).await.map(|_| ()).err()
        };
        let Some(e) = ok else { return };
        if let Ok(Some(status)) = child.try_wait() {
            panic!(
                "database server exited ({status}); log:\n{}",
                std::fs::read_to_string(log).unwrap_or_default()
            );
        }
        assert!(
            Instant::now() < deadline,
            "database server not ready: {e}; log:\n{}",
            std::fs::read_to_string(log).unwrap_or_default()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// A MariaDB (or MySQL) server with database `llm` and user `llm`.
pub struct MariaDb {
    child: Option<Child>,
    pub port: u16,
    dir: tempfile::TempDir,
    server: PathBuf,
}

impl MariaDb {
    pub async fn start() -> MariaDb {
        let sbin = [PathBuf::from("/usr/sbin"), PathBuf::from("/usr/bin")];
        let server = find("mariadbd", &sbin)
            .or_else(|| find("mysqld", &sbin))
            .unwrap_or_else(|| panic!("mariadbd/mysqld not found: {INSTALL}"));
        let install = find("mariadb-install-db", &sbin)
            .or_else(|| find("mysql_install_db", &sbin))
            .unwrap_or_else(|| panic!("mariadb-install-db not found: {INSTALL}"));
        let dir = tempfile::tempdir().expect("temp dir");
        let data = dir.path().join("data");
        {
            // Two bootstraps at once on two cores sometimes fail; one at a
            // time, and a second try after a failure.
            static INSTALLING: std::sync::Mutex<()> = std::sync::Mutex::new(());
            let _one = INSTALLING.lock().unwrap_or_else(|e| e.into_inner());
            for attempt in 0..2 {
                let _ = std::fs::remove_dir_all(&data);
                let mut cmd = Command::new(&install);
                cmd.arg("--no-defaults")
                    .arg(format!("--datadir={}", data.display()))
                    .arg("--auth-root-authentication-method=normal")
                    .arg("--skip-test-db");
                if is_root() {
                    cmd.arg("--user=root");
                }
                if attempt == 1 {
                    run(&mut cmd, "mariadb-install-db");
                } else if cmd.output().is_ok_and(|o| o.status.success()) {
                    break;
                }
            }
        }
        let mut db = MariaDb {
            child: None,
            port: free_port(),
            dir,
            server,
        };
        db.spawn().await;
        // Root has no password on this private server; the gateway uses a
        // password user, as in production.
        let root = format!("mysql://root@127.0.0.1:{}/mysql", db.port);
        let mut conn = {
            use sqlx::Connection;
            sqlx::MySqlConnection::connect(&root)
                .await
                .expect("root login")
        };
        for sql in [
            "CREATE DATABASE llm".to_string(),
            format!("CREATE USER '{USER}'@'%' IDENTIFIED BY '{PASSWORD}'"),
            format!("GRANT ALL ON llm.* TO '{USER}'@'%'"),
        ] {
            sqlx::raw_sql(&sql).execute(&mut conn).await.expect(&sql);
        }
        db
    }

    async fn spawn(&mut self) {
        let data = self.dir.path().join("data");
        let log = self.dir.path().join("server.log");
        let mut cmd = Command::new(&self.server);
        cmd.arg("--no-defaults")
            .arg(format!("--datadir={}", data.display()))
            .arg(format!("--port={}", self.port))
            .arg("--bind-address=127.0.0.1")
            .arg(format!(
                "--socket={}",
                self.dir.path().join("sock").display()
            ))
            .arg(format!(
                "--pid-file={}",
                self.dir.path().join("pid").display()
            ))
            .arg(format!("--log-error={}", log.display()))
            .arg("--skip-name-resolve")
            .arg("--skip-log-bin")
            .arg("--innodb-buffer-pool-size=32M")
            .arg("--innodb-flush-log-at-trx-commit=2")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        if is_root() {
            cmd.arg("--user=root");
        }
        let mut child = cmd
            .spawn()
            .unwrap_or_else(|e| panic!("start {}: {e}; {INSTALL}", self.server.display()));
        wait_login(
            &format!("mysql://root@127.0.0.1:{}/mysql", self.port),
            &log,
            &mut child,
        )
        .await;
        self.child = Some(child);
    }

    /// `mysql://llm:…@127.0.0.1:PORT/llm`
    pub fn url(&self) -> String {
        format!("mysql://{USER}:{PASSWORD}@127.0.0.1:{}/llm", self.port)
    }

    /// Kill the server (an outage); the data stays.
    pub fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Start it again on the same port and data.
    pub async fn restart(&mut self) {
        self.stop();
        self.spawn().await;
    }
}

impl Drop for MariaDb {
    fn drop(&mut self) {
        self.stop();
    }
}

/// A PostgreSQL server whose superuser is `llm` with a password (scram),
/// database `postgres`. Run as an unprivileged user when the tests run as
/// root (PostgreSQL refuses to run as root).
pub struct Postgres {
    child: Option<Child>,
    pub port: u16,
    dir: tempfile::TempDir,
    bin: PathBuf,
}

/// `PG_BIN`, else the newest /usr/lib/postgresql/*/bin (Debian's layout,
/// not on the PATH), else the PATH.
fn pg_bin() -> PathBuf {
    if let Some(dir) = std::env::var_os("PG_BIN") {
        return PathBuf::from(dir);
    }
    let mut versions: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| {
            let v = e.file_name().to_string_lossy().parse::<u32>().ok()?;
            let bin = e.path().join("bin");
            bin.join("postgres").is_file().then_some((v, bin))
        })
        .collect();
    versions.sort();
    if let Some((_, bin)) = versions.pop() {
        return bin;
    }
    find("postgres", &[])
        .and_then(|p| p.parent().map(Path::to_path_buf))
        .unwrap_or_else(|| panic!("postgres not found: {INSTALL}"))
}

impl Postgres {
    pub async fn start() -> Postgres {
        let bin = pg_bin();
        assert!(
            bin.join("initdb").is_file(),
            "initdb not found in {}: {INSTALL}",
            bin.display()
        );
        let dir = tempfile::tempdir().expect("temp dir");
        let pwfile = dir.path().join("pw");
        std::fs::write(&pwfile, PASSWORD).expect("pw file");
        if is_root() {
            // The server runs as `nobody`: it must own its directory.
            run(
                Command::new("chown")
                    .args(["-R", "65534:65534"])
                    .arg(dir.path()),
                "chown the PostgreSQL directory",
            );
        }
        let mut cmd = as_server_user(&bin.join("initdb"));
        cmd.arg("-D")
            .arg(dir.path().join("data"))
            .args([
                "-U",
                USER,
                "--auth-local=trust",
                "--auth-host=scram-sha-256",
            ])
            .arg(format!("--pwfile={}", pwfile.display()))
            .args(["-E", "UTF8", "--locale=C.UTF-8", "--no-sync"])
            .env("LC_ALL", "C.UTF-8");
        run(&mut cmd, "initdb");
        let mut pg = Postgres {
            child: None,
            port: free_port(),
            dir,
            bin,
        };
        pg.spawn().await;
        pg
    }

    async fn spawn(&mut self) {
        let log = self.dir.path().join("server.log");
        let logfile = std::fs::File::create(&log).expect("log file");
        if is_root() {
            let _ = Command::new("chown")
                .args(["65534:65534"])
                .arg(&log)
                .status();
        }
        let mut cmd = as_server_user(&self.bin.join("postgres"));
        cmd.arg("-D")
            .arg(self.dir.path().join("data"))
            .args(["-p", &self.port.to_string()])
            .arg("-k")
            .arg(self.dir.path())
            .args([
                "-c",
                "listen_addresses=127.0.0.1",
                "-c",
                "fsync=off",
                "-c",
                "shared_buffers=16MB",
                "-c",
                "max_connections=60",
            ])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::from(logfile));
        let mut child = cmd
            .spawn()
            .unwrap_or_else(|e| panic!("start postgres: {e}; {INSTALL}"));
        wait_login(&self.url(), &log, &mut child).await;
        self.child = Some(child);
    }

    /// `postgres://llm:…@127.0.0.1:PORT/postgres`
    pub fn url(&self) -> String {
        format!(
            "postgres://{USER}:{PASSWORD}@127.0.0.1:{}/postgres",
            self.port
        )
    }

    /// Stop the server at once (an outage); the data stays.
    pub fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            // SIGINT: "fast" shutdown, which also ends the backends. A
            // SIGKILLed postmaster leaves them running for a while.
            let _ = Command::new("kill")
                .args(["-INT", &c.id().to_string()])
                .status();
            let deadline = Instant::now() + Duration::from_secs(10);
            while Instant::now() < deadline {
                if let Ok(Some(_)) = c.try_wait() {
                    return;
                }
                std::thread::sleep(Duration::from_millis(20));
            }
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    pub async fn restart(&mut self) {
        self.stop();
        self.spawn().await;
    }
}

impl Drop for Postgres {
    fn drop(&mut self) {
        self.stop();
    }
}

/// The command, run as `nobody` when we are root (`setpriv` execs, so the
/// child's pid is the server's).
fn as_server_user(program: &Path) -> Command {
    if is_root() {
        let mut cmd = Command::new("setpriv");
        cmd.args(["--reuid=65534", "--regid=65534", "--clear-groups"])
            .arg(program);
        cmd
    } else {
        Command::new(program)
    }
}
