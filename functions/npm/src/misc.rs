//! The rest of what npm asks of a registry: search, whoami, ping, audits and login.

use serde_json::{Value, json};
use stowage_domain::{PackageType, Principal, Slug, TokenSecret};
use stowage_http::query_param;
use stowage_service::{Credential, ItemKey, Registry};

use crate::error::{NpmError, NpmResult};
use crate::records::{DistTags, NpmVersions};

const SEARCH_SIZE_MAX: usize = 250;

/// `GET /-/v1/search?text=&size=&from=`: the npm packages of the workspace the caller can
/// read whose name contains the text, with their latest version.
pub async fn search(
    registry: &Registry,
    caller: &Principal,
    workspace: &Slug,
    query: Option<&str>,
) -> NpmResult<Value> {
    let text = query_param(query, "text")
        .unwrap_or_default()
        .to_lowercase();
    let size = query_param(query, "size")
        .and_then(|s| s.parse().ok())
        .unwrap_or(20usize)
        .min(SEARCH_SIZE_MAX);
    let from = query_param(query, "from")
        .and_then(|s| s.parse().ok())
        .unwrap_or(0usize);
    let mut packages: Vec<_> = registry
        .list_packages(caller, workspace.as_str())
        .await?
        .into_iter()
        .filter(|p| p.kind == PackageType::Npm && p.name.as_str().contains(text.as_str()))
        .collect();
    packages.sort_by(|a, b| a.name.cmp(&b.name));
    let total = packages.len();
    let page: Vec<_> = packages.into_iter().skip(from).take(size).collect();
    let tag_keys: Vec<ItemKey> = page
        .iter()
        .map(|p| ItemKey::of_package::<DistTags>(p, "latest"))
        .collect();
    let latest = registry.read_records::<DistTags>(&tag_keys).await?;
    let version_keys: Vec<ItemKey> = page
        .iter()
        .zip(&latest)
        .filter_map(|(p, tag)| {
            tag.as_ref()
                .map(|t| ItemKey::of_package::<NpmVersions>(p, &t.version))
        })
        .collect();
    let mut versions = registry
        .read_records::<NpmVersions>(&version_keys)
        .await?
        .into_iter();
    let mut objects = Vec::new();
    for (package, tag) in page.iter().zip(&latest) {
        let record = match tag {
            Some(_) => versions.next().flatten(),
            None => None,
        };
        let Some(record) = record else { continue };
        let field = |name: &str| record.manifest.get(name).cloned().unwrap_or(Value::Null);
        objects.push(json!({
            "package": {
                "name": package.name.as_str(),
                "scope": package.name.as_str().strip_prefix('@').and_then(|s| s.split('/').next()).unwrap_or("unscoped"),
                "version": record.version,
                "description": field("description"),
                "keywords": field("keywords"),
                "date": record.published_at,
                "links": {},
                "publisher": { "username": record.published_by, "email": record.published_by_email },
                "maintainers": [{ "username": record.published_by, "email": record.published_by_email }],
            },
            "score": { "final": 1.0, "detail": { "quality": 1.0, "popularity": 1.0, "maintenance": 1.0 } },
            "searchScore": 1.0,
        }));
    }
    Ok(json!({ "objects": objects, "total": total, "time": registry.now().to_rfc3339() }))
}

pub fn whoami(caller: &Principal) -> Value {
    json!({ "username": caller.display_name() })
}

/// The audit endpoints: no advisories are known, so there is nothing to report.
pub fn audit(quick: bool) -> Value {
    if !quick {
        return json!({});
    }
    json!({
        "actions": [],
        "advisories": {},
        "muted": [],
        "metadata": {
            "vulnerabilities": { "info": 0, "low": 0, "moderate": 0, "high": 0, "critical": 0 },
            "dependencies": 0, "devDependencies": 0, "optionalDependencies": 0, "totalDependencies": 0,
        },
    })
}

/// What npm's legacy login sends; only the password is read.
#[derive(serde::Deserialize)]
struct LoginBody {
    password: Option<String>,
}

/// `PUT /-/user/org.couchdb.user:<name>` (`npm login --auth-type=legacy`): succeeds when the
/// password is one of the user's API tokens, and hands that token back for npm to keep.
/// Stowage never takes account passwords.
pub async fn login(
    registry: &Registry,
    username: &str,
    body: &[u8],
    basic: Option<Credential>,
) -> NpmResult<Value> {
    let refusal = || {
        NpmError::new(
            http::StatusCode::UNAUTHORIZED,
            "log in with your Stowage username (or e-mail) and an API token as the password",
        )
    };
    let credential = match basic {
        Some(credential) => credential,
        None => {
            let body: LoginBody = serde_json::from_slice(body)
                .map_err(|_| NpmError::bad_request("the login body is not npm's login document"))?;
            Credential::Basic {
                username: username.to_owned(),
                secret: TokenSecret::from_presented(body.password.ok_or_else(refusal)?),
            }
        }
    };
    let token = match &credential {
        Credential::Basic { secret, .. } | Credential::Bearer(secret) => secret.expose().to_owned(),
    };
    registry
        .authenticate(&credential)
        .await
        .map_err(|_| refusal())?;
    Ok(
        json!({ "ok": true, "id": format!("org.couchdb.user:{username}"), "rev": "1-0", "token": token }),
    )
}
