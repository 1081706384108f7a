//! Raw SASL conversations with the gateway, for checking exact error codes and messages.

use std::io::Cursor;

use bytes::Bytes;
use kafka_protocol::messages::*;
use kafka_protocol::protocol::StrBytes;
use rsasl::prelude::{Mechname, SASLClient, SASLConfig, State};

use super::RawClient;

pub fn handshake(c: &mut RawClient, mechanism: &str) -> SaslHandshakeResponse {
    let mut req = SaslHandshakeRequest::default();
    req.mechanism = StrBytes::from_string(mechanism.to_string());
    c.request(ApiKey::SaslHandshake, 1, &req)
}

pub fn authenticate(c: &mut RawClient, bytes: &[u8]) -> SaslAuthenticateResponse {
    let mut req = SaslAuthenticateRequest::default();
    req.auth_bytes = Bytes::copy_from_slice(bytes);
    c.request(ApiKey::SaslAuthenticate, 2, &req)
}

/// The outcome of a login attempt: every SaslAuthenticate response, the last one deciding.
pub struct Login {
    pub responses: Vec<SaslAuthenticateResponse>,
}

impl Login {
    pub fn last(&self) -> &SaslAuthenticateResponse {
        self.responses.last().expect("at least one response")
    }
    pub fn error_code(&self) -> i16 {
        self.last().error_code
    }
    pub fn message(&self) -> String {
        self.last()
            .error_message
            .as_ref()
            .map(|m| m.to_string())
            .unwrap_or_default()
    }
}

/// A full SCRAM or PLAIN login with rsasl's client, stopping at the first error response.
pub fn login(c: &mut RawClient, mechanism: &str, user: &str, password: &str) -> Login {
    let hs = handshake(c, mechanism);
    assert_eq!(hs.error_code, 0, "handshake for {mechanism}");
    let config =
        SASLConfig::with_credentials(None, user.to_string(), password.to_string()).expect("config");
    let mut session = SASLClient::new(config)
        .start_suggested(&[Mechname::parse(mechanism.as_bytes()).expect("mechname")])
        .expect("start");
    let mut responses = Vec::new();
    let mut input: Option<Bytes> = None;
    loop {
        let mut out = Cursor::new(Vec::new());
        let state = match session.step(input.as_deref(), &mut out) {
            Ok(s) => s,
            // rsasl refuses a server-final it cannot verify: report what the server sent.
            Err(_) => return Login { responses },
        };
        let token = out.into_inner();
        if matches!(state, State::Finished(_)) && token.is_empty() {
            return Login { responses };
        }
        let resp = authenticate(c, &token);
        let failed = resp.error_code != 0;
        input = Some(resp.auth_bytes.clone());
        responses.push(resp);
        if failed || matches!(state, State::Finished(_)) {
            return Login { responses };
        }
    }
}

/// The RFC 7628 initial client response carrying a bearer token.
pub fn oauth_initial(token: &str) -> Vec<u8> {
    format!("n,,\x01auth=Bearer {token}\x01\x01").into_bytes()
}

/// An OAUTHBEARER login as Kafka clients do it: on a JSON error challenge, answer with 0x01.
pub fn oauth_login(c: &mut RawClient, token: &str) -> Login {
    let hs = handshake(c, "OAUTHBEARER");
    assert_eq!(hs.error_code, 0, "handshake for OAUTHBEARER");
    let first = authenticate(c, &oauth_initial(token));
    let challenge = first.error_code == 0 && !first.auth_bytes.is_empty();
    let mut responses = vec![first];
    if challenge {
        responses.push(authenticate(c, b"\x01"));
    }
    Login { responses }
}
