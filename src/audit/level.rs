//! Which authorization decisions are audited: every denial, and allowed decisions by level.

use serde::{Deserialize, Serialize};

use super::event::Decision;

/// How many *allowed* decisions to record. Denials are always recorded when the trail is enabled.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AuditLevel {
    /// No allowed decisions.
    None,
    /// Allowed administrative operations only (the default): see [`is_admin_api`].
    #[default]
    Admin,
    /// Every allowed decision (one record per resource per request: heavy on produce/fetch traffic).
    All,
}

impl AuditLevel {
    /// Whether a decision on a request with this API key gets a record.
    pub fn records(self, decision: Decision, api_key: i16) -> bool {
        match (decision, self) {
            (Decision::Deny, _) => true,
            (Decision::Allow, AuditLevel::None) => false,
            (Decision::Allow, AuditLevel::Admin) => is_admin_api(api_key),
            (Decision::Allow, AuditLevel::All) => true,
        }
    }
}

/// APIs that change topics, configs, groups, offsets, ACLs, quotas, credentials or transactions.
pub fn is_admin_api(api_key: i16) -> bool {
    matches!(
        api_key,
        19 // CreateTopics
            | 20 // DeleteTopics
            | 21 // DeleteRecords
            | 22 // InitProducerId (transactional producers register here)
            | 24 // AddPartitionsToTxn
            | 25 // AddOffsetsToTxn
            | 26 // EndTxn
            | 27 // WriteTxnMarkers
            | 28 // TxnOffsetCommit
            | 30 // CreateAcls
            | 31 // DeleteAcls
            | 33 // AlterConfigs
            | 34 // AlterReplicaLogDirs
            | 37 // CreatePartitions
            | 38 // CreateDelegationToken
            | 39 // RenewDelegationToken
            | 40 // ExpireDelegationToken
            | 42 // DeleteGroups
            | 43 // ElectLeaders
            | 44 // IncrementalAlterConfigs
            | 45 // AlterPartitionReassignments
            | 47 // OffsetDelete
            | 49 // AlterClientQuotas
            | 51 // AlterUserScramCredentials
            | 57 // UpdateFeatures
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn denials_always_allowed_by_level() {
        for level in [AuditLevel::None, AuditLevel::Admin, AuditLevel::All] {
            assert!(level.records(Decision::Deny, 0));
        }
        assert!(!AuditLevel::Admin.records(Decision::Allow, 0)); // Produce
        assert!(AuditLevel::Admin.records(Decision::Allow, 19)); // CreateTopics
        assert!(AuditLevel::Admin.records(Decision::Allow, 47)); // OffsetDelete
        assert!(!AuditLevel::None.records(Decision::Allow, 19));
        assert!(AuditLevel::All.records(Decision::Allow, 1)); // Fetch
        assert_eq!(AuditLevel::default(), AuditLevel::Admin);
    }
}
