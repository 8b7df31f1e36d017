//! Service plans and the database connection limit each one buys.

use std::fmt;
use std::str::FromStr;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Plan {
    Free,
    #[default]
    Starter,
    Professional,
    Enterprise,
}

impl Plan {
    pub const ALL: [Plan; 4] = [
        Plan::Free,
        Plan::Starter,
        Plan::Professional,
        Plan::Enterprise,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Plan::Free => "free",
            Plan::Starter => "starter",
            Plan::Professional => "professional",
            Plan::Enterprise => "enterprise",
        }
    }

    /// `CONNECTION LIMIT` of the tenant database.
    pub fn connection_limit(self) -> i32 {
        match self {
            Plan::Free => 5,
            Plan::Starter => 10,
            Plan::Professional => 25,
            Plan::Enterprise => 50,
        }
    }

    /// The accepted spellings, in plan order (for schema descriptions and validators).
    pub fn allowed_values() -> [&'static str; 4] {
        Plan::ALL.map(Plan::as_str)
    }
}

impl fmt::Display for Plan {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown plan {given:?}; allowed values are: free, starter, professional, enterprise")]
pub struct PlanParseError {
    pub given: String,
}

impl FromStr for Plan {
    type Err = PlanParseError;

    fn from_str(value: &str) -> Result<Plan, PlanParseError> {
        Plan::ALL
            .into_iter()
            .find(|plan| plan.as_str() == value)
            .ok_or_else(|| PlanParseError {
                given: value.to_owned(),
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_limits() {
        for plan in Plan::ALL {
            assert_eq!(plan.as_str().parse::<Plan>(), Ok(plan));
        }
        assert_eq!(
            Plan::ALL.map(Plan::connection_limit),
            [5, 10, 25, 50],
            "limits are part of the product definition"
        );
        assert_eq!(Plan::default(), Plan::Starter);
    }

    #[test]
    fn unknown_plan_lists_allowed_values() {
        let err = "Gold".parse::<Plan>().unwrap_err();
        let text = err.to_string();
        assert!(text.contains("\"Gold\""), "{text}");
        for allowed in Plan::allowed_values() {
            assert!(text.contains(allowed), "{text}");
        }
    }
}
