//! Tests of the credential store: derivation, loading with every-problem reporting, atomic
//! updates, decoys, and the sample file in `policies/users.toml`.

use super::*;

use std::sync::atomic::{AtomicUsize, Ordering};

/// A fresh directory under the system temp dir, removed on drop.
struct TempDir(PathBuf);

impl TempDir {
    fn new() -> TempDir {
        static COUNTER: AtomicUsize = AtomicUsize::new(0);
        let dir = std::env::temp_dir().join(format!(
            "kafka-gateway-credentials-{}-{}",
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).expect("temp dir is writable");
        TempDir(dir)
    }

    fn path(&self, name: &str) -> PathBuf {
        self.0.join(name)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

fn problems(result: Result<CredentialStore, CredentialError>) -> Vec<CredentialProblem> {
    match result {
        Err(CredentialError::Invalid { problems, .. }) => problems,
        Err(other) => panic!("expected Invalid, got {other}"),
        Ok(store) => panic!("expected Invalid, got {store:?}"),
    }
}

fn parse(text: &str) -> Result<CredentialStore, CredentialError> {
    CredentialStore::from_bytes(Path::new("users.toml"), text.as_bytes())
}

const K32: &str = "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA="; // 32 zero bytes
const SALT16: &str = "W22ZaJ0SNY7soEsUEjb6gQ==";

#[test]
fn derivation_is_deterministic_and_verifies() {
    // The RFC 7677 exchange in scram_tests checks the keys' values; here: shape and use.
    let salt = B64.decode(SALT16).expect("valid base64");
    let a = scram_credential("pencil", Mechanism::ScramSha256, 4096, &salt).expect("SCRAM");
    let b = scram_credential("pencil", Mechanism::ScramSha256, 4096, &salt).expect("SCRAM");
    assert_eq!(a, b);
    assert_eq!(a.stored_key().len(), 32);
    assert_eq!(a.server_key().len(), 32);
    let c = scram_credential("pencil", Mechanism::ScramSha512, 4096, &salt).expect("SCRAM");
    assert_eq!(c.stored_key().len(), 64);
    assert_eq!(c.server_key().len(), 64);
    assert!(a.verify_password("pencil"));
    assert!(!a.verify_password("pencil "));
    assert!(c.verify_password("pencil"));
    assert!(!c.verify_password(""));
}

#[test]
fn derivation_refuses_non_scram_and_zero_iterations() {
    assert!(matches!(
        scram_credential("x", Mechanism::Plain, 4096, b"salt"),
        Err(CredentialError::NotScram(Mechanism::Plain))
    ));
    assert!(matches!(
        scram_credential("x", Mechanism::ScramSha256, 0, b"salt"),
        Err(CredentialError::InvalidIterations(0))
    ));
}

#[test]
fn debug_never_shows_keys() {
    let c = scram_credential("pw", Mechanism::ScramSha256, 4096, &[7; 32]).expect("SCRAM");
    let shown = format!("{c:?}");
    assert!(shown.contains("redacted"));
    assert!(!shown.contains(&B64.encode(c.stored_key())));
    assert!(!shown.contains(&format!("{:?}", c.stored_key())));
    let decoy = format!("{:?}", Decoy::new(8192, 32));
    assert!(decoy.contains("8192"));
}

#[test]
fn loads_a_valid_file() {
    let text = format!(
        "# comment\n[[user]]\nname = \"alice\"\nmechanism = \"SCRAM-SHA-256\"\niterations = 8192\n\
         salt = \"{SALT16}\"\nstored_key = \"{K32}\"\nserver_key = \"{K32}\"\n"
    );
    let store = parse(&text).expect("valid");
    assert_eq!(store.len(), 1);
    let c = store.get("alice", Mechanism::ScramSha256).expect("alice");
    assert_eq!(c.iterations(), 8192);
    assert_eq!(c.salt().len(), 16);
    assert!(store.get("alice", Mechanism::ScramSha512).is_none());
    assert!(store.get("bob", Mechanism::ScramSha256).is_none());
    assert!(store.get("alice", Mechanism::Plain).is_none());
    assert_eq!(
        store.users(),
        vec![UserSummary {
            name: "alice".into(),
            mechanisms: vec![(Mechanism::ScramSha256, 8192)]
        }]
    );
    assert_eq!(
        store.fingerprint(),
        hex(digest::digest(&digest::SHA256, text.as_bytes()).as_ref())
    );
    assert!(store.has_mechanism(Mechanism::ScramSha256));
    assert!(!store.has_mechanism(Mechanism::ScramSha512));
}

#[test]
fn empty_store() {
    let store = CredentialStore::empty();
    assert!(store.is_empty());
    assert!(store.users().is_empty());
    assert_eq!(
        store.fingerprint(),
        "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
    );
    assert_eq!(store.decoy_shape(), (DEFAULT_ITERATIONS, SALT_LEN));
    // A file with no entries is valid too.
    assert!(parse("# nobody yet\n").expect("valid").is_empty());
}

#[test]
fn reports_every_problem_with_line_entry_and_user() {
    let text = format!(
        "\
extra = 1
[[user]]
name = \"alice\"
mechanism = \"SCRAM-SHA-256\"
iterations = 1000
salt = \"{SALT16}\"
stored_key = \"{K32}\"
server_key = \"not base64!\"
colour = \"blue\"

[[user]]
name = \"\"
mechanism = \"SCRAM-SHA-1\"
iterations = \"many\"
salt = \"{SALT16}\"
stored_key = \"{K32}\"

[[user]]
name = \"bob\"
mechanism = \"SCRAM-SHA-512\"
iterations = 4096
salt = \"{SALT16}\"
stored_key = \"{K32}\"
server_key = \"{K32}\"

[[user]]
name = \"carol\"
mechanism = \"SCRAM-SHA-256\"
iterations = 4096
salt = \"AAAA\"
stored_key = \"{K32}\"
server_key = \"{K32}\"

[[user]]
name = \"carol\"
mechanism = \"SCRAM-SHA-256\"
iterations = 4096
salt = \"{SALT16}\"
stored_key = \"{K32}\"
server_key = \"{K32}\"

[[user]]
name = \"carol\"
mechanism = \"SCRAM-SHA-256\"
iterations = 4096
salt = \"{SALT16}\"
stored_key = \"{K32}\"
server_key = \"{K32}\"

[[user]]
name = 42
"
    );
    let found = problems(parse(&text));
    let summary: Vec<String> = found.iter().map(ToString::to_string).collect();
    let expect = |line: usize, entry: Option<usize>, user: Option<&str>, needle: &str| {
        assert!(
            found.iter().any(|p| p.line == Some(line)
                && p.entry == entry
                && p.user.as_deref() == user
                && p.message.contains(needle)),
            "no problem at line {line} containing {needle:?} in {summary:#?}"
        );
    };
    expect(1, None, None, "unknown top-level key \"extra\"");
    expect(
        5,
        Some(0),
        Some("alice"),
        "iterations 1000 is outside 4096..=16384",
    );
    expect(
        8,
        Some(0),
        Some("alice"),
        "`server_key` is not valid base64",
    );
    expect(9, Some(0), Some("alice"), "unknown key \"colour\"");
    expect(12, Some(1), None, "invalid `name`: the name is empty");
    expect(
        13,
        Some(1),
        None,
        "\"SCRAM-SHA-1\" is not SCRAM-SHA-256 or SCRAM-SHA-512",
    );
    expect(
        14,
        Some(1),
        None,
        "`iterations` must be an integer, found string",
    );
    expect(11, Some(1), None, "missing key `server_key`");
    expect(
        23,
        Some(2),
        Some("bob"),
        "`stored_key` is 32 bytes, SCRAM-SHA-512 needs 64",
    );
    expect(24, Some(2), Some("bob"), "`server_key` is 32 bytes");
    expect(30, Some(3), Some("carol"), "salt is 3 bytes");
    expect(
        42,
        Some(5),
        Some("carol"),
        "duplicate SCRAM-SHA-256 entry for this user (first at user[4], line 34)",
    );
    expect(51, Some(6), None, "`name` must be a string, found integer");
    expect(50, Some(6), None, "missing key `mechanism`");
    // Nothing else: exactly the problems above, plus the other missing keys of the last entry.
    assert_eq!(found.len(), 14 + 4, "{summary:#?}");

    // The error message names the file and each problem.
    let err = parse(&text).expect_err("invalid").to_string();
    assert!(
        err.starts_with("credential file users.toml has 18 problem(s):"),
        "{err}"
    );
    assert!(
        err.contains("users.toml: line 5: user[0] (name \"alice\"): iterations 1000"),
        "{err}"
    );
}

#[test]
fn syntax_errors_have_a_line() {
    let found = problems(parse("[[user]]\nname = \"alice\"\nname = \"bob\"\n"));
    assert_eq!(found.len(), 1);
    assert_eq!(found[0].line, Some(3), "{found:?}");

    let found = problems(parse("user = 3\n"));
    assert_eq!(found.len(), 1);
    assert_eq!(found[0].line, Some(1));

    let found = problems(CredentialStore::from_bytes(
        Path::new("x"),
        b"# ok\n\xff\xfe\n",
    ));
    assert_eq!(found[0].line, Some(2));
    assert!(found[0].message.contains("UTF-8"));
}

#[test]
fn iteration_bounds_are_inclusive() {
    for (iterations, ok) in [
        (4095, false),
        (4096, true),
        (16384, true),
        (16385, false),
        (-1, false),
    ] {
        let text = format!(
            "[[user]]\nname = \"a\"\nmechanism = \"SCRAM-SHA-256\"\niterations = {iterations}\n\
             salt = \"{SALT16}\"\nstored_key = \"{K32}\"\nserver_key = \"{K32}\"\n"
        );
        assert_eq!(parse(&text).is_ok(), ok, "iterations {iterations}");
    }
}

#[test]
fn control_characters_in_names_are_refused() {
    let text = format!(
        "[[user]]\nname = \"al\\nice\"\nmechanism = \"SCRAM-SHA-256\"\niterations = 4096\n\
         salt = \"{SALT16}\"\nstored_key = \"{K32}\"\nserver_key = \"{K32}\"\n"
    );
    let found = problems(parse(&text));
    assert!(found[0].message.contains("control characters"), "{found:?}");
    assert!(validate_user_name("al\u{7f}ice").is_err());
    assert!(validate_user_name("").is_err());
    assert!(validate_user_name("al,ice=ok ünïcode").is_ok());
}

#[test]
fn add_user_creates_replaces_and_keeps_others() {
    let dir = TempDir::new();
    let path = dir.path("users.toml");
    add_user(
        &path,
        "alice",
        "alice-secret",
        &[Mechanism::ScramSha256],
        4096,
    )
    .expect("add");
    add_user(
        &path,
        "bob",
        "bob-secret",
        &[Mechanism::ScramSha256, Mechanism::ScramSha512],
        8192,
    )
    .expect("add");
    let store = CredentialStore::load(&path).expect("load");
    assert_eq!(store.len(), 3);
    let alice = store
        .get("alice", Mechanism::ScramSha256)
        .expect("alice")
        .clone();
    assert_eq!(alice.salt().len(), SALT_LEN);
    assert!(alice.verify_password("alice-secret"));
    assert!(store
        .get("bob", Mechanism::ScramSha512)
        .expect("bob")
        .verify_password("bob-secret"));

    // Replace alice's password: same entry count, new salt, old password no longer works.
    add_user(
        &path,
        "alice",
        "new-secret",
        &[Mechanism::ScramSha256],
        4096,
    )
    .expect("add");
    let store = CredentialStore::load(&path).expect("load");
    assert_eq!(store.len(), 3);
    let new_alice = store.get("alice", Mechanism::ScramSha256).expect("alice");
    assert_ne!(new_alice.salt(), alice.salt());
    assert!(new_alice.verify_password("new-secret"));
    assert!(!new_alice.verify_password("alice-secret"));
    assert_eq!(
        store.users(),
        vec![
            UserSummary {
                name: "alice".into(),
                mechanisms: vec![(Mechanism::ScramSha256, 4096)]
            },
            UserSummary {
                name: "bob".into(),
                mechanisms: vec![
                    (Mechanism::ScramSha256, 8192),
                    (Mechanism::ScramSha512, 8192)
                ]
            },
        ]
    );

    let text = fs::read_to_string(&path).expect("read");
    assert!(text.starts_with(DEFAULT_HEADER), "{text}");
    assert!(
        !text.contains("alice-secret") && !text.contains("new-secret"),
        "{text}"
    );
    // No temporary files left behind.
    let names: Vec<_> = fs::read_dir(&dir.0)
        .expect("list")
        .map(|e| e.expect("entry").file_name())
        .collect();
    assert_eq!(names, vec![std::ffi::OsString::from("users.toml")]);
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = fs::metadata(&path).expect("stat").permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
    }
}

#[test]
fn add_user_keeps_the_header_comment() {
    let dir = TempDir::new();
    let path = dir.path("users.toml");
    fs::write(&path, "# my header\n#  second line\n\n").expect("write");
    add_user(&path, "al,ice=", "pw", &[Mechanism::ScramSha512], 4096).expect("add");
    add_user(&path, "x\"y\\z", "pw", &[Mechanism::ScramSha512], 4096).expect("add");
    let text = fs::read_to_string(&path).expect("read");
    assert!(
        text.starts_with("# my header\n#  second line\n\n[[user]]"),
        "{text}"
    );
    let store = CredentialStore::load(&path).expect("load");
    assert!(store.get("al,ice=", Mechanism::ScramSha512).is_some());
    assert!(store.get("x\"y\\z", Mechanism::ScramSha512).is_some());
}

#[test]
fn add_user_refuses_bad_input() {
    let dir = TempDir::new();
    let path = dir.path("users.toml");
    let sha = &[Mechanism::ScramSha256];
    assert!(matches!(
        add_user(&path, "", "pw", sha, 4096),
        Err(CredentialError::InvalidUserName { .. })
    ));
    assert!(matches!(
        add_user(&path, "a\tb", "pw", sha, 4096),
        Err(CredentialError::InvalidUserName { .. })
    ));
    assert!(matches!(
        add_user(&path, "a", "pw", sha, 4095),
        Err(CredentialError::InvalidIterations(4095))
    ));
    assert!(matches!(
        add_user(&path, "a", "pw", &[], 4096),
        Err(CredentialError::NoMechanism)
    ));
    assert!(matches!(
        add_user(&path, "a", "pw", &[Mechanism::OAuthBearer], 4096),
        Err(CredentialError::NotScram(Mechanism::OAuthBearer))
    ));
    assert!(!path.exists());

    // An existing file that does not load is not touched.
    fs::write(&path, "[[user]]\nname = 1\n").expect("write");
    assert!(matches!(
        add_user(&path, "a", "pw", sha, 4096),
        Err(CredentialError::Invalid { .. })
    ));
    assert!(matches!(
        remove_user(&path, "a"),
        Err(CredentialError::Invalid { .. })
    ));
    assert_eq!(
        fs::read_to_string(&path).expect("read"),
        "[[user]]\nname = 1\n"
    );
}

#[test]
fn remove_user_removes_all_mechanisms() {
    let dir = TempDir::new();
    let path = dir.path("users.toml");
    assert!(!remove_user(&path, "alice").expect("missing file is fine"));
    let both = [Mechanism::ScramSha256, Mechanism::ScramSha512];
    add_user(&path, "alice", "a", &both, 4096).expect("add");
    add_user(&path, "bob", "b", &both, 4096).expect("add");
    let before = fs::read(&path).expect("read");
    assert!(!remove_user(&path, "carol").expect("remove"));
    assert_eq!(
        fs::read(&path).expect("read"),
        before,
        "untouched when nothing removed"
    );
    assert!(remove_user(&path, "alice").expect("remove"));
    let store = CredentialStore::load(&path).expect("load");
    assert_eq!(store.len(), 2);
    assert!(store.get("alice", Mechanism::ScramSha256).is_none());
    assert!(store.get("bob", Mechanism::ScramSha512).is_some());
}

#[test]
fn load_reports_missing_file() {
    let dir = TempDir::new();
    let err = CredentialStore::load(dir.path("nope.toml")).expect_err("missing");
    assert!(matches!(err, CredentialError::Read { .. }));
    assert!(err.to_string().contains("nope.toml"));
}

#[test]
fn decoy_is_stable_per_user_and_shaped_like_the_store() {
    let decoy = Decoy::new(8192, 28);
    let a1 = decoy
        .credential("ghost", Mechanism::ScramSha256)
        .expect("SCRAM");
    let a2 = decoy
        .credential("ghost", Mechanism::ScramSha256)
        .expect("SCRAM");
    assert_eq!(a1, a2);
    assert_eq!(a1.iterations(), 8192);
    assert_eq!(a1.salt().len(), 28);
    assert_eq!(a1.stored_key().len(), 32);
    let b = decoy
        .credential("ghost", Mechanism::ScramSha512)
        .expect("SCRAM");
    assert_eq!(b.stored_key().len(), 64);
    assert_eq!(b.server_key().len(), 64);
    assert_ne!(a1.salt(), b.salt());
    let c = decoy
        .credential("ghost2", Mechanism::ScramSha256)
        .expect("SCRAM");
    assert_ne!(a1.salt(), c.salt());
    assert_ne!(a1.stored_key(), a1.server_key());
    // Another process (another secret) gives other salts.
    let other = Decoy::new(8192, 28);
    assert_ne!(
        other
            .credential("ghost", Mechanism::ScramSha256)
            .expect("SCRAM")
            .salt(),
        a1.salt()
    );
    assert!(decoy.credential("ghost", Mechanism::Plain).is_none());
    // Long salts use more than one HMAC block; out-of-range shapes are clamped.
    assert_eq!(
        Decoy::new(8192, 100)
            .credential("g", Mechanism::ScramSha256)
            .expect("SCRAM")
            .salt()
            .len(),
        100
    );
    let clamped = Decoy::new(1, 1);
    assert_eq!((clamped.iterations(), clamped.salt_len()), (4096, 16));
}

#[test]
fn decoy_follows_the_most_common_shape() {
    let dir = TempDir::new();
    let path = dir.path("users.toml");
    add_user(&path, "a", "pw", &[Mechanism::ScramSha256], 4096).expect("add");
    add_user(&path, "b", "pw", &[Mechanism::ScramSha256], 10000).expect("add");
    add_user(&path, "c", "pw", &[Mechanism::ScramSha256], 10000).expect("add");
    let store = CredentialStore::load(&path).expect("load");
    assert_eq!(store.decoy_shape(), (10000, SALT_LEN));
    let decoy = Decoy::for_store(&store);
    assert_eq!((decoy.iterations(), decoy.salt_len()), (10000, SALT_LEN));

    // A reload keeps the secret, so unknown users keep their salts; only the shape follows.
    let before = decoy
        .credential("ghost", Mechanism::ScramSha256)
        .expect("SCRAM");
    let reloaded = decoy.reshaped_for(&CredentialStore::empty());
    let after = reloaded
        .credential("ghost", Mechanism::ScramSha256)
        .expect("SCRAM");
    assert_eq!(after.salt(), before.salt());
    assert_eq!(after.stored_key(), before.stored_key());
    assert_eq!(after.iterations(), DEFAULT_ITERATIONS);
}

const SAMPLE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/policies/users.toml");

#[test]
fn sample_file_loads_and_dev_passwords_work() {
    let store = CredentialStore::load(SAMPLE).expect("policies/users.toml loads");
    assert_eq!(store.len(), 6);
    for user in ["alice", "bob", "carol"] {
        for mech in [Mechanism::ScramSha256, Mechanism::ScramSha512] {
            let c = store.get(user, mech).expect("sample user");
            assert!(
                c.verify_password(&format!("{user}-secret")),
                "{user} {mech}"
            );
        }
    }
}

/// Regenerates the sample with this module's own `add_user`:
/// `cargo test --lib auth::credentials -- --ignored regenerate_sample`.
#[test]
#[ignore = "rewrites policies/users.toml"]
fn regenerate_sample_users_file() {
    let header = "\
# Sample SCRAM credentials for development and tests. DO NOT USE IN PRODUCTION.
# The dev users' passwords are alice-secret, bob-secret and carol-secret. (Real credential files
# hold no passwords, only salts and keys: create them with kafka-gateway's `users` command.)
# Regenerate: cargo test --lib auth::credentials -- --ignored regenerate_sample
";
    fs::write(SAMPLE, header).expect("policies/ is writable");
    for user in ["alice", "bob", "carol"] {
        add_user(
            SAMPLE,
            user,
            &format!("{user}-secret"),
            &[Mechanism::ScramSha256, Mechanism::ScramSha512],
            DEFAULT_ITERATIONS,
        )
        .expect("add sample user");
    }
}
