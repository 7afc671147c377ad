//! Test support: boot the real server on a random port against a fresh,
//! migrated SQLite file or PostgreSQL database.
#![allow(clippy::unwrap_used)] // a test fails by panicking
#![allow(dead_code)]

use app::service::{AppState, Config};
use std::net::SocketAddr;
use std::sync::Arc;

pub const PG_ADMIN_URL: &str = "postgres://postgres@127.0.0.1:5432/postgres";

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

pub struct TestApp {
    pub addr: SocketAddr,
    pub base: String,
    pub state: AppState,
    pub database_url: String,
    backend: Backend,
    pg_name: Option<String>,
    _dir: Option<TempDir>,
    _outbox: TempDir,
    server: tokio::task::JoinHandle<()>,
}

/// A temporary folder removed on drop.
pub struct TempDir(pub std::path::PathBuf);

impl TempDir {
    pub fn new(tag: &str) -> TempDir {
        let p = std::env::temp_dir().join(format!("diabase-test-{tag}-{}", uuid::Uuid::new_v4()));
        std::fs::create_dir_all(&p).expect("temp dir");
        TempDir(p)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn ci() -> bool {
    std::env::var("CI").map(|v| v == "true").unwrap_or(false)
}

/// Drops a PostgreSQL database a test made (`None`: nothing to drop).
pub async fn drop_pg(name: Option<String>) {
    if let Some(name) = name {
        use sea_orm::ConnectionTrait;
        if let Ok(admin) = sea_orm::Database::connect(PG_ADMIN_URL).await {
            let _ = admin.execute_unprepared(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)")).await;
            let _ = admin.close().await;
        }
    }
}

/// Makes a fresh database; `None` (test skipped) when PostgreSQL is not
/// reachable outside CI. Under CI=true an unreachable server fails the test.
pub async fn fresh_database(backend: Backend) -> Option<(String, Option<String>, Option<TempDir>)> {
    match backend {
        Backend::Sqlite => {
            let dir = TempDir::new("sqlite");
            let url = format!("sqlite://{}/test.sqlite?mode=rwc", dir.0.display());
            Some((url, None, Some(dir)))
        }
        Backend::Postgres => {
            use sea_orm::ConnectionTrait;
            let admin = match sea_orm::Database::connect(PG_ADMIN_URL).await {
                Ok(c) => c,
                Err(e) => {
                    if ci() {
                        panic!("PostgreSQL at 127.0.0.1:5432 is required under CI=true: {e}");
                    }
                    eprintln!("SKIP: PostgreSQL not reachable at 127.0.0.1:5432 ({e})");
                    return None;
                }
            };
            let name = format!("diabase_test_{}", uuid::Uuid::new_v4().simple());
            admin.execute_unprepared(&format!("CREATE DATABASE {name}")).await.expect("create database");
            let _ = admin.close().await;
            Some((format!("postgres://postgres@127.0.0.1:5432/{name}"), Some(name), None))
        }
    }
}

impl TestApp {
    pub async fn spawn(backend: Backend) -> Option<TestApp> {
        Self::spawn_with(backend, Config::default()).await
    }

    pub async fn spawn_with(backend: Backend, config: Config) -> Option<TestApp> {
        let site = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target/site");
        Self::spawn_on_site(backend, config, &site).await
    }

    /// A server publishing the site folder `site`.
    pub async fn spawn_on_site(backend: Backend, mut config: Config, site: &std::path::Path) -> Option<TestApp> {
        let _ = tracing_subscriber::fmt()
            .with_test_writer()
            .with_env_filter(tracing_subscriber::EnvFilter::new("error"))
            .try_init();
        let (url, pg_name, dir) = fresh_database(backend).await?;
        // Mail goes to a folder of this test's own.
        let outbox = TempDir::new("outbox");
        config.mail_outbox = outbox.0.clone();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        let opts = server::config::leptos_options(addr, site);
        let state = server::build_state(&url, config, opts).await.expect("state");
        let st = state.clone();
        let server = tokio::spawn(async move {
            let _ = server::serve_on(listener, st, false).await;
        });
        let _ = Arc::new(());
        Some(TestApp {
            addr,
            base: format!("http://{addr}"),
            state,
            database_url: url,
            backend,
            pg_name,
            _dir: dir,
            _outbox: outbox,
            server,
        })
    }

    /// A second server process's twin: its own state, pool and background
    /// workers on this server's database and key (as `diabase serve`
    /// processes behind one load balancer). Dropping it leaves the database.
    pub async fn beside(&self) -> TestApp {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        let opts = server::config::leptos_options(addr, std::path::Path::new(&*self.state.leptos_options.site_root));
        let state = server::build_state(&self.database_url, (*self.state.config).clone(), opts).await.expect("state");
        let st = state.clone();
        let server = tokio::spawn(async move {
            let _ = server::serve_on(listener, st, false).await;
        });
        TestApp {
            addr,
            base: format!("http://{addr}"),
            state,
            database_url: self.database_url.clone(),
            backend: self.backend,
            pg_name: None,
            _dir: None,
            _outbox: TempDir::new("outbox-beside"),
            server,
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.base, path)
    }

    /// A client with its own cookie jar.
    pub fn client(&self) -> reqwest::Client {
        reqwest::Client::builder()
            .cookie_store(true)
            .redirect(reqwest::redirect::Policy::none())
            .timeout(std::time::Duration::from_secs(120))
            .build()
            .expect("client")
    }

    /// Signs up, confirms the address (from the outbox mail) and logs in;
    /// returns the logged-in client.
    pub async fn user(&self, email: &str, role: &str) -> reqwest::Client {
        self.user_with(email, role, true).await
    }

    /// As [`TestApp::user`]; `confirm` false leaves the address unconfirmed
    /// (and the mail where it went).
    pub async fn user_with(&self, email: &str, role: &str, confirm: bool) -> reqwest::Client {
        let c = self.client();
        let r = c
            .post(self.url("/api/v1/auth/signup"))
            .json(&serde_json::json!({"email": email, "password": STRONG, "display_name": "Test Person", "role": role}))
            .send()
            .await
            .expect("signup");
        assert_eq!(r.status(), 201, "signup {email}");
        if confirm {
            self.confirm_email(email).await;
        }
        let r = c
            .post(self.url("/api/v1/auth/login"))
            .json(&serde_json::json!({"email": email, "password": STRONG}))
            .send()
            .await
            .expect("login");
        assert_eq!(r.status(), 200, "login {email}");
        c
    }

    /// The outbox messages (`.eml` files), oldest first.
    pub fn outbox_mails(&self) -> Vec<String> {
        let Ok(dir) = std::fs::read_dir(&self.state.config.mail_outbox) else { return Vec::new() };
        let mut files: Vec<_> =
            dir.flatten().map(|e| e.path()).filter(|p| p.extension().is_some_and(|x| x == "eml")).collect();
        files.sort();
        files.iter().filter_map(|f| std::fs::read_to_string(f).ok()).collect()
    }

    /// The newest outbox mail for which `matches` holds, waiting up to 10 s
    /// for it: mail leaves through the queue's worker, just after the
    /// request that queued it answered.
    pub async fn wait_for_mail(&self, matches: impl Fn(&str) -> bool) -> Option<String> {
        let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(10);
        loop {
            if let Some(m) = self.outbox_mails().into_iter().rev().find(|m| matches(m)) {
                return Some(m);
            }
            if tokio::time::Instant::now() >= deadline {
                return None;
            }
            tokio::time::sleep(std::time::Duration::from_millis(25)).await;
        }
    }

    /// The token of the newest outbox mail to `email` whose body links to
    /// `path?token=` (waiting up to 10 s for it).
    pub async fn token_from_mail(&self, email: &str, path: &str) -> Option<String> {
        let to = format!("To: <{}>", email.trim().to_lowercase());
        let needle = format!("{path}?token=");
        let text = self.wait_for_mail(|m| m.contains(&to) && m.contains(&needle)).await?;
        let at = text.find(&needle)? + needle.len();
        Some(text[at..].chars().take_while(|c| c.is_ascii_alphanumeric() || *c == '-' || *c == '_').collect())
    }

    /// Confirms a new account's address with the link of its sign-up mail.
    pub async fn confirm_email(&self, email: &str) {
        let token = self
            .token_from_mail(email, "/verify-email")
            .await
            .unwrap_or_else(|| panic!("no confirmation mail to {email}"));
        let r = self
            .client()
            .post(self.url("/api/v1/auth/verify-email"))
            .json(&serde_json::json!({"token": token}))
            .send()
            .await
            .expect("verify");
        assert_eq!(r.status(), 204, "confirm {email}");
    }

    /// Stops the server and drops the PostgreSQL database.
    pub async fn finish(self) {
        // A server that does not stop fails the test instead of stalling the run.
        tokio::time::timeout(std::time::Duration::from_secs(120), self.finish_inner())
            .await
            .expect("the test server stopped within 2 minutes");
    }

    async fn finish_inner(self) {
        self.server.abort();
        let _ = self.server.await;
        let _ = self.state.db.clone().close().await;
        drop_pg(self.pg_name.clone()).await;
        let _ = self.backend;
    }
}

/// GETs a page; a body that stalls for a minute fails the test with what
/// arrived so far.
pub async fn page(c: &reqwest::Client, url: &str) -> String {
    let mut r = c.get(url).send().await.unwrap_or_else(|e| panic!("GET {url}: {e}"));
    let mut body = Vec::new();
    loop {
        match tokio::time::timeout(std::time::Duration::from_secs(60), r.chunk()).await {
            Ok(Ok(Some(b))) => body.extend_from_slice(&b),
            Ok(Ok(None)) => break,
            Ok(Err(e)) => panic!("GET {url}: {e}"),
            Err(_) => {
                let tail = String::from_utf8_lossy(&body[body.len().saturating_sub(3000)..]);
                panic!("GET {url}: the page stalled after {} bytes; it ends with:\n{tail}", body.len());
            }
        }
    }
    String::from_utf8(body).expect("utf-8 page")
}

pub const STRONG: &str = "violet-harbour-lantern-92";

/// Runs a test body against both backends.
#[macro_export]
macro_rules! both_backends {
    ($name:ident) => {
        paste_mod!($name);
    };
}

#[macro_export]
macro_rules! paste_mod {
    ($name:ident) => {
        mod $name {
            use super::*;
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn sqlite() {
                if let Some(app) = TestApp::spawn(Backend::Sqlite).await {
                    super::$name(&app).await;
                    app.finish().await;
                }
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn postgres() {
                if let Some(app) = TestApp::spawn(Backend::Postgres).await {
                    super::$name(&app).await;
                    app.finish().await;
                }
            }
        }
    };
}

/// A response's JSON body.
pub async fn body(r: reqwest::Response) -> serde_json::Value {
    r.json().await.expect("json body")
}

/// A patient with a Nightscout site: the logged-in client, the site answer, the patient id.
pub async fn patient_with_site(app: &TestApp, email: &str) -> (reqwest::Client, serde_json::Value, String) {
    let c = app.user(email, "patient").await;
    let r = c.post(app.url("/api/v1/me/nightscout")).send().await.unwrap();
    assert_eq!(r.status(), 201);
    let site = body(r).await;
    let me = body(c.get(app.url("/api/v1/me")).send().await.unwrap()).await;
    (c, site, me["patient_id"].as_str().unwrap().to_string())
}
