//! Outgoing mail. Without an SMTP server configured, every message is written
//! as one RFC 5322 `.eml` file to the outbox folder (`DIABASE_MAIL_OUTBOX`,
//! default `data/outbox`), which the operator can read or hand to any mail
//! system. Messages hold no health data: only who asks, and a link.

use super::{AppState, ServiceError};

/// One message.
#[derive(Clone, Debug)]
pub struct Mail<'a> {
    pub to: &'a str,
    pub subject: &'a str,
    pub body: &'a str,
}

/// Sends (writes) a message; returns the file it was written to.
pub async fn send(state: &AppState, mail: Mail<'_>, now_ms: i64) -> Result<std::path::PathBuf, ServiceError> {
    if mail.to.contains(['\r', '\n']) || mail.subject.contains(['\r', '\n']) {
        return Err(ServiceError::bad("email", "An email address or subject cannot hold a line break."));
    }
    let dir = state.config.mail_outbox.clone();
    let id = store::new_id();
    let date = chrono::DateTime::from_timestamp_millis(now_ms).unwrap_or_default().to_rfc2822();
    let text = format!(
        "From: Diabase <no-reply@diabase.invalid>\r\nTo: <{to}>\r\nSubject: {subject}\r\nDate: {date}\r\nMessage-ID: <{id}@diabase.invalid>\r\nMIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\n{body}\r\n",
        to = mail.to,
        subject = mail.subject,
        body = mail.body.replace("\r\n", "\n").replace('\n', "\r\n"),
    );
    let path = dir.join(format!("{now_ms}-{id}.eml"));
    let write_path = path.clone();
    tokio::task::spawn_blocking(move || -> std::io::Result<()> {
        std::fs::create_dir_all(&dir)?;
        std::fs::write(&write_path, text)
    })
    .await
    .map_err(|e| ServiceError::Internal(format!("mail task: {e}")))?
    .map_err(|e| ServiceError::Internal(format!("cannot write to the mail outbox {}: {e}", state.config.mail_outbox.display())))?;
    tracing::info!(file = %path.display(), "mail written to the outbox");
    Ok(path)
}
