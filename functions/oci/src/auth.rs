//! Who is calling, for the registry: HTTP Basic or an API token, or a short-lived *registry
//! token* from the Docker token flow.
//!
//! The token endpoint (`GET /v2/token`) checks the credential once, decides for each
//! requested image what the caller may do (by the same rules as every other request), and
//! signs that into a token valid for [`REGISTRY_TOKEN_SECONDS`]. Requests that carry it need
//! no credential lookup, and an image it grants can be opened in one batch read.

use http::{HeaderMap, HeaderValue};
use serde::{Deserialize, Serialize};
use stowage_domain::{PackageType, Principal, Role, Slug, TOKEN_PREFIX};
use stowage_http::{AppState, credential_from_headers};
use stowage_service::{Entity, Error, ItemKey, OpenPackage, Opened, ReachableUpstream, Registry};

use crate::error::{OciError, OciResult};
use crate::route::ImageName;

/// How long a registry token lives: the Docker token spec's floor, and the most a revoked
/// credential or role may go on working.
pub const REGISTRY_TOKEN_SECONDS: i64 = 60;
const TOKEN_PURPOSE: &str = "oci-registry-token";

/// What a registry token grants on one image.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Grant {
    pub name: String,
    /// The repository the package is linked to when the token was issued.
    pub repository: Slug,
    pub role: Role,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct Claims {
    principal: Principal,
    grants: Vec<Grant>,
    /// Unix seconds.
    expires: i64,
}

/// The authenticated caller of a registry request.
#[derive(Debug, Clone)]
pub struct Caller {
    pub principal: Principal,
    /// Set when the caller came with a registry token.
    pub grants: Vec<Grant>,
}

/// Issues a registry token for `principal` with `grants`.
pub async fn issue(
    registry: &Registry,
    principal: Principal,
    grants: Vec<Grant>,
) -> OciResult<String> {
    let claims = Claims {
        principal,
        grants,
        expires: registry.now().timestamp() + REGISTRY_TOKEN_SECONDS,
    };
    Ok(stowage_http::sealed::seal(registry, TOKEN_PURPOSE, &claims).await?)
}

async fn verify(registry: &Registry, token: &str) -> OciResult<Caller> {
    let claims: Claims = stowage_http::sealed::open(registry, TOKEN_PURPOSE, token)
        .await?
        .ok_or_else(OciError::unauthorized)?;
    if claims.expires <= registry.now().timestamp() {
        return Err(OciError::unauthorized());
    }
    Ok(Caller {
        principal: claims.principal,
        grants: claims.grants,
    })
}

/// The caller of a request, or `None` when it carries no credential.
pub async fn caller(state: &AppState, headers: &HeaderMap) -> OciResult<Option<Caller>> {
    if let Some(token) = registry_token(headers) {
        return verify(&state.registry, token).await.map(Some);
    }
    match credential_from_headers(headers)? {
        Some(credential) => {
            let principal = state.registry.authenticate(&credential).await?;
            Ok(Some(Caller {
                principal,
                grants: Vec::new(),
            }))
        }
        None => Ok(None),
    }
}

/// A bearer credential that is not an API token is a registry token.
fn registry_token(headers: &HeaderMap) -> Option<&str> {
    let value = headers.get(http::header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    let token = token.trim();
    (scheme.eq_ignore_ascii_case("bearer") && !token.starts_with(TOKEN_PREFIX)).then_some(token)
}

impl Caller {
    /// Opens the image's package for an operation that needs `needed`, reading `extra` items
    /// in the same round trip. A registry token's grant saves the role lookups: one batch read.
    pub async fn open(
        &self,
        registry: &Registry,
        name: &ImageName,
        needed: Role,
        extra: &[ItemKey],
    ) -> Result<OpenPackage, Error> {
        if let Some(open) = self.open_granted(registry, name, needed, extra).await? {
            return Ok(open);
        }
        registry
            .open_package(
                &self.principal,
                &name.workspace,
                PackageType::Container,
                &name.path,
                needed,
                extra,
            )
            .await
    }
}

/// What a read of an image finds.
pub enum Source {
    /// Its package (local, or a cached copy of an upstream's).
    Package(OpenPackage),
    /// No image of that name is in the workspace: the container upstreams that may have it,
    /// in order, never empty.
    Upstreams(Vec<ReachableUpstream>),
}

impl Caller {
    /// The image's package as a registry token's grant of `needed` opens it, in one batch
    /// read (a read of a cached image records its use); `None` without such a grant, or when
    /// the package is no longer where the grant saw it.
    async fn open_granted(
        &self,
        registry: &Registry,
        name: &ImageName,
        needed: Role,
        extra: &[ItemKey],
    ) -> Result<Option<OpenPackage>, Error> {
        let full = name.full();
        let Some(grant) = self
            .grants
            .iter()
            .find(|grant| grant.name == full && grant.role >= needed)
        else {
            return Ok(None);
        };
        let (workspace, kind, path) = (&name.workspace, PackageType::Container, &name.path);
        if needed == Role::Read {
            registry
                .open_granted_for_read(workspace, kind, path, &grant.repository, grant.role, extra)
                .await
        } else {
            registry
                .open_package_granted(workspace, kind, path, &grant.repository, grant.role, extra)
                .await
        }
    }

    /// Opens the image's package for a read, like [`Caller::open`]; when the workspace has no
    /// image of that name, the container upstreams (those the caller may read) of the
    /// repository its path starts with: `acme/hub/library/alpine` is `library/alpine` from
    /// the upstreams of repository `hub`.
    pub async fn open_or_upstreams(
        &self,
        registry: &Registry,
        name: &ImageName,
        extra: &[ItemKey],
    ) -> Result<Source, Error> {
        if let Some(open) = self.open_granted(registry, name, Role::Read, extra).await? {
            return Ok(Source::Package(open));
        }
        let opened = registry
            .open_or_upstreams(
                &self.principal,
                &name.workspace,
                PackageType::Container,
                &name.path,
                extra,
            )
            .await?;
        match opened {
            Opened::Package(open) => Ok(Source::Package(open)),
            Opened::Upstreams(upstreams) => {
                let repository = name.upstream_image().map(|(repository, _)| repository);
                let upstreams: Vec<ReachableUpstream> = upstreams
                    .into_iter()
                    .filter(|up| Some(up.upstream.repository.as_str()) == repository)
                    .collect();
                if upstreams.is_empty() {
                    Err(Error::NotFound(Entity::Package))
                } else {
                    Ok(Source::Upstreams(upstreams))
                }
            }
        }
    }
}

/// The actions of the Docker token flow that a role allows.
fn allowed_actions(role: Option<Role>) -> &'static [&'static str] {
    match role {
        Some(Role::Write | Role::Admin) => &["pull", "push", "delete"],
        Some(Role::Read) => &["pull"],
        None => &[],
    }
}

/// `repository:<name>:<actions>` → the name and its actions.
fn parse_scope(scope: &str) -> Option<(&str, Vec<&str>)> {
    let rest = scope.strip_prefix("repository:")?;
    let (name, actions) = rest.rsplit_once(':')?;
    Some((name, actions.split(',').filter(|a| !a.is_empty()).collect()))
}

/// `GET /v2/token?service=…&scope=…`: a registry token for what the caller may do with the
/// images it names. Images the caller may not read are simply not granted.
pub async fn token_endpoint(
    state: &AppState,
    headers: &HeaderMap,
    query: Option<&str>,
) -> OciResult<serde_json::Value> {
    let credential = credential_from_headers(headers)?.ok_or_else(OciError::unauthorized)?;
    let principal = state.registry.authenticate(&credential).await?;
    let scopes: Vec<String> = url::form_urlencoded::parse(query.unwrap_or("").as_bytes())
        .filter(|(key, _)| key == "scope")
        .flat_map(|(_, value)| value.split(' ').map(str::to_owned).collect::<Vec<_>>())
        .collect();
    let caller = Caller {
        principal: principal.clone(),
        grants: Vec::new(),
    };
    let mut grants = Vec::new();
    let mut access = Vec::new();
    for scope in &scopes {
        let Some((name, actions)) = parse_scope(scope) else {
            continue;
        };
        let Ok(image) = ImageName::parse(name) else {
            continue;
        };
        let granted = match caller.open(&state.registry, &image, Role::Read, &[]).await {
            Ok(open) => {
                let role = open.access.role().filter(|role| *role >= Role::Read);
                if let Some(role) = role {
                    grants.push(Grant {
                        name: image.full(),
                        repository: open.package.repository.clone(),
                        role,
                    });
                }
                role
            }
            Err(Error::NotFound(_) | Error::Forbidden(_)) => None,
            Err(other) => return Err(other.into()),
        };
        let allowed = allowed_actions(granted);
        let given: Vec<&str> = if actions.contains(&"*") {
            allowed.to_vec()
        } else {
            actions
                .iter()
                .copied()
                .filter(|a| allowed.contains(a))
                .collect()
        };
        access.push(serde_json::json!({ "type": "repository", "name": name, "actions": given }));
    }
    let token = issue(&state.registry, principal, grants).await?;
    Ok(serde_json::json!({
        "token": token,
        "access_token": token,
        "expires_in": REGISTRY_TOKEN_SECONDS,
        "issued_at": state.registry.now().to_rfc3339(),
        "access": access,
    }))
}

/// The `WWW-Authenticate` challenge of a 401: where to get a token, and for what.
pub fn challenge(base_url: &str, name: Option<&ImageName>, push: bool) -> HeaderValue {
    let service = base_url.split("://").nth(1).unwrap_or(base_url);
    let mut value = format!("Bearer realm=\"{base_url}/v2/token\",service=\"{service}\"");
    if let Some(name) = name {
        let actions = if push { "pull,push" } else { "pull" };
        value.push_str(&format!(",scope=\"repository:{}:{actions}\"", name.full()));
    }
    HeaderValue::from_str(&value)
        .unwrap_or_else(|_| HeaderValue::from_static("Bearer realm=\"/v2/token\""))
}
