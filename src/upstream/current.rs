//! The upstream a virtual cluster forwards to now, and the switch to another: connections opened
//! before a switch finish what they have in flight and close; new ones go to the new upstream.

use std::sync::{Arc, RwLock};

use tokio::sync::watch;

use super::Cluster;

/// One virtual cluster's upstream, swappable while the gateway runs.
pub struct CurrentUpstream {
    inner: RwLock<Generation>,
    clusters: watch::Sender<Arc<Cluster>>,
}

/// The upstream since the last switch, and the signal its connections drain on.
struct Generation {
    cluster: Arc<Cluster>,
    servers: Vec<String>,
    drain: watch::Sender<bool>,
}

impl CurrentUpstream {
    /// Starts with `cluster` (reached at `servers`); the gateway's `shutdown` drains the
    /// connections of whatever generation is current when it comes.
    pub fn new(
        cluster: Arc<Cluster>,
        servers: Vec<String>,
        mut shutdown: watch::Receiver<bool>,
    ) -> Arc<CurrentUpstream> {
        let (clusters, _) = watch::channel(cluster.clone());
        let (drain, _) = watch::channel(false);
        let current = Arc::new(CurrentUpstream {
            inner: RwLock::new(Generation {
                cluster,
                servers,
                drain,
            }),
            clusters,
        });
        let weak = Arc::downgrade(&current);
        tokio::spawn(async move {
            let _ = shutdown.wait_for(|s| *s).await;
            if let Some(c) = weak.upgrade() {
                c.read().drain.send_replace(true);
            }
        });
        current
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, Generation> {
        self.inner.read().unwrap_or_else(|p| p.into_inner())
    }

    /// What a new connection uses for its lifetime: the cluster, and the signal that tells it
    /// to stop taking requests (a switch or the gateway's shutdown).
    pub fn for_connection(&self) -> (Arc<Cluster>, watch::Receiver<bool>) {
        let g = self.read();
        (g.cluster.clone(), g.drain.subscribe())
    }

    pub fn cluster(&self) -> Arc<Cluster> {
        self.read().cluster.clone()
    }

    pub fn servers(&self) -> Vec<String> {
        self.read().servers.clone()
    }

    /// Follows switches (the broker-port binder and the refresher watch it).
    pub fn subscribe(&self) -> watch::Receiver<Arc<Cluster>> {
        self.clusters.subscribe()
    }

    /// Makes `cluster` current and tells every connection of the previous one to drain; returns
    /// the previous servers and how many connections were told.
    pub fn switch(&self, cluster: Arc<Cluster>, servers: Vec<String>) -> (Vec<String>, usize) {
        let (drain, _) = watch::channel(false);
        let old = {
            let mut g = self.inner.write().unwrap_or_else(|p| p.into_inner());
            std::mem::replace(
                &mut *g,
                Generation {
                    cluster: cluster.clone(),
                    servers,
                    drain,
                },
            )
        };
        self.clusters.send_replace(cluster);
        let told = old.drain.receiver_count();
        old.drain.send_replace(true);
        (old.servers, told)
    }
}
