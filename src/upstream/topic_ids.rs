//! Topic ids the gateway has seen in upstream Metadata responses, so requests that name topics by id
//! (Fetch v13+, Metadata by id, DeleteTopics v6+) can be authorized by name.

use std::collections::HashMap;
use std::sync::RwLock;

use uuid::Uuid;

use crate::policy::mapping::TopicIds;

/// Bound on remembered topics; past it the map starts again from what the next responses show, so a
/// cluster with churning topic names cannot grow the gateway without limit.
const MAX_TOPICS: usize = 1_000_000;

#[derive(Default)]
pub struct TopicIdMap {
    inner: RwLock<Maps>,
    /// The names of the last full listing of the cluster (the gateway's refresh), for requests
    /// that ask for every topic and must be answered as the describable ones by name.
    listing: RwLock<std::sync::Arc<Vec<String>>>,
}

#[derive(Default)]
struct Maps {
    by_id: HashMap<Uuid, String>,
    by_name: HashMap<String, Uuid>,
}

impl TopicIdMap {
    /// Records topics named by an upstream response; the nil id (older versions) is ignored.
    pub fn learn<S: std::ops::Deref<Target = str>>(
        &self,
        topics: impl IntoIterator<Item = (S, Uuid)>,
    ) {
        let mut fresh: Vec<(S, Uuid)> = Vec::new();
        {
            let maps = self.inner.read().unwrap_or_else(|p| p.into_inner());
            for (name, id) in topics {
                if id.is_nil() || name.is_empty() {
                    continue;
                }
                if maps.by_id.get(&id).map(String::as_str) != Some(&*name) {
                    fresh.push((name, id));
                }
            }
        }
        if fresh.is_empty() {
            return; // the common case: nothing new, no write lock
        }
        let mut maps = self.inner.write().unwrap_or_else(|p| p.into_inner());
        if maps.by_id.len() + fresh.len() > MAX_TOPICS {
            maps.by_id.clear();
            maps.by_name.clear();
        }
        for (name, id) in fresh {
            let name = &*name;
            // A re-created topic gets a new id under the same name: drop the stale pairing.
            if let Some(old) = maps.by_name.insert(name.to_string(), id) {
                maps.by_id.remove(&old);
            }
            maps.by_id.insert(id, name.to_string());
        }
    }

    /// Records a full listing of the cluster's topics (and learns their ids).
    pub fn learn_listing(&self, topics: &[(String, Uuid)]) {
        self.learn(topics.iter().map(|(n, id)| (n.as_str(), *id)));
        let names = topics.iter().map(|(n, _)| n.clone()).collect();
        *self.listing.write().unwrap_or_else(|p| p.into_inner()) = std::sync::Arc::new(names);
    }

    pub fn len(&self) -> usize {
        self.inner
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .by_id
            .len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl TopicIds for TopicIdMap {
    fn name_of(&self, id: Uuid) -> Option<String> {
        self.inner
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .by_id
            .get(&id)
            .cloned()
    }

    fn id_of(&self, name: &str) -> Option<Uuid> {
        self.inner
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .by_name
            .get(name)
            .copied()
    }

    fn check_name(&self, id: Uuid, check: &mut dyn FnMut(&str) -> bool) -> Option<bool> {
        if id.is_nil() {
            return None;
        }
        let maps = self.inner.read().unwrap_or_else(|p| p.into_inner());
        maps.by_id.get(&id).map(|name| check(name))
    }

    fn listing(&self) -> Vec<String> {
        let listing = self
            .listing
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone();
        listing.to_vec()
    }
}

/// The topic ids of one tenant (a virtual cluster with a name prefix): names are the tenant's,
/// and an id of any other topic is one the tenant cannot name (Kafka's UNKNOWN_TOPIC_ID), so a
/// request naming it by id is answered by the gateway and never reaches the broker.
pub struct TenantTopicIds<'a> {
    pub ids: &'a TopicIdMap,
    pub tenant: &'a crate::protocol::tenant::TenantMap,
}

impl TopicIds for TenantTopicIds<'_> {
    fn name_of(&self, id: Uuid) -> Option<String> {
        let name = self.ids.name_of(id)?;
        self.tenant.client_topic(&name).map(str::to_string)
    }

    fn id_of(&self, name: &str) -> Option<Uuid> {
        if name.is_empty() {
            return None;
        }
        self.ids.id_of(&self.tenant.broker_topic(name))
    }

    fn check_name(&self, id: Uuid, check: &mut dyn FnMut(&str) -> bool) -> Option<bool> {
        let tenant = self.tenant;
        let mut own = None;
        self.ids.check_name(id, &mut |name| {
            own = tenant.client_topic(name).map(&mut *check);
            own.unwrap_or(false)
        })?;
        own
    }

    fn listing(&self) -> Vec<String> {
        self.ids
            .listing()
            .iter()
            .filter_map(|n| self.tenant.client_topic(n).map(str::to_string))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_tenant_names_only_its_own_topics_and_ids() {
        let m = TopicIdMap::default();
        let (own, other) = (Uuid::from_u128(1), Uuid::from_u128(2));
        m.learn([("acme.orders", own), ("globex.orders", other)]);
        let tenant = crate::protocol::tenant::TenantMap::new("acme.", "acme");
        let t = TenantTopicIds {
            ids: &m,
            tenant: &tenant,
        };
        assert_eq!(t.name_of(own).as_deref(), Some("orders"));
        assert_eq!(t.name_of(other), None, "another tenant's id is unknown");
        assert_eq!(t.id_of("orders"), Some(own));
        assert_eq!(t.id_of("globex.orders"), None);
        assert_eq!(t.check_name(own, &mut |n| n == "orders"), Some(true));
        assert_eq!(t.check_name(other, &mut |_| true), None);
    }

    #[test]
    fn learns_and_follows_recreated_topics() {
        let m = TopicIdMap::default();
        let a = Uuid::from_u128(1);
        let b = Uuid::from_u128(2);
        m.learn([("orders", a), ("ignored", Uuid::nil())]);
        assert_eq!(m.name_of(a).as_deref(), Some("orders"));
        assert_eq!(m.id_of("orders"), Some(a));
        assert_eq!(m.len(), 1);
        m.learn([("orders", b)]);
        assert_eq!(
            m.name_of(a),
            None,
            "the old id of a re-created topic is forgotten"
        );
        assert_eq!(m.name_of(b).as_deref(), Some("orders"));
    }
}
