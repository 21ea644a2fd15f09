use serde_json::json;

use crate::helpers::*;

#[tokio::test]
async fn indicators_are_normalised_deduplicated_and_correlated() {
    let app = TestApp::spawn().await;
    let u = app.admin().await;
    let a = app.incident(&u, "first").await.str("id");
    let b = app.incident(&u, "second").await.str("id");

    let r = app
        .post(
            &format!("/api/v1/incidents/{a}/iocs"),
            &u.token,
            json!({ "type": "url", "value": "hxxp://Evil[.]Example/login", "tags": ["c2"], "note": "from the mail" }),
        )
        .await
        .expect(201);
    assert_eq!(r.body["value"], "http://evil.example/login");
    assert_eq!(r.body["type"], "url");
    assert_eq!(r.body["tlp"], "amber");
    assert_eq!(r.body["incident_id"], a.as_str());
    let ioc = r.str("id");
    assert!(ioc.starts_with("ioc_"));
    // Another form of the same indicator on the same incident: the same sighting.
    let again = app
        .post(&format!("/api/v1/incidents/{a}/iocs"), &u.token, json!({ "type": "url", "value": "http://EVIL.example/login" }))
        .await
        .expect(200);
    assert_eq!(again.str("id"), ioc);
    assert_eq!(again.body["note"], "from the mail");
    // On a second incident: linked, not copied.
    let other = app
        .post(&format!("/api/v1/incidents/{b}/iocs"), &u.token, json!({ "type": "url", "value": "hxxp[:]//evil(dot)example/login" }))
        .await
        .expect(201);
    assert_eq!(other.str("id"), ioc);

    let found = app.get("/api/v1/iocs?type=url&value=hxxp://evil%5B.%5Dexample/login", &u.token).await.expect(200);
    let items = found.body["items"].as_array().expect("items");
    assert_eq!(items.len(), 1);
    let seen: Vec<&str> =
        items[0]["incidents"].as_array().expect("incidents").iter().map(|i| i["number"].as_str().expect("number")).collect();
    assert_eq!(seen, ["INC-1", "INC-2"]);
    assert!(items[0]["incidents"][0]["first_seen"].is_string() && items[0]["incidents"][0]["last_seen"].is_string());

    // Without a type, every type the value fits is tried.
    app.post(&format!("/api/v1/incidents/{b}/iocs"), &u.token, json!({ "type": "ipv4", "value": "198.51.100.7" })).await.expect(201);
    let by_ip = app.get("/api/v1/iocs?value=198%5B.%5D51%5B.%5D100%5B.%5D7", &u.token).await.expect(200);
    assert_eq!(by_ip.body["items"][0]["type"], "ipv4");
    assert_eq!(by_ip.body["items"][0]["incidents"][0]["number"], "INC-2");
    let none = app.get("/api/v1/iocs?value=203.0.113.200", &u.token).await.expect(200);
    assert_eq!(none.body["items"], json!([]));

    // Per-incident lists.
    let on_b = app.get(&format!("/api/v1/incidents/{b}/iocs"), &u.token).await.expect(200);
    let values: Vec<&str> = on_b.body["items"].as_array().expect("items").iter().map(|i| i["value"].as_str().expect("value")).collect();
    assert_eq!(values, ["http://evil.example/login", "198.51.100.7"]);

    // Unlink from one incident; the other still has it.
    app.delete(&format!("/api/v1/incidents/{a}/iocs/{ioc}"), &u.token).await.expect(204);
    app.delete(&format!("/api/v1/incidents/{a}/iocs/{ioc}"), &u.token).await.problem(404, "not_found");
    let after = app.get("/api/v1/iocs?type=url&value=http://evil.example/login", &u.token).await.expect(200);
    assert_eq!(after.body["items"][0]["incidents"].as_array().map(Vec::len), Some(1));
    assert_eq!(app.get(&format!("/api/v1/incidents/{a}/iocs"), &u.token).await.body["items"], json!([]));

    // The timeline and the audit log tell the story.
    let tl = app.get(&format!("/api/v1/incidents/{a}/timeline"), &u.token).await.expect(200);
    let kinds: Vec<&str> = tl.body["items"].as_array().expect("items").iter().map(|e| e["type"].as_str().expect("type")).collect();
    assert_eq!(kinds, ["incident.created", "ioc.added", "ioc.removed"]);
    let audit = app.get(&format!("/api/v1/audit?resource_id={ioc}"), &u.token).await.expect(200);
    let actions: Vec<&str> = audit.body["items"].as_array().expect("items").iter().map(|e| e["action"].as_str().expect("action")).collect();
    assert_eq!(actions, ["ioc.unlink", "ioc.link", "ioc.link"]);
}

#[tokio::test]
async fn invalid_values_are_refused_with_the_rule() {
    let app = TestApp::spawn().await;
    let u = app.admin().await;
    let a = app.incident(&u, "x").await.str("id");
    for (kind, value) in [
        ("ipv4", "256.0.0.1"),
        ("domain", "localhost"),
        ("sha256", "da39a3ee5e6b4b0d3255bfef95601890afd80709"),
        ("cve", "CVE-21-1"),
        ("url", "not a url"),
    ] {
        let r = app
            .post(&format!("/api/v1/incidents/{a}/iocs"), &u.token, json!({ "type": kind, "value": value }))
            .await
            .problem(422, "validation_failed");
        let msg = r.body["errors"][0]["message"].as_str().expect("message");
        assert_eq!(r.body["errors"][0]["field"], "value");
        assert!(msg.contains(&format!("not a valid {kind}")), "{msg}");
    }
    let r = app
        .post(
            &format!("/api/v1/incidents/{a}/iocs"),
            &u.token,
            json!({ "type": "sha256", "value": "da39a3ee5e6b4b0d3255bfef95601890afd80709" }),
        )
        .await;
    assert!(r.body["errors"][0]["message"].as_str().expect("message").contains("sha1"));
    app.get("/api/v1/iocs?type=ipv4&value=999.1.1.1", &u.token).await.problem(422, "validation_failed");
    app.get("/api/v1/iocs", &u.token).await.problem(422, "validation_failed");
    app.get("/api/v1/iocs?type=colour&value=red", &u.token).await.problem(422, "validation_failed");
    assert_eq!(app.get(&format!("/api/v1/incidents/{a}/iocs"), &u.token).await.body["items"], json!([]));
}

#[tokio::test]
async fn extraction_reviews_then_saves_in_one_go() {
    let app = TestApp::spawn().await;
    let u = app.admin().await;
    let a = app.incident(&u, "phish").await.str("id");
    app.post(&format!("/api/v1/incidents/{a}/iocs"), &u.token, json!({ "type": "ipv4", "value": "203.0.113.9" })).await.expect(201);
    let text = "Mail from billing[@]invoices-secure[.]com with a link to hxxps://invoices-secure[.]com/view?id=77; \
                beacons to 203[.]0[.]113[.]9 and 2001:db8::bad. Dropped C:\\Users\\Public\\upd.exe (md5 098F6BCD4621D373CADE4E832627B4F6), CVE-2021-44228.";
    let review = app.post(&format!("/api/v1/incidents/{a}/iocs/extract"), &u.token, json!({ "text": text })).await.expect(200);
    let items = review.body["items"].as_array().expect("items");
    let pairs: Vec<(String, String)> =
        items.iter().map(|i| (i["type"].as_str().expect("type").to_owned(), i["value"].as_str().expect("value").to_owned())).collect();
    for want in [
        ("email", "billing@invoices-secure.com"),
        ("url", "https://invoices-secure.com/view?id=77"),
        ("domain", "invoices-secure.com"),
        ("ipv4", "203.0.113.9"),
        ("ipv6", "2001:db8::bad"),
        ("file_path", "C:\\Users\\Public\\upd.exe"),
        ("md5", "098f6bcd4621d373cade4e832627b4f6"),
        ("cve", "CVE-2021-44228"),
    ] {
        assert!(pairs.iter().any(|(k, v)| k == want.0 && v == want.1), "missing {want:?} in {pairs:?}");
    }
    // Review only: nothing new is linked; the known address is marked.
    assert_eq!(review.body["saved"], false);
    let known = items.iter().find(|i| i["value"] == "203.0.113.9").expect("known");
    assert!(known["ioc_id"].is_string());
    assert!(items.iter().filter(|i| i["value"] != "203.0.113.9").all(|i| i["ioc_id"].is_null()));
    assert_eq!(app.get(&format!("/api/v1/incidents/{a}/iocs"), &u.token).await.body["items"].as_array().map(Vec::len), Some(1));

    let saved = app.post(&format!("/api/v1/incidents/{a}/iocs/extract"), &u.token, json!({ "text": text, "save": true })).await.expect(200);
    assert_eq!(saved.body["saved"], true);
    assert!(saved.body["items"].as_array().expect("items").iter().all(|i| i["ioc_id"].is_string()));
    let listed = app.get(&format!("/api/v1/incidents/{a}/iocs"), &u.token).await.expect(200);
    assert_eq!(listed.body["items"].as_array().map(Vec::len), Some(items.len()));
}

#[tokio::test]
async fn who_may_add_indicators() {
    let app = TestApp::spawn().await;
    let owner = app.admin().await;
    let viewer = app.member(&owner, "v@example.com", "viewer", None).await;
    let analyst = app.member(&owner, "a@example.com", "analyst", None).await;
    let theirs = app.incident(&owner, "owner's").await.str("id");
    let mine = app.incident(&analyst, "analyst's").await.str("id");
    let body = json!({ "type": "domain", "value": "evil.example" });
    app.post(&format!("/api/v1/incidents/{theirs}/iocs"), &viewer.token, body.clone()).await.problem(403, "forbidden");
    app.post(&format!("/api/v1/incidents/{theirs}/iocs"), &analyst.token, body.clone()).await.problem(403, "forbidden");
    app.post(&format!("/api/v1/incidents/{mine}/iocs"), &analyst.token, body.clone()).await.expect(201);
    // Everyone who reads incidents may look indicators up and review extractions.
    app.get("/api/v1/iocs?value=evil.example", &viewer.token).await.expect(200);
    app.post(&format!("/api/v1/incidents/{theirs}/iocs/extract"), &viewer.token, json!({ "text": "evil.example" })).await.expect(200);
    app.post(&format!("/api/v1/incidents/{theirs}/iocs/extract"), &viewer.token, json!({ "text": "evil.example", "save": true }))
        .await
        .problem(403, "forbidden");
}
