use super::*;

const SECRET: &str = "s3cr3t-Pa55";

fn ok(text: &str) -> ClientProperties {
    match parse("test.properties", text) {
        Ok(p) => p,
        Err(e) => panic!("expected valid properties, got: {e}"),
    }
}

fn problems(text: &str) -> Vec<PropertyProblem> {
    match parse("test.properties", text) {
        Ok(p) => panic!("expected problems, got {p:?}"),
        Err(PropertiesError::Invalid { problems, .. }) => problems,
        Err(e) => panic!("unexpected error kind: {e}"),
    }
}

fn error_text(text: &str) -> String {
    match parse("test.properties", text) {
        Ok(p) => panic!("expected problems, got {p:?}"),
        Err(e) => e.to_string(),
    }
}

fn scram_jaas(user: &str, password: &str) -> String {
    format!(
        "org.apache.kafka.common.security.scram.ScramLoginModule required username=\"{user}\" password=\"{password}\";"
    )
}

#[test]
fn empty_file_is_plaintext_without_login() {
    let p = ok("# nothing here\n\n");
    assert_eq!(p.protocol, SecurityProtocol::Plaintext);
    assert!(p.sasl.is_none() && p.truststore.is_none() && p.keystore.is_none());
}

#[test]
fn sasl_plaintext_scram_512() {
    let text = format!(
        "security.protocol=SASL_PLAINTEXT\nsasl.mechanism=SCRAM-SHA-512\nsasl.jaas.config={}\n",
        scram_jaas("admin", SECRET)
    );
    let p = ok(&text);
    assert_eq!(p.protocol, SecurityProtocol::SaslPlaintext);
    let sasl = p.sasl.expect("sasl");
    assert_eq!(sasl.mechanism, Mechanism::ScramSha512);
    assert_eq!(sasl.username, "admin");
    assert_eq!(sasl.password.expose(), SECRET);
}

#[test]
fn every_protocol_and_mechanism() {
    for (proto, expect) in [
        ("PLAINTEXT", SecurityProtocol::Plaintext),
        ("ssl", SecurityProtocol::Ssl),
        ("Sasl_Plaintext", SecurityProtocol::SaslPlaintext),
        ("SASL_SSL", SecurityProtocol::SaslSsl),
    ] {
        let mut text = format!("security.protocol={proto}\n");
        if expect.uses_sasl() {
            text += &format!(
                "sasl.mechanism=SCRAM-SHA-256\nsasl.jaas.config={}\n",
                scram_jaas("u", "p")
            );
        }
        if expect.uses_tls() {
            text += "ssl.truststore.location=/etc/ca.pem\nssl.truststore.type=PEM\n";
        }
        let p = ok(&text);
        assert_eq!(p.protocol, expect, "{proto}");
        assert_eq!(p.sasl.is_some(), expect.uses_sasl());
        assert_eq!(p.truststore.is_some(), expect.uses_tls());
    }
    let plain = ok("security.protocol=SASL_PLAINTEXT\nsasl.mechanism=PLAIN\n\
         sasl.jaas.config=org.apache.kafka.common.security.plain.PlainLoginModule required username=\"bob\" password=\"pw\";\n");
    assert_eq!(plain.sasl.expect("sasl").mechanism, Mechanism::Plain);
}

#[test]
fn sasl_ssl_with_pem_truststore_and_keystore() {
    let text = format!(
        "security.protocol=SASL_SSL\nsasl.mechanism=SCRAM-SHA-256\nsasl.jaas.config={}\n\
         ssl.truststore.location=certs/ca.pem\nssl.truststore.type=PEM\n\
         ssl.keystore.location=certs/client.pem\nssl.keystore.type=pem\n\
         ssl.endpoint.identification.algorithm=https\n",
        scram_jaas("gw", SECRET)
    );
    let p = ok(&text);
    assert_eq!(p.truststore.as_deref(), Some(Path::new("certs/ca.pem")));
    assert_eq!(p.keystore.as_deref(), Some(Path::new("certs/client.pem")));
}

#[test]
fn java_properties_syntax() {
    // Separators `=`, `:` and whitespace; `!` comments; continuation lines; escapes.
    let text = "! a comment\n\
        security.protocol : SASL_PLAINTEXT\n\
        sasl.mechanism SCRAM-SHA-512\n\
        sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required \\\n\
        \x20   username=\"al\\u0069ce\" \\\n\
        \x20   password=\"a\\\\\\\"b\";\n";
    let p = ok(text);
    let sasl = p.sasl.expect("sasl");
    assert_eq!(sasl.username, "alice");
    // The properties layer turns `\\\"` into `\"`, which JAAS reads as a quote inside the value.
    assert_eq!(sasl.password.expose(), "a\"b");
}

#[test]
fn crlf_and_bom() {
    let text = format!(
        "\u{feff}security.protocol=SASL_PLAINTEXT\r\nsasl.mechanism=PLAIN\r\nsasl.jaas.config=org.apache.kafka.common.security.plain.PlainLoginModule required username=\"u\" password=\"{SECRET}\";\r\n"
    );
    assert_eq!(ok(&text).sasl.expect("sasl").password.expose(), SECRET);
}

#[test]
fn unknown_keys_are_rejected_by_name() {
    let got =
        problems("security.protocol=PLAINTEXT\nssl.key.password=hunter2\nbootstrap.servers=x:1\n");
    let keys: Vec<&str> = got.iter().map(|p| p.key.as_str()).collect();
    assert_eq!(keys, ["ssl.key.password", "bootstrap.servers"]);
    assert_eq!(got[0].line, Some(2));
    assert!(got[0].message.contains("unknown or unsupported key"));
    let text = error_text("ssl.key.password=hunter2\n");
    assert!(
        !text.contains("hunter2"),
        "value of an unknown key echoed: {text}"
    );
}

#[test]
fn all_problems_at_once() {
    let text = "security.protocol=SASL_SSL\n\
        sasl.mechanism=GSSAPI\n\
        ssl.truststore.location=/etc/truststore.jks\n\
        ssl.truststore.type=JKS\n\
        ssl.keystore.type=PKCS12\n\
        ssl.endpoint.identification.algorithm=\n\
        client.id=x\n";
    let got = problems(text);
    let rendered: Vec<String> = got.iter().map(|p| p.to_string()).collect();
    let has = |needle: &str| {
        assert!(
            rendered.iter().any(|r| r.contains(needle)),
            "no problem mentions `{needle}`: {rendered:#?}"
        )
    };
    has("line 7: client.id: unknown or unsupported key");
    has("line 2: sasl.mechanism: unsupported value `GSSAPI`");
    has("sasl.jaas.config: required with SASL_SSL");
    has("line 4: ssl.truststore.type: unsupported value `JKS`");
    has("line 5: ssl.keystore.type: unsupported value `PKCS12`");
    has("line 5: ssl.keystore.location: required with ssl.keystore.type");
    has("line 6: ssl.endpoint.identification.algorithm: unsupported value ``");
    assert_eq!(got.len(), 7, "{rendered:#?}");
}

#[test]
fn missing_pieces_for_the_protocol() {
    let got = problems("security.protocol=SASL_SSL\n");
    let keys: Vec<&str> = got.iter().map(|p| p.key.as_str()).collect();
    assert_eq!(
        keys,
        [
            "sasl.mechanism",
            "sasl.jaas.config",
            "ssl.truststore.location"
        ]
    );
    assert!(got[0]
        .message
        .contains("GSSAPI, is configured in [upstream.sasl]"));
    assert!(got[2].message.contains("no system trust store"));
    let got = problems("security.protocol=SSL\nssl.truststore.location=ca.pem\n");
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].key, "ssl.truststore.type");
    assert!(got[0].message.contains("JKS"));
}

#[test]
fn settings_the_protocol_would_ignore_are_errors() {
    let text = format!(
        "security.protocol=PLAINTEXT\nsasl.mechanism=SCRAM-SHA-256\nsasl.jaas.config={}\nssl.truststore.location=ca.pem\nssl.truststore.type=PEM\n",
        scram_jaas("u", SECRET)
    );
    let got = problems(&text);
    let keys: Vec<&str> = got.iter().map(|p| p.key.as_str()).collect();
    assert_eq!(
        keys,
        [
            "sasl.mechanism",
            "sasl.jaas.config",
            "ssl.truststore.location",
            "ssl.truststore.type"
        ]
    );
    assert!(got.iter().all(|p| p.message.contains("would be ignored")));
}

#[test]
fn bad_values() {
    let got = problems("security.protocol=TLS\n");
    assert_eq!(got.len(), 1);
    assert!(got[0].message.contains("unsupported value `TLS`"));
    // Mechanism names are case-sensitive, as in Kafka; OAUTHBEARER is not supported here.
    for m in ["scram-sha-512", "OAUTHBEARER", "GSSAPI"] {
        let text = format!(
            "security.protocol=SASL_PLAINTEXT\nsasl.mechanism={m}\nsasl.jaas.config={}\n",
            scram_jaas("u", "p")
        );
        let got = problems(&text);
        assert_eq!(got.len(), 1, "{m}: {got:?}");
        assert_eq!(got[0].key, "sasl.mechanism");
    }
}

#[test]
fn duplicate_keys_are_errors() {
    let got = problems("security.protocol=PLAINTEXT\nsecurity.protocol=SSL\n");
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].line, Some(2));
    assert!(got[0].message.contains("first on line 1"));
}

#[test]
fn jaas_errors() {
    let cases: &[(&str, &str)] = &[
        ("", "expected a login module class"),
        (
            "com.sun.security.auth.module.Krb5LoginModule required;",
            "unsupported login module",
        ),
        (
            "org.apache.kafka.common.security.scram.ScramLoginModule username=\"u\";",
            "expected a control flag",
        ),
        (
            "org.apache.kafka.common.security.scram.ScramLoginModule required username=\"u\" password=\"PW\"",
            "missing `;`",
        ),
        (
            "org.apache.kafka.common.security.scram.ScramLoginModule required username=\"u\" password=\"PW;",
            "unterminated quoted value of option `password`",
        ),
        (
            "org.apache.kafka.common.security.scram.ScramLoginModule required username \"u\";",
            "expected `=` after option `username`",
        ),
        (
            "org.apache.kafka.common.security.scram.ScramLoginModule required username=\"u\" password=\"PW\" tokenauth=\"true\";",
            "unsupported option `tokenauth`",
        ),
        (
            "org.apache.kafka.common.security.scram.ScramLoginModule required username=\"u\";",
            "needs a non-empty password",
        ),
        (
            "org.apache.kafka.common.security.scram.ScramLoginModule required password=\"PW\" password=\"PW\";",
            "option `password` given twice",
        ),
        (
            "org.apache.kafka.common.security.scram.ScramLoginModule required username=\"u\" password=\"PW\"; org.apache.kafka.common.security.plain.PlainLoginModule required;",
            "more than one login module",
        ),
    ];
    for (jaas, expect) in cases {
        let text = format!(
            "security.protocol=SASL_PLAINTEXT\nsasl.mechanism=SCRAM-SHA-256\nsasl.jaas.config={jaas}\n"
        );
        let got = problems(&text);
        assert_eq!(got.len(), 1, "{jaas}: {got:?}");
        assert_eq!(got[0].key, "sasl.jaas.config");
        assert!(
            got[0].message.contains(expect),
            "{jaas}: expected `{expect}` in `{}`",
            got[0].message
        );
        assert!(
            !got[0].message.contains("PW"),
            "password echoed: {}",
            got[0].message
        );
    }
}

#[test]
fn login_module_must_match_the_mechanism() {
    let text = format!(
        "security.protocol=SASL_PLAINTEXT\nsasl.mechanism=PLAIN\nsasl.jaas.config={}\n",
        scram_jaas("u", SECRET)
    );
    let got = problems(&text);
    assert_eq!(got.len(), 1);
    assert!(got[0].message.contains("needs the login module"), "{got:?}");
}

#[test]
fn the_password_is_never_printed() {
    let good = format!(
        "security.protocol=SASL_PLAINTEXT\nsasl.mechanism=SCRAM-SHA-512\nsasl.jaas.config={}\n",
        scram_jaas("admin", SECRET)
    );
    let debug = format!("{:?}", ok(&good));
    assert!(!debug.contains(SECRET), "Debug shows the password: {debug}");
    assert!(debug.contains("<redacted>"));
    // Invalid files that hold the password, in every way that fails.
    for bad in [
        good.replace("SCRAM-SHA-512", "GSSAPI"),
        good.replace("SASL_PLAINTEXT", "PLAINTEXT"),
        good.replace("required", "maybe"),
        good.replace(";", ""),
        good.replace("ScramLoginModule", "PlainLoginModule"),
        format!("{good}sasl.jaas.config={}\n", scram_jaas("x", SECRET)),
        format!("{good}password={SECRET}\n"),
    ] {
        let text = error_text(&bad);
        assert!(!text.contains(SECRET), "error shows the password: {text}");
        let dbg = format!("{:?}", parse("t", &bad));
        assert!(
            !dbg.contains(SECRET),
            "Debug of the error shows the password: {dbg}"
        );
    }
}

#[test]
fn load_checks_the_files_exist() {
    let dir = crate::certs::tests::TempDir::new("client-props");
    let path = dir.path().join("admin.properties");
    std::fs::write(
        &path,
        "security.protocol=SSL\nssl.truststore.location=/nonexistent/ca.pem\nssl.truststore.type=PEM\n",
    )
    .expect("write");
    let err = load(&path).expect_err("missing truststore").to_string();
    assert!(
        err.contains("/nonexistent/ca.pem is not a readable file"),
        "{err}"
    );
    assert!(err.contains("admin.properties"), "{err}");
    let missing = load(&dir.path().join("nope.properties")).expect_err("no file");
    assert!(matches!(missing, PropertiesError::Read { .. }));
}
