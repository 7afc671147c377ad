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
    ] {
        let out = diabase("sqlite::memory:").args(&args).output().unwrap();
        assert!(out.status.success(), "{args:?}");
        assert!(String::from_utf8_lossy(&out.stdout).contains("Usage"), "{args:?}");
    }
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
    if let Some(name) = pg_name {
        use sea_orm::ConnectionTrait;
        let admin = sea_orm::Database::connect(common::PG_ADMIN_URL).await.unwrap();
        let _ = admin.execute_unprepared(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)")).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn audit_verify_reports_a_truncated_log_sqlite() {
    audit_verify_reports_a_truncated_log(common::Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn audit_verify_reports_a_truncated_log_postgres() {
    audit_verify_reports_a_truncated_log(common::Backend::Postgres).await;
}
