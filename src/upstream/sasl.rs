//! The gateway's own SASL login to a broker (PLAIN or SCRAM via rsasl), right after connecting.
//!
//! Clients' SASL frames are never forwarded: each upstream connection authenticates as the gateway's
//! service identity, and authorization happens at the gateway per client principal.

use std::io::Cursor;
use std::time::Duration;

use bytes::Bytes;
use kafka_protocol::messages::{
    ApiKey, SaslAuthenticateRequest, SaslAuthenticateResponse, SaslHandshakeRequest,
    SaslHandshakeResponse,
};
use kafka_protocol::protocol::StrBytes;
use rsasl::prelude::{Mechname, SASLClient, SASLConfig, State};

use super::conn::{exchange, UpstreamConn, UpstreamError};
use crate::config::UpstreamSasl;

/// Authenticates `conn` as the configured identity. Returns the broker's session lifetime (0 when the
/// broker does not ask for re-authentication).
pub async fn login(
    conn: &mut UpstreamConn,
    sasl: &UpstreamSasl,
    timeout: Duration,
    max_response: usize,
) -> Result<i64, UpstreamError> {
    let err = |conn: &UpstreamConn, message: String| UpstreamError::Protocol {
        addr: conn.addr.clone(),
        phase: "SASL login",
        message,
    };
    let mech = sasl.mechanism.name();
    let mut hs = SaslHandshakeRequest::default();
    hs.mechanism = StrBytes::from_static_str(mech);
    let resp: SaslHandshakeResponse = exchange(
        conn,
        ApiKey::SaslHandshake,
        1,
        &hs,
        "SaslHandshake",
        timeout,
        max_response,
    )
    .await?;
    if resp.error_code != 0 {
        let offered: Vec<String> = resp.mechanisms.iter().map(|m| m.to_string()).collect();
        return Err(err(
            conn,
            format!(
                "broker refused {mech} (error {}), offers {offered:?}",
                resp.error_code
            ),
        ));
    }

    let config = SASLConfig::with_credentials(
        None,
        sasl.username.clone(),
        sasl.password.expose().to_string(),
    )
    .map_err(|e| err(conn, format!("SASL config: {e}")))?;
    let mechname = Mechname::parse(mech.as_bytes()).map_err(|e| err(conn, e.to_string()))?;
    let mut session = SASLClient::new(config)
        .start_suggested(&[mechname])
        .map_err(|e| err(conn, format!("cannot start {mech}: {e}")))?;
    let mut input: Option<Bytes> = None;
    let mut lifetime = 0;
    // SCRAM takes two client messages and a final server message; PLAIN one. A bound stops a broker
    // from keeping the gateway in an endless exchange.
    for _ in 0..4 {
        let mut out = Cursor::new(Vec::new());
        let state = session
            .step(input.as_deref(), &mut out)
            .map_err(|e| err(conn, format!("{mech} client step failed: {e}")))?;
        let finished = matches!(state, State::Finished(_));
        let token = out.into_inner();
        if finished && token.is_empty() {
            // The last server message (SCRAM's server signature) verified: done.
            return Ok(lifetime);
        }
        let mut req = SaslAuthenticateRequest::default();
        req.auth_bytes = Bytes::from(token);
        let resp: SaslAuthenticateResponse = exchange(
            conn,
            ApiKey::SaslAuthenticate,
            1,
            &req,
            "SaslAuthenticate",
            timeout,
            max_response,
        )
        .await?;
        if resp.error_code != 0 {
            let msg = resp
                .error_message
                .map(|m| m.to_string())
                .unwrap_or_default();
            return Err(err(
                conn,
                format!(
                    "broker rejected the gateway's credentials (error {}): {msg}",
                    resp.error_code
                ),
            ));
        }
        lifetime = resp.session_lifetime_ms;
        if finished {
            return Ok(lifetime);
        }
        input = Some(resp.auth_bytes);
    }
    Err(err(conn, format!("{mech} exchange did not finish")))
}
