//! A contact's sequences on the contact page: enrolled from the dashboard, shown with their step
//! and next run, and stopped by hand.

use std::time::Duration;

use reqwest::StatusCode;
use serde_json::json;

use super::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_contact_is_enrolled_from_the_dashboard_sees_its_step_and_is_stopped_by_hand() {
    let Some(browser) = open_browser().await else {
        return;
    };
    let app = TestApp::spawn(Db::Sqlite).await;
    let number = app.connect_number().await;
    let customer = "4915112346901";
    app.customer_writes(&number, customer, "Hi, is the blue bike in stock?")
        .await;
    let (status, sequence) = app
        .post(
            "/api/v1/sequences",
            json!({
                "name": "Bike follow-up",
                "steps": [
                    {"delay_seconds": 0, "message": {"type": "text", "text": {"body": "Thanks for asking about our bikes!"}}},
                    {"delay_seconds": 3600, "message": {"type": "text", "text": {"body": "Still thinking about the blue bike?"}}}
                ]
            }),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{sequence}");
    let contact_id = app
        .state
        .store
        .contacts(&app.tenant_id, Some(customer), 1)
        .await
        .expect("contacts")
        .pop()
        .expect("the customer is a contact")
        .id;

    browser
        .sign_in(&app, &app.owner_email, OWNER_PASSWORD)
        .await;
    browser
        .goto(&app.url(&format!("/app/contacts/{contact_id}")))
        .await;
    browser
        .wait_for_text_in("#sequences", "Not in any sequence")
        .await;
    browser.click("#enroll-button").await;
    browser
        .wait_for_text_in("#sequences .enrollment", "Bike follow-up")
        .await;

    // The first step goes at once; the page shows the enrollment waiting for the second.
    eventually(Duration::from_secs(10), || async {
        app.emulator
            .sent_messages(Some(&number.phone_number_id))
            .iter()
            .any(|m| m.request["text"]["body"] == "Thanks for asking about our bikes!")
    })
    .await;
    let sequence_id = sequence["id"].as_str().expect("id");
    let (_, listed) = app
        .get(&format!("/api/v1/sequences/{sequence_id}/enrollments"))
        .await;
    let enrollment = &listed["data"][0];
    assert_eq!(enrollment["enrolled_by"], "dashboard", "{listed}");
    eventually(Duration::from_secs(10), || async {
        browser.client.refresh().await.expect("reload");
        browser
            .text_of("#sequences .enrollment .progress")
            .await
            .contains("step 2 of 2")
    })
    .await;
    browser.scroll_to("#sequences").await;
    browser.screenshots("sequence-enrolled").await;

    browser.click("[data-stop-enrollment]").await;
    browser
        .wait_for_text_in("#sequences .enrollment .state", "stopped: by hand")
        .await;
    let (_, stopped) = app
        .get(&format!(
            "/api/v1/sequences/{sequence_id}/enrollments/{}",
            enrollment["id"].as_str().expect("id")
        ))
        .await;
    assert_eq!(stopped["state"], "stopped");
    assert_eq!(stopped["stopped_reason"], "by_hand");
    browser.screenshots("sequence-stopped").await;
}
