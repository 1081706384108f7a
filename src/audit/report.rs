//! `audit report`: one self-contained HTML page (inline CSS and SVG, no scripts, no external assets) that
//! answers a reviewer's first questions: is the trail intact, what happened over time, who was denied
//! what, and where do failed logins come from.
//!
//! Every string from the trail is HTML-escaped: principal names and client ids are attacker-controlled.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::fs;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use super::event::Event;
use super::record::Record;
use super::review::{load, ReviewError, Trail};
use super::time;
use super::verify::{verify, VerifyReport};

/// What the report found, for the CLI's one-line summary.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReportSummary {
    pub records: usize,
    pub denied: usize,
    pub auth_failures: usize,
    pub chain_ok: bool,
}

/// `kafka-gateway audit report PATH... --out report.html`.
pub fn cmd_report(paths: &[PathBuf], out_html: &Path) -> Result<ReportSummary, ReviewError> {
    let trail = load(paths)?;
    let report = verify(paths);
    let (html, summary) = render_html(&trail, &report, SystemTime::now());
    fs::write(out_html, html)?;
    Ok(summary)
}

pub(crate) fn esc(s: &str) -> String {
    let mut o = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => o.push_str("&amp;"),
            '<' => o.push_str("&lt;"),
            '>' => o.push_str("&gt;"),
            '"' => o.push_str("&quot;"),
            '\'' => o.push_str("&#39;"),
            c if c.is_control() => o.push('\u{FFFD}'),
            c => o.push(c),
        }
    }
    o
}

fn truncate(s: &str, n: usize) -> String {
    if s.chars().count() > n {
        let mut t: String = s.chars().take(n - 1).collect();
        t.push('…');
        t
    } else {
        s.to_string()
    }
}

/// Series of the events-over-time chart.
const SERIES: [(&str, &str); 4] = [
    ("allowed", "#2e7d32"),
    ("denied", "#c62828"),
    ("auth failures", "#ef6c00"),
    ("other", "#90a4ae"),
];

fn series_of(e: &Event) -> usize {
    match e {
        Event::AuthzDecision(d) if d.decision == super::event::Decision::Allow => 0,
        Event::AuthzDecision(_) => 1,
        Event::AuthFailure { .. } => 2,
        _ => 3,
    }
}

fn top(counts: HashMap<String, usize>, n: usize) -> Vec<(String, usize)> {
    let mut v: Vec<_> = counts.into_iter().collect();
    v.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    v.truncate(n);
    v
}

/// The address part of a record's `conn.client`.
pub(crate) fn ip_of(client: &str) -> String {
    // `ip:port` or `[v6]:port`.
    match client.rsplit_once(':') {
        Some((ip, port)) if port.bytes().all(|b| b.is_ascii_digit()) => {
            ip.trim_start_matches('[').trim_end_matches(']').to_string()
        }
        _ => client.to_string(),
    }
}

/// Renders the page. Pure: the caller supplies the trail, its verification, and "now".
pub fn render_html(
    trail: &Trail,
    report: &VerifyReport,
    generated: SystemTime,
) -> (String, ReportSummary) {
    let recs: Vec<&Record> = trail.records.iter().map(|l| &l.record).collect();
    let mut by_kind: HashMap<String, usize> = HashMap::new();
    let mut denied_principals = HashMap::new();
    let mut denied_resources = HashMap::new();
    let mut fail_sources = HashMap::new();
    let mut fail_reasons = HashMap::new();
    let mut denials: Vec<&Record> = Vec::new();
    let mut integrity: Vec<&Record> = Vec::new();
    let mut auth_failures = 0;
    for r in &recs {
        *by_kind.entry(r.event.kind().to_string()).or_default() += 1;
        match &r.event {
            Event::AuthzDecision(d) if d.decision == super::event::Decision::Deny => {
                *denied_principals.entry(d.principal.clone()).or_default() += 1;
                *denied_resources
                    .entry(format!("{}:{}", d.resource_type, d.resource_name))
                    .or_default() += 1;
                denials.push(r);
            }
            Event::AuthFailure { conn, reason, .. } => {
                auth_failures += 1;
                *fail_sources.entry(ip_of(&conn.client)).or_default() += 1;
                *fail_reasons.entry(reason.clone()).or_default() += 1;
            }
            Event::AuditGap { .. }
            | Event::AuditFailure { .. }
            | Event::AuditRetention { .. }
            | Event::AuditTornTail { .. } => integrity.push(r),
            Event::Reload { error: Some(_), .. } => integrity.push(r),
            _ => {}
        }
    }
    let summary = ReportSummary {
        records: recs.len(),
        denied: denials.len(),
        auth_failures,
        chain_ok: report.ok(),
    };
    let times: Vec<SystemTime> = recs.iter().filter_map(|r| r.time()).collect();
    let first = times.iter().min().copied();
    let last = times.iter().max().copied();

    let mut h = String::with_capacity(64 * 1024);
    h.push_str("<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n");
    h.push_str("<title>Kafka gateway audit report</title>\n<style>\n");
    h.push_str(CSS);
    h.push_str("</style>\n</head>\n<body>\n<main>\n");
    let _ = write!(
        h,
        "<h1>Kafka gateway audit report</h1>\n<p class=\"meta\">Generated {} from {} file(s), {} records{}.</p>\n",
        esc(&time::rfc3339(generated)),
        trail.files.len(),
        recs.len(),
        match (first, last) {
            (Some(a), Some(b)) => format!(
                ", {} to {}",
                esc(&time::rfc3339(a)),
                esc(&time::rfc3339(b))
            ),
            _ => String::new(),
        }
    );

    // Verification banner.
    if let Some(bad) = &report.first_bad {
        let _ = write!(
            h,
            "<section class=\"banner bad\"><h2>Chain verification FAILED</h2>\n<p>First bad record: <b>{}</b> line {}{}</p>\n<p>{}</p>\n<p>{} records verified before it. Records after it cannot be trusted.</p>\n",
            esc(&bad.file.display().to_string()),
            bad.line,
            bad.seq.map(|s| format!(" (seq {s})")).unwrap_or_default(),
            esc(&bad.problem.to_string()),
            report.records
        );
    } else {
        let _ = write!(
            h,
            "<section class=\"banner ok\"><h2>Chain verified</h2>\n<p>{} records, seq {}..{}, unbroken. Head hash <code>{}</code>{}.</p>\n",
            report.records,
            report.first_seq.unwrap_or(0),
            report.last_seq.unwrap_or(0),
            esc(report.last_hash.as_deref().unwrap_or("-")),
            if report.ends_with_stop {
                "; ends with a clean gateway stop"
            } else {
                " (compare with an external copy to rule out removal of the newest records)"
            }
        );
    }
    if !report.notes.is_empty() {
        h.push_str("<ul class=\"notes\">\n");
        for n in &report.notes {
            let _ = writeln!(h, "<li>{}</li>", esc(n));
        }
        h.push_str("</ul>\n");
    }
    h.push_str("</section>\n");

    // Summary cards.
    let count = |k: &str| by_kind.get(k).copied().unwrap_or(0);
    let gaps = count("audit_gap") + count("audit_failure");
    h.push_str("<section class=\"cards\">\n");
    for (label, n, warn) in [
        ("records", recs.len(), false),
        ("connections", count("connection_open"), false),
        ("auth successes", count("auth_success"), false),
        ("auth failures", auth_failures, auth_failures > 0),
        ("allowed", count("authz_decision") - denials.len(), false),
        ("denied", denials.len(), !denials.is_empty()),
        ("audit gaps / failures", gaps, gaps > 0),
        ("reloads", count("reload"), false),
    ] {
        let _ = writeln!(
            h,
            "<div class=\"card{}\"><div class=\"n\">{n}</div><div class=\"l\">{label}</div></div>",
            if warn { " warn" } else { "" }
        );
    }
    h.push_str("</section>\n");

    // Events over time.
    h.push_str("<section>\n<h2>Events over time</h2>\n");
    match (first, last) {
        (Some(a), Some(b)) => h.push_str(&time_chart(&recs, a, b)),
        _ => h.push_str("<p class=\"empty\">No records.</p>\n"),
    }
    h.push_str("</section>\n");

    h.push_str("<section class=\"grid\">\n");
    h.push_str(&bar_panel(
        "Top denied principals",
        &top(denied_principals, 10),
        "#c62828",
    ));
    h.push_str(&bar_panel(
        "Top denied resources",
        &top(denied_resources, 10),
        "#c62828",
    ));
    h.push_str(&bar_panel(
        "Authentication failures by source address",
        &top(fail_sources, 10),
        "#ef6c00",
    ));
    h.push_str(&bar_panel(
        "Authentication failures by reason",
        &top(fail_reasons, 10),
        "#ef6c00",
    ));
    h.push_str("</section>\n");

    // Recent denials.
    h.push_str("<section>\n<h2>Recent denials</h2>\n");
    if denials.is_empty() {
        h.push_str("<p class=\"empty\">No denied requests.</p>\n");
    } else {
        h.push_str("<table>\n<thead><tr><th>Time</th><th>Seq</th><th>Principal</th><th>Client</th><th>API</th><th>Resource</th><th>Operation</th><th>Rule</th></tr></thead>\n<tbody>\n");
        for r in denials.iter().rev().take(50) {
            if let Event::AuthzDecision(d) = &r.event {
                let rule = d.rule.as_ref().map_or("default deny".to_string(), |ru| {
                    format!("{}:{} {}", ru.file, ru.line, ru.text)
                });
                let _ = writeln!(
                    h,
                    "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{} v{}</td><td>{}:{}</td><td>{}</td><td><code>{}</code></td></tr>",
                    esc(&r.ts),
                    r.seq,
                    esc(&truncate(&d.principal, 60)),
                    esc(&d.conn.client),
                    esc(&d.api_name),
                    d.api_version,
                    esc(&d.resource_type),
                    esc(&truncate(&d.resource_name, 80)),
                    esc(&d.operation),
                    esc(&truncate(&rule, 100))
                );
            }
        }
        h.push_str("</tbody>\n</table>\n");
    }
    h.push_str("</section>\n");

    // Trail integrity events.
    h.push_str("<section>\n<h2>Trail integrity and configuration events</h2>\n");
    if integrity.is_empty() {
        h.push_str("<p class=\"empty\">No gaps, sink failures, retention deletions, torn records or failed reloads.</p>\n");
    } else {
        h.push_str("<table>\n<thead><tr><th>Time</th><th>Seq</th><th>Event</th><th>Details</th></tr></thead>\n<tbody>\n");
        for r in &integrity {
            let _ = writeln!(
                h,
                "<tr class=\"warnrow\"><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
                esc(&r.ts),
                r.seq,
                esc(r.event.kind()),
                esc(&truncate(&r.event.action(), 200))
            );
        }
        h.push_str("</tbody>\n</table>\n");
    }
    h.push_str("</section>\n");

    // Events by kind.
    h.push_str("<section>\n<h2>Records by kind</h2>\n<table class=\"narrow\">\n<tbody>\n");
    for (k, n) in top(by_kind, usize::MAX) {
        let _ = writeln!(h, "<tr><td>{}</td><td class=\"num\">{n}</td></tr>", esc(&k));
    }
    h.push_str("</tbody>\n</table>\n</section>\n");
    if trail.invalid_lines > 0 {
        let _ = writeln!(
            h,
            "<p class=\"meta\">{} line(s) were not valid records and are not counted above.</p>",
            trail.invalid_lines
        );
    }
    h.push_str("</main>\n</body>\n</html>\n");
    (h, summary)
}

/// Picks a bucket width so the chart has at most ~120 bars.
fn bucket_width(span: Duration) -> (u64, &'static str) {
    const STEPS: [(u64, &str); 9] = [
        (60, "minute"),
        (300, "5 minutes"),
        (900, "15 minutes"),
        (3600, "hour"),
        (3 * 3600, "3 hours"),
        (6 * 3600, "6 hours"),
        (86_400, "day"),
        (7 * 86_400, "week"),
        (30 * 86_400, "30 days"),
    ];
    for (w, name) in STEPS {
        if span.as_secs() / w < 120 {
            return (w, name);
        }
    }
    (365 * 86_400, "year")
}

fn time_chart(recs: &[&Record], first: SystemTime, last: SystemTime) -> String {
    let span = last.duration_since(first).unwrap_or_default();
    let (width, unit) = bucket_width(span);
    let secs = |t: SystemTime| t.duration_since(UNIX_EPOCH).unwrap_or_default().as_secs();
    let start = secs(first) / width * width;
    let n = ((secs(last) / width * width - start) / width + 1) as usize;
    let mut buckets = vec![[0usize; 4]; n];
    for r in recs {
        if let Some(t) = r.time() {
            let i = ((secs(t) / width * width - start) / width) as usize;
            if let Some(b) = buckets.get_mut(i) {
                b[series_of(&r.event)] += 1;
            }
        }
    }
    let max = buckets
        .iter()
        .map(|b| b.iter().sum::<usize>())
        .max()
        .unwrap_or(1)
        .max(1);
    let (w, hgt, left, bottom, top_pad) = (960.0f64, 240.0f64, 48.0, 28.0, 8.0);
    let plot_w = w - left - 8.0;
    let plot_h = hgt - bottom - top_pad;
    let bw = plot_w / n as f64;
    let label = |i: usize| {
        let t = UNIX_EPOCH + Duration::from_secs(start + i as u64 * width);
        let s = time::rfc3339(t);
        if width >= 86_400 {
            s[..10].to_string()
        } else {
            s[..16].replace('T', " ")
        }
    };
    let mut s = String::new();
    let _ = write!(
        s,
        "<p class=\"meta\">One bar per {unit} (UTC).</p>\n<svg class=\"chart\" viewBox=\"0 0 {w} {hgt}\" width=\"100%\" role=\"img\" aria-label=\"Events over time\">\n"
    );
    for frac in [0.0, 0.5, 1.0] {
        let y = top_pad + plot_h * (1.0 - frac);
        let _ = writeln!(
            s,
            "<line x1=\"{left}\" y1=\"{y:.1}\" x2=\"{}\" y2=\"{y:.1}\" class=\"grid\" />\n<text x=\"{}\" y=\"{:.1}\" class=\"axis\" text-anchor=\"end\">{}</text>",
            w - 8.0,
            left - 6.0,
            y + 4.0,
            (max as f64 * frac).round()
        );
    }
    for (i, b) in buckets.iter().enumerate() {
        let x = left + i as f64 * bw;
        let mut y = top_pad + plot_h;
        let tip = format!(
            "{}: {} allowed, {} denied, {} auth failures, {} other",
            label(i),
            b[0],
            b[1],
            b[2],
            b[3]
        );
        let _ = writeln!(s, "<g><title>{}</title>", esc(&tip));
        for (k, &v) in b.iter().enumerate() {
            if v == 0 {
                continue;
            }
            let bh = plot_h * v as f64 / max as f64;
            y -= bh;
            let _ = writeln!(
                s,
                "<rect x=\"{:.2}\" y=\"{y:.2}\" width=\"{:.2}\" height=\"{bh:.2}\" fill=\"{}\" />",
                x + bw * 0.1,
                (bw * 0.8).max(0.5),
                SERIES[k].1
            );
        }
        s.push_str("</g>\n");
    }
    let mut ticks = vec![0, n / 2, n - 1];
    ticks.dedup();
    for i in ticks {
        let x = left + (i as f64 + 0.5) * bw;
        let _ = writeln!(
            s,
            "<text x=\"{x:.1}\" y=\"{:.1}\" class=\"axis\" text-anchor=\"middle\">{}</text>",
            hgt - 8.0,
            esc(&label(i))
        );
    }
    s.push_str("</svg>\n<p class=\"legend\">");
    for (name, color) in SERIES {
        let _ = write!(
            s,
            "<span><i style=\"background:{color}\"></i>{name}</span> "
        );
    }
    s.push_str("</p>\n");
    s
}

fn bar_panel(title: &str, rows: &[(String, usize)], color: &str) -> String {
    let mut s = String::new();
    let _ = writeln!(s, "<div class=\"panel\">\n<h3>{}</h3>", esc(title));
    if rows.is_empty() {
        s.push_str("<p class=\"empty\">None.</p>\n</div>\n");
        return s;
    }
    let max = rows.iter().map(|r| r.1).max().unwrap_or(1).max(1) as f64;
    let (w, row_h, label_w) = (460.0f64, 22.0f64, 200.0f64);
    let hgt = row_h * rows.len() as f64 + 4.0;
    let _ = writeln!(
        s,
        "<svg class=\"bars\" viewBox=\"0 0 {w} {hgt}\" width=\"100%\" role=\"img\" aria-label=\"{}\">",
        esc(title)
    );
    for (i, (label, n)) in rows.iter().enumerate() {
        let y = i as f64 * row_h + 2.0;
        let bw = (w - label_w - 50.0) * *n as f64 / max;
        let _ = writeln!(
            s,
            "<g><title>{}: {n}</title><text x=\"{:.1}\" y=\"{:.1}\" class=\"lbl\" text-anchor=\"end\">{}</text><rect x=\"{label_w}\" y=\"{:.1}\" width=\"{bw:.1}\" height=\"{:.1}\" fill=\"{color}\" /><text x=\"{:.1}\" y=\"{:.1}\" class=\"cnt\">{n}</text></g>",
            esc(label),
            label_w - 6.0,
            y + 15.0,
            esc(&truncate(label, 28)),
            y + 3.0,
            row_h - 6.0,
            label_w + bw + 4.0,
            y + 15.0
        );
    }
    s.push_str("</svg>\n</div>\n");
    s
}

const CSS: &str = "
body { margin: 0; background: #f4f6f8; color: #1f2933; font: 14px/1.45 system-ui, -apple-system, 'Segoe UI', Roboto, sans-serif; }
main { max-width: 1100px; margin: 0 auto; padding: 24px; }
h1 { font-size: 24px; margin: 0 0 4px; }
h2 { font-size: 17px; margin: 0 0 10px; }
h3 { font-size: 14px; margin: 0 0 8px; color: #3e4c59; }
section { background: #fff; border-radius: 8px; padding: 16px 20px; margin: 16px 0; box-shadow: 0 1px 3px rgba(0,0,0,.08); }
.meta { color: #616e7c; margin: 4px 0; }
.banner.ok { border-left: 6px solid #2e7d32; background: #edf7ed; }
.banner.bad { border-left: 6px solid #c62828; background: #fdecea; }
.banner h2 { margin-bottom: 4px; }
.banner p { margin: 4px 0; }
.notes { margin: 6px 0 0; color: #3e4c59; }
.cards { display: flex; flex-wrap: wrap; gap: 10px; background: none; box-shadow: none; padding: 0; }
.card { flex: 1 1 110px; background: #fff; border-radius: 8px; padding: 12px; box-shadow: 0 1px 3px rgba(0,0,0,.08); }
.card .n { font-size: 22px; font-weight: 600; }
.card .l { color: #616e7c; font-size: 12px; text-transform: uppercase; letter-spacing: .03em; }
.card.warn .n { color: #c62828; }
.grid { display: grid; grid-template-columns: repeat(auto-fit, minmax(440px, 1fr)); gap: 18px; }
.panel { min-width: 0; }
svg text { font: 11px system-ui, sans-serif; fill: #3e4c59; }
svg .grid { stroke: #e4e7eb; stroke-width: 1; }
svg rect:hover { opacity: .8; }
.legend span { margin-right: 14px; color: #3e4c59; }
.legend i { display: inline-block; width: 10px; height: 10px; margin-right: 5px; border-radius: 2px; }
table { border-collapse: collapse; width: 100%; font-size: 13px; }
th, td { text-align: left; padding: 5px 8px; border-bottom: 1px solid #e4e7eb; vertical-align: top; }
th { background: #f0f4f8; font-weight: 600; }
td code, p code { font-size: 12px; word-break: break-all; }
.narrow { width: auto; }
.num { text-align: right; }
.warnrow td { background: #fff8e1; }
.empty { color: #7b8794; font-style: italic; }
";
