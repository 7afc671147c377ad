//! Outgoing mail. With `DIABASE_SMTP_URL` set, messages go through that SMTP
//! server (lettre: `smtp://` in the clear or with `?tls=required` STARTTLS,
//! `smtps://` for TLS from the start; user and password in the URL).
//! Without it, every message is written as one RFC 5322 `.eml` file to the
//! outbox folder (`DIABASE_MAIL_OUTBOX`, default `data/outbox`), which the
//! operator can read or hand to any mail system. Messages hold no health
//! data: only who asks, and a link.

use super::{AppState, ServiceError};

/// One message.
#[derive(Clone, Debug)]
pub struct Mail<'a> {
    pub to: &'a str,
    pub subject: &'a str,
    pub body: &'a str,
}

/// How a message left.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Sent {
    /// Written to this outbox file.
    Outbox(std::path::PathBuf),
    /// Accepted by the SMTP server.
    Smtp,
}

/// Sends a message: through SMTP when configured, else to the outbox.
pub async fn send(state: &AppState, mail: Mail<'_>, now_ms: i64) -> Result<Sent, ServiceError> {
    if mail.to.contains(['\r', '\n']) || mail.subject.contains(['\r', '\n']) {
        return Err(ServiceError::bad("email", "An email address or subject cannot hold a line break."));
    }
    match &state.config.smtp_url {
        Some(url) => send_smtp(url, &state.config.mail_from, &mail).await.map(|()| Sent::Smtp),
        None => write_outbox(state, &mail, now_ms).await.map(Sent::Outbox),
    }
}

async fn send_smtp(url: &str, from: &str, mail: &Mail<'_>) -> Result<(), ServiceError> {
    use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};
    let message = Message::builder()
        .from(from.parse().map_err(|e| ServiceError::Internal(format!("DIABASE_MAIL_FROM {from:?}: {e}")))?)
        .to(mail.to.parse().map_err(|_| ServiceError::bad("email", "That email address cannot receive mail."))?)
        .subject(mail.subject)
        .header(lettre::message::header::ContentType::TEXT_PLAIN)
        .body(mail.body.to_string())
        .map_err(|e| ServiceError::Internal(format!("mail: {e}")))?;
    let transport = AsyncSmtpTransport::<Tokio1Executor>::from_url(url)
        .map_err(|e| ServiceError::Internal(format!("DIABASE_SMTP_URL: {e}")))?
        .timeout(Some(std::time::Duration::from_secs(20)))
        .build();
    transport.send(message).await.map_err(|e| ServiceError::Internal(format!("SMTP: {e}")))?;
    tracing::info!("mail sent through SMTP");
    Ok(())
}

async fn write_outbox(state: &AppState, mail: &Mail<'_>, now_ms: i64) -> Result<std::path::PathBuf, ServiceError> {
    let dir = state.config.mail_outbox.clone();
    let id = store::new_id();
    let date = chrono::DateTime::from_timestamp_millis(now_ms).unwrap_or_default().to_rfc2822();
    let text = format!(
        "From: {from}\r\nTo: <{to}>\r\nSubject: {subject}\r\nDate: {date}\r\nMessage-ID: <{id}@diabase.invalid>\r\nMIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\n{body}\r\n",
        from = state.config.mail_from,
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
