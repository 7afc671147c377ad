//! Text messages through the operator's HTTP SMS gateway (off by default).
//!
//! With `DIABASE_SMS_URL` set, a message is one `POST` of
//! `{"to": "+15551234567", "body": "…", "from": "…"}` (JSON; `from` only when
//! `DIABASE_SMS_FROM` is set) to that URL, with `Authorization: Bearer
//! <DIABASE_SMS_TOKEN>` when a token is set. Any 2xx answer is success.
//! Most SMS providers take this shape directly or through a small relay.
//!
//! Phone numbers are checked as E.164 (`+`, country code, at most 15
//! digits). Messages carry a code or a link and the sender's name, never
//! health data; numbers are not stored.

use super::{AppState, ServiceError};

/// The operator's gateway.
#[derive(Clone, Debug)]
pub struct Gateway {
    pub url: String,
    pub token: Option<String>,
    pub from: Option<String>,
}

/// The E.164 form of an entered number: `+` and 8 to 15 digits, the first
/// not 0. Spaces, dots, dashes and brackets are ignored; a leading `00`
/// counts as `+`. A number without a country code is refused (Diabase
/// cannot guess it).
pub fn parse_e164(input: &str) -> Result<String, ServiceError> {
    let bad = || {
        ServiceError::bad(
            "phone",
            "Give the mobile number in international form: + then the country code and the number, e.g. +44 7700 900123.",
        )
    };
    let trimmed = input.trim();
    let rest = if let Some(r) = trimmed.strip_prefix('+') {
        r
    } else if let Some(r) = trimmed.strip_prefix("00") {
        r
    } else {
        return Err(bad());
    };
    let mut digits = String::with_capacity(15);
    for c in rest.chars() {
        match c {
            '0'..='9' => digits.push(c),
            ' ' | '.' | '-' | '(' | ')' | '\u{a0}' => {}
            _ => return Err(bad()),
        }
    }
    if !(8..=15).contains(&digits.len()) || digits.starts_with('0') {
        return Err(bad());
    }
    Ok(format!("+{digits}"))
}

/// Whether text messages are set up.
pub fn enabled(state: &AppState) -> bool {
    state.config.sms.is_some()
}

/// Sends `body` to the E.164 number `to`.
pub async fn send(state: &AppState, to: &str, body: &str) -> Result<(), ServiceError> {
    let Some(gw) = &state.config.sms else {
        return Err(ServiceError::bad(
            "phone",
            "Text messages are not set up on this Diabase server; use email or print the code.",
        ));
    };
    let to = parse_e164(to)?;
    let mut payload = serde_json::json!({"to": to, "body": body});
    if let Some(from) = &gw.from {
        payload["from"] = serde_json::json!(from);
    }
    let client = reqwest::Client::builder()
        .timeout(std::time::Duration::from_secs(15))
        .build()
        .map_err(|e| ServiceError::Internal(format!("SMS client: {e}")))?;
    let mut req = client.post(&gw.url).json(&payload);
    if let Some(t) = &gw.token {
        req = req.bearer_auth(t);
    }
    let res = req.send().await.map_err(|e| {
        tracing::warn!(error = %e, "SMS gateway unreachable");
        ServiceError::Unavailable(
            "The text message could not be sent (the SMS gateway did not answer). Try again, or use email.".into(),
        )
    })?;
    if !res.status().is_success() {
        tracing::warn!(status = %res.status(), "SMS gateway refused a message");
        return Err(ServiceError::Unavailable(format!(
            "The text message could not be sent (the SMS gateway answered {}). Check the number, or use email.",
            res.status().as_u16()
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_are_e164() {
        assert_eq!(parse_e164("+44 7700 900123").unwrap(), "+447700900123");
        assert_eq!(parse_e164("0049 (151) 123-456-78").unwrap(), "+4915112345678");
        assert_eq!(parse_e164(" +1.555.123.4567 ").unwrap(), "+15551234567");
        for bad in [
            "",
            "+",
            "07700 900123",
            "+0 123 456 789",
            "+44 7700 90012x",
            "+1234567",
            "+1234567890123456",
            "++44770090012",
            "tel:+447700900123",
        ] {
            assert!(parse_e164(bad).is_err(), "{bad:?}");
        }
    }
}
