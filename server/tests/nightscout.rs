//! The Nightscout-compatible API, over HTTP, on SQLite and PostgreSQL: sites
//! and secrets, the xDrip+ / Loop / AndroidAPS ways of calling it, Nightscout's
//! query and upsert semantics, and the mirror into Diabase's own reports.
#![allow(clippy::unwrap_used)] // a test fails by panicking

mod common;

use app::service::nightscout::sha1_hex;
use common::{Backend, TestApp, body, patient_with_site};
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter};
use serde_json::{Value, json};

fn secret_of(site: &Value) -> String {
    sha1_hex(site["secret"].as_str().unwrap().as_bytes())
}

/// 2024-03-10T08:00:00Z plus `i` five-minute steps, in ms.
fn t(i: i64) -> i64 {
    1_710_057_600_000 + i * 300_000
}

fn sgv(i: i64, value: i64) -> Value {
    json!({"type": "sgv", "sgv": value, "date": t(i), "dateString": iso(t(i)), "direction": "Flat", "device": "xDrip-DexcomG6"})
}

fn iso(ms: i64) -> String {
    app::service::nightscout::iso(ms)
}

async fn therapy_events(app: &TestApp, pid: &str) -> Vec<store::entity::therapy_events::Model> {
    store::entity::therapy_events::Entity::find()
        .filter(store::entity::therapy_events::Column::PatientId.eq(pid))
        .all(&app.state.db)
        .await
        .unwrap()
}

both_backends!(sites_secrets_and_status);
async fn sites_secrets_and_status(app: &TestApp) {
    let anon = app.client();
    assert_eq!(anon.post(app.url("/api/v1/me/nightscout")).send().await.unwrap().status(), 401);
    let (c, site, pid) = patient_with_site(app, "ns-ann@example.org").await;
    let slug = site["site"].as_str().unwrap().to_string();
    let secret = site["secret"].as_str().unwrap().to_string();
    assert!(secret.len() >= 12, "{secret}");
    assert!(site["url"].as_str().unwrap().ends_with(&format!("/ns/{slug}")), "{site}");
    assert!(site["url"].as_str().unwrap().starts_with("http://127.0.0.1:"), "{site}");
    let token = site["token"].as_str().unwrap().to_string();
    let (name, hex) = token.rsplit_once('-').unwrap();
    assert_eq!(name, "diabase");
    assert_eq!(hex.len(), 16);
    assert!(hex.bytes().all(|b| b.is_ascii_hexdigit()));
    // Only the SHA-1 of the secret is stored, never the secret.
    let row =
        store::entity::nightscout_sites::Entity::find_by_id(pid.clone()).one(&app.state.db).await.unwrap().unwrap();
    assert_eq!(row.secret_sha1, sha1_hex(secret.as_bytes()));
    assert_ne!(row.token_hash, token);
    // Later reads of the site show no secret.
    let info = body(c.get(app.url("/api/v1/me/nightscout")).send().await.unwrap()).await;
    assert_eq!(info["site"], slug.as_str());
    assert!(info.get("secret").is_none() && info.get("token").is_none());
    // A clinician has no patient data space, so no site.
    let doc = app.user("ns-doc@example.org", "clinician").await;
    assert_eq!(doc.post(app.url("/api/v1/me/nightscout")).send().await.unwrap().status(), 409);

    let hashed = sha1_hex(secret.as_bytes());
    // status.json is public but names nothing of the patient without credentials.
    for path in ["/api/v1/status.json", "/api/v1/status", &format!("/ns/{slug}/api/v1/status.json")] {
        let s = body(anon.get(app.url(path)).send().await.unwrap()).await;
        assert_eq!(s["status"], "ok", "{path}");
        assert_eq!(s["name"], "Diabase");
        assert!(s["version"].is_string());
        assert!(s["serverTimeEpoch"].is_i64());
        assert!(s["serverTime"].as_str().unwrap().ends_with('Z'));
        assert_eq!(s["apiEnabled"], true);
        assert_eq!(s["careportalEnabled"], true);
        assert_eq!(s["settings"]["units"], "mg/dl");
        assert!(s["authorized"].is_null());
    }
    c.patch(app.url("/api/v1/me")).json(&json!({"glucose_unit": "mmol/L"})).send().await.unwrap();
    let s = body(anon.get(app.url("/api/v1/status.json")).header("api-secret", &hashed).send().await.unwrap()).await;
    assert_eq!(s["settings"]["units"], "mmol");
    assert!(s["authorized"].is_object());

    // verifyauth: 200 either way.
    let r = anon.get(app.url("/api/v1/verifyauth")).send().await.unwrap();
    assert_eq!(r.status(), 200);
    let v = body(r).await;
    assert_eq!(v["status"], 200);
    assert_eq!(v["message"]["message"], "UNAUTHORIZED");
    assert_eq!(v["message"]["canRead"], false);
    let v = body(anon.get(app.url("/api/v1/verifyauth")).header("api-secret", &hashed).send().await.unwrap()).await;
    assert_eq!(v["message"]["message"], "OK");
    assert_eq!(v["message"]["canRead"], true);
    assert_eq!(v["message"]["canWrite"], true);
    assert_eq!(v["message"]["isAdmin"], true);

    // Reads and writes need the secret: missing or wrong is 401 in Nightscout's shape.
    for path in [
        "/api/v1/entries.json",
        "/api/v1/treatments",
        &format!("/ns/{slug}/api/v1/entries"),
        "/api/v1/experiments/test",
    ] {
        let r = anon.get(app.url(path)).send().await.unwrap();
        assert_eq!(r.status(), 401, "{path}");
        let e = body(r).await;
        assert_eq!(e["status"], 401);
        assert_eq!(e["message"], "Unauthorized");
        let r = anon.get(app.url(path)).header("api-secret", sha1_hex(b"not the secret")).send().await.unwrap();
        assert_eq!(r.status(), 401, "{path}");
    }
    let r = anon.post(app.url("/api/v1/entries")).json(&json!([sgv(0, 100)])).send().await.unwrap();
    assert_eq!(r.status(), 401);
    let r = anon
        .post(app.url(&format!("/ns/{slug}/api/v1/entries")))
        .header("api-secret", "wrong")
        .json(&json!([sgv(0, 100)]))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    // The hashed secret, the plain secret and the access token all open the site.
    assert_eq!(
        anon.get(app.url("/api/v1/experiments/test")).header("api-secret", &hashed).send().await.unwrap().status(),
        200
    );
    assert_eq!(
        anon.get(app.url("/api/v1/experiments/test")).header("api-secret", &secret).send().await.unwrap().status(),
        200
    );
    assert_eq!(anon.get(app.url(&format!("/api/v1/entries.json?token={token}"))).send().await.unwrap().status(), 200);
    assert_eq!(
        anon.get(app.url(&format!("/ns/{slug}/api/v1/entries.json")))
            .header("api-secret", &hashed)
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
    // A secret opens only its own site's path.
    assert_eq!(
        anon.get(app.url("/ns/0000000000000000/api/v1/entries.json"))
            .header("api-secret", &hashed)
            .send()
            .await
            .unwrap()
            .status(),
        401
    );

    // Rotating: a new secret and token, the same site; the old ones stop working.
    let r = c.post(app.url("/api/v1/me/nightscout")).send().await.unwrap();
    assert_eq!(r.status(), 201);
    let rotated = body(r).await;
    assert_eq!(rotated["site"], slug.as_str());
    assert_ne!(rotated["secret"], secret.as_str());
    assert_eq!(
        anon.get(app.url("/api/v1/entries.json")).header("api-secret", &hashed).send().await.unwrap().status(),
        401
    );
    assert_eq!(anon.get(app.url(&format!("/api/v1/entries.json?token={token}"))).send().await.unwrap().status(), 401);
    assert_eq!(
        anon.get(app.url("/api/v1/entries.json"))
            .header("api-secret", secret_of(&rotated))
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
    // Documented in the OpenAPI document.
    let doc = body(anon.get(app.url("/api/v1/openapi.json")).send().await.unwrap()).await;
    for p in [
        "/me/nightscout",
        "/entries",
        "/entries/{spec}",
        "/treatments/{id}",
        "/status.json",
        "/verifyauth",
        "/{collection}",
    ] {
        assert!(doc["paths"].get(p).is_some(), "{p} documented");
    }
    assert_eq!(doc["paths"]["/entries"]["get"]["tags"][0], "nightscout");
    // Our own v1 resources are untouched by the Nightscout paths.
    assert_eq!(c.get(app.url("/api/v1/me")).send().await.unwrap().status(), 200);
    assert_eq!(anon.get(app.url("/api/v1/no-such-thing")).send().await.unwrap().status(), 404);
}

both_backends!(uploaders_post_entries_and_readers_query_them);
async fn uploaders_post_entries_and_readers_query_them(app: &TestApp) {
    let (c, site, pid) = patient_with_site(app, "ns-bea@example.org").await;
    let slug = site["site"].as_str().unwrap();
    let secret = secret_of(&site);
    let phone = app.client();

    // xDrip+ keeps a path in its URL: /ns/{site}/api/v1/entries, a batch.
    let batch: Vec<Value> = (0..3).map(|i| sgv(i, 100 + i * 10)).collect();
    let r = phone
        .post(app.url(&format!("/ns/{slug}/api/v1/entries")))
        .header("api-secret", &secret)
        .json(&batch)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let stored = body(r).await;
    let stored = stored.as_array().unwrap();
    assert_eq!(stored.len(), 3);
    for (s, sent) in stored.iter().zip(&batch) {
        let id = s["_id"].as_str().unwrap();
        assert_eq!(id.len(), 24);
        assert!(id.bytes().all(|b| b.is_ascii_hexdigit()));
        assert_eq!(s["sgv"], sent["sgv"]);
        assert_eq!(s["date"], sent["date"]);
        assert_eq!(s["type"], "sgv");
    }
    // The same batch again updates, adding nothing.
    let r = phone
        .post(app.url(&format!("/ns/{slug}/api/v1/entries")))
        .header("api-secret", &secret)
        .json(&batch)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let again = body(r).await;
    assert_eq!(again.as_array().unwrap().len(), 3);
    assert_eq!(again[0]["_id"], stored[0]["_id"]);

    // Loop and AndroidAPS call the root: /api/v1/entries.json, one object at a time too.
    let r = phone
        .post(app.url("/api/v1/entries.json"))
        .header("api-secret", &secret)
        .json(&sgv(3, 140))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(body(r).await.as_array().unwrap().len(), 1);
    let mbg = json!({"type": "mbg", "mbg": 131, "date": t(3) + 1000, "device": "Contour"});
    let r = phone
        .post(app.url("/api/v1/entries.json"))
        .header("api-secret", &secret)
        .json(&json!([mbg]))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);

    // A gzip body (Content-Encoding: gzip), as uploaders compress large batches.
    let gz = {
        use std::io::Write;
        let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        e.write_all(serde_json::to_string(&json!([sgv(4, 150), sgv(5, 160)])).unwrap().as_bytes()).unwrap();
        e.finish().unwrap()
    };
    let r = phone
        .post(app.url("/api/v1/entries"))
        .header("api-secret", &secret)
        .header("content-type", "application/json")
        .header("content-encoding", "gzip")
        .body(gz)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(body(r).await.as_array().unwrap().len(), 2);
    let r = phone.post(app.url("/api/v1/entries")).header("api-secret", &secret).body("not json").send().await.unwrap();
    assert_eq!(r.status(), 400);
    assert_eq!(body(r).await["status"], 400);

    let get = |path: String| {
        let phone = phone.clone();
        let secret = secret.clone();
        let url = app.url(&path);
        async move {
            let r = phone.get(url).header("api-secret", secret).send().await.unwrap();
            assert_eq!(r.status(), 200, "{path}");
            r.json::<Value>().await.unwrap().as_array().unwrap().clone()
        }
    };
    // Default count is 10, newest first: 6 sgv and 1 mbg.
    let all = get("/api/v1/entries.json".into()).await;
    assert_eq!(all.len(), 7);
    let dates: Vec<i64> = all.iter().map(|e| e["date"].as_i64().unwrap()).collect();
    assert!(dates.windows(2).all(|w| w[0] >= w[1]), "{dates:?}");
    assert_eq!(all[0]["sgv"], 160);
    assert_eq!(get("/api/v1/entries.json?count=2".into()).await.len(), 2);
    let sgvs = get(format!("/ns/{slug}/api/v1/entries/sgv.json?count=100")).await;
    assert_eq!(sgvs.len(), 6);
    assert!(sgvs.iter().all(|e| e["type"] == "sgv"));
    assert_eq!(get("/api/v1/entries/sgv?count=100".into()).await.len(), 6);
    assert_eq!(get("/api/v1/entries/mbg.json".into()).await.len(), 1);
    // find[date][$gte], find[dateString][$lte], together, with count.
    let newer = get(format!("/api/v1/entries/sgv.json?find[date][$gte]={}&count=100", t(3))).await;
    assert_eq!(newer.iter().map(|e| e["sgv"].as_i64().unwrap()).collect::<Vec<_>>(), vec![160, 150, 140]);
    let older = get(format!("/api/v1/entries/sgv.json?find[dateString][$lte]={}&count=100", iso(t(1)))).await;
    assert_eq!(older.iter().map(|e| e["sgv"].as_i64().unwrap()).collect::<Vec<_>>(), vec![110, 100]);
    let window = get(format!("/api/v1/entries.json?find[date][$gt]={}&find[date][$lt]={}", t(3), t(4))).await;
    assert_eq!(window.len(), 1);
    assert_eq!(window[0]["type"], "mbg");
    let gte_sgv = get("/api/v1/entries.json?find[sgv][$gte]=140&find[type]=sgv&count=100".to_string()).await;
    assert_eq!(gte_sgv.len(), 3);
    // Percent-encoded brackets, as most HTTP libraries send them.
    let enc = get(format!("/api/v1/entries.json?find%5Bdate%5D%5B%24gte%5D={}", t(5))).await;
    assert_eq!(enc.len(), 1);
    let r = phone
        .get(app.url("/api/v1/entries.json?find[date][$gte]=soon"))
        .header("api-secret", &secret)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    // entries/current.json: the newest sgv.
    let cur = get("/api/v1/entries/current.json".into()).await;
    assert_eq!(cur.len(), 1);
    assert_eq!(cur[0]["sgv"], 160);
    let one = get(format!("/api/v1/entries/{}", stored[1]["_id"].as_str().unwrap())).await;
    assert_eq!(one[0]["sgv"], 110);

    // The CGM entries are mirrored into the owner's own report.
    let rep = body(
        c.get(app.url(&format!("/api/v1/patients/{pid}/report?from=2024-03-10&to=2024-03-10"))).send().await.unwrap(),
    )
    .await;
    assert_eq!(rep["readings"], 6, "{rep}");
    assert_eq!(rep["mean_mg_dl"].as_f64().unwrap().round(), 130.0);
    let uploads = body(c.get(app.url("/api/v1/uploads")).send().await.unwrap()).await;
    let ns_upload =
        uploads.as_array().unwrap().iter().find(|u| u["format"] == "nightscout").expect("the Nightscout upload");
    assert_eq!(ns_upload["records"]["cgm"], 6, "{ns_upload}");
    assert_eq!(ns_upload["records"]["bg"], 1, "{ns_upload}");

    // Another patient's secret never sees this patient's data.
    let (_, other, _) = patient_with_site(app, "ns-cid@example.org").await;
    let other_secret = secret_of(&other);
    let r =
        phone.get(app.url("/api/v1/entries.json?count=100")).header("api-secret", &other_secret).send().await.unwrap();
    assert_eq!(r.status(), 200);
    assert!(body(r).await.as_array().unwrap().is_empty());
    let r = phone
        .get(app.url(&format!("/ns/{slug}/api/v1/entries.json")))
        .header("api-secret", &other_secret)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    let r = phone
        .get(app.url(&format!("/api/v1/entries/{}", stored[0]["_id"].as_str().unwrap())))
        .header("api-secret", &other_secret)
        .send()
        .await
        .unwrap();
    assert!(body(r).await.as_array().unwrap().is_empty());

    // Two uploaders posting the same new reading at once store it once.
    let same = json!([sgv(20, 180)]);
    let posts = (0..3).map(|_| phone.post(app.url("/api/v1/entries")).header("api-secret", &secret).json(&same).send());
    for r in futures_like::join_all(posts).await {
        assert_eq!(r.unwrap().status(), 200);
    }
    let found = get(format!("/api/v1/entries.json?find[date]={}", t(20))).await;
    assert_eq!(found.len(), 1);
}

/// `join_all` without another dependency.
mod futures_like {
    pub async fn join_all<F: std::future::Future + Send + 'static>(fs: impl Iterator<Item = F>) -> Vec<F::Output>
    where
        F::Output: Send + 'static,
    {
        let handles: Vec<_> = fs.map(tokio::spawn).collect();
        let mut out = Vec::new();
        for h in handles {
            out.push(h.await.expect("task"));
        }
        out
    }
}

both_backends!(treatments_update_delete_and_mirror);
async fn treatments_update_delete_and_mirror(app: &TestApp) {
    let (_c, site, pid) = patient_with_site(app, "ns-dee@example.org").await;
    let secret = secret_of(&site);
    let loop_app = app.client();
    let meal = json!({"eventType": "Meal Bolus", "created_at": iso(t(0)), "insulin": 2.0, "carbs": 30, "enteredBy": "loop://iPhone"});
    let note = json!({"eventType": "Note", "created_at": iso(t(12)), "notes": "walk"});
    let r = loop_app
        .post(app.url("/api/v1/treatments.json"))
        .header("api-secret", &secret)
        .json(&json!([meal, note]))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let stored = body(r).await;
    assert_eq!(stored.as_array().unwrap().len(), 2);
    let id = stored[0]["_id"].as_str().unwrap().to_string();
    assert_eq!(stored[0]["created_at"], iso(t(0)));
    // Mirrored: a bolus and carbs, and the note.
    let ev = therapy_events(app, &pid).await;
    let mut kinds: Vec<&str> = ev.iter().map(|e| e.kind.as_str()).collect();
    kinds.sort();
    assert_eq!(kinds, vec!["bolus", "carbs", "note"]);
    assert!(ev.iter().all(|e| e.source_rank == 2));

    // Re-posting the same created_at + eventType (no _id) updates it.
    let again = json!({"eventType": "Meal Bolus", "created_at": iso(t(0)), "insulin": 2.5, "carbs": 30});
    let r =
        loop_app.post(app.url("/api/v1/treatments")).header("api-secret", &secret).json(&again).send().await.unwrap();
    assert_eq!(body(r).await[0]["_id"], id.as_str());
    let list =
        body(loop_app.get(app.url("/api/v1/treatments.json")).header("api-secret", &secret).send().await.unwrap())
            .await;
    assert_eq!(list.as_array().unwrap().len(), 2);
    assert_eq!(list[0]["eventType"], "Note", "newest first");
    assert_eq!(list[1]["insulin"], 2.5);
    let bolus = |ev: &[store::entity::therapy_events::Model]| {
        ev.iter().filter(|e| e.kind == "bolus").map(|e| e.amount.unwrap()).collect::<Vec<_>>()
    };
    assert_eq!(bolus(&therapy_events(app, &pid).await), vec![2.5]);

    // find[created_at][$gte] and find[eventType].
    let r = loop_app
        .get(app.url(&format!("/api/v1/treatments.json?find[created_at][$gte]={}", iso(t(1)))))
        .header("api-secret", &secret)
        .send()
        .await
        .unwrap();
    let newer = body(r).await;
    assert_eq!(newer.as_array().unwrap().len(), 1);
    assert_eq!(newer[0]["eventType"], "Note");
    let r = loop_app
        .get(app.url("/api/v1/treatments?find[eventType]=Meal%20Bolus"))
        .header("api-secret", &secret)
        .send()
        .await
        .unwrap();
    assert_eq!(body(r).await.as_array().unwrap().len(), 1);

    // PUT by _id (path, and body) changes the stored treatment and its mirror.
    let r = loop_app
        .put(app.url(&format!("/api/v1/treatments/{id}")))
        .header("api-secret", &secret)
        .json(&json!({"eventType": "Meal Bolus", "created_at": iso(t(0)), "insulin": 3.0, "carbs": 45}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(body(r).await["insulin"], 3.0);
    let ev = therapy_events(app, &pid).await;
    assert_eq!(bolus(&ev), vec![3.0]);
    assert_eq!(ev.iter().filter(|e| e.kind == "carbs").map(|e| e.amount.unwrap()).collect::<Vec<_>>(), vec![45.0]);
    let r = loop_app
        .put(app.url("/api/v1/treatments"))
        .header("api-secret", &secret)
        .json(&json!({"_id": id, "eventType": "Correction Bolus", "created_at": iso(t(1)), "insulin": 1.0}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(body(r).await["_id"], id.as_str());
    let ev = therapy_events(app, &pid).await;
    assert_eq!(bolus(&ev), vec![1.0]);
    assert_eq!(ev.iter().filter(|e| e.kind == "carbs").count(), 0, "the meal's carbs left with it");
    // Moved onto another treatment's time and type: both are kept.
    let r = loop_app
        .put(app.url(&format!("/api/v1/treatments/{id}")))
        .header("api-secret", &secret)
        .json(&json!({"eventType": "Note", "created_at": iso(t(12)), "notes": "moved"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let list =
        body(loop_app.get(app.url("/api/v1/treatments")).header("api-secret", &secret).send().await.unwrap()).await;
    assert_eq!(list.as_array().unwrap().len(), 2);
    let ev = therapy_events(app, &pid).await;
    assert_eq!(ev.iter().filter(|e| e.kind == "note").count(), 2);
    assert!(bolus(&ev).is_empty());

    // DELETE by _id removes it and its mirrored records.
    let r = loop_app
        .delete(app.url(&format!("/api/v1/treatments/{id}")))
        .header("api-secret", &secret)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let list =
        body(loop_app.get(app.url("/api/v1/treatments")).header("api-secret", &secret).send().await.unwrap()).await;
    assert_eq!(list.as_array().unwrap().len(), 1);
    let ev = therapy_events(app, &pid).await;
    assert_eq!(ev.iter().map(|e| e.kind.as_str()).collect::<Vec<_>>(), vec!["note"]);
    // DELETE with find[...] (as Trio does).
    let note_id = list[0]["_id"].as_str().unwrap();
    let r = loop_app
        .delete(app.url(&format!("/api/v1/treatments?find[_id]={note_id}")))
        .header("api-secret", &secret)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert!(therapy_events(app, &pid).await.is_empty());
    let r = loop_app.delete(app.url("/api/v1/treatments")).header("api-secret", &secret).send().await.unwrap();
    assert_eq!(r.status(), 400, "no filter, nothing deleted");

    // devicestatus and profile are kept and served back.
    let ds = json!({"device": "loop://iPhone", "created_at": iso(t(2)), "loop": {"iob": {"iob": 1.2}}});
    let r = loop_app
        .post(app.url("/api/v1/devicestatus.json"))
        .header("api-secret", &secret)
        .json(&ds)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let got = body(
        loop_app.get(app.url("/api/v1/devicestatus.json?count=1")).header("api-secret", &secret).send().await.unwrap(),
    )
    .await;
    assert_eq!(got[0]["loop"]["iob"]["iob"], 1.2);
    let profile = json!({"defaultProfile": "Default", "startDate": iso(t(0)), "units": "mg/dl",
        "store": {"Default": {"dia": 6, "basal": [{"time": "00:00", "value": 0.8}], "carbratio": [{"time": "00:00", "value": 10}],
        "sens": [{"time": "00:00", "value": 40}], "target_low": [{"time": "00:00", "value": 100}], "target_high": [{"time": "00:00", "value": 110}],
        "timezone": "UTC", "units": "mg/dl"}}});
    let r =
        loop_app.post(app.url("/api/v1/profile")).header("api-secret", &secret).json(&profile).send().await.unwrap();
    assert_eq!(r.status(), 200);
    let cur =
        body(loop_app.get(app.url("/api/v1/profile/current")).header("api-secret", &secret).send().await.unwrap())
            .await;
    assert_eq!(cur["defaultProfile"], "Default");
    let all = body(loop_app.get(app.url("/api/v1/profiles")).header("api-secret", &secret).send().await.unwrap()).await;
    assert_eq!(all.as_array().unwrap().len(), 1);
    let all =
        body(loop_app.get(app.url("/api/v1/profile.json")).header("api-secret", &secret).send().await.unwrap()).await;
    assert_eq!(all[0]["store"]["Default"]["dia"], 6);
}

both_backends!(androidaps_api_v3_with_jwt);
async fn androidaps_api_v3_with_jwt(app: &TestApp) {
    let (c, site, pid) = patient_with_site(app, "ns-eve@example.org").await;
    let slug = site["site"].as_str().unwrap();
    let token = site["token"].as_str().unwrap();
    let aaps = app.client();

    // The access token buys a JWT for 8 hours.
    let r = aaps.get(app.url(&format!("/api/v2/authorization/request/{token}"))).send().await.unwrap();
    assert_eq!(r.status(), 200);
    let auth = body(r).await;
    let jwt = auth["token"].as_str().unwrap().to_string();
    assert_eq!(jwt.split('.').count(), 3);
    assert_eq!(auth["exp"].as_i64().unwrap() - auth["iat"].as_i64().unwrap(), 8 * 3600);
    assert!(auth["sub"].is_string());
    let r = aaps.get(app.url("/api/v2/authorization/request/diabase-0000000000000000")).send().await.unwrap();
    assert_eq!(r.status(), 401);
    let r = aaps.get(app.url(&format!("/ns/{slug}/api/v2/authorization/request/{token}"))).send().await.unwrap();
    assert_eq!(r.status(), 200);

    // Without a JWT (AndroidAPS first sends an empty bearer), 401; then it works.
    assert_eq!(aaps.get(app.url("/api/v3/status")).send().await.unwrap().status(), 401);
    let r = aaps.get(app.url("/api/v3/status")).header("authorization", "Bearer ").send().await.unwrap();
    assert_eq!(r.status(), 401);
    assert_eq!(body(r).await["status"], 401);
    let tampered = format!("{}x", &jwt[..jwt.len() - 1]);
    assert_eq!(aaps.get(app.url("/api/v3/status")).bearer_auth(&tampered).send().await.unwrap().status(), 401);
    let st = body(aaps.get(app.url("/api/v3/status")).bearer_auth(&jwt).send().await.unwrap()).await;
    assert_eq!(st["status"], 200);
    assert!(st["result"]["version"].is_string());
    assert_eq!(st["result"]["apiPermissions"]["treatments"], "crud");
    assert_eq!(st["result"]["apiPermissions"]["entries"], "crud");
    let v = body(aaps.get(app.url("/api/v3/version")).send().await.unwrap()).await;
    assert_eq!(v["result"]["apiVersion"], "3.0.5");

    // Create, dedup, read, search, patch, history, delete.
    let entry = json!({"date": t(0), "sgv": 123, "type": "sgv", "direction": "FortyFiveUp", "device": "AAPS", "app": "AAPS", "utcOffset": 60, "isValid": true});
    let r = aaps.post(app.url("/api/v3/entries")).bearer_auth(&jwt).json(&entry).send().await.unwrap();
    assert_eq!(r.status(), 201);
    let created = body(r).await;
    assert_eq!(created["status"], 201);
    let ident = created["identifier"].as_str().unwrap().to_string();
    assert!(created["lastModified"].is_i64());
    let r = aaps.post(app.url("/api/v3/entries")).bearer_auth(&jwt).json(&entry).send().await.unwrap();
    assert_eq!(r.status(), 200);
    let dedup = body(r).await;
    assert_eq!(dedup["isDeduplication"], true);
    assert_eq!(dedup["identifier"], ident.as_str());
    let treatment = json!({"identifier": "aaps-treatment-1", "eventType": "Correction Bolus", "date": t(1), "created_at": iso(t(1)), "insulin": 0.7, "utcOffset": 60, "app": "AAPS"});
    let r = aaps
        .post(app.url(&format!("/ns/{slug}/api/v3/treatments")))
        .bearer_auth(&jwt)
        .json(&treatment)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    assert_eq!(body(r).await["identifier"], "aaps-treatment-1");
    assert_eq!(therapy_events(app, &pid).await.iter().filter(|e| e.kind == "bolus").count(), 1);

    let r = aaps.get(app.url(&format!("/api/v3/entries/{ident}"))).bearer_auth(&jwt).send().await.unwrap();
    assert_eq!(r.status(), 200);
    let one = body(r).await;
    assert_eq!(one["status"], 200);
    assert_eq!(one["result"]["sgv"], 123);
    assert_eq!(one["result"]["identifier"], ident.as_str());
    assert!(one["result"]["srvModified"].is_i64());
    let found = body(
        aaps.get(app.url(&format!("/api/v3/entries?sort$desc=date&type=sgv&limit=10&date$gte={}", t(0))))
            .bearer_auth(&jwt)
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(found["result"].as_array().unwrap().len(), 1);
    let none =
        body(aaps.get(app.url(&format!("/api/v3/entries?date$gt={}", t(0)))).bearer_auth(&jwt).send().await.unwrap())
            .await;
    assert!(none["result"].as_array().unwrap().is_empty());
    assert_eq!(aaps.get(app.url("/api/v3/entries?limit=5000")).bearer_auth(&jwt).send().await.unwrap().status(), 400);
    assert_eq!(aaps.get(app.url("/api/v3/nosuch")).bearer_auth(&jwt).send().await.unwrap().status(), 404);
    let treated =
        body(aaps.get(app.url("/api/v3/treatments/aaps-treatment-1")).bearer_auth(&jwt).send().await.unwrap()).await;
    assert_eq!(treated["result"]["insulin"], 0.7);
    let r = aaps
        .patch(app.url("/api/v3/treatments/aaps-treatment-1"))
        .bearer_auth(&jwt)
        .json(&json!({"insulin": 0.9}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let ev = therapy_events(app, &pid).await;
    assert_eq!(ev.iter().filter(|e| e.kind == "bolus").map(|e| e.amount.unwrap()).collect::<Vec<_>>(), vec![0.9]);

    let r = aaps.get(app.url("/api/v3/treatments/history/0?limit=10")).bearer_auth(&jwt).send().await.unwrap();
    assert_eq!(r.status(), 200);
    let etag = r.headers().get("etag").unwrap().to_str().unwrap().to_string();
    let hist = body(r).await;
    let last = hist["result"][0]["srvModified"].as_i64().unwrap();
    assert_eq!(etag, format!("W/\"{last}\""));
    let after =
        body(aaps.get(app.url(&format!("/api/v3/treatments/history/{last}"))).bearer_auth(&jwt).send().await.unwrap())
            .await;
    assert!(after["result"].as_array().unwrap().is_empty());

    let r = aaps.delete(app.url("/api/v3/treatments/aaps-treatment-1")).bearer_auth(&jwt).send().await.unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(
        aaps.get(app.url("/api/v3/treatments/aaps-treatment-1")).bearer_auth(&jwt).send().await.unwrap().status(),
        410
    );
    assert!(therapy_events(app, &pid).await.is_empty());
    let hist =
        body(aaps.get(app.url(&format!("/api/v3/treatments/history/{last}"))).bearer_auth(&jwt).send().await.unwrap())
            .await;
    assert_eq!(hist["result"][0]["isValid"], false);
    let lm = body(aaps.get(app.url("/api/v3/lastModified")).bearer_auth(&jwt).send().await.unwrap()).await;
    assert!(lm["result"]["collections"]["treatments"].as_i64().unwrap() > last - 1);
    assert!(lm["result"]["srvDate"].is_i64());
    // API v1 readers see what v3 wrote, and not what it deleted.
    let secret = secret_of(&site);
    let v1 = body(aaps.get(app.url("/api/v1/entries.json")).header("api-secret", &secret).send().await.unwrap()).await;
    assert_eq!(v1.as_array().unwrap().len(), 1);
    let v1 =
        body(aaps.get(app.url("/api/v1/treatments.json")).header("api-secret", &secret).send().await.unwrap()).await;
    assert!(v1.as_array().unwrap().is_empty());
    let r = aaps
        .delete(app.url(&format!("/api/v3/entries/{ident}?permanent=true")))
        .bearer_auth(&jwt)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(
        aaps.get(app.url(&format!("/api/v3/entries/{ident}"))).bearer_auth(&jwt).send().await.unwrap().status(),
        404
    );

    // Rotating the site invalidates its JWTs.
    c.post(app.url("/api/v1/me/nightscout")).send().await.unwrap();
    assert_eq!(aaps.get(app.url("/api/v3/status")).bearer_auth(&jwt).send().await.unwrap().status(), 401);
}

#[test]
fn cli_creates_and_rotates_a_site() {
    let tmp = common::TempDir::new("cli-ns");
    let db = format!("sqlite://{}/n.sqlite?mode=rwc", tmp.0.display());
    let bin = env!("CARGO_BIN_EXE_diabase");
    let run = |args: &[&str]| {
        std::process::Command::new(bin)
            .args(args)
            .env("DATABASE_URL", &db)
            .env("DIABASE_PUBLIC_URL", "https://diabase.example.org/")
            .env("RUST_LOG", "warn")
            .output()
            .unwrap()
    };
    assert!(run(&["user", "add", "--email", "ns-cli@example.org", "--role", "patient"]).status.success());
    let out = run(&["user", "nightscout", "--email", "ns-cli@example.org"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let a: Value = serde_json::from_slice(&out.stdout).unwrap();
    let site = a["site"].as_str().unwrap();
    assert_eq!(a["url"], format!("https://diabase.example.org/ns/{site}"));
    assert!(a["secret"].as_str().unwrap().len() >= 12);
    let out = run(&["user", "nightscout", "--email", "ns-cli@example.org"]);
    let b: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(b["site"], a["site"]);
    assert_ne!(b["secret"], a["secret"]);
    let out = run(&["user", "nightscout", "--email", "nobody@example.org"]);
    assert!(!out.status.success());
    let _ = Backend::Sqlite;
}

both_backends!(read_only_tokens_read_and_never_write);
async fn read_only_tokens_read_and_never_write(app: &TestApp) {
    let (_c, site, _pid) = patient_with_site(app, "ns-follow@example.org").await;
    let secret = secret_of(&site);
    let read = site["read_token"].as_str().unwrap().to_string();
    assert!(read.starts_with("diabase-readonly-"), "{read}");
    let http = reqwest::Client::new();
    let r = http
        .post(app.url("/api/v1/entries"))
        .header("api-secret", &secret)
        .json(&json!([sgv(0, 120)]))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    // Reads with the read-only token, at the root and under the site path.
    let got = body(http.get(app.url(&format!("/api/v1/entries.json?token={read}"))).send().await.unwrap()).await;
    assert_eq!(got.as_array().unwrap().len(), 1);
    let slug = site["site"].as_str().unwrap();
    let r = http.get(app.url(&format!("/ns/{slug}/api/v1/entries/sgv.json?token={read}"))).send().await.unwrap();
    assert_eq!(r.status(), 200);
    // Never writes: v1 answers 401 as Nightscout does for a missing permission.
    let r =
        http.post(app.url(&format!("/api/v1/entries?token={read}"))).json(&json!([sgv(1, 130)])).send().await.unwrap();
    assert_eq!(r.status(), 401);
    let r = http.delete(app.url(&format!("/api/v1/entries?token={read}"))).send().await.unwrap();
    assert_eq!(r.status(), 401);
    // Its JWT reads API v3 and cannot write there either.
    let jwt = body(http.get(app.url(&format!("/api/v2/authorization/request/{read}"))).send().await.unwrap()).await;
    assert_eq!(jwt["permissionGroups"], json!([["api:*:read"]]));
    let bearer = format!("Bearer {}", jwt["token"].as_str().unwrap());
    let r = http.get(app.url("/api/v3/entries?limit=5")).header("authorization", &bearer).send().await.unwrap();
    assert_eq!(r.status(), 200);
    let r = http
        .post(app.url("/api/v3/entries"))
        .header("authorization", &bearer)
        .json(&json!({"type": "sgv", "sgv": 140, "date": t(2), "app": "test"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
    let stored =
        body(http.get(app.url(&format!("/api/v1/entries.json?token={read}&count=10"))).send().await.unwrap()).await;
    assert_eq!(stored.as_array().unwrap().len(), 1, "nothing written with the read-only token");
}

both_backends!(failed_secrets_are_rate_limited);
async fn failed_secrets_are_rate_limited(app: &TestApp) {
    let (_c, site, _pid) = patient_with_site(app, "ns-guess@example.org").await;
    let http = reqwest::Client::new();
    let limit = server::nightscout::FAILED_AUTH_LIMIT as usize;
    for i in 0..limit {
        let r = http
            .get(app.url("/api/v1/entries.json"))
            .header("api-secret", sha1_hex(format!("guess-{i}").as_bytes()))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 401, "attempt {i}");
    }
    // Past the limit even the right secret waits for the window to pass.
    let r = http.get(app.url("/api/v1/entries.json")).header("api-secret", secret_of(&site)).send().await.unwrap();
    assert_eq!(r.status(), 429);
    // Requests without credentials are not counted as failures.
    let r = http.get(app.url("/api/v1/status.json")).send().await.unwrap();
    assert_eq!(r.status(), 200);
}

both_backends!(browser_readers_get_cors);
async fn browser_readers_get_cors(app: &TestApp) {
    let (_c, site, _pid) = patient_with_site(app, "ns-cors@example.org").await;
    let read = site["read_token"].as_str().unwrap().to_string();
    let http = reqwest::Client::new();
    let r = http
        .request(reqwest::Method::OPTIONS, app.url("/api/v1/entries.json"))
        .header("origin", "https://watchface.example")
        .header("access-control-request-method", "GET")
        .header("access-control-request-headers", "api-secret")
        .send()
        .await
        .unwrap();
    assert!(r.status().is_success(), "preflight: {}", r.status());
    assert_eq!(r.headers()["access-control-allow-origin"], "*");
    let r = http
        .get(app.url(&format!("/api/v1/entries.json?token={read}")))
        .header("origin", "https://watchface.example")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["access-control-allow-origin"], "*");
    let r = http.get(app.url("/api/v3/status")).header("origin", "https://watchface.example").send().await.unwrap();
    assert_eq!(r.headers()["access-control-allow-origin"], "*");
    // Diabase's own, cookie-authenticated API stays same-origin.
    let r = http.get(app.url("/api/v1/me")).header("origin", "https://watchface.example").send().await.unwrap();
    assert!(r.headers().get("access-control-allow-origin").is_none());
}

both_backends!(behaves_as_nightscout_for_clients);
/// Issue 24: Nightscout's own semantics, as the phone clients rely on them.
/// Request shapes follow what each client sends (xDrip+'s NightscoutUploader
/// entries, Loop's NightscoutUploadKit, AndroidAPS's NSClient v1 treatments).
async fn behaves_as_nightscout_for_clients(app: &TestApp) {
    let (c, site, pid) = patient_with_site(app, "ns-fid@example.org").await;
    let slug = site["site"].as_str().unwrap();
    let secret = secret_of(&site);
    let phone = app.client();
    let get = |path: String| {
        let phone = phone.clone();
        let secret = secret.clone();
        let url = app.url(&path);
        async move {
            let r = phone.get(url).header("api-secret", secret).send().await.unwrap();
            assert_eq!(r.status(), 200, "{path}");
            r.json::<Value>().await.unwrap().as_array().unwrap().clone()
        }
    };

    // One sgv per instant and type: xDrip+ uploads a reading, then Loop
    // re-posts the same reading with its own device name. One entry remains.
    let xdrip = json!({"device": "xDrip-DexcomG6", "date": t(0), "dateString": "2024-03-10T09:00:00.000+0100",
        "sysTime": "2024-03-10T09:00:00.000+0100", "sgv": 120, "delta": 1.5, "direction": "Flat", "type": "sgv",
        "filtered": 120000, "unfiltered": 120000, "rssi": 100, "noise": 1});
    let r = phone
        .post(app.url(&format!("/ns/{slug}/api/v1/entries")))
        .header("api-secret", &secret)
        .json(&json!([xdrip]))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let loop_entry = json!({"device": "loop://iPhone", "date": t(0), "dateString": iso(t(0)), "sgv": 120, "direction": "Flat", "type": "sgv"});
    let r = phone
        .post(app.url("/api/v1/entries.json"))
        .header("api-secret", &secret)
        .json(&json!([loop_entry]))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let at = get(format!("/api/v1/entries.json?find[date]={}", t(0))).await;
    assert_eq!(at.len(), 1, "{at:?}");
    assert_eq!(at[0]["device"], "loop://iPhone", "the later post replaced the earlier, as Nightscout's upsert");
    // An mbg at the same instant is another type: kept beside it.
    let r = phone
        .post(app.url("/api/v1/entries.json"))
        .header("api-secret", &secret)
        .json(&json!([{"type": "mbg", "mbg": 130, "date": t(0), "device": "xDrip-DexcomG6"}]))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(get(format!("/api/v1/entries.json?find[date]={}", t(0))).await.len(), 2);

    // An entry without a valid time is refused, never stamped with the
    // server's clock; the valid documents of its batch are stored.
    let junk = json!({"sgv": "high", "date": "yesterday", "dateString": "not a date"});
    let r = phone
        .post(app.url("/api/v1/entries"))
        .header("api-secret", &secret)
        .json(&json!([sgv(1, 125), junk]))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let answer = body(r).await;
    let answer = answer.as_array().unwrap();
    assert_eq!(answer.len(), 2, "an array as long as the batch");
    assert_eq!(answer[0]["sgv"], 125);
    assert!(answer[0]["_id"].is_string());
    assert_eq!(answer[1]["status"], 400, "{answer:?}");
    assert_eq!(answer[1]["index"], 1);
    assert_eq!(answer[1]["field"], "date");
    assert!(answer[1]["message"].as_str().unwrap().contains("yesterday"), "{answer:?}");
    let cur = get("/api/v1/entries/current.json".into()).await;
    assert_eq!(cur[0]["sgv"], 125, "the current reading is the valid one");
    assert_eq!(get("/api/v1/entries/sgv.json?count=100".into()).await.len(), 2);
    // Alone, it is refused with 400 and nothing changes.
    let r = phone.post(app.url("/api/v1/entries")).header("api-secret", &secret).json(&junk).send().await.unwrap();
    assert_eq!(r.status(), 400);
    let r = phone
        .post(app.url("/api/v1/entries"))
        .header("api-secret", &secret)
        .json(&json!({"sgv": 99}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400, "no time at all");
    assert_eq!(get("/api/v1/entries.json?count=100".into()).await.len(), 3);

    // What clients post comes back as posted: AndroidAPS's isValid, a
    // field Diabase does not read, and each value's JSON type.
    let removed = json!({"eventType": "Correction Bolus", "created_at": iso(t(2)), "insulin": 1.5, "isValid": false,
        "NSCLIENT_ID": 1_710_057_600_123i64, "pumpId": "4711", "enteredBy": "openaps://AndroidAPS"});
    let kept = json!({"eventType": "Correction Bolus", "created_at": iso(t(3)), "insulin": "0.5", "isValid": true});
    let r = phone
        .post(app.url("/api/v1/treatments"))
        .header("api-secret", &secret)
        .json(&json!([removed, kept]))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let list = get("/api/v1/treatments".into()).await;
    assert_eq!(list.len(), 2);
    let back = list.iter().find(|d| d["created_at"] == iso(t(2))).unwrap();
    assert_eq!(back["isValid"], false);
    assert_eq!(back["pumpId"], "4711", "a text stays a text");
    assert_eq!(back["NSCLIENT_ID"], 1_710_057_600_123i64);
    let k = list.iter().find(|d| d["created_at"] == iso(t(3))).unwrap();
    assert_eq!(k["insulin"], 0.5, "Nightscout stores a treatment's insulin as a number");
    // The removed bolus is not therapy: only the kept one reaches the reports.
    let ev = therapy_events(app, &pid).await;
    let boluses: Vec<f64> = ev.iter().filter(|e| e.kind == "bolus").map(|e| e.amount.unwrap()).collect();
    assert_eq!(boluses, vec![0.5]);
    // A profile's mills posted as text comes back as text.
    let profile = json!({"defaultProfile": "Default", "mills": "1710057600000", "units": "mg/dl",
        "store": {"Default": {"dia": 5, "basal": [{"time": "00:00", "value": 0.9}], "timezone": "UTC", "units": "mg/dl"}}});
    let r = phone.post(app.url("/api/v1/profile")).header("api-secret", &secret).json(&profile).send().await.unwrap();
    assert_eq!(r.status(), 200);
    let cur =
        body(phone.get(app.url("/api/v1/profile/current")).header("api-secret", &secret).send().await.unwrap()).await;
    assert_eq!(cur["mills"], "1710057600000");

    // Treatments without count: Nightscout's 100 newest (1000 with find).
    let many: Vec<Value> = (0..120)
        .map(|i| json!({"eventType": "Note", "created_at": iso(t(10 + i)), "notes": format!("n{i}")}))
        .collect();
    let r = phone.post(app.url("/api/v1/treatments")).header("api-secret", &secret).json(&many).send().await.unwrap();
    assert_eq!(r.status(), 200);
    let list = get("/api/v1/treatments".into()).await;
    assert_eq!(list.len(), 100);
    assert_eq!(list[0]["notes"], "n119", "newest first");
    assert_eq!(get("/api/v1/treatments.json?find[eventType]=Note".into()).await.len(), 120);
    assert_eq!(get("/api/v1/treatments.json?count=5".into()).await.len(), 5);
    assert_eq!(get("/api/v1/entries.json".into()).await.len(), 3, "entries keep Nightscout's 10");
    let _ = c;
}

both_backends!(old_entry_keys_migrate_to_nightscouts);
/// Entries stored under the old natural key (date, type and device) are
/// moved to Nightscout's (date, type) by migration 0013: of two documents
/// of one reading, the newer stays and the older is deleted as an upsert
/// would have replaced it (a tombstone API v3 history reports).
async fn old_entry_keys_migrate_to_nightscouts(app: &TestApp) {
    use migration::{Migrator, MigratorTrait};
    use sea_orm::ConnectionTrait;
    let (_c, site, pid) = patient_with_site(app, "ns-mig@example.org").await;
    let secret = secret_of(&site);
    let phone = app.client();
    let r = phone
        .post(app.url("/api/v1/entries"))
        .header("api-secret", &secret)
        .json(&json!([sgv(0, 120), sgv(1, 125)]))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let db = &app.state.db;
    // As the old code stored them: the device in the key, and Loop's copy of reading 0 beside xDrip's.
    db.execute_unprepared(&format!(
        "UPDATE nightscout_docs SET dedup = CAST(date_ms AS TEXT) || '|sgv|xDrip-DexcomG6' WHERE patient_id = '{pid}'"
    ))
    .await
    .unwrap();
    let doc = json!({"type": "sgv", "sgv": 121, "date": t(0), "device": "loop://iPhone"}).to_string();
    db.execute_unprepared(&format!(
        "INSERT INTO nightscout_docs (patient_id, collection, ns_id, identifier, dedup, kind, date_ms, doc_json, created_ms, modified_ms, deleted_ms) \
         VALUES ('{pid}', 'entries', '65f0000000000000000000aa', NULL, '{}|sgv|loop://iPhone', 'sgv', {}, '{doc}', 7000000000000, 7000000000000, NULL)",
        t(0),
        t(0)
    ))
    .await
    .unwrap();
    let live = |v: Vec<Value>| v.into_iter().map(|e| e["sgv"].as_i64().unwrap()).collect::<Vec<_>>();
    let list = |path: &str| {
        let url = app.url(path);
        let (phone, secret) = (phone.clone(), secret.clone());
        async move {
            body(phone.get(url).header("api-secret", secret).send().await.unwrap()).await.as_array().unwrap().clone()
        }
    };
    assert_eq!(live(list("/api/v1/entries.json?count=100").await), vec![125, 121, 120], "doubled before the migration");
    // Back to before 0013 (and the migrations after it), then forward again.
    let since_0013 =
        Migrator::migrations().iter().rev().position(|m| m.name() == "m0013_entries_natural_key").unwrap() as u32 + 1;
    Migrator::down(db, Some(since_0013)).await.unwrap();
    Migrator::up(db, None).await.unwrap();
    assert_eq!(live(list("/api/v1/entries.json?count=100").await), vec![125, 121], "the newer copy of reading 0 stays");
    let keys: Vec<Option<String>> = store::entity::nightscout_docs::Entity::find()
        .filter(store::entity::nightscout_docs::Column::PatientId.eq(pid.as_str()))
        .filter(store::entity::nightscout_docs::Column::DeletedMs.is_null())
        .all(db)
        .await
        .unwrap()
        .into_iter()
        .map(|d| d.dedup)
        .collect();
    assert!(keys.contains(&Some(format!("{}|sgv", t(0)))), "{keys:?}");
    assert!(keys.contains(&Some(format!("{}|sgv", t(1)))), "{keys:?}");
    // The deletion is in API v3 history, after everything before it.
    let jwt = body(
        phone
            .get(app.url(&format!("/api/v2/authorization/request/{}", site["token"].as_str().unwrap())))
            .send()
            .await
            .unwrap(),
    )
    .await;
    let jwt = jwt["token"].as_str().unwrap().to_string();
    let h =
        body(phone.get(app.url("/api/v3/entries/history/7000000000000")).bearer_auth(&jwt).send().await.unwrap()).await;
    let gone: Vec<&Value> = h["result"].as_array().unwrap().iter().filter(|d| d["isValid"] == false).collect();
    assert_eq!(gone.len(), 1, "{h}");
    assert_eq!(gone[0]["sgv"], 120);
    // xDrip+ re-posting reading 0 now updates the one that stayed.
    let r = phone
        .post(app.url("/api/v1/entries"))
        .header("api-secret", &secret)
        .json(&json!([sgv(0, 122)]))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(live(list("/api/v1/entries.json?count=100").await), vec![125, 122]);
}

both_backends!(replays_real_clients);
/// The request sequences of four real clients, replayed as each builds them
/// (paths, headers, query strings, JSON bodies and value types), against what
/// Nightscout (cgm-remote-monitor) answers. Sources, per section below.
async fn replays_real_clients(app: &TestApp) {
    let (_c, site, _pid) = patient_with_site(app, "ns-replay@example.org").await;
    let slug = site["site"].as_str().unwrap().to_string();
    let token = site["token"].as_str().unwrap().to_string();
    let hashed = secret_of(&site);
    let http = reqwest::Client::new();
    let v1 = |method: reqwest::Method, path: &str| http.request(method, app.url(path)).header("api-secret", &hashed);
    async fn ok(rb: reqwest::RequestBuilder) -> Value {
        let r = rb.send().await.unwrap();
        let url = r.url().to_string();
        assert_eq!(r.status(), 200, "{url}");
        body(r).await
    }
    async fn ok_array(rb: reqwest::RequestBuilder) -> Vec<Value> {
        ok(rb).await.as_array().unwrap().clone()
    }
    let num = |v: &Value| v.as_f64().unwrap();
    use reqwest::Method as M;

    // ---- xDrip+: NightscoutFoundation/xDrip
    // app/src/main/java/com/eveningoutpost/dexdrip/utilitymodels/NightscoutUploader.java
    // (NightscoutService: Retrofit paths relative to the base URL
    // "https://SECRET@host/ns/{site}/api/v1/", so the path is kept; the
    // api-secret header is the SHA-1 hex of the URL's user info;
    // populateV1APIBGEntry / MeterReadingEntry / CalibrationEntry,
    // postDeviceStatus, populateV1APITreatmentEntry + upsertTreatments (PUT
    // one object with `_id` = uuid_to_id(uuid)), findTreatmentByUUID,
    // deleteTreatment, downloadTreatments) and NightscoutBatteryDevice.java.
    let xd = format!("/ns/{slug}/api/v1");
    let local = |i: i64| format!("2024-03-10T09:{:02}:00.000+0100", i * 5); // "yyyy-MM-dd'T'HH:mm:ss.SSSZ", UTC+1
    let status = ok(v1(M::GET, &format!("{xd}/status.json"))).await;
    assert_eq!(status["status"], "ok");
    let xsgv = |i: i64, v: i64| {
        json!({"device": "xDrip-DexcomG6", "date": t(i), "dateString": local(i), "sgv": v, "delta": 1.5,
            "direction": "Flat", "type": "sgv", "filtered": 151000.0, "unfiltered": 152000.0, "rssi": 100, "noise": 1,
            "sysTime": local(i)})
    };
    let cal_at = t(1) + 30_000;
    let batch = json!([xsgv(0, 120), xsgv(1, 125), xsgv(2, 131),
        {"device": "xDrip-DexcomG6", "type": "mbg", "date": cal_at, "dateString": "2024-03-10T09:05:30.000+0100",
            "mbg": 128.0, "sysTime": "2024-03-10T09:05:30.000+0100"},
        {"device": "xDrip-DexcomG6", "type": "cal", "date": cal_at, "dateString": "2024-03-10T09:05:30.000+0100",
            "slope": 850.5, "intercept": 31000.2, "scale": 1, "sysTime": "2024-03-10T09:05:30.000+0100"}]);
    let first = ok_array(v1(M::POST, &format!("{xd}/entries")).json(&batch)).await;
    assert_eq!(first.len(), 5);
    assert!(first.iter().all(|e| e["_id"].as_str().is_some_and(|id| id.len() == 24)), "{first:?}");
    // A retried upload (the answer was lost) updates: the same documents.
    let again = ok_array(v1(M::POST, &format!("{xd}/entries")).json(&batch)).await;
    assert_eq!(
        again.iter().map(|e| &e["_id"]).collect::<Vec<_>>(),
        first.iter().map(|e| &e["_id"]).collect::<Vec<_>>()
    );
    let stored = ok_array(v1(M::GET, &format!("{xd}/entries.json?count=100"))).await;
    let types: Vec<&str> = stored.iter().map(|e| e["type"].as_str().unwrap()).collect();
    assert_eq!(types.iter().filter(|t| **t == "sgv").count(), 3, "{types:?}");
    assert_eq!((types.contains(&"mbg"), types.contains(&"cal")), (true, true), "{types:?}");
    // postDeviceStatus: one object, no time (the server stamps it).
    let r = v1(M::POST, &format!("{xd}/devicestatus"))
        .json(&json!({"device": "samsung SM-G970F", "uploader": {"battery": 85, "type": "PHONE"}}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    // Treatments: a PUT of one object whose `_id` xDrip+ chose.
    let uuid1 = "5b0f2c9e-8a53-4c1e-9d7a-3e2f1a0b9c8d";
    let id1 = uuid1.replace('-', "")[..24].to_string();
    let xtreat = |uuid: &str, id: &str, i: i64, insulin: f64, carbs: f64| {
        json!({"timestamp": t(i), "eventType": "<none>", "enteredBy": "xdrip", "uuid": uuid, "carbs": carbs,
            "insulin": insulin, "created_at": iso(t(i)), "sysTime": local(i), "_id": id})
    };
    let put = ok(v1(M::PUT, &format!("{xd}/treatments")).json(&xtreat(uuid1, &id1, 2, 2.5, 0.0))).await;
    assert_eq!(put["_id"], id1.as_str(), "the client's _id is kept: {put}");
    let put = ok(v1(M::PUT, &format!("{xd}/treatments")).json(&xtreat(uuid1, &id1, 2, 3.0, 0.0))).await;
    assert_eq!(put["_id"], id1.as_str());
    let found = ok_array(v1(M::GET, &format!("{xd}/treatments.json?find[uuid]={uuid1}"))).await;
    assert_eq!(found.len(), 1, "{found:?}");
    assert_eq!((num(&found[0]["insulin"]), found[0]["eventType"].as_str()), (3.0, Some("<none>")));
    let uuid2 = "0c1d2e3f-4a5b-4c6d-8e7f-9a0b1c2d3e4f";
    let id2 = uuid2.replace('-', "")[..24].to_string();
    ok(v1(M::PUT, &format!("{xd}/treatments")).json(&xtreat(uuid2, &id2, 3, 0.0, 20.0))).await;
    let r = v1(M::DELETE, &format!("{xd}/treatments/{id1}")).send().await.unwrap();
    assert_eq!(r.status(), 200);
    assert!(ok_array(v1(M::GET, &format!("{xd}/treatments.json?find[uuid]={uuid1}"))).await.is_empty());

    // ---- AndroidAPS, NSClientV3: nightscout/AndroidAPS core/nssdk/src/main/kotlin/app/aaps/core/nssdk/
    // networking/NightscoutRemoteService.kt (paths relative to "https://{url}/api/",
    // the URL lowercased with its path: plugins/sync/.../nsclientV3/NSClientV3Plugin.kt),
    // networking/NightscoutAuthRefreshService.kt (the absolute "/api/v2/authorization/request/{token}",
    // so at the root), networking/NSAuthInterceptor.kt (a first "Bearer " with no JWT, then a refresh on 401),
    // NSAndroidClientImpl.kt (app = "AAPS"; update = PATCH without date/utcOffset, or DELETE when
    // isValid is false), remotemodel/Remote*.kt and mapper/TreatmentMapper.kt (fields and types),
    // plugins/sync/.../nsclientV3/extensions/*Extension.kt (eventTypes, utcOffset in minutes).
    assert_eq!(slug, slug.to_lowercase(), "AndroidAPS lowercases the site URL");
    let api = format!("/ns/{slug}/api");
    let r = http
        .get(app.url(&format!("{api}/v3/status")))
        .header("Date", t(10).to_string())
        .header("Authorization", "Bearer ")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    let auth = ok(http.get(app.url(&format!("/api/v2/authorization/request/{token}")))).await;
    let jwt = auth["token"].as_str().unwrap().to_string();
    let v3 = |method: reqwest::Method, path: &str| {
        http.request(method, app.url(&format!("{api}/v3/{path}"))).header("Authorization", format!("Bearer {jwt}"))
    };
    let st = ok(v3(M::GET, "status")).await;
    assert_eq!(st["result"]["apiPermissions"]["treatments"], "crud");
    let lm = ok(v3(M::GET, "lastModified")).await;
    assert!(lm["result"]["srvDate"].is_i64());
    let created = |r: reqwest::Response| async move {
        assert_eq!(r.status(), 201);
        body(r).await["identifier"].as_str().unwrap().to_string()
    };
    let entry = json!({"type": "sgv", "sgv": 123.0, "date": t(10), "device": "AAPS-DexcomG6", "direction": "Flat",
        "utcOffset": 60, "isValid": true, "isReadOnly": false, "noise": 1.0, "filtered": 123.0, "unfiltered": 123.0,
        "units": "mg/dl", "app": "AAPS"});
    let entry_id = created(v3(M::POST, "entries").json(&entry).send().await.unwrap()).await;
    let r = v3(M::POST, "entries").json(&entry).send().await.unwrap();
    assert_eq!(r.status(), 200);
    let dedup = body(r).await;
    assert_eq!((dedup["isDeduplication"].as_bool(), dedup["identifier"].as_str()), (Some(true), Some(&*entry_id)));
    let pump = json!({"pumpId": 4102, "pumpType": "ACCU_CHEK_INSIGHT_BLUETOOTH", "pumpSerial": "33013206"});
    let with = |mut d: Value, extra: &Value| {
        for (k, v) in extra.as_object().unwrap() {
            d[k] = v.clone();
        }
        d
    };
    let base = |i: i64, event: &str| json!({"date": t(i), "utcOffset": 60, "isValid": true, "isReadOnly": false, "eventType": event, "app": "AAPS"});
    let smb = with(
        with(base(11, "Correction Bolus"), &pump),
        &json!({"insulin": 0.35, "type": "SMB", "isBasalInsulin": false}),
    );
    let carbs = with(with(base(12, "Meal Bolus"), &pump), &json!({"carbs": 24.0}));
    let tbr = with(
        with(base(13, "Temp Basal"), &pump),
        &json!({"duration": 30, "durationInMilliseconds": 1_800_000, "absolute": 1.2, "rate": 1.2, "type": "NORMAL"}),
    );
    let switch = with(
        base(14, "Profile Switch"),
        &json!({"profile": "Default", "profileJson": "{\"units\":\"mg/dl\",\"dia\":5}",
        "originalProfileName": "Default", "originalDuration": 0, "duration": 0, "timeshift": 0, "percentage": 100}),
    );
    let target = with(
        base(15, "Temporary Target"),
        &json!({"duration": 60, "durationInMilliseconds": 3_600_000,
        "targetBottom": 80.0, "targetTop": 80.0, "reason": "Eating Soon", "units": "mg/dl"}),
    );
    let note = with(base(16, "Note"), &json!({"notes": "site looks fine"}));
    let mut idents = Vec::new();
    for d in [&smb, &carbs, &tbr, &switch, &target, &note] {
        idents.push(created(v3(M::POST, "treatments").json(d).send().await.unwrap()).await);
    }
    // A create retried before its answer arrived: deduplicated, not doubled.
    let r = v3(M::POST, "treatments").json(&smb).send().await.unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(body(r).await["identifier"], idents[0].as_str());
    // API v1 readers see them with created_at from date, and the posted types kept.
    let seen = ok_array(v1(
        M::GET,
        &format!("/api/v1/treatments.json?find[created_at][$gte]={}&find[created_at][$lte]={}", iso(t(10)), iso(t(19))),
    ))
    .await;
    assert_eq!(seen.len(), 6, "{seen:?}");
    let bolus = seen.iter().find(|d| d["eventType"] == "Correction Bolus").unwrap();
    assert_eq!(bolus["created_at"], iso(t(11)));
    assert_eq!((bolus["pumpId"].as_i64(), bolus["isValid"].as_bool()), (Some(4102), Some(true)), "{bolus}");
    assert_eq!(bolus["utcOffset"], 60);
    // getTreatmentsNewerThan / getSgvsNewerThan: ascending.
    let newer = ok(v3(M::GET, &format!("treatments?sort=created_at&created_at$gt={}&limit=500", iso(t(10))))).await;
    let dates: Vec<i64> = newer["result"].as_array().unwrap().iter().map(|d| d["date"].as_i64().unwrap()).collect();
    assert_eq!(dates, (11..=16).map(t).collect::<Vec<_>>());
    let sgvs = ok(v3(M::GET, &format!("entries?sort=date&date$gt={}&limit=500", t(9)))).await;
    assert_eq!(sgvs["result"].as_array().unwrap().len(), 1);
    assert_eq!(num(&sgvs["result"][0]["sgv"]), 123.0);
    let before = ok(v3(M::GET, "lastModified")).await["result"]["collections"]["treatments"].as_i64().unwrap();
    // The temp basal ended early: a PATCH without date and utcOffset.
    let mut patch =
        with(tbr.clone(), &json!({"identifier": idents[2], "duration": 20, "durationInMilliseconds": 1_200_000}));
    for k in ["date", "utcOffset", "app"] {
        patch.as_object_mut().unwrap().remove(k);
    }
    let r = v3(M::PATCH, &format!("treatments/{}", idents[2])).json(&patch).send().await.unwrap();
    assert_eq!(r.status(), 200);
    let read = ok(v3(M::GET, &format!("treatments/{}", idents[2]))).await;
    assert_eq!((read["result"]["duration"].as_i64(), read["result"]["date"].as_i64()), (Some(20), Some(t(13))));
    assert_eq!(read["result"]["utcOffset"], 60);
    // The SMB invalidated in AndroidAPS: a DELETE, reported by history.
    let r = v3(M::DELETE, &format!("treatments/{}", idents[0])).send().await.unwrap();
    assert_eq!(r.status(), 200);
    let hist = ok(v3(M::GET, &format!("treatments/history/{before}?limit=500"))).await;
    let hist = hist["result"].as_array().unwrap();
    assert_eq!(hist.len(), 2, "{hist:?}");
    let gone = hist.iter().find(|d| d["identifier"] == idents[0].as_str()).unwrap();
    assert_eq!(gone["isValid"], false);
    assert_eq!(hist.iter().find(|d| d["identifier"] == idents[2].as_str()).unwrap()["duration"], 20);
    assert!(
        ok_array(v1(M::GET, "/api/v1/treatments.json?find[eventType]=Correction%20Bolus")).await.is_empty(),
        "v1 no longer serves the deleted bolus"
    );
    let ds = json!({"app": "AAPS", "date": t(16), "created_at": iso(t(16)), "device": "openaps://samsung SM-G970F",
        "uploaderBattery": 85, "isCharging": false, "uploader": {"battery": 85},
        "pump": {"clock": iso(t(16)), "reservoir": 120.5, "battery": {"percent": 75}, "status": {"status": "normal", "timestamp": iso(t(16))}},
        "openaps": {"iob": {"iob": 0.8, "basaliob": 0.2, "time": iso(t(16))}, "suggested": {"bg": 123, "reason": "x"}}});
    created(v3(M::POST, "devicestatus").json(&ds).send().await.unwrap()).await;

    // ---- Loop: LoopKit/NightscoutKit Sources/NightscoutKit/NightscoutClient.swift (always the root:
    // `components.path = endpoint`; api-secret = SHA-1 hex; POST answers must be 200 and an array as
    // long as the batch, whose `_id`s Loop keeps), Models/GlucoseEntry.swift, Models/Treatments/*.swift,
    // Models/DeviceStatus.swift, Models/ProfileSet.swift, Extensions/ISO8601DateFormatter.swift
    // (".withInternetDateTime": no fraction); LoopKit/NightscoutService NightscoutServiceKit/Extensions/
    // DoseEntry.swift (doses are always POSTed, no `_id`), SyncCarbObject.swift, NightscoutUploader.swift
    // (carbs: POST, then PUT with the cached `_id`, DELETE /treatments/{_id}).
    let loop_iso = |ms: i64| iso(ms).replace(".000Z", "Z");
    assert_eq!(ok(v1(M::GET, "/api/v1/experiments/test")).await["status"], "ok");
    let glucose: Vec<Value> = (20..32)
        .map(|i| {
            json!({"date": t(i) as f64, "dateString": loop_iso(t(i)), "device": "loop://iPhone", "type": "sgv",
                "sgv": 100.0 + i as f64, "trend": 4, "direction": "Flat", "trendRate": 0.2, "isCalibration": false})
        })
        .collect();
    assert_eq!(ok_array(v1(M::POST, "/api/v1/entries").json(&glucose)).await.len(), 12);
    // fetchGlucose without maxCount: Nightscout's 10, newest first.
    let got = ok_array(v1(
        M::GET,
        &format!(
            "/api/v1/entries?find[dateString][$gte]={}&find[dateString][$lte]={}",
            loop_iso(t(20)),
            loop_iso(t(40))
        ),
    ))
    .await;
    assert_eq!(got.len(), 10);
    assert_eq!(
        got.iter().map(|e| e["date"].as_f64().unwrap() as i64).collect::<Vec<_>>(),
        (22..32).rev().map(t).collect::<Vec<_>>()
    );
    let dose = |i: i64, event: &str, extra: Value| {
        with(
            json!({"created_at": loop_iso(t(i)), "timestamp": loop_iso(t(i)), "enteredBy": "loop://iPhone",
                "eventType": event, "insulinType": "Novolog", "syncIdentifier": format!("{:032x}", i)}),
            &extra,
        )
    };
    let tb = |i: i64, duration: f64, amount: f64| {
        dose(
            i,
            "Temp Basal",
            json!({"temp": "absolute", "rate": 0.5, "absolute": 0.5, "duration": duration,
            "amount": amount, "automatic": true}),
        )
    };
    let mut doses = vec![dose(
        20,
        "Correction Bolus",
        json!({"type": "normal", "insulin": 1.25, "programmed": 1.25,
        "unabsorbed": 0, "duration": 0.0, "automatic": true}),
    )];
    doses.extend((21..121).map(|i| tb(i, 30.0, 0.25)));
    let ids = ok_array(v1(M::POST, "/api/v1/treatments").json(&doses)).await;
    assert_eq!(ids.len(), 101);
    assert!(ids.iter().all(|d| d["_id"].is_string()));
    // The temp basal cut short is posted again: the same document.
    let re = ok_array(v1(M::POST, "/api/v1/treatments").json(&json!([tb(21, 12.0, 0.1)]))).await;
    assert_eq!(re[0]["_id"], ids[1]["_id"]);
    let at = ok_array(v1(
        M::GET,
        &format!(
            "/api/v1/treatments?find[created_at][$gte]={}&find[created_at][$lte]={}",
            loop_iso(t(21)),
            loop_iso(t(21))
        ),
    ))
    .await;
    assert_eq!(at.len(), 1, "{at:?}");
    assert_eq!(num(&at[0]["duration"]), 12.0);
    // Carbs: created, edited (PUT with the `_id`, moved a minute), deleted.
    let carb = |at: i64, grams: i64| {
        json!({"created_at": loop_iso(at), "timestamp": loop_iso(at), "enteredBy": "loop://iPhone",
            "eventType": "Carb Correction", "carbs": grams, "absorptionTime": 180.0, "foodType": "🍕",
            "syncIdentifier": "carb-sync-1", "userEnteredAt": loop_iso(at)})
    };
    let c = ok_array(v1(M::POST, "/api/v1/treatments").json(&json!([carb(t(22), 30)]))).await;
    let cid = c[0]["_id"].as_str().unwrap().to_string();
    let edited = with(carb(t(22) + 60_000, 45), &json!({"_id": cid}));
    ok(v1(M::PUT, "/api/v1/treatments").json(&edited)).await;
    let carbs_since =
        format!("/api/v1/treatments?find[eventType]=Carb%20Correction&find[created_at][$gte]={}", loop_iso(t(20)));
    let list = ok_array(v1(M::GET, &carbs_since)).await;
    assert_eq!(list.len(), 1, "{list:?}");
    assert_eq!((list[0]["_id"].as_str(), list[0]["carbs"].as_i64()), (Some(&*cid), Some(45)));
    assert_eq!(list[0]["created_at"], iso(t(22) + 60_000));
    ok(v1(M::DELETE, &format!("/api/v1/treatments/{cid}"))).await;
    assert!(ok_array(v1(M::GET, &carbs_since)).await.is_empty());
    // Device status (a batch), then fetchDeviceStatus.
    let lds = json!([{"device": "loop://iPhone", "created_at": loop_iso(t(31)),
        "pump": {"clock": loop_iso(t(31)), "pumpID": "123456", "reservoir": 88.5, "suspended": false},
        "uploader": {"name": "iPhone", "timestamp": loop_iso(t(31)), "battery": 64},
        "loop": {"name": "Loop", "version": "3.4.1", "timestamp": loop_iso(t(31)), "iob": {"timestamp": loop_iso(t(31)), "iob": 1.2}}}]);
    assert_eq!(ok_array(v1(M::POST, "/api/v1/devicestatus").json(&lds)).await.len(), 1);
    let fetched = ok_array(v1(
        M::GET,
        &format!(
            "/api/v1/devicestatus?find[created_at][$gte]={}&find[created_at][$lte]={}",
            loop_iso(t(30)),
            loop_iso(t(32))
        ),
    ))
    .await;
    assert_eq!(fetched.len(), 1);
    assert_eq!(fetched[0]["loop"]["iob"]["iob"], 1.2);
    // Profile: uploadProfile, updateProfile (PUT with `_id`), fetchCurrentProfile.
    let profile = |dia: f64| {
        json!({"defaultProfile": "Default", "startDate": iso(t(20)), "mills": t(20).to_string(), "units": "mg/dL",
            "enteredBy": "Loop", "loopSettings": {"dosingEnabled": true, "maximumBolus": 10.0},
            "store": {"Default": {"dia": dia, "carbs_hr": "0", "delay": "0", "timezone": "ETC/GMT-1", "units": "mg/dL",
                "basal": [{"time": "00:00", "value": 0.8, "timeAsSeconds": 0}],
                "carbratio": [{"time": "00:00", "value": 10.0, "timeAsSeconds": 0}],
                "sens": [{"time": "00:00", "value": 40.0, "timeAsSeconds": 0}],
                "target_low": [{"time": "00:00", "value": 100.0, "timeAsSeconds": 0}],
                "target_high": [{"time": "00:00", "value": 110.0, "timeAsSeconds": 0}]}}})
    };
    let p = ok_array(v1(M::POST, "/api/v1/profile").json(&json!([profile(6.0)]))).await;
    assert_eq!(p.len(), 1);
    ok(v1(M::PUT, "/api/v1/profile").json(&with(profile(5.0), &json!({"_id": p[0]["_id"]})))).await;
    let cur = ok(v1(M::GET, "/api/v1/profile/current")).await;
    assert_eq!((num(&cur["store"]["Default"]["dia"]), cur["mills"].as_str()), (5.0, Some(&*t(20).to_string())));
    assert_eq!(cur["_id"], p[0]["_id"]);

    // ---- Trio: nightscout/Trio Trio/Sources/Services/Network/Nightscout/NightscoutAPI.swift (the root
    // via `components.path`, except checkConnection's `appendingPathComponent`, which keeps the URL's
    // path; fetchCarbs / fetchTempTargets exclude other loops with find[$and][i][enteredBy][$ne] and need
    // find[...][$exists]; deleteCarbs / deleteInsulin by find[id][$eq]; deleteGlucose by a find[$or]),
    // Models/NightscoutTreatment.swift, Models/BloodGlucose.swift, Models/NightscoutStatus.swift,
    // APS/Storage/CarbsStorage.swift, PumpHistoryStorage.swift, GlucoseStorage.swift. Recent times: for
    // requests without a date filter Nightscout only looks at the last days.
    let now = app::service::now_ms() / 1000 * 1000;
    let r_at = |i: i64| now - 3 * 3_600_000 + i * 300_000;
    let r = v1(M::POST, &format!("/ns/{slug}/api/v1/treatments.json"))
        .json(&json!({"eventType": "Note", "enteredBy": "Trio", "notes": "Trio connected"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let ids: Vec<String> = (0..12).map(|i| format!("6F1D{i:04}-2C3B-4A5B-9C8D-7E6F5A4B3C2D")).collect();
    let readings: Vec<Value> = (0..12)
        .map(|i| {
            json!({"id": ids[i as usize], "sgv": 140 + i, "direction": "Flat", "date": r_at(i), "dateString": iso(r_at(i)),
                "unfiltered": 140 + i, "filtered": 140 + i, "glucose": 140 + i, "type": "sgv"})
        })
        .collect();
    assert_eq!(ok_array(v1(M::POST, "/api/v1/entries.json").json(&readings)).await.len(), 12);
    let since = |i: i64| format!("/api/v1/entries/sgv.json?count=1600&find[dateString][$gte]={}", iso(r_at(i)));
    assert_eq!(ok_array(v1(M::GET, &since(6))).await.len(), 6);
    let r = v1(
        M::DELETE,
        &format!(
            "/api/v1/entries.json?find[$or][0][id][$eq]={}&find[$or][1][dateString][$eq]={}",
            ids[11],
            iso(r_at(11))
        ),
    )
    .send()
    .await
    .unwrap();
    assert_eq!(r.status(), 200, "deleteGlucose");
    let left = ok_array(v1(M::GET, &since(0))).await;
    assert_eq!(left.len(), 11, "only that reading is gone");
    assert_eq!(left[0]["sgv"], 150);
    let trio = json!([
        {"eventType": "Carb Correction", "created_at": iso(r_at(2)), "enteredBy": "Trio", "notes": "", "carbs": 20,
            "fat": 0, "protein": 0, "foodType": "", "id": "A1B2C3D4-0000-4000-8000-000000000001"},
        {"eventType": "Bolus", "created_at": iso(r_at(3)), "enteredBy": "Trio", "insulin": 2.0,
            "id": "A1B2C3D4-0000-4000-8000-000000000002"},
        {"duration": 30, "absolute": 0.8, "rate": 0.8, "eventType": "Temp Basal", "created_at": iso(r_at(4)),
            "enteredBy": "Trio", "id": "A1B2C3D4-0000-4000-8000-000000000003"}]);
    assert_eq!(ok_array(v1(M::POST, "/api/v1/treatments.json").json(&trio)).await.len(), 3);
    let others = "find[$and][0][enteredBy][$ne]=Trio&find[$and][1][enteredBy][$ne]=AndroidAPS\
        &find[$and][2][enteredBy][$ne]=openaps://AndroidAPS&find[$and][3][enteredBy][$ne]=iAPS\
        &find[$and][4][enteredBy][$ne]=loop://iPhone";
    // fetchCarbs: carbs from elsewhere (xDrip+'s, AndroidAPS's v3 carbs have no enteredBy), not Trio's own.
    let carbs = ok_array(v1(
        M::GET,
        &format!("/api/v1/treatments.json?find[carbs][$exists]=true&{others}&find[created_at][$gt]={}", iso(t(0))),
    ))
    .await;
    let when: Vec<&str> = carbs.iter().map(|d| d["created_at"].as_str().unwrap()).collect();
    assert_eq!(when, vec![iso(t(12)), iso(t(3))], "{carbs:?}");
    // fetchTempTargets: AndroidAPS's temporary target.
    let tts = ok_array(v1(
        M::GET,
        &format!(
            "/api/v1/treatments.json?find[eventType]=Temporary+Target&find[duration][$exists]=true&{others}&find[created_at][$gt]={}",
            iso(t(0))
        ),
    ))
    .await;
    assert_eq!(tts.len(), 1, "{tts:?}");
    assert_eq!(num(&tts[0]["targetTop"]), 80.0);
    // deleteCarbs, deleteInsulin.
    for n in [1, 2] {
        let q = format!("/api/v1/treatments.json?find[id][$eq]=A1B2C3D4-0000-4000-8000-00000000000{n}");
        assert_eq!(v1(M::DELETE, &q).send().await.unwrap().status(), 200);
    }
    let mine = ok_array(v1(
        M::GET,
        &format!("/api/v1/treatments.json?find[enteredBy]=Trio&find[created_at][$gte]={}", iso(r_at(0))),
    ))
    .await;
    assert_eq!(mine.iter().map(|d| d["eventType"].as_str().unwrap()).collect::<Vec<_>>(), vec!["Note", "Temp Basal"]);
    let r = v1(M::POST, "/api/v1/devicestatus.json")
        .json(&json!({"device": "Trio", "created_at": iso(r_at(11)),
            "openaps": {"iob": {"iob": 0.4, "timestamp": iso(r_at(11))}, "suggested": {"bg": 150, "timestamp": iso(r_at(11))}},
            "pump": {"clock": iso(r_at(11)), "reservoir": 100, "status": {"status": "normal", "bolusing": false, "suspended": false}},
            "uploader": {"battery": 80}}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let trio_profile = json!({"defaultProfile": "default", "startDate": iso(r_at(11)), "mills": r_at(11), "units": "mg/dl",
        "enteredBy": "Trio", "bundleIdentifier": "org.nightscout.trio", "deviceToken": "abc", "isAPNSProduction": true,
        "teamID": "TEAM", "store": {"default": {"dia": 6, "carbs_hr": 0, "delay": 0, "timezone": "Europe/Berlin",
            "units": "mg/dl", "basal": [{"time": "00:00", "value": 0.8, "timeAsSeconds": 0}]}}});
    ok(v1(M::POST, "/api/v1/profile.json").json(&trio_profile)).await;
    let imported = ok_array(v1(M::GET, "/api/v1/profile.json?count=1")).await;
    assert_eq!(imported.len(), 1);
    assert_eq!((imported[0]["enteredBy"].as_str(), imported[0]["mills"].as_i64()), (Some("Trio"), Some(r_at(11))));

    // xDrip+ downloadTreatments (no query): Nightscout's 100 newest, newest first.
    let all = ok_array(
        v1(M::GET, &format!("{xd}/treatments")).header("BROKEN-If-Modified-Since", "Thu, 01 Jan 1970 00:00:00 GMT"),
    )
    .await;
    assert_eq!(all.len(), 100);
    assert_eq!(all[0]["notes"], "Trio connected");
    let created_ms: Vec<i64> =
        all.iter().map(|d| app::service::nightscout::parse_time(&d["created_at"]).unwrap().0).collect();
    assert!(created_ms.windows(2).all(|w| w[0] >= w[1]), "newest first");
}
