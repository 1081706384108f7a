//! Fuzzes the gateway's GSSAPI acceptor (`auth::gssapi::GssapiExchange`, MIT's libgssapi behind
//! it) with fuzzer-chosen client tokens, and the parser of the client's security-layer choice.
//!
//! Input: `mode u8 | rest`.
//! - mode even: `rest` split at `0xff 0xfe` into up to four tokens, each fed to one exchange in
//!   turn (an AP-REQ, then whatever follows), as SaslAuthenticate messages would carry them;
//! - mode odd: `rest` is an unwrapped layer choice for `gssapi::parse_layer_choice`.
//!
//! The acceptor holds a real credential: a keytab written at start with `ktutil` (a password
//! key for `kafka/localhost@FUZZ.TEST`, no KDC needed), the replay cache off (`KRB5RCACHETYPE=none`:
//! no disk writes per input). A fuzzer cannot forge a ticket without that key, so:
//!
//! Properties:
//! - `step` never panics, on any token sequence, including after the exchange ended;
//! - no sequence of fuzzer tokens authenticates (`Success` never happens);
//! - a failure names a category from the documented set;
//! - `parse_layer_choice` accepts exactly: first byte 0x01 and at least 4 bytes; the
//!   authorization id is the rest, read as Java reads it (invalid UTF-8 replaced).
#![no_main]

use std::sync::{Arc, OnceLock};

use kafka_gateway::auth::gssapi::{parse_layer_choice, KerberosAcceptor, NO_SECURITY_LAYER};
use kafka_gateway::auth::{FailureReason, Step};
use kafka_gateway::config::KerberosConfig;
use libfuzzer_sys::fuzz_target;

const CATEGORIES: [&str; 8] = [
    "bad_token",
    "gss_failure",
    "replay",
    "ticket_expired",
    "clock_skew",
    "wrong_service",
    "malformed",
    "anonymous",
];

fn acceptor() -> &'static Arc<KerberosAcceptor> {
    static A: OnceLock<Arc<KerberosAcceptor>> = OnceLock::new();
    A.get_or_init(|| {
        let dir = std::env::temp_dir().join(format!("kgw-fuzz-gssapi-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("fuzz dir");
        let keytab = dir.join("service.keytab");
        let conf = dir.join("krb5.conf");
        std::fs::write(
            &conf,
            "[libdefaults]\n default_realm = FUZZ.TEST\n dns_lookup_kdc = false\n rdns = false\n",
        )
        .expect("krb5.conf");
        let _ = std::fs::remove_file(&keytab);
        let script = format!(
            "addent -password -p kafka/localhost@FUZZ.TEST -k 1 -e aes256-cts-hmac-sha1-96\n\
             fuzz-only-secret\nwkt {}\nquit\n",
            keytab.display()
        );
        let mut child = std::process::Command::new("ktutil")
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::null())
            .spawn()
            .expect("ktutil (Debian: krb5-user)");
        use std::io::Write;
        child
            .stdin
            .take()
            .expect("stdin")
            .write_all(script.as_bytes())
            .expect("ktutil input");
        assert!(child.wait().expect("ktutil").success(), "ktutil failed");
        // Before the first GSS-API call, on this (only) thread.
        std::env::set_var("KRB5_CONFIG", &conf);
        std::env::set_var("KRB5_KTNAME", format!("FILE:{}", keytab.display()));
        std::env::set_var("KRB5RCACHETYPE", "none");
        let cfg = KerberosConfig {
            service_principal: "kafka/localhost@FUZZ.TEST".into(),
            keytab,
            krb5_conf: Some(conf),
            principal_to_local_rules: vec!["DEFAULT".into()],
            allowed_realms: vec!["FUZZ.TEST".into()],
        };
        Arc::new(KerberosAcceptor::new(&cfg).expect("acceptor from the fuzz keytab"))
    })
}

fn split_tokens(rest: &[u8]) -> Vec<&[u8]> {
    let mut out = Vec::new();
    let mut start = 0;
    let mut i = 0;
    while i + 1 < rest.len() && out.len() < 3 {
        if rest[i] == 0xff && rest[i + 1] == 0xfe {
            out.push(&rest[start..i]);
            start = i + 2;
            i += 2;
        } else {
            i += 1;
        }
    }
    out.push(&rest[start..]);
    out
}

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    if mode % 2 == 1 {
        let parsed = parse_layer_choice(rest);
        let expect_ok = rest.len() >= 4 && rest[0] == NO_SECURITY_LAYER;
        assert_eq!(parsed.is_ok(), expect_ok, "{rest:?}: {parsed:?}");
        if let Ok(choice) = parsed {
            let authzid = choice.authzid.unwrap_or_default();
            assert_eq!(authzid, String::from_utf8_lossy(&rest[4..]));
            assert_eq!(
                choice.max_buffer,
                u32::from_be_bytes([0, rest[1], rest[2], rest[3]])
            );
        }
        return;
    }
    let mut exchange = acceptor().exchange();
    for token in split_tokens(rest) {
        match exchange.step_blocking(token) {
            Step::Success { principal, .. } => {
                panic!("fuzzer tokens authenticated {principal}")
            }
            Step::Continue(_) => {}
            Step::Failure { reason, .. } => {
                match &reason {
                    FailureReason::Kerberos { category, .. } => {
                        assert!(CATEGORIES.contains(category), "category {category}")
                    }
                    FailureReason::Malformed(_) => {}
                    other => panic!("unexpected failure kind {other:?}"),
                }
                // After a failure the exchange is over: another step fails too.
                assert!(matches!(
                    exchange.step_blocking(b"more"),
                    Step::Failure { .. }
                ));
                return;
            }
        }
    }
});
