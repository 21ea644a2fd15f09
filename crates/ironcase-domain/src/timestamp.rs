//! Timestamps: milliseconds since the Unix epoch inside, RFC 3339 outside.

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Timestamp(pub i64);

impl Timestamp {
    pub fn millis(self) -> i64 {
        self.0
    }

    pub fn from_datetime(dt: OffsetDateTime) -> Self {
        Timestamp((dt.unix_timestamp_nanos() / 1_000_000) as i64)
    }

    pub fn to_datetime(self) -> OffsetDateTime {
        OffsetDateTime::from_unix_timestamp_nanos(i128::from(self.0) * 1_000_000).unwrap_or(OffsetDateTime::UNIX_EPOCH)
    }

    /// RFC 3339 in UTC with milliseconds: `2026-11-24T16:00:00.123Z`.
    pub fn to_rfc3339(self) -> String {
        let dt = self.to_datetime();
        // Written digit by digit: this runs for every timestamp of every answer.
        let mut b = *b"0000-00-00T00:00:00.000Z";
        let mut put = |at: usize, width: usize, mut v: u32| {
            for i in (0..width).rev() {
                b[at + i] = b'0' + (v % 10) as u8;
                v /= 10;
            }
        };
        put(0, 4, dt.year().clamp(0, 9999) as u32);
        put(5, 2, u32::from(u8::from(dt.month())));
        put(8, 2, u32::from(dt.day()));
        put(11, 2, u32::from(dt.hour()));
        put(14, 2, u32::from(dt.minute()));
        put(17, 2, u32::from(dt.second()));
        put(20, 3, u32::from(dt.millisecond()));
        String::from_utf8_lossy(&b).into_owned()
    }

    pub fn parse_rfc3339(s: &str) -> Option<Self> {
        OffsetDateTime::parse(s, &Rfc3339).ok().map(Self::from_datetime)
    }

    pub fn plus_secs(self, secs: i64) -> Self {
        Timestamp(self.0.saturating_add(secs.saturating_mul(1000)))
    }
}

impl Serialize for Timestamp {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.to_rfc3339())
    }
}

impl<'de> Deserialize<'de> for Timestamp {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        Timestamp::parse_rfc3339(&s).ok_or_else(|| serde::de::Error::custom("expected an RFC 3339 timestamp"))
    }
}

impl utoipa::PartialSchema for Timestamp {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        utoipa::openapi::ObjectBuilder::new()
            .schema_type(utoipa::openapi::schema::Type::String)
            .format(Some(utoipa::openapi::SchemaFormat::KnownFormat(utoipa::openapi::KnownFormat::DateTime)))
            .into()
    }
}
impl utoipa::ToSchema for Timestamp {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip() {
        let t = Timestamp(1_764_000_000_123);
        let s = t.to_rfc3339();
        assert_eq!(s, "2025-11-24T16:00:00.123Z");
        assert_eq!(Timestamp::parse_rfc3339(&s), Some(t));
        assert_eq!(Timestamp::parse_rfc3339("2025-11-24T17:00:00.123+01:00"), Some(t));
        assert_eq!(Timestamp::parse_rfc3339("yesterday"), None);
    }
}
