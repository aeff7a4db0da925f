//! Container registries' authentication (the Docker token flow). A registry answers a request
//! it wants credentials for with 401 and a challenge: `Bearer realm=…,service=…,scope=…` names
//! a token endpoint that gives a token for the scope (anonymously, or for the upstream's
//! username and password as Basic credentials), `Basic` wants those credentials on the request
//! itself. Tokens are kept per upstream and image until shortly before they expire, so the
//! layers of one image cost one token request.
//!
//! Like every client of this flow (docker, containerd, skopeo), the credentials go to the
//! realm the registry names, which is often another host (Docker Hub's is `auth.docker.io`);
//! the realm is held to the same rules as any URL (https, public addresses).

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use reqwest::StatusCode;
use reqwest::header::{HeaderValue, WWW_AUTHENTICATE};
use secrecy::ExposeSecret;
use serde::Deserialize;
use stowage_service::ReachableUpstream;
use url::Url;

use crate::{Credentials, FetchError, Fetched, UpstreamClient, authorization, fetched};

/// The largest token endpoint answer read.
const TOKEN_ANSWER_MAX: u64 = 64 * 1024;
/// How long a token lives when its endpoint does not say (the Docker token spec's default).
const DEFAULT_TOKEN_LIFE: Duration = Duration::from_secs(60);
/// A token is not used in its last seconds, which a request may outlast.
const TOKEN_MARGIN: Duration = Duration::from_secs(10);
/// Tokens kept at most; beyond it, the cache starts again empty.
const TOKENS_KEPT: usize = 1024;

#[derive(Default)]
pub(crate) struct TokenCache {
    tokens: Mutex<HashMap<(String, String), (String, Instant)>>,
}

impl TokenCache {
    fn get(&self, key: &(String, String)) -> Option<String> {
        let tokens = self
            .tokens
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        tokens
            .get(key)
            .filter(|(_, until)| *until > Instant::now())
            .map(|(token, _)| token.clone())
    }

    fn put(&self, key: (String, String), token: String, life: Duration) {
        let mut tokens = self
            .tokens
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        if tokens.len() >= TOKENS_KEPT {
            tokens.clear();
        }
        let until = Instant::now() + life.saturating_sub(TOKEN_MARGIN);
        tokens.insert(key, (token, until));
    }
}

/// A token endpoint's answer (`access_token` is OAuth's spelling of the same).
#[derive(Deserialize)]
struct TokenAnswer {
    token: Option<String>,
    access_token: Option<String>,
    expires_in: Option<u64>,
}

/// What a 401's challenge asks for.
enum Challenge {
    Bearer {
        realm: Url,
        service: Option<String>,
        scope: Option<String>,
    },
    Basic,
}

fn parse_challenge(header: &str) -> Option<Challenge> {
    let challenges = http_auth::parse_challenges(header).ok()?;
    let param = |challenge: &http_auth::ChallengeRef<'_>, name: &str| {
        challenge
            .params
            .iter()
            .find(|(key, _)| key.eq_ignore_ascii_case(name))
            .map(|(_, value)| value.to_unescaped())
    };
    for challenge in &challenges {
        if challenge.scheme.eq_ignore_ascii_case("bearer") {
            let realm = Url::parse(&param(challenge, "realm")?).ok()?;
            return Some(Challenge::Bearer {
                realm,
                service: param(challenge, "service"),
                scope: param(challenge, "scope"),
            });
        }
    }
    challenges
        .iter()
        .any(|challenge| challenge.scheme.eq_ignore_ascii_case("basic"))
        .then_some(Challenge::Basic)
}

/// The upstream's credentials: Basic with a username; a password alone is a token, sent as
/// a Bearer credential.
fn credentials(upstream: &ReachableUpstream) -> Option<Credentials<'_>> {
    let credentials = upstream.credentials.as_ref()?;
    let password = credentials.password.expose_secret();
    Some(match &credentials.username {
        Some(username) => Credentials::Basic { username, password },
        None => Credentials::Bearer(password),
    })
}

impl UpstreamClient {
    /// GETs `url` from the container registry `upstream`, whose image `image` it belongs to,
    /// answering the challenge of a 401 once.
    pub async fn get_from_registry(
        &self,
        upstream: &ReachableUpstream,
        image: &str,
        url: &Url,
        accept: &str,
    ) -> Result<Fetched, FetchError> {
        let key = (upstream.upstream.id.clone(), image.to_owned());
        let first = match self.tokens.get(&key) {
            Some(token) => Some(bearer(&token)),
            None => match credentials(upstream) {
                Some(token @ Credentials::Bearer(_)) => Some(authorization(&token)),
                _ => None,
            },
        };
        let response = self.send(url, first, accept).await?;
        if response.status() != StatusCode::UNAUTHORIZED {
            return fetched(response);
        }
        let challenge = response
            .headers()
            .get(WWW_AUTHENTICATE)
            .and_then(|value| value.to_str().ok())
            .and_then(parse_challenge);
        let retry = match challenge {
            Some(Challenge::Bearer {
                realm,
                service,
                scope,
            }) => {
                let (token, life) = self
                    .token(upstream, realm, service.as_deref(), scope.as_deref())
                    .await?;
                self.tokens.put(key, token.clone(), life);
                bearer(&token)
            }
            Some(Challenge::Basic) => match credentials(upstream) {
                Some(basic @ Credentials::Basic { .. }) => authorization(&basic),
                _ => return Err(FetchError::Status(401)),
            },
            None => return Err(FetchError::Status(401)),
        };
        fetched(self.send(url, Some(retry), accept).await?)
    }

    /// A token from `realm` for `scope`, and how long it lives.
    async fn token(
        &self,
        upstream: &ReachableUpstream,
        mut realm: Url,
        service: Option<&str>,
        scope: Option<&str>,
    ) -> Result<(String, Duration), FetchError> {
        {
            let mut query = realm.query_pairs_mut();
            if let Some(service) = service {
                query.append_pair("service", service);
            }
            if let Some(scope) = scope {
                query.append_pair("scope", scope);
            }
        }
        let basic = credentials(upstream).filter(|c| matches!(c, Credentials::Basic { .. }));
        let answer = self
            .get_bytes(&realm, basic, "application/json", TOKEN_ANSWER_MAX)
            .await
            .map_err(|error| match error {
                FetchError::Status(401 | 403) => FetchError::Status(401),
                other => other,
            })?;
        let answer: TokenAnswer = serde_json::from_slice(&answer).map_err(|_| {
            FetchError::Refused("the upstream's token endpoint answered no token".into())
        })?;
        let token = answer
            .token
            .or(answer.access_token)
            .filter(|token| !token.is_empty())
            .ok_or_else(|| {
                FetchError::Refused("the upstream's token endpoint answered no token".into())
            })?;
        let life = answer
            .expires_in
            .map_or(DEFAULT_TOKEN_LIFE, Duration::from_secs);
        Ok((token, life))
    }
}

fn bearer(token: &str) -> HeaderValue {
    authorization(&Credentials::Bearer(token))
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};

    use axum::Router;
    use axum::extract::State;
    use axum::http::{HeaderMap, StatusCode as Status};
    use axum::routing::get;
    use secrecy::SecretString;
    use stowage_domain::{PackageType, Slug, UpstreamReach, UpstreamUrl};
    use stowage_service::{UpstreamCredentials, UpstreamView};

    use super::*;

    /// A registry whose manifests want a token, given by its `/token` for `me:secret` only.
    async fn registry_wanting_a_token(token_requests: Arc<AtomicUsize>) -> String {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let base = format!("http://{}", listener.local_addr().expect("address"));
        let realm = format!("{base}/token");
        let manifest = move |headers: HeaderMap| {
            let realm = realm.clone();
            async move {
                if headers.get("authorization").and_then(|v| v.to_str().ok())
                    == Some("Bearer good-token")
                {
                    return (Status::OK, HeaderMap::new(), "manifest");
                }
                let mut challenge = HeaderMap::new();
                let value = format!(
                    "Bearer realm=\"{realm}\",service=\"test\",scope=\"repository:lib/app:pull\""
                );
                challenge.insert("www-authenticate", value.parse().expect("header"));
                (Status::UNAUTHORIZED, challenge, "")
            }
        };
        let token = |State(count): State<Arc<AtomicUsize>>,
                     axum::extract::RawQuery(query): axum::extract::RawQuery,
                     headers: HeaderMap| async move {
            count.fetch_add(1, Ordering::SeqCst);
            let expected = format!("Basic {}", {
                use base64::Engine;
                base64::engine::general_purpose::STANDARD.encode("me:secret")
            });
            let query = query.unwrap_or_default();
            if headers.get("authorization").and_then(|v| v.to_str().ok()) != Some(&expected)
                || !query.contains("scope=repository%3Alib%2Fapp%3Apull")
            {
                return (Status::UNAUTHORIZED, String::new());
            }
            (
                Status::OK,
                r#"{"token":"good-token","expires_in":300}"#.to_owned(),
            )
        };
        let router = Router::new()
            .route("/v2/lib/app/manifests/1", get(manifest))
            .route("/token", get(token))
            .with_state(token_requests);
        tokio::spawn(async move { axum::serve(listener, router).await.expect("serve") });
        base
    }

    fn upstream(base: &str, id: &str, password: Option<&str>) -> ReachableUpstream {
        let now = chrono::Utc::now();
        ReachableUpstream {
            upstream: UpstreamView {
                id: id.into(),
                repository: Slug::parse("repository", "hub").expect("slug"),
                kind: PackageType::Container,
                url: UpstreamUrl::parse("url", base, UpstreamReach::AnyAddress).expect("url"),
                username: password.map(|_| "me".into()),
                has_password: password.is_some(),
                priority: 100,
                created_at: now,
                created_by: "test".into(),
                updated_at: now,
            },
            credentials: password.map(|password| UpstreamCredentials {
                username: Some("me".into()),
                password: SecretString::from(password.to_owned()),
            }),
        }
    }

    #[tokio::test]
    async fn a_bearer_challenge_is_answered_with_a_token_kept_for_the_next_request() {
        let token_requests = Arc::new(AtomicUsize::new(0));
        let base = registry_wanting_a_token(token_requests.clone()).await;
        let client = UpstreamClient::new(UpstreamReach::AnyAddress);
        let url = Url::parse(&format!("{base}/v2/lib/app/manifests/1")).expect("url");
        for _ in 0..3 {
            let fetched = client
                .get_from_registry(
                    &upstream(&base, "a", Some("secret")),
                    "lib/app",
                    &url,
                    "*/*",
                )
                .await
                .expect("with the token");
            let mut body = fetched.body;
            let mut all = Vec::new();
            while let Some(chunk) = futures_util::StreamExt::next(&mut body).await {
                all.extend_from_slice(&chunk.expect("chunk"));
            }
            assert_eq!(all, b"manifest");
        }
        assert_eq!(
            token_requests.load(Ordering::SeqCst),
            1,
            "the token is kept"
        );

        for (id, password) in [("b", Some("wrong")), ("c", None)] {
            let refused = client
                .get_from_registry(&upstream(&base, id, password), "lib/app", &url, "*/*")
                .await;
            assert!(
                matches!(refused, Err(FetchError::Status(401))),
                "{password:?}"
            );
        }
    }

    #[test]
    fn challenges_are_read_as_registries_send_them() {
        let docker_hub = "Bearer realm=\"https://auth.docker.io/token\",service=\"registry.docker.io\",scope=\"repository:library/alpine:pull\"";
        match parse_challenge(docker_hub) {
            Some(Challenge::Bearer {
                realm,
                service,
                scope,
            }) => {
                assert_eq!(realm.as_str(), "https://auth.docker.io/token");
                assert_eq!(service.as_deref(), Some("registry.docker.io"));
                assert_eq!(scope.as_deref(), Some("repository:library/alpine:pull"));
            }
            _ => panic!("a Bearer challenge"),
        }
        assert!(matches!(
            parse_challenge("Basic realm=\"Registry Realm\""),
            Some(Challenge::Basic)
        ));
        assert!(parse_challenge("Bearer service=\"no realm\"").is_none());
        assert!(parse_challenge("Bearer realm=\"not a url\"").is_none());
        assert!(parse_challenge("Negotiate").is_none());
    }
}
