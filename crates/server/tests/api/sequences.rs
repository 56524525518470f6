//! Sequences end to end: steps leave through the outbound path to the emulator on their
//! (shortened) delays, replies and opt-out words stop them, a first message enrolls, a closed
//! window waits or falls back to a template, and a restart between steps sends nothing twice.

use std::time::Duration;

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::helpers::*;

fn text_step(delay_seconds: i64, body: &str) -> Value {
    json!({"delay_seconds": delay_seconds, "message": {"type": "text", "text": {"body": body}}})
}

impl TestApp {
    async fn create_sequence(&self, body: Value) -> Value {
        let (status, created) = self.post("/api/v1/sequences", body).await;
        assert_eq!(status, StatusCode::CREATED, "{created}");
        created
    }

    async fn enroll(&self, sequence: &Value, to: &str) -> Value {
        let (status, enrolled) = self
            .post(
                &format!(
                    "/api/v1/sequences/{}/enrollments",
                    sequence["id"].as_str().unwrap()
                ),
                json!({"to": to}),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "{enrolled}");
        enrolled
    }

    async fn enrollment_of(&self, sequence: &Value, enrollment: &Value) -> Value {
        let (status, body) = self
            .get(&format!(
                "/api/v1/sequences/{}/enrollments/{}",
                sequence["id"].as_str().unwrap(),
                enrollment["id"].as_str().unwrap()
            ))
            .await;
        assert_eq!(status, StatusCode::OK, "{body}");
        body
    }

    /// Waits until the enrollment is in `state` and answers it.
    async fn enrollment_becomes(&self, sequence: &Value, enrollment: &Value, state: &str) -> Value {
        eventually(Duration::from_secs(15), || async {
            self.enrollment_of(sequence, enrollment).await["state"] == state
        })
        .await;
        self.enrollment_of(sequence, enrollment).await
    }

    /// The enrollments of a sequence, newest first.
    async fn enrollments(&self, sequence: &Value) -> Vec<Value> {
        let (status, body) = self
            .get(&format!(
                "/api/v1/sequences/{}/enrollments",
                sequence["id"].as_str().unwrap()
            ))
            .await;
        assert_eq!(status, StatusCode::OK, "{body}");
        body["data"].as_array().cloned().unwrap_or_default()
    }

    /// The messages the number sent to `customer` (text bodies, or `template:<name>`), in order.
    fn sent_to(&self, number: &ConnectedNumber, customer: &str) -> Vec<String> {
        self.emulator
            .sent_messages(Some(&number.phone_number_id))
            .into_iter()
            .filter(|m| m.wa_id == customer)
            .map(|m| match m.message_type.as_str() {
                "text" => m.request["text"]["body"]
                    .as_str()
                    .unwrap_or_default()
                    .to_owned(),
                "template" => format!(
                    "template:{}",
                    m.request["template"]["name"].as_str().unwrap_or_default()
                ),
                other => other.to_owned(),
            })
            .collect()
    }

    async fn wait_sent(
        &self,
        number: &ConnectedNumber,
        customer: &str,
        count: usize,
    ) -> Vec<String> {
        eventually(Duration::from_secs(15), || async {
            self.sent_to(number, customer).len() >= count
        })
        .await;
        self.sent_to(number, customer)
    }
}

fn events(enrollment: &Value) -> Vec<String> {
    enrollment["history"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["event"].as_str().unwrap().to_owned())
        .collect()
}

on_both_databases! {
    async fn a_three_step_sequence_survives_a_restart_between_steps_and_stops_when_the_customer_replies(app) {
        let mut app = app;
        let number = app.connect_number().await;
        let customer = "4915112346001";
        app.customer_writes(&number, customer, "Hi, do you deliver?").await;
        let sequence = app.create_sequence(json!({
            "name": "After first contact",
            "steps": [text_step(0, "Thanks for writing!"), text_step(3, "Here is our catalogue."), text_step(3, "Shall we book a delivery?")],
        })).await;
        assert_eq!(sequence["stop_on_reply"], true);
        assert_eq!(sequence["steps"][1]["outside_window"], "wait");

        let enrolled = app.enroll(&sequence, customer).await;
        assert_eq!(enrolled["state"], "active");
        assert_eq!(enrolled["step"], 1);
        assert_eq!(enrolled["steps_total"], 3);
        assert_eq!(enrolled["enrolled_by"], "api");
        assert!(enrolled["next_run_at"].is_string(), "{enrolled}");
        // The same contact again is refused while the first enrollment runs.
        let (status, again) = app
            .post(&format!("/api/v1/sequences/{}/enrollments", sequence["id"].as_str().unwrap()), json!({"to": format!("+{customer}")}))
            .await;
        assert_eq!(status, StatusCode::CONFLICT, "{again}");
        assert_eq!(again["error"]["code"], "already_enrolled");

        assert_eq!(app.wait_sent(&number, customer, 1).await, vec!["Thanks for writing!"]);
        eventually(Duration::from_secs(5), || async {
            app.enrollment_of(&sequence, &enrolled).await["step"] == 2
        }).await;
        // Down and up again while step two waits for its time: the schedule is in the database.
        app.restart().await;
        let sent = app.wait_sent(&number, customer, 2).await;
        assert_eq!(sent, vec!["Thanks for writing!", "Here is our catalogue."]);
        let messages = app.messages("").await;
        let ours: Vec<&Value> = messages.iter().filter(|m| m["direction"] == "outbound").collect();
        assert_eq!(ours.len(), 2, "one message per step: {ours:?}");
        assert!(ours.iter().all(|m| m["sent_by"] == "automation"), "{ours:?}");

        // The customer answers before step three: the sequence stops and step three never goes.
        app.customer_writes(&number, customer, "Yes please, tomorrow").await;
        let stopped = app.enrollment_becomes(&sequence, &enrolled, "stopped").await;
        assert_eq!(stopped["stopped_reason"], "replied");
        assert_eq!(stopped["step"], Value::Null);
        assert_eq!(stopped["next_run_at"], Value::Null);
        assert_eq!(events(&stopped), vec!["enrolled", "sent", "sent", "stopped"]);
        assert_eq!(stopped["history"][1]["step"], 1);
        assert_eq!(stopped["history"][2]["step"], 2);
        assert!(stopped["history"][2]["message_id"].is_string());
        tokio::time::sleep(Duration::from_secs(5)).await;
        assert_eq!(app.sent_to(&number, customer).len(), 2, "{:?}", app.sent_to(&number, customer));
        let (_, shown) = app.get(&format!("/api/v1/sequences/{}", sequence["id"].as_str().unwrap())).await;
        assert_eq!(shown["enrollments"]["stopped"], 1, "{shown}");
    }

    async fn a_step_run_again_after_a_crash_finds_its_message_instead_of_sending_it_twice(app) {
        let number = app.connect_number().await;
        let customer = "4915112346051";
        app.customer_writes(&number, customer, "Hi").await;
        let sequence = app.create_sequence(json!({
            "name": "Crash",
            "steps": [text_step(0, "Only once, please."), text_step(2, "And then this.")],
        })).await;
        let enrolled = app.enroll(&sequence, customer).await;
        app.wait_sent(&number, customer, 1).await;
        eventually(Duration::from_secs(5), || async {
            app.enrollment_of(&sequence, &enrolled).await["step"] == 2
        }).await;

        // As if the worker died after queueing step one's message but before recording it: the
        // enrollment is back at step one and its job runs again.
        let store = &app.state.store;
        let id = enrolled["id"].as_str().unwrap();
        let mut tx = store.begin().await.unwrap();
        sqlx::query("UPDATE sequence_enrollments SET step = 0, state = 'active' WHERE id = $1")
            .bind(id)
            .execute(&mut *tx)
            .await
            .unwrap();
        let row = store.enrollment_by_id(id).await.unwrap().unwrap();
        wagate::automation::scheduler::enqueue_step(store, &mut tx, &row, 0, wagate::clock::now_ms(), Some("crash"), wagate::clock::now_ms())
            .await
            .unwrap();
        tx.commit().await.unwrap();
        app.state.jobs_wakeup.notify_one();

        let done = app.enrollment_becomes(&sequence, &enrolled, "completed").await;
        // "completed" means step two's message is queued; the sender takes it to Meta right after.
        // A second copy of step one would have been queued before it, so it would be there by now.
        app.wait_sent(&number, customer, 2).await;
        tokio::time::sleep(Duration::from_secs(1)).await;
        assert_eq!(app.sent_to(&number, customer), vec!["Only once, please.", "And then this."]);
        let sent: Vec<&Value> = done["history"].as_array().unwrap().iter().filter(|e| e["event"] == "sent").collect();
        assert_eq!(sent.len(), 3, "{done}");
        assert_eq!(sent[0]["message_id"], sent[1]["message_id"], "the second run found the first run's message: {done}");
    }

    async fn a_first_message_enrolls_and_a_sequence_that_ignores_replies_runs_to_the_end(app) {
        let number = app.connect_number().await;
        let sequence = app.create_sequence(json!({
            "name": "Welcome",
            "enroll_on_first_message": true,
            "stop_on_reply": false,
            "steps": [text_step(0, "Welcome to Acme!"), text_step(1, "Our opening hours are 9 to 6.")],
        })).await;
        let customer = "4915112346101";
        app.customer_writes(&number, customer, "Hello").await;
        let sent = app.wait_sent(&number, customer, 2).await;
        assert_eq!(sent, vec!["Welcome to Acme!", "Our opening hours are 9 to 6."]);
        let all = app.enrollments(&sequence).await;
        assert_eq!(all.len(), 1, "{all:?}");
        assert_eq!(all[0]["enrolled_by"], "first_message");
        let done = app.enrollment_becomes(&sequence, &all[0], "completed").await;
        assert_eq!(events(&done), vec!["enrolled", "sent", "sent", "completed"]);

        // A second message is not a first message: no second enrollment, nothing more sent.
        app.customer_writes(&number, customer, "Thanks!").await;
        tokio::time::sleep(Duration::from_secs(2)).await;
        assert_eq!(app.enrollments(&sequence).await.len(), 1);
        assert_eq!(app.sent_to(&number, customer).len(), 2);
    }

    async fn an_opt_out_word_stops_every_sequence_and_the_contact_is_not_enrolled_again(app) {
        let number = app.connect_number().await;
        let slow = |name: &str| json!({
            "name": name,
            "stop_on_reply": false,
            "steps": [text_step(0, &format!("{name}: first")), text_step(3600, &format!("{name}: later"))],
        });
        let news = app.create_sequence(slow("News")).await;
        let tips = app.create_sequence(slow("Tips")).await;
        let customer = "4915112346201";
        app.customer_writes(&number, customer, "Hola").await;
        let in_news = app.enroll(&news, customer).await;
        let in_tips = app.enroll(&tips, customer).await;
        app.wait_sent(&number, customer, 2).await;

        // Not an opt-out: a sentence that merely contains the word.
        app.customer_writes(&number, customer, "can you stop by tomorrow?").await;
        tokio::time::sleep(Duration::from_millis(500)).await;
        assert_eq!(app.enrollment_of(&news, &in_news).await["state"], "active");

        app.customer_writes(&number, customer, "PARAR").await;
        for (sequence, enrollment) in [(&news, &in_news), (&tips, &in_tips)] {
            let stopped = app.enrollment_becomes(sequence, enrollment, "stopped").await;
            assert_eq!(stopped["stopped_reason"], "opted_out");
        }
        let (status, refused) = app
            .post(&format!("/api/v1/sequences/{}/enrollments", news["id"].as_str().unwrap()), json!({"to": customer}))
            .await;
        assert_eq!(status, StatusCode::CONFLICT, "{refused}");
        assert_eq!(refused["error"]["code"], "contact_opted_out");
    }

    async fn a_closed_window_waits_for_the_customer_or_sends_the_fallback_template(app) {
        let number = app.connect_number().await;
        app.wait_templates_synced(&number).await;
        let waits = app.create_sequence(json!({
            "name": "Waits",
            "stop_on_reply": false,
            "steps": [text_step(0, "We saved your cart.")],
        })).await;
        let falls_back = app.create_sequence(json!({
            "name": "Falls back",
            "steps": [{
                "delay_seconds": 0,
                "message": {"type": "text", "text": {"body": "Your cart is waiting."}},
                "fallback_template": {"name": "hello_world", "language": {"code": "en_US"}}
            }],
        })).await;
        assert_eq!(falls_back["steps"][0]["outside_window"], "fallback_template");

        // Neither customer ever wrote: the window is closed.
        let patient = "4915112346301";
        let enrolled = app.enroll(&waits, patient).await;
        let waiting = app.enrollment_becomes(&waits, &enrolled, "waiting").await;
        assert_eq!(waiting["next_run_at"], Value::Null);
        assert!(app.sent_to(&number, patient).is_empty());
        app.customer_writes(&number, patient, "hi").await;
        assert_eq!(app.wait_sent(&number, patient, 1).await, vec!["We saved your cart."]);
        let done = app.enrollment_becomes(&waits, &enrolled, "completed").await;
        assert_eq!(events(&done), vec!["enrolled", "waiting_for_window", "resumed", "sent", "completed"]);

        let other = "4915112346302";
        let enrolled = app.enroll(&falls_back, other).await;
        assert_eq!(app.wait_sent(&number, other, 1).await, vec!["template:hello_world"]);
        let done = app.enrollment_becomes(&falls_back, &enrolled, "completed").await;
        assert!(done["history"][1]["detail"].as_str().unwrap().contains("fallback"), "{done}");
    }

    async fn sequences_are_checked_field_by_field_and_kept_to_their_tenant(app) {
        let number = app.connect_number().await;
        let (status, refused) = app.post("/api/v1/sequences", json!({
            "name": "Broken",
            "steps": [
                {"delay_seconds": -5, "message": {"type": "text", "text": {"body": ""}}},
                {"delay_seconds": 10, "message": {"type": "text", "text": {"body": "ok"}}, "outside_window": "fallback_template"}
            ]
        })).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{refused}");
        let fields = &refused["error"]["details"]["fields"];
        assert!(fields["steps[0].delay_seconds"].is_string(), "{refused}");
        assert!(fields["steps[0].message.text.body"].is_string(), "{refused}");
        assert!(fields["steps[1].fallback_template"].is_string(), "{refused}");

        let sequence = app.create_sequence(json!({"name": "Mine", "steps": [text_step(60, "hello")]})).await;
        assert_eq!(sequence["connection_id"], number.id());
        let id = sequence["id"].as_str().unwrap();
        let (status, changed) = app.patch(&format!("/api/v1/sequences/{id}"), json!({"name": "Renamed", "stop_on_reply": false})).await;
        assert_eq!(status, StatusCode::OK, "{changed}");
        assert_eq!(changed["name"], "Renamed");
        assert_eq!(changed["stop_on_reply"], false);
        assert_eq!(changed["steps"], sequence["steps"]);

        let (_, other_key) = app.other_tenant().await;
        for (method, path, body) in [
            (reqwest::Method::GET, format!("/api/v1/sequences/{id}"), None),
            (reqwest::Method::PATCH, format!("/api/v1/sequences/{id}"), Some(json!({"name": "x"}))),
            (reqwest::Method::DELETE, format!("/api/v1/sequences/{id}"), None),
            (reqwest::Method::POST, format!("/api/v1/sequences/{id}/enrollments"), Some(json!({"to": "4915112346401"}))),
        ] {
            let (status, body) = app.send_as(&other_key, method.clone(), &path, body).await;
            assert_eq!(status, StatusCode::NOT_FOUND, "{method} {path}: {body}");
        }
        let (_, theirs) = app.get_as(&other_key, "/api/v1/sequences").await;
        assert_eq!(theirs["data"], json!([]));

        let enrolled = app.enroll(&sequence, "4915112346402").await;
        let (status, _) = app.delete(&format!("/api/v1/sequences/{id}")).await;
        assert_eq!(status, StatusCode::NO_CONTENT);
        let (status, _) = app.get(&format!("/api/v1/sequences/{id}")).await;
        assert_eq!(status, StatusCode::NOT_FOUND);
        let stopped = app
            .state
            .store
            .enrollment_by_id(enrolled["id"].as_str().unwrap())
            .await
            .unwrap()
            .unwrap();
        assert_eq!(stopped.state, "stopped");
        assert_eq!(stopped.stopped_reason.as_deref(), Some("sequence_deleted"));
    }
}
