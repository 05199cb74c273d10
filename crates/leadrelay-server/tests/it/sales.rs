//! The sales workspace as a team lives it: leads of one buyer become one opportunity that
//! advances its stage, round-robin gives it an owner who is told by e-mail, the SLA clock
//! breaches under the manual clock and tells the owner and the publisher once, follow-ups are
//! logged, the checklist ticked, the opportunity qualified and won, and the KPIs follow.

use std::time::Duration;

use serde_json::{Value, json};

use crate::crm::{decoded, email_settings};
use crate::support::TestApp;

async fn user(app: &TestApp, publisher: &str, email: &str, role: &str) -> String {
    let a = app
        .post(
            &format!("/v1/publishers/{publisher}/users"),
            json!({"email": email, "name": "Team Member", "role": role, "password": "correct horse battery"}),
        )
        .await;
    assert_eq!(a.status, 201, "{}", a.body);
    a.body["id"].as_str().unwrap().to_owned()
}

fn lead(action: &str, email: &str) -> Value {
    json!({"publisher": "contoso", "offer": "contoso.crm", "source": "AzureMarketplace", "action": action,
           "customer": {"first_name": "Ada", "last_name": "Quillfeather", "email": email, "company": "Quillworks"}})
}

async fn opportunities(app: &TestApp, query: &str) -> Vec<Value> {
    let a = app.get(&format!("/v1/publishers/contoso/opportunities{query}")).await;
    assert_eq!(a.status, 200, "{}", a.body);
    a.body["items"].as_array().unwrap().clone()
}

fn mails(smtp: &leadrelay_testkit::smtp::SmtpServer) -> Vec<String> {
    smtp.messages().iter().map(|m| decoded(m)).collect()
}

#[tokio::test]
async fn a_buyers_leads_become_one_opportunity_that_the_team_follows_up_to_won() {
    let (app, clock) = TestApp::spawn_stepped().await;
    app.contoso().await;
    let smtp = leadrelay_testkit::smtp::SmtpServer::start(false);
    let mut settings = email_settings(&smtp, "none");
    settings["to"] = json!("sales-lead@contoso.com");
    let d = app
        .post("/v1/publishers/contoso/destinations", json!({"name": "mail", "kind": "email", "settings": settings}))
        .await;
    assert_eq!(d.status, 201, "{}", d.body);
    let ana = user(&app, "contoso", "ana@contoso.com", "member").await;
    let bruno = user(&app, "contoso", "bruno@contoso.com", "member").await;
    let viewer = user(&app, "contoso", "vera@contoso.com", "viewer").await;

    let put =
        app.put("/v1/publishers/contoso/settings/sales", json!({"team": [ana, viewer], "round_robin": true})).await;
    assert_eq!((put.status, put.body["error"]["fields"][0]["path"].as_str()), (422, Some("team[1]")), "{}", put.body);
    let put = app
        .put(
            "/v1/publishers/contoso/settings/sales",
            json!({"team": [ana, bruno], "round_robin": true, "first_touch_sla_hours": 24}),
        )
        .await;
    assert_eq!(put.status, 200, "{}", put.body);
    assert_eq!(put.body["checklist"], json!(["budget", "authority", "need", "timeline"]));
    assert_eq!(put.body["follow_up_target"], json!({"min": 5, "max": 12}));

    // Contact me, then a free trial, then the install: one buyer, one offer, one opportunity.
    let opened_at = leadrelay_core::Clock::now(clock.as_ref());
    for action in ["PLT", "FreeTrial", "INS"] {
        assert_eq!(app.post("/v1/leads", lead(action, "ada@quillworks.com")).await.status, 202);
        clock.advance(Duration::from_secs(60));
    }
    // Test leads and do-not-contact leads open no work.
    let mut test = lead("INS", "someone@example.com");
    test["customer"]["first_name"] = json!("MSFT_TEST_ABC");
    assert_eq!(app.post("/v1/leads", test).await.status, 202);
    assert_eq!(app.post("/v1/leads", lead("DNC", "nobody@fabrikam.com")).await.status, 202);

    let all = opportunities(&app, "").await;
    assert_eq!(all.len(), 1, "{all:#?}");
    let opp = &all[0];
    let id = opp["id"].as_str().unwrap().to_owned();
    assert_eq!(opp["stage"], "active");
    assert_eq!(opp["status"], "new");
    assert_eq!(opp["lead_ids"].as_array().unwrap().len(), 3);
    assert_eq!(opp["owner"], json!(ana), "round-robin starts with the first of the team");
    assert_eq!(opp["offer"], "contoso.crm");
    assert_eq!(opp["follow_ups"], json!({"count": 0, "target_min": 5, "target_max": 12}));
    let due = leadrelay_core::Timestamp::parse_rfc3339(opp["first_touch_due_at"].as_str().unwrap()).unwrap();
    assert_eq!(due.as_millis() - opened_at.as_millis(), 24 * 3_600_000);

    // A second buyer's lead goes to the next person; that one is touched at once.
    assert_eq!(app.post("/v1/leads", lead("PLT", "grace@hopperlabs.com")).await.status, 202);
    let second = opportunities(&app, &format!("?owner={bruno}")).await;
    assert_eq!(second.len(), 1);
    let second_id = second[0]["id"].as_str().unwrap().to_owned();

    // Each owner is told once, and only the owner (no lead data: the destination did not opt in).
    assert_eq!(app.ops.send_sales_notices().await.unwrap(), 2);
    let sent = mails(&smtp);
    assert_eq!(sent.len(), 2, "{sent:#?}");
    assert!(sent.iter().any(|m| m.contains("To: ana@contoso.com") && m.contains(&id)), "{sent:#?}");
    assert!(sent.iter().any(|m| m.contains("To: bruno@contoso.com") && m.contains(&second_id)));
    assert!(
        sent.iter().all(|m| !m.contains("sales-lead@contoso.com") && !m.contains("Quillworks") && !m.contains("ada@"))
    );
    assert_eq!(app.ops.send_sales_notices().await.unwrap(), 0, "told once");

    let call = app
        .post(&format!("/v1/opportunities/{second_id}/activities"), json!({"kind": "call", "outcome": "intro call"}))
        .await;
    assert_eq!(call.status, 201, "{}", call.body);
    assert_eq!(call.body["status"], "contacted");

    // A day and an hour later the first one was never touched: the SLA is breached, once.
    clock.advance(Duration::from_secs(25 * 3600));
    assert_eq!(opportunities(&app, "?due=sla_breached").await.len(), 1);
    assert_eq!(app.ops.send_sales_notices().await.unwrap(), 1);
    assert_eq!(app.ops.send_sales_notices().await.unwrap(), 0);
    let sent = mails(&smtp);
    assert_eq!(sent.len(), 3, "one breach mail, to the owner and the publisher's recipients");
    let breach = sent.iter().find(|m| m.contains("First touch overdue")).unwrap();
    assert!(breach.contains("ana@contoso.com") && breach.contains("sales-lead@contoso.com") && breach.contains(&id));
    let now = app.get(&format!("/v1/opportunities/{id}")).await.body;
    assert_eq!(now["sla_breached"], true);

    // Follow-ups: a call, an e-mail, a note (not a touch) and a meeting.
    for (kind, outcome) in [
        ("call", "left a voicemail"),
        ("email", "sent the pricing"),
        ("note", "budget in Q3"),
        ("meeting", "demo done"),
    ] {
        let a =
            app.post(&format!("/v1/opportunities/{id}/activities"), json!({"kind": kind, "outcome": outcome})).await;
        assert_eq!(a.status, 201, "{}", a.body);
    }
    let a = app.post(&format!("/v1/opportunities/{id}/activities"), json!({"kind": "fax"})).await;
    assert_eq!((a.status, a.body["error"]["fields"][0]["path"].as_str()), (422, Some("kind")));
    let now = app.get(&format!("/v1/opportunities/{id}")).await.body;
    assert_eq!(now["status"], "contacted");
    assert_eq!(now["follow_ups"]["count"], 3);
    assert_eq!(now["activities"].as_array().unwrap().len(), 4);
    assert_eq!(now["activities"][0]["by"], "admin");
    assert!(now["first_touched_at"].is_string());

    // The checklist, by item.
    for item in ["budget", "authority", "need", "timeline"] {
        let a = app.post(&format!("/v1/opportunities/{id}/checklist/{item}"), json!({})).await;
        assert_eq!(a.status, 200, "{}", a.body);
    }
    assert_eq!(app.post(&format!("/v1/opportunities/{id}/checklist/vibes"), json!({})).await.status, 404);
    let ticked = app.get(&format!("/v1/opportunities/{id}")).await.body;
    assert!(ticked["checklist"].as_array().unwrap().iter().all(|c| c["done"] == true && c["by"] == "admin"));

    // Won needs qualified first (or a reason); lost needs a reason.
    let opp_path = format!("/v1/opportunities/{id}");
    let patch = |body: Value| app.patch(&opp_path, body);
    let a = patch(json!({"status": "won"})).await;
    assert_eq!((a.status, a.body["error"]["fields"][0]["path"].as_str()), (422, Some("reason")), "{}", a.body);
    assert_eq!(patch(json!({"status": "qualified"})).await.status, 200);
    let won = patch(json!({"status": "won", "reason": "signed the annual plan"})).await;
    assert_eq!(won.status, 200, "{}", won.body);
    assert_eq!(
        (won.body["status"].as_str(), won.body["reason"].as_str()),
        (Some("won"), Some("signed the annual plan"))
    );
    let a = app.patch(&format!("/v1/opportunities/{second_id}"), json!({"status": "lost"})).await;
    assert_eq!(a.status, 422);

    // The KPIs follow.
    let k = app.get("/v1/publishers/contoso/kpis?group_by=source").await;
    assert_eq!(k.status, 200, "{}", k.body);
    let k = k.body;
    assert_eq!(k["funnel"], json!({"new": 0, "contacted": 1, "qualified": 0, "won": 1, "lost": 0, "disqualified": 0}));
    assert_eq!(k["opportunities"], 2, "the test and DNC leads are not counted");
    assert_eq!(k["contact_rate"], 1.0);
    assert_eq!(k["sla_breach_rate"], 0.5);
    assert_eq!(k["qualification_rate"], 0.5);
    assert_eq!(k["win_rate"], 1.0);
    assert_eq!(k["follow_ups_per_won"], 3.0);
    assert!(k["time_to_first_touch_hours"]["p90"].as_f64().unwrap() > 24.0);
    assert_eq!(k["by"]["AzureMarketplace"]["opportunities"], 2);
    assert_eq!(k["destinations"][0]["id"], d.body["id"]);
    let bucket = |from: u32, to: Option<u32>, n: u64| json!({"from_hours": from, "to_hours": to, "opportunities": n});
    assert_eq!(
        k["first_touch_histogram"],
        json!([
            bucket(0, Some(1), 1),
            bucket(1, Some(4), 0),
            bucket(4, Some(8), 0),
            bucket(8, Some(24), 0),
            bucket(24, Some(72), 1),
            bucket(72, None, 0)
        ]),
        "the second buyer was touched at once, the first after a day"
    );
    let day = |action: &str, leads: u64| json!({"day": "2027-01-15", "source": "AzureMarketplace", "action": action, "leads": leads});
    assert_eq!(
        k["leads_per_day"],
        json!([day("DNC", 1), day("FreeTrial", 1), day("INS", 1), day("PLT", 2)]),
        "every real lead of the day by action, the test lead left out"
    );
    let plt = app.get("/v1/publishers/contoso/kpis?action=plt").await.body;
    assert_eq!(plt["leads_per_day"], json!([day("PLT", 2)]));
    let csv = app
        .client
        .get(format!("{}/v1/publishers/contoso/kpis?format=csv", app.base))
        .bearer_auth(crate::support::ADMIN)
        .send()
        .await
        .unwrap();
    assert_eq!(csv.headers()["content-type"], "text/csv; charset=utf-8");
    let csv = csv.text().await.unwrap();
    assert!(
        csv.starts_with("scope,key,opportunities,new,contacted,qualified,won,lost,disqualified,contact_rate"),
        "{csv}"
    );
    assert!(csv.lines().nth(1).unwrap().starts_with("all,,2,0,1,0,1,0,0,1.0000"), "{csv}");

    let doc = app.get("/openapi.json").await.body;
    let kpis = &doc["paths"]["/v1/publishers/{publisher}/kpis"]["get"]["responses"]["200"]["content"];
    assert!(kpis["application/json"].is_object() && kpis["text/csv"].is_object(), "both forms documented: {kpis}");
    let schemas = &doc["components"]["schemas"];
    let report = schemas["KpisOut"]["allOf"].as_array().unwrap().iter().find(|p| p["properties"].is_object()).unwrap();
    let required = report["required"].as_array().unwrap();
    for field in ["first_touch_histogram", "leads_per_day"] {
        assert!(report["properties"][field].is_object() && required.contains(&json!(field)), "{field}: {report}");
    }
    assert!(
        schemas["FirstTouchBucketOut"]["properties"]["to_hours"].is_object() && schemas["DailyLeadsOut"].is_object()
    );

    // Everything was recorded in the audit log.
    let audit = app.get("/v1/audit?publisher=contoso&limit=1000").await.body.to_string();
    for action in
        ["opportunity.update", "opportunity.activity", "opportunity.checklist", "sales_settings.update", "kpis.read"]
    {
        assert!(audit.contains(action), "{action} missing from the audit log");
    }
}

#[tokio::test]
async fn round_robin_skips_an_owner_at_the_cap_and_a_lost_opportunity_reopens_as_a_new_one() {
    let (app, clock) = TestApp::spawn_stepped().await;
    app.contoso().await;
    let ana = user(&app, "contoso", "ana@contoso.com", "member").await;
    let bruno = user(&app, "contoso", "bruno@contoso.com", "admin").await;
    let put = app
        .put(
            "/v1/publishers/contoso/settings/sales",
            json!({"team": [ana, bruno], "round_robin": true, "max_open_per_owner": 1}),
        )
        .await;
    assert_eq!(put.status, 200, "{}", put.body);
    for buyer in ["a@one.com", "b@two.com", "c@three.com"] {
        assert_eq!(app.post("/v1/leads", lead("PLT", buyer)).await.status, 202);
        clock.advance(Duration::from_secs(1)); // ids order by time: the list shows them in turn
    }
    let all = opportunities(&app, "").await;
    let owners: Vec<&Value> = all.iter().rev().map(|o| &o["owner"]).collect();
    assert_eq!(owners, [&json!(ana), &json!(bruno), &Value::Null], "both are at the cap for the third");
    assert_eq!(opportunities(&app, "?owner=none").await.len(), 1);

    // Lost, then the buyer comes back: a new opportunity, not the lost one reopened.
    let first = all.last().unwrap()["id"].as_str().unwrap().to_owned();
    let lost =
        app.patch(&format!("/v1/opportunities/{first}"), json!({"status": "lost", "reason": "chose a rival"})).await;
    assert_eq!(lost.status, 200, "{}", lost.body);
    clock.advance(Duration::from_secs(1));
    assert_eq!(app.post("/v1/leads", lead("FreeTrial", "a@one.com")).await.status, 202);
    let all = opportunities(&app, "").await;
    assert_eq!(all.len(), 4);
    assert_eq!(all[0]["owner"], json!(ana), "ana's lost one freed her slot");
    assert_eq!(all[0]["stage"], "trial");

    // Owners must be admins or members of this publisher.
    let a = app
        .patch(&format!("/v1/opportunities/{first}"), json!({"owner": "usr_0123456789abcdef0123456789abcdef"}))
        .await;
    assert_eq!((a.status, a.body["error"]["fields"][0]["path"].as_str()), (422, Some("owner")));
}
