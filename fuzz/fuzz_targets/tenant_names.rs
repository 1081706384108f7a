//! Fuzzes the tenant name mapping (`protocol::tenant`) on hostile bytes in both directions: a
//! client's request frame towards the broker and an upstream response towards the client.
//!
//! Input: `direction u8 | api selector u8 | version selector u8 | body`. The api selector picks,
//! modulo the list's length, from every API the gateway forwards (`response_apis`); the version
//! selector a version inside the gateway's range for it.
//!
//! Properties:
//! - neither direction panics nor allocates unboundedly (`-malloc_limit_mb`);
//! - on success the output is bounded by the input plus the prefix per input byte.
#![no_main]

use std::sync::OnceLock;

use bytes::BytesMut;
use kafka_gateway::protocol::tenant::TenantMap;
use kafka_gateway_fuzz::response_apis;
use kafka_protocol::messages::ApiKey;
use libfuzzer_sys::fuzz_target;

fn apis() -> &'static [(ApiKey, i16, i16)] {
    static APIS: OnceLock<Vec<(ApiKey, i16, i16)>> = OnceLock::new();
    APIS.get_or_init(response_apis)
}

fuzz_target!(|data: &[u8]| {
    let [dir, api_sel, version_sel, body @ ..] = data else {
        return;
    };
    let apis = apis();
    let (api, min, max) = apis[usize::from(*api_sel) % apis.len()];
    let span = (max - min + 1) as u16;
    let version = min + (u16::from(*version_sel) % span) as i16;
    let tenant = TenantMap::new("acme.", "acme");
    let mut out = BytesMut::new();
    let ok = if dir % 2 == 0 {
        tenant.to_broker(api as i16, version, body, &mut out)
    } else {
        tenant.to_client(api as i16, version, body, &mut out)
    };
    if ok.is_ok() {
        assert!(out.len() <= body.len() * 6 + 64, "output grew beyond the prefix per byte");
    }
});
