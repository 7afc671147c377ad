//! Personal access tokens for scripts and apps: `Authorization: Bearer …`.
//! The secret is shown once; only its SHA-256 is stored.

use super::{Actor, AppState, AuthVia, ServiceError};
use sea_orm::{ActiveModelTrait, ColumnTrait, EntityTrait, QueryFilter, QueryOrder, Set};
use store::entity::{api_tokens, users};

pub const TOKEN_PREFIX: &str = "dbs_";

/// What a personal access token may do. A token holds one or more scopes:
///
/// | scope | allows |
/// |---|---|
/// | `read:glucose` | reading glucose (CGM, meter) and the glucose report |
/// | `read:all` | reading every kind of data (glucose, insulin, settings, events) |
/// | `upload` | uploading data (a phone uploader) |
/// | `full` | everything the account may do, as a browser session |
///
/// Whatever the scopes, a token never makes tokens, changes the account's
/// sign-in methods (two-factor, passkeys) or deletes the account: those need
/// a browser session.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TokenScopes {
    pub full: bool,
    pub read_all: bool,
    pub read_glucose: bool,
    pub upload: bool,
}

impl TokenScopes {
    pub const NAMES: [&'static str; 4] = ["read:glucose", "read:all", "upload", "full"];

    pub const FULL: TokenScopes = TokenScopes { full: true, read_all: true, read_glucose: true, upload: true };

    /// Parses scope names; refuses unknown ones and an empty list.
    pub fn parse(items: &[String]) -> Result<TokenScopes, ServiceError> {
        let mut s = TokenScopes::default();
        for item in items {
            match item.trim() {
                "read:glucose" => s.read_glucose = true,
                "read:all" => s.read_all = true,
                "upload" => s.upload = true,
                "full" => s.full = true,
                other => {
                    return Err(ServiceError::bad(
                        "scopes",
                        format!("Unknown token scope {other:?}: use read:glucose, read:all, upload or full."),
                    ));
                }
            }
        }
        if s == TokenScopes::default() {
            return Err(ServiceError::bad("scopes", "Choose at least one thing the token may do."));
        }
        Ok(s.normalised())
    }

    /// A broader scope implies the narrower ones.
    fn normalised(mut self) -> TokenScopes {
        if self.full {
            return TokenScopes::FULL;
        }
        if self.read_all {
            self.read_glucose = true;
        }
        self
    }

    /// The stored form: `full`, or a comma list of the narrowest names.
    pub fn to_db(self) -> String {
        self.names().join(",")
    }

    /// Reads the stored form; anything unreadable gives no access.
    pub fn from_db(s: &str) -> TokenScopes {
        let items: Vec<String> = s.split(',').map(str::to_string).collect();
        TokenScopes::parse(&items).unwrap_or_default()
    }

    /// The names, broadest first (`read:all` stands for `read:glucose` too).
    pub fn names(self) -> Vec<String> {
        if self.full {
            return vec!["full".into()];
        }
        let mut v = Vec::new();
        if self.read_all {
            v.push("read:all".into());
        } else if self.read_glucose {
            v.push("read:glucose".into());
        }
        if self.upload {
            v.push("upload".into());
        }
        v
    }

    /// Whether these scopes allow `action` on a patient's data.
    pub fn allows(self, action: super::policy::Action) -> bool {
        use super::policy::Action;
        if self.full {
            return true;
        }
        match action {
            Action::ReadGlucose => self.read_glucose || self.read_all,
            Action::ReadInsulin | Action::ReadSettings | Action::ReadEvents => self.read_all,
            Action::Upload => self.upload,
            Action::DeleteData => false,
        }
    }
}

#[derive(Clone, Debug, serde::Serialize)]
pub struct CreatedToken {
    pub id: String,
    pub name: String,
    /// The secret, shown this once.
    pub token: String,
    pub scopes: Vec<String>,
    pub created_at: String,
    pub expires_at: Option<String>,
}

/// Makes a token. `scopes` `None` is `full` (the API's original contract);
/// the Settings page always asks. `expires_at` is a date (the token works
/// to the end of that day in the account's zone) or an RFC 3339 time.
pub async fn create(
    state: &AppState,
    actor: &Actor,
    name: &str,
    scopes: Option<&[String]>,
    expires_at: Option<&str>,
    now: i64,
) -> Result<CreatedToken, ServiceError> {
    // A token never makes tokens: a stolen one cannot outlive its revocation.
    super::twofactor::require_session(actor)?;
    let name = name.trim();
    if name.is_empty() || name.chars().count() > 100 {
        return Err(ServiceError::bad("name", "Give the token a name of 1 to 100 characters."));
    }
    let scopes = match scopes {
        Some(items) => TokenScopes::parse(items)?,
        None => TokenScopes::FULL,
    };
    // No tokens for an address nobody confirmed; a `full` token needs the
    // password checked within the last minutes.
    super::reauth::require_confirmed(actor)?;
    if scopes.full {
        super::reauth::require_recent(state, actor, now).await?;
    }
    let zone = super::policy::own_patient(state, &actor.user.id)
        .await?
        .and_then(|p| therapy::time::parse_zone(&p.time_zone))
        .unwrap_or(chrono_tz::UTC);
    let expires_ms = super::sharing::parse_expiry(expires_at, zone, now)?;
    let token = format!("{TOKEN_PREFIX}{}", super::auth::random_secret());
    let id = store::new_id();
    api_tokens::ActiveModel {
        id: Set(id.clone()),
        user_id: Set(actor.user.id.clone()),
        name: Set(name.to_string()),
        token_hash: Set(store::sha256_hex(token.as_bytes())),
        created_ms: Set(now),
        last_used_ms: Set(None),
        expires_ms: Set(expires_ms),
        revoked_ms: Set(None),
        scopes: Set(scopes.to_db()),
    }
    .insert(&state.db)
    .await?;
    store::audit::append(
        &state.db,
        &state.config.cipher.audit_key(),
        store::audit::Entry {
            at_ms: now,
            actor_user_id: Some(&actor.user.id),
            patient_id: None,
            action: "token_created",
            detail: &format!("{id} scopes={}", scopes.to_db()),
            ip: None,
        },
    )
    .await?;
    Ok(CreatedToken {
        id,
        name: name.to_string(),
        token,
        scopes: scopes.names(),
        created_at: super::ms_to_rfc3339(now),
        expires_at: expires_ms.map(super::ms_to_rfc3339),
    })
}

/// The caller's tokens that still work (not revoked, not expired), oldest first.
pub async fn list(state: &AppState, actor: &Actor, now: i64) -> Result<Vec<crate::model::TokenInfo>, ServiceError> {
    if !actor.full_access() {
        return Err(ServiceError::Forbidden);
    }
    let rows = api_tokens::Entity::find()
        .filter(api_tokens::Column::UserId.eq(&actor.user.id))
        .filter(api_tokens::Column::RevokedMs.is_null())
        .order_by_asc(api_tokens::Column::CreatedMs)
        .all(&state.db)
        .await?;
    Ok(rows
        .into_iter()
        .filter(|t| t.expires_ms.is_none_or(|e| e > now))
        .map(|t| crate::model::TokenInfo {
            id: t.id,
            name: t.name,
            scopes: TokenScopes::from_db(&t.scopes).names(),
            created_at: super::ms_to_rfc3339(t.created_ms),
            last_used_at: t.last_used_ms.map(super::ms_to_rfc3339),
            expires_at: t.expires_ms.map(super::ms_to_rfc3339),
        })
        .collect())
}

/// Revokes one of the caller's tokens. Another user's token id is "not found".
pub async fn revoke(state: &AppState, actor: &Actor, id: &str, now: i64) -> Result<(), ServiceError> {
    if !actor.full_access() {
        return Err(ServiceError::Forbidden);
    }
    let res = api_tokens::Entity::update_many()
        .col_expr(api_tokens::Column::RevokedMs, sea_orm::sea_query::Expr::value(now))
        .filter(api_tokens::Column::Id.eq(id))
        .filter(api_tokens::Column::UserId.eq(&actor.user.id))
        .filter(api_tokens::Column::RevokedMs.is_null())
        .exec(&state.db)
        .await?;
    if res.rows_affected == 0 {
        return Err(ServiceError::NotFound);
    }
    store::audit::append(
        &state.db,
        &state.config.cipher.audit_key(),
        store::audit::Entry {
            at_ms: now,
            actor_user_id: Some(&actor.user.id),
            patient_id: None,
            action: "token_revoked",
            detail: id,
            ip: None,
        },
    )
    .await?;
    Ok(())
}

/// Resolves a bearer token to its user; `None` if unknown, revoked or expired.
pub async fn resolve(state: &AppState, token: &str, now: i64) -> Result<Option<Actor>, ServiceError> {
    if !token.starts_with(TOKEN_PREFIX) || token.len() > 200 {
        return Ok(None);
    }
    let hash = store::sha256_hex(token.as_bytes());
    let Some(t) = api_tokens::Entity::find().filter(api_tokens::Column::TokenHash.eq(hash)).one(&state.db).await?
    else {
        return Ok(None);
    };
    if t.revoked_ms.is_some() || t.expires_ms.is_some_and(|e| now >= e) {
        return Ok(None);
    }
    let Some(user) = users::Entity::find_by_id(t.user_id.clone()).one(&state.db).await? else {
        return Ok(None);
    };
    if t.last_used_ms.is_none_or(|l| now - l > 60_000) {
        let mut m: api_tokens::ActiveModel = t.clone().into();
        m.last_used_ms = Set(Some(now));
        m.update(&state.db).await?;
    }
    let scopes = TokenScopes::from_db(&t.scopes);
    Ok(Some(Actor { user, via: AuthVia::Token { id: t.id, scopes } }))
}
