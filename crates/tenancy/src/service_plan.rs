//! Service plans and the database connection limit each one buys.

use std::fmt;
use std::str::FromStr;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum ServicePlan {
    Free,
    #[default]
    Starter,
    Professional,
    Enterprise,
}

impl ServicePlan {
    pub const ALL: [ServicePlan; 4] = [
        ServicePlan::Free,
        ServicePlan::Starter,
        ServicePlan::Professional,
        ServicePlan::Enterprise,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            ServicePlan::Free => "free",
            ServicePlan::Starter => "starter",
            ServicePlan::Professional => "professional",
            ServicePlan::Enterprise => "enterprise",
        }
    }

    /// `CONNECTION LIMIT` of the tenant database.
    pub fn connection_limit(self) -> i32 {
        match self {
            ServicePlan::Free => 5,
            ServicePlan::Starter => 10,
            ServicePlan::Professional => 25,
            ServicePlan::Enterprise => 50,
        }
    }

    /// The accepted spellings, in plan order (for schema descriptions and validators).
    pub fn allowed_values() -> [&'static str; 4] {
        ServicePlan::ALL.map(ServicePlan::as_str)
    }
}

impl fmt::Display for ServicePlan {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown plan {given:?}; allowed values are: free, starter, professional, enterprise")]
pub struct ServicePlanParseError {
    pub given: String,
}

impl FromStr for ServicePlan {
    type Err = ServicePlanParseError;

    fn from_str(value: &str) -> Result<ServicePlan, ServicePlanParseError> {
        ServicePlan::ALL
            .into_iter()
            .find(|plan| plan.as_str() == value)
            .ok_or_else(|| ServicePlanParseError {
                given: value.to_owned(),
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_limits() {
        for plan in ServicePlan::ALL {
            assert_eq!(plan.as_str().parse::<ServicePlan>(), Ok(plan));
        }
        assert_eq!(
            ServicePlan::ALL.map(ServicePlan::connection_limit),
            [5, 10, 25, 50],
            "limits are part of the product definition"
        );
        assert_eq!(ServicePlan::default(), ServicePlan::Starter);
    }

    #[test]
    fn unknown_plan_lists_allowed_values() {
        let err = "Gold".parse::<ServicePlan>().unwrap_err();
        let text = err.to_string();
        assert!(text.contains("\"Gold\""), "{text}");
        for allowed in ServicePlan::allowed_values() {
            assert!(text.contains(allowed), "{text}");
        }
    }
}
