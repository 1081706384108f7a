//! The `policy import` and `policy export` commands' work: load, convert, talk to the cluster,
//! write. Argument parsing lives with the binary, the conversion in [`super`], the requests in
//! [`crate::upstream::acls`].

use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use super::{
    export, import, render_json, render_kafka_acls, render_policy, Export, ExportError,
    ExportTarget, ImportError, WireAcl,
};
use crate::policy::files::{PolicyError, PolicySet};
use crate::upstream::acls::{AclRequestError, AdminConn};
use crate::upstream::client_properties::{self, ClientProperties, PropertiesError};

#[derive(Debug, thiserror::Error)]
pub enum MigrateError {
    #[error(transparent)]
    Properties(#[from] PropertiesError),
    #[error(transparent)]
    Request(#[from] AclRequestError),
    #[error(transparent)]
    Import(#[from] ImportError),
    #[error(transparent)]
    Export(#[from] ExportError),
    #[error(transparent)]
    Policy(#[from] PolicyError),
    #[error("bad --bootstrap `{0}`: expected HOST:PORT, or several separated by commas")]
    Bootstrap(String),
    #[error("{0}")]
    Write(String),
    #[error("CreateAcls on {addr}: {}", describe_refusals(*total, refused))]
    Apply {
        addr: String,
        total: usize,
        /// `(the ACL and the rule it comes from, the broker's error)` for each refused ACL.
        refused: Vec<(String, String)>,
    },
}

/// One line when the broker refused everything for one reason (no rights, typically), else one
/// line per refused ACL.
fn describe_refusals(total: usize, refused: &[(String, String)]) -> String {
    let first = refused.first().map(|r| r.1.as_str()).unwrap_or_default();
    if refused.len() == total && refused.iter().all(|r| r.1 == first) {
        return format!("every one of the {total} ACLs refused (none created): {first}");
    }
    let mut out = format!(
        "{} of {total} ACLs refused (the other {} were created):",
        refused.len(),
        total - refused.len()
    );
    for (acl, err) in refused {
        out.push_str(&format!("\n  {acl}: {err}"));
    }
    out
}

/// Where to reach the cluster and how to log in.
#[derive(Debug, Clone)]
pub struct ClusterOptions {
    /// `HOST:PORT[,HOST:PORT...]`.
    pub bootstrap: String,
    /// A Kafka client properties file, as `kafka-acls.sh --command-config` takes.
    pub command_config: Option<PathBuf>,
    /// Deadline of each network step.
    pub timeout: Duration,
}

impl ClusterOptions {
    /// Logs in to the first reachable bootstrap server; the properties are returned for
    /// connections to other brokers.
    pub async fn connect(&self) -> Result<(AdminConn, ClientProperties), MigrateError> {
        let bootstrap = self
            .bootstrap
            .split(',')
            .map(|s| crate::config::split_host_port(s.trim()))
            .collect::<Option<Vec<_>>>()
            .filter(|b| !b.is_empty())
            .ok_or_else(|| MigrateError::Bootstrap(self.bootstrap.clone()))?;
        let props = match &self.command_config {
            Some(path) => client_properties::load(path)?,
            None => ClientProperties::default(),
        };
        let conn = AdminConn::connect(&bootstrap, &props, self.timeout).await?;
        Ok((conn, props))
    }
}

/// What `policy import` produced.
#[derive(Debug)]
pub struct Imported {
    /// The policy file's text.
    pub policy: String,
    pub rules: usize,
    pub from: String,
}

/// `policy import`: every ACL of the cluster as a policy file, or every ACL that cannot be one.
pub async fn cmd_import(opts: &ClusterOptions) -> Result<Imported, MigrateError> {
    let (mut conn, props) = opts.connect().await?;
    let resp = conn.describe_all().await?;
    let acls = WireAcl::from_response(&resp);
    let rules = import(&acls)?;
    let login = match &props.sasl {
        Some(s) => format!(", logged in as User:{} with {}", s.username, s.mechanism),
        None => String::new(),
    };
    let header = vec![
        format!(
            "Imported by `kafka-gateway policy import` from the Kafka cluster at {}",
            conn.addr()
        ),
        format!(
            "({}{login}) at {}:",
            props.protocol,
            crate::audit::time::rfc3339(SystemTime::now())
        ),
        format!(
            "{} ACL{} as {} rule{}, sorted by principal, resource type, pattern, operation, host and effect.",
            acls.len(),
            if acls.len() == 1 { "" } else { "s" },
            rules.len(),
            if rules.len() == 1 { "" } else { "s" },
        ),
        "The brokers' super.users are not ACLs and are not listed here: set them as".into(),
        "authorization.super_users in the gateway configuration.".into(),
    ];
    let policy = render_policy(&rules, &header)?;
    Ok(Imported {
        policy,
        rules: rules.len(),
        from: conn.addr().to_string(),
    })
}

/// `policy export`'s output formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExportFormat {
    /// A shell script of `kafka-acls.sh --add` commands.
    KafkaAcls,
    /// The CreateAcls creations as a JSON array.
    Json,
}

/// What `policy export` produced.
#[derive(Debug)]
pub struct Exported {
    /// The script or the JSON array.
    pub text: String,
    pub acls: usize,
    /// For the operator (stderr): the super users to set as the brokers' `super.users`.
    pub note: Option<String>,
}

fn load_export(
    model: &Path,
    files: &[PathBuf],
    super_users: &[String],
    target: ExportTarget,
) -> Result<Export, MigrateError> {
    let set = PolicySet::load(model, files, super_users)?;
    Ok(export(&set, target)?)
}

fn super_users_note(export: &Export) -> Option<String> {
    (!export.super_users.is_empty()).then(|| {
        format!(
            "super users are not ACLs: set super.users={} on every broker and controller",
            export.super_users.join(";")
        )
    })
}

/// `policy export --format ...`: the policy as Kafka ACLs, or every rule that cannot be one.
pub fn cmd_export(
    model: &Path,
    files: &[PathBuf],
    super_users: &[String],
    format: ExportFormat,
) -> Result<Exported, MigrateError> {
    let target = match format {
        ExportFormat::KafkaAcls => ExportTarget::KafkaAclsScript,
        ExportFormat::Json => ExportTarget::CreateAcls,
    };
    let export = load_export(model, files, super_users, target)?;
    let from: Vec<String> = files.iter().map(|f| f.display().to_string()).collect();
    let text = match format {
        ExportFormat::KafkaAcls => render_kafka_acls(&export, &from.join(", ")),
        ExportFormat::Json => render_json(&export),
    };
    Ok(Exported {
        text,
        acls: export.acls.len(),
        note: super_users_note(&export),
    })
}

/// `policy export --apply`: creates the policy's ACLs on the cluster with CreateAcls. Returns a
/// summary. Nothing is sent when a rule cannot be exported.
pub async fn cmd_apply(
    model: &Path,
    files: &[PathBuf],
    super_users: &[String],
    cluster: &ClusterOptions,
) -> Result<Exported, MigrateError> {
    let export = load_export(model, files, super_users, ExportTarget::CreateAcls)?;
    let (mut conn, _) = cluster.connect().await?;
    let creations: Vec<_> = export.acls.iter().map(|a| a.binding.creation()).collect();
    let total = creations.len();
    let results = if creations.is_empty() {
        Vec::new()
    } else {
        conn.create(creations).await?
    };
    let refused: Vec<(String, String)> = export
        .acls
        .iter()
        .zip(&results)
        .filter_map(|(acl, r)| {
            let e = r.as_ref().err()?;
            let origin = acl
                .origins
                .first()
                .map(|o| o.source.to_string())
                .unwrap_or_default();
            Some((format!("{origin}: {}", acl.binding.wire()), e.to_string()))
        })
        .collect();
    if !refused.is_empty() {
        return Err(MigrateError::Apply {
            addr: conn.addr().to_string(),
            total,
            refused,
        });
    }
    Ok(Exported {
        text: format!(
            "created {total} ACL{} on {}\n",
            if total == 1 { "" } else { "s" },
            conn.addr()
        ),
        acls: total,
        note: super_users_note(&export),
    })
}

/// Writes `text` to `path` so that an error leaves the old file (or none), never a partial one.
pub fn write_output(path: &Path, text: &str) -> Result<(), MigrateError> {
    crate::auth::credentials::write_atomic(path, text.as_bytes())
        .map_err(|e| MigrateError::Write(e.to_string()))
}
