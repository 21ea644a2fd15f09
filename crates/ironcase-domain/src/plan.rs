//! Plans: what an organisation may hold (quotas) and use (features). A plan
//! gives defaults; an organisation's overrides change any of them. A quota of
//! `None` is unlimited.

use std::collections::BTreeMap;

use crate::incident::string_enum;

string_enum!(PlanName { Free = "free", Starter = "starter", Professional = "professional", Enterprise = "enterprise" });

string_enum!(
    /// Whether an organisation's members and keys may act: `suspended` and
    /// `inactive` organisations keep their data and answer every request 403.
    OrgStatus { Active = "active", Suspended = "suspended", Inactive = "inactive" }
);

string_enum!(Quota {
    Members = "members",
    IncidentsPerMonth = "incidents_per_month",
    StorageBytes = "storage_bytes",
    MaxEvidenceBytes = "max_evidence_bytes",
    ApiPerMinute = "api_per_minute",
    ApiPerDay = "api_per_day",
    AlertsPerMonth = "alerts_per_month",
});

string_enum!(Feature {
    ApiAccess = "api_access",
    Webhooks = "webhooks",
    Sso = "sso",
    CustomRoles = "custom_roles",
    AdvancedAnalytics = "advanced_analytics",
    Export = "export",
});

const KB: u64 = 1000;
const MB: u64 = 1000 * KB;
const GB: u64 = 1000 * MB;
const TB: u64 = 1000 * GB;

/// Changes to a plan's defaults for one organisation. A quota set to `None`
/// is unlimited; a key that is absent keeps the plan's value.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Overrides {
    #[serde(default)]
    pub quotas: BTreeMap<Quota, Option<u64>>,
    #[serde(default)]
    pub features: BTreeMap<Feature, bool>,
}

/// What an organisation may do: its plan with its overrides applied.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Limits {
    pub quotas: BTreeMap<Quota, Option<u64>>,
    pub features: BTreeMap<Feature, bool>,
}

impl Limits {
    pub fn quota(&self, q: Quota) -> Option<u64> {
        self.quotas.get(&q).copied().flatten()
    }

    pub fn has(&self, f: Feature) -> bool {
        self.features.get(&f).copied().unwrap_or(false)
    }
}

impl PlanName {
    /// The built-in defaults of the plan.
    pub fn defaults(self) -> Limits {
        use Feature as F;
        use Quota as Q;
        let (members, incidents, storage, max_file, per_minute, per_day, alerts) = match self {
            PlanName::Free => (Some(3), Some(100), Some(GB), Some(100 * MB), Some(10), Some(1_000), Some(1_000)),
            PlanName::Starter => (Some(10), Some(1_000), Some(10 * GB), Some(GB), Some(100), Some(10_000), Some(100_000)),
            PlanName::Professional => (Some(50), Some(10_000), Some(100 * GB), Some(10 * GB), Some(1_000), Some(100_000), Some(1_000_000)),
            PlanName::Enterprise => (None, None, Some(TB), Some(50 * GB), None, None, None),
        };
        let quotas = BTreeMap::from([
            (Q::Members, members),
            (Q::IncidentsPerMonth, incidents),
            (Q::StorageBytes, storage),
            (Q::MaxEvidenceBytes, max_file),
            (Q::ApiPerMinute, per_minute),
            (Q::ApiPerDay, per_day),
            (Q::AlertsPerMonth, alerts),
        ]);
        // Paid tiers add integrations; nothing a security team needs to be
        // safe (API access, export) is withheld above the free tier.
        let on: &[Feature] = match self {
            PlanName::Free => &[F::Export],
            PlanName::Starter => &[F::ApiAccess, F::Export, F::Webhooks],
            PlanName::Professional => &[F::ApiAccess, F::Export, F::Webhooks, F::Sso, F::CustomRoles],
            PlanName::Enterprise => Feature::ALL,
        };
        let features = Feature::ALL.iter().map(|f| (*f, on.contains(f))).collect();
        Limits { quotas, features }
    }

    /// The plan's defaults with `o` applied.
    pub fn with(self, o: &Overrides) -> Limits {
        let mut l = self.defaults();
        for (q, v) in &o.quotas {
            l.quotas.insert(*q, *v);
        }
        for (f, v) in &o.features {
            l.features.insert(*f, *v);
        }
        l
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_documented_defaults() {
        let free = PlanName::Free.defaults();
        assert_eq!(free.quota(Quota::Members), Some(3));
        assert_eq!(free.quota(Quota::StorageBytes), Some(1_000_000_000));
        assert!(!free.has(Feature::ApiAccess));
        let ent = PlanName::Enterprise.defaults();
        assert_eq!(ent.quota(Quota::IncidentsPerMonth), None);
        assert_eq!(ent.quota(Quota::MaxEvidenceBytes), Some(50_000_000_000));
        assert!(Feature::ALL.iter().all(|f| ent.has(*f)));
    }

    #[test]
    fn overrides_change_any_number_and_null_is_unlimited() {
        let o: Overrides =
            serde_json::from_str(r#"{"quotas":{"members":null,"incidents_per_month":5},"features":{"sso":true}}"#).expect("json");
        let l = PlanName::Free.with(&o);
        assert_eq!(l.quota(Quota::Members), None);
        assert_eq!(l.quota(Quota::IncidentsPerMonth), Some(5));
        assert_eq!(l.quota(Quota::ApiPerDay), Some(1_000));
        assert!(l.has(Feature::Sso));
        assert!(serde_json::from_str::<Overrides>(r#"{"quotas":{"seats":1}}"#).is_err());
    }
}
