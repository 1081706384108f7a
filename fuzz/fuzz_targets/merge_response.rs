//! Fuzzes the authorization path of a forwarded request and its upstream response: the
//! request-to-check mapping (`policy::mapping::plan`) and the merge of the denied part's errors
//! into the (untrusted) upstream response, followed by broker rewriting where the API needs it, as
//! `session::respond_loop` runs them.
//!
//! Input: `authz u8 | request length u16 (big-endian) | request payload | response payload`
//! (payloads without their length prefix). The request is decoded as the session decodes it
//! (`codec::decode_request`, only for APIs and versions in the gateway's range). `authz` drives a
//! deterministic fake authorizer: 0xff allows everything, 0xfe denies everything, any other value
//! allows or denies each (operation, resource type, name) by a hash with it, so one request can be
//! partly allowed. Topic `orders` has id `30313233-3435-3637-3839-616263646566` (the seeds' id).
//!
//! Properties:
//! - `plan` and `Merge::apply` never panic, whatever the request and the upstream's answer (and
//!   never allocate unboundedly: `-malloc_limit_mb`);
//! - every frame the gateway makes is well formed: a partial request's length prefix is right and
//!   it decodes again at the same version; a local response's and a merged response's length
//!   prefix is right and the payload passes `codec::split_response` (header + bounded body);
//! - a merged Metadata / FindCoordinator / DescribeCluster response can then be broker-rewritten
//!   without panicking.
#![no_main]

use bytes::Bytes;
use kafka_gateway::policy::mapping::{self, Authorize, Plan, TopicIds};
use kafka_gateway::policy::{Operation, ResourceType};
use kafka_gateway::protocol::api::{self, ResponseHandling};
use kafka_gateway::protocol::frame::LEN_PREFIX;
use kafka_gateway::protocol::{codec, rewrite};
use kafka_gateway_fuzz::{advertise, TOPIC, TOPIC_ID};
use kafka_protocol::messages::ApiKey;
use libfuzzer_sys::fuzz_target;
use uuid::Uuid;

struct FuzzAuthz(u8);

impl FuzzAuthz {
    fn decide(&self, op: Operation, rtype: ResourceType, name: &str) -> bool {
        match self.0 {
            0xff => true,
            0xfe => false,
            seed => {
                // FNV-1a over the request: stable per input, different across seeds.
                let mut h: u32 = 0x811c_9dc5 ^ u32::from(seed);
                for b in [op as u8, rtype as u8].into_iter().chain(name.bytes()) {
                    h = (h ^ u32::from(b)).wrapping_mul(0x0100_0193);
                }
                !h.is_multiple_of(3)
            }
        }
    }
}

impl Authorize for FuzzAuthz {
    fn allowed(&self, op: Operation, rtype: ResourceType, name: &str) -> bool {
        self.decide(op, rtype, name) || op.implied_by().iter().any(|i| self.decide(*i, rtype, name))
    }
    fn allowed_any(&self, op: Operation, rtype: ResourceType) -> bool {
        self.decide(op, rtype, "")
    }
}

struct FuzzIds;

impl TopicIds for FuzzIds {
    fn name_of(&self, id: Uuid) -> Option<String> {
        (id == Uuid::from_bytes(TOPIC_ID)).then(|| TOPIC.to_string())
    }
    fn id_of(&self, name: &str) -> Option<Uuid> {
        (name == TOPIC).then(|| Uuid::from_bytes(TOPIC_ID))
    }
}

/// Checks that `frame` (length prefix included) has a correct prefix and returns its payload.
fn payload_of(frame: &Bytes, what: &str) -> Bytes {
    assert!(
        frame.len() >= LEN_PREFIX,
        "{what}: frame shorter than its prefix"
    );
    let declared = i32::from_be_bytes([frame[0], frame[1], frame[2], frame[3]]);
    assert_eq!(
        usize::try_from(declared).ok(),
        Some(frame.len() - LEN_PREFIX),
        "{what}: length prefix does not match the frame"
    );
    frame.slice(LEN_PREFIX..)
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|b| format!("{b:02x}")).collect()
}

fn response_splits(api: ApiKey, version: i16, frame: &Bytes, what: &str) -> Bytes {
    let payload = payload_of(frame, what);
    if let Err(e) = codec::split_response(api, version, payload.clone()) {
        panic!(
            "{api:?} v{version}: {what} does not split: {e}\nframe: {}",
            hex(frame)
        );
    }
    payload
}

fuzz_target!(|data: &[u8]| {
    let [authz, len_hi, len_lo, rest @ ..] = data else {
        return;
    };
    let len = usize::from(u16::from_be_bytes([*len_hi, *len_lo]));
    if rest.len() < len {
        return;
    }
    let (request, response) = rest.split_at(len);
    let Ok(meta) = codec::peek_request(request) else {
        return;
    };
    let Ok(api) = ApiKey::try_from(meta.api_key) else {
        return;
    };
    if api::gateway_owned().iter().any(|(k, _, _)| *k == api) {
        return; // ApiVersions: answered by the session itself, never planned or forwarded
    }
    let Some((min, max)) = api::gateway_range(api) else {
        return;
    };
    let version = meta.api_version;
    if !(min..=max).contains(&version) {
        return;
    }
    let Ok(decoded) = codec::decode_request(api, version, Bytes::copy_from_slice(request)) else {
        return;
    };
    let authz = FuzzAuthz(*authz);
    let Ok(plan) = mapping::plan(
        api,
        version,
        &decoded.header,
        &decoded.body,
        &authz,
        &FuzzIds,
    ) else {
        return;
    };
    let merge = match plan {
        None => panic!("{api:?} is forwarded but has no authorization mapping"),
        Some(Plan::Forward) | Some(Plan::Close(_)) => None,
        Some(Plan::Respond(frame)) => {
            response_splits(api, version, &frame, "local response");
            None
        }
        Some(Plan::ForwardThenMerge(m)) => Some(m),
        Some(Plan::ForwardPartial { request, merge }) => {
            let payload = payload_of(&request, "partial request");
            if let Err(e) = codec::decode_request(api, version, payload) {
                panic!(
                    "{api:?} v{version}: partial request does not decode: {e}\nframe: {}",
                    hex(&request)
                );
            }
            Some(merge)
        }
    };
    let Some(merge) = merge else {
        return;
    };
    let Ok(frame) = merge.apply(Bytes::copy_from_slice(response), &authz, &FuzzIds) else {
        return;
    };
    let payload = response_splits(api, version, &frame, "merged response");
    if api::spec_for(api).map(|s| s.response) == Some(ResponseHandling::RewriteBrokers) {
        if let Ok(out) = rewrite::rewrite_brokers(api, version, payload, &advertise) {
            response_splits(api, version, &out.frame(), "rewritten merged response");
        }
    }
});
