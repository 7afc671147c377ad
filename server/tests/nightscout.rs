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
    Migrator::down(db, Some(1)).await.unwrap();
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
