//! Typed, prefixed identifiers: UUIDv7 inside, `inc_…` outside.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use uuid::Uuid;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("malformed identifier")]
pub struct BadId;

macro_rules! typed_id {
    ($name:ident, $prefix:literal) => {
        #[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub struct $name(Uuid);

        impl $name {
            pub const PREFIX: &'static str = $prefix;

            /// A new, time-ordered id.
            pub fn new() -> Self {
                Self(Uuid::now_v7())
            }

            pub fn uuid(&self) -> Uuid {
                self.0
            }
        }

        impl Default for $name {
            fn default() -> Self {
                Self::new()
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{}_{}", $prefix, self.0.simple())
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                fmt::Display::fmt(self, f)
            }
        }

        impl FromStr for $name {
            type Err = BadId;
            fn from_str(s: &str) -> Result<Self, BadId> {
                let rest = s.strip_prefix($prefix).and_then(|r| r.strip_prefix('_')).ok_or(BadId)?;
                if rest.len() != 32 {
                    return Err(BadId);
                }
                Uuid::try_parse(rest).map(Self).map_err(|_| BadId)
            }
        }

        impl Serialize for $name {
            fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.collect_str(self)
            }
        }

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let s = <std::borrow::Cow<'de, str>>::deserialize(d)?;
                s.parse().map_err(|_| serde::de::Error::custom(concat!("expected an id starting with `", $prefix, "_`")))
            }
        }

        impl utoipa::PartialSchema for $name {
            fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
                utoipa::openapi::ObjectBuilder::new()
                    .schema_type(utoipa::openapi::schema::Type::String)
                    .examples([concat!($prefix, "_0193a1b2c3d47e8f9a0b1c2d3e4f5a6b")])
                    .into()
            }
        }
        impl utoipa::ToSchema for $name {}
    };
}

typed_id!(OrgId, "org");
typed_id!(UserId, "usr");
typed_id!(IncidentId, "inc");
typed_id!(CommentId, "cmt");
typed_id!(ApiKeyId, "key");
typed_id!(SessionId, "ses");
typed_id!(IocId, "ioc");
typed_id!(EvidenceId, "evd");
typed_id!(InvitationId, "inv");
typed_id!(RoleId, "rol");
typed_id!(WebhookId, "whk");
typed_id!(MessageId, "msg");
typed_id!(AlertId, "alr");
typed_id!(PrivacyRequestId, "dsr");

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_reject_foreign_prefix() {
        let id = IncidentId::new();
        let s = id.to_string();
        assert!(s.starts_with("inc_"));
        assert_eq!(s.parse::<IncidentId>(), Ok(id));
        let other = s.replacen("inc_", "org_", 1);
        assert_eq!(other.parse::<IncidentId>(), Err(BadId));
        assert_eq!("inc_".parse::<IncidentId>(), Err(BadId));
        assert_eq!("inc_zz".parse::<IncidentId>(), Err(BadId));
    }
}
