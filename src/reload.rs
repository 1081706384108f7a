//! Reloads files that may change under a running gateway (policy, shadow policy, credentials, JWKS)
//! on SIGHUP and when their modification time changes. A broken file never replaces a good one: the previous version stays in
//! force and the error is logged.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use tokio::sync::watch;

use crate::audit::{AuditCtx, Event, Outcome, ReloadKind};
use crate::auth::authenticator::Authenticator;
use crate::metrics::Metrics;
use crate::policy::cache::PolicyHandle;

/// The policy to reload.
pub struct PolicySource {
    pub handle: Arc<PolicyHandle>,
    pub model: PathBuf,
    pub files: Vec<PathBuf>,
    /// The shadow policy's files (same model and super users); empty for none.
    pub shadow_files: Vec<PathBuf>,
    pub super_users: Vec<String>,
}

/// How often file modification times are checked.
const POLL: Duration = Duration::from_millis(500);

/// A changed file is read only once it has not been modified for this long: an editor or a
/// `cat > file` still writing would otherwise have its half-written file read. A cut in the
/// middle of a line is a syntax error (the last good policy stays), but a cut at a line end is a
/// valid, shorter policy that may have lost deny rules. Writing a temporary file and renaming it
/// over the old one is still the safe way to edit; this covers the writers that do not.
const SETTLE: Duration = Duration::from_millis(500);

/// A file and the modification time of the version in force.
struct Watched {
    what: &'static str,
    path: PathBuf,
    seen: Option<SystemTime>,
}

impl Watched {
    fn new(what: &'static str, path: &Path) -> Watched {
        Watched {
            what,
            path: path.to_path_buf(),
            seen: mtime(path),
        }
    }

    /// True when the file changed since the last look and has been left alone for `SETTLE`
    /// (then remembers the new time; a file still being written is looked at again next poll).
    fn changed(&mut self) -> bool {
        let now = mtime(&self.path);
        if now == self.seen {
            return false;
        }
        let settling = now
            .and_then(|t| SystemTime::now().duration_since(t).ok())
            .is_some_and(|age| age < SETTLE);
        if settling {
            return false;
        }
        self.seen = now;
        true
    }
}

fn mtime(path: &Path) -> Option<SystemTime> {
    std::fs::metadata(path).and_then(|m| m.modified()).ok()
}

/// The SIGHUP stream, or `None` (logged) if the handler cannot be installed: reloads then
/// follow file changes only.
fn hangup() -> Option<tokio::signal::unix::Signal> {
    tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup())
        .inspect_err(|e| {
            tracing::error!(error = %e, "cannot install the SIGHUP handler; reloading on file change only")
        })
        .ok()
}

/// Waits for the next look at the watched files: `Some(true)` on SIGHUP (everything is reloaded),
/// `Some(false)` after [`POLL`], `None` at shutdown.
async fn next_look(
    hup: &mut Option<tokio::signal::unix::Signal>,
    shutdown: &mut watch::Receiver<bool>,
) -> Option<bool> {
    tokio::select! {
        _ = tokio::time::sleep(POLL) => Some(false),
        Some(()) = async { match hup.as_mut() { Some(h) => h.recv().await, None => std::future::pending().await } } => Some(true),
        _ = shutdown.wait_for(|s| *s) => None,
    }
}

/// Runs until shutdown, for one virtual cluster's policy and (unless another cluster's task
/// watches the same one) its authenticator's files; records carry `virtual_cluster`.
pub async fn run(
    authenticator: Option<Arc<Authenticator>>,
    audit: Arc<AuditCtx>,
    policy: Option<PolicySource>,
    virtual_cluster: Option<String>,
    metrics: Arc<Metrics>,
    mut shutdown: watch::Receiver<bool>,
) {
    let mut files = Vec::new();
    if let Some(p) = &policy {
        files.push(Watched::new("policy", &p.model));
        for f in &p.files {
            files.push(Watched::new("policy", f));
        }
        for f in &p.shadow_files {
            files.push(Watched::new("shadow_policy", f));
        }
    }
    if let Some(a) = &authenticator {
        if let Some(p) = a.credentials_file() {
            files.push(Watched::new("credentials", p));
        }
        if let Some(p) = a.jwks_file() {
            files.push(Watched::new("jwks", p));
        }
    }
    let mut hup = hangup();
    loop {
        let Some(forced) = next_look(&mut hup, &mut shutdown).await else {
            return;
        };
        if forced {
            tracing::info!("SIGHUP: reloading");
        }
        // Every file is looked at (each remembers its new modification time) before anything is
        // reloaded. The policy is one unit (model + every file): reloaded once if any part changed,
        // and its audit record names the parts that changed (all of them on SIGHUP).
        let mut changed: Vec<bool> = files.iter_mut().map(|w| w.changed() || forced).collect();
        // The shadow shares the model: a new model reloads it too (its first file stands for it).
        let model_changed = policy.is_some() && changed.first() == Some(&true);
        if let Some(i) = files.iter().position(|w| w.what == "shadow_policy") {
            changed[i] |= model_changed;
        }
        let source_of = |what: &str| {
            files
                .iter()
                .zip(&changed)
                .enumerate()
                .filter(|&(i, (w, c))| *c && (w.what == what || (i == 0 && model_changed)))
                .map(|(_, (w, _))| w.path.display().to_string())
                .collect::<Vec<_>>()
                .join(", ")
        };
        let (policy_source, shadow_source) = (source_of("policy"), source_of("shadow_policy"));
        let (mut policy_done, mut shadow_done) = (false, false);
        for (w, changed) in files.iter().zip(changed) {
            if !changed {
                continue;
            }
            let result = match w.what {
                "credentials" | "jwks" => {
                    let Some(a) = &authenticator else { continue };
                    if w.what == "jwks" {
                        a.reload_jwks()
                    } else {
                        a.reload_credentials()
                    }
                }
                "shadow_policy" if shadow_done => continue,
                "shadow_policy" => {
                    shadow_done = true;
                    let Some(p) = &policy else { continue };
                    // A shadow that did not load is absent: loading it again is news even if
                    // the files are those of the last good version.
                    let before = p.handle.shadow().map(|s| s.version().to_string());
                    p.handle
                        .reload_shadow_async(
                            p.model.clone(),
                            p.shadow_files.clone(),
                            p.super_users.clone(),
                        )
                        .await
                        .map(|v| (Some(&v) != before.as_ref()).then_some(v))
                        .map_err(|e| e.to_string())
                }
                _ if policy_done => continue,
                _ => {
                    policy_done = true;
                    match &policy {
                        Some(p) => {
                            let before = p.handle.current().version().to_string();
                            p.handle
                                .reload_async(
                                    p.model.clone(),
                                    p.files.clone(),
                                    p.super_users.clone(),
                                )
                                .await
                                .map(|v| (v != before).then_some(v))
                                .map_err(|e| e.to_string())
                        }
                        None => Ok(None),
                    }
                }
            };
            let what = match w.what {
                "credentials" => ReloadKind::Credentials,
                "jwks" => ReloadKind::Jwks,
                "shadow_policy" => ReloadKind::ShadowPolicy,
                _ => ReloadKind::Policy,
            };
            let source = match w.what {
                "policy" => policy_source.clone(),
                "shadow_policy" => shadow_source.clone(),
                _ => w.path.display().to_string(),
            };
            match &result {
                Ok(Some(hash)) => {
                    let _ = audit.record(Event::Reload {
                        what,
                        source,
                        outcome: Outcome::Ok,
                        hash: Some(hash.clone()),
                        error: None,
                        virtual_cluster: virtual_cluster.clone(),
                    });
                }
                Err(e) => {
                    let _ = audit.record(Event::Reload {
                        what,
                        source,
                        outcome: Outcome::Error,
                        hash: None,
                        error: Some(e.clone()),
                        virtual_cluster: virtual_cluster.clone(),
                    });
                }
                Ok(None) => {}
            }
            match result {
                Ok(Some(fingerprint)) => {
                    metrics.inc("reloads_total", &[("file", w.what), ("result", "success")]);
                    tracing::info!(file = %w.path.display(), what = w.what, %fingerprint, "reloaded");
                }
                Ok(None) => tracing::debug!(file = %w.path.display(), what = w.what, "unchanged"),
                Err(e) => {
                    metrics.inc("reloads_total", &[("file", w.what), ("result", "failure")]);
                    tracing::error!(
                        file = %w.path.display(), what = w.what, error = %e,
                        "reload failed: the previous version stays in force"
                    );
                }
            }
        }
    }
}

/// Switches a virtual cluster (by name) to a new upstream: returns the previous servers and how
/// many connections were told to drain.
pub type Switch = Box<
    dyn Fn(&str, &crate::config::UpstreamConfig) -> anyhow::Result<(Vec<String>, usize)> + Send,
>;

/// Watches the config file (its modification time, and SIGHUP) for virtual clusters whose
/// `upstream` changed, and switches each such cluster to its new upstream: connections to the old
/// one answer what is in flight and close, new ones go to the new one, and every switch is an
/// audit record. Only upstreams are applied while running; a file that does not load changes
/// nothing (logged and recorded), and other changes wait for a restart (logged).
pub async fn watch_upstreams(
    path: PathBuf,
    mut in_force: Vec<(String, crate::config::UpstreamConfig)>,
    switch: Switch,
    audit: Arc<AuditCtx>,
    metrics: Arc<Metrics>,
    mut shutdown: watch::Receiver<bool>,
) {
    let mut file = Watched::new("config", &path);
    let mut hup = hangup();
    loop {
        let Some(forced) = next_look(&mut hup, &mut shutdown).await else {
            return;
        };
        if !(file.changed() || forced) {
            continue;
        }
        let source = path.display().to_string();
        let config = match crate::config::Config::load(&path) {
            Ok(c) => c,
            Err(e) => {
                metrics.inc(
                    "reloads_total",
                    &[("file", "config"), ("result", "failure")],
                );
                tracing::error!(file = %source, error = %e, "config did not load: every upstream stays as it is");
                let _ = audit.record(Event::Reload {
                    what: ReloadKind::Config,
                    source,
                    outcome: Outcome::Error,
                    hash: None,
                    error: Some(e.to_string()),
                    virtual_cluster: None,
                });
                continue;
            }
        };
        let mut switched = 0;
        for vc in &config.clusters {
            let Some((_, current)) = in_force.iter_mut().find(|(n, _)| *n == vc.name) else {
                tracing::warn!(virtual_cluster = %vc.name, "a virtual cluster added to the config starts with the next restart");
                continue;
            };
            if *current == vc.upstream {
                continue;
            }
            match switch(&vc.name, &vc.upstream) {
                Ok((from, draining)) => {
                    switched += 1;
                    *current = vc.upstream.clone();
                    metrics.inc(
                        "upstream_switches_total",
                        &[("virtual_cluster", vc.name.as_str())],
                    );
                    tracing::warn!(
                        virtual_cluster = %vc.name, ?from, to = ?vc.upstream.bootstrap_servers, draining,
                        "upstream switched: connections to the old one finish what is in flight and close"
                    );
                    let _ = audit.record(Event::UpstreamSwitch {
                        virtual_cluster: vc.label().map(str::to_string),
                        from,
                        to: vc.upstream.bootstrap_servers.clone(),
                        source: source.clone(),
                        draining: draining as u64,
                    });
                }
                Err(e) => {
                    tracing::error!(virtual_cluster = %vc.name, error = %e, "upstream switch failed: the old upstream stays");
                    let _ = audit.record(Event::Reload {
                        what: ReloadKind::Config,
                        source: source.clone(),
                        outcome: Outcome::Error,
                        hash: None,
                        error: Some(format!("switch of {}: {e}", vc.name)),
                        virtual_cluster: vc.label().map(str::to_string),
                    });
                }
            }
        }
        metrics.inc(
            "reloads_total",
            &[("file", "config"), ("result", "success")],
        );
        tracing::info!(file = %source, switched, "config reloaded: upstream changes applied, anything else waits for a restart");
    }
}
