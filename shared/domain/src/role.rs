use std::fmt;

use serde::{Deserialize, Serialize};

use crate::Invalid;

/// A role on a repository. Roles are ordered: each includes the ones before it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Consume packages.
    Read,
    /// Publish and delete versions.
    Write,
    /// Create and delete packages, grant roles, mint pipeline tokens.
    Admin,
}

impl Role {
    pub fn parse(field: &'static str, value: &str) -> Result<Self, Invalid> {
        match value {
            "read" => Ok(Self::Read),
            "write" => Ok(Self::Write),
            "admin" => Ok(Self::Admin),
            other => Err(Invalid::new(
                field,
                format!("must be \"read\", \"write\" or \"admin\" (got {other:?})"),
            )),
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Read => "read",
            Self::Write => "write",
            Self::Admin => "admin",
        }
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A token scope.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Scope {
    #[serde(rename = "read:package")]
    ReadPackage,
    #[serde(rename = "write:package")]
    WritePackage,
}

impl Scope {
    pub fn parse(field: &'static str, value: &str) -> Result<Self, Invalid> {
        match value {
            "read:package" => Ok(Self::ReadPackage),
            "write:package" => Ok(Self::WritePackage),
            other => Err(Invalid::new(
                field,
                format!("must be \"read:package\" or \"write:package\" (got {other:?})"),
            )),
        }
    }
}

/// The scopes of a token. `write:package` implies `read:package`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(into = "Vec<Scope>", from = "Vec<Scope>")]
pub struct Scopes {
    write: bool,
}

impl Scopes {
    pub const READ: Scopes = Scopes { write: false };
    pub const WRITE: Scopes = Scopes { write: true };

    /// Parses a non-empty list of scope names.
    pub fn parse(field: &'static str, values: &[String]) -> Result<Self, Invalid> {
        if values.is_empty() {
            return Err(Invalid::new(
                field,
                "at least one of \"read:package\", \"write:package\" is required",
            ));
        }
        let scopes = values
            .iter()
            .map(|value| Scope::parse(field, value))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(scopes.into())
    }

    pub fn allows_write(self) -> bool {
        self.write
    }

    /// The highest role a token with these scopes can exercise, whatever its user's role.
    pub fn role_cap(self) -> Role {
        if self.write { Role::Admin } else { Role::Read }
    }
}

impl From<Vec<Scope>> for Scopes {
    fn from(scopes: Vec<Scope>) -> Self {
        Self {
            write: scopes.contains(&Scope::WritePackage),
        }
    }
}

impl From<Scopes> for Vec<Scope> {
    fn from(scopes: Scopes) -> Self {
        if scopes.write {
            vec![Scope::ReadPackage, Scope::WritePackage]
        } else {
            vec![Scope::ReadPackage]
        }
    }
}
