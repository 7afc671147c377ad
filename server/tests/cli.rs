//! The `diabase` binary's commands, run as a process.

mod common;

use common::TempDir;
use std::io::Write;
use std::process::{Command, Stdio};

fn diabase(db: &str) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_diabase"));
    c.env("DATABASE_URL", db).env("RUST_LOG", "warn");
    c
}

#[test]
fn help_for_every_command() {
    for args in [vec!["--help"], vec!["serve", "--help"], vec!["migrate", "--help"], vec!["user", "add", "--help"], vec!["audit", "verify", "--help"]] {
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
        .stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(Stdio::piped())
        .spawn().unwrap();
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
    // A bad role is refused by the parser.
    assert!(!diabase(&db).args(["user", "add", "--email", "x@example.org", "--role", "root"]).output().unwrap().status.success());

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
