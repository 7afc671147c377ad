//! Resource and guessing limits (issue 19, items 7, 8 and 10): memory
//! bounds on request bodies (a gzip bomb against the real `diabase` binary,
//! its RSS sampled), body limits, the glucose window cap, the `__Host-`
//! session cookie under TLS, and failure counting that concurrent guesses
//! cannot outrun. SQLite and PostgreSQL.
#![allow(clippy::unwrap_used)] // a test fails by panicking

mod common;

use app::service::Config;
use app::service::nightscout::sha1_hex;
use common::{Backend, TempDir, TestApp, body, drop_pg, patient_with_site};
use serde_json::{Value, json};
use std::io::Write;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn gzip(data: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    e.write_all(data).unwrap();
    e.finish().unwrap()
}

/// Four gzip bombs of about 32 KB each, each inflating to just under the
/// 32 MiB the server used to inflate: an array of millions of empty
/// objects, of zeros, of empty arrays, and one huge string.
fn bombs() -> Vec<Vec<u8>> {
    const INFLATED: usize = 31 * 1024 * 1024;
    let array = |item: &str| {
        let mut v = Vec::with_capacity(INFLATED + 16);
        v.push(b'[');
        while v.len() < INFLATED {
            v.extend_from_slice(item.as_bytes());
            v.push(b',');
        }
        v.extend_from_slice(item.as_bytes());
        v.push(b']');
        gzip(&v)
    };
    let mut string = Vec::with_capacity(INFLATED + 16);
    string.extend_from_slice(b"[\"");
    string.resize(INFLATED, b'a');
    string.extend_from_slice(b"\"]");
    vec![array("{}"), array("0"), array("[]"), gzip(&string)]
}

// ---------------------------------------------------------------------------------------------
// Item 7: gzip bombs against the real binary, memory sampled

fn rss_kb(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

/// Kills the server process when the test ends, however it ends.
struct Killed(std::process::Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

async fn gzip_bombs_keep_memory_bounded(backend: Backend) {
    let Some((db, pg_name, _dir)) = common::fresh_database(backend).await else { return };
    let tmp = TempDir::new("bombs");
    let bin = env!("CARGO_BIN_EXE_diabase");
    let cmd = |args: &[&str]| {
        let mut c = Command::new(bin);
        c.args(args)
            .env("DATABASE_URL", &db)
            .env("RUST_LOG", "error")
            .env("DIABASE_KEY_FILE", tmp.0.join("field.key"))
            .env("DIABASE_MAIL_OUTBOX", tmp.0.join("outbox"));
        c
    };
    let out = cmd(&["user", "add", "--email", "bomb@example.org", "--role", "patient"]).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let out = cmd(&["user", "nightscout", "--email", "bomb@example.org"]).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let site: Value = serde_json::from_slice(&out.stdout).unwrap();
    let secret = sha1_hex(site["secret"].as_str().unwrap().as_bytes());

    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let child = cmd(&["serve", "--addr", &format!("127.0.0.1:{port}")])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let pid = child.id();
    let server = Killed(child);
    let base = format!("http://127.0.0.1:{port}");
    let http = reqwest::Client::builder().timeout(Duration::from_secs(60)).build().unwrap();
    let mut up = false;
    for _ in 0..300 {
        if http.get(format!("{base}/api/v1/health")).send().await.is_ok_and(|r| r.status() == 200) {
            up = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(up, "the server answers");

    // Warm-up: a real upload and a read, so that the baseline holds the
    // pools and caches a working server holds.
    let entries: Vec<Value> = (0..200i64)
        .map(|i| json!({"type": "sgv", "sgv": 100 + i % 50, "date": 1_710_057_600_000 + i * 300_000, "device": "xDrip-DexcomG6"}))
        .collect();
    let r = http
        .post(format!("{base}/api/v1/entries"))
        .header("api-secret", &secret)
        .header("content-type", "application/json")
        .header("content-encoding", "gzip")
        .body(gzip(&serde_json::to_vec(&entries).unwrap()))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200, "warm-up upload");
    let r =
        http.get(format!("{base}/api/v1/entries.json?count=100")).header("api-secret", &secret).send().await.unwrap();
    assert_eq!(r.status(), 200);
    tokio::time::sleep(Duration::from_millis(300)).await;
    let baseline = rss_kb(pid);
    assert!(baseline > 0, "VmRSS readable");

    let bombs = bombs();
    for b in &bombs {
        assert!(b.len() < 40 * 1024, "a bomb is about 32 KB ({} bytes)", b.len());
    }
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let sampler = {
        let stop = stop.clone();
        tokio::spawn(async move {
            let mut peak = 0;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                peak = peak.max(rss_kb(pid));
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            peak.max(rss_kb(pid))
        })
    };
    let started = Instant::now();
    let sends: Vec<_> = bombs
        .into_iter()
        .map(|b| {
            let (http, url, secret) = (http.clone(), format!("{base}/api/v1/entries"), secret.clone());
            tokio::spawn(async move {
                let r = http
                    .post(url)
                    .header("api-secret", secret)
                    .header("content-type", "application/json")
                    .header("content-encoding", "gzip")
                    .body(b)
                    .send()
                    .await;
                match r {
                    Ok(r) => {
                        let status = r.status().as_u16();
                        (status, r.text().await.unwrap_or_default())
                    }
                    Err(e) => (0, e.to_string()),
                }
            })
        })
        .collect();
    let mut answers = Vec::new();
    for s in sends {
        answers.push(s.await.unwrap());
    }
    let took = started.elapsed();
    tokio::time::sleep(Duration::from_millis(100)).await;
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let peak = sampler.await.unwrap();
    let grew_mb = peak.saturating_sub(baseline) as f64 / 1024.0;
    eprintln!(
        "{backend:?}: baseline {baseline} kB, peak {peak} kB (+{grew_mb:.1} MB), bombs answered in {took:?}: {answers:?}"
    );
    for (status, text) in &answers {
        assert!(*status == 413 || *status == 400, "a bomb is refused: {status} {text}");
        if *status == 413 {
            let v: Value = serde_json::from_str(text).unwrap_or(Value::Null);
            assert_eq!(v["status"], 413, "Nightscout's error shape: {text}");
        }
    }
    assert!(
        grew_mb <= 64.0,
        "memory grew by {grew_mb:.1} MB under four 32 KB bombs (baseline {baseline} kB, peak {peak} kB)"
    );
    assert!(took < Duration::from_secs(20), "the bombs were refused quickly ({took:?})");
    let r = http.get(format!("{base}/api/v1/health")).send().await.expect("the server still answers");
    assert_eq!(r.status(), 200);
    drop(server);
    drop_pg(pg_name).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gzip_bombs_keep_memory_bounded_sqlite() {
    gzip_bombs_keep_memory_bounded(Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gzip_bombs_keep_memory_bounded_postgres() {
    gzip_bombs_keep_memory_bounded(Backend::Postgres).await;
}

// ---------------------------------------------------------------------------------------------
// Item 7: the Nightscout document count, body limits, uploads, the glucose window

both_backends!(nightscout_batches_are_bounded_while_parsed);
async fn nightscout_batches_are_bounded_while_parsed(app: &TestApp) {
    let (_c, site, _pid) = patient_with_site(app, "ns-bounds@example.org").await;
    let secret = sha1_hex(site["secret"].as_str().unwrap().as_bytes());
    let http = reqwest::Client::new();
    let post = |body: Vec<u8>| {
        http.post(app.url("/api/v1/entries"))
            .header("api-secret", &secret)
            .header("content-type", "application/json")
            .header("content-encoding", "gzip")
            .body(gzip(&body))
            .send()
    };
    // One more than the batch limit: refused while parsing (413, Nightscout's shape).
    let too_many = format!("[{}{{}}]", "{},".repeat(app::service::nightscout::MAX_BATCH));
    let r = post(too_many.into_bytes()).await.unwrap();
    assert_eq!(r.status(), 413);
    let v = body(r).await;
    assert_eq!(v["status"], 413);
    assert!(v["message"].as_str().unwrap().contains("10000"), "{v}");
    // Past the inflated limit: 413.
    let big = format!("[\"{}\"]", "a".repeat(server::nightscout::INFLATED_LIMIT + 1));
    assert_eq!(post(big.into_bytes()).await.unwrap().status(), 413);
    // Too deep: 400.
    let deep = format!("[{}1{}]", "{\"a\":".repeat(40), "}".repeat(40));
    assert_eq!(post(deep.into_bytes()).await.unwrap().status(), 400);
    // A real batch still goes in.
    let ok: Vec<Value> =
        (0..50i64).map(|i| json!({"type": "sgv", "sgv": 120, "date": 1_710_057_600_000 + i * 300_000})).collect();
    let r = post(serde_json::to_vec(&ok).unwrap()).await.unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(body(r).await.as_array().unwrap().len(), 50);
}

both_backends!(json_routes_take_small_bodies);
async fn json_routes_take_small_bodies(app: &TestApp) {
    let http = reqwest::Client::new();
    let padding = "x".repeat(1024 * 1024);
    for path in ["/api/v1/auth/login", "/api/v1/auth/signup", "/api/v1/auth/password-reset"] {
        let r = http
            .post(app.url(path))
            .json(&json!({"email": "big@example.org", "password": padding, "display_name": "B"}))
            .send()
            .await
            .unwrap();
        let status = r.status();
        assert_eq!(status, 413, "{path}: {}", r.text().await.unwrap_or_default());
    }
    // A server function too. The server may answer 413 and close before the
    // client has sent the whole body; the client then sees the connection
    // cut, not the answer (a race of the test, not of the server), so it
    // tries again a few times to read the answer.
    let mut answer = None;
    for _ in 0..5 {
        match http
            .post(app.url("/_fn/login"))
            .header("content-type", "application/x-www-form-urlencoded")
            .body(format!("email=a%40example.org&password={padding}"))
            .send()
            .await
        {
            Ok(r) => {
                answer = Some(r.status());
                break;
            }
            Err(e) => eprintln!("server function, attempt cut: {e}"),
        }
    }
    assert_eq!(answer, Some(reqwest::StatusCode::PAYLOAD_TOO_LARGE), "server function");
}

both_backends!(uploads_check_the_policy_before_reading_the_body);
async fn uploads_check_the_policy_before_reading_the_body(app: &TestApp) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let _owner = app.user("up-owner@example.org", "patient").await;
    let owner_pid = {
        let c = app.client();
        let r = c
            .post(app.url("/api/v1/auth/login"))
            .json(&json!({"email": "up-owner@example.org", "password": common::STRONG}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
        body(c.get(app.url("/api/v1/me")).send().await.unwrap()).await["patient_id"].as_str().unwrap().to_string()
    };
    let stranger = app.user("up-stranger@example.org", "patient").await;
    let r = stranger
        .post(app.url("/api/v1/tokens"))
        .json(&json!({"name": "phone", "scopes": ["upload"]}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    let token = body(r).await["token"].as_str().unwrap().to_string();
    // A 50 MB upload of which only the first bytes are sent: the refusal
    // comes without waiting for the rest.
    let mut s = tokio::net::TcpStream::connect(app.addr).await.unwrap();
    let head = format!(
        "POST /api/v1/uploads?patient_id={owner_pid} HTTP/1.1\r\nHost: {}\r\nAuthorization: Bearer {token}\r\n\
         Content-Type: multipart/form-data; boundary=XyZ\r\nContent-Length: 50000000\r\n\r\n--XyZ\r\n\
         Content-Disposition: form-data; name=\"file\"; filename=\"a.csv\"\r\n\r\n",
        app.addr
    );
    s.write_all(head.as_bytes()).await.unwrap();
    s.write_all(&vec![b'a'; 64 * 1024]).await.unwrap();
    let mut buf = vec![0u8; 512];
    let n = tokio::time::timeout(Duration::from_secs(10), s.read(&mut buf))
        .await
        .expect("answered before the body was sent")
        .unwrap();
    let head = String::from_utf8_lossy(&buf[..n]).to_string();
    assert!(head.starts_with("HTTP/1.1 404") || head.starts_with("HTTP/1.1 403"), "{head}");
}

both_backends!(glucose_window_is_capped);
async fn glucose_window_is_capped(app: &TestApp) {
    let c = app.user("window@example.org", "patient").await;
    let pid =
        body(c.get(app.url("/api/v1/me")).send().await.unwrap()).await["patient_id"].as_str().unwrap().to_string();
    let r =
        c.get(app.url(&format!("/api/v1/patients/{pid}/glucose?from=1990-01-01&to=2024-01-01"))).send().await.unwrap();
    assert_eq!(r.status(), 400);
    assert!(body(r).await["error"]["message"].as_str().unwrap().contains("five years"));
    let r =
        c.get(app.url(&format!("/api/v1/patients/{pid}/glucose?from=2023-01-01&to=2024-01-01"))).send().await.unwrap();
    assert_eq!(r.status(), 200);
}

// ---------------------------------------------------------------------------------------------
// Item 8: under TLS only the __Host- session cookie

async fn only_the_host_cookie_under_tls(backend: Backend) {
    let Some(app) = TestApp::spawn_with(backend, Config { secure_cookies: true, ..Config::default() }).await else {
        return;
    };
    let _ = app.user("tls-cookie@example.org", "patient").await;
    let http = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap();
    let r = http
        .post(app.url("/api/v1/auth/login"))
        .json(&json!({"email": "tls-cookie@example.org", "password": common::STRONG}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let set = r
        .headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find(|v| v.starts_with("__Host-diabase_session="))
        .expect("a __Host- session cookie")
        .to_string();
    let token = set["__Host-diabase_session=".len()..].split(';').next().unwrap().to_string();
    let me = |cookie: String| http.get(app.url("/api/v1/me")).header("cookie", cookie).send();
    assert_eq!(
        me(format!("diabase_session={token}")).await.unwrap().status(),
        401,
        "the plain name is refused under TLS"
    );
    assert_eq!(me(format!("__Host-diabase_session={token}")).await.unwrap().status(), 200);
    app.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_the_host_cookie_under_tls_sqlite() {
    only_the_host_cookie_under_tls(Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_the_host_cookie_under_tls_postgres() {
    only_the_host_cookie_under_tls(Backend::Postgres).await;
}

// ---------------------------------------------------------------------------------------------
// Item 10: failures counted before the check; the JWT exchange counted

both_backends!(concurrent_wrong_secrets_cannot_outrun_the_limit);
async fn concurrent_wrong_secrets_cannot_outrun_the_limit(app: &TestApp) {
    let (_c, site, _pid) = patient_with_site(app, "ns-race@example.org").await;
    let limit = server::nightscout::FAILED_AUTH_LIMIT as usize;
    let n = limit * 3;
    let http = reqwest::Client::new();
    let tasks: Vec<_> = (0..n)
        .map(|i| {
            let (http, url) = (http.clone(), app.url("/api/v1/entries.json"));
            tokio::spawn(async move {
                http.get(url)
                    .header("api-secret", sha1_hex(format!("race-{i}").as_bytes()))
                    .send()
                    .await
                    .unwrap()
                    .status()
                    .as_u16()
            })
        })
        .collect();
    let mut statuses = Vec::new();
    for t in tasks {
        statuses.push(t.await.unwrap());
    }
    let evaluated = statuses.iter().filter(|s| **s == 401).count();
    let refused = statuses.iter().filter(|s| **s == 429).count();
    assert_eq!(evaluated + refused, n, "{statuses:?}");
    assert!(evaluated <= limit, "{evaluated} wrong secrets were checked; the limit is {limit}");
    // The right secret waits for the window too.
    let r = http
        .get(app.url("/api/v1/entries.json"))
        .header("api-secret", sha1_hex(site["secret"].as_str().unwrap().as_bytes()))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 429);
}

both_backends!(jwt_exchange_failures_are_counted);
async fn jwt_exchange_failures_are_counted(app: &TestApp) {
    let (_c, site, _pid) = patient_with_site(app, "ns-jwt-guess@example.org").await;
    let http = reqwest::Client::new();
    // A right token is not a failure.
    let good = site["token"].as_str().unwrap().to_string();
    for _ in 0..3 {
        assert_eq!(
            http.get(app.url(&format!("/api/v2/authorization/request/{good}"))).send().await.unwrap().status(),
            200
        );
    }
    let limit = server::nightscout::FAILED_AUTH_LIMIT as usize;
    for i in 0..limit {
        let r = http.get(app.url(&format!("/api/v2/authorization/request/guess-{i}"))).send().await.unwrap();
        assert_eq!(r.status(), 401, "attempt {i}");
    }
    let r = http.get(app.url("/api/v2/authorization/request/guess-last")).send().await.unwrap();
    assert_eq!(r.status(), 429);
    assert_eq!(http.get(app.url(&format!("/api/v2/authorization/request/{good}"))).send().await.unwrap().status(), 429);
}

both_backends!(expiry_sweep_deletes_only_the_unusable);
/// The expiry sweep (issue 23) deletes what can no longer be used, and
/// nothing else: the live session keeps working, a recently spent token is
/// kept a day, a rate-limit window still counting is kept.
async fn expiry_sweep_deletes_only_the_unusable(app: &TestApp) {
    use app::service::sweep::{KEEP_RATE_LIMIT_MS, KEEP_SPENT_MS, Swept, sweep};
    use sea_orm::ConnectionTrait;
    let c = app.user("sweep@example.org", "patient").await;
    let me = body(c.get(app.url("/api/v1/me")).send().await.unwrap()).await;
    let uid = me["id"].as_str().unwrap().to_string();
    let now = app::service::now_ms();
    let idle = app.state.config.session_idle_ms;
    let hour = 3_600_000;
    let db = &app.state.db;
    let sql = |s: String| async move { db.execute_unprepared(&s).await.unwrap() };
    // Sessions: past their absolute end, idle too long, and one alive.
    for (id, seen, expires) in
        [("s-ended", now - hour, now - 1), ("s-idle", now - idle - 1, now + hour), ("s-alive", now - 1, now + hour)]
    {
        sql(format!(
            "INSERT INTO sessions (id_hash, user_id, created_ms, last_seen_ms, expires_ms) \
             VALUES ('{id}', '{uid}', {}, {seen}, {expires})",
            now - 2 * hour
        ))
        .await;
    }
    for (bucket, start) in [("old", now - KEEP_RATE_LIMIT_MS - 1), ("counting", now - hour / 2)] {
        sql(format!("INSERT INTO rate_limits (bucket, window_start_ms, hits) VALUES ('sweep:{bucket}', {start}, 3)"))
            .await;
    }
    for (id, expires) in [("c-expired", now - 1), ("c-alive", now + 60_000)] {
        sql(format!(
            "INSERT INTO webauthn_challenges (id, user_id, kind, state_json, created_ms, expires_ms) \
             VALUES ('{id}', '{uid}', 'login', '{{}}', {now}, {expires})"
        ))
        .await;
    }
    let spent = now - KEEP_SPENT_MS - 1;
    for (table, extra_col, extra_val) in
        [("password_resets", "", ""), ("email_verifications", ", email", ", 'x@example.org'")]
    {
        for (id, expires, used) in [
            ("long-expired", spent, "NULL".to_string()),
            ("long-used", now + hour, spent.to_string()),
            ("just-expired", now - hour, "NULL".to_string()),
            ("valid", now + hour, "NULL".to_string()),
        ] {
            sql(format!(
                "INSERT INTO {table} (token_hash, user_id{extra_col}, created_ms, expires_ms, used_ms) \
                 VALUES ('sweep-{id}', '{uid}'{extra_val}, {}, {expires}, {used})",
                now - 3 * KEEP_SPENT_MS
            ))
            .await;
        }
    }

    let swept = sweep(db, &app.state.config, now).await.unwrap();
    assert_eq!(
        swept,
        Swept {
            sessions: 2,
            rate_limits: 1,
            webauthn_challenges: 1,
            link_codes: 0,
            password_resets: 2,
            email_verifications: 2
        }
    );
    let count = |s: &'static str| async move {
        let r = db
            .query_one_raw(sea_orm::Statement::from_string(db.get_database_backend(), s.to_string()))
            .await
            .unwrap()
            .unwrap();
        r.try_get_by_index::<i64>(0).unwrap()
    };
    assert_eq!(count("SELECT COUNT(*) FROM sessions WHERE id_hash = 's-alive'").await, 1);
    assert_eq!(count("SELECT COUNT(*) FROM rate_limits WHERE bucket = 'sweep:counting'").await, 1);
    assert_eq!(count("SELECT COUNT(*) FROM webauthn_challenges WHERE id = 'c-alive'").await, 1);
    assert_eq!(
        count("SELECT COUNT(*) FROM password_resets WHERE token_hash IN ('sweep-just-expired', 'sweep-valid')").await,
        2
    );
    // The signed-in client's own session is untouched.
    assert_eq!(c.get(app.url("/api/v1/me")).send().await.unwrap().status(), 200);
    // Idempotent: several servers may sweep at once.
    assert_eq!(sweep(db, &app.state.config, now).await.unwrap(), Swept::default());
    // On PostgreSQL one process is elected per round: while another holds
    // the lock, this one skips.
    use app::service::sweep::{LOCK_KEY, sweep_elected};
    if db.get_database_backend() == sea_orm::DbBackend::Postgres {
        let other = sea_orm::Database::connect(&app.database_url).await.unwrap();
        other.execute_unprepared(&format!("SELECT pg_advisory_lock({LOCK_KEY})")).await.unwrap();
        assert_eq!(sweep_elected(db, &app.state.config, now).await.unwrap(), None, "another process sweeps");
        other.execute_unprepared(&format!("SELECT pg_advisory_unlock({LOCK_KEY})")).await.unwrap();
        let _ = other.close().await;
    }
    assert_eq!(sweep_elected(db, &app.state.config, now).await.unwrap(), Some(Swept::default()));
}

both_backends!(two_servers_share_sessions_and_limits);
/// Two server processes on one database behave as one (issue 23): a
/// session made on one is valid on the other and ends on both; failed
/// log-ins sent to both count against one limit.
async fn two_servers_share_sessions_and_limits(a: &TestApp) {
    let b = a.beside().await;
    let email = "two-servers@example.org";
    // Cookies are not port-scoped: one jar speaks to both servers.
    let c = a.user(email, "patient").await;
    assert_eq!(c.get(b.url("/api/v1/me")).send().await.unwrap().status(), 200, "A's session on B");
    let r = c.post(b.url("/api/v1/auth/logout")).header("origin", &b.base).send().await.unwrap();
    assert!(r.status().is_success(), "{}", r.status());
    assert_eq!(c.get(a.url("/api/v1/me")).send().await.unwrap().status(), 401, "logged out on B, out on A");

    let limit = a.state.config.login_limit_per_email as usize;
    let guesser = a.client();
    let mut statuses = Vec::new();
    for i in 0..=limit {
        let server = if i % 2 == 0 { a } else { &b };
        let r = guesser
            .post(server.url("/api/v1/auth/login"))
            .json(&json!({"email": email, "password": "wrong-guess-123"}))
            .send()
            .await
            .unwrap();
        statuses.push(r.status().as_u16());
    }
    assert_eq!(&statuses[..limit], &vec![401; limit][..], "{statuses:?}");
    assert_eq!(statuses[limit], 429, "the limit holds across servers: {statuses:?}");
    b.finish().await;
}
