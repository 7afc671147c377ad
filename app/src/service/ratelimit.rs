//! Fixed-window rate limits kept in the database, so that every server
//! process shares the same counters.

use super::ServiceError;
use sea_orm::sea_query::{Expr, ExprTrait, OnConflict};
use sea_orm::{ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, Set};
use store::entity::rate_limits;

/// Counts one hit on `bucket`; refuses when the window already holds `limit`.
pub async fn hit<C: ConnectionTrait>(
    db: &C,
    bucket: &str,
    limit: u32,
    window_ms: i64,
    now: i64,
) -> Result<(), ServiceError> {
    let window_start = now - now.rem_euclid(window_ms);
    // Insert or, when the stored window is old, restart it; else count.
    rate_limits::Entity::insert(rate_limits::ActiveModel {
        bucket: Set(bucket.to_string()),
        window_start_ms: Set(window_start),
        hits: Set(0),
    })
    .on_conflict(OnConflict::column(rate_limits::Column::Bucket).do_nothing().to_owned())
    .exec_without_returning(db)
    .await?;
    rate_limits::Entity::update_many()
        .col_expr(rate_limits::Column::Hits, Expr::value(0))
        .col_expr(rate_limits::Column::WindowStartMs, Expr::value(window_start))
        .filter(rate_limits::Column::Bucket.eq(bucket))
        .filter(rate_limits::Column::WindowStartMs.lt(window_start))
        .exec(db)
        .await?;
    let res = rate_limits::Entity::update_many()
        .col_expr(rate_limits::Column::Hits, Expr::col(rate_limits::Column::Hits).add(1))
        .filter(rate_limits::Column::Bucket.eq(bucket))
        .filter(rate_limits::Column::Hits.lt(limit as i32))
        .exec(db)
        .await?;
    if res.rows_affected == 0 {
        let retry_after_s = Ord::max((window_start + window_ms - now) / 1000, 1);
        return Err(ServiceError::RateLimited { retry_after_s });
    }
    Ok(())
}

/// Gives back one hit counted in the current window: a limit charged
/// before checking a credential (so that concurrent guesses cannot all pass
/// a check made before any of them is counted) is refunded when the
/// credential proves right.
pub async fn refund<C: ConnectionTrait>(db: &C, bucket: &str, window_ms: i64, now: i64) -> Result<(), ServiceError> {
    let window_start = now - now.rem_euclid(window_ms);
    rate_limits::Entity::update_many()
        .col_expr(rate_limits::Column::Hits, Expr::col(rate_limits::Column::Hits).sub(1))
        .filter(rate_limits::Column::Bucket.eq(bucket))
        .filter(rate_limits::Column::Hits.gt(0))
        .filter(rate_limits::Column::WindowStartMs.eq(window_start))
        .exec(db)
        .await?;
    Ok(())
}

/// Clears a bucket (after a successful log-in, for the email's counter).
pub async fn clear<C: ConnectionTrait>(db: &C, bucket: &str) -> Result<(), ServiceError> {
    rate_limits::Entity::delete_many().filter(rate_limits::Column::Bucket.eq(bucket)).exec(db).await?;
    Ok(())
}

/// Takes one hit on each of `buckets` (name, limit), all or none: when one
/// is full, the hits already taken are given back and the answer is
/// `RateLimited`. Counting before the check it guards (and giving back on
/// success) leaves no check-then-count race: concurrent attempts each
/// take a slot.
pub async fn hit_all<C: ConnectionTrait>(
    db: &C,
    buckets: &[(String, u32)],
    window_ms: i64,
    now: i64,
) -> Result<(), ServiceError> {
    for (i, (bucket, limit)) in buckets.iter().enumerate() {
        if let Err(e) = hit(db, bucket, *limit, window_ms, now).await {
            for (taken, _) in &buckets[..i] {
                refund(db, taken, window_ms, now).await?;
            }
            return Err(e);
        }
    }
    Ok(())
}

/// Gives back one hit on each of `buckets` (see [`hit_all`]).
pub async fn refund_all<C: ConnectionTrait>(
    db: &C,
    buckets: &[(String, u32)],
    window_ms: i64,
    now: i64,
) -> Result<(), ServiceError> {
    for (bucket, _) in buckets {
        refund(db, bucket, window_ms, now).await?;
    }
    Ok(())
}
