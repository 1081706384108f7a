//! Wiring: binds listeners and per-broker ports, keeps the cluster view fresh, and runs the shutdown.
//!
//! Shutdown follows three phases: stop accepting (listeners are dropped, so new connections are
//! refused), let sessions finish the requests already in flight within the grace period, then exit.

use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use tokio::net::TcpListener;
use tokio::sync::{mpsc, watch};
use tokio_rustls::TlsAcceptor;

use crate::audit::{AuditCtx, Auditor, ConnInfo, Event, Outcome, ReloadKind};
use crate::auth::authenticator::Authenticator;
use crate::config::{split_host_port, ClientAuthMode, Config, ListenerConfig, VirtualCluster};
use crate::metrics::Metrics;
use crate::net::listener::{accept_loop, serve_port, ConnLimits, Dispatch, PortCtx, SniRouteCtx};
use crate::policy::cache::PolicyHandle;
use crate::session::SessionCtx;
use crate::tls;
use crate::upstream::current::CurrentUpstream;
use crate::upstream::{Cluster, Connector, Target};

/// A running gateway, as seen by whoever started it.
pub struct Running {
    /// Bound bootstrap address of each listener, by name (useful when the config asked for port 0).
    pub bootstrap: Vec<(String, SocketAddr)>,
    pub admin: Option<SocketAddr>,
    shutdown: watch::Sender<bool>,
    done: tokio::task::JoinHandle<()>,
}

impl Running {
    /// Starts the shutdown and waits until it is complete.
    pub async fn shutdown(self) {
        let _ = self.shutdown.send(true);
        let _ = self.done.await;
    }

    /// Waits for SIGTERM or Ctrl-C, then shuts down.
    pub async fn run_until_signal(self) -> anyhow::Result<()> {
        wait_for_signal().await?;
        tracing::info!("shutdown requested: no longer accepting connections");
        self.shutdown().await;
        Ok(())
    }
}

async fn wait_for_signal() -> anyhow::Result<()> {
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .context("installing the SIGTERM handler")?;
    tokio::select! {
        _ = term.recv() => {},
        r = tokio::signal::ctrl_c() => r.context("waiting for Ctrl-C")?,
    }
    Ok(())
}

/// Binds everything and starts serving. Fails (before serving anyone) if a listener cannot be bound
/// or a TLS file cannot be loaded.
pub async fn start(config: Config) -> anyhow::Result<Running> {
    let config = Arc::new(config);
    let metrics = Metrics::new();
    let started = std::time::Instant::now();
    let instance = format!("{}-{}", hostname(), std::process::id());
    // The Kafka copy takes the file's lines; its queue exists before the trail opens so that what
    // an earlier run did not copy is queued first.
    let copy = config.audit.as_ref().and_then(|a| {
        a.kafka.as_ref().map(|k| {
            crate::audit::copy::CopyQueue::new(
                k.queue_capacity,
                Some(crate::audit::copy::watermark_path(
                    &a.writer.dir,
                    &a.writer.file_prefix,
                )),
            )
        })
    });
    let (audit, audit_task) = match &config.audit {
        None => {
            tracing::warn!("no [audit] section: this gateway keeps no audit trail");
            (AuditCtx::disabled(), None)
        }
        Some(a) => {
            let (auditor, task) =
                Auditor::start_copying(a.writer.clone(), copy.clone()).context("audit trail")?;
            tracing::info!(dir = %a.writer.dir.display(), level = ?a.level, "audit trail open");
            (
                AuditCtx::new(auditor, a.level, instance.clone()),
                Some(task),
            )
        }
    };
    let (shutdown_tx, shutdown_rx) = watch::channel(false);
    if let Some(a) = &config.audit {
        tokio::spawn(crate::audit::disk::watch(
            a.writer.dir.clone(),
            a.warn_free_bytes,
            a.writer.on_failure == crate::audit::FailureMode::FailClosed,
            metrics.clone(),
            shutdown_rx.clone(),
        ));
    }
    let limits = ConnLimits::new(
        config.limits.max_connections,
        config.limits.max_connections_per_ip,
        config.limits.max_connection_rate,
    );
    let (alive_tx, mut alive_rx) = mpsc::channel::<()>(1);
    let ready = Arc::new(AtomicBool::new(false));

    let mut bound = Vec::new();
    if config.clusters.iter().any(|c| c.named) {
        let names: Vec<String> = config.clusters.iter().map(|c| c.name.clone()).collect();
        metrics.register_virtual_clusters(&names);
    }
    // Authenticators by credentials file: clusters sharing one share its state (lockout, reloads).
    let mut authenticators: Vec<(Option<PathBuf>, Arc<Authenticator>)> = Vec::new();
    let mut reachable = Vec::new();
    let mut sni_ports: Vec<(SocketAddr, Vec<SniRouteCtx>)> = Vec::new();
    let mut start_records = Vec::new();
    // Each virtual cluster's switchable upstream, by name, for the config watcher.
    let mut upstreams: Vec<(String, Arc<CurrentUpstream>)> = Vec::new();
    for (k, vc) in config.clusters.iter().enumerate() {
        let cluster = connect_cluster(&config, vc)?;
        let current = CurrentUpstream::new(
            cluster.clone(),
            vc.upstream.bootstrap_servers.clone(),
            shutdown_rx.clone(),
        );
        upstreams.push((vc.name.clone(), current.clone()));
        if k == 0 {
            if let (Some(k), Some(q)) = (
                config.audit.as_ref().and_then(|a| a.kafka.clone()),
                copy.clone(),
            ) {
                tracing::info!(topic = %k.topic, "audit events also go to the upstream cluster");
                audit.attach_kafka(crate::audit::kafka_sink::KafkaSink::start(
                    k,
                    cluster.clone(),
                    instance.clone(),
                    q,
                ));
            }
        }
        let credentials = vc.credentials(&config.auth).map(Path::to_path_buf);
        let (authenticator, watch_auth) =
            match authenticators.iter().find(|(c, _)| *c == credentials) {
                Some((_, a)) => (a.clone(), false),
                None => {
                    let mut auth = config.auth.clone();
                    auth.credentials_file = credentials.clone();
                    let a = Authenticator::new(&auth)
                        .await
                        .with_context(|| format!("authentication ({})", vc.name))?;
                    authenticators.push((credentials, a.clone()));
                    (a, true)
                }
            };
        // The audit topic lives on the first cluster: no client reaches it through a wildcard or
        // prefix rule, or as a super user.
        let reserved: Vec<String> = match (k, config.audit.as_ref().and_then(|a| a.kafka.as_ref()))
        {
            (0, Some(t)) => vec![t.topic.clone()],
            _ => Vec::new(),
        };
        let (policy, policy_error) = load_policy(vc, reserved, quota_window(&config.limits));
        let tenant = vc.tenant.as_ref().map(|t| {
            Arc::new(crate::protocol::tenant::TenantMap::new(
                &t.prefix,
                &t.cluster_id,
            ))
        });
        for l in &vc.listeners {
            let listener = Arc::new(l.clone());
            let acceptor = match &l.tls {
                None => None,
                Some(t) => {
                    let mode = match t.client_auth {
                        ClientAuthMode::None => tls::ClientAuth::None,
                        ClientAuthMode::Optional => tls::ClientAuth::Optional,
                        ClientAuthMode::Required => tls::ClientAuth::Required,
                    };
                    let cfg = tls::server_config(
                        &t.cert_file,
                        &t.key_file,
                        t.client_ca_file.as_deref(),
                        mode,
                    )
                    .with_context(|| format!("listener {:?} TLS", l.name))?;
                    Some(TlsAcceptor::from(cfg))
                }
            };
            metrics.register_listener(&l.name, vc.label());
            let port_ctx = PortCtx {
                session: SessionCtx {
                    config: config.clone(),
                    listener: listener.clone(),
                    listener_name: Arc::from(l.name.as_str()),
                    virtual_cluster_index: u16::try_from(k).ok().filter(|_| vc.named),
                    tenant: tenant.clone(),
                    cluster: cluster.clone(),
                    metrics: metrics.clone(),
                    authenticator: authenticator.clone(),
                    policy: policy.clone(),
                    audit: audit.clone(),
                    conn: ConnInfo {
                        id: 0,
                        client: String::new(),
                        listener: l.name.clone(),
                        virtual_cluster: None,
                    },
                    stats: Arc::default(),
                    repeats: Arc::default(),
                    target: Target::Bootstrap,
                    peer: SocketAddr::from(([0, 0, 0, 0], 0)),
                    shutdown: shutdown_rx.clone(),
                },
                tls: acceptor,
                upstream: current.clone(),
                limits: limits.clone(),
                alive: alive_tx.clone(),
            };
            if let Some(sni) = &l.sni {
                let route = SniRouteCtx {
                    routes: sni.clone(),
                    port: port_ctx,
                };
                match sni_ports.iter_mut().find(|(a, _)| *a == l.bind) {
                    Some((_, routes)) => routes.push(route),
                    None => sni_ports.push((l.bind, vec![route])),
                }
                continue;
            }
            let tcp = TcpListener::bind(l.bind)
                .await
                .with_context(|| format!("listener {:?}: cannot bind {}", l.name, l.bind))?;
            let addr = tcp.local_addr()?;
            tracing::info!(listener = %l.name, virtual_cluster = vc.label(), %addr, tls = l.tls.is_some(), "bootstrap port listening");
            bound.push((l.name.clone(), addr));
            tokio::spawn(accept_loop(tcp, port_ctx.clone(), shutdown_rx.clone()));
            tokio::spawn(bind_broker_ports(
                listener,
                port_ctx,
                current.clone(),
                shutdown_rx.clone(),
            ));
        }
        tokio::spawn(crate::reload::run(
            watch_auth.then(|| authenticator.clone()),
            audit.clone(),
            policy
                .clone()
                .zip(vc.authz.model.clone())
                .map(|(handle, model)| crate::reload::PolicySource {
                    handle,
                    model,
                    files: vc.authz.policy_files.clone(),
                    shadow_files: vc.authz.shadow_policy_files.clone(),
                    super_users: vc.authz.super_users.clone(),
                }),
            vc.label().map(str::to_string),
            metrics.clone(),
            shutdown_rx.clone(),
        ));
        let flag = Arc::new(AtomicBool::new(false));
        reachable.push(flag.clone());
        tokio::spawn(refresh_cluster(
            current,
            vc.upstream.metadata_refresh,
            vc.label().map(str::to_string),
            flag,
            shutdown_rx.clone(),
        ));
        if let Some(p) = &policy {
            start_records.push(Event::Reload {
                what: ReloadKind::Policy,
                source: "start".into(),
                outcome: if policy_error {
                    Outcome::Error
                } else {
                    Outcome::Ok
                },
                hash: Some(p.current().version().to_string()),
                error: None,
                virtual_cluster: vc.label().map(str::to_string),
            });
        }
        if let (Some(p), Some(model)) = (&policy, &vc.authz.model) {
            if !vc.authz.shadow_policy_files.is_empty() {
                start_records.push(load_shadow(p, model, vc));
            }
        }
    }
    if let Some(path) = config.source.clone() {
        let in_force = config
            .clusters
            .iter()
            .map(|c| (c.name.clone(), c.upstream.clone()))
            .collect();
        let running = config.clone();
        let switch: crate::reload::Switch = Box::new(move |name, upstream| {
            let (vc, current) = running
                .clusters
                .iter()
                .zip(&upstreams)
                .find(|(vc, _)| vc.name == name)
                .map(|(vc, (_, u))| (vc, u))
                .ok_or_else(|| anyhow::anyhow!("no virtual cluster {name}"))?;
            let mut next = vc.clone();
            next.upstream = upstream.clone();
            let cluster = connect_cluster(&running, &next)?;
            Ok(current.switch(cluster, upstream.bootstrap_servers.clone()))
        });
        tokio::spawn(crate::reload::watch_upstreams(
            path,
            in_force,
            switch,
            audit.clone(),
            metrics.clone(),
            shutdown_rx.clone(),
        ));
    }
    for (addr, routes) in sni_ports {
        let tcp = TcpListener::bind(addr)
            .await
            .with_context(|| format!("SNI listeners: cannot bind {addr}"))?;
        let local = tcp.local_addr()?;
        for r in &routes {
            let name = &r.port.session.listener.name;
            tracing::info!(listener = %name, addr = %local, bootstrap = %r.routes.bootstrap, "SNI listener routing on shared port");
            bound.push((name.clone(), local));
        }
        tokio::spawn(serve_port(
            tcp,
            Dispatch::Sni(routes.into()),
            shutdown_rx.clone(),
        ));
    }
    drop(alive_tx);

    let admin = match config.admin.bind {
        None => None,
        Some(a) => {
            let tcp = TcpListener::bind(a)
                .await
                .with_context(|| format!("admin: cannot bind {a}"))?;
            let addr = tcp.local_addr()?;
            tracing::info!(%addr, "admin endpoint (/metrics, /healthz, /readyz) listening");
            tokio::spawn(crate::metrics::serve_admin(
                tcp,
                metrics.clone(),
                ready.clone(),
                shutdown_rx.clone(),
            ));
            Some(addr)
        }
    };

    // Ready: every cluster has answered once, and no fail-closed audit sink is refusing records
    // (a load balancer should not send clients to a gateway that refuses them all).
    tokio::spawn(track_readiness(
        reachable,
        audit.clone(),
        ready,
        shutdown_rx.clone(),
    ));

    for r in start_records {
        let _ = audit.record(r);
    }
    audit
        .record(Event::GatewayStart {
            version: env!("CARGO_PKG_VERSION").into(),
            instance: instance.clone(),
            config_hash: None,
            listeners: bound.iter().map(|(n, a)| format!("{n}={a}")).collect(),
        })
        .context("audit trail refused the start record")?;

    let grace = config.timeouts.shutdown_grace;
    let mut shutdown_wait = shutdown_rx.clone();
    let done = tokio::spawn(async move {
        let _ = shutdown_wait.wait_for(|s| *s).await;
        // Accept loops end on the same signal; sessions stop reading and drain what is in flight.
        let reason = match tokio::time::timeout(grace, alive_rx.recv()).await {
            Ok(_) => {
                tracing::info!("all connections finished");
                "shutdown: all connections finished"
            }
            Err(_) => {
                tracing::warn!(?grace, "grace period over: closing remaining connections");
                "shutdown: grace period over"
            }
        };
        let _ = audit.record(Event::GatewayStop {
            instance,
            reason: reason.into(),
            uptime_ms: started.elapsed().as_millis() as u64,
        });
        // Everything queued reaches the disk before the process exits.
        if let Err(e) = audit.auditor.shutdown().await {
            tracing::error!(error = %e, "audit trail did not shut down cleanly");
        }
        if let Some(task) = audit_task {
            let _ = task.await;
        }
        // The file's last lines (the stop record among them) reach the topic too; whatever does
        // not within the deadline is copied by the next start (the watermark says from where).
        if let Some(k) = audit.kafka() {
            if !k.drain(std::time::Duration::from_secs(10)).await {
                tracing::warn!("audit topic: the copy did not catch up before exit; the next start copies the rest");
            }
        }
    });

    Ok(Running {
        bootstrap: bound,
        admin,
        shutdown: shutdown_tx,
        done,
    })
}

/// The upstream connection settings and cluster view of one virtual cluster.
fn connect_cluster(config: &Config, vc: &VirtualCluster) -> anyhow::Result<Arc<Cluster>> {
    let upstream_tls = match &vc.upstream.tls {
        None => None,
        Some(t) => {
            let client_cert = t
                .client_cert_file
                .as_deref()
                .zip(t.client_key_file.as_deref());
            let cfg = tls::client_config(Some(&t.ca_file), client_cert)
                .with_context(|| format!("upstream TLS ({})", vc.name))?;
            Some((cfg, t.server_name.clone()))
        }
    };
    let connector = Connector::new(
        upstream_tls,
        vc.upstream.sasl.clone(),
        config.timeouts.upstream_connect,
        config.timeouts.upstream_request,
        config.limits.max_response_bytes,
    );
    let bootstrap: Vec<(String, u16)> = vc
        .upstream
        .bootstrap_servers
        .iter()
        .filter_map(|s| split_host_port(s))
        .collect();
    Ok(Cluster::new(
        bootstrap,
        connector,
        config.timeouts.upstream_request,
        config.limits.max_response_bytes,
    ))
}

/// One virtual cluster's policy (`None` with `allow_all`), and whether it failed to load (then
/// it denies everyone but super users until a reload succeeds).
/// The window quota rates are measured over, from the limits.
fn quota_window(limits: &crate::config::Limits) -> crate::quota::rate::WindowConfig {
    crate::quota::rate::WindowConfig {
        samples: limits.quota_window_num,
        window_ms: (limits.quota_window_size.as_millis() as u64).max(1),
    }
}

fn load_policy(
    vc: &VirtualCluster,
    reserved: Vec<String>,
    window: crate::quota::rate::WindowConfig,
) -> (Option<Arc<PolicyHandle>>, bool) {
    let authz = &vc.authz;
    match (&authz.model, authz.allow_all) {
        (_, true) => {
            tracing::warn!(
                virtual_cluster = vc.label(),
                "authorization.allow_all = true: every authenticated client may do anything"
            );
            (None, false)
        }
        // Validation requires a model with policy files; without either, deny everyone.
        (None, false) => (
            Some(Arc::new(
                PolicyHandle::new(crate::policy::engine::Engine::deny_all(&authz.super_users))
                    .reserving(reserved)
                    .with_quota_window(window),
            )),
            false,
        ),
        (Some(model), false) => {
            let (handle, error) =
                PolicyHandle::load_or_deny_all(model, &authz.policy_files, &authz.super_users);
            let handle = handle.reserving(reserved).with_quota_window(window);
            match &error {
                None => {
                    tracing::info!(virtual_cluster = vc.label(), version = %handle.current().version(), "policy loaded")
                }
                Some(e) => {
                    tracing::error!(virtual_cluster = vc.label(), error = %e, "policy did not load: denying everyone but super users until it does")
                }
            }
            (Some(Arc::new(handle)), error.is_some())
        }
    }
}

/// Loads the shadow policy at start; the record says what was loaded, or why nothing was (the
/// shadow is then absent until a reload loads it; enforcement is not affected either way).
fn load_shadow(handle: &PolicyHandle, model: &std::path::Path, vc: &VirtualCluster) -> Event {
    let authz = &vc.authz;
    let result = handle.reload_shadow(model, &authz.shadow_policy_files, &authz.super_users);
    match &result {
        Ok(version) => {
            tracing::info!(virtual_cluster = vc.label(), %version, "shadow policy loaded")
        }
        Err(e) => tracing::error!(
            virtual_cluster = vc.label(), error = %e,
            "shadow policy did not load: no shadow decisions until it does"
        ),
    }
    let (outcome, hash, error) = match result {
        Ok(v) => (Outcome::Ok, Some(v), None),
        Err(e) => (Outcome::Error, None, Some(e.to_string())),
    };
    Event::Reload {
        what: ReloadKind::ShadowPolicy,
        source: "start".into(),
        outcome,
        hash,
        error,
        virtual_cluster: vc.label().map(str::to_string),
    }
}

/// Keeps `ready` (what `/readyz` answers) in step with the cluster's reachability and the audit
/// trail's admission, checked every 250 ms.
async fn track_readiness(
    reachable: Vec<Arc<AtomicBool>>,
    audit: Arc<AuditCtx>,
    ready: Arc<AtomicBool>,
    mut shutdown: watch::Receiver<bool>,
) {
    let mut was_refusing = false;
    loop {
        let refusing = audit.refusing();
        if refusing != was_refusing {
            if refusing {
                tracing::warn!("not ready: the audit trail (fail-closed) is refusing records");
            } else {
                tracing::info!("the audit trail takes records again");
            }
            was_refusing = refusing;
        }
        ready.store(
            reachable.iter().all(|r| r.load(Ordering::Relaxed)) && !refusing,
            Ordering::Release,
        );
        tokio::select! {
            _ = tokio::time::sleep(Duration::from_millis(250)) => {}
            _ = shutdown.wait_for(|s| *s) => {
                ready.store(false, Ordering::Release);
                return;
            }
        }
    }
}

/// Queries the cluster at start (retrying until it answers) and then every `every`.
async fn refresh_cluster(
    current: Arc<CurrentUpstream>,
    every: Duration,
    virtual_cluster: Option<String>,
    ready: Arc<AtomicBool>,
    mut shutdown: watch::Receiver<bool>,
) {
    let mut backoff = Duration::from_millis(200);
    let mut switched = current.subscribe();
    loop {
        let cluster = current.cluster();
        let wait = match cluster.refresh().await {
            Ok(()) => {
                if !ready.swap(true, Ordering::Relaxed) {
                    tracing::info!(virtual_cluster, "upstream cluster reachable");
                }
                backoff = Duration::from_millis(200);
                every
            }
            Err(e) => {
                tracing::warn!(virtual_cluster, error = %e, retry_in = ?backoff, "upstream metadata refresh failed");
                let w = backoff;
                backoff = (backoff * 2).min(every);
                w
            }
        };
        tokio::select! {
            _ = tokio::time::sleep(wait) => {}
            // A new upstream is asked at once (and must answer before it counts as reachable).
            r = switched.changed() => {
                if r.is_err() {
                    return;
                }
                ready.store(false, Ordering::Relaxed);
            }
            _ = shutdown.wait_for(|s| *s) => return,
        }
    }
}

/// Binds the per-broker port of every node as soon as the node becomes known (of the current
/// upstream: a switch brings its nodes' ports too; ports bound for earlier nodes stay, and lead
/// to the current upstream's node of that id). A node whose id falls outside the listener's range
/// gets no port: it is left out of rewritten responses and logged.
async fn bind_broker_ports(
    listener: Arc<ListenerConfig>,
    ctx: PortCtx,
    current: Arc<CurrentUpstream>,
    shutdown: watch::Receiver<bool>,
) {
    let mut done: BTreeSet<i32> = BTreeSet::new();
    let mut switched = current.subscribe();
    let mut nodes = current.cluster().subscribe_nodes();
    loop {
        let current_nodes: Vec<i32> = nodes.borrow_and_update().iter().copied().collect();
        for node in current_nodes {
            if done.contains(&node) {
                continue;
            }
            let Some(port) = listener.broker_port(node) else {
                done.insert(node);
                tracing::error!(
                    listener = %listener.name, node,
                    base = listener.broker_port_base, count = listener.broker_port_count,
                    "broker node id outside this listener's port range: it is unreachable through the gateway"
                );
                continue;
            };
            let addr = SocketAddr::new(listener.bind.ip(), port);
            match TcpListener::bind(addr).await {
                Ok(tcp) => {
                    done.insert(node);
                    tracing::info!(listener = %listener.name, node, %addr, "broker port listening");
                    let mut port_ctx = ctx.clone();
                    port_ctx.session.target = Target::Node(node);
                    tokio::spawn(accept_loop(tcp, port_ctx, shutdown.clone()));
                }
                Err(e) => {
                    // Left out of `done`, so the next change or the retry below tries again.
                    tracing::error!(listener = %listener.name, node, %addr, error = %e, "cannot bind broker port");
                }
            }
        }
        let retry = tokio::time::sleep(Duration::from_secs(5));
        let pending = has_unbound(&listener, &nodes.borrow(), &done);
        let mut shutdown = shutdown.clone();
        tokio::select! {
            // The old upstream's view ends with it after a switch: follow the current one.
            r = nodes.changed() => if r.is_err() { nodes = current.cluster().subscribe_nodes() },
            r = switched.changed() => {
                if r.is_err() {
                    return;
                }
                nodes = current.cluster().subscribe_nodes();
            }
            _ = retry, if pending => {}
            _ = shutdown.wait_for(|s| *s) => return,
        }
    }
}

fn has_unbound(listener: &ListenerConfig, nodes: &BTreeSet<i32>, done: &BTreeSet<i32>) -> bool {
    nodes
        .iter()
        .any(|n| !done.contains(n) && listener.broker_port(*n).is_some())
}

/// This machine's name for the audit records (`instance`), without a dependency for one syscall.
fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_string())
        .unwrap_or_else(|_| "gateway".into())
}
