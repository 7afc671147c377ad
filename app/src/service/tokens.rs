//! Personal access tokens for scripts and apps: `Authorization: Bearer …`.
//! The secret is shown once; only its SHA-256 is stored.

use super::{Actor, AppState, AuthVia, ServiceError};
use sea_orm::{ActiveModelTrait, ColumnTrait, EntityTrait, QueryFilter, QueryOrder, Set};
use store::entity::{api_tokens, users};

pub const TOKEN_PREFIX: &str = "dbs_";

#[derive(Clone, Debug, serde::Serialize)]
pub struct CreatedToken {
    pub id: String,
    pub name: String,
    /// The secret, shown this once.
    pub token: String,
    pub created_at: String,
}

pub async fn create(state: &AppState, actor: &Actor, name: &str, now: i64) -> Result<CreatedToken, ServiceError> {
    let name = name.trim();
    if name.is_empty() || name.chars().count() > 100 {
        return Err(ServiceError::bad("name", "Give the token a name of 1 to 100 characters."));
    }
    let token = format!("{TOKEN_PREFIX}{}", super::auth::random_secret());
    let id = store::new_id();
    api_tokens::ActiveModel {
        id: Set(id.clone()),
        user_id: Set(actor.user.id.clone()),
        name: Set(name.to_string()),
        token_hash: Set(store::sha256_hex(token.as_bytes())),
        created_ms: Set(now),
        last_used_ms: Set(None),
        expires_ms: Set(None),
        revoked_ms: Set(None),
    }
    .insert(&state.db)
    .await?;
    store::audit::append(&state.db, store::audit::Entry {
        at_ms: now,
        actor_user_id: Some(&actor.user.id),
        patient_id: None,
        action: "token_created",
        detail: &id,
        ip: None,
    })
    .await?;
    Ok(CreatedToken { id, name: name.to_string(), token, created_at: super::ms_to_rfc3339(now) })
}

pub async fn list(state: &AppState, actor: &Actor) -> Result<Vec<crate::model::TokenInfo>, ServiceError> {
    let rows = api_tokens::Entity::find()
        .filter(api_tokens::Column::UserId.eq(&actor.user.id))
        .filter(api_tokens::Column::RevokedMs.is_null())
        .order_by_asc(api_tokens::Column::CreatedMs)
        .all(&state.db)
        .await?;
    Ok(rows
        .into_iter()
        .map(|t| crate::model::TokenInfo {
            id: t.id,
            name: t.name,
            created_at: super::ms_to_rfc3339(t.created_ms),
            last_used_at: t.last_used_ms.map(super::ms_to_rfc3339),
        })
        .collect())
}

/// Revokes one of the caller's tokens. Another user's token id is "not found".
pub async fn revoke(state: &AppState, actor: &Actor, id: &str, now: i64) -> Result<(), ServiceError> {
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
    store::audit::append(&state.db, store::audit::Entry {
        at_ms: now,
        actor_user_id: Some(&actor.user.id),
        patient_id: None,
        action: "token_revoked",
        detail: id,
        ip: None,
    })
    .await?;
    Ok(())
}

/// Resolves a bearer token to its user; `None` if unknown, revoked or expired.
pub async fn resolve(state: &AppState, token: &str, now: i64) -> Result<Option<Actor>, ServiceError> {
    if !token.starts_with(TOKEN_PREFIX) || token.len() > 200 {
        return Ok(None);
    }
    let hash = store::sha256_hex(token.as_bytes());
    let Some(t) = api_tokens::Entity::find()
        .filter(api_tokens::Column::TokenHash.eq(hash))
        .one(&state.db)
        .await?
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
    Ok(Some(Actor { user, via: AuthVia::Token(t.id) }))
}
