use serde::{Deserialize, Serialize};
use std::{fmt, str::FromStr};

/// Staff roles, from most to least powerful. Each includes everything the ones below may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    Viewer,
    Analyst,
    Marketer,
    Admin,
    Owner,
}

impl Role {
    pub const ALL: [Role; 5] = [Role::Owner, Role::Admin, Role::Marketer, Role::Analyst, Role::Viewer];

    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Owner => "owner",
            Self::Admin => "admin",
            Self::Marketer => "marketer",
            Self::Analyst => "analyst",
            Self::Viewer => "viewer",
        }
    }

    /// Whether someone holding `self` may hand out `granted`: owners grant anything, admins
    /// anything but owner, the others nothing.
    pub fn may_grant(self, granted: Role) -> bool {
        match self {
            Self::Owner => true,
            Self::Admin => granted != Self::Owner,
            _ => false,
        }
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Role {
    type Err = crate::TenancyError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Role::ALL
            .into_iter()
            .find(|r| r.as_str().eq_ignore_ascii_case(s.trim()))
            .ok_or_else(|| crate::TenancyError::invalid(format!("unknown role `{s}`")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roles_are_ordered_and_grants_follow_rank() {
        assert!(Role::Owner > Role::Admin && Role::Admin > Role::Marketer);
        assert!(Role::Marketer > Role::Analyst && Role::Analyst > Role::Viewer);
        assert!(Role::Admin.may_grant(Role::Admin));
        assert!(!Role::Admin.may_grant(Role::Owner));
        assert!(!Role::Marketer.may_grant(Role::Viewer));
        assert_eq!("ADMIN".parse::<Role>().unwrap(), Role::Admin);
        assert!("root".parse::<Role>().is_err());
    }
}
