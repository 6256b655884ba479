//! Static checks of the container files — `Dockerfile`, `.dockerignore` and
//! `docker-compose.yml` — against `Cargo.toml` and the repository. No Docker
//! engine is needed: the files are read with plain string handling (a small
//! indentation parser for the subset of YAML the compose file uses).
//!
//! Every check is a function returning the problems it finds. Each one runs
//! on the real files, and `every_check_can_fail` runs each again on a copy
//! broken on purpose, so none of them can pass vacuously.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

type Problems = Vec<String>;
type Env = BTreeMap<String, String>;

// ================================================================ inputs

#[derive(Clone)]
struct Repo {
    root: PathBuf,
    cargo_toml: String,
    dockerfile: String,
    dockerignore: String,
    compose: String,
}

impl Repo {
    fn load() -> Repo {
        let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
        let read = |name: &str| {
            std::fs::read_to_string(root.join(name))
                .unwrap_or_else(|e| panic!("cannot read {name} at the repository root: {e}"))
        };
        Repo {
            cargo_toml: read("Cargo.toml"),
            dockerfile: read("Dockerfile"),
            dockerignore: read(".dockerignore"),
            compose: read("docker-compose.yml"),
            root,
        }
    }

    fn cargo(&self) -> Result<Cargo, String> {
        toml::from_str::<toml::Table>(&self.cargo_toml)
            .map(|table| Cargo { table })
            .map_err(|e| format!("Cargo.toml does not parse: {e}"))
    }

    fn docker(&self) -> Dockerfile {
        Dockerfile::parse(&self.dockerfile)
    }

    fn compose(&self) -> Result<Yaml, String> {
        parse_yaml(&self.compose).map_err(|e| format!("docker-compose.yml: {e}"))
    }
}

// ================================================================ Cargo.toml

struct Cargo {
    table: toml::Table,
}

impl Cargo {
    fn package(&self) -> Option<&toml::Table> {
        self.table.get("package").and_then(|p| p.as_table())
    }

    fn package_str(&self, key: &str) -> Option<String> {
        self.package()
            .and_then(|p| p.get(key))
            .and_then(|v| v.as_str())
            .map(str::to_string)
    }

    fn targets(&self, kind: &str) -> Vec<&toml::Table> {
        self.table
            .get(kind)
            .and_then(|v| v.as_array())
            .map(|a| a.iter().filter_map(|t| t.as_table()).collect())
            .unwrap_or_default()
    }

    /// The binary `cargo build` produces for the image: `default-run`, else
    /// the only `[[bin]]`, else the package name.
    fn bin_name(&self) -> String {
        if let Some(name) = self.package_str("default-run") {
            return name;
        }
        let bins = self.targets("bin");
        if let [only] = bins.as_slice() {
            if let Some(name) = only.get("name").and_then(|v| v.as_str()) {
                return name.to_string();
            }
        }
        self.package_str("name").unwrap_or_default()
    }

    /// Every file cargo needs to load the manifest and build: the manifest,
    /// the lockfile, each declared target's source, and the build script.
    fn required_paths(&self, root: &Path) -> Vec<String> {
        let mut out = vec!["Cargo.toml".to_string(), "Cargo.lock".to_string()];
        let package = self.package_str("name").unwrap_or_default();
        let path_of = |t: &toml::Table| t.get("path").and_then(|v| v.as_str()).map(normalize);
        match self.table.get("lib").and_then(|v| v.as_table()) {
            Some(lib) => out.push(path_of(lib).unwrap_or_else(|| "src/lib.rs".into())),
            None if root.join("src/lib.rs").is_file() => out.push("src/lib.rs".into()),
            None => {}
        }
        for (kind, dir) in [
            ("bin", "src/bin"),
            ("bench", "benches"),
            ("test", "tests"),
            ("example", "examples"),
        ] {
            for t in self.targets(kind) {
                let name = t.get("name").and_then(|v| v.as_str()).unwrap_or("");
                out.push(path_of(t).unwrap_or_else(|| {
                    if kind == "bin" && name == package {
                        "src/main.rs".into()
                    } else {
                        format!("{dir}/{name}.rs")
                    }
                }));
            }
        }
        if self.targets("bin").is_empty() && root.join("src/main.rs").is_file() {
            out.push("src/main.rs".into());
        }
        match self.package().and_then(|p| p.get("build")) {
            Some(toml::Value::String(s)) => out.push(normalize(s)),
            Some(toml::Value::Boolean(false)) => {}
            _ if root.join("build.rs").is_file() => out.push("build.rs".into()),
            _ => {}
        }
        out
    }
}

/// "1.88" or "1.88.0" -> (1, 88, 0); anything less concrete -> None.
fn parse_version(s: &str) -> Option<(u64, u64, u64)> {
    let parts: Vec<&str> = s.split('.').collect();
    if !(2..=3).contains(&parts.len()) {
        return None;
    }
    let n: Vec<u64> = parts
        .iter()
        .map(|p| p.parse().ok())
        .collect::<Option<_>>()?;
    Some((n[0], n[1], n.get(2).copied().unwrap_or(0)))
}

// ================================================================ Dockerfile

struct Instr {
    line: usize,
    /// Upper case: `RUN`, `COPY`, …
    cmd: String,
    args: String,
    /// The WORKDIR in effect when the instruction runs.
    workdir: String,
}

struct Stage {
    index: usize,
    line: usize,
    base: String,
    name: Option<String>,
    instrs: Vec<Instr>,
}

struct Dockerfile {
    stages: Vec<Stage>,
}

impl Dockerfile {
    /// Logical instructions: continuation lines joined, comment lines (also
    /// inside a continuation) dropped, as Docker does.
    fn parse(text: &str) -> Dockerfile {
        let mut logical: Vec<(usize, String)> = Vec::new();
        let mut current: Option<(usize, String)> = None;
        for (i, raw) in text.lines().enumerate() {
            let t = raw.trim();
            // Docker drops comment and empty lines, also inside a continuation.
            if t.starts_with('#') || t.is_empty() {
                continue;
            }
            let (body, continues) = match t.strip_suffix('\\') {
                Some(b) => (b.trim_end(), true),
                None => (t, false),
            };
            let entry = current.get_or_insert_with(|| (i + 1, String::new()));
            if !entry.1.is_empty() {
                entry.1.push(' ');
            }
            entry.1.push_str(body);
            if !continues {
                logical.extend(current.take());
            }
        }
        logical.extend(current.take());

        let mut stages: Vec<Stage> = Vec::new();
        let mut workdir = "/".to_string();
        for (line, text) in logical {
            let (cmd, args) = match text.split_once(char::is_whitespace) {
                Some((c, a)) => (c.to_ascii_uppercase(), a.trim().to_string()),
                None => (text.to_ascii_uppercase(), String::new()),
            };
            if cmd == "FROM" {
                let words: Vec<&str> = args
                    .split_whitespace()
                    .filter(|w| !w.starts_with("--"))
                    .collect();
                let name = match words.as_slice() {
                    [_, as_kw, name, ..] if as_kw.eq_ignore_ascii_case("as") => {
                        Some(name.to_string())
                    }
                    _ => None,
                };
                // A stage built FROM an earlier stage inherits its WORKDIR.
                let parent = stages
                    .iter()
                    .find(|s| words.first().is_some_and(|w| s.is(w)));
                workdir = parent
                    .and_then(|s| s.instrs.last())
                    .map(|i| i.workdir.clone())
                    .unwrap_or_else(|| "/".into());
                stages.push(Stage {
                    index: stages.len(),
                    line,
                    base: words.first().unwrap_or(&"").to_string(),
                    name,
                    instrs: Vec::new(),
                });
                continue;
            }
            if cmd == "WORKDIR" {
                workdir = resolve(&workdir, &args);
            }
            if let Some(stage) = stages.last_mut() {
                stage.instrs.push(Instr {
                    line,
                    cmd,
                    args,
                    workdir: workdir.clone(),
                });
            }
        }
        Dockerfile { stages }
    }

    /// The stage that compiles the gateway.
    fn build_stage(&self) -> Option<&Stage> {
        self.stages
            .iter()
            .find(|s| s.runs().any(|i| i.args.contains("cargo build")))
    }

    /// The stage the image is made of.
    fn runtime(&self) -> Option<&Stage> {
        self.stages.last()
    }
}

impl Stage {
    fn is(&self, reference: &str) -> bool {
        self.name
            .as_deref()
            .is_some_and(|n| n.eq_ignore_ascii_case(reference))
            || self.index.to_string() == reference
    }

    fn all<'a>(&'a self, cmd: &'a str) -> impl Iterator<Item = &'a Instr> + 'a {
        self.instrs.iter().filter(move |i| i.cmd == cmd)
    }

    fn runs(&self) -> impl Iterator<Item = &Instr> + '_ {
        self.all("RUN")
    }

    fn env(&self) -> Env {
        let mut env = Env::new();
        for i in self.all("ENV") {
            let words = shell_words(&i.args);
            if words.first().is_some_and(|w| w.contains('=')) {
                for w in words {
                    if let Some((k, v)) = w.split_once('=') {
                        env.insert(k.to_string(), v.to_string());
                    }
                }
            } else if let Some((k, v)) = i.args.split_once(char::is_whitespace) {
                env.insert(k.to_string(), v.trim().to_string());
            }
        }
        env
    }

    /// COPY and ADD instructions, parsed.
    fn copies(&self) -> Vec<(&Instr, Copy)> {
        self.instrs
            .iter()
            .filter(|i| i.cmd == "COPY" || i.cmd == "ADD")
            .map(|i| (i, Copy::parse(&i.args)))
            .collect()
    }

    /// Context paths (normalised, "" = the whole context) this stage COPYs.
    fn context_sources(&self) -> Vec<String> {
        self.copies()
            .into_iter()
            .filter(|(_, c)| c.from.is_none())
            .flat_map(|(_, c)| c.srcs)
            .map(|s| normalize(&s))
            .collect()
    }

    /// Every word of every `apt-get install` (or `apt install`) in the stage.
    fn installed_packages(&self) -> Vec<String> {
        self.runs()
            .filter(|i| i.args.contains("apt-get install") || i.args.contains("apt install"))
            .flat_map(|i| {
                i.args
                    .split(|c: char| c.is_whitespace() || c == ';' || c == '&' || c == '|')
                    .map(|w| w.split('=').next().unwrap_or("").to_string())
                    .collect::<Vec<_>>()
            })
            .filter(|w| !w.is_empty())
            .collect()
    }
}

struct Copy {
    from: Option<String>,
    srcs: Vec<String>,
    dest: String,
}

impl Copy {
    fn parse(args: &str) -> Copy {
        let mut from = None;
        let mut rest = args.trim();
        while rest.starts_with("--") {
            let (flag, tail) = rest.split_once(char::is_whitespace).unwrap_or((rest, ""));
            if let Some(f) = flag.strip_prefix("--from=") {
                from = Some(f.to_string());
            }
            rest = tail.trim_start();
        }
        let mut paths: Vec<String> = if rest.starts_with('[') {
            serde_json::from_str(rest).unwrap_or_default()
        } else {
            rest.split_whitespace().map(str::to_string).collect()
        };
        let dest = paths.pop().unwrap_or_default();
        Copy {
            from,
            srcs: paths,
            dest,
        }
    }
}

/// `["a", "b"]` (exec form) or a shell command (run by `/bin/sh -c`).
fn command_words(args: &str) -> Vec<String> {
    let args = args.trim();
    if args.starts_with('[') {
        serde_json::from_str(args).unwrap_or_default()
    } else {
        vec!["/bin/sh".into(), "-c".into(), args.into()]
    }
}

/// Split like a POSIX shell does (quotes and backslashes), without expansion.
fn shell_words(s: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut in_word = false;
    let mut quote: Option<char> = None;
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        match quote {
            Some(q) if c == q => quote = None,
            Some('"') if c == '\\' => cur.extend(chars.next()),
            Some(_) => cur.push(c),
            None => match c {
                '"' | '\'' => {
                    quote = Some(c);
                    in_word = true;
                }
                '\\' => {
                    cur.extend(chars.next());
                    in_word = true;
                }
                c if c.is_whitespace() => {
                    if in_word {
                        out.push(std::mem::take(&mut cur));
                        in_word = false;
                    }
                }
                c => {
                    cur.push(c);
                    in_word = true;
                }
            },
        }
    }
    if in_word {
        out.push(cur);
    }
    out
}

/// `./a/../b/` -> `b`; `/x/./y` -> `/x/y`.
fn normalize(p: &str) -> String {
    let mut parts: Vec<&str> = Vec::new();
    for c in p.split('/') {
        match c {
            "" | "." => {}
            ".." => {
                parts.pop();
            }
            c => parts.push(c),
        }
    }
    let joined = parts.join("/");
    if p.starts_with('/') {
        format!("/{joined}")
    } else {
        joined
    }
}

fn resolve(workdir: &str, p: &str) -> String {
    if p.starts_with('/') {
        normalize(p)
    } else {
        normalize(&format!("{workdir}/{p}"))
    }
}

/// `path` is `dir` or inside it ("" is the whole context).
fn is_under(path: &str, dir: &str) -> bool {
    let dir = dir.trim_end_matches('/');
    dir.is_empty() || path == dir || path.starts_with(&format!("{dir}/"))
}

/// `rust:1.95-bookworm@sha256:…` -> ("rust", "1.95-bookworm").
fn image_ref(image: &str) -> (String, String) {
    let image = image.split('@').next().unwrap_or(image);
    let last = image.rsplit('/').next().unwrap_or(image);
    match last.split_once(':') {
        Some((name, tag)) => (name.to_string(), tag.to_string()),
        None => (last.to_string(), "latest".to_string()),
    }
}

/// A literal value, or the default of `${NAME:-default}`; None when the
/// value only comes from the host (`${NAME}`, `${NAME:?…}`).
fn literal_or_default(v: &str) -> Option<String> {
    let v = v.trim();
    match v.strip_prefix("${").and_then(|r| r.strip_suffix('}')) {
        Some(inner) => inner.split_once(":-").map(|(_, d)| d.to_string()),
        None => Some(v.to_string()),
    }
}

// ================================================================ .dockerignore

/// Docker's rules: patterns relative to the context root, `*` and `?` within
/// one path element, `**` across elements, `!` re-includes, the last
/// matching pattern wins, and a pattern matching a directory covers
/// everything inside it.
struct Ignore {
    rules: Vec<(bool, Vec<String>)>,
}

impl Ignore {
    fn parse(text: &str) -> Ignore {
        let rules = text
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty() && !l.starts_with('#'))
            .map(|l| {
                let (negated, pattern) = match l.strip_prefix('!') {
                    Some(p) => (true, p.trim()),
                    None => (false, l),
                };
                let parts = normalize(pattern.trim_start_matches('/'))
                    .split('/')
                    .map(str::to_string)
                    .collect();
                (negated, parts)
            })
            .collect();
        Ignore { rules }
    }

    fn excludes(&self, path: &str) -> bool {
        let parts: Vec<&str> = path.split('/').filter(|p| !p.is_empty()).collect();
        let mut excluded = false;
        for (negated, rule) in &self.rules {
            if (1..=parts.len()).any(|n| glob_parts(rule, &parts[..n])) {
                excluded = !negated;
            }
        }
        excluded
    }
}

fn glob_parts(pattern: &[String], path: &[&str]) -> bool {
    match pattern.split_first() {
        None => path.is_empty(),
        Some((p, rest)) if p == "**" => (0..=path.len()).any(|k| glob_parts(rest, &path[k..])),
        Some((p, rest)) => {
            !path.is_empty()
                && wildcard(p.as_bytes(), path[0].as_bytes())
                && glob_parts(rest, &path[1..])
        }
    }
}

fn wildcard(p: &[u8], s: &[u8]) -> bool {
    match (p.first(), s.first()) {
        (None, None) => true,
        (Some(b'*'), _) => wildcard(&p[1..], s) || (!s.is_empty() && wildcard(p, &s[1..])),
        (Some(b'?'), Some(_)) => wildcard(&p[1..], &s[1..]),
        (Some(a), Some(b)) if a == b => wildcard(&p[1..], &s[1..]),
        _ => false,
    }
}

/// Files under `dir`, as paths relative to `root`.
fn files_under(root: &Path, dir: &Path) -> Vec<String> {
    let mut out = Vec::new();
    let Ok(entries) = std::fs::read_dir(dir) else {
        return out;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() {
            out.extend(files_under(root, &path));
        } else if let Ok(rel) = path.strip_prefix(root) {
            out.push(rel.to_string_lossy().replace('\\', "/"));
        }
    }
    out
}

// ================================================================ compose (YAML)

/// The compose file as the checks read it: maps (in file order), lists and
/// scalars. Parsed by a YAML crate ([`parse_yaml`]), so anything YAML
/// allows — flow maps, anchors, every scalar style — is understood.
#[derive(Debug, Clone)]
enum Yaml {
    Str(String),
    List(Vec<Yaml>),
    Map(Vec<(String, Yaml)>),
}

impl Yaml {
    fn get(&self, key: &str) -> Option<&Yaml> {
        match self {
            Yaml::Map(m) => m.iter().find(|(k, _)| k == key).map(|(_, v)| v),
            _ => None,
        }
    }

    fn as_str(&self) -> Option<&str> {
        match self {
            Yaml::Str(s) => Some(s),
            _ => None,
        }
    }

    /// A list of scalars, or a string split like a shell would.
    fn words(&self) -> Vec<String> {
        match self {
            Yaml::Str(s) => shell_words(s),
            Yaml::List(items) => items
                .iter()
                .filter_map(|i| i.as_str().map(str::to_string))
                .collect(),
            Yaml::Map(_) => Vec::new(),
        }
    }

    fn entries(&self) -> Vec<(String, &Yaml)> {
        match self {
            Yaml::Map(m) => m.iter().map(|(k, v)| (k.clone(), v)).collect(),
            _ => Vec::new(),
        }
    }
}

/// Parse with yaml-rust2 (a maintained, pure-Rust YAML 1.2 parser; see
/// Cargo.toml) and keep the first document as the small tree the checks
/// below read: scalars as their text (compose's `"8080:8080"` and
/// `8080` alike), `null` / an empty value as "".
fn parse_yaml(text: &str) -> Result<Yaml, String> {
    let docs = yaml_rust2::YamlLoader::load_from_str(text).map_err(|e| e.to_string())?;
    let first = docs.into_iter().next().ok_or("empty document")?;
    from_yaml(first)
}

fn from_yaml(y: yaml_rust2::Yaml) -> Result<Yaml, String> {
    use yaml_rust2::Yaml as Y;
    Ok(match y {
        Y::String(s) | Y::Real(s) => Yaml::Str(s),
        Y::Integer(i) => Yaml::Str(i.to_string()),
        Y::Boolean(b) => Yaml::Str(b.to_string()),
        Y::Null => Yaml::Str(String::new()),
        Y::Array(items) => Yaml::List(items.into_iter().map(from_yaml).collect::<Result<_, _>>()?),
        Y::Hash(map) => {
            let mut out = Vec::with_capacity(map.len());
            for (k, v) in map {
                let Yaml::Str(key) = from_yaml(k)? else {
                    return Err("a mapping key that is not a scalar".into());
                };
                out.push((key, from_yaml(v)?));
            }
            Yaml::Map(out)
        }
        Y::Alias(_) | Y::BadValue => return Err("an alias to an unknown anchor".into()),
    })
}

/// The service built from the Dockerfile.
fn gateway_service(doc: &Yaml) -> Result<(String, &Yaml), String> {
    let services = doc
        .get("services")
        .ok_or("docker-compose.yml has no `services`")?;
    services
        .entries()
        .into_iter()
        .find(|(_, s)| s.get("build").is_some())
        .ok_or_else(|| {
            "no compose service has `build:` (the gateway built from the Dockerfile)".into()
        })
}

fn service_env(service: &Yaml) -> Env {
    let mut env = Env::new();
    match service.get("environment") {
        Some(Yaml::Map(m)) => {
            for (k, v) in m {
                env.insert(k.clone(), v.as_str().unwrap_or("").to_string());
            }
        }
        Some(Yaml::List(items)) => {
            for item in items.iter().filter_map(Yaml::as_str) {
                let (k, v) = item.split_once('=').unwrap_or((item, ""));
                env.insert(k.to_string(), v.to_string());
            }
        }
        _ => {}
    }
    env
}

/// The container's environment under compose: the image's ENV with the
/// compose `environment` values that are known without the host.
fn effective_env(image: &Env, service: &Yaml) -> Env {
    let mut env = image.clone();
    for (k, v) in service_env(service) {
        if let Some(v) = literal_or_default(&v) {
            env.insert(k, v);
        }
    }
    env
}

// ================================================================ shared helpers

/// A listen address `host:port` -> (host, port).
fn parse_listen(listen: &str) -> Option<(String, u16)> {
    let (host, port) = listen.trim().rsplit_once(':')?;
    Some((
        host.trim_matches(['[', ']']).to_string(),
        port.parse().ok()?,
    ))
}

fn is_loopback(host: &str) -> bool {
    host == "localhost" || host == "::1" || host.starts_with("127.")
}

/// The gateway's main port in an environment (ENV APP_PORT).
fn app_port(env: &Env) -> Result<u16, String> {
    let v = env.get("APP_PORT").ok_or(
        "the runtime stage sets no ENV APP_PORT (the port every other check compares with)",
    )?;
    v.parse()
        .map_err(|_| format!("ENV APP_PORT={v} is not a port number"))
}

/// The admin listener in an environment: ADMIN_LISTEN, else the
/// configuration default (127.0.0.1:8001); None when disabled.
fn admin_listen(env: &Env) -> Option<(String, u16)> {
    match env.get("ADMIN_LISTEN") {
        Some(v) if v.trim().is_empty() => None,
        Some(v) => parse_listen(v),
        None => parse_listen("127.0.0.1:8001"),
    }
}

/// Whether a command requests the path `/health` (not `/healthz`).
fn requests_health(cmd: &str) -> bool {
    cmd.match_indices("/health").any(|(i, m)| {
        cmd[i + m.len()..]
            .chars()
            .next()
            .is_none_or(|c| !(c.is_alphanumeric() || c == '_' || c == '-' || c == '/'))
    })
}

/// The (host, port token) pairs a probe connects to: `/dev/tcp/host/port`
/// or `scheme://host[:port]/…`.
fn probe_targets(cmd: &str) -> Vec<(String, String)> {
    let end = |s: &str| {
        s.find(|c: char| c.is_whitespace() || "\"';&|<>)".contains(c))
            .unwrap_or(s.len())
    };
    let mut out = Vec::new();
    for (i, m) in cmd.match_indices("/dev/tcp/") {
        let rest = &cmd[i + m.len()..];
        let rest = &rest[..end(rest)];
        if let Some((host, port)) = rest.split_once('/') {
            out.push((host.to_string(), port.to_string()));
        }
    }
    for (i, m) in cmd.match_indices("://") {
        let rest = &cmd[i + m.len()..];
        let authority = rest[..end(rest)].split('/').next().unwrap_or("");
        let (host, port) = match authority.strip_prefix('[') {
            Some(v6) => {
                let (h, tail) = v6.split_once(']').unwrap_or((v6, ""));
                (h, tail.strip_prefix(':').unwrap_or("80"))
            }
            None => authority.split_once(':').unwrap_or((authority, "80")),
        };
        out.push((host.to_string(), port.to_string()));
    }
    out
}

/// A port token: digits, `$APP_PORT`, `${APP_PORT}` or `${APP_PORT:-8000}`
/// (whose fallback must agree with the environment).
fn resolve_port(token: &str, env: &Env) -> Result<u16, String> {
    if let Ok(n) = token.parse() {
        return Ok(n);
    }
    let inner = token
        .strip_prefix("${")
        .and_then(|t| t.strip_suffix('}'))
        .or_else(|| token.strip_prefix('$'))
        .ok_or_else(|| format!("`{token}` is neither a port nor a variable"))?;
    let (name, fallback) = match inner.split_once(":-") {
        Some((n, f)) => (n, Some(f)),
        None => (inner, None),
    };
    let value = env.get(name).map(String::as_str);
    if let (Some(v), Some(f)) = (value, fallback) {
        if v != f {
            return Err(format!(
                "`{token}` falls back to {f}, but the image sets {name}={v}"
            ));
        }
    }
    let v = value
        .or(fallback)
        .ok_or_else(|| format!("`{token}`: {name} is not set in the image"))?;
    v.parse()
        .map_err(|_| format!("`{token}` resolves to {v}, not a port"))
}

/// Problems with a health probe command: it must GET /health on `port`.
fn probe_problems(what: &str, cmd: &str, env: &Env, port: u16) -> Problems {
    let mut p = Vec::new();
    if !requests_health(cmd) {
        p.push(format!("{what} does not request /health: {cmd}"));
    }
    let targets = probe_targets(cmd);
    if targets.is_empty() {
        p.push(format!(
            "{what} names no host and port (expected /dev/tcp/127.0.0.1/<port> or http://127.0.0.1:<port>/health): {cmd}"
        ));
    }
    for (host, token) in targets {
        match resolve_port(&token, env) {
            Ok(n) if n == port => {}
            Ok(n) => p.push(format!(
                "{what} probes port {n}, but the gateway listens on APP_PORT={port}"
            )),
            Err(e) => p.push(format!("{what}: {e}")),
        }
        if !is_loopback(&host) && host != "0.0.0.0" {
            p.push(format!(
                "{what} probes host {host}; probe the container itself (127.0.0.1)"
            ));
        }
    }
    p
}

// ================================================================ the checks

/// The build stage's Rust is at least Cargo.toml's rust-version.
fn check_rust_version(r: &Repo) -> Problems {
    let cargo = match r.cargo() {
        Ok(c) => c,
        Err(e) => return vec![e],
    };
    let docker = r.docker();
    let Some(build) = docker.build_stage() else {
        return vec!["no Dockerfile stage runs `cargo build`".into()];
    };
    let Some(need) = cargo.package_str("rust-version") else {
        return vec!["Cargo.toml has no package.rust-version to compare with".into()];
    };
    let Some(need_v) = parse_version(&need) else {
        return vec![format!(
            "Cargo.toml's rust-version {need:?} is not a version"
        )];
    };
    let (name, tag) = image_ref(&build.base);
    if name != "rust" {
        return vec![format!(
            "Dockerfile line {}: the build stage starts FROM {}; expected the official rust:<version>-bookworm image",
            build.line, build.base
        )];
    }
    let version = tag.split('-').next().unwrap_or("");
    match parse_version(version) {
        None => vec![format!(
            "Dockerfile line {}: FROM {} does not pin a Rust version (use e.g. rust:{need}-bookworm); Cargo.toml needs rust-version {need}",
            build.line, build.base
        )],
        Some(v) if v < need_v => vec![format!(
            "Dockerfile line {}: the build stage uses Rust {version} (FROM {}), older than Cargo.toml's rust-version {need}",
            build.line, build.base
        )],
        Some(_) => Vec::new(),
    }
}

/// Build and runtime stages are on the same Debian release (the binary needs
/// the build's glibc).
fn check_debian_release(r: &Repo) -> Problems {
    let docker = r.docker();
    let (Some(build), Some(runtime)) = (docker.build_stage(), docker.runtime()) else {
        return vec!["the Dockerfile needs a build stage and a runtime stage".into()];
    };
    let (_, build_tag) = image_ref(&build.base);
    let build_suite = build_tag.rsplit('-').next().unwrap_or("").to_string();
    let (runtime_name, runtime_tag) = image_ref(&runtime.base);
    let runtime_suite = runtime_tag.split('-').next().unwrap_or("");
    if runtime_name != "debian" || runtime_suite != build_suite {
        return vec![format!(
            "Dockerfile line {}: the runtime stage is FROM {}, but the binary is built on Debian {build_suite} (FROM {}); use debian:{build_suite}-slim so its glibc matches",
            runtime.line, runtime.base, build.base
        )];
    }
    Vec::new()
}

/// `cargo build --release --locked`, and the runtime copies and runs that
/// binary.
fn check_cargo_build(r: &Repo) -> Problems {
    let cargo = match r.cargo() {
        Ok(c) => c,
        Err(e) => return vec![e],
    };
    let docker = r.docker();
    let Some(build) = docker.build_stage() else {
        return vec!["no Dockerfile stage runs `cargo build`".into()];
    };
    let mut p = Vec::new();
    let builds: Vec<&Instr> = docker
        .stages
        .iter()
        .flat_map(|s| s.runs())
        .filter(|i| i.args.contains("cargo build"))
        .collect();
    for i in &builds {
        if !i.args.split_whitespace().any(|w| w == "--locked") {
            p.push(format!(
                "Dockerfile line {}: `cargo build` without --locked (the image must build exactly Cargo.lock)",
                i.line
            ));
        }
    }
    let last = build
        .runs()
        .filter(|i| i.args.contains("cargo build"))
        .last()
        .expect("the build stage runs cargo build");
    if !last.args.split_whitespace().any(|w| w == "--release") {
        p.push(format!(
            "Dockerfile line {}: the final `cargo build` is not --release",
            last.line
        ));
    }

    let bin = cargo.bin_name();
    let target_dir = build
        .env()
        .get("CARGO_TARGET_DIR")
        .map(|d| resolve(&last.workdir, d))
        .unwrap_or_else(|| resolve(&last.workdir, "target"));
    let built = format!("{target_dir}/release/{bin}");
    let Some(runtime) = docker.runtime() else {
        return p;
    };
    let copied = runtime.copies().into_iter().find(|(_, c)| {
        c.from.as_deref().is_some_and(|f| build.is(f))
            && c.srcs.iter().any(|s| resolve("/", s) == built)
    });
    let Some((instr, copy)) = copied else {
        p.push(format!(
            "the runtime stage never copies {built} (`cargo build --release` output for the binary `{bin}`) --from the build stage"
        ));
        return p;
    };
    let mut dest = resolve(&instr.workdir, &copy.dest);
    if copy.dest.ends_with('/') {
        dest = format!("{dest}/{bin}");
    }
    let Some(entry) = runtime.all("ENTRYPOINT").last() else {
        p.push("the runtime stage has no ENTRYPOINT".into());
        return p;
    };
    let program = command_words(&entry.args)
        .into_iter()
        .next()
        .unwrap_or_default();
    let on_path = [
        "/usr/local/bin",
        "/usr/bin",
        "/bin",
        "/usr/local/sbin",
        "/usr/sbin",
    ];
    let (dir, file) = dest.rsplit_once('/').unwrap_or(("", &dest));
    if program != dest && !(program == file && on_path.contains(&dir)) {
        p.push(format!(
            "Dockerfile line {}: ENTRYPOINT runs `{program}`, but the binary is copied to {dest}",
            entry.line
        ));
    }
    p
}

/// Every path COPYd from the build context exists and .dockerignore keeps it
/// (and every file inside it) in the context.
fn check_copy_sources(r: &Repo) -> Problems {
    let ignore = Ignore::parse(&r.dockerignore);
    let mut p = Vec::new();
    for stage in &r.docker().stages {
        for (instr, copy) in stage.copies() {
            if copy.from.is_some() {
                continue;
            }
            for src in &copy.srcs {
                let rel = normalize(src.trim_start_matches('/'));
                if src.contains("://") || rel.is_empty() || rel.contains(['*', '?', '[']) {
                    continue;
                }
                let path = r.root.join(&rel);
                if !path.exists() {
                    p.push(format!(
                        "Dockerfile line {}: {} {src}: no such file or directory in the repository",
                        instr.line, instr.cmd
                    ));
                } else if ignore.excludes(&rel) {
                    p.push(format!(
                        ".dockerignore excludes {rel}, which Dockerfile line {} copies",
                        instr.line
                    ));
                } else if path.is_dir() {
                    for file in files_under(&r.root, &path) {
                        if ignore.excludes(&file) {
                            p.push(format!(
                                ".dockerignore excludes {file}, part of {rel} (copied on Dockerfile line {})",
                                instr.line
                            ));
                        }
                    }
                }
            }
        }
    }
    p
}

/// Files the binary embeds (include_bytes!/include_str! in src/) are copied
/// into the build stage.
fn check_embedded_files(r: &Repo) -> Problems {
    let docker = r.docker();
    let Some(build) = docker.build_stage() else {
        return vec!["no Dockerfile stage runs `cargo build`".into()];
    };
    let copied = build.context_sources();
    let mut p = Vec::new();
    let mut found = 0;
    for file in files_under(&r.root, &r.root.join("src")) {
        if !file.ends_with(".rs") {
            continue;
        }
        let Ok(text) = std::fs::read_to_string(r.root.join(&file)) else {
            continue;
        };
        let dir = file.rsplit_once('/').map(|(d, _)| d).unwrap_or("");
        for mac in ["include_bytes!(", "include_str!("] {
            for (i, m) in text.match_indices(mac) {
                let Some(lit) = text[i + m.len()..].trim_start().strip_prefix('"') else {
                    continue;
                };
                let Some(end) = lit.find('"') else { continue };
                let target = resolve(&format!("/{dir}"), &lit[..end]);
                let target = target.trim_start_matches('/');
                found += 1;
                if !copied.iter().any(|c| is_under(target, c)) {
                    p.push(format!(
                        "{file} embeds {target} ({}), but the build stage never COPYs it: the image build would fail",
                        mac.trim_end_matches('(')
                    ));
                }
            }
        }
    }
    if found == 0 {
        p.push("no include_bytes!/include_str! found under src/; the console embeds admin/ files (update this check if that changed)".into());
    }
    p
}

/// Every file cargo needs to load the manifest (declared targets, the build
/// script) exists — copied or stubbed — before each `cargo build`.
fn check_manifest_targets(r: &Repo) -> Problems {
    let cargo = match r.cargo() {
        Ok(c) => c,
        Err(e) => return vec![e],
    };
    let required = cargo.required_paths(&r.root);
    let docker = r.docker();
    let Some(build) = docker.build_stage() else {
        return vec!["no Dockerfile stage runs `cargo build`".into()];
    };
    let mut p = Vec::new();
    let mut copied: Vec<String> = Vec::new();
    let mut scripts = String::new();
    for i in &build.instrs {
        if i.cmd == "COPY" || i.cmd == "ADD" {
            let c = Copy::parse(&i.args);
            if c.from.is_none() {
                copied.extend(c.srcs.iter().map(|s| normalize(s)));
            }
        }
        if i.cmd == "RUN" {
            scripts.push_str(&i.args);
            scripts.push('\n');
            if i.args.contains("cargo build") {
                for path in &required {
                    if !copied.iter().any(|c| is_under(path, c)) && !scripts.contains(path.as_str())
                    {
                        p.push(format!(
                            "Dockerfile line {}: `cargo build` runs before {path} (needed by Cargo.toml) is copied or stubbed",
                            i.line
                        ));
                    }
                }
            }
        }
    }
    p
}

/// Cargo.lock exists and goes into the build.
fn check_cargo_lock(r: &Repo) -> Problems {
    let mut p = Vec::new();
    if !r.root.join("Cargo.lock").is_file() {
        p.push("Cargo.lock is missing: `cargo build --locked` in the image needs it".into());
    }
    let docker = r.docker();
    let copied = docker
        .build_stage()
        .map(|b| b.context_sources())
        .unwrap_or_default();
    if !copied.iter().any(|c| is_under("Cargo.lock", c)) {
        p.push("the build stage does not COPY Cargo.lock".into());
    }
    p
}

/// cmake (Pingora builds zlib-ng with it) and a C compiler in the build stage.
fn check_build_tools(r: &Repo) -> Problems {
    let docker = r.docker();
    let Some(build) = docker.build_stage() else {
        return vec!["no Dockerfile stage runs `cargo build`".into()];
    };
    let installed = build.installed_packages();
    let has = |names: &[&str]| installed.iter().any(|w| names.contains(&w.as_str()));
    let mut p = Vec::new();
    if !has(&["cmake"]) {
        p.push(
            "the build stage does not apt-get install cmake (Pingora builds zlib-ng with cmake)"
                .into(),
        );
    }
    let (name, tag) = image_ref(&build.base);
    let base_has_cc = name == "rust" && !tag.contains("slim") && !tag.contains("alpine");
    if !base_has_cc && !has(&["build-essential", "gcc", "clang", "g++"]) {
        p.push(format!(
            "FROM {} has no C compiler and the build stage installs none (ring, SQLite and zlib-ng need one)",
            build.base
        ));
    }
    p
}

/// The runtime stage runs as a user it creates, not root.
fn check_non_root_user(r: &Repo) -> Problems {
    let docker = r.docker();
    let Some(runtime) = docker.runtime() else {
        return vec!["the Dockerfile has no stages".into()];
    };
    let Some(user) = runtime.all("USER").last() else {
        return vec!["the runtime stage has no USER: the gateway would run as root".into()];
    };
    let name = user.args.split(':').next().unwrap_or("").trim();
    if name == "root" || name == "0" || name.is_empty() {
        return vec![format!(
            "Dockerfile line {}: USER {} is root",
            user.line, user.args
        )];
    }
    let created = runtime.runs().any(|i| {
        (i.args.contains("useradd") || i.args.contains("adduser"))
            && i.args.split_whitespace().any(|w| w == name)
    });
    if name.parse::<u32>().is_err() && !created {
        return vec![format!(
            "Dockerfile line {}: USER {name}, but no useradd/adduser in the runtime stage creates it",
            user.line
        )];
    }
    Vec::new()
}

/// HEALTHCHECK GETs /health on the port the image's APP_PORT sets, with a
/// tool the runtime image has.
fn check_healthcheck(r: &Repo) -> Problems {
    let docker = r.docker();
    let Some(runtime) = docker.runtime() else {
        return vec!["the Dockerfile has no stages".into()];
    };
    let env = runtime.env();
    let port = match app_port(&env) {
        Ok(p) => p,
        Err(e) => return vec![e],
    };
    let Some(hc) = runtime.all("HEALTHCHECK").last() else {
        return vec!["the runtime stage has no HEALTHCHECK".into()];
    };
    let mut rest = hc.args.trim();
    while rest.starts_with("--") {
        rest = rest
            .split_once(char::is_whitespace)
            .map(|(_, t)| t.trim_start())
            .unwrap_or("");
    }
    let Some(cmd) = rest
        .strip_prefix("CMD")
        .or_else(|| rest.strip_prefix("cmd"))
    else {
        return vec![format!(
            "Dockerfile line {}: HEALTHCHECK {rest} runs no command",
            hc.line
        )];
    };
    let words = command_words(cmd);
    let text = words.join(" ");
    let what = format!("Dockerfile line {}: HEALTHCHECK", hc.line);
    let mut p = probe_problems(&what, &text, &env, port);
    let program = if words.first().is_some_and(|w| w == "/bin/sh") {
        words
            .get(2)
            .and_then(|c| c.split_whitespace().next().map(str::to_string))
    } else {
        words.first().cloned()
    }
    .unwrap_or_default();
    let program = program.rsplit('/').next().unwrap_or("").to_string();
    let base_tools = [
        "bash",
        "sh",
        "head",
        "grep",
        "printf",
        "timeout",
        "cat",
        "llm-orchestrator",
    ];
    if !base_tools.contains(&program.as_str()) && !runtime.installed_packages().contains(&program) {
        p.push(format!(
            "{what} runs `{program}`, which {} lacks and the runtime stage does not apt-get install",
            runtime.base
        ));
    }
    p
}

/// EXPOSE lists exactly the ports the image listens on from outside.
fn check_expose(r: &Repo) -> Problems {
    let docker = r.docker();
    let Some(runtime) = docker.runtime() else {
        return vec!["the Dockerfile has no stages".into()];
    };
    let env = runtime.env();
    let app = match app_port(&env) {
        Ok(p) => p,
        Err(e) => return vec![e],
    };
    let mut p = Vec::new();
    if let Some(host) = env.get("APP_HOST") {
        if is_loopback(host) {
            p.push(format!(
                "ENV APP_HOST={host} listens on the container's loopback: nothing outside can connect; use 0.0.0.0"
            ));
        }
    }
    let exposed: Vec<u16> = runtime
        .all("EXPOSE")
        .flat_map(|i| {
            i.args
                .split_whitespace()
                .map(str::to_string)
                .collect::<Vec<_>>()
        })
        .filter_map(|w| w.split('/').next().and_then(|n| n.parse().ok()))
        .collect();
    if !exposed.contains(&app) {
        p.push(format!(
            "EXPOSE does not list APP_PORT {app} (exposed: {exposed:?})"
        ));
    }
    let admin = admin_listen(&env);
    if let Some((host, port)) = &admin {
        if is_loopback(host) && exposed.contains(port) {
            p.push(format!(
                "EXPOSE {port}, but the admin listener binds {host}:{port} inside the container (set ADMIN_LISTEN=0.0.0.0:{port} or drop the port)"
            ));
        }
        if !is_loopback(host) && !exposed.contains(port) {
            p.push(format!(
                "ADMIN_LISTEN={host}:{port}, but EXPOSE does not list {port}"
            ));
        }
    }
    for port in &exposed {
        if *port != app && admin.as_ref().map(|a| a.1) != Some(*port) {
            p.push(format!(
                "EXPOSE {port}: no listener uses it (APP_PORT={app}, ADMIN_LISTEN={:?})",
                env.get("ADMIN_LISTEN")
            ));
        }
    }
    p
}

/// Compose publishes the main port, and the admin port on 127.0.0.1 only.
fn check_compose_ports(r: &Repo) -> Problems {
    let doc = match r.compose() {
        Ok(d) => d,
        Err(e) => return vec![e],
    };
    let (name, gateway) = match gateway_service(&doc) {
        Ok(g) => g,
        Err(e) => return vec![e],
    };
    let docker = r.docker();
    let image_env = docker.runtime().map(Stage::env).unwrap_or_default();
    let env = effective_env(&image_env, gateway);
    let app = match app_port(&env) {
        Ok(p) => p,
        Err(e) => return vec![e],
    };
    let admin = admin_listen(&env)
        .filter(|(h, _)| !is_loopback(h))
        .map(|(_, port)| port);
    let mut p = Vec::new();
    let mut published_app = false;
    for mapping in gateway.get("ports").map(Yaml::words).unwrap_or_default() {
        let spec = mapping.split('/').next().unwrap_or("");
        let parts: Vec<&str> = spec.split(':').collect();
        let (ip, container) = match parts.as_slice() {
            [c] => ("", *c),
            [_, c] => ("", *c),
            [ip, _, c] => (*ip, *c),
            _ => {
                p.push(format!(
                    "service {name}: cannot read the port mapping {mapping:?}"
                ));
                continue;
            }
        };
        let Ok(container) = container.parse::<u16>() else {
            p.push(format!(
                "service {name}: {mapping:?} has no container port number"
            ));
            continue;
        };
        if container == app {
            published_app = true;
        } else if Some(container) == admin {
            if !is_loopback(ip) {
                p.push(format!(
                    "service {name} publishes the admin port as {mapping:?}, on every host interface; bind it to the host's loopback: \"127.0.0.1:{container}:{container}\""
                ));
            }
        } else {
            p.push(format!(
                "service {name} publishes container port {container}, where the gateway does not listen (APP_PORT={app}, admin {admin:?})"
            ));
        }
    }
    if !published_app {
        p.push(format!(
            "service {name} does not publish the gateway's port {app}"
        ));
    }
    p
}

/// The compose healthcheck GETs /health on the container's APP_PORT.
fn check_compose_healthcheck(r: &Repo) -> Problems {
    let doc = match r.compose() {
        Ok(d) => d,
        Err(e) => return vec![e],
    };
    let (name, gateway) = match gateway_service(&doc) {
        Ok(g) => g,
        Err(e) => return vec![e],
    };
    let docker = r.docker();
    let image_env = docker.runtime().map(Stage::env).unwrap_or_default();
    let env = effective_env(&image_env, gateway);
    let port = match app_port(&env) {
        Ok(p) => p,
        Err(e) => return vec![e],
    };
    let Some(test) = gateway.get("healthcheck").and_then(|h| h.get("test")) else {
        return vec![format!("service {name} has no healthcheck.test")];
    };
    let words = match test {
        Yaml::Str(s) => vec!["CMD-SHELL".to_string(), s.clone()],
        other => other.words(),
    };
    let cmd = match words.first().map(String::as_str) {
        Some("CMD") | Some("CMD-SHELL") => words[1..].join(" "),
        _ => {
            return vec![format!(
                "service {name}: healthcheck.test must start with CMD or CMD-SHELL"
            )]
        }
    };
    // `$$` is compose's escape for a literal `$`.
    let cmd = cmd.replace("$$", "$");
    probe_problems(&format!("service {name}'s healthcheck"), &cmd, &env, port)
}

/// The gateway and Redis restart on their own.
fn check_compose_restart(r: &Repo) -> Problems {
    let doc = match r.compose() {
        Ok(d) => d,
        Err(e) => return vec![e],
    };
    let services = doc.get("services").map(Yaml::entries).unwrap_or_default();
    let mut p = Vec::new();
    for (name, service) in services {
        let policy = service.get("restart").and_then(Yaml::as_str).unwrap_or("");
        if !matches!(policy, "always" | "unless-stopped") && !policy.starts_with("on-failure") {
            p.push(format!(
                "service {name} has no restart policy (restart: unless-stopped)"
            ));
        }
    }
    p
}

/// Compose mounts ./conf (read-only) where the image keeps its
/// configuration, starts the gateway with a file from it, and mounts ./data
/// where DATABASE_URL puts SQLite — a directory the runtime user owns.
fn check_compose_mounts(r: &Repo) -> Problems {
    let doc = match r.compose() {
        Ok(d) => d,
        Err(e) => return vec![e],
    };
    let (name, gateway) = match gateway_service(&doc) {
        Ok(g) => g,
        Err(e) => return vec![e],
    };
    let docker = r.docker();
    let Some(runtime) = docker.runtime() else {
        return vec!["the Dockerfile has no stages".into()];
    };
    let workdir = runtime
        .instrs
        .last()
        .map(|i| i.workdir.clone())
        .unwrap_or_else(|| "/".into());
    let image_env = runtime.env();
    let env = effective_env(&image_env, gateway);
    let mut p = Vec::new();

    let mounts: Vec<(String, String, String)> = gateway
        .get("volumes")
        .map(Yaml::words)
        .unwrap_or_default()
        .iter()
        .map(|v| {
            let mut parts = v.splitn(3, ':');
            let src = normalize(parts.next().unwrap_or(""));
            let dst = normalize(parts.next().unwrap_or(""));
            (src, dst, parts.next().unwrap_or("").to_string())
        })
        .collect();
    let mount = |src: &str| mounts.iter().find(|(s, _, _)| s == src);

    // Configuration.
    let conf_in_image = runtime.copies().into_iter().find_map(|(i, c)| {
        (c.from.is_none() && c.srcs.iter().any(|s| normalize(s) == "conf"))
            .then(|| resolve(&i.workdir, &c.dest))
    });
    match (mount("conf"), &conf_in_image) {
        (None, _) => p.push(format!("service {name} does not mount ./conf")),
        (Some(_), None) => p.push("the runtime stage does not COPY conf/".into()),
        (Some((_, dst, mode)), Some(image_dir)) => {
            if dst != image_dir {
                p.push(format!(
                    "service {name} mounts ./conf at {dst}, but the image keeps its configuration in {image_dir}"
                ));
            }
            if !mode.split(',').any(|m| m == "ro") {
                p.push(format!(
                    "service {name} mounts ./conf read-write; the gateway only reads it (add :ro)"
                ));
            }
            let command = gateway.get("command").map(Yaml::words).unwrap_or_else(|| {
                runtime
                    .all("CMD")
                    .last()
                    .map(|c| command_words(&c.args))
                    .unwrap_or_default()
            });
            let from_args = command.iter().enumerate().find_map(|(k, w)| {
                w.strip_prefix("--config=").map(str::to_string).or_else(|| {
                    (w == "--config" || w == "-c")
                        .then(|| command.get(k + 1).cloned())
                        .flatten()
                })
            });
            match from_args.or_else(|| env.get("LLM_ORCHESTRATOR_CONFIG").cloned()) {
                None => p.push(format!(
                    "service {name} does not start the gateway with --config, so the mounted ./conf is unused"
                )),
                Some(config) => {
                    let config = resolve(&workdir, &config);
                    match config.strip_prefix(&format!("{dst}/")) {
                        None => p.push(format!(
                            "service {name} reads the configuration {config}, outside the ./conf mount {dst}"
                        )),
                        Some(rel) if !r.root.join("conf").join(rel).is_file() => p.push(format!(
                            "service {name} reads {config}, but conf/{rel} does not exist"
                        )),
                        Some(_) => {}
                    }
                }
            }
        }
    }

    // Data: the image's DATABASE_URL, and compose's when it sets another.
    let mut urls = vec![("the image's DATABASE_URL", image_env.get("DATABASE_URL"))];
    if env.get("DATABASE_URL") != image_env.get("DATABASE_URL") {
        urls.push(("DATABASE_URL under compose", env.get("DATABASE_URL")));
    }
    for (label, url) in urls {
        let Some(url) = url else {
            p.push(format!(
                "{label} is unset: the database would be ./data relative to {workdir}, implicitly; set it explicitly"
            ));
            continue;
        };
        let Some(path) = url.strip_prefix("sqlite:///") else {
            p.push(format!("{label} {url} is not a sqlite:/// file"));
            continue;
        };
        let db = resolve(&workdir, path);
        let db_dir = db
            .rsplit_once('/')
            .map(|(d, _)| d)
            .unwrap_or("/")
            .to_string();
        if !is_under(&db, "/app/data") || db == "/app/data" {
            p.push(format!("{label} puts SQLite at {db}, outside /app/data"));
        }
        match mount("data") {
            None => p.push(format!("service {name} does not mount ./data")),
            Some((_, dst, _)) if !is_under(&db, dst) => p.push(format!(
                "{label} puts SQLite at {db}, outside the ./data mount {dst}: it would be lost with the container"
            )),
            Some(_) => {}
        }
        let owned = runtime
            .runs()
            .flat_map(chowned_paths)
            .any(|dir| dir != "/" && is_under(&db_dir, &dir));
        if !owned {
            p.push(format!(
                "no RUN in the runtime stage chowns {db_dir} (where {label} puts SQLite) to the runtime user"
            ));
        }
    }
    p
}

/// Paths a RUN's `chown` commands change (resolved against its WORKDIR).
fn chowned_paths(run: &Instr) -> Vec<String> {
    run.args
        .split("&&")
        .flat_map(|c| c.split(';'))
        .filter_map(|command| {
            let words: Vec<&str> = command.split_whitespace().collect();
            let at = words.iter().position(|w| *w == "chown")?;
            let operands: Vec<&str> = words[at + 1..]
                .iter()
                .copied()
                .filter(|w| !w.starts_with('-'))
                .collect();
            // The first operand is the owner.
            Some(
                operands
                    .iter()
                    .skip(1)
                    .map(|w| resolve(&run.workdir, w))
                    .collect::<Vec<_>>(),
            )
        })
        .flatten()
        .collect()
}

/// Redis is on, REDIS_URL names the redis service, which keeps an
/// append-only file.
fn check_compose_redis(r: &Repo) -> Problems {
    let doc = match r.compose() {
        Ok(d) => d,
        Err(e) => return vec![e],
    };
    let (name, gateway) = match gateway_service(&doc) {
        Ok(g) => g,
        Err(e) => return vec![e],
    };
    let env = service_env(gateway);
    let mut p = Vec::new();
    let enabled = env
        .get("REDIS_ENABLED")
        .and_then(|v| literal_or_default(v))
        .unwrap_or_default();
    if !matches!(
        enabled.to_ascii_lowercase().as_str(),
        "1" | "true" | "yes" | "on"
    ) {
        p.push(format!(
            "service {name}: REDIS_ENABLED is {enabled:?}, not true"
        ));
    }
    let Some(url) = env.get("REDIS_URL").and_then(|v| literal_or_default(v)) else {
        p.push(format!("service {name} sets no REDIS_URL"));
        return p;
    };
    let authority = url
        .split_once("://")
        .map(|(_, rest)| rest.split('/').next().unwrap_or(""))
        .unwrap_or("");
    let host_port = authority.rsplit('@').next().unwrap_or("");
    let host = host_port.split(':').next().unwrap_or("");
    let services = doc.get("services").map(Yaml::entries).unwrap_or_default();
    let Some((_, redis)) = services.iter().find(|(n, _)| n == host) else {
        let names: Vec<&str> = services.iter().map(|(n, _)| n.as_str()).collect();
        p.push(format!(
            "REDIS_URL {url} points at host {host:?}, but no compose service has that name (services: {names:?})"
        ));
        return p;
    };
    let image = redis.get("image").and_then(Yaml::as_str).unwrap_or("");
    if !image_ref(image).0.starts_with("redis") {
        p.push(format!(
            "REDIS_URL points at service {host}, whose image {image:?} is not Redis"
        ));
    }
    let command = redis.get("command").map(Yaml::words).unwrap_or_default();
    let appendonly = command
        .windows(2)
        .any(|w| w[0] == "--appendonly" && w[1] == "yes");
    if !appendonly {
        p.push(format!(
            "service {host} does not run with --appendonly yes (command: {command:?})"
        ));
    }
    p
}

/// AUTH_TOKEN is required from the host, secrets are never literal, and
/// every `${VAR}` the compose configuration needs is passed in.
fn check_compose_secrets(r: &Repo) -> Problems {
    let doc = match r.compose() {
        Ok(d) => d,
        Err(e) => return vec![e],
    };
    let (name, gateway) = match gateway_service(&doc) {
        Ok(g) => g,
        Err(e) => return vec![e],
    };
    let env = service_env(gateway);
    let mut p = Vec::new();
    match env.get("AUTH_TOKEN") {
        Some(v) if v.starts_with("${AUTH_TOKEN:?") || v.starts_with("${AUTH_TOKEN?") => {}
        other => p.push(format!(
            "service {name}: AUTH_TOKEN is {other:?}; require it from the environment or .env as ${{AUTH_TOKEN:?…}} (without a token the gateway accepts only loopback clients)"
        )),
    }
    for (key, value) in &env {
        let secret =
            key.ends_with("_API_KEY") || key.ends_with("TOKEN") || key.ends_with("PASSWORD");
        if secret && !value.is_empty() && !value.trim_start().starts_with("${") {
            p.push(format!(
                "service {name}: {key} is written into docker-compose.yml; take it from the environment (${{{key}}})"
            ));
        }
    }
    // Variables the configuration file requires (`${VAR}` without a default).
    let config = gateway
        .get("command")
        .map(Yaml::words)
        .unwrap_or_default()
        .windows(2)
        .find(|w| w[0] == "--config")
        .map(|w| w[1].clone());
    let conf_mount = gateway
        .get("volumes")
        .map(Yaml::words)
        .unwrap_or_default()
        .iter()
        .find_map(|v| {
            let (src, rest) = v.split_once(':')?;
            (normalize(src) == "conf").then(|| normalize(rest.split(':').next().unwrap_or("")))
        })
        .unwrap_or_else(|| "/app/conf".into());
    let prefix = format!("{conf_mount}/");
    if let Some(rel) = config
        .as_deref()
        .and_then(|c| c.strip_prefix(prefix.as_str()))
    {
        let text = std::fs::read_to_string(r.root.join("conf").join(rel)).unwrap_or_default();
        for line in text.lines().filter(|l| !l.trim_start().starts_with('#')) {
            for (i, _) in line.match_indices("${") {
                let Some(end) = line[i..].find('}') else {
                    continue;
                };
                let inner = &line[i + 2..i + end];
                if !inner.contains(":-") && !env.contains_key(inner) {
                    p.push(format!(
                        "conf/{rel} requires ${{{inner}}}, but service {name} does not pass {inner}"
                    ));
                }
            }
        }
    }
    p
}

/// The build context leaves out build output, history, databases and
/// secrets.
fn check_dockerignore(r: &Repo) -> Problems {
    let ignore = Ignore::parse(&r.dockerignore);
    [
        (
            "target/release/llm-orchestrator",
            "build output (gigabytes)",
        ),
        (".git/HEAD", "repository history"),
        ("data/llm_orchestrator.db", "the local database"),
        (".env", "secrets for compose"),
    ]
    .iter()
    .filter(|(path, _)| !ignore.excludes(path))
    .map(|(path, why)| format!(".dockerignore does not exclude {path} ({why})"))
    .collect()
}

// ================================================================ tests

type Check = fn(&Repo) -> Problems;

const CHECKS: &[(&str, Check)] = &[
    ("rust_version", check_rust_version),
    ("debian_release", check_debian_release),
    ("cargo_build", check_cargo_build),
    ("copy_sources", check_copy_sources),
    ("embedded_files", check_embedded_files),
    ("manifest_targets", check_manifest_targets),
    ("cargo_lock", check_cargo_lock),
    ("build_tools", check_build_tools),
    ("non_root_user", check_non_root_user),
    ("healthcheck", check_healthcheck),
    ("expose", check_expose),
    ("compose_ports", check_compose_ports),
    ("compose_healthcheck", check_compose_healthcheck),
    ("compose_restart", check_compose_restart),
    ("compose_mounts", check_compose_mounts),
    ("compose_redis", check_compose_redis),
    ("compose_secrets", check_compose_secrets),
    ("dockerignore", check_dockerignore),
];

fn assert_passes(name: &str) {
    let (_, check) = CHECKS.iter().find(|(n, _)| *n == name).expect("a check");
    let problems = check(&Repo::load());
    assert!(
        problems.is_empty(),
        "container files: {name}:\n  {}",
        problems.join("\n  ")
    );
}

#[test]
fn build_uses_a_recent_enough_rust() {
    assert_passes("rust_version");
}

#[test]
fn build_and_runtime_share_a_debian_release() {
    assert_passes("debian_release");
}

#[test]
fn build_is_locked_release_and_the_binary_is_shipped() {
    assert_passes("cargo_build");
}

#[test]
fn copied_paths_exist_and_are_in_the_context() {
    assert_passes("copy_sources");
}

#[test]
fn embedded_console_files_are_copied() {
    assert_passes("embedded_files");
}

#[test]
fn every_manifest_target_exists_at_each_cargo_build() {
    assert_passes("manifest_targets");
}

#[test]
fn cargo_lock_exists_and_is_copied() {
    assert_passes("cargo_lock");
}

#[test]
fn build_stage_installs_cmake_and_a_compiler() {
    assert_passes("build_tools");
}

#[test]
fn runtime_runs_as_a_non_root_user() {
    assert_passes("non_root_user");
}

#[test]
fn healthcheck_probes_health_on_app_port() {
    assert_passes("healthcheck");
}

#[test]
fn expose_matches_the_listeners() {
    assert_passes("expose");
}

#[test]
fn compose_publishes_the_right_ports() {
    assert_passes("compose_ports");
}

#[test]
fn compose_healthcheck_probes_health_on_app_port() {
    assert_passes("compose_healthcheck");
}

#[test]
fn compose_services_restart() {
    assert_passes("compose_restart");
}

#[test]
fn compose_mounts_conf_and_data_where_the_image_uses_them() {
    assert_passes("compose_mounts");
}

#[test]
fn compose_redis_url_names_the_redis_service() {
    assert_passes("compose_redis");
}

#[test]
fn compose_takes_secrets_from_the_environment() {
    assert_passes("compose_secrets");
}

#[test]
fn dockerignore_keeps_bulk_and_secrets_out() {
    assert_passes("dockerignore");
}

#[derive(Clone, Copy)]
enum File {
    Cargo,
    Dockerfile,
    Dockerignore,
    Compose,
}

/// (check, file, edits: (from, to)). `from` is replaced once; "" appends
/// `to`; `^prefix` replaces the whole line starting with `prefix` (so a
/// version bump does not break the mutation).
type Mutation = (&'static str, File, &'static [(&'static str, &'static str)]);

const MUTATIONS: &[Mutation] = &[
    (
        "rust_version",
        File::Dockerfile,
        &[("^FROM rust:", "FROM rust:1.80-bookworm AS build")],
    ),
    (
        "rust_version",
        File::Dockerfile,
        &[("^FROM rust:", "FROM rust:latest AS build")],
    ),
    (
        "rust_version",
        File::Cargo,
        &[("^rust-version", "rust-version = \"1.999\"")],
    ),
    (
        "debian_release",
        File::Dockerfile,
        &[("^FROM debian:", "FROM debian:trixie-slim")],
    ),
    (
        "cargo_build",
        File::Dockerfile,
        &[(
            "RUN touch src/main.rs src/lib.rs \\\n    && cargo build --release --locked",
            "RUN touch src/main.rs src/lib.rs \\\n    && cargo build --release",
        )],
    ),
    (
        "cargo_build",
        File::Dockerfile,
        &[(
            "RUN touch src/main.rs src/lib.rs \\\n    && cargo build --release --locked",
            "RUN touch src/main.rs src/lib.rs \\\n    && cargo build --locked",
        )],
    ),
    (
        "cargo_build",
        File::Dockerfile,
        &[(
            "/src/target/release/llm-orchestrator",
            "/src/target/debug/llm-orchestrator",
        )],
    ),
    (
        "cargo_build",
        File::Dockerfile,
        &[(
            "ENTRYPOINT [\"llm-orchestrator\"]",
            "ENTRYPOINT [\"gateway\"]",
        )],
    ),
    (
        "copy_sources",
        File::Dockerfile,
        &[("COPY admin ./admin", "COPY admin-ui ./admin")],
    ),
    ("copy_sources", File::Dockerignore, &[("", "admin/\n")]),
    ("copy_sources", File::Dockerignore, &[("", "**/*.rs\n")]),
    ("copy_sources", File::Dockerignore, &[("", "conf\n")]),
    (
        "embedded_files",
        File::Dockerfile,
        &[("COPY admin ./admin\n", "")],
    ),
    (
        "manifest_targets",
        File::Dockerfile,
        &[("    && echo 'fn main() {}' > benches/micro.rs \\\n", "")],
    ),
    (
        "manifest_targets",
        File::Dockerfile,
        &[("COPY Cargo.toml Cargo.lock ./", "COPY Cargo.lock ./")],
    ),
    (
        "cargo_lock",
        File::Dockerfile,
        &[("COPY Cargo.toml Cargo.lock ./", "COPY Cargo.toml ./")],
    ),
    (
        "build_tools",
        File::Dockerfile,
        &[(
            "install -y --no-install-recommends cmake build-essential",
            "install -y --no-install-recommends build-essential",
        )],
    ),
    (
        "build_tools",
        File::Dockerfile,
        &[
            ("^FROM rust:", "FROM rust:1.95-slim-bookworm AS build"),
            ("cmake build-essential", "cmake"),
        ],
    ),
    ("non_root_user", File::Dockerfile, &[("USER gateway\n", "")]),
    (
        "non_root_user",
        File::Dockerfile,
        &[("USER gateway\n", "USER root\n")],
    ),
    (
        "non_root_user",
        File::Dockerfile,
        &[("USER gateway\n", "USER nobody2\n")],
    ),
    (
        "healthcheck",
        File::Dockerfile,
        &[("GET /health HTTP", "GET /healthz HTTP")],
    ),
    (
        "healthcheck",
        File::Dockerfile,
        &[(
            "/dev/tcp/127.0.0.1/${APP_PORT:-8000}",
            "/dev/tcp/127.0.0.1/8080",
        )],
    ),
    (
        "healthcheck",
        File::Dockerfile,
        &[("APP_PORT=8000", "APP_PORT=9000")],
    ),
    (
        "healthcheck",
        File::Dockerfile,
        &[(
            "",
            "HEALTHCHECK CMD curl -fsS http://127.0.0.1:8000/health\n",
        )],
    ),
    (
        "healthcheck",
        File::Dockerfile,
        &[("", "HEALTHCHECK NONE\n")],
    ),
    (
        "expose",
        File::Dockerfile,
        &[("EXPOSE 8000 8001", "EXPOSE 8080 8001")],
    ),
    (
        "expose",
        File::Dockerfile,
        &[("EXPOSE 8000 8001", "EXPOSE 8000")],
    ),
    (
        "expose",
        File::Dockerfile,
        &[("ADMIN_LISTEN=0.0.0.0:8001", "ADMIN_LISTEN=127.0.0.1:8001")],
    ),
    (
        "expose",
        File::Dockerfile,
        &[("APP_HOST=0.0.0.0", "APP_HOST=127.0.0.1")],
    ),
    (
        "compose_ports",
        File::Compose,
        &[("\"127.0.0.1:8001:8001\"", "\"8001:8001\"")],
    ),
    (
        "compose_ports",
        File::Compose,
        &[("\"8000:8000\"", "\"8000:9000\"")],
    ),
    (
        "compose_healthcheck",
        File::Compose,
        &[("/dev/tcp/127.0.0.1/8000", "/dev/tcp/127.0.0.1/8080")],
    ),
    (
        "compose_healthcheck",
        File::Compose,
        &[("GET /health HTTP", "GET /status HTTP")],
    ),
    (
        "compose_restart",
        File::Compose,
        &[(
            "    restart: unless-stopped\n    # On SIGTERM",
            "    # On SIGTERM",
        )],
    ),
    (
        "compose_mounts",
        File::Compose,
        &[("./conf:/app/conf:ro", "./conf:/etc/gateway:ro")],
    ),
    (
        "compose_mounts",
        File::Compose,
        &[("./conf:/app/conf:ro", "./conf:/app/conf")],
    ),
    (
        "compose_mounts",
        File::Compose,
        &[("./data:/app/data", "./data:/var/lib/gateway")],
    ),
    (
        "compose_mounts",
        File::Compose,
        &[("\"/app/conf/gateway.toml\"", "\"/app/conf/missing.toml\"")],
    ),
    (
        "compose_mounts",
        File::Dockerfile,
        &[(
            "sqlite:////app/data/llm_orchestrator.db",
            "sqlite:////tmp/llm_orchestrator.db",
        )],
    ),
    (
        "compose_mounts",
        File::Dockerfile,
        &[(
            "chown gateway:gateway /app/data",
            "chown gateway:gateway /app/conf",
        )],
    ),
    (
        "compose_redis",
        File::Compose,
        &[(
            "REDIS_URL: redis://redis:6379/0",
            "REDIS_URL: redis://cache:6379/0",
        )],
    ),
    (
        "compose_redis",
        File::Compose,
        &[("REDIS_ENABLED: \"true\"", "REDIS_ENABLED: \"false\"")],
    ),
    (
        "compose_redis",
        File::Compose,
        &[("\"--appendonly\", \"yes\"", "\"--appendonly\", \"no\"")],
    ),
    (
        "compose_secrets",
        File::Compose,
        &[("AUTH_TOKEN: ${AUTH_TOKEN:?", "AUTH_TOKEN: change-me #")],
    ),
    (
        "compose_secrets",
        File::Compose,
        &[(
            "OPENAI_API_KEY: ${OPENAI_API_KEY:?",
            "OPENAI_KEY: ${OPENAI_API_KEY:?",
        )],
    ),
    (
        "compose_secrets",
        File::Compose,
        &[(
            "GEMINI_API_KEY: ${GEMINI_API_KEY:-}",
            "GEMINI_API_KEY: AIza-literal",
        )],
    ),
    ("dockerignore", File::Dockerignore, &[("\ntarget/\n", "\n")]),
    ("dockerignore", File::Dockerignore, &[("\n.env\n", "\n")]),
    ("dockerignore", File::Dockerignore, &[("", "!data/\n")]),
];

/// Each check, run on a copy of the files broken on purpose, reports a
/// problem — so a check that passes on the real files means something.
#[test]
fn every_check_can_fail() {
    let repo = Repo::load();
    let mut silent = Vec::new();
    for (check_name, file, edits) in MUTATIONS {
        let mut broken = repo.clone();
        let text = match file {
            File::Cargo => &mut broken.cargo_toml,
            File::Dockerfile => &mut broken.dockerfile,
            File::Dockerignore => &mut broken.dockerignore,
            File::Compose => &mut broken.compose,
        };
        for (from, to) in edits.iter() {
            if from.is_empty() {
                text.push_str(to);
            } else if let Some(prefix) = from.strip_prefix('^') {
                let line = text
                    .lines()
                    .find(|l| l.starts_with(prefix))
                    .unwrap_or_else(|| {
                        panic!("mutation for {check_name}: no line starts with {prefix:?}; update the mutation")
                    })
                    .to_string();
                *text = text.replacen(&line, to, 1);
            } else {
                assert!(
                    text.contains(from),
                    "mutation for {check_name}: the file no longer contains {from:?}; update the mutation"
                );
                *text = text.replacen(from, to, 1);
            }
        }
        let (_, check) = CHECKS
            .iter()
            .find(|(n, _)| n == check_name)
            .expect("a known check");
        if check(&broken).is_empty() {
            silent.push(format!("{check_name} after {edits:?}"));
        }
    }
    // A repository without Cargo.lock.
    let dir = tempfile::tempdir().expect("a temp dir");
    std::fs::copy(repo.root.join("Cargo.toml"), dir.path().join("Cargo.toml")).expect("copy");
    let bare = Repo {
        root: dir.path().to_path_buf(),
        ..repo.clone()
    };
    if check_cargo_lock(&bare).is_empty() {
        silent.push("cargo_lock without Cargo.lock".into());
    }
    // Every check has at least one mutation.
    for (name, _) in CHECKS {
        if !MUTATIONS.iter().any(|(n, _, _)| n == name) {
            silent.push(format!("{name} has no mutation"));
        }
    }
    assert!(
        silent.is_empty(),
        "checks that did not catch a broken file:\n  {}",
        silent.join("\n  ")
    );
}

#[test]
fn dockerignore_matching_follows_docker_rules() {
    let ignore = Ignore::parse("target/\n**/node_modules\n*.db\n!keep.db\n/logs\ndocs/*.md\n");
    assert!(ignore.excludes("target/release/x"));
    assert!(ignore.excludes("tests/console/node_modules/a/b.js"));
    assert!(ignore.excludes("x.db"));
    assert!(
        !ignore.excludes("sub/x.db"),
        "`*.db` matches at the root only"
    );
    assert!(!ignore.excludes("keep.db"));
    assert!(ignore.excludes("logs/today"));
    assert!(ignore.excludes("docs/a.md"));
    assert!(!ignore.excludes("docs/sub/a.md"));
    assert!(!ignore.excludes("src/main.rs"));
}

#[test]
fn yaml_parses_what_compose_files_use() {
    let doc = parse_yaml(
        "a:\n  b: \"x # not a comment\" # comment\n  l:\n    - one\n    - 'two'\n  f: [\"p\", q]\n  m:\n  - k: v\n    k2: v2\n  s: >-\n    folded\n    text\n",
    )
    .expect("parses");
    let a = doc.get("a").expect("a");
    assert_eq!(a.get("b").and_then(Yaml::as_str), Some("x # not a comment"));
    assert_eq!(
        a.get("l").map(Yaml::words),
        Some(vec!["one".into(), "two".into()])
    );
    assert_eq!(
        a.get("f").map(Yaml::words),
        Some(vec!["p".into(), "q".into()])
    );
    let Some(Yaml::List(m)) = a.get("m") else {
        panic!("m is a list: {a:?}")
    };
    assert_eq!(m[0].get("k2").and_then(Yaml::as_str), Some("v2"));
    assert_eq!(a.get("s").and_then(Yaml::as_str), Some("folded text"));
    // Beyond the subset the hand-written parser knew: flow maps, anchors
    // and merge-free aliases, numbers as their text.
    let doc = parse_yaml("x: &p {b: c, n: 8080}\ny: *p\n").expect("flow map and alias");
    assert_eq!(
        doc.get("y").and_then(|y| y.get("n")).and_then(Yaml::as_str),
        Some("8080")
    );
    assert_eq!(
        doc.get("x").and_then(|x| x.get("b")).and_then(Yaml::as_str),
        Some("c")
    );
    // Not YAML: an error, not a guess.
    assert!(parse_yaml("a: [b\n").is_err());
    assert!(parse_yaml("a: b\n  c: d\n").is_err());
}
