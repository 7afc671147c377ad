//! The `diabase` binary's commands, run as a process.
#![allow(clippy::unwrap_used)] // a test fails by panicking

mod common;

use common::TempDir;
use std::io::Write;
use std::process::{Command, Stdio};

fn diabase(db: &str) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_diabase"));
    c.env("DATABASE_URL", db)
        .env("RUST_LOG", "warn")
        .env("DIABASE_KEY_FILE", std::env::temp_dir().join("diabase-cli-tests.key"))
        .env("DIABASE_MAIL_OUTBOX", std::env::temp_dir().join("diabase-cli-tests-outbox"));
    c
}

#[test]
fn help_for_every_command() {
    for args in [
        vec!["--help"],
        vec!["serve", "--help"],
        vec!["migrate", "--help"],
        vec!["user", "add", "--help"],
        vec!["audit", "verify", "--help"],
        vec!["config", "check", "--help"],
    ] {
        let out = diabase("sqlite::memory:").args(&args).output().unwrap();
        assert!(out.status.success(), "{args:?}");
        assert!(String::from_utf8_lossy(&out.stdout).contains("Usage"), "{args:?}");
    }
}

/// `diabase config check`: the effective settings with where each came
/// from, secrets masked; every malformed value stops every command with a
/// message naming the variable; secrets can come from `*_FILE`.
#[test]
fn config_check_validates_names_and_masks() {
    let dir = TempDir::new("cli-config");
    let text = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
    let smtp_file = dir.0.join("smtp-url");
    std::fs::write(&smtp_file, "smtp://mailer:hunter22-smtp@mail.example.org:587?tls=required\n").unwrap();
    let out = diabase("postgres://diabase:pg-pass-1@db.example.org/diabase")
        .env("DIABASE_KEY_FILE", dir.0.join("field.key"))
        .env("DIABASE_SMTP_URL_FILE", &smtp_file)
        .env("DIABASE_SMS_URL", "https://sms.example.org/send")
        .env("DIABASE_SMS_TOKEN", "sms-token-9")
        .env("DIABASE_PUBLIC_URL", "https://diabase.example.org/")
        .env("DIABASE_SESSION_IDLE_MINUTES", "45")
        .env("DIABASE_LOGIN_LIMIT_PER_IP", "") // empty: the same as unset
        .args(["config", "check", "--session-idle-minutes", "30"])
        .output()
        .unwrap();
    let (stdout, stderr) = (text(&out.stdout), text(&out.stderr));
    assert!(out.status.success(), "{stdout}{stderr}");
    for secret in ["pg-pass-1", "hunter22-smtp", "sms-token-9"] {
        assert!(!stdout.contains(secret) && !stderr.contains(secret), "{secret} shown:\n{stdout}{stderr}");
    }
    let line = |name: &str| {
        stdout.lines().find(|l| l.split_whitespace().next() == Some(name)).unwrap_or_else(|| panic!("{name}: {stdout}"))
    };
    let fields = |name: &str| line(name).split_whitespace().map(str::to_string).collect::<Vec<_>>();
    assert_eq!(
        fields("DATABASE_URL"),
        ["DATABASE_URL", "postgres://diabase:***@db.example.org/diabase", "environment"]
    );
    assert_eq!(
        fields("DIABASE_SMTP_URL"),
        ["DIABASE_SMTP_URL", "smtp://mailer:***@mail.example.org:587?tls=required", "file"]
    );
    assert!(line("DIABASE_SMS_TOKEN").contains("masked"), "{stdout}");
    // The flag wins over the variable; an empty variable is unset.
    assert_eq!(fields("DIABASE_SESSION_IDLE_MINUTES"), ["DIABASE_SESSION_IDLE_MINUTES", "30", "flag"]);
    assert_eq!(fields("DIABASE_LOGIN_LIMIT_PER_IP"), ["DIABASE_LOGIN_LIMIT_PER_IP", "100", "default"]);
    assert_eq!(fields("DIABASE_PUBLIC_URL"), ["DIABASE_PUBLIC_URL", "https://diabase.example.org", "environment"]);
    // An https public address makes cookies Secure.
    assert_eq!(fields("DIABASE_SECURE_COOKIES")[1], "true");

    // A malformed value stops every command, the server first, naming the variable.
    for (var, value) in [
        ("DIABASE_SESSION_IDLE_MINUTES", "soon"),
        ("DIABASE_TRUSTED_PROXY_HOPS", "0"),
        ("DIABASE_TRUST_PROXY", "maybe"),
        ("DIABASE_PUBLIC_URL", "diabase.example.org"),
        ("DIABASE_ADDR", "localhost"),
        ("DIABASE_MAX_UPLOAD_MB", "5000"),
    ] {
        for args in [vec!["config", "check"], vec!["serve"], vec!["migrate"]] {
            let out = diabase("sqlite::memory:").env(var, value).args(&args).output().unwrap();
            let stderr = text(&out.stderr);
            assert!(!out.status.success(), "{var}={value} {args:?} was accepted");
            assert!(stderr.contains(var) && stderr.contains(value), "{var}={value} {args:?}: {stderr}");
        }
    }
    // Problems only seen together are all listed, and secrets are never echoed.
    let out = diabase("mysql://root:db-pass-2@db.example.org/x")
        .env("DIABASE_TLS_CERT", &smtp_file)
        .env("DIABASE_SMS_FROM", "Clinic")
        .env("DIABASE_SMTP_URL", "smtp://x:y@mail.example.org")
        .env("DIABASE_SMTP_URL_FILE", &smtp_file)
        .args(["config", "check"])
        .output()
        .unwrap();
    let stderr = text(&out.stderr);
    assert!(!out.status.success());
    for expected in
        ["DIABASE_TLS_KEY", "DIABASE_SMS_URL", "DIABASE_SMTP_URL_FILE are both set", "DATABASE_URL must start"]
    {
        assert!(stderr.contains(expected), "{expected}: {stderr}");
    }
    assert!(!stderr.contains("db-pass-2"), "{stderr}");
    let out = diabase("sqlite::memory:").env("DIABASE_SMS_FROM", "Clinic").arg("serve").output().unwrap();
    assert!(!out.status.success() && text(&out.stderr).contains("DIABASE_SMS_URL"), "{}", text(&out.stderr));

    // DATABASE_URL_FILE is the database every command uses.
    let db_file = dir.0.join("database-url");
    let db_path = dir.0.join("from-file.sqlite");
    std::fs::write(&db_file, format!("sqlite://{}?mode=rwc\n", db_path.display())).unwrap();
    let out = diabase("")
        .env_remove("DATABASE_URL")
        .env("DATABASE_URL_FILE", &db_file)
        .env("DIABASE_KEY_FILE", dir.0.join("field.key"))
        .arg("migrate")
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(db_path.is_file(), "migrate did not use DATABASE_URL_FILE");
}

#[test]
fn user_add_migrate_and_audit_verify() {
    let dir = TempDir::new("cli");
    let db = format!("sqlite://{}/cli.sqlite?mode=rwc", dir.0.display());
    let out = diabase(&db).arg("migrate").output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));

    let mut child = diabase(&db)
        .args(["user", "add", "--email", "Op@Example.org", "--role", "clinician", "--password-stdin"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(b"violet-harbour-lantern-92\n").unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["email"], "op@example.org");
    assert_eq!(v["role"], "clinician");
    assert!(v.get("password").is_none());

    // Generated password, printed once; a patient gets a data space.
    let out = diabase(&db).args(["user", "add", "--email", "pat@example.org", "--role", "patient"]).output().unwrap();
    assert!(out.status.success());
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(v["password"].as_str().unwrap().len() >= 40);
    assert!(v["patient_id"].is_string());

    // Duplicate email: a clear error and a distinct exit code.
    let out = diabase(&db).args(["user", "add", "--email", "pat@example.org", "--role", "patient"]).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("already exists"));
    // reset-2fa: an account without 2FA says so; an unknown one is an error.
    let out = diabase(&db).args(["user", "reset-2fa", "--email", "pat@example.org"]).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(String::from_utf8_lossy(&out.stdout).contains("had no two-factor"));
    assert!(
        !diabase(&db).args(["user", "reset-2fa", "--email", "nobody@example.org"]).output().unwrap().status.success()
    );
    // A bad role is refused by the parser.
    assert!(
        !diabase(&db)
            .args(["user", "add", "--email", "x@example.org", "--role", "root"])
            .output()
            .unwrap()
            .status
            .success()
    );

    let out = diabase(&db).args(["audit", "verify"]).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stdout));
    assert!(String::from_utf8_lossy(&out.stdout).contains("intact: 2 entries"));

    // Tamper with entry 2 through SQLite directly.
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        use sea_orm::ConnectionTrait;
        let conn = store::connect(&db).await.unwrap();
        conn.execute_unprepared("UPDATE audit_log SET action = 'nothing_to_see' WHERE seq = 2").await.unwrap();
    });
    let out = diabase(&db).args(["audit", "verify"]).output().unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stdout).contains("entry 2"), "{}", String::from_utf8_lossy(&out.stdout));
}

#[test]
fn keys_rotate_reseals_every_identifier() {
    use sea_orm::EntityTrait;
    let dir = TempDir::new("keys");
    let db = format!("sqlite://{}/keys.sqlite?mode=rwc", dir.0.display());
    let key_file = dir.0.join("field.key");
    let rt = tokio::runtime::Runtime::new().unwrap();
    // A clinic record sealed under the first key.
    let old_key = store::crypto::FieldCipher::load_or_create(&key_file).unwrap();
    let record = rt.block_on(async {
        let cfg = app::service::Config {
            cipher: std::sync::Arc::new(store::crypto::FieldCipher::new(old_key)),
            ..app::service::Config::default()
        };
        let opts = server::config::leptos_options("127.0.0.1:0".parse().unwrap(), &dir.0);
        let state = server::build_state(&db, cfg, opts).await.unwrap();
        let email = app::service::auth::Email::parse("keys@clinic.example").unwrap();
        let user = app::service::auth::create_user(&state.db, &email, "x", "Keys", "clinician", "UTC", true, 0)
            .await
            .unwrap()
            .unwrap();
        let actor = app::service::Actor { user, via: app::service::AuthVia::Session(String::new()) };
        let c = app::service::clinic::create_clinic(&state, &actor, "Key Clinic", 0).await.unwrap();
        let input = app::service::clinic::NewRecord {
            name: "Kim Key".into(),
            birth_date: Some("1970-01-02".into()),
            mrn: Some("K-7".into()),
        };
        app::service::clinic::create_record(&state, &actor, &c.id, input, app::service::now_ms()).await.unwrap()
    });
    let out = diabase(&db).env("DIABASE_KEY_FILE", &key_file).args(["keys", "rotate"]).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("re-sealed 4 values"),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    let new_key = store::crypto::FieldCipher::load_or_create(&key_file).unwrap();
    assert_ne!(new_key, old_key, "the key file holds the new key");
    let retired: Vec<_> = std::fs::read_dir(&dir.0)
        .unwrap()
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().starts_with("field.key.retired-"))
        .collect();
    assert_eq!(retired.len(), 1, "the old key is kept");
    let row = rt.block_on(async {
        let conn = store::connect(&db).await.unwrap();
        store::entity::patient_records::Entity::find_by_id(record).one(&conn).await.unwrap().unwrap()
    });
    let new_only = store::crypto::FieldCipher::new(new_key);
    assert_eq!(new_only.open(&row.name).unwrap(), "Kim Key");
    assert_eq!(new_only.open(row.mrn.as_deref().unwrap()).unwrap(), "K-7");
    assert!(store::crypto::FieldCipher::new(old_key).open(&row.name).is_err(), "the old key alone no longer opens it");
    assert_eq!(row.mrn_index.unwrap(), new_only.index(&row.clinic_id, "K-7"));
}

#[test]
fn export_json_and_fhir() {
    let dir = TempDir::new("cli-export");
    let db = format!("sqlite://{}/cli.sqlite?mode=rwc", dir.0.display());
    assert!(diabase(&db).arg("migrate").output().unwrap().status.success());
    let out = diabase(&db).args(["user", "add", "--email", "port@example.org", "--role", "patient"]).output().unwrap();
    assert!(out.status.success());
    let csv = dir.0.join("carelink.csv");
    std::fs::write(&csv, devices::import::synth::carelink_csv(300)).unwrap();
    let out = diabase(&db).args(["import", "--user", "port@example.org"]).arg(&csv).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let summary: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let total: u64 = summary["records"].as_object().unwrap().values().map(|v| v.as_u64().unwrap()).sum();

    let file = dir.0.join("me.json");
    let out = diabase(&db)
        .args(["export", "--user", "port@example.org", "--format", "json", "--out"])
        .arg(&file)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let v: serde_json::Value = serde_json::from_slice(&std::fs::read(&file).unwrap()).unwrap();
    assert_eq!(v["records"].as_array().unwrap().len() as u64, total);

    let out = diabase(&db).args(["export", "--user", "port@example.org", "--format", "fhir"]).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let b: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(b["resourceType"], "Bundle");
    let cgm = b["entry"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["resource"]["code"]["coding"][0]["code"] == "99504-3")
        .count() as u64;
    assert_eq!(cgm, summary["records"]["cgm"].as_u64().unwrap());

    assert!(
        !diabase(&db)
            .args(["export", "--user", "nobody@example.org", "--format", "json"])
            .output()
            .unwrap()
            .status
            .success()
    );
    assert!(
        !diabase(&db)
            .args(["export", "--user", "port@example.org", "--format", "xml"])
            .output()
            .unwrap()
            .status
            .success()
    );
    let out = diabase(&db).args(["audit", "verify"]).output().unwrap();
    assert!(out.status.success());
}

/// A free loopback port (bound, then released for the server to take).
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// Kills the server process when the test ends, however it ends.
struct Killed(std::process::Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_https_with_hsts_and_secure_cookies() {
    let dir = TempDir::new("cli-tls");
    let cert = rcgen::generate_simple_self_signed(vec!["localhost".to_string(), "127.0.0.1".to_string()]).unwrap();
    let (cert_pem, key_pem) = (cert.cert.pem(), cert.key_pair.serialize_pem());
    let (cert_file, key_file) = (dir.0.join("cert.pem"), dir.0.join("key.pem"));
    std::fs::write(&cert_file, &cert_pem).unwrap();
    std::fs::write(&key_file, &key_pem).unwrap();
    let db = format!("sqlite://{}/tls.sqlite?mode=rwc", dir.0.display());

    // Half a configuration, or a file that is not a certificate: a clear error, no server.
    let out =
        diabase(&db).args(["serve", "--addr", "127.0.0.1:1"]).env("DIABASE_TLS_CERT", &cert_file).output().unwrap();
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("DIABASE_TLS_KEY"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = diabase(&db)
        .args(["serve", "--addr", "127.0.0.1:1"])
        .env("DIABASE_TLS_CERT", &key_file)
        .env("DIABASE_TLS_KEY", &key_file)
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("key.pem"), "{}", String::from_utf8_lossy(&out.stderr));

    let port = free_port();
    let child = diabase(&db)
        .args(["serve", "--addr", &format!("127.0.0.1:{port}")])
        .env("DIABASE_TLS_CERT", &cert_file)
        .env("DIABASE_TLS_KEY", &key_file)
        .env("DIABASE_KEY_FILE", dir.0.join("field.key"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let _server = Killed(child);
    let client = reqwest::Client::builder()
        .add_root_certificate(reqwest::Certificate::from_pem(cert_pem.as_bytes()).unwrap())
        .cookie_store(true)
        .build()
        .unwrap();
    let base = format!("https://localhost:{port}");
    let mut health = None;
    for _ in 0..200 {
        if let Ok(r) = client.get(format!("{base}/api/v1/health")).send().await {
            health = Some(r);
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    let r = health.expect("the HTTPS server answers");
    assert_eq!(r.status(), 200);
    let hsts = r.headers().get("strict-transport-security").expect("HSTS under TLS").to_str().unwrap().to_string();
    assert!(hsts.contains("max-age="), "{hsts}");

    // Sign up and log in over HTTPS: the session cookie is Secure, with the __Host- prefix.
    let r = client
        .post(format!("{base}/api/v1/auth/signup"))
        .json(&serde_json::json!({"email": "tls@example.org", "password": "violet-harbour-lantern-92", "display_name": "T"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    let r = client
        .post(format!("{base}/api/v1/auth/login"))
        .json(&serde_json::json!({"email": "tls@example.org", "password": "violet-harbour-lantern-92"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let cookie = r.headers().get("set-cookie").unwrap().to_str().unwrap().to_string();
    assert!(cookie.starts_with("__Host-") && cookie.contains("Secure"), "{cookie}");
    assert_eq!(client.get(format!("{base}/api/v1/me")).send().await.unwrap().status(), 200);

    // Plain HTTP to the TLS port gets no HTTP answer.
    let plain = reqwest::Client::new().get(format!("http://127.0.0.1:{port}/api/v1/health")).send().await;
    assert!(plain.is_err() || !plain.unwrap().status().is_success());
    // A client that does not trust the certificate is refused.
    assert!(reqwest::Client::new().get(format!("{base}/api/v1/health")).send().await.is_err());
}

/// Removing the newest audit entry (the chain stays whole) is reported:
/// `diabase audit verify` checks the chain against its sealed head.
async fn audit_verify_reports_a_truncated_log(backend: common::Backend) {
    let Some((db, pg_name, _dir)) = common::fresh_database(backend).await else { return };
    let tmp = TempDir::new("cli-audit-head");
    let run =
        |args: &[&str]| diabase(&db).env("DIABASE_KEY_FILE", tmp.0.join("field.key")).args(args).output().unwrap();
    for who in ["a", "b", "c"] {
        let out = run(&["user", "add", "--email", &format!("{who}@example.org"), "--role", "patient"]);
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    }
    let out = run(&["audit", "verify"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stdout));
    assert!(String::from_utf8_lossy(&out.stdout).contains("intact: 3 entries"));
    {
        use sea_orm::ConnectionTrait;
        let conn = store::connect(&db).await.unwrap();
        conn.execute_unprepared("DELETE FROM audit_log WHERE seq = (SELECT max(seq) FROM audit_log)").await.unwrap();
        let _ = conn.close().await;
    }
    let out = run(&["audit", "verify"]);
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(!out.status.success(), "{text}");
    assert!(text.contains("ends at entry 2") && text.contains("says 3 entries"), "{text}");
    // Another key file: the head does not verify.
    let out = diabase(&db).env("DIABASE_KEY_FILE", tmp.0.join("other.key")).args(["audit", "verify"]).output().unwrap();
    assert!(!out.status.success());
    common::drop_pg(pg_name).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn audit_verify_reports_a_truncated_log_sqlite() {
    audit_verify_reports_a_truncated_log(common::Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn audit_verify_reports_a_truncated_log_postgres() {
    audit_verify_reports_a_truncated_log(common::Backend::Postgres).await;
}

/// The access log names route templates, never a path, query or header as
/// sent (they carry Nightscout secrets, tokens and ids); the metrics
/// listener counts the same requests and is not on the public address.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_logs_access_and_exports_metrics() {
    let dir = TempDir::new("cli-ops");
    let db = format!("sqlite://{}/ops.sqlite?mode=rwc", dir.0.display());
    let (port, mport) = (free_port(), free_port());
    let log = dir.0.join("stderr.log");
    let child = diabase(&db)
        .args(["serve", "--addr", &format!("127.0.0.1:{port}"), "--metrics-addr", &format!("127.0.0.1:{mport}")])
        .env("DIABASE_KEY_FILE", dir.0.join("field.key"))
        .env("RUST_LOG", "info")
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log).unwrap())
        .spawn()
        .unwrap();
    let server = Killed(child);
    let http = reqwest::Client::new();
    let base = format!("http://127.0.0.1:{port}");
    let mut up = false;
    for _ in 0..200 {
        if http.get(format!("{base}/api/v1/health")).send().await.is_ok_and(|r| r.status() == 200) {
            up = true;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert!(up, "the server answers");
    let r = http
        .get(format!("{base}/api/v1/entries.json?token=leaky-token-123&count=5"))
        .header("api-secret", "0badc0ffee0badc0ffee0badc0ffee0badc0ffee")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    let r = http.get(format!("{base}/ns/site-secret-987/api/v1/entries.json")).send().await.unwrap();
    assert!(r.status().is_client_error(), "{}", r.status());
    assert_eq!(http.get(format!("{base}/no/such/page-xyz")).send().await.unwrap().status(), 404);
    // SIGHUP (`systemctl reload`) does not end a plain-HTTP server.
    assert!(Command::new("kill").args(["-HUP", &server.0.id().to_string()]).status().unwrap().success());
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    assert_eq!(http.get(format!("{base}/api/v1/health")).send().await.unwrap().status(), 200);
    // Metrics are served on their own address only.
    assert_eq!(http.get(format!("{base}/metrics")).send().await.unwrap().status(), 404);
    let m = http.get(format!("http://127.0.0.1:{mport}/metrics")).send().await.unwrap();
    assert_eq!(m.status(), 200);
    assert!(m.headers()["content-type"].to_str().unwrap().starts_with("text/plain; version=0.0.4"));
    let m = m.text().await.unwrap();
    for expected in [
        "diabase_http_requests_total{method=\"GET\",route=\"/api/v1/entries.json\",status=\"401\"} 1",
        "diabase_http_requests_total{method=\"GET\",route=\"/ns/{site}/api/v1/entries.json\",status=\"",
        "diabase_http_requests_total{method=\"GET\",route=\"(files)\",status=\"404\"} 2",
        "diabase_http_requests_total{method=\"GET\",route=\"/api/v1/health\",status=\"200\"}",
        "diabase_http_request_duration_seconds_count{route=\"/api/v1/health\"}",
        "diabase_accounts 0",
        "diabase_mail_queue_pending 0",
        "diabase_db_pool_connections ",
    ] {
        assert!(m.contains(expected), "{expected} missing from:\n{m}");
    }
    drop(server);
    let log = std::fs::read_to_string(&log).unwrap();
    let access: Vec<&str> = log.lines().filter(|l| l.contains("diabase::access")).collect();
    assert!(access.iter().any(|l| l.contains("route=/api/v1/entries.json") && l.contains("status=401")), "{log}");
    assert!(access.iter().any(|l| l.contains("route=/ns/{site}/api/v1/entries.json")), "{log}");
    for secret in ["leaky-token-123", "0badc0ffee", "site-secret-987", "page-xyz", "count=5"] {
        assert!(!log.contains(secret) && !m.contains(secret), "{secret} was logged:\n{log}");
    }
}

/// `diabase backup` and a restore: the copy (SQLite) or the dump restored
/// with pg_restore (PostgreSQL) holds the same record, exported byte for
/// byte the same, and its audit log verifies.
async fn backup_and_restore(backend: common::Backend) {
    let Some((db, pg_name, _tmp)) = common::fresh_database(backend).await else { return };
    let dir = TempDir::new("cli-backup");
    let key = dir.0.join("field.key");
    let run = move |db: &str, args: &[&str]| {
        let out = diabase(db).env("DIABASE_KEY_FILE", &key).args(args).output().unwrap();
        assert!(out.status.success(), "{args:?}: {}", String::from_utf8_lossy(&out.stderr));
        out
    };
    run(&db, &["user", "add", "--email", "kept@example.org", "--role", "patient"]);
    let csv = dir.0.join("carelink.csv");
    std::fs::write(&csv, devices::import::synth::carelink_csv(200)).unwrap();
    run(&db, &["import", "--user", "kept@example.org", csv.to_str().unwrap()]);
    let before = run(&db, &["export", "--user", "kept@example.org", "--format", "json"]).stdout;

    let file = dir.0.join(if backend == common::Backend::Postgres { "kept.dump" } else { "kept.sqlite" });
    let out = run(&db, &["backup", "--out", file.to_str().unwrap()]);
    assert!(String::from_utf8_lossy(&out.stdout).contains("written to"));
    assert!(String::from_utf8_lossy(&out.stderr).contains("key file"), "the key file is not in the backup: say so");
    // Never over an existing file.
    let again = diabase(&db).args(["backup", "--out", file.to_str().unwrap()]).output().unwrap();
    assert!(!again.status.success());

    let (restored, restored_pg) = match backend {
        common::Backend::Sqlite => (format!("sqlite://{}?mode=rwc", file.display()), None),
        common::Backend::Postgres => {
            use sea_orm::ConnectionTrait;
            let name = format!("diabase_restored_{}", uuid::Uuid::new_v4().simple());
            let admin = sea_orm::Database::connect(common::PG_ADMIN_URL).await.unwrap();
            admin.execute_unprepared(&format!("CREATE DATABASE {name}")).await.unwrap();
            let _ = admin.close().await;
            let url = format!("postgres://postgres@127.0.0.1:5432/{name}");
            let status = std::process::Command::new("pg_restore")
                .args(["--no-owner", "--exit-on-error", "--dbname", &url])
                .arg(&file)
                .status()
                .unwrap();
            assert!(status.success(), "pg_restore");
            (url, Some(name))
        }
    };
    let after = run(&restored, &["export", "--user", "kept@example.org", "--format", "json"]).stdout;
    let records = |b: &[u8]| {
        let v: serde_json::Value = serde_json::from_slice(b).unwrap();
        (v["account"]["email"].clone(), v["records"].clone())
    };
    let (email, kept) = records(&before);
    assert_eq!(email, "kept@example.org");
    assert!(kept.as_array().unwrap().len() > 50, "{kept}");
    assert_eq!(records(&after), (email, kept), "the restored database exports the same record");
    assert!(String::from_utf8_lossy(&run(&restored, &["audit", "verify"]).stdout).contains("intact"));

    common::drop_pg(restored_pg).await;
    common::drop_pg(pg_name).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn backup_and_restore_sqlite() {
    backup_and_restore(common::Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn backup_and_restore_postgres() {
    backup_and_restore(common::Backend::Postgres).await;
}

/// SIGHUP reads the certificate files again: new connections get the new
/// certificate, with no restart; a broken pair is refused and the one in
/// use stays.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_certificate_reloads_on_sighup() {
    let dir = TempDir::new("cli-tls-reload");
    let make = || {
        let c = rcgen::generate_simple_self_signed(vec!["localhost".to_string()]).unwrap();
        (c.cert.pem(), c.key_pair.serialize_pem(), c.cert.der().to_vec())
    };
    let (pem_a, key_a, der_a) = make();
    let (pem_b, key_b, der_b) = make();
    let (cert_file, key_file) = (dir.0.join("cert.pem"), dir.0.join("key.pem"));
    std::fs::write(&cert_file, &pem_a).unwrap();
    std::fs::write(&key_file, &key_a).unwrap();
    let db = format!("sqlite://{}/tls.sqlite?mode=rwc", dir.0.display());
    let port = free_port();
    let child = diabase(&db)
        .args(["serve", "--addr", &format!("127.0.0.1:{port}")])
        .env("DIABASE_TLS_CERT", &cert_file)
        .env("DIABASE_TLS_KEY", &key_file)
        .env("DIABASE_KEY_FILE", dir.0.join("field.key"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let pid = child.id();
    let _server = Killed(child);
    // A new client each time: a new connection, a new handshake.
    let served = || {
        let (pem_a, pem_b) = (pem_a.clone(), pem_b.clone());
        async move {
            let client = reqwest::Client::builder()
                .add_root_certificate(reqwest::Certificate::from_pem(pem_a.as_bytes()).unwrap())
                .add_root_certificate(reqwest::Certificate::from_pem(pem_b.as_bytes()).unwrap())
                .tls_info(true)
                .build()
                .unwrap();
            let r = client.get(format!("https://localhost:{port}/api/v1/health")).send().await.ok()?;
            r.extensions().get::<reqwest::tls::TlsInfo>()?.peer_certificate().map(<[u8]>::to_vec)
        }
    };
    let mut first = None;
    for _ in 0..200 {
        if let Some(d) = served().await {
            first = Some(d);
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert_eq!(first.expect("the HTTPS server answers"), der_a);
    let hangup = || assert!(Command::new("kill").args(["-HUP", &pid.to_string()]).status().unwrap().success());

    // A key that does not go with the certificate: refused, A stays.
    std::fs::write(&cert_file, &pem_b).unwrap();
    hangup();
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    assert_eq!(served().await.expect("still serving"), der_a);

    std::fs::write(&key_file, &key_b).unwrap();
    hangup();
    let mut now = None;
    for _ in 0..50 {
        now = served().await;
        if now.as_deref() == Some(&der_b[..]) {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert_eq!(now.expect("still serving"), der_b, "the new certificate is served after SIGHUP");
}
