//! A TLP ceiling on an API key: incidents (and indicators) above it do not
//! exist for the key, in reads, lists, search, facets, similar incidents,
//! indicator lookup and evidence alike.

use serde_json::json;

use crate::helpers::*;

fn numbers(r: &Resp) -> Vec<String> {
    let mut v: Vec<String> = r.body["items"]
        .as_array()
        .expect("items")
        .iter()
        .map(|i| i.get("incident").unwrap_or(i)["number"].as_str().unwrap_or("").to_owned())
        .collect();
    v.sort();
    v
}

#[tokio::test]
async fn a_key_sees_nothing_above_its_tlp_ceiling() {
    let app = TestApp::spawn().await;
    let owner = app.admin().await;
    let mut ids = Vec::new();
    for (tlp, word) in [("clear", "alpha"), ("green", "bravo"), ("amber", "charlie"), ("red", "delta")] {
        let r = app
            .post(
                "/api/v1/incidents",
                &owner.token,
                json!({ "title": format!("beacon {word}"), "severity": "high", "category": "malware", "tlp": tlp }),
            )
            .await
            .expect(201);
        let id = r.str("id");
        let ioc = json!({ "type": "domain", "value": "evil-c2.example", "tlp": "green" });
        app.post(&format!("/api/v1/incidents/{id}/iocs"), &owner.token, ioc).await.expect(201);
        ids.push(id);
    }
    let red_evidence = app
        .upload(&owner.token, &ids[3], json!({ "name": "d.pcap", "kind": "network_capture" }), b"x".to_vec())
        .await
        .expect(201)
        .str("id");
    let green =
        app.post("/api/v1/api-keys", &owner.token, json!({ "name": "sharing", "role": "analyst", "tlp_max": "green" })).await.expect(201);
    assert_eq!(green.body["tlp_max"], "green");
    let green = green.str("key");
    let open = app.post("/api/v1/api-keys", &owner.token, json!({ "name": "siem", "role": "analyst" })).await.expect(201);
    assert!(open.body["tlp_max"].is_null());
    let open = open.str("key");

    assert_eq!(numbers(&app.get("/api/v1/incidents", &green).await.expect(200)), ["INC-1", "INC-2"]);
    assert_eq!(numbers(&app.get("/api/v1/incidents", &open).await.expect(200)), ["INC-1", "INC-2", "INC-3", "INC-4"]);
    app.get(&format!("/api/v1/incidents/{}", ids[1]), &green).await.expect(200);
    for id in &ids[2..] {
        for path in [
            format!("/api/v1/incidents/{id}"),
            format!("/api/v1/incidents/{id}/timeline"),
            format!("/api/v1/incidents/{id}/iocs"),
            format!("/api/v1/incidents/{id}/evidence"),
            format!("/api/v1/incidents/{id}/similar"),
        ] {
            app.get(&path, &green).await.problem(404, "not_found");
        }
        app.get("/api/v1/incidents/INC-4", &green).await.problem(404, "not_found");
    }
    app.get(&format!("/api/v1/evidence/{red_evidence}"), &green).await.problem(404, "not_found");
    let (status, _, _) = app.download(&green, &red_evidence).await;
    assert_eq!(status, 404);

    let s = app.get("/api/v1/search?q=beacon", &green).await.expect(200);
    assert_eq!((s.body["total"].as_i64(), numbers(&s)), (Some(2), vec!["INC-1".to_owned(), "INC-2".to_owned()]));
    assert_eq!(s.body["facets"]["severity"]["high"], 2, "facets count only what the key may see");
    assert_eq!(app.get("/api/v1/search?q=ioc:evil-c2.example", &green).await.body["total"], 2);
    assert_eq!(app.get("/api/v1/search?q=beacon", &open).await.body["total"], 4);

    let similar = app.get(&format!("/api/v1/incidents/{}/similar", ids[0]), &green).await.expect(200);
    assert_eq!(numbers(&similar), ["INC-2"]);
    assert_eq!(numbers(&app.get(&format!("/api/v1/incidents/{}/similar", ids[0]), &open).await.expect(200)), ["INC-2", "INC-3", "INC-4"]);

    let lookup = app.get("/api/v1/iocs?value=evil-c2.example", &green).await.expect(200);
    let seen: Vec<&str> =
        lookup.body["items"][0]["incidents"].as_array().expect("incidents").iter().filter_map(|i| i["number"].as_str()).collect();
    assert_eq!(seen, ["INC-1", "INC-2"]);

    // What the key files stays within its sight.
    let mine = app
        .post("/api/v1/incidents", &green, json!({ "title": "shared sighting", "severity": "low", "category": "other" }))
        .await
        .expect(201);
    assert_eq!(mine.body["tlp"], "green");
    app.post("/api/v1/incidents", &green, json!({ "title": "x", "severity": "low", "category": "other", "tlp": "red" }))
        .await
        .problem(422, "validation_failed");
    app.patch(&format!("/api/v1/incidents/{}", mine.str("id")), &green, json!({ "tlp": "amber" }), Some("\"1\""))
        .await
        .problem(422, "validation_failed");
    // A key a ceiling-limited key could create would not see more than it.
    let owner_list = app.get("/api/v1/api-keys", &owner.token).await.expect(200);
    assert!(owner_list.body.to_string().contains("\"tlp_max\":\"green\""));
}
