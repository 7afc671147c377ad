//! `diabase`: the server and the operator's command line.

use app::service::{self, auth};
use clap::{CommandFactory, FromArgMatches, Parser, Subcommand};
use server::config;
use std::io::Read;
use std::process::ExitCode;

#[derive(Parser)]
#[command(name = "diabase", version, about = "Diabase: a self-hostable diabetes device data platform")]
struct Cli {
    #[command(subcommand)]
    command: Command,
    #[command(flatten)]
    settings: config::Settings,
}

#[derive(Subcommand)]
enum Command {
    /// Serve the web app and the API (migrations run first).
    ///
    /// Every setting below is a flag or an environment variable; a malformed
    /// value stops the server with a message naming it.
    Serve,
    /// The settings: check them and print the effective values.
    Config {
        #[command(subcommand)]
        command: ConfigCommand,
    },
    /// Apply pending database migrations and exit.
    Migrate,
    /// Manage user accounts.
    User {
        #[command(subcommand)]
        command: UserCommand,
    },
    /// Import export files into a user's data (format auto-detected); prints a JSON summary.
    Import {
        /// The patient's account email.
        #[arg(long)]
        user: String,
        /// Files: CareLink CSV, Dexcom Clarity CSV, LibreView CSV, Nightscout JSON.
        #[arg(required = true)]
        files: Vec<std::path::PathBuf>,
    },
    /// Decode a device dump or export file to normalised JSON records, storing nothing.
    Inspect { file: std::path::PathBuf },
    /// A patient's report over whole local days, both inclusive.
    Report {
        #[arg(long)]
        user: String,
        #[arg(long)]
        from: String,
        #[arg(long)]
        to: String,
        #[arg(long, value_parser = ["json", "csv", "pdf"], default_value = "json")]
        format: String,
        /// Write to this file instead of standard output.
        #[arg(long)]
        out: Option<std::path::PathBuf>,
        /// PDF only: encrypt it (AES-256) under a generated password, which
        /// is printed once on standard error.
        #[arg(long)]
        protect: bool,
        /// PDF only: the language of the report (en, es, fr, de); default:
        /// the one the user chose in Diabase, else English.
        #[arg(long, value_parser = ["en", "es", "fr", "de"])]
        lang: Option<String>,
    },
    /// A user's whole record (GDPR portability): Diabase JSON, or a FHIR R4
    /// Bundle per the HL7 CGM implementation guide. Written to the audit trail.
    Export {
        /// The account's email.
        #[arg(long)]
        user: String,
        #[arg(long, value_parser = ["fhir", "json"])]
        format: String,
        /// Write to this file instead of standard output.
        #[arg(long)]
        out: Option<std::path::PathBuf>,
    },
    /// Back up the database while the server runs. SQLite: a consistent
    /// copy (VACUUM INTO), checked before it is reported. PostgreSQL:
    /// pg_dump in its custom format (restore with pg_restore). The key
    /// file is not included: back it up separately.
    Backup {
        /// The file to write (must not exist).
        #[arg(long)]
        out: std::path::PathBuf,
    },
    /// The audit trail.
    Audit {
        #[command(subcommand)]
        command: AuditCommand,
    },
    /// The field-encryption key.
    Keys {
        #[command(subcommand)]
        command: KeysCommand,
    },
}

#[derive(Subcommand)]
enum ConfigCommand {
    /// Check every setting (values, pairs, secret and key files) and print
    /// the effective ones with secrets masked; exit non-zero naming each problem.
    Check,
}

#[derive(Subcommand)]
enum KeysCommand {
    /// Make a new key and re-seal every sealed value under it; the old key
    /// is kept beside the key file as `<file>.retired-<time>`.
    Rotate,
}

#[derive(Subcommand)]
enum UserCommand {
    /// Create an account. Without --password-stdin a strong password is generated and printed once.
    Add {
        #[arg(long)]
        email: String,
        /// patient, clinician or admin.
        #[arg(long, value_parser = ["patient", "clinician", "admin"])]
        role: String,
        /// The display name (default: the part of the email before the @).
        #[arg(long)]
        name: Option<String>,
        /// Read the password from the first line of standard input.
        #[arg(long)]
        password_stdin: bool,
        /// The account's IANA time zone.
        #[arg(long, default_value = "UTC")]
        time_zone: String,
    },
    /// Create or rotate a patient's Nightscout site; prints {site, secret, url, token} once.
    Nightscout {
        #[arg(long)]
        email: String,
    },
    /// Turn off a user's two-factor authentication (lost phone and recovery
    /// codes), after checking who asks by other means; written to the audit log.
    #[command(name = "reset-2fa")]
    Reset2fa {
        #[arg(long)]
        email: String,
    },
}

#[derive(Subcommand)]
enum AuditCommand {
    /// Walk the hash chain; exit non-zero naming the first bad entry.
    Verify,
}

fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info,sqlx=warn,sea_orm=warn")),
        )
        .with_writer(std::io::stderr)
        // Colours only on a terminal: a log file or journald gets plain text.
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
    let argv: Vec<String> = std::env::args_os().map(|a| a.to_string_lossy().into_owned()).collect();
    let cmd = config::without_empty_env(Cli::command());
    let matches = match cmd.clone().try_get_matches_from(&argv) {
        Ok(m) => m,
        Err(e) => {
            if let Some(message) = config::name_the_variable(&cmd, &e, &argv) {
                eprintln!("{message}");
                return ExitCode::from(2);
            }
            e.exit()
        }
    };
    let cli = Cli::from_arg_matches(&matches).unwrap_or_else(|e| e.exit());
    let rt = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match rt.block_on(run(cli, &matches)) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

/// The settings after their cross-checks, or every problem found.
fn checked(settings: &config::Settings) -> server::anyhow_like::Result<config::Checked> {
    settings.check().map_err(|problems| {
        let list: String = problems.iter().map(|p| format!("\n  - {p}")).collect();
        format!("the configuration is not valid:{list}").into()
    })
}

async fn state(c: &config::Checked) -> server::anyhow_like::Result<service::AppState> {
    let cfg = c.service_config()?;
    server::build_state(&c.database_url, cfg, c.leptos_options())
        .await
        .map_err(|e| format!("database {}: {e}", store::redact(&c.database_url)).into())
}

/// The innermost command's matches (global settings are propagated there).
fn leaf(m: &clap::ArgMatches) -> &clap::ArgMatches {
    match m.subcommand() {
        Some((_, sub)) => leaf(sub),
        None => m,
    }
}

async fn run(cli: Cli, matches: &clap::ArgMatches) -> server::anyhow_like::Result<ExitCode> {
    let settings = &cli.settings;
    match cli.command {
        Command::Config { command: ConfigCommand::Check } => match settings.check() {
            Ok(c) => {
                print!("{}", c.describe(|id| leaf(matches).value_source(id)));
                let site = c.site_root();
                if !site.join("pkg").is_dir() {
                    eprintln!(
                        "warning: no built site in {}: pages would load without styles or interactivity",
                        site.display()
                    );
                }
                if !c.settings.key_file.exists() {
                    eprintln!(
                        "note: the key file {} does not exist yet: the first start creates it (back it up)",
                        c.settings.key_file.display()
                    );
                }
                println!("The configuration is valid.");
                Ok(ExitCode::SUCCESS)
            }
            Err(problems) => {
                for p in problems {
                    eprintln!("error: {p}");
                }
                Ok(ExitCode::FAILURE)
            }
        },
        Command::Serve => {
            let c = checked(settings)?;
            let addr = c.addr();
            // HTTPS when a certificate and key are configured (checked before anything starts).
            let tls = match &c.tls {
                Some((cert, key)) => Some(server::tls_config(cert, key)?),
                None => None,
            };
            let st = state(&c).await?;
            let site = c.site_root();
            if !site.join("pkg").is_dir() {
                tracing::warn!(site = %site.display(), "site files not found: pages will load without styles or interactivity (build with `make build`)");
            }
            if c.settings.demo {
                let seeded = service::seed::seed_demo(&st, service::now_ms()).await?;
                if seeded.created {
                    tracing::info!(records = seeded.records, "demo data seeded");
                }
                println!("Demo log-ins (demo data: a patient with 90 days of simulated pump and CGM data):");
                println!(
                    "  patient    {}  /  {}",
                    service::seed::DEMO_PATIENT_EMAIL,
                    service::seed::DEMO_PATIENT_PASSWORD
                );
                println!(
                    "  clinician  {}  /  {}",
                    service::seed::DEMO_CLINICIAN_EMAIL,
                    service::seed::DEMO_CLINICIAN_PASSWORD
                );
            }
            let listener =
                tokio::net::TcpListener::bind(addr).await.map_err(|e| format!("cannot listen on {addr}: {e}"))?;
            if let Some(maddr) = c.settings.metrics_addr {
                let ml = tokio::net::TcpListener::bind(maddr)
                    .await
                    .map_err(|e| format!("DIABASE_METRICS_ADDR: cannot listen on {maddr}: {e}"))?;
                let mst = st.clone();
                tokio::spawn(async move {
                    if let Err(e) = server::ops::serve_metrics(ml, mst).await {
                        tracing::error!(error = %e, "the metrics listener stopped");
                    }
                });
                println!("Metrics at http://{maddr}/metrics");
            }
            // Expired sessions, codes, tokens and rate-limit windows are deleted in the background.
            let _sweeper = service::sweep::Sweeper::spawn(st.db.clone(), st.config.clone());
            match tls {
                Some(tls) => {
                    println!("Diabase is serving at {}", st.config.public_url);
                    server::serve_tls_on(listener, st, c.settings.trust_proxy, tls, c.tls.clone()).await?;
                }
                None => {
                    println!("Diabase is serving at {} (also http://{addr})", st.config.public_url);
                    server::serve_on(listener, st, c.settings.trust_proxy).await?;
                }
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Migrate => {
            let c = checked(settings)?;
            let db = store::connect(&c.database_url).await?;
            store::migrate_sealed(&db, &c.field_cipher()?.audit_key()).await?;
            println!("Migrations applied to {}", store::redact(&c.database_url));
            Ok(ExitCode::SUCCESS)
        }
        Command::User { command: UserCommand::Nightscout { email } } => {
            let c = checked(settings)?;
            let st = state(&c).await?;
            let patient = patient_of(&st, &email).await?;
            let origin = match &c.settings.public_url {
                Some(u) => u.clone(),
                None => format!("http://{}", c.addr()),
            };
            let site =
                service::nightscout::create_or_rotate_for_patient(&st, &patient, None, &origin, service::now_ms())
                    .await
                    .map_err(|e| e.to_string())?;
            println!("{}", serde_json::to_string_pretty(&site)?);
            deliver_mail(&st).await;
            Ok(ExitCode::SUCCESS)
        }
        Command::User { command: UserCommand::Reset2fa { email } } => {
            let st = state(&checked(settings)?).await?;
            let email = auth::Email::parse(&email).map_err(|e| e.to_string())?;
            let removed = service::twofactor::operator_reset(&st, email.as_str(), service::now_ms())
                .await
                .map_err(|e| e.to_string())?;
            println!(
                "{}",
                if removed {
                    "Two-factor authentication is off for that account."
                } else {
                    "That account had no two-factor authentication."
                }
            );
            deliver_mail(&st).await;
            Ok(ExitCode::SUCCESS)
        }
        Command::User { command: UserCommand::Add { email, role, name, password_stdin, time_zone } } => {
            let st = state(&checked(settings)?).await?;
            let email = auth::Email::parse(&email).map_err(|e| e.to_string())?;
            let zone =
                therapy::time::parse_zone(&time_zone).ok_or_else(|| format!("unknown time zone {time_zone:?}"))?;
            let (password, generated) = if password_stdin {
                let mut s = String::new();
                std::io::stdin().read_to_string(&mut s)?;
                let line = s.lines().next().unwrap_or("").to_string();
                (line, false)
            } else {
                (auth::random_secret(), true)
            };
            if password.chars().count() < auth::MIN_PASSWORD_LEN {
                return Err(format!("the password must have at least {} characters", auth::MIN_PASSWORD_LEN).into());
            }
            if auth::check_password_strength(&password, &[email.as_str()]).is_err() {
                eprintln!("warning: this password is easy to guess; users choosing it in the app would be refused");
            }
            let display = name.unwrap_or_else(|| email.as_str().split('@').next().unwrap_or("").to_string());
            let display = auth::clean_display_name(&display).map_err(|e| e.to_string())?;
            let hash = auth::hash_password(password.clone()).await?;
            let now = service::now_ms();
            let Some(user) = auth::create_user(&st.db, &email, &hash, &display, &role, zone.name(), true, now).await?
            else {
                eprintln!("error: an account with the email {} already exists", email.as_str());
                return Ok(ExitCode::from(2));
            };
            store::audit::append(
                &st.db,
                &st.config.cipher.audit_key(),
                store::audit::Entry {
                    at_ms: now,
                    actor_user_id: None,
                    patient_id: None,
                    action: "user_added_by_operator",
                    detail: &format!("{} ({role})", user.id),
                    ip: None,
                },
            )
            .await?;
            let patient = service::policy::own_patient(&st, &user.id).await?;
            let mut out = serde_json::json!({
                "id": user.id, "email": user.email, "role": user.role,
                "patient_id": patient.map(|p| p.id),
            });
            if generated {
                out["password"] = serde_json::json!(password);
            }
            println!("{}", serde_json::to_string_pretty(&out)?);
            deliver_mail(&st).await;
            Ok(ExitCode::SUCCESS)
        }
        Command::Inspect { file } => {
            let bytes = std::fs::read(&file).map_err(|e| format!("{}: {e}", file.display()))?;
            let name = file.display().to_string();
            match devices::import::inspect_bytes(&bytes, Some(&name)) {
                Ok(ins) => {
                    println!("{}", serde_json::to_string_pretty(&ins.to_json(&name))?);
                    Ok(ExitCode::SUCCESS)
                }
                Err(e) => {
                    eprintln!("error: {name}: {e}");
                    Ok(ExitCode::FAILURE)
                }
            }
        }
        Command::Import { user, files } => {
            let st = state(&checked(settings)?).await?;
            let patient = patient_of(&st, &user).await?;
            let mut results = Vec::new();
            let mut failed = false;
            for f in files {
                let name = f.display().to_string();
                let bytes = match std::fs::read(&f) {
                    Ok(b) => b,
                    Err(e) => {
                        failed = true;
                        results.push(serde_json::json!({"file": name, "error": e.to_string()}));
                        continue;
                    }
                };
                match service::import::import_file(&st, None, &patient, &name, &bytes, service::now_ms()).await {
                    Ok(s) => results.push(serde_json::to_value(&s)?),
                    Err(e) => {
                        failed = true;
                        results.push(serde_json::json!({"file": name, "error": e.to_string()}));
                    }
                }
            }
            let out = if results.len() == 1 { results.remove(0) } else { serde_json::Value::Array(results) };
            println!("{}", serde_json::to_string_pretty(&out)?);
            deliver_mail(&st).await;
            Ok(if failed { ExitCode::FAILURE } else { ExitCode::SUCCESS })
        }
        Command::Report { user, from, to, format, out, protect, lang } => {
            if protect && format != "pdf" {
                return Err("--protect applies to --format pdf only".into());
            }
            let st = state(&checked(settings)?).await?;
            let patient = patient_of(&st, &user).await?;
            let from = service::report::parse_date("from", &from).map_err(|e| e.to_string())?;
            let to = service::report::parse_date("to", &to).map_err(|e| e.to_string())?;
            if format == "pdf" {
                let b = service::report::bundle(&st, None, &patient, Some(from), Some(to), service::now_ms())
                    .await
                    .map_err(|e| e.to_string())?;
                let lang = match lang {
                    Some(l) => app::i18n::Lang::parse(&l),
                    None => user_language(&st, &user).await?,
                }
                .unwrap_or_default();
                let mut bytes = server::pdf::render_report_pdf_in(&b, lang);
                if protect {
                    let password = server::pdf_protect::generate_password();
                    bytes = server::pdf_protect::protect(&bytes, &password)?;
                    eprintln!("PDF password (shown once; send it by another channel than the file): {password}");
                }
                match out {
                    Some(path) => std::fs::write(&path, bytes).map_err(|e| format!("{}: {e}", path.display()))?,
                    None => {
                        use std::io::Write;
                        let mut stdout = std::io::stdout().lock();
                        stdout.write_all(&bytes)?;
                        stdout.flush()?;
                    }
                }
                return Ok(ExitCode::SUCCESS);
            }
            let r = service::report::glucose(&st, None, &patient, from, to).await.map_err(|e| e.to_string())?;
            let text = if format == "csv" { report_csv(&r)? } else { serde_json::to_string_pretty(&r)? + "\n" };
            match out {
                Some(path) => std::fs::write(&path, text).map_err(|e| format!("{}: {e}", path.display()))?,
                None => print!("{text}"),
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Export { user, format, out } => {
            use sea_orm::{ColumnTrait, EntityTrait, QueryFilter};
            let st = state(&checked(settings)?).await?;
            let email = auth::Email::parse(&user).map_err(|e| e.to_string())?;
            let account = store::entity::users::Entity::find()
                .filter(store::entity::users::Column::Email.eq(email.as_str()))
                .one(&st.db)
                .await?
                .ok_or_else(|| format!("no account with the email {}", email.as_str()))?;
            let format = service::export::Format::parse(&format).map_err(|e| e.to_string())?;
            let bytes = service::export::export(&st, &account, None, format, None, service::now_ms())
                .await
                .map_err(|e| e.to_string())?;
            match out {
                Some(path) => std::fs::write(&path, bytes).map_err(|e| format!("{}: {e}", path.display()))?,
                None => {
                    use std::io::Write;
                    let mut stdout = std::io::stdout().lock();
                    stdout.write_all(&bytes)?;
                    stdout.write_all(b"\n")?;
                    stdout.flush()?;
                }
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Audit { command: AuditCommand::Verify } => {
            let c = checked(settings)?;
            let db = store::connect(&c.database_url).await?;
            // The key file seals the log's head (see `store::audit`).
            let key = c.field_cipher()?.audit_key();
            store::migrate_sealed(&db, &key).await?;
            match store::audit::verify(&db, &key).await? {
                store::audit::Verdict::Intact { entries } => {
                    println!("audit log intact: {entries} entries");
                    Ok(ExitCode::SUCCESS)
                }
                store::audit::Verdict::Broken { seq, reason } => {
                    println!("audit log BROKEN at entry {seq}: {reason}");
                    Ok(ExitCode::FAILURE)
                }
            }
        }
        Command::Backup { out } => backup(&checked(settings)?, &out).await,
        Command::Keys { command: KeysCommand::Rotate } => rotate_keys(&checked(settings)?).await,
    }
}

/// `diabase keys rotate`: the new key is written beside the key file first
/// (`<file>.new`, which opens values if the run stops half-way), every value
/// is re-sealed in one transaction, then the files swap.
async fn rotate_keys(c: &config::Checked) -> server::anyhow_like::Result<ExitCode> {
    let db = store::connect(&c.database_url).await?;
    let ring = c.field_cipher()?;
    store::migrate_sealed(&db, &ring.audit_key()).await?;
    let file = c.settings.key_file.clone();
    let new_key = store::crypto::FieldCipher::random_key();
    let mut staged = file.clone().into_os_string();
    staged.push(".new");
    let staged = std::path::PathBuf::from(staged);
    let _ = std::fs::remove_file(&staged);
    {
        use std::io::Write;
        let mut opts = std::fs::OpenOptions::new();
        opts.write(true).create_new(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt;
            opts.mode(0o600);
        }
        let mut f = opts.open(&staged)?;
        f.write_all(format!("{}\n", hex_key(&new_key)).as_bytes())?;
        f.sync_all()?;
    }
    // Seals with the new key; opens with it and every key of the old ring.
    let new_ring = store::crypto::FieldCipher::new(new_key).merged_with(&ring);
    let n = app::service::keys::reseal_all(&db, &new_ring).await?;
    // The audit log's head is sealed under a key derived from the new key.
    store::audit::reseal_head(&db, &new_ring.audit_key()).await?;
    let stamp = chrono::Utc::now().format("%Y%m%dT%H%M%SZ");
    let mut retired = file.clone().into_os_string();
    retired.push(format!(".retired-{stamp}"));
    std::fs::rename(&file, &retired)?;
    std::fs::rename(&staged, &file)?;
    println!(
        "re-sealed {n} values under key {}; the old key is kept in {}",
        new_ring.current_key_id(),
        std::path::Path::new(&retired).display()
    );
    Ok(ExitCode::SUCCESS)
}

/// `diabase backup --out FILE`.
async fn backup(c: &config::Checked, out: &std::path::Path) -> server::anyhow_like::Result<ExitCode> {
    use sea_orm::ConnectionTrait;
    if out.exists() {
        return Err(format!("{} exists: name a new file", out.display()).into());
    }
    if c.database_url.starts_with("sqlite:") {
        let path = out.to_str().ok_or("the backup file's name must be UTF-8")?;
        let db = store::connect(&c.database_url).await?;
        // One read transaction: a consistent copy while the server writes.
        db.execute_unprepared(&format!("VACUUM INTO '{}'", path.replace('\'', "''"))).await?;
        let _ = db.close().await;
        let copy = sea_orm::Database::connect(format!("sqlite://{path}?mode=ro")).await?;
        let row = copy
            .query_one_raw(sea_orm::Statement::from_string(sea_orm::DbBackend::Sqlite, "PRAGMA integrity_check"))
            .await?
            .ok_or("the copy cannot be read")?;
        let verdict: String = row.try_get_by_index(0)?;
        let _ = copy.close().await;
        if verdict != "ok" {
            let _ = std::fs::remove_file(out);
            return Err(format!("the copy failed its integrity check ({verdict}); nothing was kept").into());
        }
    } else {
        // pg_dump, with the password (if any) passed in its environment, not its arguments.
        let mut url = url::Url::parse(&c.database_url).map_err(|e| format!("DATABASE_URL: {e}"))?;
        let password = url.password().map(percent_decode);
        let _ = url.set_password(None);
        let mut cmd = std::process::Command::new("pg_dump");
        cmd.args(["--format=custom", "--no-owner", "--file"]).arg(out).arg("--dbname").arg(url.as_str());
        if let Some(p) = password {
            cmd.env("PGPASSWORD", p);
        }
        let status = cmd.status().map_err(|e| {
            format!("cannot run pg_dump ({e}): install the PostgreSQL client tools of the server's major version")
        })?;
        if !status.success() {
            let _ = std::fs::remove_file(out);
            return Err(format!("pg_dump failed ({status}); nothing was kept").into());
        }
    }
    let size = std::fs::metadata(out).map(|m| m.len()).unwrap_or(0);
    println!("backup of {} written to {} ({size} bytes)", store::redact(&c.database_url), out.display());
    eprintln!(
        "note: names, dates of birth and MRNs in it are sealed with the key file {}; back that file up too, \
         stored apart from the backups",
        c.settings.key_file.display()
    );
    Ok(ExitCode::SUCCESS)
}

/// `%XX` escapes of a URL's user information, decoded.
fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%'
            && i + 2 < b.len()
            && let Some(v) = std::str::from_utf8(&b[i + 1..i + 3]).ok().and_then(|h| u8::from_str_radix(h, 16).ok())
        {
            out.push(v);
            i += 3;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Delivers the mail a one-shot command queued before the process exits
/// (its background worker dies with it); what cannot leave now stays
/// queued for the server, which retries it.
async fn deliver_mail(st: &service::AppState) {
    match service::mail::flush(st).await {
        Ok(0) => {}
        Ok(n) => tracing::info!(messages = n, "queued mail delivered"),
        Err(e) => eprintln!("warning: queued mail not delivered yet ({e}); the server will retry it"),
    }
}

fn hex_key(k: &[u8; 32]) -> String {
    k.iter().map(|b| format!("{b:02x}")).collect()
}

/// The patient data space of the account `email`.
/// The language a user chose in Diabase, if any.
async fn user_language(st: &service::AppState, email: &str) -> server::anyhow_like::Result<Option<app::i18n::Lang>> {
    use sea_orm::{ColumnTrait, EntityTrait, QueryFilter};
    let email = auth::Email::parse(email).map_err(|e| e.to_string())?;
    let user = store::entity::users::Entity::find()
        .filter(store::entity::users::Column::Email.eq(email.as_str()))
        .one(&st.db)
        .await
        .map_err(|e| e.to_string())?;
    Ok(user.and_then(|u| u.language).as_deref().and_then(app::i18n::Lang::parse))
}

async fn patient_of(st: &service::AppState, email: &str) -> server::anyhow_like::Result<String> {
    use sea_orm::{ColumnTrait, EntityTrait, QueryFilter};
    let email = auth::Email::parse(email).map_err(|e| e.to_string())?;
    let user = store::entity::users::Entity::find()
        .filter(store::entity::users::Column::Email.eq(email.as_str()))
        .one(&st.db)
        .await?
        .ok_or_else(|| format!("no account with the email {}", email.as_str()))?;
    Ok(service::policy::own_patient(st, &user.id)
        .await
        .map_err(|e| e.to_string())?
        .ok_or_else(|| format!("{} is not a patient account", email.as_str()))?
        .id)
}

/// The report as CSV: the summary as `metric,value` rows, then the AGP table.
fn report_csv(r: &therapy::metrics::GlucoseReport) -> server::anyhow_like::Result<String> {
    let v = serde_json::to_value(r)?;
    let mut s = String::from("metric,value\n");
    for k in [
        "readings",
        "days",
        "mean_mg_dl",
        "sd_mg_dl",
        "cv_percent",
        "gmi_percent",
        "cgm_active_percent",
        "very_low_percent",
        "low_percent",
        "in_range_percent",
        "high_percent",
        "very_high_percent",
        "gri",
    ] {
        let val = match &v[k] {
            serde_json::Value::Null => String::new(),
            serde_json::Value::Number(n) => n.to_string(),
            other => other.to_string(),
        };
        s.push_str(&format!("{k},{val}\n"));
    }
    s.push_str("\nminute,p5,p25,p50,p75,p95\n");
    for b in &r.agp {
        s.push_str(&format!("{},{},{},{},{},{}\n", b.minute, b.p5, b.p25, b.p50, b.p75, b.p95));
    }
    Ok(s)
}
