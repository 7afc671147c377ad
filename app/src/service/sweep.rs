//! Expiry sweeps (issue 23): rows that can no longer be used are deleted,
//! so that the tables read on every request stay the size of what is live.
//! Nothing a user can see is removed: an expired session, challenge, code
//! or token is refused the same way whether its row exists or not.
//!
//! Each sweep is a few `DELETE … WHERE` statements, idempotent. On
//! PostgreSQL, where several server processes share the database, one of
//! them is elected per round with a transaction-level advisory lock
//! ([`sweep_elected`]): the others skip that round rather than repeat the
//! same deletes. SQLite has one server process.

use super::{Config, ServiceError};
use sea_orm::{
    ColumnTrait, Condition, ConnectionTrait, DatabaseConnection, DbBackend, EntityTrait, QueryFilter, Statement,
    TransactionTrait,
};
use store::entity::{email_verifications, link_codes, password_resets, rate_limits, sessions, webauthn_challenges};

/// How often `diabase serve` sweeps.
pub const INTERVAL_MS: i64 = 10 * 60 * 1000;
/// Used or expired one-time codes and tokens are kept this long, for an
/// operator looking into a complaint ("my link did not work").
pub const KEEP_SPENT_MS: i64 = 24 * 3600 * 1000;
/// A rate-limit bucket whose window started this long ago is restarted by
/// its next hit anyway: every window in use is an hour or less.
pub const KEEP_RATE_LIMIT_MS: i64 = 2 * 24 * 3600 * 1000;

/// What one sweep deleted.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct Swept {
    pub sessions: u64,
    pub rate_limits: u64,
    pub webauthn_challenges: u64,
    pub link_codes: u64,
    pub password_resets: u64,
    pub email_verifications: u64,
}

impl Swept {
    pub fn total(&self) -> u64 {
        self.sessions
            + self.rate_limits
            + self.webauthn_challenges
            + self.link_codes
            + self.password_resets
            + self.email_verifications
    }
}

/// The PostgreSQL advisory lock key of the sweep ("DIABSWEP").
pub const LOCK_KEY: i64 = 0x4449_4142_5357_4550;

/// Sweeps if this process wins the round: on PostgreSQL, when no other
/// process holds the sweep's advisory lock (`None`: another one sweeps);
/// elsewhere, always.
pub async fn sweep_elected(db: &DatabaseConnection, config: &Config, now: i64) -> Result<Option<Swept>, ServiceError> {
    if db.get_database_backend() != DbBackend::Postgres {
        return sweep(db, config, now).await.map(Some);
    }
    let txn = db.begin().await?;
    let got = txn
        .query_one_raw(Statement::from_string(
            DbBackend::Postgres,
            format!("SELECT pg_try_advisory_xact_lock({LOCK_KEY}) AS got"),
        ))
        .await?
        .and_then(|r| r.try_get::<bool>("", "got").ok())
        .unwrap_or(false);
    if !got {
        txn.rollback().await?;
        return Ok(None);
    }
    let swept = sweep(&txn, config, now).await?;
    txn.commit().await?;
    Ok(Some(swept))
}

/// Deletes what expired before `now`.
pub async fn sweep<C: ConnectionTrait>(db: &C, config: &Config, now: i64) -> Result<Swept, ServiceError> {
    let spent = now - KEEP_SPENT_MS;
    let sessions = sessions::Entity::delete_many()
        .filter(
            Condition::any()
                .add(sessions::Column::ExpiresMs.lte(now))
                .add(sessions::Column::LastSeenMs.lte(now - config.session_idle_ms)),
        )
        .exec(db)
        .await?
        .rows_affected;
    let rate_limits = rate_limits::Entity::delete_many()
        .filter(rate_limits::Column::WindowStartMs.lt(now - KEEP_RATE_LIMIT_MS))
        .exec(db)
        .await?
        .rows_affected;
    let webauthn_challenges = webauthn_challenges::Entity::delete_many()
        .filter(webauthn_challenges::Column::ExpiresMs.lt(now))
        .exec(db)
        .await?
        .rows_affected;
    let link_codes = link_codes::Entity::delete_many()
        .filter(
            Condition::any().add(link_codes::Column::ExpiresMs.lte(spent)).add(link_codes::Column::UsedMs.lte(spent)),
        )
        .exec(db)
        .await?
        .rows_affected;
    let password_resets = password_resets::Entity::delete_many()
        .filter(
            Condition::any()
                .add(password_resets::Column::ExpiresMs.lte(spent))
                .add(password_resets::Column::UsedMs.lte(spent)),
        )
        .exec(db)
        .await?
        .rows_affected;
    let email_verifications = email_verifications::Entity::delete_many()
        .filter(
            Condition::any()
                .add(email_verifications::Column::ExpiresMs.lte(spent))
                .add(email_verifications::Column::UsedMs.lte(spent)),
        )
        .exec(db)
        .await?
        .rows_affected;
    Ok(Swept { sessions, rate_limits, webauthn_challenges, link_codes, password_resets, email_verifications })
}

/// The background sweeper of `diabase serve`; stops when dropped.
pub struct Sweeper {
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Sweeper {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Sweeper {
    /// Sweeps a minute after start, then every [`INTERVAL_MS`].
    pub fn spawn(db: DatabaseConnection, config: std::sync::Arc<Config>) -> Sweeper {
        let task = tokio::spawn(async move {
            let mut wait = std::time::Duration::from_secs(60);
            loop {
                tokio::time::sleep(wait).await;
                wait = std::time::Duration::from_millis(INTERVAL_MS as u64);
                match sweep_elected(&db, &config, super::now_ms()).await {
                    Ok(Some(s)) if s.total() > 0 => tracing::info!(
                        sessions = s.sessions,
                        rate_limits = s.rate_limits,
                        challenges = s.webauthn_challenges,
                        link_codes = s.link_codes,
                        password_resets = s.password_resets,
                        email_verifications = s.email_verifications,
                        "expiry sweep"
                    ),
                    Ok(Some(_)) => {}
                    Ok(None) => tracing::debug!("expiry sweep: another server process sweeps this round"),
                    Err(e) => tracing::warn!(error = %e, "expiry sweep failed; retried next round"),
                }
            }
        });
        Sweeper { task }
    }
}
