//! Outgoing mail, through a durable queue.
//!
//! [`send`] only inserts a row into `mail_queue` (recipient and body sealed
//! with the field key: bodies hold live reset links) and wakes the
//! [`Mailer`], the background worker each [`AppState`] owns. A request that
//! mails therefore takes the same time whether or not a message goes out,
//! and an SMTP server that is slow or down delays nobody's answer (no
//! account enumeration by timing, issue 19).
//!
//! The worker claims due rows with a conditional UPDATE on
//! `claimed_until_ms` (several server processes can share one database),
//! delivers them, marks them sent and blanks the sealed body. A failure is
//! retried after 30 s, 2 min, 10 min, 30 min, 1 h, 2 h, 4 h, 8 h …; a
//! message that has still not left 24 hours after it was queued (or that
//! the SMTP server refused for good) is given up and logged. Sent and
//! given-up rows are deleted after 7 days.
//!
//! Delivery: with `DIABASE_SMTP_URL` set, through that SMTP server (lettre:
//! `smtp://` in the clear or with `?tls=required` STARTTLS, `smtps://` for
//! TLS from the start; user and password in the URL). Without it, every
//! message is written as one RFC 5322 `.eml` file (mode 0600, in a folder of
//! mode 0700 on Unix) to the outbox folder (`DIABASE_MAIL_OUTBOX`, default
//! `data/outbox`), which the operator can read or hand to any mail system.
//! Messages hold no health data: only who asks, and a link.

use super::{AppState, Config, ServiceError};
use sea_orm::sea_query::Expr;
use sea_orm::{ColumnTrait, DatabaseConnection, EntityTrait, QueryFilter, QueryOrder, QuerySelect, Set};
use std::sync::Arc;
use store::entity::mail_queue;

/// One message.
#[derive(Clone, Debug)]
pub struct Mail<'a> {
    pub to: &'a str,
    pub subject: &'a str,
    pub body: &'a str,
}

/// How long a worker owns a claimed row (an SMTP send times out after 20 s);
/// a worker that died leaves it to another after this.
pub const CLAIM_MS: i64 = 2 * 60 * 1000;
/// A message not delivered this long after it was queued is given up.
pub const GIVE_UP_MS: i64 = 24 * 3600 * 1000;
/// Sent and given-up rows are deleted this long afterwards.
pub const KEEP_MS: i64 = 7 * 24 * 3600 * 1000;
/// The worker looks for due rows at least this often (mail queued by
/// another process, claims that expired).
pub const POLL_MS: i64 = 30 * 1000;

/// The wait before attempt `attempts + 1`, after `attempts` failures.
pub fn backoff_ms(attempts: i32) -> i64 {
    const STEPS_S: [i64; 8] = [30, 120, 600, 1800, 3600, 7200, 14_400, 28_800];
    STEPS_S[(attempts.max(1) as usize - 1).min(STEPS_S.len() - 1)] * 1000
}

/// Queues a message: checks it, seals it and inserts it; the worker sends
/// it within milliseconds (or retries it). An address that cannot receive
/// mail is refused here, before anything is queued.
pub async fn send(state: &AppState, mail: Mail<'_>, now_ms: i64) -> Result<(), ServiceError> {
    if mail.to.contains(['\r', '\n']) || mail.subject.contains(['\r', '\n']) {
        return Err(ServiceError::bad("email", "An email address or subject cannot hold a line break."));
    }
    if mail.to.parse::<lettre::Address>().is_err() {
        return Err(ServiceError::bad("email", "That email address cannot receive mail."));
    }
    let cipher = &state.config.cipher;
    mail_queue::Entity::insert(mail_queue::ActiveModel {
        id: Set(store::new_id()),
        recipient: Set(cipher.seal(mail.to)),
        subject: Set(mail.subject.to_string()),
        body: Set(cipher.seal(mail.body)),
        created_ms: Set(now_ms),
        attempts: Set(0),
        next_attempt_ms: Set(now_ms),
        claimed_until_ms: Set(0),
        sent_ms: Set(None),
        failed_ms: Set(None),
        last_error: Set(None),
    })
    .exec_without_returning(&state.db)
    .await?;
    if let Some(m) = &state.mailer {
        m.wake();
    }
    Ok(())
}

/// Delivers every message due now, in this task (one-shot CLI commands
/// call it before they exit); returns how many left.
pub async fn flush(state: &AppState) -> Result<u64, ServiceError> {
    let (sent, _) = deliver_due(&state.db, &state.config, super::now_ms()).await?;
    Ok(sent)
}

/// The background delivery task of one [`AppState`]; it stops when dropped
/// (a message it was sending is retried once its claim expires).
#[derive(Debug)]
pub struct Mailer {
    wake: Arc<tokio::sync::Notify>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Mailer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Mailer {
    /// Starts the worker (inside a Tokio runtime). It holds the database and
    /// the configuration, not the state, so that dropping the last state
    /// stops it.
    pub fn spawn(db: DatabaseConnection, config: Arc<Config>) -> Mailer {
        let wake = Arc::new(tokio::sync::Notify::new());
        let notified = wake.clone();
        let task = tokio::spawn(async move {
            loop {
                let now = super::now_ms();
                let next = match deliver_due(&db, &config, now).await {
                    Ok((_, next)) => next,
                    Err(e) => {
                        tracing::warn!(error = %e, "mail queue: delivery round failed");
                        Some(now + 5_000)
                    }
                };
                let wait = next.map_or(POLL_MS, |t| (t - super::now_ms()).clamp(0, POLL_MS));
                tokio::select! {
                    _ = notified.notified() => {}
                    _ = tokio::time::sleep(std::time::Duration::from_millis(wait as u64)) => {}
                }
            }
        });
        Mailer { wake, task }
    }

    /// Looks at the queue now (after an enqueue).
    pub fn wake(&self) {
        self.wake.notify_one();
    }
}

/// Claims one due row: a conditional UPDATE, so that of several workers
/// exactly one gets it.
async fn claim(db: &DatabaseConnection, now: i64) -> Result<Option<mail_queue::Model>, ServiceError> {
    let candidates = mail_queue::Entity::find()
        .filter(mail_queue::Column::SentMs.is_null())
        .filter(mail_queue::Column::FailedMs.is_null())
        .filter(mail_queue::Column::NextAttemptMs.lte(now))
        .filter(mail_queue::Column::ClaimedUntilMs.lte(now))
        .order_by_asc(mail_queue::Column::NextAttemptMs)
        .limit(8)
        .all(db)
        .await?;
    for c in candidates {
        let res = mail_queue::Entity::update_many()
            .col_expr(mail_queue::Column::ClaimedUntilMs, Expr::value(now + CLAIM_MS))
            .filter(mail_queue::Column::Id.eq(&c.id))
            .filter(mail_queue::Column::SentMs.is_null())
            .filter(mail_queue::Column::FailedMs.is_null())
            .filter(mail_queue::Column::ClaimedUntilMs.eq(c.claimed_until_ms))
            .exec(db)
            .await?;
        if res.rows_affected == 1 {
            return Ok(Some(c));
        }
    }
    Ok(None)
}

/// Delivers every due message; returns how many left and when the next
/// pending one is due (`None`: nothing pending).
async fn deliver_due(db: &DatabaseConnection, config: &Config, now: i64) -> Result<(u64, Option<i64>), ServiceError> {
    let mut sent = 0u64;
    while let Some(row) = claim(db, super::now_ms().max(now)).await? {
        if deliver_one(db, config, row).await? {
            sent += 1;
        }
    }
    let now = super::now_ms();
    mail_queue::Entity::delete_many()
        .filter(
            sea_orm::Condition::any()
                .add(mail_queue::Column::SentMs.lt(now - KEEP_MS))
                .add(mail_queue::Column::FailedMs.lt(now - KEEP_MS)),
        )
        .exec(db)
        .await?;
    let next = mail_queue::Entity::find()
        .filter(mail_queue::Column::SentMs.is_null())
        .filter(mail_queue::Column::FailedMs.is_null())
        .order_by_asc(mail_queue::Column::NextAttemptMs)
        .one(db)
        .await?
        .map(|r| r.next_attempt_ms.max(r.claimed_until_ms));
    Ok((sent, next))
}

/// Why a delivery failed, and whether trying again could help.
struct Failure {
    message: String,
    permanent: bool,
}

/// Sends one claimed row and records the outcome; `true` when it left.
async fn deliver_one(db: &DatabaseConnection, config: &Config, row: mail_queue::Model) -> Result<bool, ServiceError> {
    let opened = config.cipher.open(&row.recipient).and_then(|to| Ok((to, config.cipher.open(&row.body)?)));
    let result = match &opened {
        Ok((to, body)) => {
            let mail = Mail { to, subject: &row.subject, body };
            match &config.smtp_url {
                Some(url) => send_smtp(url, &config.mail_from, &mail).await,
                None => write_outbox(config, &mail, &row.id, row.created_ms).await,
            }
        }
        Err(e) => Err(Failure { message: format!("the sealed message cannot be opened: {e}"), permanent: true }),
    };
    let now = super::now_ms();
    let attempts = row.attempts + 1;
    let update = mail_queue::Entity::update_many()
        .col_expr(mail_queue::Column::Attempts, Expr::value(attempts))
        .col_expr(mail_queue::Column::ClaimedUntilMs, Expr::value(0i64))
        .filter(mail_queue::Column::Id.eq(&row.id));
    match result {
        Ok(()) => {
            update
                .col_expr(mail_queue::Column::SentMs, Expr::value(now))
                .col_expr(mail_queue::Column::Body, Expr::value(String::new()))
                .col_expr(mail_queue::Column::LastError, Expr::value(Option::<String>::None))
                .exec(db)
                .await?;
            tracing::info!(id = %row.id, attempts, "mail sent");
            Ok(true)
        }
        Err(f) => {
            let message: String = f.message.chars().take(500).collect();
            if f.permanent || now - row.created_ms >= GIVE_UP_MS {
                update
                    .col_expr(mail_queue::Column::FailedMs, Expr::value(now))
                    .col_expr(mail_queue::Column::Body, Expr::value(String::new()))
                    .col_expr(mail_queue::Column::LastError, Expr::value(message.clone()))
                    .exec(db)
                    .await?;
                tracing::error!(id = %row.id, attempts, error = %message, "mail given up");
            } else {
                let next = now + backoff_ms(attempts);
                update
                    .col_expr(mail_queue::Column::NextAttemptMs, Expr::value(next))
                    .col_expr(mail_queue::Column::LastError, Expr::value(message.clone()))
                    .exec(db)
                    .await?;
                tracing::warn!(id = %row.id, attempts, error = %message, retry_in_s = backoff_ms(attempts) / 1000, "mail not sent; will retry");
            }
            Ok(false)
        }
    }
}

async fn send_smtp(url: &str, from: &str, mail: &Mail<'_>) -> Result<(), Failure> {
    use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};
    let fail = |message: String, permanent: bool| Failure { message, permanent };
    let message = Message::builder()
        .from(from.parse().map_err(|e| fail(format!("DIABASE_MAIL_FROM {from:?}: {e}"), false))?)
        .to(mail.to.parse().map_err(|e| fail(format!("recipient: {e}"), true))?)
        .subject(mail.subject)
        .header(lettre::message::header::ContentType::TEXT_PLAIN)
        .body(mail.body.to_string())
        .map_err(|e| fail(format!("mail: {e}"), true))?;
    let transport = AsyncSmtpTransport::<Tokio1Executor>::from_url(url)
        .map_err(|e| fail(format!("DIABASE_SMTP_URL: {e}"), false))?
        .timeout(Some(std::time::Duration::from_secs(20)))
        .build();
    transport.send(message).await.map_err(|e| fail(format!("SMTP: {e}"), e.is_permanent()))?;
    Ok(())
}

async fn write_outbox(config: &Config, mail: &Mail<'_>, id: &str, created_ms: i64) -> Result<(), Failure> {
    let dir = config.mail_outbox.clone();
    let date = chrono::DateTime::from_timestamp_millis(created_ms).unwrap_or_default().to_rfc2822();
    let text = format!(
        "From: {from}\r\nTo: <{to}>\r\nSubject: {subject}\r\nDate: {date}\r\nMessage-ID: <{id}@diabase.invalid>\r\nMIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\n{body}\r\n",
        from = config.mail_from,
        to = mail.to,
        subject = mail.subject,
        body = mail.body.replace("\r\n", "\n").replace('\n', "\r\n"),
    );
    // Named by the time it was queued, so that files sort in queue order.
    let path = dir.join(format!("{created_ms}-{id}.eml"));
    let write_path = path.clone();
    tokio::task::spawn_blocking(move || write_private(&dir, &write_path, text.as_bytes()))
        .await
        .map_err(|e| Failure { message: format!("mail task: {e}"), permanent: false })?
        .map_err(|e| Failure {
            message: format!("cannot write to the mail outbox {}: {e}", config.mail_outbox.display()),
            permanent: false,
        })?;
    tracing::info!(file = %path.display(), "mail written to the outbox");
    Ok(())
}

/// Writes `bytes` to `path` readable by the server's user only (0600; the
/// folder 0700), whatever the umask: the files hold live reset links. The
/// file appears under its name only once complete.
fn write_private(dir: &std::path::Path, path: &std::path::Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    #[cfg(unix)]
    {
        use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
        std::fs::DirBuilder::new().recursive(true).mode(0o700).create(dir)?;
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))?;
    }
    #[cfg(not(unix))]
    std::fs::create_dir_all(dir)?;
    let tmp = path.with_extension("eml.part");
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut f = options.open(&tmp)?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        f.set_permissions(std::fs::Permissions::from_mode(0o600))?;
    }
    f.write_all(bytes)?;
    f.sync_all()?;
    drop(f);
    std::fs::rename(&tmp, path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_grows_and_stops_growing() {
        assert_eq!(backoff_ms(1), 30_000);
        assert_eq!(backoff_ms(2), 120_000);
        assert_eq!(backoff_ms(3), 600_000);
        assert_eq!(backoff_ms(8), 8 * 3600 * 1000);
        assert_eq!(backoff_ms(50), 8 * 3600 * 1000);
    }
}
