//! Incidents: severity, category, TLP, the status workflow and resolutions.

/// Declares a closed string enum with `as_str`, `parse` and `ALL`.
macro_rules! string_enum {
    ($(#[$m:meta])* $name:ident { $($variant:ident = $s:literal),+ $(,)? }) => {
        $(#[$m])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize)]
        pub enum $name {
            $(#[serde(rename = $s)] $variant),+
        }

        // Written by hand: the derive does not see a `rename` whose literal
        // came through this macro, and documented the Rust names
        // (`"Low"`) where the API speaks `"low"`.
        impl utoipa::PartialSchema for $name {
            fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
                utoipa::openapi::ObjectBuilder::new()
                    .schema_type(utoipa::openapi::schema::Type::String)
                    .enum_values(Some([$($s),+]))
                    .into()
            }
        }
        impl utoipa::ToSchema for $name {
            fn name() -> std::borrow::Cow<'static, str> {
                std::borrow::Cow::Borrowed(stringify!($name))
            }
        }

        impl $name {
            pub const ALL: &'static [$name] = &[$($name::$variant),+];

            pub fn as_str(self) -> &'static str {
                match self { $($name::$variant => $s),+ }
            }

            pub fn parse(s: &str) -> Option<Self> {
                match s { $($s => Some($name::$variant),)+ _ => None }
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.as_str())
            }
        }
    };
}
pub(crate) use string_enum;

string_enum!(Severity { Low = "low", Medium = "medium", High = "high", Critical = "critical" });

string_enum!(Category {
    Malware = "malware",
    Phishing = "phishing",
    UnauthorizedAccess = "unauthorized_access",
    DataBreach = "data_breach",
    DenialOfService = "denial_of_service",
    InsiderThreat = "insider_threat",
    Vulnerability = "vulnerability",
    PolicyViolation = "policy_violation",
    Other = "other",
});

string_enum!(
    /// Traffic Light Protocol 2.0, ordered from least to most restricted.
    Tlp { Clear = "clear", Green = "green", Amber = "amber", AmberStrict = "amber+strict", Red = "red" }
);

impl Tlp {
    /// What an incident gets when the reporter names no TLP.
    pub const DEFAULT: Tlp = Tlp::Amber;

    /// Every level at or below `self`.
    pub fn at_or_below(self) -> Vec<Tlp> {
        Tlp::ALL.iter().copied().filter(|t| *t <= self).collect()
    }
}

/// A set of categories (one bit each).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Categories(u16);

impl Categories {
    pub fn of(list: &[Category]) -> Categories {
        Categories(list.iter().fold(0, |bits, c| bits | 1 << *c as u16))
    }

    pub fn contains(self, c: Category) -> bool {
        self.0 & 1 << c as u16 != 0
    }

    pub fn is_empty(self) -> bool {
        self.0 == 0
    }

    /// Those in both sets.
    pub fn and(self, other: Categories) -> Categories {
        Categories(self.0 & other.0)
    }

    /// The categories in the set, in declaration order.
    pub fn list(self) -> Vec<Category> {
        Category::ALL.iter().copied().filter(|c| self.contains(*c)).collect()
    }
}

/// What of an organisation's incidents a credential sees: those at or below
/// a TLP ceiling, in a set of categories (`None`: no limit). An incident
/// outside its sight does not exist for the credential.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Sight {
    pub tlp_max: Option<Tlp>,
    pub categories: Option<Categories>,
}

impl Sight {
    /// No limit.
    pub const ALL: Sight = Sight { tlp_max: None, categories: None };

    pub fn is_all(self) -> bool {
        self == Sight::ALL
    }

    pub fn sees_tlp(self, tlp: Tlp) -> bool {
        self.tlp_max.is_none_or(|max| tlp <= max)
    }

    pub fn sees_category(self, c: Category) -> bool {
        self.categories.is_none_or(|set| set.contains(c))
    }

    /// Whether an incident of this TLP and category is in sight.
    pub fn sees(self, tlp: Tlp, category: Category) -> bool {
        self.sees_tlp(tlp) && self.sees_category(category)
    }

    /// What both sights see (a key's own ceiling and its role's).
    pub fn and(self, other: Sight) -> Sight {
        Sight {
            tlp_max: match (self.tlp_max, other.tlp_max) {
                (Some(a), Some(b)) => Some(a.min(b)),
                (a, b) => a.or(b),
            },
            categories: match (self.categories, other.categories) {
                (Some(a), Some(b)) => Some(a.and(b)),
                (a, b) => a.or(b),
            },
        }
    }

    /// Whether everything `other` sees, this sees too.
    pub fn covers(self, other: Sight) -> bool {
        self.and(other) == other
    }
}

string_enum!(Status {
    Open = "open",
    Triaged = "triaged",
    InProgress = "in_progress",
    Contained = "contained",
    Resolved = "resolved",
    Closed = "closed",
});

string_enum!(Resolution {
    TruePositive = "true_positive",
    FalsePositive = "false_positive",
    Benign = "benign",
    Duplicate = "duplicate",
});

impl Status {
    /// The workflow: which moves are allowed from `self`.
    pub fn next(self) -> &'static [Status] {
        use Status::*;
        match self {
            Open => &[Triaged, InProgress, Closed],
            Triaged => &[InProgress, Closed],
            InProgress => &[Contained, Resolved],
            Contained => &[Resolved],
            Resolved => &[Closed, InProgress],
            Closed => &[InProgress],
        }
    }

    pub fn can_move_to(self, to: Status) -> bool {
        self.next().contains(&to)
    }
}

/// Milestone timestamps the server records on a status change.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Milestone {
    Acknowledged,
    Contained,
    Resolved,
    Closed,
}

/// Why a status change was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TransitionError {
    #[error("cannot move from {from} to {to}; allowed: {allowed}")]
    NotAllowed { from: Status, to: Status, allowed: String },
    #[error("closing needs a resolution (true_positive, false_positive, benign, duplicate)")]
    ResolutionRequired,
}

/// Checks one status move. Returns the milestones the move reaches.
pub fn transition(from: Status, to: Status, resolution: Option<Resolution>) -> Result<Vec<Milestone>, TransitionError> {
    if !from.can_move_to(to) {
        let allowed = from.next().iter().map(|s| s.as_str()).collect::<Vec<_>>().join(", ");
        return Err(TransitionError::NotAllowed { from, to, allowed });
    }
    if to == Status::Closed && resolution.is_none() {
        return Err(TransitionError::ResolutionRequired);
    }
    let mut m = Vec::new();
    // Leaving `open` for the first time means someone acknowledged the incident.
    if from == Status::Open {
        m.push(Milestone::Acknowledged);
    }
    match to {
        Status::Contained => m.push(Milestone::Contained),
        Status::Resolved => m.push(Milestone::Resolved),
        Status::Closed => m.push(Milestone::Closed),
        _ => {}
    }
    Ok(m)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn status() -> impl Strategy<Value = Status> {
        prop::sample::select(Status::ALL.to_vec())
    }
    fn resolution() -> impl Strategy<Value = Option<Resolution>> {
        prop::option::of(prop::sample::select(Resolution::ALL.to_vec()))
    }

    #[test]
    fn sights_meet_and_cover() {
        let phish = Sight { tlp_max: None, categories: Some(Categories::of(&[Category::Phishing])) };
        let amber = Sight { tlp_max: Some(Tlp::Amber), categories: None };
        let both = phish.and(amber);
        assert!(both.sees(Tlp::Green, Category::Phishing) && !both.sees(Tlp::Red, Category::Phishing));
        assert!(!both.sees(Tlp::Green, Category::Malware));
        assert!(Sight::ALL.covers(both) && phish.covers(both) && amber.covers(both));
        assert!(!both.covers(phish) && !phish.covers(amber) && !phish.covers(Sight::ALL));
        let none = Categories::of(&[Category::Malware]).and(Categories::of(&[Category::Phishing]));
        assert!(none.is_empty() && none.list().is_empty());
        assert_eq!(Categories::of(Category::ALL).list(), Category::ALL);
    }

    #[test]
    fn table() {
        use Status::*;
        assert!(transition(Open, Triaged, None).is_ok());
        assert!(transition(Open, Resolved, None).is_err());
        assert_eq!(transition(Open, Closed, None), Err(TransitionError::ResolutionRequired));
        assert!(transition(Closed, InProgress, None).is_ok());
        assert!(transition(Contained, Closed, Some(Resolution::Benign)).is_err());
        assert_eq!(transition(InProgress, Contained, None), Ok(vec![Milestone::Contained]));
    }

    proptest! {
        /// Any walk through the workflow only ever takes listed edges, and a
        /// closed incident always carries a resolution.
        #[test]
        fn random_walks_follow_the_workflow(steps in prop::collection::vec((status(), resolution()), 0..40)) {
            let mut cur = Status::Open;
            let mut res: Option<Resolution> = None;
            for (to, r) in steps {
                match transition(cur, to, r) {
                    Ok(_) => {
                        prop_assert!(cur.next().contains(&to));
                        if to == Status::Closed { prop_assert!(r.is_some()); res = r; }
                        cur = to;
                    }
                    Err(TransitionError::ResolutionRequired) => prop_assert!(to == Status::Closed && r.is_none()),
                    Err(TransitionError::NotAllowed { .. }) => prop_assert!(!cur.next().contains(&to)),
                }
            }
            if cur == Status::Closed { prop_assert!(res.is_some()); }
        }

        #[test]
        fn parse_round_trips(s in status()) {
            prop_assert_eq!(Status::parse(s.as_str()), Some(s));
        }
    }
}
