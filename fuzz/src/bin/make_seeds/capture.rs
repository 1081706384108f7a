//! Seeds from frames captured while real clients ran through the gateway (`fuzz/capture_frames.py`,
//! run by `scripts/fuzz.sh --capture`).
//!
//! The capture directory holds:
//! - `frames/<leg>-c<conn>-<seq>-<api key>-<api version>.req`: one request payload (length prefix
//!   removed) on connection `<conn>` of `<leg>` (`client`: client to gateway, `upstream`: gateway
//!   to broker), and `.resp` with the same stem: the response to it, when one came;
//! - `streams/<leg>-c<conn>.c2s`: the first bytes a client sent on one connection, as sent.
//!
//! They become, in each target's input format: `decode_request` (every request), `rewrite_response`
//! (every response, behind the selector bytes), `merge_response` (request/response pairs),
//! `frame_split` (the streams) and `scram_server` (the SCRAM messages of captured logins, with
//! their nonce and proof turned into the target's placeholders).

use std::collections::BTreeMap;
use std::io;
use std::path::Path;

use bytes::Bytes;
use kafka_gateway::protocol::codec;
use kafka_protocol::messages::{ApiKey, RequestKind};

use kafka_gateway_fuzz::response_apis;

use super::write;

/// One captured request (and its response).
struct Exchange {
    leg: String,
    conn: u32,
    seq: u32,
    api: i16,
    version: i16,
    request: Vec<u8>,
    response: Option<Vec<u8>>,
}

/// Seeds written per target.
#[derive(Default)]
pub struct Counts {
    pub requests: usize,
    pub responses: usize,
    pub pairs: usize,
    pub streams: usize,
    pub scram: usize,
}

fn parse_stem(stem: &str) -> Option<(String, u32, u32, i16, i16)> {
    let parts: Vec<&str> = stem.split('-').collect();
    let [leg, conn, seq, api, version] = parts[..] else {
        return None;
    };
    Some((
        leg.to_string(),
        conn.strip_prefix('c')?.parse().ok()?,
        seq.parse().ok()?,
        api.parse().ok()?,
        version.parse().ok()?,
    ))
}

fn load(frames: &Path) -> io::Result<Vec<Exchange>> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(frames)? {
        let path = entry?.path();
        if path.extension().and_then(|e| e.to_str()) != Some("req") {
            continue;
        }
        let Some((leg, conn, seq, api, version)) = path
            .file_stem()
            .and_then(|s| s.to_str())
            .and_then(parse_stem)
        else {
            continue;
        };
        let response = std::fs::read(path.with_extension("resp")).ok();
        out.push(Exchange {
            leg,
            conn,
            seq,
            api,
            version,
            request: std::fs::read(&path)?,
            response,
        });
    }
    out.sort_by(|a, b| (&a.leg, a.conn, a.seq).cmp(&(&b.leg, b.conn, b.seq)));
    Ok(out)
}

/// Writes the seeds for every target from `captures` into `root/<target>/cap-*`.
pub fn seeds(captures: &Path, root: &Path) -> io::Result<Counts> {
    let mut counts = Counts::default();
    let frames = captures.join("frames");
    let exchanges = if frames.is_dir() {
        load(&frames)?
    } else {
        Vec::new()
    };
    let apis = response_apis();
    for x in &exchanges {
        let stem = format!(
            "cap-{}-c{}-{}-{}-{}",
            x.leg, x.conn, x.seq, x.api, x.version
        );
        write(&root.join("decode_request"), &stem, &x.request)?;
        counts.requests += 1;
        let Some(response) = &x.response else {
            continue;
        };
        let Ok(key) = ApiKey::try_from(x.api) else {
            continue;
        };
        if let Some((sel, (_, min, max))) = apis.iter().enumerate().find(|(_, a)| a.0 == key) {
            if (*min..=*max).contains(&x.version) {
                let mut input = vec![sel as u8, (x.version - min) as u8];
                input.extend_from_slice(response);
                write(&root.join("rewrite_response"), &stem, &input)?;
                counts.responses += 1;
            }
        }
        if let Ok(len) = u16::try_from(x.request.len()) {
            // 0x00: a partial decision, so the merge has local entries to splice in.
            let mut input = vec![0x00];
            input.extend_from_slice(&len.to_be_bytes());
            input.extend_from_slice(&x.request);
            input.extend_from_slice(response);
            write(&root.join("merge_response"), &stem, &input)?;
            counts.pairs += 1;
        }
    }
    counts.scram = scram(&exchanges, &root.join("scram_server"))?;

    let streams = captures.join("streams");
    if streams.is_dir() {
        for entry in std::fs::read_dir(&streams)? {
            let path = entry?.path();
            if path.extension().and_then(|e| e.to_str()) != Some("c2s") {
                continue;
            }
            let stream = std::fs::read(&path)?;
            let name = path
                .file_stem()
                .and_then(|s| s.to_str())
                .unwrap_or("stream");
            // Chunk selector: a different read size per stream.
            let mut input = vec![(stream.len() % 16) as u8];
            input.extend_from_slice(&stream);
            write(&root.join("frame_split"), &format!("cap-{name}"), &input)?;
            counts.streams += 1;
        }
    }
    Ok(counts)
}

/// The SASL mechanism and SCRAM messages of each captured client connection, as `scram_server`
/// inputs: the client-first as sent, the client-final with `r=` and `p=` replaced by `{nonce}` and
/// `{proof}`, and the target's password for alice (the capture logs in as alice).
fn scram(exchanges: &[Exchange], dir: &Path) -> io::Result<usize> {
    let mut per_conn: BTreeMap<u32, (Option<String>, Vec<Vec<u8>>)> = BTreeMap::new();
    for x in exchanges.iter().filter(|x| x.leg == "client") {
        let Ok(key) = ApiKey::try_from(x.api) else {
            continue;
        };
        if !matches!(key, ApiKey::SaslHandshake | ApiKey::SaslAuthenticate) {
            continue;
        }
        let Ok(decoded) = codec::decode_request(key, x.version, Bytes::from(x.request.clone()))
        else {
            continue;
        };
        let entry = per_conn.entry(x.conn).or_default();
        match decoded.body {
            RequestKind::SaslHandshake(h) => entry.0 = Some(h.mechanism.to_string()),
            RequestKind::SaslAuthenticate(a) => entry.1.push(a.auth_bytes.to_vec()),
            _ => {}
        }
    }
    let mut n = 0;
    for (conn, (mech, messages)) in per_conn {
        let flags = match mech.as_deref() {
            Some("SCRAM-SHA-256") => 0u8,
            Some("SCRAM-SHA-512") => 1,
            _ => continue,
        };
        let [first, fin, ..] = &messages[..] else {
            continue;
        };
        let Ok(fin) = std::str::from_utf8(fin) else {
            continue;
        };
        let template: Vec<String> = fin
            .split(',')
            .map(|attr| {
                if attr.starts_with("r=") {
                    "r={nonce}".to_string()
                } else if attr.starts_with("p=") {
                    "p={proof}".to_string()
                } else {
                    attr.to_string()
                }
            })
            .collect();
        let mut input = vec![flags];
        input.extend_from_slice(first);
        input.push(0);
        input.extend_from_slice(template.join(",").as_bytes());
        input.push(0);
        input.extend_from_slice(b"alice-pw");
        write(dir, &format!("cap-c{conn}"), &input)?;
        n += 1;
    }
    Ok(n)
}
