//! Which Kafka APIs the gateway forwards, at which versions, and how their responses are treated.
//!
//! The advertised range of an API is the intersection of what the upstream cluster supports, what
//! kafka-protocol can decode and what the gateway can enforce. Anything outside it is refused (the
//! connection is closed, as a Kafka broker does for an unknown API), so the table is an allow-list.

use kafka_protocol::messages::api_versions_response::ApiVersion;
use kafka_protocol::messages::{ApiKey, ApiVersionsResponse};

/// What the gateway must do with the upstream's response to an API.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ResponseHandling {
    /// Bytes go back to the client unchanged.
    Passthrough,
    /// The response names brokers: decode and rewrite their addresses.
    RewriteBrokers,
}

/// An API the gateway handles, with the highest version it accepts and why that cap exists.
pub struct ApiSpec {
    pub key: ApiKey,
    pub max: i16,
    pub response: ResponseHandling,
}

const fn spec(key: ApiKey, max: i16, response: ResponseHandling) -> ApiSpec {
    ApiSpec { key, max, response }
}

use ResponseHandling::{Passthrough as P, RewriteBrokers as R};

/// The allow-list. Produce v10+ and Fetch v16+ responses may carry `node_endpoints` (KIP-951): they
/// are rewritten without decoding the rest ([`super::endpoints`]; [`handling`] says when). Version
/// caps below kafka-protocol's own maximum say why:
/// - DescribeCluster v1+ can describe controllers (endpoint_type 2), whose ids are not broker node ids.
///
/// Deliberately absent (refused and left out of ApiVersions): broker-to-broker and controller APIs;
/// SCRAM-credential, delegation-token and quota APIs (the gateway owns identity and policy, so the
/// brokers' would be misleading; the ACL APIs are [`ANSWERED`] from the policy instead);
/// DescribeQuorum, whose response names controllers the gateway does not front; telemetry push.
pub const SUPPORTED: &[ApiSpec] = &[
    spec(ApiKey::Produce, i16::MAX, R),
    spec(ApiKey::Fetch, i16::MAX, R),
    spec(ApiKey::ListOffsets, i16::MAX, P),
    spec(ApiKey::Metadata, i16::MAX, R),
    spec(ApiKey::OffsetCommit, i16::MAX, P),
    spec(ApiKey::OffsetFetch, i16::MAX, P),
    spec(ApiKey::FindCoordinator, i16::MAX, R),
    spec(ApiKey::JoinGroup, i16::MAX, P),
    spec(ApiKey::Heartbeat, i16::MAX, P),
    spec(ApiKey::LeaveGroup, i16::MAX, P),
    spec(ApiKey::SyncGroup, i16::MAX, P),
    spec(ApiKey::DescribeGroups, i16::MAX, P),
    spec(ApiKey::ListGroups, i16::MAX, P),
    spec(ApiKey::ApiVersions, i16::MAX, P),
    spec(ApiKey::CreateTopics, i16::MAX, P),
    spec(ApiKey::DeleteTopics, i16::MAX, P),
    spec(ApiKey::DeleteRecords, i16::MAX, P),
    spec(ApiKey::InitProducerId, i16::MAX, P),
    spec(ApiKey::OffsetForLeaderEpoch, i16::MAX, P),
    spec(ApiKey::AddPartitionsToTxn, i16::MAX, P),
    spec(ApiKey::AddOffsetsToTxn, i16::MAX, P),
    spec(ApiKey::EndTxn, i16::MAX, P),
    spec(ApiKey::TxnOffsetCommit, i16::MAX, P),
    spec(ApiKey::DescribeConfigs, i16::MAX, P),
    spec(ApiKey::AlterConfigs, i16::MAX, P),
    spec(ApiKey::DescribeLogDirs, i16::MAX, P),
    spec(ApiKey::CreatePartitions, i16::MAX, P),
    spec(ApiKey::DeleteGroups, i16::MAX, P),
    spec(ApiKey::IncrementalAlterConfigs, i16::MAX, P),
    spec(ApiKey::OffsetDelete, i16::MAX, P),
    spec(ApiKey::DescribeCluster, 0, R),
    spec(ApiKey::DescribeTopicPartitions, i16::MAX, P),
    spec(ApiKey::DescribeProducers, i16::MAX, P),
    spec(ApiKey::DescribeTransactions, i16::MAX, P),
    spec(ApiKey::ListTransactions, i16::MAX, P),
    spec(ApiKey::ConsumerGroupHeartbeat, i16::MAX, P),
    spec(ApiKey::ConsumerGroupDescribe, i16::MAX, P),
    spec(ApiKey::ShareGroupHeartbeat, i16::MAX, P),
    spec(ApiKey::ShareGroupDescribe, i16::MAX, P),
    spec(ApiKey::ShareFetch, i16::MAX, R),
    spec(ApiKey::ShareAcknowledge, i16::MAX, R),
    spec(ApiKey::DescribeShareGroupOffsets, i16::MAX, P),
    spec(ApiKey::AlterShareGroupOffsets, i16::MAX, P),
    spec(ApiKey::DeleteShareGroupOffsets, i16::MAX, P),
    spec(ApiKey::ListConfigResources, i16::MAX, P),
    spec(ApiKey::DescribeAcls, i16::MAX, P),
    spec(ApiKey::CreateAcls, i16::MAX, P),
    spec(ApiKey::DeleteAcls, i16::MAX, P),
];

/// APIs the gateway answers from its own state once the request is authorized, never forwarding
/// them, and offers whatever the upstream offers: Kafka's ACL APIs, answered from the policy files
/// (see `policy::mapping::acls`).
pub const ANSWERED: [ApiKey; 3] = [ApiKey::DescribeAcls, ApiKey::CreateAcls, ApiKey::DeleteAcls];

pub fn spec_for(key: ApiKey) -> Option<&'static ApiSpec> {
    SUPPORTED.iter().find(|s| s.key == key)
}

/// What the session does with the upstream's response to `key` at `version`: Produce and Fetch
/// responses name brokers only from the versions with `node_endpoints`.
pub fn handling(key: ApiKey, version: i16) -> ResponseHandling {
    match spec_for(key).map(|s| s.response) {
        Some(ResponseHandling::RewriteBrokers)
            if !matches!(
                key,
                ApiKey::Metadata | ApiKey::FindCoordinator | ApiKey::DescribeCluster
            ) && !super::endpoints::applies(key, version) =>
        {
            ResponseHandling::Passthrough
        }
        Some(h) => h,
        None => ResponseHandling::Passthrough,
    }
}

/// The range the gateway itself can handle for `key`: what kafka-protocol can decode in both directions,
/// capped by [`SUPPORTED`]. `ApiKey::valid_versions()` is not used: for OffsetCommit, OffsetFetch and
/// InitProducerId it claims one version more than the request decoders accept.
pub fn gateway_range(key: ApiKey) -> Option<(i16, i16)> {
    let spec = spec_for(key)?;
    let (req_min, req_max) = super::bounds::supported_body_versions(key as i16, true)?;
    let (resp_min, resp_max) = super::bounds::supported_body_versions(key as i16, false)?;
    let min = req_min.max(resp_min);
    let max = req_max.min(resp_max).min(spec.max);
    (min <= max).then_some((min, max))
}

/// APIs the gateway answers itself and never forwards, with the versions it implements. SaslHandshake
/// starts at v1: v0 is followed by raw SASL tokens outside Kafka framing.
pub fn gateway_owned() -> [(ApiKey, i16, i16); 3] {
    let range = |k: ApiKey| {
        let (req_min, req_max) =
            super::bounds::supported_body_versions(k as i16, true).unwrap_or((0, 0));
        let (resp_min, resp_max) =
            super::bounds::supported_body_versions(k as i16, false).unwrap_or((0, 0));
        (req_min.max(resp_min), req_max.min(resp_max))
    };
    let (_, handshake_max) = range(ApiKey::SaslHandshake);
    let (auth_min, auth_max) = range(ApiKey::SaslAuthenticate);
    [
        (ApiKey::ApiVersions, 0, api_versions_max()),
        (ApiKey::SaslHandshake, 1, handshake_max),
        (ApiKey::SaslAuthenticate, auth_min, auth_max),
    ]
}

/// Highest ApiVersions request version the gateway parses. Kafka answers a higher one with a v0
/// response carrying UNSUPPORTED_VERSION (35) and the range it does support.
pub fn api_versions_max() -> i16 {
    gateway_range(ApiKey::ApiVersions).map_or(0, |r| r.1)
}

/// Negotiated version ranges: gateway ∩ upstream, per API key. Also keeps the upstream's feature
/// fields so clients see the cluster's finalized features unchanged.
#[derive(Debug, Clone)]
pub struct VersionTable {
    ranges: Vec<(i16, i16, i16)>,
    upstream: ApiVersionsResponse,
}

impl VersionTable {
    /// Builds the table from the upstream's ApiVersions response.
    pub fn from_upstream(upstream: &ApiVersionsResponse) -> Self {
        let mut ranges = Vec::new();
        for av in &upstream.api_keys {
            let Ok(key) = ApiKey::try_from(av.api_key) else {
                continue;
            };
            let Some((gmin, gmax)) = gateway_range(key) else {
                continue;
            };
            let min = gmin.max(av.min_version);
            let max = gmax.min(av.max_version);
            if min <= max {
                ranges.push((av.api_key, min, max));
            }
        }
        // The APIs the gateway answers itself are offered whatever the upstream says, at the
        // versions the gateway implements: clients check for them before authenticating.
        let answered = ANSWERED
            .into_iter()
            .filter_map(|k| gateway_range(k).map(|(min, max)| (k, min, max)));
        for (key, min, max) in gateway_owned().into_iter().chain(answered) {
            ranges.retain(|r| r.0 != key as i16);
            ranges.push((key as i16, min, max));
        }
        ranges.sort_unstable();
        VersionTable {
            ranges,
            upstream: upstream.clone(),
        }
    }

    pub fn range(&self, api_key: i16) -> Option<(i16, i16)> {
        self.ranges
            .iter()
            .find(|r| r.0 == api_key)
            .map(|r| (r.1, r.2))
    }

    pub fn allows(&self, api_key: i16, version: i16) -> bool {
        self.range(api_key)
            .is_some_and(|(min, max)| (min..=max).contains(&version))
    }

    /// The gateway's answer to an ApiVersions request.
    pub fn response(&self) -> ApiVersionsResponse {
        let mut resp = ApiVersionsResponse::default();
        resp.error_code = 0;
        resp.api_keys = self
            .ranges
            .iter()
            .map(|&(api_key, min_version, max_version)| {
                let mut av = ApiVersion::default();
                av.api_key = api_key;
                av.min_version = min_version;
                av.max_version = max_version;
                av
            })
            .collect();
        // Feature levels are capped to what the offered APIs can carry: a client that sees a
        // feature finalized uses the APIs it implies without checking their versions again.
        resp.supported_features = self
            .upstream
            .supported_features
            .iter()
            .filter_map(|f| {
                let cap = self.feature_cap(f.name.as_str());
                let mut f = f.clone();
                f.max_version = f.max_version.min(cap);
                (f.max_version >= f.min_version && f.max_version > 0).then_some(f)
            })
            .collect();
        resp.finalized_features_epoch = self.upstream.finalized_features_epoch;
        resp.finalized_features = self
            .upstream
            .finalized_features
            .iter()
            .filter_map(|f| {
                let cap = self.feature_cap(f.name.as_str());
                let mut f = f.clone();
                f.max_version_level = f.max_version_level.min(cap);
                f.min_version_level = f.min_version_level.min(f.max_version_level);
                (f.max_version_level > 0).then_some(f)
            })
            .collect();
        resp.zk_migration_ready = false;
        resp
    }

    /// The highest level of feature `name` the gateway lets clients see, given the API versions
    /// it offers. Kafka's clients act on a finalized feature without checking the APIs behind it
    /// again: the Java client with `transaction.version` 2 sends Produce v12+ and EndTxn v5 and
    /// aborts the transaction when those versions are not offered. Broker-side features pass;
    /// features the gateway does not know are hidden (fail closed: they may gate APIs it refuses).
    fn feature_cap(&self, name: &str) -> i16 {
        let offers = |key: ApiKey, version: i16| self.allows(key as i16, version);
        match name {
            // Only brokers and controllers act on these.
            "metadata.version" | "kraft.version" | "eligible.leader.replicas.version" => i16::MAX,
            // KIP-890 part 2: Produce v12, AddPartitionsToTxn v5, EndTxn v5, TxnOffsetCommit v5.
            "transaction.version"
                if offers(ApiKey::Produce, 12)
                    && offers(ApiKey::EndTxn, 5)
                    && offers(ApiKey::AddPartitionsToTxn, 5)
                    && offers(ApiKey::TxnOffsetCommit, 5) =>
            {
                i16::MAX
            }
            "transaction.version" => 1,
            // KIP-848: the consumer group protocol.
            "group.version" if self.range(ApiKey::ConsumerGroupHeartbeat as i16).is_some() => {
                i16::MAX
            }
            // KIP-932 share groups, level 1: the consumer's APIs at v1 (what kafka-protocol
            // decodes). A later level may rest on later versions of them: it is not passed on.
            "share.version"
                if offers(ApiKey::ShareGroupHeartbeat, 1)
                    && offers(ApiKey::ShareFetch, 1)
                    && offers(ApiKey::ShareAcknowledge, 1) =>
            {
                1
            }
            // KIP-1071 streams groups: the gateway offers none of their APIs.
            _ => 0,
        }
    }
}

/// Kafka's INVALID_REQUEST error code.
pub const INVALID_REQUEST: i16 = 42;

/// Kafka's ApiVersionsRequest.isValid: from v3 the client software name and version must match
/// `[a-zA-Z0-9](?:[a-zA-Z0-9\-.]*[a-zA-Z0-9])?`. Otherwise Kafka answers INVALID_REQUEST.
pub fn valid_client_software(
    version: i16,
    req: &kafka_protocol::messages::ApiVersionsRequest,
) -> bool {
    fn ok(s: &str) -> bool {
        let b = s.as_bytes();
        let edge = |c: &u8| c.is_ascii_alphanumeric();
        match (b.first(), b.last()) {
            (Some(first), Some(last)) => {
                edge(first)
                    && edge(last)
                    && b.iter()
                        .all(|c| c.is_ascii_alphanumeric() || *c == b'-' || *c == b'.')
            }
            _ => false,
        }
    }
    version < 3
        || (ok(req.client_software_name.as_str()) && ok(req.client_software_version.as_str()))
}

/// The v0 response Kafka sends to an ApiVersions request of a version it does not support.
pub fn unsupported_api_versions_response() -> ApiVersionsResponse {
    let mut resp = ApiVersionsResponse::default();
    resp.error_code = 35; // UNSUPPORTED_VERSION
    let mut av = ApiVersion::default();
    av.api_key = ApiKey::ApiVersions as i16;
    av.min_version = 0;
    av.max_version = api_versions_max();
    resp.api_keys = vec![av];
    resp
}

#[cfg(test)]
mod tests {
    use super::*;

    fn upstream(entries: &[(i16, i16, i16)]) -> ApiVersionsResponse {
        let mut r = ApiVersionsResponse::default();
        r.api_keys = entries
            .iter()
            .map(|&(k, min, max)| {
                let mut av = ApiVersion::default();
                av.api_key = k;
                av.min_version = min;
                av.max_version = max;
                av
            })
            .collect();
        r
    }

    #[test]
    fn intersection_of_upstream_and_gateway_ranges_drops_unknown_apis() {
        let t = VersionTable::from_upstream(&upstream(&[
            (0, 0, 12),  // Produce
            (1, 4, 17),  // Fetch
            (3, 0, 12),  // Metadata
            (30, 0, 3),  // CreateAcls: answered by the gateway, not forwarded
            (57, 0, 2),  // UpdateFeatures: refused
            (999, 0, 1), // unknown key
        ]));
        assert_eq!(
            t.range(0),
            Some((3, 12)),
            "Produce: kafka-protocol's min 3, the upstream's max 12"
        );
        assert_eq!(t.range(1), Some((4, 17)));
        assert!(t.range(3).is_some());
        assert_eq!(t.range(30), Some((1, 3)), "the gateway's own range");
        assert_eq!(
            t.range(29),
            Some((1, 3)),
            "offered whatever the upstream offers"
        );
        assert_eq!(t.range(57), None);
        assert_eq!(t.range(999), None);
        assert!(t.range(18).is_some(), "ApiVersions is always answered");
        assert_eq!(
            t.range(17),
            Some((1, 1)),
            "SaslHandshake v1 only, offered without upstream support"
        );
        assert!(
            t.range(36).is_some(),
            "SaslAuthenticate is answered by the gateway"
        );
        assert!(!t.allows(0, 13));
        assert!(t.allows(0, 12));
        let keys: Vec<i16> = t.response().api_keys.iter().map(|a| a.api_key).collect();
        assert!(keys.contains(&30) && !keys.contains(&57));
    }

    #[test]
    fn upstream_range_that_misses_gateway_range_is_dropped() {
        let t = VersionTable::from_upstream(&upstream(&[(60, 1, 2)]));
        assert_eq!(
            t.range(60),
            None,
            "DescribeCluster is capped at v0 by the gateway"
        );
    }

    #[test]
    fn gateway_never_advertises_a_version_it_cannot_decode() {
        for spec in SUPPORTED {
            let (min, max) = gateway_range(spec.key).expect("every supported API has a range");
            for v in min..=max {
                let req = kafka_protocol::messages::RequestKind::decode(
                    spec.key,
                    &mut bytes::Bytes::new(),
                    v,
                );
                // An empty body may fail to decode, but never because the version is unsupported.
                if let Err(e) = req {
                    assert!(
                        !e.to_string().contains("version not supported"),
                        "{:?} v{v}: {e}",
                        spec.key
                    );
                }
            }
        }
        assert_eq!(gateway_range(ApiKey::OffsetCommit).map(|r| r.1), Some(9));
    }

    fn with_features(mut r: ApiVersionsResponse, features: &[(&str, i16)]) -> ApiVersionsResponse {
        use kafka_protocol::messages::api_versions_response::{
            FinalizedFeatureKey, SupportedFeatureKey,
        };
        use kafka_protocol::protocol::StrBytes;
        for (name, level) in features {
            let mut s = SupportedFeatureKey::default();
            s.name = StrBytes::from_string(name.to_string());
            s.min_version = 0;
            s.max_version = *level;
            r.supported_features.push(s);
            let mut f = FinalizedFeatureKey::default();
            f.name = StrBytes::from_string(name.to_string());
            f.min_version_level = *level;
            f.max_version_level = *level;
            r.finalized_features.push(f);
        }
        r
    }

    fn finalized(r: &ApiVersionsResponse) -> Vec<(String, i16)> {
        r.finalized_features
            .iter()
            .map(|f| (f.name.to_string(), f.max_version_level))
            .collect()
    }

    #[test]
    fn feature_levels_never_exceed_what_the_offered_apis_carry() {
        let kafka_4_4 = [
            ("metadata.version", 33),
            ("transaction.version", 2),
            ("group.version", 1),
            ("share.version", 2),
            ("streams.version", 1),
            ("eligible.leader.replicas.version", 1),
            ("some.future.version", 3),
        ];
        // Everything transactions v2 needs is offered: transaction.version 2 goes through.
        let full = [(0, 3, 13), (26, 0, 5), (24, 0, 5), (28, 0, 5), (68, 0, 1)];
        let t = VersionTable::from_upstream(&with_features(upstream(&full), &kafka_4_4));
        assert!(finalized(&t.response()).contains(&("transaction.version".to_string(), 2)));
        // Produce below v12 (an older upstream): transactions v2 would need it, so
        // transaction.version is 1.
        let t = VersionTable::from_upstream(&with_features(
            upstream(&[(0, 3, 11), (26, 0, 5), (24, 0, 5), (28, 0, 5), (68, 0, 1)]),
            &kafka_4_4,
        ));
        let r = t.response();
        assert_eq!(
            finalized(&r),
            vec![
                ("metadata.version".to_string(), 33),
                ("transaction.version".to_string(), 1),
                ("group.version".to_string(), 1),
                ("eligible.leader.replicas.version".to_string(), 1),
            ],
            "share and streams groups and unknown features hidden"
        );
        let tv = r
            .supported_features
            .iter()
            .find(|f| f.name.as_str() == "transaction.version")
            .expect("supported");
        assert_eq!((tv.min_version, tv.max_version), (0, 1));
        // The share consumer's APIs offered: share groups at level 1, the level their v1 carries.
        let t = VersionTable::from_upstream(&with_features(
            upstream(&[(76, 1, 1), (78, 1, 2), (79, 1, 2)]),
            &kafka_4_4,
        ));
        assert!(finalized(&t.response()).contains(&("share.version".to_string(), 1)));
        // Without ConsumerGroupHeartbeat upstream, the consumer protocol is not advertised either.
        let t = VersionTable::from_upstream(&with_features(
            upstream(&[(0, 3, 9)]),
            &[("group.version", 1)],
        ));
        assert!(finalized(&t.response()).is_empty());
    }

    #[test]
    fn client_software_names_are_checked_from_v3_as_kafka_does() {
        use kafka_protocol::messages::ApiVersionsRequest;
        use kafka_protocol::protocol::StrBytes;
        let req = |name: &'static str, version: &'static str| {
            ApiVersionsRequest::default()
                .with_client_software_name(StrBytes::from_static_str(name))
                .with_client_software_version(StrBytes::from_static_str(version))
        };
        assert!(valid_client_software(3, &req("librdkafka", "2.16.0")));
        assert!(valid_client_software(3, &req("apache-kafka-java", "4.4.0")));
        assert!(
            valid_client_software(2, &req("", "")),
            "not checked before v3"
        );
        for (name, version) in [
            ("", "1"),
            ("x", ""),
            ("-x", "1"),
            ("x-", "1"),
            ("a b", "1"),
            ("é", "1"),
        ] {
            assert!(
                !valid_client_software(3, &req(name, version)),
                "{name:?} {version:?}"
            );
        }
    }

    #[test]
    fn unsupported_version_answer_has_error_35_and_range() {
        let r = unsupported_api_versions_response();
        assert_eq!(r.error_code, 35);
        assert_eq!(r.api_keys.len(), 1);
        assert_eq!(r.api_keys[0].api_key, 18);
    }
}

#[cfg(test)]
mod readme_table {
    use super::*;

    /// The highest API key of Apache Kafka 4.4 (UnregisterController).
    const KAFKA_4_4_LAST_API_KEY: i16 = 94;

    /// What the gateway does with `key`, as the README's API table says it: forwarded at a version
    /// range, answered by the gateway at a range, or refused.
    fn treatment(key: i16) -> String {
        let range = |(min, max): (i16, i16)| {
            if min == max {
                format!("v{min}")
            } else {
                format!("v{min}-{max}")
            }
        };
        let Ok(api) = ApiKey::try_from(key) else {
            return "refused".into();
        };
        if let Some((_, min, max)) = gateway_owned().into_iter().find(|(k, _, _)| *k == api) {
            return format!("answered {}", range((min, max)));
        }
        match gateway_range(api) {
            Some(r) if ANSWERED.contains(&api) => format!("answered {}", range(r)),
            Some(r) => format!("forwarded {}", range(r)),
            None => "refused".into(),
        }
    }

    /// The README's table of Kafka 4.4's APIs says what the code does, key by key.
    #[test]
    fn the_readme_lists_every_kafka_4_4_api_as_the_gateway_treats_it() {
        let readme = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md"))
            .expect("README.md");
        let rows: Vec<(i16, String)> = readme
            .lines()
            .filter_map(|l| {
                let cells: Vec<&str> = l.split('|').map(str::trim).collect();
                let key = cells.get(1)?.parse::<i16>().ok()?;
                Some((key, cells.get(3)?.trim_matches('*').to_string()))
            })
            .collect();
        let want: Vec<(i16, String)> = (0..=KAFKA_4_4_LAST_API_KEY)
            .map(|k| (k, treatment(k)))
            .collect();
        let table: String = want.iter().map(|(k, t)| format!("{k}: {t}\n")).collect();
        assert_eq!(
            rows, want,
            "the README's API table is out of date; the code says:\n{table}"
        );
    }
}
