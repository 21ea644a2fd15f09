//! Who is asking, in which organisation, with which role; and where from.

use ironcase_domain::net::AllowList;
use ironcase_domain::{ApiKeyId, Grants, OrgId, Permission, Role, RoleId, Scope, SessionId, Sight, Timestamp, UserId};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Actor {
    User(UserId),
    /// An API key; acts for the user who created it where a person is needed.
    ApiKey {
        key: ApiKeyId,
        owner: UserId,
    },
}

/// The caller of one request. The organisation comes only from the credential.
#[derive(Debug, Clone)]
pub struct Principal {
    pub org: OrgId,
    pub actor: Actor,
    /// The built-in role, or the base of the organisation's own role the
    /// credential holds: its rank (who may act on whom).
    pub role: Role,
    /// What the credential may do: the built-in role's permissions, or the
    /// custom role's. Checked in memory.
    pub grants: Grants,
    /// The organisation's own role, when the credential holds one.
    pub custom_role: Option<RoleId>,
    pub session: Option<SessionId>,
    /// A platform operator acting through a user session.
    pub is_operator: bool,
    /// The incidents this principal sees: a TLP ceiling (an API key's, its
    /// role's) and the categories of its role. Incidents outside it do not
    /// exist for it.
    pub sight: Sight,
    /// Requests per minute this credential is held to, below its plan's.
    pub rate_per_minute: Option<u32>,
    /// A session of a member without a second factor in an organisation
    /// that requires one: it may only enrol one (every permission is
    /// refused with `mfa_enrollment_required`).
    pub enrolling: bool,
    /// When a session's holder last proved who they are (login, MFA,
    /// re-authentication); `None` for API keys. Sensitive actions need it
    /// recent ([`crate::App::require_recent_proof`]).
    pub authenticated_at: Option<Timestamp>,
    /// Where this credential may be used from.
    pub networks: Networks,
    /// An API key registered with an Ed25519 public key: its sensitive
    /// requests must be signed (RFC 9421).
    pub signing_key: Option<[u8; 32]>,
    /// This request carried a valid signature of that key.
    pub signed: bool,
    /// The organisation audits every read of its incidents, evidence and
    /// indicators (`audit_reads`).
    pub audit_reads: bool,
}

/// The address ranges a request with this credential must come from: the
/// organisation's and, for an API key, the key's own (both apply).
#[derive(Debug, Clone, Default)]
pub struct Networks {
    pub organization: AllowList,
    pub key: AllowList,
}

impl Networks {
    pub fn permit(&self, ip: Option<std::net::IpAddr>) -> bool {
        self.organization.permits(ip) && self.key.permits(ip)
    }
}

impl Principal {
    /// The user this principal acts as (the key's creator for API keys).
    pub fn user_id(&self) -> UserId {
        match self.actor {
            Actor::User(u) => u,
            Actor::ApiKey { owner, .. } => owner,
        }
    }

    pub fn actor_id(&self) -> String {
        match self.actor {
            Actor::User(u) => u.to_string(),
            Actor::ApiKey { key, .. } => key.to_string(),
        }
    }

    /// The credential this request came with: its session, or its API key.
    /// Rate limits are counted per credential.
    pub fn credential_id(&self) -> String {
        match self.session {
            Some(s) => s.to_string(),
            None => self.actor_id(),
        }
    }

    pub fn actor_kind(&self) -> &'static str {
        match self.actor {
            Actor::User(_) => "user",
            Actor::ApiKey { .. } => "api_key",
        }
    }

    /// Whether the role grants `p` at all (conditions aside).
    #[inline]
    pub fn has(&self, p: Permission) -> bool {
        self.grants.scope(p).is_some()
    }

    /// Whether the role grants `p` on an incident with this reporter and assignee.
    pub fn may_on_incident(&self, p: Permission, reporter: UserId, assignee: Option<UserId>) -> bool {
        match self.grants.scope(p) {
            Some(Scope::All) => true,
            Some(Scope::OwnOrAssigned) => {
                let me = self.user_id();
                reporter == me || assignee == Some(me)
            }
            None => false,
        }
    }
}

/// Request facts that go into audit entries.
#[derive(Debug, Clone, Default)]
pub struct RequestMeta {
    pub request_id: Option<String>,
    pub source_ip: Option<String>,
    pub user_agent: Option<String>,
}
