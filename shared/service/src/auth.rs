//! Authentication: from a presented credential to a [`Principal`], with at most one metadata
//! read per token per cache period.

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};

use stowage_domain::{Principal, PrincipalKind, TokenSecret, pipeline_username};

use crate::records::{self, TokenOwner, TokenRecord, keys};
use crate::{Error, Registry, Result};

/// Tokens remembered at most; beyond this the least used are dropped.
const CACHE_CAPACITY: u64 = 10_000;

/// A credential as a client presents it.
#[derive(Debug, Clone)]
pub enum Credential {
    /// HTTP Basic: a username or e-mail address, and a token as the password.
    Basic {
        username: String,
        secret: TokenSecret,
    },
    /// `Authorization: Bearer <token>`.
    Bearer(TokenSecret),
}

/// Verified tokens by the hash of their secret, for a short time.
pub(crate) struct CredentialCache(moka::sync::Cache<String, Arc<TokenRecord>>);

impl CredentialCache {
    pub(crate) fn new(ttl: Duration) -> Self {
        Self(
            moka::sync::Cache::builder()
                .max_capacity(CACHE_CAPACITY)
                .time_to_live(ttl)
                .build(),
        )
    }
}

impl Registry {
    /// Checks a credential: the token must exist (not revoked), not be expired, and, for Basic,
    /// belong to the username given (a user's name or e-mail, or a pipeline's name).
    pub async fn authenticate(&self, credential: &Credential) -> Result<Principal> {
        let token = self.verify(credential).await?;
        Ok(principal_of(&token))
    }

    /// Signs a user in to the web interface: the credential must be a user's token (a
    /// pipeline's is for its builds only). Returns the user and when the token expires (the
    /// session ends then at the latest).
    pub async fn sign_in(&self, credential: &Credential) -> Result<(Principal, DateTime<Utc>)> {
        let token = self.verify(credential).await?;
        match token.owner {
            TokenOwner::User { .. } => Ok((principal_of(&token), token.expires_at)),
            TokenOwner::Pipeline { .. } => Err(Error::forbidden(
                "a pipeline token cannot sign in: use one of your own tokens",
            )),
        }
    }

    /// The token a credential presents, if it is valid now.
    async fn verify(&self, credential: &Credential) -> Result<Arc<TokenRecord>> {
        let (secret, username) = match credential {
            Credential::Basic { username, secret } => (secret, Some(username.as_str())),
            Credential::Bearer(secret) => (secret, None),
        };
        let hash = secret.hash();
        let token = match self.credentials.0.get(hash.as_str()) {
            Some(token) => token,
            None => {
                let (token, _) = records::load::<TokenRecord>(self.metadata(), &keys::token(&hash))
                    .await?
                    .ok_or(Error::Unauthenticated)?;
                let token = Arc::new(token);
                self.credentials
                    .0
                    .insert(hash.as_str().to_owned(), Arc::clone(&token));
                token
            }
        };
        if let Some(username) = username
            && !presented_name_matches(&token.owner, username)
        {
            return Err(Error::Unauthenticated);
        }
        if token.expires_at <= self.now() {
            return Err(Error::TokenExpired(token.expires_at));
        }
        Ok(token)
    }

    /// Forgets a token in this instance's cache at once (other instances within the TTL).
    pub(crate) fn forget_credential(&self, hash: &stowage_domain::TokenHash) {
        self.credentials.0.invalidate(hash.as_str());
    }
}

fn presented_name_matches(owner: &TokenOwner, presented: &str) -> bool {
    match owner {
        TokenOwner::User { username, email } => {
            presented == username.as_str() || presented.eq_ignore_ascii_case(email.as_str())
        }
        TokenOwner::Pipeline {
            workspace,
            repository,
        } => presented == pipeline_username(workspace, repository),
    }
}

pub(crate) fn principal_of(token: &TokenRecord) -> Principal {
    let kind = match &token.owner {
        TokenOwner::User { username, .. } => PrincipalKind::User {
            username: username.clone(),
        },
        TokenOwner::Pipeline {
            workspace,
            repository,
        } => PrincipalKind::Pipeline {
            workspace: workspace.clone(),
            repository: repository.clone(),
        },
    };
    Principal {
        kind,
        scopes: token.scopes,
        token_id: token.id.clone(),
    }
}
