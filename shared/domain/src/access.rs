//! Who may do what with a package. The rules are pure functions of the caller and of the
//! grants that storage holds, so they can be tested as a table.

use serde::{Deserialize, Serialize};

use crate::{Role, Scopes, Slug, Username};

/// An authenticated caller: the token's owner and what the token allows.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Principal {
    pub kind: PrincipalKind,
    pub scopes: Scopes,
    /// The id of the token that authenticated the caller (never its secret).
    pub token_id: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum PrincipalKind {
    User {
        username: Username,
    },
    /// A CI pipeline of one repository: write access to its packages and nothing else.
    Pipeline {
        workspace: Slug,
        repository: Slug,
    },
}

impl Principal {
    /// The user behind the token, or `None` for a pipeline.
    pub fn user(&self) -> Option<&Username> {
        match &self.kind {
            PrincipalKind::User { username } => Some(username),
            PrincipalKind::Pipeline { .. } => None,
        }
    }

    /// The name the caller authenticates with (a pipeline's is derived from its repository).
    pub fn display_name(&self) -> String {
        match &self.kind {
            PrincipalKind::User { username } => username.to_string(),
            PrincipalKind::Pipeline {
                workspace,
                repository,
            } => pipeline_username(workspace, repository),
        }
    }

    pub fn is_site_admin(&self) -> bool {
        self.user().is_some_and(Username::is_site_admin)
    }
}

/// The username a pipeline token is presented with, as Bitbucket's BITBUCKET_PACKAGES_USERNAME.
pub fn pipeline_username(workspace: &Slug, repository: &Slug) -> String {
    format!("pipeline@{workspace}/{repository}")
}

/// What storage says a user holds in one workspace and one repository of it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Grants {
    /// Admin of the workspace: admin on every repository in it.
    pub workspace_admin: bool,
    /// The role granted on the repository itself.
    pub repository_role: Option<Role>,
}

/// The caller's effective role on one repository (and so on every package linked to it), or
/// `None` when the caller may not even know it exists; and the role held before the token's
/// scopes capped it, so that a refusal can say which of the two fell short.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Access {
    effective: Option<Role>,
    held: Option<Role>,
}

impl Access {
    pub const NONE: Access = Access {
        effective: None,
        held: None,
    };

    /// An access decided earlier by these rules and carried in a signed token.
    pub fn granted(role: Role) -> Self {
        Access {
            effective: Some(role),
            held: Some(role),
        }
    }

    pub fn role(self) -> Option<Role> {
        self.effective
    }

    pub fn allows(self, needed: Role) -> bool {
        self.effective.is_some_and(|role| role >= needed)
    }

    /// Why `needed` is refused on `workspace/repository`, in words that say what to change:
    /// the token (its role would do, its scope does not) or the role.
    pub fn refusal(self, needed: Role, workspace: &Slug, repository: &Slug) -> String {
        if self.held.is_some_and(|role| role >= needed) {
            format!(
                "this token is read-only: changes to repository {workspace}/{repository} need \
                 a token with the write:package scope"
            )
        } else {
            format!("you need the {needed} role on repository {workspace}/{repository}")
        }
    }
}

/// The effective role of `principal` on `repository` in `workspace`: the user's role there,
/// capped by the token's scopes. A pipeline token has write on its own repository only.
pub fn package_access(
    principal: &Principal,
    workspace: &Slug,
    repository: &Slug,
    grants: Grants,
) -> Access {
    let role = match &principal.kind {
        PrincipalKind::User { .. } => {
            let from_workspace = grants.workspace_admin.then_some(Role::Admin);
            from_workspace.max(grants.repository_role)
        }
        PrincipalKind::Pipeline {
            workspace: own_workspace,
            repository: own_repository,
        } => (own_workspace == workspace && own_repository == repository).then_some(Role::Write),
    };
    Access {
        effective: role.map(|role| role.min(principal.scopes.role_cap())),
        held: role,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn slug(s: &str) -> Slug {
        Slug::parse("slug", s).expect("valid slug")
    }

    fn user(scopes: Scopes) -> Principal {
        Principal {
            kind: PrincipalKind::User {
                username: Username::parse("username", "alice").expect("valid"),
            },
            scopes,
            token_id: "t".into(),
        }
    }

    #[test]
    fn a_read_scope_caps_an_admin_at_read() {
        let grants = Grants {
            workspace_admin: true,
            repository_role: None,
        };
        let access = package_access(&user(Scopes::READ), &slug("w"), &slug("r"), grants);
        assert_eq!(access.role(), Some(Role::Read));
        let access = package_access(&user(Scopes::WRITE), &slug("w"), &slug("r"), grants);
        assert_eq!(access.role(), Some(Role::Admin));
    }

    #[test]
    fn a_pipeline_writes_only_its_own_repository() {
        let pipeline = Principal {
            kind: PrincipalKind::Pipeline {
                workspace: slug("w"),
                repository: slug("r"),
            },
            scopes: Scopes::WRITE,
            token_id: "t".into(),
        };
        let all = Grants {
            workspace_admin: true,
            repository_role: Some(Role::Admin),
        };
        assert_eq!(
            package_access(&pipeline, &slug("w"), &slug("r"), Grants::default()).role(),
            Some(Role::Write)
        );
        assert_eq!(
            package_access(&pipeline, &slug("w"), &slug("other"), all),
            Access::NONE
        );
        assert_eq!(
            package_access(&pipeline, &slug("x"), &slug("r"), all),
            Access::NONE
        );
    }
}
