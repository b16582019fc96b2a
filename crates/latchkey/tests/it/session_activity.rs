//! Session activity (docs/frontend-api.md, "Session activity"): each session names the browser,
//! device and address its own client last showed, and the city and country when a GeoIP
//! database is configured; in the Frontend API's list of the user's sessions, the Backend API's
//! session and the hosted `/user` page.

use axum::http::StatusCode;
use serde_json::Value;

use crate::harness::{Browser, Reply, TestServer};
use crate::webhooks::Admin;

const PASSWORD: &str = "correct horse battery staple";
const IPHONE: &str = "Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) AppleWebKit/605.1.15 \
                      (KHTML, like Gecko) Version/17.4 Mobile/15E148 Safari/604.1";
const DESKTOP: &str = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) \
                       Chrome/131.0.0.0 Safari/537.36";

async fn token_as(b: &Browser, session_id: &str, user_agent: &str) -> Reply {
    let url = b.url(&format!("/v1/client/sessions/{session_id}/tokens"));
    let req =
        b.http.post(url).header("user-agent", user_agent).header("content-type", "application/x-www-form-urlencoded");
    b.send(req.body("")).await
}

fn activity_of<'a>(listed: &'a Value, session_id: &str) -> &'a Value {
    let sessions = listed.as_array().expect("a bare array");
    &sessions.iter().find(|s| s["id"] == session_id).expect("the session is listed")["latest_activity"]
}

crate::both_backends!(each_session_names_its_device_and_place, |backend| async move {
    let db = tempfile::NamedTempFile::new().unwrap();
    let bytes = latchkey_service::identity::geoip::testing::tiny_city_database(127, "Springfield", "US");
    std::fs::write(db.path(), bytes).unwrap();
    let path = db.path().to_path_buf();
    let server = TestServer::start_with(backend, move |c| c.geoip_database = Some(path)).await;
    let laptop = server.browser();
    let (_, laptop_sid) = server.sign_up(&laptop, "ada@example.com", PASSWORD).await;
    let phone = server.browser();
    let r = server.sign_in(&phone, "ada@example.com", PASSWORD).await;
    let phone_sid = r.body["response"]["created_session_id"].as_str().unwrap().to_owned();
    assert_eq!(token_as(&phone, &phone_sid, IPHONE).await.status, StatusCode::OK);
    assert_eq!(token_as(&laptop, &laptop_sid, DESKTOP).await.status, StatusCode::OK);

    let listed = laptop.get("/v1/me/sessions/active").await.body;
    let on_phone = activity_of(&listed, &phone_sid);
    assert_eq!(on_phone["object"], "session_activity");
    assert_eq!(on_phone["id"], phone_sid.as_str());
    assert_eq!(
        (&on_phone["browser_name"], &on_phone["browser_version"], &on_phone["device_type"], &on_phone["is_mobile"]),
        (&"Safari".into(), &"17.4".into(), &"iPhone".into(), &true.into()),
        "{on_phone}"
    );
    assert_eq!(
        (&on_phone["ip_address"], &on_phone["city"], &on_phone["country"]),
        (&"127.0.0.1".into(), &"Springfield".into(), &"US".into())
    );
    let on_laptop = activity_of(&listed, &laptop_sid);
    assert_eq!(
        (&on_laptop["browser_name"], &on_laptop["device_type"], &on_laptop["is_mobile"]),
        (&"Chrome".into(), &"Windows 10".into(), &false.into()),
        "{on_laptop}"
    );

    // The phone's device is its own: the laptop's requests never overwrite it.
    let again = laptop.get("/v1/me/sessions/active").await.body;
    assert_eq!(activity_of(&again, &phone_sid)["device_type"], "iPhone");

    let admin = Admin::new(&server).await;
    let session = admin.get(&format!("/v1/sessions/{phone_sid}")).await.body;
    assert_eq!(session["latest_activity"]["browser_name"], "Safari", "{session}");
    assert_eq!(session["latest_activity"]["city"], "Springfield");

    let page = laptop.get("/user").await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(page.text.contains("Safari 17.4 on iPhone"), "{}", page.text);
    assert!(page.text.contains("127.0.0.1 (Springfield, US)"));
});

crate::both_backends!(without_a_geoip_database_no_place_is_named, |backend| async move {
    let server = TestServer::start(backend).await;
    let b = server.browser();
    let (_, sid) = server.sign_up(&b, "bob@example.com", PASSWORD).await;
    assert_eq!(token_as(&b, &sid, IPHONE).await.status, StatusCode::OK);
    let listed = b.get("/v1/me/sessions/active").await.body;
    let activity = activity_of(&listed, &sid);
    assert_eq!(activity["ip_address"], "127.0.0.1");
    assert!(activity.get("city").is_none() && activity.get("country").is_none(), "{activity}");
    assert_eq!(activity["is_mobile"], true);
});

#[tokio::test]
async fn an_unreadable_geoip_database_stops_the_start() {
    let dir = tempfile::tempdir().unwrap();
    let config =
        latchkey::config::Config { geoip_database: Some(dir.path().join("missing.mmdb")), ..Default::default() };
    let err = config.geoip().expect_err("refused");
    assert!(err.to_string().contains("missing.mmdb"), "{err}");
}
