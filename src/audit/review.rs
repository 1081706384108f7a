//! Review tools over trail files: `audit query` (filtered table or JSON lines), `audit tail` (follows the
//! newest file across rotation) and `audit report` (see [`report`](super::report)).

use std::fs::{self, File};
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, SystemTime};

pub use super::report::cmd_report;

use super::record::Record;
use super::sink::{file_name, parse_file_name, trail_files};
use super::time;
use super::verify::expand;

/// A record read back, with the exact line it came from (what `--json` prints).
#[derive(Debug, Clone)]
pub struct Loaded {
    pub record: Record,
    pub line: String,
}

/// Records of a trail, plus how many lines were not valid records (run `audit verify` for details).
#[derive(Debug, Default)]
pub struct Trail {
    pub records: Vec<Loaded>,
    pub invalid_lines: u64,
    pub files: Vec<PathBuf>,
}

/// Reads every valid record from `paths` (files and/or directories), in chain order.
pub fn load(paths: &[PathBuf]) -> io::Result<Trail> {
    let (files, errors) = expand(paths);
    if let Some(e) = errors.first() {
        return Err(io::Error::other(e.to_string()));
    }
    let mut trail = Trail {
        files: files.clone(),
        ..Trail::default()
    };
    for f in &files {
        let data = fs::read(f)?;
        for line in data.split(|&b| b == b'\n').filter(|l| !l.is_empty()) {
            match Record::parse_line(line) {
                Ok(record) => trail.records.push(Loaded {
                    record,
                    line: String::from_utf8_lossy(line).into_owned(),
                }),
                Err(_) => trail.invalid_lines += 1,
            }
        }
    }
    Ok(trail)
}

/// `audit query` filters. Text filters match a substring, or the whole value when they contain `*`/`?`
/// (glob); case-insensitive.
#[derive(Debug, Clone, Default)]
pub struct QueryFilters {
    /// Principal or attempted name.
    pub principal: Option<String>,
    /// `type:name` or just the name.
    pub resource: Option<String>,
    /// `allow`, `deny`, `success`, `failure`, `ok`, `error`.
    pub decision: Option<String>,
    /// API name (`CreateTopics`) or key (`19`).
    pub api: Option<String>,
    /// Event kind (`auth_failure`, ...).
    pub event: Option<String>,
    /// RFC 3339, a date, or relative (`1h`, `30m`, `7d`).
    pub since: Option<String>,
    pub until: Option<String>,
}

/// A bad filter or an unreadable trail.
#[derive(Debug, thiserror::Error)]
pub enum ReviewError {
    #[error("--{flag}: {value:?} is not RFC 3339, a date, or a relative time like 1h")]
    BadTime { flag: &'static str, value: String },
    #[error("cannot read trail: {0}")]
    Io(#[from] io::Error),
}

/// A text pattern: substring, or glob when it has wildcards.
#[derive(Debug, Clone)]
pub struct Pattern {
    needle: String,
    glob: Option<regex::Regex>,
}

impl Pattern {
    pub fn new(p: &str) -> Pattern {
        let glob = if p.contains(['*', '?']) {
            let mut re = String::from("(?i)^");
            for c in p.chars() {
                match c {
                    '*' => re.push_str(".*"),
                    '?' => re.push('.'),
                    c => re.push_str(&regex::escape(&c.to_string())),
                }
            }
            re.push('$');
            regex::Regex::new(&re).ok()
        } else {
            None
        };
        Pattern {
            needle: p.to_lowercase(),
            glob,
        }
    }

    pub fn matches(&self, s: &str) -> bool {
        match &self.glob {
            Some(re) => re.is_match(s),
            None => s.to_lowercase().contains(&self.needle),
        }
    }
}

struct Compiled {
    principal: Option<Pattern>,
    resource: Option<Pattern>,
    decision: Option<String>,
    api: Option<Pattern>,
    event: Option<Pattern>,
    since: Option<SystemTime>,
    until: Option<SystemTime>,
}

impl QueryFilters {
    fn compile(&self, now: SystemTime) -> Result<Compiled, ReviewError> {
        let t =
            |flag: &'static str, v: &Option<String>| -> Result<Option<SystemTime>, ReviewError> {
                v.as_ref()
                    .map(|s| {
                        time::parse_time_arg(s, now).ok_or_else(|| ReviewError::BadTime {
                            flag,
                            value: s.clone(),
                        })
                    })
                    .transpose()
            };
        Ok(Compiled {
            principal: self.principal.as_deref().map(Pattern::new),
            resource: self.resource.as_deref().map(Pattern::new),
            decision: self.decision.as_ref().map(|d| d.to_lowercase()),
            api: self.api.as_deref().map(Pattern::new),
            event: self.event.as_deref().map(Pattern::new),
            since: t("since", &self.since)?,
            until: t("until", &self.until)?,
        })
    }
}

impl Compiled {
    fn matches(&self, r: &Record) -> bool {
        let e = &r.event;
        if let Some(p) = &self.principal {
            if !e.principal().is_some_and(|s| p.matches(s)) {
                return false;
            }
        }
        if let Some(p) = &self.resource {
            let Some(res) = e.resource() else {
                return false;
            };
            let name = res.split_once(':').map_or(res.as_str(), |(_, n)| n);
            if !(p.matches(&res) || p.matches(name)) {
                return false;
            }
        }
        if let Some(d) = &self.decision {
            if e.outcome() != d {
                return false;
            }
        }
        if let Some(p) = &self.api {
            let (name, key) = match e {
                super::event::Event::AuthzDecision(d) => (&d.api_name, d.api_key),
                super::event::Event::ShadowDecision(d) => (&d.api_name, d.api_key),
                _ => return false,
            };
            if !(p.matches(name) || p.matches(&key.to_string())) {
                return false;
            }
        }
        if let Some(p) = &self.event {
            if !p.matches(e.kind()) {
                return false;
            }
        }
        if self.since.is_some() || self.until.is_some() {
            let Some(t) = r.time() else { return false };
            if self.since.is_some_and(|s| t < s) || self.until.is_some_and(|u| t > u) {
                return false;
            }
        }
        true
    }
}

/// One record as the table columns.
fn columns(r: &Record) -> [String; 8] {
    let e = &r.event;
    let conn = e.conn();
    [
        r.ts.clone(),
        r.seq.to_string(),
        e.kind().to_string(),
        e.principal().unwrap_or("-").to_string(),
        conn.map_or("-".into(), |c| format!("{} ({})", c.client, c.listener)),
        e.action(),
        e.resource().unwrap_or_else(|| "-".into()),
        e.outcome().to_string(),
    ]
}

const HEADERS: [&str; 8] = [
    "TIME",
    "SEQ",
    "EVENT",
    "PRINCIPAL",
    "CLIENT",
    "ACTION",
    "RESOURCE",
    "OUTCOME",
];
const MAX_COL: usize = 48;

fn clip(s: &str) -> String {
    // Control characters in names would break the table (and a terminal); show them escaped.
    let clean: String = s
        .chars()
        .flat_map(|c| {
            if c.is_control() {
                c.escape_default().collect::<Vec<_>>()
            } else {
                vec![c]
            }
        })
        .collect();
    if clean.chars().count() > MAX_COL {
        let mut t: String = clean.chars().take(MAX_COL - 1).collect();
        t.push('…');
        t
    } else {
        clean
    }
}

/// Renders rows as an aligned table.
pub fn table(records: &[&Record]) -> String {
    let rows: Vec<[String; 8]> = records
        .iter()
        .map(|r| columns(r).map(|c| clip(&c)))
        .collect();
    let mut widths = HEADERS.map(str::len);
    for row in &rows {
        for (w, c) in widths.iter_mut().zip(row) {
            *w = (*w).max(c.chars().count());
        }
    }
    let mut out = String::new();
    let mut line = |cells: &[String]| {
        let mut l = String::new();
        for (i, (c, w)) in cells.iter().zip(widths).enumerate() {
            if i + 1 == cells.len() {
                l.push_str(c);
            } else {
                l.push_str(c);
                l.extend(std::iter::repeat_n(' ', w - c.chars().count() + 2));
            }
        }
        out.push_str(l.trim_end());
        out.push('\n');
    };
    line(&HEADERS.map(String::from));
    for row in &rows {
        line(row);
    }
    out
}

/// The trail under `paths` and the positions of its records matching every filter, in order.
pub fn select(
    paths: &[PathBuf],
    filters: &QueryFilters,
) -> Result<(Trail, Vec<usize>), ReviewError> {
    let f = filters.compile(SystemTime::now())?;
    let trail = load(paths)?;
    let hits = (0..trail.records.len())
        .filter(|&i| f.matches(&trail.records[i].record))
        .collect();
    Ok((trail, hits))
}

/// `kafka-gateway audit query PATH... [filters] [--json]`.
pub fn cmd_query(
    paths: &[PathBuf],
    filters: &QueryFilters,
    json: bool,
) -> Result<String, ReviewError> {
    let (trail, hits) = select(paths, filters)?;
    let hits: Vec<&Loaded> = hits.iter().map(|&i| &trail.records[i]).collect();
    let mut out = String::new();
    if json {
        for l in &hits {
            out.push_str(&l.line);
            out.push('\n');
        }
        return Ok(out);
    }
    let recs: Vec<&Record> = hits.iter().map(|l| &l.record).collect();
    out.push_str(&table(&recs));
    out.push_str(&format!(
        "{} of {} records match",
        hits.len(),
        trail.records.len()
    ));
    if trail.invalid_lines > 0 {
        out.push_str(&format!(
            "; {} lines are not valid records (run `audit verify`)",
            trail.invalid_lines
        ));
    }
    out.push('\n');
    Ok(out)
}

/// `audit tail` options.
#[derive(Debug, Clone)]
pub struct TailOptions {
    /// Keep printing records as they are written, following rotation (`-f`).
    pub follow: bool,
    /// Records printed from the end before following (like `tail -n`).
    pub last: usize,
    /// Print the raw JSON lines instead of one readable line per record.
    pub json: bool,
    pub poll: Duration,
}

impl Default for TailOptions {
    fn default() -> Self {
        TailOptions {
            follow: false,
            last: 20,
            json: false,
            poll: Duration::from_millis(250),
        }
    }
}

fn one_line(l: &Loaded, json: bool) -> String {
    if json {
        return l.line.clone();
    }
    let c = columns(&l.record).map(|c| clip(&c));
    format!(
        "{} #{:<6} {:<16} {:<20} {:<24} {} {} [{}]",
        c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7]
    )
}

/// `kafka-gateway audit tail [-f] PATH`: prints the last records, then (with `follow`) new ones as they
/// are written, moving on to newer files in the directory when the trail rotates. Returns when `stop`
/// is set (the CLI never sets it; Ctrl-C ends the process).
pub fn cmd_tail(
    paths: &[PathBuf],
    opts: &TailOptions,
    out: &mut dyn Write,
    stop: &AtomicBool,
) -> Result<(), ReviewError> {
    let trail = load(paths)?;
    let skip = trail.records.len().saturating_sub(opts.last);
    for l in &trail.records[skip..] {
        writeln!(out, "{}", one_line(l, opts.json))?;
    }
    out.flush()?;
    if !opts.follow {
        return Ok(());
    }
    // Follow the newest file from its current end; rotation shows up as a newer file in its directory.
    let dir = match paths {
        [p] if p.is_dir() => p.clone(),
        _ => trail
            .files
            .last()
            .and_then(|f| f.parent().map(Path::to_path_buf))
            .unwrap_or_else(|| paths.first().cloned().unwrap_or_default()),
    };
    let prefix = trail
        .files
        .last()
        .and_then(|f| parse_file_name(&file_name(f)).map(|(p, _)| p.to_string()));
    let mut current = trail.files.last().cloned();
    let mut offset = match &current {
        Some(f) => fs::metadata(f)?.len(),
        None => 0,
    };
    let mut partial = Vec::new();
    while !stop.load(Ordering::Relaxed) {
        let progressed = match &current {
            Some(f) => follow_file(f, &mut offset, &mut partial, opts.json, out)?,
            None => false,
        };
        if progressed {
            continue;
        }
        // Nothing new in the current file: has the trail moved on to a newer one?
        let files = trail_files(&dir, prefix.as_deref()).unwrap_or_default();
        let newer = match &current {
            Some(c) => files
                .iter()
                .position(|f| f == c)
                .and_then(|i| files.get(i + 1)),
            None => files.first(),
        };
        match newer.cloned() {
            Some(n) => {
                // The writer may have finished the old file between our read and the listing.
                if let Some(f) = &current {
                    follow_file(f, &mut offset, &mut partial, opts.json, out)?;
                }
                current = Some(n);
                offset = 0;
                partial.clear();
            }
            None => std::thread::sleep(opts.poll),
        }
    }
    Ok(())
}

/// Prints the complete records appended to `f` since `offset`. Returns whether anything was read.
fn follow_file(
    f: &Path,
    offset: &mut u64,
    partial: &mut Vec<u8>,
    json: bool,
    out: &mut dyn Write,
) -> io::Result<bool> {
    let new = read_from(f, *offset)?;
    if new.is_empty() {
        return Ok(false);
    }
    *offset += new.len() as u64;
    partial.extend_from_slice(&new);
    while let Some(i) = partial.iter().position(|&b| b == b'\n') {
        let line: Vec<u8> = partial.drain(..=i).collect();
        let line = &line[..line.len() - 1];
        match Record::parse_line(line) {
            Ok(record) => {
                let l = Loaded {
                    record,
                    line: String::from_utf8_lossy(line).into_owned(),
                };
                writeln!(out, "{}", one_line(&l, json))?;
            }
            Err(e) => writeln!(out, "!! invalid line in {}: {e}", f.display())?,
        }
    }
    out.flush()?;
    Ok(true)
}

fn read_from(path: &Path, offset: u64) -> io::Result<Vec<u8>> {
    let mut f = match File::open(path) {
        Ok(f) => f,
        // Deleted by retention while we were reading it.
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(e),
    };
    f.seek(SeekFrom::Start(offset))?;
    let mut out = Vec::new();
    f.read_to_end(&mut out)?;
    Ok(out)
}
