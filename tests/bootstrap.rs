//! `scripts/bootstrap` on a simulated fresh machine: the real script runs
//! under bash with a PATH that holds only the basic tools it uses plus
//! stand-ins for everything it checks or installs. The stand-in `apt-get`
//! records each call and "installs" a package by putting its commands on the
//! PATH; `python3 -m pip` and `npm` record their calls the same way. Nothing
//! is installed on the machine running the test.
//!
//! What must hold (the README's two set-up commands rely on it):
//! - `cargo` (and the minimum Rust version) is checked before anything is
//!   installed, with a message saying how to get Rust;
//! - `./scripts/bootstrap` installs only what building and running need;
//! - `./scripts/bootstrap test` adds the test tools;
//! - one `apt-get update`, only when something is missing, and a second run
//!   changes nothing.

use std::path::{Path, PathBuf};
use std::process::Command;

/// Commands each stand-in package provides when "installed".
const PACKAGES: &[(&str, &[&str])] = &[
    ("cmake", &["cmake"]),
    ("build-essential", &["cc", "make"]),
    ("redis-server", &["redis-server"]),
    ("openssl", &["openssl"]),
    ("mariadb-server", &["mariadb-install-db"]),
    ("postgresql", &["pg_ctlcluster"]),
    ("procps", &["kill"]),
    ("python3", &["python3"]),
    ("nodejs", &["node"]),
    ("npm", &["npm"]),
];

/// Real tools the script itself runs (everything else is a stand-in).
const BASE_TOOLS: &[&str] = &["sed", "head", "sort", "dirname", "env", "cat", "ln"];

const BUILD_PACKAGES: &[&str] = &["cmake", "build-essential"];
const TEST_PACKAGES: &[&str] = &[
    "redis-server",
    "openssl",
    "mariadb-server",
    "postgresql",
    "procps",
    "python3",
    "python3-pip",
    "nodejs",
    "npm",
    "chromium",
];

fn which(tool: &str) -> PathBuf {
    std::env::var_os("PATH")
        .iter()
        .flat_map(std::env::split_paths)
        .map(|dir| dir.join(tool))
        .find(|p| p.is_file())
        .unwrap_or_else(|| panic!("{tool} is not on this machine's PATH (the test needs it)"))
}

/// A simulated machine: `bin/` is its whole PATH.
struct Machine {
    dir: tempfile::TempDir,
    bash: PathBuf,
}

struct Run {
    code: Option<i32>,
    stderr: String,
}

impl Machine {
    /// A machine with the basic tools, `apt-get` and nothing else (no Rust).
    fn bare() -> Machine {
        let dir = tempfile::tempdir().expect("temporary directory");
        let bash = which("bash");
        let m = Machine { dir, bash };
        for sub in ["bin", "avail", "state"] {
            std::fs::create_dir(m.path(sub)).expect("create directory");
        }
        for tool in BASE_TOOLS {
            std::os::unix::fs::symlink(which(tool), m.path("bin").join(tool)).expect("link tool");
        }
        m.write_stubs();
        m.give("apt-get");
        m.give("id");
        m
    }

    /// A bare machine with Rust at `version`.
    fn with_rust(version: &str) -> Machine {
        let m = Machine::bare();
        m.give("cargo");
        m.give("rustc");
        std::fs::write(m.path("state/rustc-version"), version).expect("write version");
        m
    }

    fn path(&self, rel: &str) -> PathBuf {
        self.dir.path().join(rel)
    }

    fn stub(&self, name: &str, body: &str) {
        let path = self.path("avail").join(name);
        let script = format!("#!{}\nS=\"$STUB\"\n{body}\n", self.bash.display());
        std::fs::write(&path, script).expect("write stub");
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755))
            .expect("chmod stub");
    }

    fn write_stubs(&self) {
        self.stub("cargo", "exit 0");
        self.stub(
            "rustc",
            r#"echo "rustc $(cat "$S/state/rustc-version") (stub 2026-01-01)""#,
        );
        // Runs as root, whoever runs the test, so no sudo is involved.
        self.stub("id", r#"[ "$1" = -u ] && echo 0"#);
        let mut provides = String::new();
        for (package, commands) in PACKAGES {
            let links: Vec<String> = commands
                .iter()
                .map(|c| format!(r#"ln -sf "$S/avail/{c}" "$S/bin/{c}""#))
                .collect();
            provides.push_str(&format!("    {package}) {} ;;\n", links.join("; ")));
        }
        self.stub(
            "apt-get",
            &format!(
                r#"echo "apt-get $*" >> "$S/log"
[ "$1" = install ] || exit 0
for p in "$@"; do
  case "$p" in
{provides}    python3-pip) : > "$S/state/pip" ;;
    chromium) ln -sf "$S/avail/chromium" "$CHROMIUM" ;;
  esac
done"#
            ),
        );
        for c in [
            "cmake",
            "cc",
            "make",
            "redis-server",
            "openssl",
            "mariadb-install-db",
            "pg_ctlcluster",
            "kill",
            "chromium",
        ] {
            self.stub(c, "exit 0");
        }
        self.stub(
            "python3",
            r#"if [ "$1" = -m ] && [ "$2" = pip ]; then
  [ -e "$S/state/pip" ] || exit 1
  [ "$3" = --version ] && exit 0
  echo "pip ${*:3}" >> "$S/log"; : > "$S/state/sdks"; exit 0
fi
[ "$1" = -c ] && { [ -e "$S/state/sdks" ]; exit; }
exit 0"#,
        );
        self.stub(
            "node",
            r#"[ "$1" = -e ] && { [ -e "$S/state/npm-${PWD##*/}" ]; exit; }
exit 0"#,
        );
        self.stub(
            "npm",
            r#"echo "npm $* (in $(basename "$PWD"))" >> "$S/log"; : > "$S/state/npm-${PWD##*/}""#,
        );
    }

    /// Puts a stand-in on the PATH, as if it were installed.
    fn give(&self, name: &str) {
        std::os::unix::fs::symlink(self.path("avail").join(name), self.path("bin").join(name))
            .expect("link stub");
    }

    fn take(&self, name: &str) {
        std::fs::remove_file(self.path("bin").join(name)).expect("remove from PATH");
    }

    /// Everything the test set-up would otherwise install, already present.
    fn give_everything(&self) {
        for (_, commands) in PACKAGES {
            for c in *commands {
                self.give(c);
            }
        }
        std::os::unix::fs::symlink(self.path("avail/chromium"), self.path("chromium"))
            .expect("link chromium");
        for marker in ["pip", "sdks", "npm-console", "npm-agents"] {
            std::fs::write(self.path("state").join(marker), "").expect("marker");
        }
    }

    fn bootstrap(&self, args: &[&str]) -> Run {
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/bootstrap");
        let out = Command::new(&self.bash)
            .arg(script)
            .args(args)
            .env_clear()
            .env("PATH", self.path("bin"))
            .env("HOME", self.dir.path())
            .env("STUB", self.dir.path())
            .env("CHROMIUM", self.path("chromium"))
            .output()
            .expect("bash runs");
        Run {
            code: out.status.code(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        }
    }

    fn log(&self) -> Vec<String> {
        std::fs::read_to_string(self.path("log"))
            .unwrap_or_default()
            .lines()
            .map(str::to_string)
            .collect()
    }
}

/// The packages the host running the test would add for the CA roots (the
/// script checks the real file; it cannot be simulated).
fn host_extra() -> Vec<&'static str> {
    let present = std::fs::metadata("/etc/ssl/certs/ca-certificates.crt")
        .map(|m| m.len() > 0)
        .unwrap_or(false);
    if present {
        vec![]
    } else {
        vec!["ca-certificates"]
    }
}

fn install_line(packages: &[&str]) -> String {
    format!("apt-get install -y -qq {}", packages.join(" "))
}

#[test]
fn cargo_is_checked_before_anything_is_installed() {
    for args in [&[][..], &["test"][..]] {
        let m = Machine::bare();
        let run = m.bootstrap(args);
        assert_eq!(run.code, Some(1), "bootstrap {args:?}: {}", run.stderr);
        assert!(
            run.stderr.contains("cargo is not installed") && run.stderr.contains("rustup.rs"),
            "bootstrap {args:?} must say how to install Rust: {}",
            run.stderr
        );
        assert_eq!(
            m.log(),
            Vec::<String>::new(),
            "bootstrap {args:?} installed before checking cargo"
        );
    }
}

#[test]
fn a_rust_older_than_the_manifest_minimum_is_refused_first() {
    let m = Machine::with_rust("1.70.0");
    let run = m.bootstrap(&[]);
    assert_eq!(run.code, Some(1), "{}", run.stderr);
    assert!(run.stderr.contains("rustup update"), "{}", run.stderr);
    assert_eq!(m.log(), Vec::<String>::new());

    // The minimum itself (Cargo.toml's rust-version) is accepted.
    let manifest =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("Cargo.toml"))
            .expect("read Cargo.toml");
    let minimum = manifest
        .lines()
        .find_map(|l| l.strip_prefix("rust-version = \""))
        .and_then(|rest| rest.split('"').next())
        .expect("Cargo.toml has a rust-version");
    let m = Machine::with_rust(&format!("{minimum}.0"));
    let run = m.bootstrap(&[]);
    assert_eq!(run.code, Some(0), "Rust {minimum}: {}", run.stderr);
}

#[test]
fn the_run_setup_installs_only_what_building_and_running_need() {
    let m = Machine::with_rust("1.95.0");
    let run = m.bootstrap(&[]);
    assert_eq!(run.code, Some(0), "{}", run.stderr);
    let mut packages = BUILD_PACKAGES.to_vec();
    packages.extend(host_extra());
    assert_eq!(
        m.log(),
        ["apt-get update -qq".to_string(), install_line(&packages)],
        "one update, then the build packages only (no test tools)"
    );
    for tool in ["cmake", "cc", "make"] {
        assert!(m.path("bin").join(tool).exists(), "{tool} installed");
    }

    // Everything present now: a second run does nothing at all.
    let before = m.log();
    let run = m.bootstrap(&[]);
    assert_eq!(run.code, Some(0), "{}", run.stderr);
    assert_eq!(m.log(), before, "second run changed something");
    assert_eq!(run.stderr, "", "second run printed something");
}

#[test]
fn the_test_setup_adds_the_test_tools_once() {
    let m = Machine::with_rust("1.95.0");
    // `basename` is only for the npm stand-in's log line.
    std::os::unix::fs::symlink(which("basename"), m.path("bin/basename")).expect("link basename");
    let run = m.bootstrap(&["test"]);
    assert_eq!(run.code, Some(0), "{}", run.stderr);
    let mut packages = BUILD_PACKAGES.to_vec();
    packages.extend(host_extra());
    packages.extend(TEST_PACKAGES);
    let log = m.log();
    assert_eq!(
        log,
        [
            "apt-get update -qq".to_string(),
            install_line(&packages),
            "pip install --quiet --disable-pip-version-check openai anthropic google-genai"
                .to_string(),
            "npm ci --no-audit --no-fund --loglevel=error (in console)".to_string(),
            "npm ci --no-audit --no-fund --loglevel=error (in agents)".to_string(),
        ],
        "one update, one install of every missing package, the SDKs, the npm packages of the console test and the agents"
    );

    let run = m.bootstrap(&["test"]);
    assert_eq!(run.code, Some(0), "{}", run.stderr);
    assert_eq!(m.log(), log, "second run changed something");
    assert_eq!(run.stderr, "", "second run printed something");
}

#[test]
fn only_what_is_missing_is_installed() {
    let m = Machine::with_rust("1.95.0");
    m.give_everything();
    let run = m.bootstrap(&["test"]);
    assert_eq!(run.code, Some(0), "{}", run.stderr);
    let mut expected = Vec::new();
    if !host_extra().is_empty() {
        expected = vec![
            "apt-get update -qq".to_string(),
            install_line(&host_extra()),
        ];
    }
    assert_eq!(m.log(), expected, "nothing missing, nothing installed");

    // One tool gone: exactly its package comes back.
    m.take("redis-server");
    let mut packages = host_extra();
    packages.push("redis-server");
    let before = m.log().len();
    let run = m.bootstrap(&["test"]);
    assert_eq!(run.code, Some(0), "{}", run.stderr);
    assert_eq!(
        m.log()[before..],
        ["apt-get update -qq".to_string(), install_line(&packages)]
    );
}

#[test]
fn without_apt_get_the_missing_packages_are_named() {
    let m = Machine::with_rust("1.95.0");
    m.take("apt-get");
    let run = m.bootstrap(&[]);
    assert_eq!(run.code, Some(1), "{}", run.stderr);
    assert!(
        run.stderr.contains("missing: cmake build-essential"),
        "{}",
        run.stderr
    );
}

#[test]
fn an_unknown_argument_is_a_usage_error() {
    let m = Machine::with_rust("1.95.0");
    for args in [&["tests"][..], &["test", "extra"][..]] {
        let run = m.bootstrap(args);
        assert_eq!(run.code, Some(2), "{args:?}: {}", run.stderr);
        assert!(run.stderr.contains("usage:"), "{}", run.stderr);
    }
    assert_eq!(m.log(), Vec::<String>::new());
}
