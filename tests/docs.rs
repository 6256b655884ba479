//! Keeps the Chinese README (`README.zh-CN.md`) in step with the English one
//! (`README.md`), structurally: the translation is checked for what must
//! not change in a translation, so a README.md edit that is not carried over
//! fails here. No gateway is started; both files are read as plain text.
//!
//! What is compared (code blocks are the fenced ones; everything else is read
//! outside them):
//! - headings: the same sequence of levels (`##`, `###`, …);
//! - code blocks: the same blocks, byte for byte, in the same order;
//! - tables: the same number, each with the same rows and columns, and every
//!   cell of README.md made only of code spans (`APP_PORT`, `server.port`,
//!   `llm_requests_total`, `GET /api/logs`, …) identical in the translation;
//! - inline code: every code span of README.md (names, keys, variables,
//!   values) appears in the translation;
//! - links: every link target of README.md other than an in-page anchor is
//!   linked from the translation, each in-page anchor of either file names a
//!   heading of that file, and the two files link to each other before their
//!   first section.
//!
//! Every check is a function returning the problems it finds; each runs on
//! the real files, and `every_check_can_fail` runs each again on a copy of
//! the translation broken on purpose, so none of them passes vacuously.

use std::collections::BTreeSet;
use std::path::PathBuf;

type Problems = Vec<String>;

const EN: &str = "README.md";
const ZH: &str = "README.zh-CN.md";

fn read(name: &str) -> String {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(name);
    std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("cannot read {name} at the repository root: {e}"))
}

// ================================================================ parsing

/// A Markdown file split into fenced code blocks and the lines outside them.
struct Doc {
    /// Each fenced block, fences and indentation included, with the line
    /// number of its opening fence.
    fences: Vec<(usize, String)>,
    /// Lines outside fenced blocks, with their 1-based line numbers.
    prose: Vec<(usize, String)>,
}

fn is_fence(line: &str) -> bool {
    line.trim_start().starts_with("```")
}

impl Doc {
    fn parse(text: &str) -> Doc {
        let mut fences = Vec::new();
        let mut prose = Vec::new();
        let mut open: Option<(usize, Vec<&str>)> = None;
        for (i, line) in text.lines().enumerate() {
            match open.as_mut() {
                Some((_, block)) => {
                    block.push(line);
                    if is_fence(line) {
                        if let Some((at, block)) = open.take() {
                            fences.push((at, block.join("\n")));
                        }
                    }
                }
                None if is_fence(line) => open = Some((i + 1, vec![line])),
                None => prose.push((i + 1, line.to_string())),
            }
        }
        // An unclosed fence runs to the end of the file, as Markdown reads it.
        if let Some((at, block)) = open {
            fences.push((at, block.join("\n")));
        }
        Doc { fences, prose }
    }

    /// (level, text, line) of every ATX heading.
    fn headings(&self) -> Vec<(usize, String, usize)> {
        self.prose
            .iter()
            .filter_map(|(n, line)| {
                let level = line.bytes().take_while(|&c| c == b'#').count();
                let rest = &line[level..];
                ((1..=6).contains(&level) && rest.starts_with(' '))
                    .then(|| (level, rest.trim().to_string(), *n))
            })
            .collect()
    }

    /// Tables: runs of lines starting with `|` whose second line is the
    /// delimiter row; each as (first line number, rows of cells), delimiter
    /// row left out.
    fn tables(&self) -> Vec<(usize, Vec<Vec<String>>)> {
        let mut out = Vec::new();
        let mut run: Vec<(usize, &str)> = Vec::new();
        let mut flush = |run: &mut Vec<(usize, &str)>| {
            if run.len() >= 2 && is_delimiter_row(run[1].1) {
                let rows = run
                    .iter()
                    .enumerate()
                    .filter(|(i, _)| *i != 1)
                    .map(|(_, (_, l))| split_row(l))
                    .collect();
                out.push((run[0].0, rows));
            }
            run.clear();
        };
        for (n, line) in &self.prose {
            if line.trim_start().starts_with('|') {
                run.push((*n, line.as_str()));
            } else {
                flush(&mut run);
            }
        }
        flush(&mut run);
        out
    }

    /// Paragraph-sized pieces of prose (split at blank lines and at every
    /// table row), joined with newlines: code spans and links never cross
    /// their borders.
    fn paragraphs(&self) -> Vec<String> {
        let mut out = Vec::new();
        let mut cur = Vec::new();
        for (_, line) in &self.prose {
            if line.trim().is_empty() || line.trim_start().starts_with('|') {
                if !cur.is_empty() {
                    out.push(cur.join("\n"));
                    cur.clear();
                }
                if line.trim_start().starts_with('|') {
                    out.push(line.clone());
                }
            } else {
                cur.push(line.as_str());
            }
        }
        if !cur.is_empty() {
            out.push(cur.join("\n"));
        }
        out
    }

    /// Every inline code span, whitespace runs (line breaks included)
    /// collapsed to one space, as Markdown renders it.
    fn code_spans(&self) -> BTreeSet<String> {
        self.paragraphs()
            .iter()
            .flat_map(|p| code_spans(p).0)
            .collect()
    }

    /// Every link target `[text](target)`, outside code spans.
    fn links(&self) -> Vec<String> {
        self.paragraphs()
            .iter()
            .flat_map(|p| link_targets(&code_spans(p).1))
            .collect()
    }
}

fn is_delimiter_row(line: &str) -> bool {
    let cells = split_row(line);
    !cells.is_empty()
        && cells.iter().all(|c| {
            let c = c.trim_matches(':');
            c.len() >= 3 && c.chars().all(|ch| ch == '-')
        })
}

/// The cells of a table row, split at every `|` that is not escaped.
fn split_row(line: &str) -> Vec<String> {
    let line = line.trim();
    let line = line.strip_prefix('|').unwrap_or(line);
    let line = line.strip_suffix('|').unwrap_or(line);
    let mut cells = Vec::new();
    let mut cur = String::new();
    let mut chars = line.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\\' if chars.peek() == Some(&'|') => {
                cur.push('\\');
                cur.push('|');
                chars.next();
            }
            '|' => cells.push(std::mem::take(&mut cur).trim().to_string()),
            _ => cur.push(c),
        }
    }
    cells.push(cur.trim().to_string());
    cells
}

/// (the code spans of `text`, `text` with each span replaced by a space).
/// A span opens with a run of backticks and closes at the next run of the
/// same length; an opening run with no closing one is literal text.
fn code_spans(text: &str) -> (Vec<String>, String) {
    let b = text.as_bytes();
    let mut spans = Vec::new();
    let mut rest = String::new();
    let mut i = 0;
    let mut literal_from = 0;
    while i < b.len() {
        if b[i] != b'`' {
            i += 1;
            continue;
        }
        let open = b[i..].iter().take_while(|&&c| c == b'`').count();
        let body = i + open;
        let mut j = body;
        let mut close = None;
        while j < b.len() {
            if b[j] == b'`' {
                let run = b[j..].iter().take_while(|&&c| c == b'`').count();
                if run == open {
                    close = Some(j);
                    break;
                }
                j += run;
            } else {
                j += 1;
            }
        }
        match close {
            Some(end) => {
                rest.push_str(&text[literal_from..i]);
                rest.push(' ');
                let content = text[body..end].split_whitespace().collect::<Vec<_>>();
                spans.push(content.join(" "));
                i = end + open;
                literal_from = i;
            }
            None => i = body,
        }
    }
    rest.push_str(&text[literal_from..]);
    (spans, rest)
}

/// The targets of `[text](target)` links in `text`.
fn link_targets(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut from = 0;
    while let Some(at) = text[from..].find("](") {
        let start = from + at + 2;
        match text[start..].find(')') {
            Some(len) => {
                out.push(text[start..start + len].trim().to_string());
                from = start + len;
            }
            None => break,
        }
    }
    out
}

/// A heading's anchor as GitHub makes it: lower case; letters, digits, `-`
/// and `_` kept; spaces become `-`; everything else (punctuation, full-width
/// punctuation included) dropped.
fn slug(heading: &str) -> String {
    heading
        .chars()
        .filter_map(|c| match c {
            ' ' => Some('-'),
            '-' | '_' => Some(c),
            c if c.is_alphanumeric() => Some(c),
            _ => None,
        })
        .flat_map(char::to_lowercase)
        .collect()
}

/// True when a table cell is nothing but code spans (and the commas,
/// slashes and spaces between them): names that a translation must keep as
/// they are. A cell with any other text (even brackets, which Chinese writes
/// full-width) is the translator's.
fn only_code(cell: &str) -> bool {
    let (spans, rest) = code_spans(cell);
    !spans.is_empty() && rest.chars().all(|c| c.is_whitespace() || ",/".contains(c))
}

/// The first line of a block's content (after the opening fence).
fn first_line(block: &str) -> &str {
    block.lines().nth(1).unwrap_or("").trim()
}

/// Where two blocks first differ: (line within the block, each side's line).
fn first_difference<'a>(a: &'a str, b: &'a str) -> (usize, &'a str, &'a str) {
    let (mut la, mut lb) = (a.lines(), b.lines());
    let mut n = 1;
    loop {
        match (la.next(), lb.next()) {
            (Some(x), Some(y)) if x == y => n += 1,
            (x, y) => {
                return (
                    n,
                    x.unwrap_or("(end of block)"),
                    y.unwrap_or("(end of block)"),
                )
            }
        }
    }
}

// ================================================================ checks

fn check_headings(en: &Doc, zh: &Doc) -> Problems {
    let (he, hz) = (en.headings(), zh.headings());
    let mut out = Problems::new();
    for level in 1..=6 {
        let count = |h: &[(usize, String, usize)]| h.iter().filter(|x| x.0 == level).count();
        let (ce, cz) = (count(&he), count(&hz));
        if ce != cz {
            out.push(format!(
                "{EN} has {ce} level-{level} headings, {ZH} has {cz}"
            ));
        }
    }
    if let Some(i) =
        (0..he.len().max(hz.len())).find(|&i| he.get(i).map(|h| h.0) != hz.get(i).map(|h| h.0))
    {
        let en_at = he.get(i).map_or("(none)".to_string(), |h| {
            format!("{} `{}` (line {})", "#".repeat(h.0), h.1, h.2)
        });
        let zh_at = hz.get(i).map_or("(none)".to_string(), |h| {
            format!("{} `{}` (line {})", "#".repeat(h.0), h.1, h.2)
        });
        out.push(format!(
            "heading {} differs in level: {EN} {en_at}, {ZH} {zh_at}",
            i + 1
        ));
    }
    out
}

/// Blocks are matched by content, so one block added to README.md reports
/// that block, not every block after it.
fn check_code_blocks(en: &Doc, zh: &Doc) -> Problems {
    let mut out = Problems::new();
    let mut unmatched: Vec<Option<&(usize, String)>> = zh.fences.iter().map(Some).collect();
    let mut order = Vec::new();
    for (le, block) in &en.fences {
        let found = unmatched
            .iter()
            .position(|z| z.is_some_and(|(_, text)| text == block));
        match found {
            Some(i) => {
                unmatched[i] = None;
                order.push(i);
            }
            None => {
                // The nearest translation block with the same opening line,
                // to show where the copy went wrong.
                let near = unmatched
                    .iter()
                    .flatten()
                    .find(|(_, z)| z.lines().take(2).eq(block.lines().take(2)));
                let hint = near.map_or(String::new(), |(lz, z)| {
                    let (n, a, b) = first_difference(block, z);
                    format!(" ({ZH}:{lz} differs at its line {n}: {a:?} vs {b:?})")
                });
                out.push(format!(
                    "code block at {EN}:{le} ({:?}) is not in {ZH} verbatim{hint}",
                    first_line(block)
                ));
            }
        }
    }
    for (lz, z) in unmatched.into_iter().flatten() {
        out.push(format!(
            "code block at {ZH}:{lz} ({:?}) is none of {EN}'s (blocks are copied verbatim)",
            first_line(z)
        ));
    }
    if out.is_empty() && order.windows(2).any(|w| w[0] > w[1]) {
        out.push(format!("{ZH} has {EN}'s code blocks in another order"));
    }
    out
}

fn check_tables(en: &Doc, zh: &Doc) -> Problems {
    let (te, tz) = (en.tables(), zh.tables());
    let mut out = Problems::new();
    if te.len() != tz.len() {
        out.push(format!(
            "{EN} has {} tables, {ZH} has {}",
            te.len(),
            tz.len()
        ));
    }
    for ((le, re), (lz, rz)) in te.iter().zip(&tz) {
        if re.len() != rz.len() {
            out.push(format!(
                "table at {EN}:{le} has {} rows, its translation at {ZH}:{lz} has {}",
                re.len(),
                rz.len()
            ));
        }
        for (r, (row_e, row_z)) in re.iter().zip(rz).enumerate() {
            if row_e.len() != row_z.len() {
                out.push(format!(
                    "table at {EN}:{le}, row {}: {} cells, {} in {ZH}:{lz}",
                    r + 1,
                    row_e.len(),
                    row_z.len()
                ));
            }
            for (cell_e, cell_z) in row_e.iter().zip(row_z) {
                if only_code(cell_e) && cell_e != cell_z {
                    out.push(format!(
                        "table at {EN}:{le}, row {}: {cell_e} became {cell_z} in {ZH}:{lz} (names stay as they are)",
                        r + 1
                    ));
                }
            }
        }
    }
    out
}

fn check_code_spans(en: &Doc, zh: &Doc) -> Problems {
    let have = zh.code_spans();
    en.code_spans()
        .into_iter()
        .filter(|s| !have.contains(s))
        .map(|s| format!("`{s}` (inline code in {EN}) does not appear in {ZH}"))
        .collect()
}

fn check_links(en: &Doc, zh: &Doc) -> Problems {
    let mut out = Problems::new();
    let zh_links: BTreeSet<String> = zh.links().into_iter().collect();
    for target in en.links() {
        // The English file's link to the translation is the language switch,
        // checked below.
        if !target.starts_with('#') && target != ZH && !zh_links.contains(&target) {
            out.push(format!("{EN} links to {target}; {ZH} does not"));
        }
    }
    for (name, doc) in [(EN, en), (ZH, zh)] {
        let anchors: BTreeSet<String> = doc.headings().iter().map(|h| slug(&h.1)).collect();
        for target in doc.links() {
            if let Some(anchor) = target.strip_prefix('#') {
                if !anchors.contains(anchor) {
                    out.push(format!(
                        "{name} links to #{anchor}, which is none of its headings"
                    ));
                }
            }
        }
    }
    // Each file names the other before its first section.
    for (name, doc, other) in [(EN, en, ZH), (ZH, zh, EN)] {
        let top = Doc {
            fences: Vec::new(),
            prose: doc
                .prose
                .iter()
                .take_while(|(_, l)| !l.starts_with("## "))
                .cloned()
                .collect(),
        };
        if !top.links().iter().any(|t| t == other) {
            out.push(format!(
                "{name} does not link to {other} before its first section"
            ));
        }
    }
    out
}

type Check = fn(&Doc, &Doc) -> Problems;

const CHECKS: [(&str, Check); 5] = [
    ("headings", check_headings),
    ("code blocks", check_code_blocks),
    ("tables", check_tables),
    ("inline code", check_code_spans),
    ("links", check_links),
];

fn run(name: &str, check: Check) {
    let problems = check(&Doc::parse(&read(EN)), &Doc::parse(&read(ZH)));
    assert!(
        problems.is_empty(),
        "{ZH} is out of step with {EN} ({name}); carry the English change over to the translation:\n  {}",
        problems.join("\n  ")
    );
}

// ================================================================ tests

#[test]
fn translation_has_the_same_headings() {
    run("headings", check_headings);
}

#[test]
fn translation_has_every_code_block_verbatim() {
    run("code blocks", check_code_blocks);
}

#[test]
fn translation_has_the_same_tables_and_names() {
    run("tables", check_tables);
}

#[test]
fn translation_keeps_every_inline_name() {
    run("inline code", check_code_spans);
}

#[test]
fn links_and_anchors_resolve() {
    run("links", check_links);
}

/// Each check finds a problem in a copy of the translation broken on purpose
/// (and the broken copies are still close to the real file, so the check is
/// what catches them).
#[test]
fn every_check_can_fail() {
    let en_text = read(EN);
    let zh_text = read(ZH);
    let en = Doc::parse(&en_text);
    let zh = Doc::parse(&zh_text);

    // One edit per check: (check, description, broken translation).
    let first = |needle: &str| {
        zh_text
            .find(needle)
            .unwrap_or_else(|| panic!("{ZH} has no {needle:?} to break"))
    };
    let mut cases: Vec<(&str, &str, String)> = Vec::new();

    // headings: a `###` turned into a `##`.
    let at = first("\n### ");
    cases.push((
        "headings",
        "a level-3 heading made level 2",
        format!("{}\n## {}", &zh_text[..at], &zh_text[at + 5..]),
    ));

    // code blocks: one character changed inside the first block.
    let at = first("```sh\n") + "```sh\n".len();
    cases.push((
        "code blocks",
        "a code block edited",
        format!("{}#{}", &zh_text[..at], &zh_text[at..]),
    ));

    // tables: the row of `APP_PORT` dropped, then its name translated.
    let row = first("| `APP_PORT` |");
    let end = row + zh_text[row..].find('\n').unwrap_or(zh_text.len() - row) + 1;
    cases.push((
        "tables",
        "a table row dropped",
        format!("{}{}", &zh_text[..row], &zh_text[end..]),
    ));
    cases.push((
        "tables",
        "a name in a table translated",
        zh_text.replacen("| `APP_PORT` |", "| `应用端口` |", 1),
    ));

    // inline code: every mention of one inline name removed.
    cases.push((
        "inline code",
        "an inline name dropped",
        zh_text.replace("`llm_failovers_total`", "llm_failovers_total"),
    ));

    // links: an anchor that names no heading, and the link back removed.
    cases.push((
        "links",
        "an in-page link to a missing heading",
        zh_text.replacen("(#协议翻译)", "(#translation)", 1),
    ));
    cases.push((
        "links",
        "the link back to README.md removed",
        zh_text.replacen("[English](README.md)", "English", 1),
    ));

    for (name, what, broken) in cases {
        assert_ne!(broken, zh_text, "{what}: the edit did not apply");
        let check = CHECKS
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, c)| *c)
            .unwrap_or_else(|| panic!("no check named {name}"));
        // Compared with the real files' own problems, so this test still
        // means something while the translation is out of step.
        let before = check(&en, &zh);
        let after = check(&en, &Doc::parse(&broken));
        assert!(
            !after.is_empty() && after != before,
            "the {name} check did not notice {what}"
        );
    }
}

#[test]
fn slugs_follow_github() {
    assert_eq!(slug("Routing and failover"), "routing-and-failover");
    assert_eq!(
        slug("Environment variables (the original design's names)"),
        "environment-variables-the-original-designs-names"
    );
    assert_eq!(slug("Web 控制台"), "web-控制台");
    assert_eq!(
        slug("环境变量（沿用原设计的名称）"),
        "环境变量沿用原设计的名称"
    );
}

#[test]
fn code_spans_are_read_as_markdown_reads_them() {
    let (spans, rest) = code_spans("use `a`, ``b ` c``, `x\ny` and a lone ` tick");
    assert_eq!(spans, ["a", "b ` c", "x y"]);
    assert_eq!(rest, "use  ,  ,   and a lone ` tick");
    assert_eq!(split_row(r"| `a\|b` | c |"), [r"`a\|b`", "c"]);
    assert!(only_code("`LOG_ROTATION`, `LOG_MAX_FILES`"));
    assert!(only_code(
        "`GET/POST /api/providers`, `GET/PUT/PATCH/DELETE /api/providers/{id}`"
    ));
    assert!(!only_code("`GET /api/stats` (`/api/stats/usage`)"));
    assert!(!only_code(
        "`127.0.0.1:8001`, unset (= `AUTH_TOKEN`), `true`"
    ));
}
