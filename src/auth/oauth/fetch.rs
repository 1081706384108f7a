//! JWKS download: a minimal HTTPS GET (HTTP/1.1, `Connection: close`) with hard limits.
//!
//! Hand-written on purpose: the gateway needs one request shape, and a full HTTP client would bring
//! redirects, proxies, compression and connection pools that a key fetch must not have. Limits: the
//! whole fetch (DNS, connect, TLS handshake, request, response) runs under one deadline, the status must
//! be 200 (redirects are not followed), headers are capped at 16 KiB and the body at 1 MiB, and the
//! body is framed by `Content-Length`, `Transfer-Encoding: chunked`, or the end of the connection (then
//! only after a clean TLS close, so a cut connection cannot pass for a short document).
//!
//! Response parsing (`parse_response`) is a pure function over the bytes received so far, so it is
//! tested without sockets.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use rustls::pki_types::ServerName;
use rustls::ClientConfig;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;

/// Deadline for the whole fetch.
pub const FETCH_TIMEOUT: Duration = Duration::from_secs(10);
/// Largest JWKS body accepted.
pub const MAX_BODY: usize = 1024 * 1024;
/// Largest status line plus headers accepted.
pub const MAX_HEAD: usize = 16 * 1024;
/// Raw bytes read at most: head, body, and chunked-encoding overhead.
const MAX_RAW: usize = MAX_HEAD + MAX_BODY + 64 * 1024;

/// A validated `https://` URL, split into what the request needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpsUrl {
    /// Host name or IP address, IPv6 without brackets.
    pub host: String,
    pub port: u16,
    /// Path plus query, always starting with `/`; the fragment is dropped.
    pub path: String,
    /// The `Host` header value.
    host_header: String,
}

impl fmt::Display for HttpsUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "https://{}{}", self.host_header, self.path)
    }
}

impl HttpsUrl {
    /// Accepts `https://host[:port][/path][?query][#fragment]` only. No user info, no whitespace or
    /// control characters anywhere (they would let a URL inject lines into the request).
    pub fn parse(url: &str) -> Result<HttpsUrl, String> {
        if url.bytes().any(|b| b <= 0x20 || b == 0x7f || b >= 0x80) {
            return Err("URL contains whitespace, control or non-ASCII characters".into());
        }
        let rest = match url.get(..8) {
            Some(scheme) if scheme.eq_ignore_ascii_case("https://") => &url[8..],
            _ => return Err("only https:// URLs are accepted".into()),
        };
        let rest = rest.split('#').next().unwrap_or_default();
        let authority_end = rest.find(['/', '?']).unwrap_or(rest.len());
        let (authority, path) = rest.split_at(authority_end);
        if authority.contains('@') {
            return Err("user info in the URL is not accepted".into());
        }
        let (host, port) = if let Some(v6) = authority.strip_prefix('[') {
            let (host, after) = v6.split_once(']').ok_or("unterminated IPv6 address")?;
            let port = match after {
                "" => None,
                p => Some(p.strip_prefix(':').ok_or("garbage after IPv6 address")?),
            };
            (host, port)
        } else {
            match authority.rsplit_once(':') {
                Some((h, p)) => (h, Some(p)),
                None => (authority, None),
            }
        };
        if host.is_empty() {
            return Err("no host".into());
        }
        let port = match port {
            None => 443,
            Some(p) => p
                .parse::<u16>()
                .ok()
                .filter(|p| *p != 0)
                .ok_or_else(|| format!("bad port {p:?}"))?,
        };
        ServerName::try_from(host.to_string()).map_err(|e| format!("bad host {host:?}: {e}"))?;
        let bracketed = if host.contains(':') {
            format!("[{host}]")
        } else {
            host.to_string()
        };
        let host_header = if port == 443 {
            bracketed
        } else {
            format!("{bracketed}:{port}")
        };
        let path = if path.starts_with('/') {
            path.to_string()
        } else {
            format!("/{path}")
        };
        Ok(HttpsUrl {
            host: host.to_string(),
            port,
            path,
            host_header,
        })
    }
}

/// Why a fetch failed; names the phase.
#[derive(Debug, thiserror::Error)]
pub enum FetchError {
    #[error("timed out after {}s", FETCH_TIMEOUT.as_secs())]
    Timeout,
    #[error("connect: {0}")]
    Connect(#[source] std::io::Error),
    #[error("TLS handshake: {0}")]
    Handshake(#[source] std::io::Error),
    #[error("sending request: {0}")]
    Write(#[source] std::io::Error),
    #[error("reading response: {0}")]
    Read(#[source] std::io::Error),
    #[error("bad HTTP response: {0}")]
    Response(String),
}

/// Fetches `url` and returns the response body.
pub async fn fetch(url: &HttpsUrl, tls: Arc<ClientConfig>) -> Result<Vec<u8>, FetchError> {
    tokio::time::timeout(FETCH_TIMEOUT, fetch_inner(url, tls))
        .await
        .map_err(|_elapsed| FetchError::Timeout)?
}

async fn fetch_inner(url: &HttpsUrl, tls: Arc<ClientConfig>) -> Result<Vec<u8>, FetchError> {
    // Checked in HttpsUrl::parse; repeated here so this function stands alone.
    let server_name = ServerName::try_from(url.host.clone())
        .map_err(|e| FetchError::Response(format!("bad host: {e}")))?;
    let tcp = TcpStream::connect((url.host.as_str(), url.port))
        .await
        .map_err(FetchError::Connect)?;
    let mut stream = TlsConnector::from(tls)
        .connect(server_name, tcp)
        .await
        .map_err(FetchError::Handshake)?;
    let request = format!(
        "GET {} HTTP/1.1\r\nHost: {}\r\nAccept: application/json, application/jwk-set+json\r\n\
         User-Agent: kafka-gateway/{}\r\nConnection: close\r\n\r\n",
        url.path,
        url.host_header,
        env!("CARGO_PKG_VERSION"),
    );
    stream
        .write_all(request.as_bytes())
        .await
        .map_err(FetchError::Write)?;
    stream.flush().await.map_err(FetchError::Write)?;

    let mut buf = Vec::with_capacity(16 * 1024);
    let mut chunk = vec![0u8; 16 * 1024];
    loop {
        let eof = match stream.read(&mut chunk).await {
            Ok(0) => Eof::Clean,
            Ok(n) => {
                buf.extend_from_slice(&chunk[..n]);
                Eof::No
            }
            // No TLS close_notify: fine if the body is framed, fatal if it runs to the end.
            Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => Eof::Unclean,
            Err(e) => return Err(FetchError::Read(e)),
        };
        if let Some(body) = parse_response(&buf, eof).map_err(FetchError::Response)? {
            return Ok(body);
        }
        if eof != Eof::No {
            // parse_response never returns Ok(None) at end of stream; kept as a guard.
            return Err(FetchError::Response("connection closed early".into()));
        }
        if buf.len() > MAX_RAW {
            return Err(FetchError::Response(format!(
                "response larger than {MAX_RAW} bytes"
            )));
        }
    }
}

/// Whether the stream has ended, and how.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Eof {
    No,
    /// TLS close_notify received.
    Clean,
    /// The connection ended without close_notify.
    Unclean,
}

/// Parses what has been received so far. `Ok(None)`: need more bytes; `Ok(Some(body))`: complete.
/// Never `Ok(None)` when `eof` is not `Eof::No`.
pub fn parse_response(buf: &[u8], eof: Eof) -> Result<Option<Vec<u8>>, String> {
    let Some(head_end) = find(buf, b"\r\n\r\n") else {
        if buf.len() > MAX_HEAD {
            return Err(format!("headers larger than {MAX_HEAD} bytes"));
        }
        return match eof {
            Eof::No => Ok(None),
            _ => Err("connection closed before the end of the headers".into()),
        };
    };
    if head_end > MAX_HEAD {
        return Err(format!("headers larger than {MAX_HEAD} bytes"));
    }
    let head = std::str::from_utf8(&buf[..head_end]).map_err(|_| "headers are not UTF-8")?;
    let body = &buf[head_end + 4..];
    let mut lines = head.split("\r\n");
    let status_line = lines.next().unwrap_or_default();
    let mut parts = status_line.splitn(3, ' ');
    let version = parts.next().unwrap_or_default();
    let status = parts.next().unwrap_or_default();
    if version != "HTTP/1.1" && version != "HTTP/1.0" {
        return Err(format!(
            "not an HTTP/1.x status line: {:?}",
            clip(status_line)
        ));
    }
    if status != "200" {
        return Err(format!(
            "status {:?} (only 200 is accepted; redirects are not followed)",
            clip(status)
        ));
    }

    let mut content_length: Option<usize> = None;
    let mut chunked = false;
    for line in lines {
        let (name, value) = line
            .split_once(':')
            .ok_or_else(|| format!("malformed header line {:?}", clip(line)))?;
        let value = value.trim_matches([' ', '\t']);
        if name.eq_ignore_ascii_case("content-length") {
            let len = value
                .parse::<usize>()
                .ok()
                .filter(|_| value.bytes().all(|b| b.is_ascii_digit()))
                .ok_or_else(|| format!("bad Content-Length {:?}", clip(value)))?;
            if content_length.is_some_and(|l| l != len) {
                return Err("conflicting Content-Length headers".into());
            }
            content_length = Some(len);
        } else if name.eq_ignore_ascii_case("transfer-encoding") {
            if !value.eq_ignore_ascii_case("chunked") || chunked {
                return Err(format!(
                    "unsupported Transfer-Encoding {:?} (only a single \"chunked\" is handled)",
                    clip(value)
                ));
            }
            chunked = true;
        }
    }

    match (chunked, content_length) {
        (true, Some(_)) => {
            Err("both Transfer-Encoding and Content-Length (ambiguous framing)".into())
        }
        (true, None) => match decode_chunked(body)? {
            Some(decoded) => Ok(Some(decoded)),
            None if eof == Eof::No => Ok(None),
            None => Err("connection closed inside a chunked body".into()),
        },
        (false, Some(len)) => {
            if len > MAX_BODY {
                return Err(format!("body of {len} bytes exceeds {MAX_BODY}"));
            }
            if body.len() >= len {
                Ok(Some(body[..len].to_vec()))
            } else if eof == Eof::No {
                Ok(None)
            } else {
                Err(format!("body truncated at {} of {len} bytes", body.len()))
            }
        }
        (false, None) => {
            if body.len() > MAX_BODY {
                return Err(format!("body exceeds {MAX_BODY} bytes"));
            }
            match eof {
                Eof::No => Ok(None),
                Eof::Clean => Ok(Some(body.to_vec())),
                Eof::Unclean => Err(
                    "connection closed without TLS close_notify and no length: body may be truncated"
                        .into(),
                ),
            }
        }
    }
}

/// Decodes a complete chunked body (RFC 9112 §7.1). `Ok(None)`: incomplete so far.
fn decode_chunked(mut input: &[u8]) -> Result<Option<Vec<u8>>, String> {
    let mut out = Vec::new();
    loop {
        let Some(line_end) = find(input, b"\r\n") else {
            if input.len() > 1024 {
                return Err("chunk-size line too long".into());
            }
            return Ok(None);
        };
        let line = std::str::from_utf8(&input[..line_end]).map_err(|_| "bad chunk-size line")?;
        let size_text = line.split(';').next().unwrap_or_default().trim_end();
        if size_text.is_empty()
            || size_text.len() > 8
            || !size_text.bytes().all(|b| b.is_ascii_hexdigit())
        {
            return Err(format!("bad chunk size {:?}", clip(line)));
        }
        // At most 8 hex digits: fits in usize on every supported target.
        let size = usize::from_str_radix(size_text, 16).map_err(|e| e.to_string())?;
        input = &input[line_end + 2..];
        if size == 0 {
            // Trailer section: header lines until an empty line. Trailers are ignored.
            loop {
                let Some(end) = find(input, b"\r\n") else {
                    return Ok(None);
                };
                if end == 0 {
                    return Ok(Some(out));
                }
                input = &input[end + 2..];
            }
        }
        if out.len() + size > MAX_BODY {
            return Err(format!("chunked body exceeds {MAX_BODY} bytes"));
        }
        if input.len() < size + 2 {
            return Ok(None);
        }
        if &input[size..size + 2] != b"\r\n" {
            return Err("chunk not followed by CRLF".into());
        }
        out.extend_from_slice(&input[..size]);
        input = &input[size + 2..];
    }
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

/// Peer-controlled text in error messages is cut short and stripped of control characters.
fn clip(s: &str) -> String {
    s.chars()
        .take(80)
        .map(|c| if c.is_control() { '?' } else { c })
        .collect()
}
