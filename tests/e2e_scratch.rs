mod common;
use common::apache::*;
use common::*;
use kafka_protocol::messages::*;
#[test]
fn scratch_versions() {
    let c = KafkaCluster::start();
    let dir = TempDir::new("x");
    let pl = ListenerSpec {
        name: "plain",
        tls: false,
        client_auth: "none",
        sasl: "",
    };
    let (t, p, a) = gateway_config(&c.upstream(), &[pl], None, "");
    let g = Gateway::start(dir.path(), &t, p, a);
    let k: ApiVersionsResponse = RawClient::connect(c.socket(KafkaListener::Plaintext)).request(
        ApiKey::ApiVersions,
        3,
        &api_versions_request(),
    );
    let gw: ApiVersionsResponse = RawClient::connect(g.addr("plain")).request(
        ApiKey::ApiVersions,
        3,
        &api_versions_request(),
    );
    for av in &k.api_keys {
        let name = ApiKey::try_from(av.api_key)
            .map(|k| format!("{k:?}"))
            .unwrap_or(format!("#{}", av.api_key));
        let gv = gw
            .api_keys
            .iter()
            .find(|x| x.api_key == av.api_key)
            .map(|x| format!("{}-{}", x.min_version, x.max_version))
            .unwrap_or("-".into());
        eprintln!(
            "V {:>3} {:<32} kafka {}-{} gateway {}",
            av.api_key, name, av.min_version, av.max_version, gv
        );
    }
}
