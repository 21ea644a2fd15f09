//! Roles and permissions. The role → permission table lives here and only here
//! (`Role::grants`); the README's table is generated from the same data by
//! `ironcase roles` and checked by a test.

use crate::incident::string_enum;

string_enum!(Permission {
    IncidentCreate = "incident:create",
    IncidentRead = "incident:read",
    IncidentUpdate = "incident:update",
    IncidentDelete = "incident:delete",
    CommentCreate = "comment:create",
    EvidenceCreate = "evidence:create",
    EvidenceDownload = "evidence:download",
    EvidenceDelete = "evidence:delete",
    AuditRead = "audit:read",
    MembersRead = "members:read",
    MembersManage = "members:manage",
    ApiKeysManage = "apikeys:manage",
    OrganizationRead = "organization:read",
    OrganizationManage = "organization:manage",
    OrganizationExport = "organization:export",
});

string_enum!(
    /// Built-in roles, from most to least powerful.
    Role { Owner = "owner", Admin = "admin", Lead = "lead", SeniorAnalyst = "senior_analyst", Analyst = "analyst", Viewer = "viewer" }
);

/// How far a granted permission reaches.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    /// Every resource in the organisation.
    All,
    /// Only incidents the actor reported or is assigned to.
    OwnOrAssigned,
}

use Permission as P;
use Scope::*;

const OWNER: &[(Permission, Scope)] = &[
    (P::IncidentCreate, All),
    (P::IncidentRead, All),
    (P::IncidentUpdate, All),
    (P::IncidentDelete, All),
    (P::CommentCreate, All),
    (P::EvidenceCreate, All),
    (P::EvidenceDownload, All),
    (P::EvidenceDelete, All),
    (P::AuditRead, All),
    (P::MembersRead, All),
    (P::MembersManage, All),
    (P::ApiKeysManage, All),
    (P::OrganizationRead, All),
    (P::OrganizationManage, All),
    (P::OrganizationExport, All),
];
const LEAD: &[(Permission, Scope)] = &[
    (P::IncidentCreate, All),
    (P::IncidentRead, All),
    (P::IncidentUpdate, All),
    (P::IncidentDelete, All),
    (P::CommentCreate, All),
    (P::EvidenceCreate, All),
    (P::EvidenceDownload, All),
    (P::EvidenceDelete, All),
    (P::AuditRead, All),
    (P::MembersRead, All),
    (P::ApiKeysManage, All),
    (P::OrganizationRead, All),
];
const SENIOR_ANALYST: &[(Permission, Scope)] = &[
    (P::IncidentCreate, All),
    (P::IncidentRead, All),
    (P::IncidentUpdate, All),
    (P::CommentCreate, All),
    (P::EvidenceCreate, All),
    (P::EvidenceDownload, All),
    (P::MembersRead, All),
    (P::OrganizationRead, All),
];
const ANALYST: &[(Permission, Scope)] = &[
    (P::IncidentCreate, All),
    (P::IncidentRead, All),
    (P::IncidentUpdate, OwnOrAssigned),
    (P::CommentCreate, All),
    (P::EvidenceCreate, OwnOrAssigned),
    (P::EvidenceDownload, All),
    (P::MembersRead, All),
    (P::OrganizationRead, All),
];
const VIEWER: &[(Permission, Scope)] = &[(P::IncidentRead, All), (P::MembersRead, All), (P::OrganizationRead, All)];

impl Role {
    /// The one role → permission table.
    pub fn grants(self) -> &'static [(Permission, Scope)] {
        match self {
            // Owner and admin hold the same permissions; the difference is rank:
            // an admin cannot grant, change or remove the owner role.
            Role::Owner | Role::Admin => OWNER,
            Role::Lead => LEAD,
            Role::SeniorAnalyst => SENIOR_ANALYST,
            Role::Analyst => ANALYST,
            Role::Viewer => VIEWER,
        }
    }

    /// The scope of `p` for this role, or `None` when not granted.
    pub fn scope(self, p: Permission) -> Option<Scope> {
        self.grants().iter().find(|(g, _)| *g == p).map(|(_, s)| *s)
    }

    pub fn permissions(self) -> impl Iterator<Item = Permission> {
        self.grants().iter().map(|(p, _)| *p)
    }

    /// Higher is more powerful.
    pub fn rank(self) -> u8 {
        match self {
            Role::Owner => 6,
            Role::Admin => 5,
            Role::Lead => 4,
            Role::SeniorAnalyst => 3,
            Role::Analyst => 2,
            Role::Viewer => 1,
        }
    }

    /// Whether a holder of `self` may hand out (or act upon) `other`.
    pub fn covers(self, other: Role) -> bool {
        self.rank() >= other.rank()
    }
}

/// What a role grants, one slot per permission: the check a request makes is
/// an index, whether the role is built in or an organisation's own.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Grants([Option<Scope>; Permission::ALL.len()]);

/// The permissions a custom role's `own_or_assigned` condition narrows:
/// changes to an incident, allowed only on those the holder reported or is
/// assigned to.
pub const INCIDENT_CHANGES: &[Permission] = &[P::IncidentUpdate, P::IncidentDelete, P::CommentCreate, P::EvidenceCreate];

impl Grants {
    pub fn of(role: Role) -> Grants {
        let mut g = [None; Permission::ALL.len()];
        for (p, s) in role.grants() {
            g[*p as usize] = Some(*s);
        }
        Grants(g)
    }

    /// `base`'s grants, with `grant` added (everywhere) and `revoke` taken
    /// away; with `own_or_assigned`, [`INCIDENT_CHANGES`] only on the
    /// holder's own or assigned incidents.
    pub fn custom(base: Role, grant: &[Permission], revoke: &[Permission], own_or_assigned: bool) -> Grants {
        let mut g = Grants::of(base).0;
        for p in grant {
            g[*p as usize] = Some(All);
        }
        for p in revoke {
            g[*p as usize] = None;
        }
        if own_or_assigned {
            for p in INCIDENT_CHANGES {
                if g[*p as usize].is_some() {
                    g[*p as usize] = Some(OwnOrAssigned);
                }
            }
        }
        Grants(g)
    }

    /// The scope of `p`, or `None` when not granted.
    #[inline]
    pub fn scope(&self, p: Permission) -> Option<Scope> {
        self.0[p as usize]
    }

    /// Whether every permission of `other` is granted here at least as
    /// widely (nobody hands out more than they hold).
    pub fn covers(&self, other: &Grants) -> bool {
        self.0
            .iter()
            .zip(other.0.iter())
            .all(|pair| matches!(pair, (_, None) | (Some(All), Some(_)) | (Some(OwnOrAssigned), Some(OwnOrAssigned))))
    }

    /// The granted permissions and their scopes, in the order of
    /// [`Permission::ALL`].
    pub fn list(&self) -> impl Iterator<Item = (Permission, Scope)> + '_ {
        Permission::ALL.iter().filter_map(|p| self.scope(*p).map(|s| (*p, s)))
    }
}

/// The role table as Markdown, for the docs.
pub fn role_table_markdown() -> String {
    let mut out = String::from("| permission |");
    for r in Role::ALL {
        out.push_str(&format!(" {r} |"));
    }
    out.push_str("\n|---|");
    for _ in Role::ALL {
        out.push_str("---|");
    }
    out.push('\n');
    for p in Permission::ALL {
        out.push_str(&format!("| `{p}` |"));
        for r in Role::ALL {
            let cell = match r.scope(*p) {
                Some(All) => "yes",
                Some(OwnOrAssigned) => "own/assigned",
                None => "",
            };
            out.push_str(&format!(" {cell} |"));
        }
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranks_are_monotonic_in_permissions() {
        for pair in Role::ALL.windows(2) {
            let (hi, lo) = (pair[0], pair[1]);
            assert!(hi.rank() > lo.rank());
            for p in lo.permissions() {
                assert!(hi.scope(p).is_some(), "{hi} lacks {p} that {lo} has");
            }
        }
    }

    #[test]
    fn custom_grants_add_revoke_and_narrow() {
        let g = Grants::custom(Role::Analyst, &[P::AuditRead], &[P::EvidenceDownload], false);
        assert_eq!((g.scope(P::AuditRead), g.scope(P::EvidenceDownload)), (Some(All), None));
        assert_eq!(g.scope(P::IncidentUpdate), Some(OwnOrAssigned), "the base's own scope stays");
        assert!(Grants::of(Role::Lead).covers(&g) && !Grants::of(Role::Analyst).covers(&g));
        let narrow = Grants::custom(Role::Lead, &[], &[], true);
        assert_eq!((narrow.scope(P::IncidentDelete), narrow.scope(P::IncidentRead)), (Some(OwnOrAssigned), Some(All)));
        assert!(Grants::of(Role::Lead).covers(&narrow) && !narrow.covers(&Grants::of(Role::Lead)));
        for r in Role::ALL {
            assert_eq!(Grants::custom(*r, &[], &[], false), Grants::of(*r));
            assert!(r.permissions().all(|p| Grants::of(*r).scope(p) == r.scope(p)));
        }
    }

    #[test]
    fn viewer_only_reads() {
        assert!(Role::Viewer.permissions().all(|p| p.as_str().ends_with(":read")));
        assert_eq!(Role::Analyst.scope(Permission::IncidentUpdate), Some(Scope::OwnOrAssigned));
    }
}
