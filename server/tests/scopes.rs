//! Issue 19: every route the router registers, called with every kind of
//! credential, against the token scope table in docs/DECISIONS.md.
//!
//! The routes are read from the router itself (its `Debug` output lists
//! each registered path and the methods it answers), so a route added
//! without a row in the table fails this test, and so does a row whose
//! route is gone. Leptos page routes (HTML shells; their data comes through
//! the server functions, which are walked) are left out.
//!
//! "Allowed" means the credential got through: any answer but 401/403 (a
//! 400/404/422 for the walk's dummy body still counts). A 401 that names a
//! wrong password or code *in the body* (the walk sends dummy ones) is not a
//! refusal of the credential either.
#![allow(clippy::unwrap_used)] // a test fails by panicking

mod common;

use common::{Backend, STRONG, TestApp};
use serde_json::{Value, json};
use std::collections::{BTreeMap, BTreeSet};

/// The credential columns of the table, in order.
const CREDENTIALS: [&str; 6] = ["anonymous", "session", "read:glucose", "read:all", "upload", "full"];

/// A row of the scope table.
#[derive(Debug)]
struct Row {
    method: String,
    path: String,
    /// Which of the walk's accounts calls it: `patient` or `clinician`.
    account: String,
    allowed: [bool; 6],
}

const TABLE_HEADER: &str =
    "| Method | Path | Account | anonymous | session | read:glucose | read:all | upload | full |";

/// The scope table of docs/DECISIONS.md: the rows after its header line.
fn scope_table() -> Vec<Row> {
    let doc = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../docs/DECISIONS.md"))
        .expect("docs/DECISIONS.md");
    let mut lines = doc.lines().skip_while(|l| l.trim() != TABLE_HEADER);
    assert!(lines.next().is_some(), "docs/DECISIONS.md has no scope table (header {TABLE_HEADER:?})");
    let mut rows = Vec::new();
    for line in lines.skip(1) {
        let line = line.trim();
        if !line.starts_with('|') {
            break;
        }
        let cells: Vec<&str> = line.trim_matches('|').split('|').map(|c| c.trim().trim_matches('`')).collect();
        assert_eq!(cells.len(), 9, "scope table row has {} cells, not 9: {line}", cells.len());
        let mut allowed = [false; 6];
        for (i, c) in cells[3..].iter().enumerate() {
            allowed[i] = match *c {
                "yes" => true,
                "no" => false,
                other => panic!("scope table cell {other:?} is neither yes nor no: {line}"),
            };
        }
        assert!(
            matches!(cells[2], "patient" | "clinician"),
            "account {:?} is neither patient nor clinician: {line}",
            cells[2]
        );
        rows.push(Row {
            method: cells[0].to_string(),
            path: cells[1].to_string(),
            account: cells[2].to_string(),
            allowed,
        });
    }
    assert!(rows.len() > 50, "the scope table has only {} rows", rows.len());
    rows
}

/// Every (method, path) the application router registers, from its `Debug`
/// output (axum lists each route's id with its path and its method router),
/// without the Leptos page routes.
fn registered_routes(app: &TestApp) -> BTreeSet<(String, String)> {
    let dump = format!("{:?}", server::router(app.state.clone(), false));
    // Only the main path router (the fallback router repeats route ids).
    let main = dump.split_once("fallback_router:").map(|(a, _)| a).unwrap_or(&dump);
    let mut paths: BTreeMap<u32, String> = BTreeMap::new();
    let mut methods: BTreeMap<u32, Vec<String>> = BTreeMap::new();
    for piece in main.split("RouteId(").skip(1) {
        let Some((id, rest)) = piece.split_once(')') else { continue };
        let Ok(id) = id.parse::<u32>() else { continue };
        let Some(rest) = rest.strip_prefix(": ") else { continue };
        if let Some(p) = rest.strip_prefix('"') {
            paths.insert(id, p[..p.find('"').expect("end of path")].to_string());
        } else if let Some(m) = rest.strip_prefix("MethodRouter(MethodRouter { ") {
            let fields = m.split(", fallback:").next().unwrap_or("");
            let list = fields
                .split(", ")
                .filter_map(|f| f.split_once(": "))
                .filter(|(_, v)| *v != "None")
                .map(|(k, _)| k.to_uppercase())
                .collect();
            methods.insert(id, list);
        } else {
            // A nested service: no method list to read.
            methods.insert(id, vec!["ANY".into()]);
        }
    }
    assert!(
        !paths.is_empty() && paths.len() == methods.len(),
        "could not read the router's routes from its Debug output"
    );
    let pages: BTreeSet<String> = server::page_routes().iter().map(|r| r.path().to_string()).collect();
    let mut out = BTreeSet::new();
    for (id, path) in &paths {
        for m in methods.get(id).into_iter().flatten() {
            if m == "GET" && pages.contains(path) {
                continue;
            }
            out.insert((m.clone(), path.clone()));
        }
    }
    assert!(out.contains(&("GET".into(), "/api/v1/health".into())), "the router's routes were not read: {out:?}");
    assert!(out.contains(&("POST".into(), "/_fn/rotate_nightscout".into())), "server functions were not read: {out:?}");
    out
}

/// One of the walk's accounts with its credentials.
struct Account {
    email: String,
    /// `name=value` of the session cookie.
    cookie: String,
    /// Bearer tokens by scope name.
    tokens: BTreeMap<&'static str, String>,
    /// Values for path parameters and server-function arguments.
    params: BTreeMap<&'static str, String>,
}

async fn login_cookie(app: &TestApp, email: &str) -> String {
    let r = app
        .client()
        .post(app.url("/api/v1/auth/login"))
        .json(&json!({"email": email, "password": STRONG}))
        .send()
        .await
        .expect("login");
    assert_eq!(r.status(), 200, "login {email}");
    let set = r.headers().get("set-cookie").expect("session cookie").to_str().unwrap().to_string();
    set.split(';').next().unwrap().to_string()
}

impl Account {
    async fn new(app: &TestApp, email: &str, role: &str) -> Account {
        let _ = app.user(email, role).await;
        let cookie = login_cookie(app, email).await;
        let mut tokens = BTreeMap::new();
        for scope in ["read:glucose", "read:all", "upload", "full"] {
            let r = app
                .client()
                .post(app.url("/api/v1/tokens"))
                .header("cookie", &cookie)
                .json(&json!({"name": format!("walk {scope}"), "scopes": [scope]}))
                .send()
                .await
                .unwrap();
            assert_eq!(r.status(), 201, "token {scope}");
            let b: Value = r.json().await.unwrap();
            let t = b["token"].as_str().expect("token").to_string();
            assert!(t.starts_with("dbs_"), "{t}");
            tokens.insert(scope, t);
        }
        Account { email: email.into(), cookie, tokens, params: BTreeMap::new() }
    }

    async fn session_json(&self, app: &TestApp, method: reqwest::Method, path: &str, body: Value) -> Value {
        let r = app
            .client()
            .request(method, app.url(path))
            .header("cookie", &self.cookie)
            .json(&body)
            .send()
            .await
            .unwrap();
        assert!(r.status().is_success(), "{path}: {}", r.status());
        r.json().await.unwrap()
    }
}

/// A path with its parameters filled from the account's own objects (a
/// dummy id where it has none).
fn fill(path: &str, acct: &Account) -> String {
    let mut out = String::new();
    let mut rest = path;
    while let Some(start) = rest.find('{') {
        out.push_str(&rest[..start]);
        let end = rest[start..].find('}').expect("closing brace") + start;
        let name = rest[start + 1..end].trim_start_matches('*');
        let value = match name {
            "collection" => "entries".to_string(),
            "spec" => "current".to_string(),
            "last_modified" => "0".to_string(),
            "code" => "es".to_string(),
            _ => acct.params.get(name).cloned().unwrap_or_else(|| "00000000000000000000000000".into()),
        };
        out.push_str(&value);
        rest = &rest[end + 1..];
    }
    out.push_str(rest);
    out
}

/// The walk's server-function arguments: every argument name any of them
/// takes, with a harmless value (extra fields are ignored), so that the
/// arguments parse and the function's own check decides.
fn fn_args(acct: &Account) -> Vec<(&'static str, String)> {
    let own = |k: &str| acct.params.get(k).cloned().unwrap_or_else(|| "00000000000000000000000000".into());
    vec![
        ("id", "00000000000000000000000000".into()),
        ("name", "Walk".into()),
        ("token", "not-a-token".into()),
        ("code", "000000".into()),
        ("email", "walk-nobody@example.org".into()),
        ("password", "not-the-password".into()),
        ("current_password", "not-the-password".into()),
        ("new_password", "another walk password 8812".into()),
        ("display_name", "Walk".into()),
        ("glucose_unit", "nonsense".into()),
        ("time_zone", "Nowhere/Nothing".into()),
        ("access", "nonsense".into()),
        ("pause", "false".into()),
        ("role", "nonsense".into()),
        ("confirm", "on".into()),
        ("clinic_id", own("clinic_id")),
        ("record_id", own("record_id")),
    ]
}

/// The walk's JSON body: the fields the REST bodies require, with values
/// that parse but change nothing (a wrong password, an unknown token or
/// challenge), so that the handler's own checks decide.
fn rest_body() -> Value {
    let blob = "AAAAAAAAAAAAAAAAAAAAAA";
    json!({
        "name": "Walk",
        "email": "walk-nobody@example.org",
        "password": "not-the-password",
        "current_password": "not-the-password",
        "new_password": "another walk password 8812",
        "display_name": "Walk",
        "code": "000000",
        "token": "not-a-token",
        "scopes": ["read:glucose"],
        "role": "nonsense",
        "challenge_id": "00000000000000000000000000",
        "credential": {
            "id": blob, "rawId": blob, "type": "public-key", "extensions": {},
            "response": {
                "attestationObject": blob, "clientDataJSON": blob,
                "authenticatorData": blob, "signature": blob, "userHandle": null
            }
        }
    })
}

/// Calls a route with one credential; the status and body.
async fn call(app: &TestApp, acct: &Account, cred: &str, method: &str, path: &str) -> (u16, String) {
    use sea_orm::ConnectionTrait;
    // Bearer tokens of ours are wrong Nightscout credentials, and the walk
    // makes hundreds of calls from one address: no limit may answer first.
    app.state.db.execute_unprepared("DELETE FROM rate_limits").await.expect("clear rate limits");
    let url = app.url(&fill(path, acct));
    let method = reqwest::Method::from_bytes(method.as_bytes()).expect("method");
    let mut req = if path.starts_with("/_fn/") {
        let args = fn_args(acct);
        if method == reqwest::Method::GET {
            app.client().get(&url).query(&args)
        } else {
            app.client().request(method, &url).form(&args)
        }
    } else if method == reqwest::Method::GET {
        app.client().request(method, &url)
    } else {
        app.client().request(method, &url).json(&rest_body())
    };
    req = match cred {
        "anonymous" => req,
        "session" => req.header("cookie", &acct.cookie),
        scope => req.bearer_auth(&acct.tokens[scope]),
    };
    let r = req.send().await.unwrap_or_else(|e| panic!("{path} as {cred}: {e}"));
    let status = r.status().as_u16();
    let body = r.text().await.unwrap_or_default();
    (status, body)
}

/// Whether the answer refuses the credential (rather than the request).
fn refused(status: u16, body: &str) -> bool {
    if status != 401 && status != 403 {
        return false;
    }
    // A wrong password or code in the walk's dummy body: the caller got in.
    let about_the_body = [
        "invalid_credentials",
        "totp_required",
        "totp_invalid",
        "Email or password is incorrect.",
        "Enter the 6-digit code",
        "That code is not right.",
    ];
    !about_the_body.iter().any(|m| body.contains(m))
}

both_backends!(scope_walk);
async fn scope_walk(app: &TestApp) {
    let started = std::time::Instant::now();
    let rows = if std::env::var("SCOPES_WALK_PRINT").is_ok() { Vec::new() } else { scope_table() };
    let routes = registered_routes(app);

    // The table and the router name the same routes, each once.
    let mut in_table = BTreeSet::new();
    for r in &rows {
        assert!(
            in_table.insert((r.method.clone(), r.path.clone())),
            "two rows for {} {} in the scope table",
            r.method,
            r.path
        );
    }
    let unlisted: Vec<_> =
        routes.difference(&in_table).map(|(m, p)| format!("| {m} | {p} | patient | ? | ? | ? | ? | ? | ? |")).collect();
    let gone: Vec<_> = in_table.difference(&routes).map(|(m, p)| format!("{m} {p}")).collect();
    // SCOPES_WALK_PRINT=1 prints what the server does for every route, the
    // unlisted ones too, as table rows to review (and then fails).
    let print = std::env::var("SCOPES_WALK_PRINT").is_ok();
    let mut rows = rows;
    if print {
        for (m, p) in routes.difference(&in_table) {
            let clinic_fns = [
                "create_record",
                "create_link_code",
                "request_upload",
                "add_member",
                "rotate_share_code",
                "acknowledge_patient",
            ];
            let clinician = p.contains("clinic") || clinic_fns.iter().any(|f| p.ends_with(&format!("/_fn/{f}")));
            let account = if clinician { "clinician" } else { "patient" };
            rows.push(Row { method: m.clone(), path: p.clone(), account: account.into(), allowed: [false; 6] });
        }
    }
    assert!(
        print || unlisted.is_empty() && gone.is_empty(),
        "the scope table in docs/DECISIONS.md and the router differ.\nRoutes without a row (decide who may call them):\n{}\nRows without a route:\n{}",
        unlisted.join("\n"),
        gone.join("\n")
    );

    let mut patient = Account::new(app, "walk-patient@example.org", "patient").await;
    let me = patient.session_json(app, reqwest::Method::GET, "/api/v1/me", Value::Null).await;
    let pid = me["patient_id"].as_str().expect("the patient's own data space").to_string();
    patient.params.insert("patient_id", pid);
    let r = app.client().post(app.url("/api/v1/me/nightscout")).header("cookie", &patient.cookie).send().await.unwrap();
    if r.status().is_success() {
        let b: Value = r.json().await.unwrap();
        if let Some(s) = b["site"].as_str() {
            patient.params.insert("site", s.to_string());
        }
    }
    let mut clinician = Account::new(app, "walk-clinician@example.org", "clinician").await;
    let clinic =
        clinician.session_json(app, reqwest::Method::POST, "/api/v1/clinics", json!({"name": "Walk Clinic"})).await;
    let clinic_id = clinic["id"].as_str().expect("clinic id").to_string();
    let record = clinician
        .session_json(
            app,
            reqwest::Method::POST,
            &format!("/api/v1/clinics/{clinic_id}/patients"),
            json!({"name": "Walk Record"}),
        )
        .await;
    let record_id = record["id"].as_str().or(record["record_id"].as_str()).expect("record id").to_string();
    clinician.params.insert("clinic_id", clinic_id);
    clinician.params.insert("record_id", record_id);

    let mut wrong = Vec::new();
    for row in &rows {
        let acct = if row.account == "clinician" { &mut clinician } else { &mut patient };
        let mut seen = Vec::new();
        for (i, cred) in CREDENTIALS.iter().enumerate() {
            let (status, body) = call(app, acct, cred, &row.method, &row.path).await;
            let allowed = !refused(status, &body);
            seen.push(if allowed { "yes" } else { "no" });
            if allowed != row.allowed[i] {
                let snippet: String = body.chars().take(160).collect();
                wrong.push(format!(
                    "{} {} as {cred}: the table says {}, the server answered {status} {snippet}",
                    row.method,
                    row.path,
                    if row.allowed[i] { "allowed" } else { "refused" },
                ));
            }
            // Logging out ends the walk's session: a new one for the next call.
            if row.path.contains("logout") {
                acct.cookie = login_cookie(app, &acct.email.clone()).await;
            }
        }
        if print {
            println!("| {} | {} | {} | {} |", row.method, row.path, row.account, seen.join(" | "));
        }
    }
    assert!(!print, "SCOPES_WALK_PRINT is set: the rows above are what the server does");
    assert!(
        wrong.is_empty(),
        "{} calls disagree with the scope table in docs/DECISIONS.md:\n{}",
        wrong.len(),
        wrong.join("\n")
    );
    eprintln!("scope walk: {} rows × {} credentials in {:?}", rows.len(), CREDENTIALS.len(), started.elapsed());
}

// ---------------------------------------------------------------------------------------------
// Issue 24: the OpenAPI document names exactly the API operations the router serves.

both_backends!(openapi_names_every_api_route);
async fn openapi_names_every_api_route(app: &TestApp) {
    let doc: Value = serde_json::from_str(server::rest::OPENAPI).expect("openapi.json is JSON");
    let base = doc["servers"][0]["url"].as_str().expect("servers[0].url").to_string();
    // Path parameters are compared by place, not name (`{token}` = `{accessToken}`).
    let shape = |p: &str| {
        let mut out = String::new();
        let mut inside = false;
        for ch in p.chars() {
            match ch {
                '{' => {
                    inside = true;
                    out.push_str("{}");
                }
                '}' => inside = false,
                c if !inside => out.push(c),
                _ => {}
            }
        }
        out
    };
    let mut documented = BTreeSet::new();
    for (path, item) in doc["paths"].as_object().expect("paths") {
        // A path item may name its own base (Nightscout API v2 and v3).
        let prefix = item["servers"][0]["url"].as_str().unwrap_or(&base);
        for method in ["get", "put", "post", "delete", "options", "head", "patch", "trace"] {
            if item.get(method).is_some() {
                documented.insert((method.to_uppercase(), shape(&format!("{prefix}{path}"))));
            }
        }
    }
    // The API's routes (the same operations under /ns/{site} are documented
    // as a second server of each path item; pages and server functions are not
    // part of the public API).
    // `GET /api/v1/status` answers as `/status.json`, whose entry names it:
    // the API v3 `/status` holds that key of the document.
    let alias = ("GET".to_string(), "/api/v1/status".to_string());
    assert!(documented.contains(&("GET".into(), "/api/v1/status.json".into())));
    let served: BTreeSet<(String, String)> = registered_routes(app)
        .into_iter()
        .filter(|(_, p)| p.starts_with("/api/"))
        .filter(|r| *r != alias)
        .map(|(m, p)| (m, shape(&p)))
        .collect();
    let undocumented: Vec<_> = served.difference(&documented).collect();
    let unserved: Vec<_> = documented.difference(&served).collect();
    assert!(
        undocumented.is_empty() && unserved.is_empty(),
        "served but not in openapi.json: {undocumented:?}\nin openapi.json but not served: {unserved:?}"
    );
}

// ---------------------------------------------------------------------------------------------
// Issue 19, item 2: `next` never leads off the site.

both_backends!(next_stays_on_the_site);
async fn next_stays_on_the_site(app: &TestApp) {
    let c = app.client();
    // A language change: the tab (raw, and percent-encoded in the query)
    // that browsers strip from `/\t/evil.example` would leave `//evil.example`.
    for next in [
        "/%09/evil.example",
        "/%0a/evil.example",
        "/%5Cevil.example",
        "%2F%2Fevil.example",
        "/%2F%2Fevil.example",
        "https://evil.example",
    ] {
        let r = c.get(app.url(&format!("/lang/es?next={next}"))).send().await.unwrap();
        assert_eq!(r.status(), 303, "{next}");
        assert_eq!(r.headers()["location"], "/", "/lang/es?next={next}");
    }
    let r = c.get(app.url("/lang/es?next=/reports%3Ffrom%3D2024-01-01")).send().await.unwrap();
    assert_eq!(r.status(), 303);
    assert_eq!(r.headers()["location"], "/reports?from=2024-01-01");

    // Log-in: a form post (a browser without the app's script) follows `next`.
    let _ = app.user("next-walker@example.org", "patient").await;
    for (next, to) in [
        ("/\t/evil.example", "/"),
        ("/%09/evil.example", "/"),
        ("/\\/evil.example", "/"),
        ("/reports?from=2024-01-01", "/reports?from=2024-01-01"),
    ] {
        let r = app
            .client()
            .post(app.url("/_fn/login"))
            .header("accept", "text/html")
            .form(&[("email", "next-walker@example.org"), ("password", STRONG), ("next", next)])
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 302, "log-in with next={next:?}");
        assert_eq!(r.headers()["location"], to, "log-in with next={next:?}");
    }
}
