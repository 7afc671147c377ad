//! Configuration: every setting is a command-line flag and a `DIABASE_…`
//! environment variable (`DATABASE_URL` for the database), read by clap
//! (`env`); the flag wins. `diabase serve` works with nothing set: SQLite
//! under ./data, the site files found beside the binary or in ./target/site.
//!
//! Values are checked before anything starts: a malformed value stops every
//! command with a message naming the variable (or flag) and what it must be.
//! An empty variable counts as unset. Secrets (`DATABASE_URL`,
//! `DIABASE_SMTP_URL`, `DIABASE_SMS_TOKEN`) can instead be read from a file
//! named by the same name with `_FILE` (container and systemd credentials);
//! setting both is an error. `diabase config check` prints the effective
//! settings with secrets masked.

use app::service::Config;
use clap::builder::BoolishValueParser;
use clap::parser::ValueSource;
use clap::{ArgAction, Args};
use leptos::config::LeptosOptions;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

/// The largest `--max-upload-mb`: an import never reads more than this.
const MAX_UPLOAD_MB: u64 = (app::service::import::MAX_FILE_BYTES / (1024 * 1024)) as u64;

/// Every setting of the server and of the commands that open its database.
#[derive(Args, Debug, Clone)]
#[command(next_help_heading = "Settings (a flag, or the environment variable shown)")]
pub struct Settings {
    /// Address to listen on.
    #[arg(long, global = true, env = "DIABASE_ADDR", default_value = "127.0.0.1:3000", value_name = "HOST:PORT")]
    pub addr: SocketAddr,
    /// Serve Prometheus metrics (GET /metrics) on this address, e.g. 127.0.0.1:9464 [default: none].
    #[arg(long, global = true, env = "DIABASE_METRICS_ADDR", value_name = "HOST:PORT")]
    pub metrics_addr: Option<SocketAddr>,
    /// The database: sqlite://… or postgres://… [default: sqlite://data/diabase.sqlite?mode=rwc].
    #[arg(long, global = true, env = "DATABASE_URL", hide_env_values = true, value_name = "URL")]
    pub database_url: Option<String>,
    /// A file holding the database URL (instead of DATABASE_URL).
    #[arg(long, global = true, env = "DATABASE_URL_FILE", value_name = "FILE")]
    pub database_url_file: Option<PathBuf>,
    /// Seed demo accounts and 90 days of simulated data on first start.
    #[arg(long, global = true, env = "DIABASE_DEMO", action = ArgAction::SetTrue, value_parser = BoolishValueParser::new())]
    pub demo: bool,
    /// The public origin users reach the site at (https://diabase.example.org); an https URL turns on Secure cookies.
    #[arg(long, global = true, env = "DIABASE_PUBLIC_URL", value_name = "URL", value_parser = origin_url)]
    pub public_url: Option<String>,
    /// Force Secure cookies on or off [default: on under TLS or an https public URL].
    #[arg(long, global = true, env = "DIABASE_SECURE_COOKIES", value_name = "BOOL", value_parser = BoolishValueParser::new())]
    pub secure_cookies: Option<bool>,
    /// Take the client address from X-Forwarded-For (behind a reverse proxy).
    #[arg(long, global = true, env = "DIABASE_TRUST_PROXY", action = ArgAction::SetTrue, value_parser = BoolishValueParser::new())]
    pub trust_proxy: bool,
    /// How many trusted proxies in a row append to X-Forwarded-For (1–16).
    #[arg(long, global = true, env = "DIABASE_TRUSTED_PROXY_HOPS", default_value_t = 1, value_name = "N",
          value_parser = clap::value_parser!(u64).range(1..=16))]
    pub trusted_proxy_hops: u64,
    /// PEM certificate chain: serve HTTPS (with --tls-key).
    #[arg(long, global = true, env = "DIABASE_TLS_CERT", value_name = "FILE")]
    pub tls_cert: Option<PathBuf>,
    /// PEM private key of --tls-cert.
    #[arg(long, global = true, env = "DIABASE_TLS_KEY", value_name = "FILE")]
    pub tls_key: Option<PathBuf>,
    /// A session ends after this many minutes unused (1–525600).
    #[arg(long, global = true, env = "DIABASE_SESSION_IDLE_MINUTES", default_value_t = 120, value_name = "MINUTES",
          value_parser = clap::value_parser!(u64).range(1..=525_600))]
    pub session_idle_minutes: u64,
    /// A session ends this many hours after log-in (1–8760).
    #[arg(long, global = true, env = "DIABASE_SESSION_ABSOLUTE_HOURS", default_value_t = 168, value_name = "HOURS",
          value_parser = clap::value_parser!(u64).range(1..=8_760))]
    pub session_absolute_hours: u64,
    /// Failed log-ins per email from one client address per 15 minutes.
    #[arg(long, global = true, env = "DIABASE_LOGIN_LIMIT_PER_EMAIL", default_value_t = 10, value_name = "N",
          value_parser = clap::value_parser!(u32).range(1..=1_000_000))]
    pub login_limit_per_email: u32,
    /// Failed log-ins per client address per 15 minutes.
    #[arg(long, global = true, env = "DIABASE_LOGIN_LIMIT_PER_IP", default_value_t = 100, value_name = "N",
          value_parser = clap::value_parser!(u32).range(1..=1_000_000))]
    pub login_limit_per_ip: u32,
    /// Failed Nightscout credentials per client address per 15 minutes.
    #[arg(long, global = true, env = "DIABASE_NS_FAILED_AUTH_LIMIT", default_value_t = app::service::nightscout::FAILED_AUTH_LIMIT,
          value_name = "N", value_parser = clap::value_parser!(u32).range(1..=1_000_000))]
    pub ns_failed_auth_limit: u32,
    /// The largest file an import accepts, in MiB (1–100).
    #[arg(long, global = true, env = "DIABASE_MAX_UPLOAD_MB", default_value_t = MAX_UPLOAD_MB, value_name = "MB",
          value_parser = clap::value_parser!(u64).range(1..=MAX_UPLOAD_MB))]
    pub max_upload_mb: u64,
    /// The field-encryption key (64 hex digits); created, mode 0600, on first start.
    #[arg(long, global = true, env = "DIABASE_KEY_FILE", default_value = "data/diabase.key", value_name = "FILE")]
    pub key_file: PathBuf,
    /// Earlier keys (comma-separated files) that still open values sealed before a key change.
    #[arg(long, global = true, env = "DIABASE_OLD_KEY_FILES", value_delimiter = ',', value_name = "FILES")]
    pub old_key_files: Vec<PathBuf>,
    /// The built site (pkg/, icons) [default: beside the binary, or ./target/site; also LEPTOS_SITE_ROOT].
    #[arg(long, global = true, env = "DIABASE_SITE_ROOT", value_name = "DIR")]
    pub site_root: Option<PathBuf>,
    /// Send mail through this SMTP server (smtp://user:pass@host:587?tls=required, smtps://…) [default: the outbox].
    #[arg(long, global = true, env = "DIABASE_SMTP_URL", hide_env_values = true, value_name = "URL")]
    pub smtp_url: Option<String>,
    /// A file holding the SMTP URL (instead of DIABASE_SMTP_URL).
    #[arg(long, global = true, env = "DIABASE_SMTP_URL_FILE", value_name = "FILE")]
    pub smtp_url_file: Option<PathBuf>,
    /// The sender of outgoing mail.
    #[arg(long, global = true, env = "DIABASE_MAIL_FROM", default_value = "Diabase <no-reply@diabase.invalid>",
          value_name = "MAILBOX", value_parser = mailbox)]
    pub mail_from: String,
    /// Without SMTP, where mail is written (one .eml file per message).
    #[arg(long, global = true, env = "DIABASE_MAIL_OUTBOX", default_value = "data/outbox", value_name = "DIR")]
    pub mail_outbox: PathBuf,
    /// An HTTP SMS gateway (each text is a POST of JSON) [default: no text messages].
    #[arg(long, global = true, env = "DIABASE_SMS_URL", value_name = "URL", value_parser = http_url)]
    pub sms_url: Option<String>,
    /// Sent to the SMS gateway as `Authorization: Bearer …`.
    #[arg(long, global = true, env = "DIABASE_SMS_TOKEN", hide_env_values = true, value_name = "TOKEN")]
    pub sms_token: Option<String>,
    /// A file holding the SMS gateway token (instead of DIABASE_SMS_TOKEN).
    #[arg(long, global = true, env = "DIABASE_SMS_TOKEN_FILE", value_name = "FILE")]
    pub sms_token_file: Option<PathBuf>,
    /// The sender name or number passed to the SMS gateway.
    #[arg(long, global = true, env = "DIABASE_SMS_FROM", value_name = "FROM")]
    pub sms_from: Option<String>,
}

impl Settings {
    /// Reads the secret files and checks what one value alone cannot show
    /// (pairs, files, formats of secrets). Every problem is listed.
    pub fn check(&self) -> Result<Checked, Vec<String>> {
        let mut problems = Vec::new();
        let mut secret = |value: &Option<String>, file: &Option<PathBuf>, name: &str| -> Option<String> {
            match (value, file) {
                (Some(_), Some(_)) => {
                    problems.push(format!("{name} and {name}_FILE are both set: set one of them"));
                    None
                }
                (Some(v), None) => Some(v.trim().to_string()),
                (None, Some(path)) => match std::fs::read_to_string(path) {
                    Ok(text) if !text.trim().is_empty() => Some(text.trim().to_string()),
                    Ok(_) => {
                        problems.push(format!("{name}_FILE: {} is empty", path.display()));
                        None
                    }
                    Err(e) => {
                        problems.push(format!("{name}_FILE: cannot read {}: {e}", path.display()));
                        None
                    }
                },
                (None, None) => None,
            }
        };
        let database_url = secret(&self.database_url, &self.database_url_file, "DATABASE_URL");
        let smtp_url = secret(&self.smtp_url, &self.smtp_url_file, "DIABASE_SMTP_URL");
        let sms_token = secret(&self.sms_token, &self.sms_token_file, "DIABASE_SMS_TOKEN");

        let database_url = database_url.unwrap_or_else(|| store::DEFAULT_DATABASE_URL.to_string());
        if !["sqlite:", "postgres://", "postgresql://"].iter().any(|p| database_url.starts_with(p)) {
            problems.push(format!(
                "DATABASE_URL must start with sqlite:, postgres:// or postgresql://, not {:?}",
                store::redact(&database_url)
            ));
        }
        if let Some(url) = &smtp_url {
            use lettre::{AsyncSmtpTransport, Tokio1Executor};
            if let Err(e) = AsyncSmtpTransport::<Tokio1Executor>::from_url(url) {
                problems.push(format!(
                    "DIABASE_SMTP_URL {:?} is not an SMTP URL (smtp://user:pass@host:587?tls=required, smtps://…): {e}",
                    store::redact(url)
                ));
            }
        }
        if self.sms_url.is_none() {
            if sms_token.is_some() {
                problems.push("DIABASE_SMS_TOKEN is set but DIABASE_SMS_URL is not: set the gateway too".into());
            }
            if self.sms_from.is_some() {
                problems.push("DIABASE_SMS_FROM is set but DIABASE_SMS_URL is not: set the gateway too".into());
            }
        }
        let tls = match (&self.tls_cert, &self.tls_key) {
            (Some(c), Some(k)) => {
                for (name, path) in [("DIABASE_TLS_CERT", c), ("DIABASE_TLS_KEY", k)] {
                    if let Err(e) = std::fs::metadata(path) {
                        problems.push(format!("{name}: cannot read {}: {e}", path.display()));
                    }
                }
                Some((c.clone(), k.clone()))
            }
            (None, None) => None,
            (Some(_), None) => {
                problems.push("DIABASE_TLS_CERT is set but DIABASE_TLS_KEY is not: set both for HTTPS".into());
                None
            }
            (None, Some(_)) => {
                problems.push("DIABASE_TLS_KEY is set but DIABASE_TLS_CERT is not: set both for HTTPS".into());
                None
            }
        };
        match std::fs::read_to_string(&self.key_file) {
            Ok(text) if store::crypto::parse_key(&text).is_none() => problems
                .push(format!("DIABASE_KEY_FILE: {} must hold 32 bytes as 64 hex digits", self.key_file.display())),
            Ok(_) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => problems.push(format!("DIABASE_KEY_FILE: cannot read {}: {e}", self.key_file.display())),
        }
        for f in &self.old_key_files {
            match std::fs::read_to_string(f) {
                Ok(text) if store::crypto::parse_key(&text).is_some() => {}
                Ok(_) => {
                    problems.push(format!("DIABASE_OLD_KEY_FILES: {} must hold 32 bytes as 64 hex digits", f.display()))
                }
                Err(e) => problems.push(format!("DIABASE_OLD_KEY_FILES: cannot read {}: {e}", f.display())),
            }
        }
        if self.metrics_addr.is_some_and(|m| {
            m.port() == self.addr.port()
                && (m.ip() == self.addr.ip() || m.ip().is_unspecified() || self.addr.ip().is_unspecified())
        }) {
            problems.push(
                "DIABASE_METRICS_ADDR must be another address than DIABASE_ADDR: metrics are not served to users"
                    .into(),
            );
        }
        if let Some(dir) = &self.site_root
            && !dir.is_dir()
        {
            problems.push(format!("DIABASE_SITE_ROOT: {} is not a folder", dir.display()));
        }
        if problems.is_empty() {
            Ok(Checked { settings: self.clone(), database_url, smtp_url, sms_token, tls })
        } else {
            Err(problems)
        }
    }
}

/// Settings whose cross-checks passed, with the secrets read.
#[derive(Debug, Clone)]
pub struct Checked {
    pub settings: Settings,
    pub database_url: String,
    pub smtp_url: Option<String>,
    pub sms_token: Option<String>,
    pub tls: Option<(PathBuf, PathBuf)>,
}

impl Checked {
    pub fn addr(&self) -> SocketAddr {
        self.settings.addr
    }

    /// The key ring: the key file's key seals; older keys still open values
    /// sealed before a rotation: the files of `DIABASE_OLD_KEY_FILES`, and
    /// those a rotation left beside the key file (`.new` while one runs,
    /// `.retired-*` after).
    pub fn field_cipher(&self) -> Result<store::crypto::FieldCipher, store::crypto::CryptoError> {
        use store::crypto::FieldCipher;
        let kf = &self.settings.key_file;
        let key = FieldCipher::load_or_create(kf)?;
        let mut old = Vec::new();
        if let (Some(dir), Some(name)) = (kf.parent(), kf.file_name().and_then(|n| n.to_str())) {
            let dir = if dir.as_os_str().is_empty() { Path::new(".") } else { dir };
            if let Ok(entries) = std::fs::read_dir(dir) {
                for e in entries.flatten() {
                    let f = e.file_name().to_string_lossy().to_string();
                    if (f == format!("{name}.new") || f.starts_with(&format!("{name}.retired-")))
                        && let Some(k) =
                            std::fs::read_to_string(e.path()).ok().and_then(|t| store::crypto::parse_key(&t))
                    {
                        old.push(k);
                    }
                }
            }
        }
        for path in &self.settings.old_key_files {
            let p = path.display().to_string();
            let text = std::fs::read_to_string(path)
                .map_err(|source| store::crypto::CryptoError::KeyFile { path: p.clone(), source })?;
            old.push(store::crypto::parse_key(&text).ok_or(store::crypto::CryptoError::KeyFormat { path: p })?);
        }
        Ok(FieldCipher::with_old_keys(key, old))
    }

    /// The address users reach the site at: `DIABASE_PUBLIC_URL`, else the
    /// listen address (`localhost` on a loopback address: passkeys need a
    /// domain name, not an IP address).
    pub fn public_url(&self) -> String {
        if let Some(u) = &self.settings.public_url {
            return u.clone();
        }
        let addr = self.settings.addr;
        let scheme = if self.tls.is_some() { "https" } else { "http" };
        if addr.ip().is_loopback() {
            format!("{scheme}://localhost:{}", addr.port())
        } else {
            format!("{scheme}://{addr}")
        }
    }

    pub fn secure_cookies(&self) -> bool {
        self.settings.secure_cookies.unwrap_or_else(|| {
            self.tls.is_some() || self.settings.public_url.as_deref().is_some_and(|u| u.starts_with("https://"))
        })
    }

    /// The service configuration.
    pub fn service_config(&self) -> Result<Config, store::crypto::CryptoError> {
        let s = &self.settings;
        let mut c = Config { cipher: std::sync::Arc::new(self.field_cipher()?), ..Config::default() };
        c.smtp_url = self.smtp_url.clone();
        c.sms = s.sms_url.as_ref().map(|url| app::service::sms::Gateway {
            url: url.clone(),
            token: self.sms_token.clone(),
            from: s.sms_from.as_ref().map(|f| f.trim().to_string()),
        });
        c.mail_from = s.mail_from.trim().to_string();
        c.mail_outbox = s.mail_outbox.clone();
        c.public_url = self.public_url();
        c.public_url_configured = s.public_url.is_some();
        if let Some(u) = &s.public_url {
            c.extra_origins.push(u.clone());
        }
        c.secure_cookies = self.secure_cookies();
        c.session_idle_ms = (s.session_idle_minutes * 60_000) as i64;
        c.session_absolute_ms = (s.session_absolute_hours * 3_600_000) as i64;
        c.login_limit_per_email = s.login_limit_per_email;
        c.login_limit_per_ip = s.login_limit_per_ip;
        c.ns_failed_auth_limit = s.ns_failed_auth_limit;
        c.max_upload_bytes = ((s.max_upload_mb as usize) * 1024 * 1024).min(app::service::import::MAX_FILE_BYTES);
        c.trusted_proxy_hops = s.trusted_proxy_hops as usize;
        Ok(c)
    }

    /// Where the compiled site (pkg/, icons, manifest, …) lives.
    pub fn site_root(&self) -> PathBuf {
        if let Some(dir) = &self.settings.site_root {
            return dir.clone();
        }
        if let Ok(v) = std::env::var("LEPTOS_SITE_ROOT")
            && !v.trim().is_empty()
        {
            return PathBuf::from(v);
        }
        let mut candidates: Vec<PathBuf> = Vec::new();
        if let Ok(exe) = std::env::current_exe()
            && let Some(dir) = exe.parent()
        {
            candidates.push(dir.join("site"));
            candidates.push(dir.join("../site"));
            candidates.push(dir.join("../../site"));
        }
        candidates.push(PathBuf::from("target/site"));
        candidates.into_iter().find(|p| p.join("pkg").is_dir()).unwrap_or_else(|| PathBuf::from("target/site"))
    }

    pub fn leptos_options(&self) -> LeptosOptions {
        leptos_options(self.settings.addr, &self.site_root())
    }

    /// The effective settings, one line each: the variable, its value
    /// (secrets masked), and where it came from. `source` tells, for a
    /// setting's clap id, whether a flag, the environment or the default set it.
    pub fn describe(&self, source: impl Fn(&str) -> Option<ValueSource>) -> String {
        let s = &self.settings;
        let opt = |v: &Option<String>| v.clone().unwrap_or_else(|| "-".into());
        let path = |p: &Option<PathBuf>| p.as_ref().map(|p| p.display().to_string()).unwrap_or_else(|| "-".into());
        let masked = |v: &Option<String>| if v.is_some() { "(set, masked)".to_string() } else { "-".to_string() };
        let list = if s.old_key_files.is_empty() {
            "-".to_string()
        } else {
            s.old_key_files.iter().map(|p| p.display().to_string()).collect::<Vec<_>>().join(",")
        };
        let rows: Vec<(&str, &str, String)> = vec![
            ("addr", "DIABASE_ADDR", s.addr.to_string()),
            (
                "metrics_addr",
                "DIABASE_METRICS_ADDR",
                s.metrics_addr.map(|a| a.to_string()).unwrap_or_else(|| "-".into()),
            ),
            ("database_url", "DATABASE_URL", store::redact(&self.database_url)),
            ("database_url_file", "DATABASE_URL_FILE", path(&s.database_url_file)),
            ("demo", "DIABASE_DEMO", s.demo.to_string()),
            ("public_url", "DIABASE_PUBLIC_URL", self.public_url()),
            ("secure_cookies", "DIABASE_SECURE_COOKIES", self.secure_cookies().to_string()),
            ("trust_proxy", "DIABASE_TRUST_PROXY", s.trust_proxy.to_string()),
            ("trusted_proxy_hops", "DIABASE_TRUSTED_PROXY_HOPS", s.trusted_proxy_hops.to_string()),
            ("tls_cert", "DIABASE_TLS_CERT", path(&s.tls_cert)),
            ("tls_key", "DIABASE_TLS_KEY", path(&s.tls_key)),
            ("session_idle_minutes", "DIABASE_SESSION_IDLE_MINUTES", s.session_idle_minutes.to_string()),
            ("session_absolute_hours", "DIABASE_SESSION_ABSOLUTE_HOURS", s.session_absolute_hours.to_string()),
            ("login_limit_per_email", "DIABASE_LOGIN_LIMIT_PER_EMAIL", s.login_limit_per_email.to_string()),
            ("login_limit_per_ip", "DIABASE_LOGIN_LIMIT_PER_IP", s.login_limit_per_ip.to_string()),
            ("ns_failed_auth_limit", "DIABASE_NS_FAILED_AUTH_LIMIT", s.ns_failed_auth_limit.to_string()),
            ("max_upload_mb", "DIABASE_MAX_UPLOAD_MB", s.max_upload_mb.to_string()),
            ("key_file", "DIABASE_KEY_FILE", s.key_file.display().to_string()),
            ("old_key_files", "DIABASE_OLD_KEY_FILES", list),
            ("site_root", "DIABASE_SITE_ROOT", self.site_root().display().to_string()),
            ("smtp_url", "DIABASE_SMTP_URL", self.smtp_url.as_deref().map(store::redact).unwrap_or_else(|| "-".into())),
            ("smtp_url_file", "DIABASE_SMTP_URL_FILE", path(&s.smtp_url_file)),
            ("mail_from", "DIABASE_MAIL_FROM", s.mail_from.clone()),
            ("mail_outbox", "DIABASE_MAIL_OUTBOX", s.mail_outbox.display().to_string()),
            ("sms_url", "DIABASE_SMS_URL", opt(&s.sms_url)),
            ("sms_token", "DIABASE_SMS_TOKEN", masked(&self.sms_token)),
            ("sms_token_file", "DIABASE_SMS_TOKEN_FILE", path(&s.sms_token_file)),
            ("sms_from", "DIABASE_SMS_FROM", opt(&s.sms_from)),
        ];
        let mut out = String::new();
        for (id, name, value) in rows {
            let from = match source(id) {
                Some(ValueSource::CommandLine) => "flag",
                Some(ValueSource::EnvVariable) => "environment",
                Some(ValueSource::DefaultValue) => "default",
                _ => match id {
                    "database_url" if s.database_url_file.is_some() => "file",
                    "database_url" => "default",
                    "smtp_url" if s.smtp_url_file.is_some() => "file",
                    "sms_token" if s.sms_token_file.is_some() => "file",
                    "site_root" if std::env::var_os("LEPTOS_SITE_ROOT").is_some_and(|v| !v.is_empty()) => {
                        "environment (LEPTOS_SITE_ROOT)"
                    }
                    _ if value == "-" => "unset",
                    _ => "derived",
                },
            };
            out.push_str(&format!("{name:<32} {value:<48} {from}\n"));
        }
        out
    }
}

pub fn leptos_options(addr: SocketAddr, site_root: &Path) -> LeptosOptions {
    LeptosOptions::builder()
        .output_name("diabase")
        .site_root(site_root.display().to_string())
        .site_pkg_dir("pkg")
        .site_addr(addr)
        .build()
}

/// The command with every empty settings variable ignored: `DIABASE_X=`
/// means the same as leaving it unset.
pub fn without_empty_env(cmd: clap::Command) -> clap::Command {
    cmd.mut_args(|a| {
        let empty = a.get_env().and_then(std::env::var_os).is_some_and(|v| v.to_string_lossy().trim().is_empty());
        if empty { a.env(None) } else { a }
    })
}

/// For a value clap refused that came from the environment, a message that
/// names the variable (clap's own names the flag only).
pub fn name_the_variable(cmd: &clap::Command, e: &clap::Error, argv: &[String]) -> Option<String> {
    use clap::error::{ContextKind, ContextValue, ErrorKind};
    if !matches!(e.kind(), ErrorKind::ValueValidation | ErrorKind::InvalidValue) {
        return None;
    }
    let Some(ContextValue::String(arg)) = e.get(ContextKind::InvalidArg) else { return None };
    let long = arg.strip_prefix("--")?.split([' ', '=']).next()?;
    let a = cmd.get_arguments().find(|a| a.get_long() == Some(long))?;
    let env = a.get_env()?.to_str()?;
    let flag = format!("--{long}");
    if argv.iter().any(|x| *x == flag || x.starts_with(&format!("{flag}="))) {
        return None;
    }
    let value = match e.get(ContextKind::InvalidValue) {
        Some(ContextValue::String(v)) if !a.is_hide_env_values_set() => format!(" {v:?}"),
        _ => String::new(),
    };
    let why = std::error::Error::source(e).map(|s| format!(": {s}")).unwrap_or_default();
    let why = if why.is_empty() {
        match e.get(ContextKind::ValidValue) {
            Some(ContextValue::Strings(v)) => format!(": expected one of {}", v.join(", ")),
            _ => String::new(),
        }
    } else {
        why
    };
    Some(format!("error: the environment variable {env} holds an invalid value{value}{why} (it sets {flag})"))
}

/// `http(s)://host[:port]`, nothing after it (a trailing slash is dropped).
fn origin_url(s: &str) -> Result<String, String> {
    let url = http_url(s)?;
    let parsed = url::Url::parse(&url).map_err(|e| e.to_string())?;
    if parsed.path() != "/" || parsed.query().is_some() || parsed.fragment().is_some() {
        return Err("must be an origin such as https://diabase.example.org, with no path or query".into());
    }
    Ok(url.trim_end_matches('/').to_string())
}

/// An absolute `http://` or `https://` URL with a host.
fn http_url(s: &str) -> Result<String, String> {
    let s = s.trim();
    let url = url::Url::parse(s).map_err(|e| format!("not a URL ({e})"))?;
    if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none_or(str::is_empty) {
        return Err("must be an http:// or https:// URL with a host".into());
    }
    Ok(s.to_string())
}

/// A mail sender: `Name <address>` or an address.
fn mailbox(s: &str) -> Result<String, String> {
    s.trim()
        .parse::<lettre::message::Mailbox>()
        .map(|_| s.trim().to_string())
        .map_err(|e| format!("not a mail address such as \"Diabase <no-reply@example.org>\" ({e})"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::{CommandFactory, FromArgMatches, Parser};

    #[derive(Parser)]
    struct EnvOnly {
        #[command(flatten)]
        settings: Settings,
    }

    fn parse(args: &[&str]) -> Result<Settings, clap::Error> {
        let mut argv = vec!["diabase"];
        argv.extend_from_slice(args);
        // The flags alone: whatever the test process's environment holds.
        let m = EnvOnly::command().mut_args(|a| a.env(None)).try_get_matches_from(argv)?;
        EnvOnly::from_arg_matches(&m).map(|e| e.settings)
    }

    #[test]
    fn defaults_make_a_working_local_server() {
        let s = parse(&[]).unwrap();
        assert_eq!(s.addr.to_string(), "127.0.0.1:3000");
        assert_eq!(s.trusted_proxy_hops, 1);
        let c = s.check().unwrap();
        assert_eq!(c.public_url(), "http://localhost:3000");
        assert!(!c.secure_cookies());
        let shown = c.describe(|_| None);
        let db = shown.lines().find(|l| l.starts_with("DATABASE_URL ")).unwrap();
        assert!(db.contains("sqlite://") && db.ends_with("default"), "{db}");
    }

    #[test]
    fn malformed_values_are_refused() {
        for bad in [
            vec!["--trusted-proxy-hops", "0"],
            vec!["--trusted-proxy-hops", "17"],
            vec!["--trusted-proxy-hops", "two"],
            vec!["--session-idle-minutes", "0"],
            vec!["--session-idle-minutes", "-5"],
            vec!["--max-upload-mb", "101"],
            vec!["--login-limit-per-ip", "1.5"],
            vec!["--public-url", "diabase.example.org"],
            vec!["--public-url", "ftp://diabase.example.org"],
            vec!["--public-url", "https://diabase.example.org/app"],
            vec!["--secure-cookies", "maybe"],
            vec!["--addr", "localhost"],
            vec!["--mail-from", "not a mailbox"],
            vec!["--sms-url", "gateway.example.org/send"],
        ] {
            assert!(parse(&bad).is_err(), "{bad:?} was accepted");
        }
        let s = parse(&["--public-url", "https://diabase.example.org/", "--secure-cookies", "off"]).unwrap();
        assert_eq!(s.public_url.as_deref(), Some("https://diabase.example.org"));
        assert_eq!(s.secure_cookies, Some(false));
    }

    #[test]
    fn pairs_secrets_and_files_are_cross_checked() {
        let dir = std::env::temp_dir().join(format!("diabase-config-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let secret = dir.join("db-url");
        std::fs::write(&secret, "postgres://diabase:s3cret@db.example.org/diabase\n").unwrap();
        let f = secret.to_str().unwrap();

        let c = parse(&["--database-url-file", f]).unwrap().check().unwrap();
        assert_eq!(c.database_url, "postgres://diabase:s3cret@db.example.org/diabase");
        let shown = c.describe(|_| None);
        assert!(!shown.contains("s3cret"), "{shown}");
        assert!(shown.contains("postgres://diabase:***@db.example.org/diabase"), "{shown}");

        let problems = |args: &[&str]| parse(args).unwrap().check().unwrap_err().join("\n");
        assert!(problems(&["--database-url", "sqlite::memory:", "--database-url-file", f]).contains("both set"));
        assert!(problems(&["--database-url", "mysql://x"]).contains("DATABASE_URL"));
        assert!(problems(&["--database-url-file", "/nonexistent/x"]).contains("DATABASE_URL_FILE"));
        assert!(problems(&["--tls-cert", f]).contains("DIABASE_TLS_KEY"));
        assert!(problems(&["--sms-token", "t"]).contains("DIABASE_SMS_URL"));
        assert!(problems(&["--smtp-url", "http://mail.example.org"]).contains("DIABASE_SMTP_URL"));
        assert!(problems(&["--key-file", f]).contains("64 hex digits"));
        assert!(problems(&["--old-key-files", &format!("{f},/nonexistent/k")]).contains("/nonexistent/k"));
        // All problems at once, not the first only.
        assert_eq!(parse(&["--tls-key", f, "--sms-from", "Clinic"]).unwrap().check().unwrap_err().len(), 2);

        let token = dir.join("sms-token");
        std::fs::write(&token, "tok-123\n").unwrap();
        let c = parse(&["--sms-url", "https://sms.example.org/send", "--sms-token-file", token.to_str().unwrap()])
            .unwrap()
            .check()
            .unwrap();
        let cfg = c.service_config_without_key();
        assert_eq!(cfg.sms.unwrap().token.as_deref(), Some("tok-123"));
        assert!(!c.describe(|_| None).contains("tok-123"));
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn an_https_public_url_or_tls_makes_cookies_secure() {
        let c = parse(&["--public-url", "https://d.example.org"]).unwrap().check().unwrap();
        assert!(c.secure_cookies());
        let cfg = c.service_config_without_key();
        assert!(cfg.public_url_configured);
        assert_eq!(cfg.public_url, "https://d.example.org");
        assert_eq!(cfg.extra_origins, vec!["https://d.example.org".to_string()]);
        let c = parse(&["--addr", "0.0.0.0:8080"]).unwrap().check().unwrap();
        assert_eq!(c.public_url(), "http://0.0.0.0:8080");
        assert!(!c.service_config_without_key().public_url_configured);
    }

    #[test]
    fn an_invalid_variable_is_named() {
        let cmd = EnvOnly::command().mut_arg("session_idle_minutes", |a| a.env("DIABASE_TEST_IDLE_UNSET_NAME"));
        let e = cmd.clone().try_get_matches_from(["diabase", "--session-idle-minutes", "abc"]).unwrap_err();
        // Given on the command line: clap's message names the flag already.
        assert!(name_the_variable(&cmd, &e, &["--session-idle-minutes".into()]).is_none());
        let msg = name_the_variable(&cmd, &e, &[]).unwrap();
        assert!(msg.contains("DIABASE_TEST_IDLE_UNSET_NAME") && msg.contains("\"abc\""), "{msg}");
    }

    impl Checked {
        /// The service configuration with a throw-away key (no key file written).
        fn service_config_without_key(&self) -> Config {
            let mut c = self.clone();
            let key = std::env::temp_dir().join(format!("diabase-config-test-{}.key", std::process::id()));
            c.settings.key_file = key.clone();
            let cfg = c.service_config().unwrap();
            let _ = std::fs::remove_file(key);
            cfg
        }
    }
}
