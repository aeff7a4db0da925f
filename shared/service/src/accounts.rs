//! Users and their API tokens.

use chrono::{DateTime, Months, Utc};
use stowage_domain::{
    Email, Invalid, Principal, PrincipalKind, Scopes, TokenHash, TokenSecret, Username,
};
use stowage_storage::{Condition, MetadataError, Put, Query, Write};

use crate::records::{
    self, EmailRecord, TokenOwner, TokenRecord, TokenRef, UserRecord, encode, keys,
};
use crate::{Entity, Error, Registry, Result};

const TOKEN_NAME_MAX: usize = 100;
/// The longest a user's token may live.
const TOKEN_MAX_LIFETIME: Months = Months::new(12);
/// The most days `expires_in_days` may give (always within [`TOKEN_MAX_LIFETIME`]).
const TOKEN_MAX_DAYS: u32 = 365;
const LIST_PAGE: usize = 100;

#[derive(Debug, Clone)]
pub struct NewUser {
    pub username: Username,
    pub email: Email,
}

#[derive(Debug, Clone)]
pub struct NewToken {
    /// Trimmed and checked here: 1 to 100 characters, none of them control characters.
    pub name: String,
    pub scopes: Scopes,
    /// In the future, at most a year ahead (checked here, on the service's clock).
    pub expires: TokenExpiry,
}

/// When a new token expires: a moment, or a number of days from now (on the service's clock,
/// so a script need not compute a date).
#[derive(Debug, Clone, Copy)]
pub enum TokenExpiry {
    At(DateTime<Utc>),
    InDays(u32),
}

/// A token just minted: its description, and its secret, shown this once.
#[derive(Debug)]
pub struct IssuedToken {
    pub token: TokenRef,
    pub secret: TokenSecret,
}

/// The site admin's first token, as configuration gives it.
#[derive(Debug)]
pub enum BootstrapToken {
    /// Mint one and return it, to be shown once.
    Generate,
    /// Exactly this secret.
    Secret(TokenSecret),
    /// The secret whose SHA-256 this is; the secret itself never reaches the server.
    Sha256(TokenHash),
}

/// The user behind a caller allowed to change things: a user's token with `write:package`.
pub(crate) fn acting_user(caller: &Principal) -> Result<&Username> {
    let Some(username) = caller.user() else {
        return Err(Error::forbidden(
            "a pipeline token can only read and publish the packages of its repository",
        ));
    };
    if !caller.scopes.allows_write() {
        return Err(Error::forbidden(
            "this token is read-only: changes need a token with the write:package scope",
        ));
    }
    Ok(username)
}

fn token_name(name: &str) -> Result<String, Invalid> {
    let trimmed = name.trim();
    if trimmed.is_empty() || trimmed.chars().count() > TOKEN_NAME_MAX {
        return Err(Invalid::new(
            "name",
            format!("must be 1 to {TOKEN_NAME_MAX} characters"),
        ));
    }
    if trimmed.chars().any(char::is_control) {
        return Err(Invalid::new("name", "must not contain control characters"));
    }
    Ok(trimmed.to_owned())
}

fn token_expiry(expiry: TokenExpiry, now: DateTime<Utc>) -> Result<DateTime<Utc>, Invalid> {
    let expires_at = match expiry {
        TokenExpiry::At(at) => at,
        TokenExpiry::InDays(days @ 1..=TOKEN_MAX_DAYS) => now + chrono::Days::new(days.into()),
        TokenExpiry::InDays(_) => {
            return Err(Invalid::new(
                "expires_in_days",
                format!("must be 1 to {TOKEN_MAX_DAYS}"),
            ));
        }
    };
    if expires_at <= now {
        return Err(Invalid::new("expires_at", "must be in the future"));
    }
    let latest = now + TOKEN_MAX_LIFETIME;
    if expires_at > latest {
        return Err(Invalid::new("expires_at", "must be at most one year ahead"));
    }
    Ok(expires_at)
}

impl Registry {
    /// A user's e-mail address, if the user exists.
    pub async fn email_of(&self, username: &Username) -> Result<Option<String>> {
        let user = records::load::<UserRecord>(self.metadata(), &keys::user(username)).await?;
        Ok(user.map(|(user, _)| user.email.to_string()))
    }

    /// Creates a user (site admin only).
    pub async fn create_user(&self, caller: &Principal, input: NewUser) -> Result<UserRecord> {
        let acting = acting_user(caller)?;
        let NewUser { username, email } = input;
        if !acting.is_site_admin() {
            return Err(Error::forbidden("only the site admin can create users"));
        }
        let user = UserRecord {
            username,
            email,
            created_at: self.now(),
        };
        self.insert_user(&user, Vec::new()).await?;
        Ok(user)
    }

    /// Writes a new user and its e-mail claim, with `extra` writes, all or nothing.
    async fn insert_user(&self, user: &UserRecord, extra: Vec<Write>) -> Result<()> {
        let email_claim = EmailRecord {
            username: user.username.clone(),
        };
        let mut writes = vec![
            Write::Put(Put::new(keys::user(&user.username), encode(user)).when(Condition::Absent)),
            Write::Put(
                Put::new(keys::email(&user.email), encode(&email_claim)).when(Condition::Absent),
            ),
        ];
        writes.extend(extra);
        match self.transact(writes).await {
            Ok(()) => Ok(()),
            Err(MetadataError::ConditionFailed { index: Some(1) }) => Err(Error::conflict(
                format!("the e-mail address {} is already in use", user.email),
            )),
            Err(MetadataError::ConditionFailed { .. }) => Err(Error::conflict(format!(
                "the username {} is taken",
                user.username
            ))),
            Err(other) => Err(other.into()),
        }
    }

    /// Mints a token for `for_user` (the site admin may mint for anyone), or for the caller.
    pub async fn create_token(
        &self,
        caller: &Principal,
        for_user: Option<&str>,
        input: NewToken,
    ) -> Result<IssuedToken> {
        let acting = acting_user(caller)?;
        let owner = match for_user {
            Some(name) => {
                Username::parse("username", name).map_err(|_| Error::NotFound(Entity::User))?
            }
            None => acting.clone(),
        };
        if &owner != acting && !acting.is_site_admin() {
            return Err(Error::forbidden("you can only create tokens for yourself"));
        }
        let now = self.now();
        let name = token_name(&input.name)?;
        let scopes = input.scopes;
        let expires_at = token_expiry(input.expires, now)?;
        let (user, user_version) =
            records::load::<UserRecord>(self.metadata(), &keys::user(&owner))
                .await?
                .ok_or(Error::NotFound(Entity::User))?;
        let issued = mint(name, scopes, expires_at, now);
        let writes = vec![
            Write::Check {
                key: keys::user(&owner),
                condition: Condition::Version(user_version),
            },
            Write::Put(
                Put::new(
                    keys::token(&issued.token.hash),
                    encode(&user_token_record(&user, &issued.token)),
                )
                .when(Condition::Absent),
            ),
            Write::Put(
                Put::new(
                    keys::user_token(&owner, &issued.token.id),
                    encode(&issued.token),
                )
                .when(Condition::Absent),
            ),
        ];
        self.transact(writes).await?;
        Ok(issued)
    }

    /// The caller's tokens, without their secrets.
    pub async fn list_tokens(&self, caller: &Principal) -> Result<Vec<TokenRef>> {
        let Some(username) = caller.user() else {
            return Err(Error::forbidden("a pipeline token has no tokens to list"));
        };
        let mut tokens = Vec::new();
        let mut query = Query::prefix(
            keys::user_partition(username),
            keys::USER_TOKEN_PREFIX,
            LIST_PAGE,
        );
        loop {
            let page = self.metadata().query(&query).await?;
            for item in &page.items {
                tokens.push(records::decode::<TokenRef>(item)?);
            }
            match page.next {
                Some(cursor) => query = query.after(Some(cursor)),
                None => break,
            }
        }
        tokens.sort_by(|a, b| {
            a.created_at
                .cmp(&b.created_at)
                .then_with(|| a.id.cmp(&b.id))
        });
        Ok(tokens)
    }

    /// Revokes one of the caller's tokens.
    pub async fn revoke_token(&self, caller: &Principal, id: &str) -> Result<()> {
        let acting = acting_user(caller)?;
        let listing = keys::user_token(acting, id);
        let (token, version) = records::load::<TokenRef>(self.metadata(), &listing)
            .await?
            .ok_or(Error::NotFound(Entity::Token))?;
        self.transact(vec![
            Write::Delete {
                key: listing,
                condition: Condition::Version(version),
            },
            Write::Delete {
                key: keys::token(&token.hash),
                condition: Condition::None,
            },
        ])
        .await
        .map_err(|error| match error {
            MetadataError::ConditionFailed { .. } => Error::NotFound(Entity::Token),
            other => other.into(),
        })?;
        self.forget_credential(&token.hash);
        Ok(())
    }

    /// On an empty store, creates the site admin `admin` with a read+write token valid for a
    /// year, as `bootstrap` says. Returns the secret when it was generated here, so that it
    /// can be shown once. Does nothing (and returns `None`) when the site admin exists.
    /// Whether the site admin exists (it is created once, at first start).
    pub async fn has_site_admin(&self) -> Result<bool> {
        let user = self
            .metadata()
            .get(&keys::user(&Username::site_admin()))
            .await?;
        Ok(user.is_some())
    }

    /// A new token for the site admin, minted by whoever holds the data itself (the operator,
    /// offline): for a lost or expiring admin token. A year's expiry, write scope.
    pub async fn mint_site_admin_token(&self, name: &str) -> Result<IssuedToken> {
        let operator = Principal {
            kind: PrincipalKind::User {
                username: Username::site_admin(),
            },
            scopes: Scopes::WRITE,
            token_id: "operator".into(),
        };
        let token = NewToken {
            name: name.to_owned(),
            scopes: Scopes::WRITE,
            expires: TokenExpiry::InDays(TOKEN_MAX_DAYS),
        };
        self.create_token(&operator, None, token).await
    }

    pub async fn bootstrap_site_admin(
        &self,
        bootstrap: BootstrapToken,
    ) -> Result<Option<TokenSecret>> {
        let username = Username::site_admin();
        if self.metadata().get(&keys::user(&username)).await?.is_some() {
            return Ok(None);
        }
        let now = self.now();
        let user = UserRecord {
            username,
            email: Email::parse("email", "admin@stowage.invalid")?,
            created_at: now,
        };
        let expires_at = now + TOKEN_MAX_LIFETIME;
        let (hash, generated) = match bootstrap {
            BootstrapToken::Generate => {
                let secret = TokenSecret::generate();
                (secret.hash(), Some(secret))
            }
            BootstrapToken::Secret(secret) => (secret.hash(), None),
            BootstrapToken::Sha256(hash) => (hash, None),
        };
        let token = token_ref(hash, "bootstrap".into(), Scopes::WRITE, expires_at, now);
        let writes = vec![
            Write::Put(
                Put::new(
                    keys::token(&token.hash),
                    encode(&user_token_record(&user, &token)),
                )
                .when(Condition::Absent),
            ),
            Write::Put(Put::new(
                keys::user_token(&user.username, &token.id),
                encode(&token),
            )),
        ];
        match self.insert_user(&user, writes).await {
            Ok(()) => Ok(generated),
            // Another instance bootstrapped at the same moment.
            Err(Error::Conflict(_)) => Ok(None),
            Err(other) => Err(other),
        }
    }
}

/// A new secret and its description.
fn mint(
    name: String,
    scopes: Scopes,
    expires_at: DateTime<Utc>,
    now: DateTime<Utc>,
) -> IssuedToken {
    let secret = TokenSecret::generate();
    IssuedToken {
        token: token_ref(secret.hash(), name, scopes, expires_at, now),
        secret,
    }
}

fn token_ref(
    hash: TokenHash,
    name: String,
    scopes: Scopes,
    expires_at: DateTime<Utc>,
    now: DateTime<Utc>,
) -> TokenRef {
    TokenRef {
        hash,
        id: uuid::Uuid::new_v4().to_string(),
        name,
        scopes,
        expires_at,
        created_at: now,
    }
}

fn user_token_record(user: &UserRecord, token: &TokenRef) -> TokenRecord {
    TokenRecord {
        id: token.id.clone(),
        name: token.name.clone(),
        owner: TokenOwner::User {
            username: user.username.clone(),
            email: user.email.clone(),
        },
        scopes: token.scopes,
        expires_at: token.expires_at,
        created_at: token.created_at,
    }
}
