//! The assistant end to end: the emulator's customers write, a fake OpenAI-compatible provider
//! (real HTTP) answers, and the answers leave through the outbound path to the emulator.

use std::time::Duration;

use emulator::{FakeModel, ModelBehaviour};
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::helpers::*;

const MODEL_KEY: &str = "sk-test-model-key-5d1c";

impl TestApp {
    async fn configure_assistant(&self, number: &ConnectedNumber, settings: Value) -> Value {
        let (status, body) = self
            .put(
                &format!("/api/v1/connections/{}/assistant", number.id()),
                settings,
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{body}");
        body
    }

    async fn put(&self, path: &str, body: Value) -> (StatusCode, Value) {
        json_of(
            self.client
                .put(self.url(path))
                .bearer_auth(&self.api_key)
                .json(&body)
                .send()
                .await
                .expect("PUT"),
        )
        .await
    }

    /// The text bodies the number sent to `customer`, oldest first.
    fn texts_to(&self, number: &ConnectedNumber, customer: &str) -> Vec<String> {
        self.emulator
            .sent_messages(Some(&number.phone_number_id))
            .into_iter()
            .filter(|m| m.wa_id == customer && m.message_type == "text")
            .filter_map(|m| m.request["text"]["body"].as_str().map(str::to_owned))
            .collect()
    }

    /// Waits until `count` texts went to `customer` and answers them.
    async fn wait_texts(
        &self,
        number: &ConnectedNumber,
        customer: &str,
        count: usize,
    ) -> Vec<String> {
        eventually(Duration::from_secs(15), || async {
            self.texts_to(number, customer).len() >= count
        })
        .await;
        self.texts_to(number, customer)
    }

    async fn conversation_of(&self, customer: &str) -> Value {
        let (_, list) = self.get("/api/v1/conversations?limit=50").await;
        list["data"]
            .as_array()
            .and_then(|all| all.iter().find(|c| c["contact"]["wa_id"] == customer))
            .cloned()
            .unwrap_or_else(|| panic!("no conversation with {customer}: {list}"))
    }
}

on_both_databases! {
    async fn a_customer_question_is_answered_by_the_model_with_the_conversation_in_the_prompt(app) {
        let model = FakeModel::start(Some(MODEL_KEY)).await.unwrap();
        let number = app.connect_number().await;
        let shown = app
            .configure_assistant(&number, json!({
                "auto_reply": true,
                "system_prompt": "You answer for Acme Bikes.",
                "business_facts": "Delivery takes 3 days.",
                "provider": {"base_url": model.base_url(), "model": "fake-1", "api_key": MODEL_KEY},
            }))
            .await;
        assert_eq!(shown["provider"]["has_api_key"], true);
        assert!(!shown.to_string().contains(MODEL_KEY), "the key is never shown: {shown}");
        let (_, again) = app.get(&format!("/api/v1/connections/{}/assistant", number.id())).await;
        assert!(!again.to_string().contains(MODEL_KEY));
        assert_eq!(again["auto_reply"], true);

        let customer = "4915112345001";
        app.customer_writes(&number, customer, "Hi, I ordered a bike yesterday").await;
        let first = app.wait_texts(&number, customer, 1).await;
        assert_eq!(first, vec!["Echo: Hi, I ordered a bike yesterday"]);
        app.customer_writes(&number, customer, "When will it arrive?").await;
        let both = app.wait_texts(&number, customer, 2).await;
        assert_eq!(both[1], "Echo: When will it arrive?");

        // The second call carried the system prompt and the whole conversation, read from the
        // database, in order.
        let requests = model.requests();
        assert_eq!(requests.len(), 2);
        let messages = requests[1]["messages"].as_array().unwrap();
        assert_eq!(messages[0]["role"], "system");
        let system = messages[0]["content"].as_str().unwrap();
        assert!(system.contains("You answer for Acme Bikes."), "{system}");
        assert!(system.contains("Delivery takes 3 days."), "{system}");
        assert!(system.contains("Reply in English"), "{system}");
        let turns: Vec<(String, String)> = messages[1..]
            .iter()
            .map(|m| (m["role"].as_str().unwrap().to_owned(), m["content"].as_str().unwrap().to_owned()))
            .collect();
        assert_eq!(turns, vec![
            ("user".to_owned(), "Hi, I ordered a bike yesterday".to_owned()),
            ("assistant".to_owned(), "Echo: Hi, I ordered a bike yesterday".to_owned()),
            ("user".to_owned(), "When will it arrive?".to_owned()),
        ]);
        assert_eq!(requests[1]["model"], "fake-1");

        // The answers are the assistant's, and the customer saw it typing first.
        let conversation = app.conversation_of(customer).await;
        let messages = app.messages(&format!("&conversation_id={}", conversation["id"].as_str().unwrap())).await;
        let outbound: Vec<&Value> = messages.iter().filter(|m| m["direction"] == "outbound").collect();
        assert_eq!(outbound.len(), 2);
        assert!(outbound.iter().all(|m| m["sent_by"] == "assistant"), "{outbound:?}");
        eventually(Duration::from_secs(5), || async {
            app.emulator
                .read_receipts(Some(&number.phone_number_id))
                .iter()
                .any(|r| r.typing_indicator)
        })
        .await;

        // A provider that needs no key: `api_key: null` removes the stored one, the provider stays.
        let cleared = app
            .configure_assistant(&number, json!({
                "auto_reply": true,
                "provider": {"base_url": model.base_url(), "model": "fake-1", "api_key": null},
            }))
            .await;
        assert_eq!(cleared["provider"]["has_api_key"], false, "{cleared}");
        assert_eq!(cleared["provider"]["model"], "fake-1", "{cleared}");
        model.shutdown().await;
    }

    async fn the_provider_down_answers_from_the_faq_and_nothing_matching_gets_the_fallback_in_the_customers_language(app) {
        let model = FakeModel::start(None).await.unwrap();
        model.set_behaviour(ModelBehaviour::Fail(500));
        let number = app.connect_number().await;
        app.configure_assistant(&number, json!({
            "auto_reply": true,
            "provider": {"base_url": model.base_url(), "model": "fake-1"},
            "model_timeout_seconds": 1,
            "faqs": [
                {"question": "What are your opening hours?", "answer": "We open 9 to 6, Monday to Saturday.", "keywords": ["open", "hours"]},
                {"question": "Do you repair bikes?", "answer": "Yes, repairs take a day.", "keywords": ["repair"]}
            ]
        }))
        .await;

        let asks_hours = "4915112345101";
        app.customer_writes(&number, asks_hours, "When do you open on Saturday?").await;
        assert_eq!(app.wait_texts(&number, asks_hours, 1).await, vec!["We open 9 to 6, Monday to Saturday."]);
        assert_eq!(model.requests().len(), 1, "the model was asked first");

        // A model that does not answer in time is the same as one that is down.
        model.set_behaviour(ModelBehaviour::Hang(Duration::from_secs(30)));
        let spanish = "4915112345102";
        app.customer_writes(&number, spanish, "Hola, ¿tienen bicicletas rojas para niños?").await;
        let answer = app.wait_texts(&number, spanish, 1).await;
        assert_eq!(answer, vec![wagate::assistant::phrases::fallback("es")]);

        for (customer, text, language) in [
            ("4915112345103", "Olá, vocês vendem capacetes azuis?", "pt"),
            ("4915112345104", "Bonjour, vous avez des vélos électriques ?", "fr"),
            ("4915112345105", "مرحبا، هل لديكم دراجات؟", "ar"),
        ] {
            app.customer_writes(&number, customer, text).await;
            assert_eq!(
                app.wait_texts(&number, customer, 1).await,
                vec![wagate::assistant::phrases::fallback(language)],
                "{text}"
            );
        }
        model.shutdown().await;
    }

    async fn a_person_answering_pauses_the_assistant_until_resumed_and_asking_for_a_person_hands_off(app) {
        let number = app.connect_number().await;
        app.configure_assistant(&number, json!({
            "auto_reply": true,
            "faqs": [{"question": "Do you repair bikes?", "answer": "Yes, repairs take a day.", "keywords": ["repair"]}],
            "pause_minutes": 60
        }))
        .await;
        let customer = "4915112345201";
        app.customer_writes(&number, customer, "Can you repair my bike?").await;
        assert_eq!(app.wait_texts(&number, customer, 1).await, vec!["Yes, repairs take a day."]);
        let conversation = app.conversation_of(customer).await;
        assert_eq!(conversation["assistant"]["paused_until"], Value::Null);

        // A person answers from the API: the assistant steps back on this conversation.
        let (status, sent) = app
            .send(json!({"connection_id": number.id(), "to": customer, "type": "text", "text": {"body": "I will look at it myself."}}))
            .await;
        assert_eq!(status, StatusCode::ACCEPTED, "{sent}");
        assert_eq!(sent["sent_by"], "person");
        let conversation = app.conversation_of(customer).await;
        assert_eq!(conversation["assistant"]["paused_reason"], "a person answered");
        app.wait_texts(&number, customer, 2).await;
        app.customer_writes(&number, customer, "Also a repair for the brakes?").await;
        tokio::time::sleep(Duration::from_millis(1500)).await;
        assert_eq!(app.texts_to(&number, customer).len(), 2, "the assistant stayed quiet");

        // Handed back from the chat header (the API here): it answers again.
        let id = conversation["id"].as_str().unwrap();
        let (status, resumed) = app.post(&format!("/api/v1/conversations/{id}/assistant/resume"), json!({})).await;
        assert_eq!(status, StatusCode::OK, "{resumed}");
        app.customer_writes(&number, customer, "And the repair price?").await;
        assert_eq!(app.wait_texts(&number, customer, 3).await[2], "Yes, repairs take a day.");

        // The customer asks for a person: told so, and the assistant pauses.
        app.customer_writes(&number, customer, "I want to talk to an agent please").await;
        assert_eq!(
            app.wait_texts(&number, customer, 4).await[3],
            wagate::assistant::phrases::handing_off("en")
        );
        let conversation = app.conversation_of(customer).await;
        assert_eq!(conversation["assistant"]["paused_reason"], "the customer asked for a person");
        app.customer_writes(&number, customer, "repair?").await;
        tokio::time::sleep(Duration::from_millis(1500)).await;
        assert_eq!(app.texts_to(&number, customer).len(), 4, "paused after the hand-off");

        // Pausing by hand works too, and a pause of another tenant's conversation is a 404.
        let (status, _) = app.post(&format!("/api/v1/conversations/{id}/assistant/pause"), json!({"minutes": 5})).await;
        assert_eq!(status, StatusCode::OK);
        let (_, other_key) = app.other_tenant().await;
        let (status, _) = app
            .send_as(&other_key, reqwest::Method::POST, &format!("/api/v1/conversations/{id}/assistant/resume"), Some(json!({})))
            .await;
        assert_eq!(status, StatusCode::NOT_FOUND);
    }

    async fn a_redelivered_message_gets_one_answer(app) {
        let number = app.connect_number().await;
        app.configure_assistant(&number, json!({"auto_reply": true})).await;
        let customer = "4915112345301";
        let webhook = messages_webhook(
            &number.phone_number_id,
            json!({
                "contacts": [{"profile": {"name": "Ana"}, "wa_id": customer}],
                "messages": [text_message(customer, &unique_wamid(), "hello there", now_secs())]
            }),
        );
        for _ in 0..3 {
            assert_eq!(app.post_signed(&number, &webhook).await, StatusCode::OK);
        }
        app.wait_processed().await;
        app.wait_texts(&number, customer, 1).await;
        tokio::time::sleep(Duration::from_millis(1500)).await;
        assert_eq!(
            app.texts_to(&number, customer),
            vec![wagate::assistant::phrases::fallback("en")],
            "one answer to one message"
        );
    }

    async fn assistant_settings_are_checked_and_belong_to_their_tenant(app) {
        let number = app.connect_number().await;
        let path = format!("/api/v1/connections/{}/assistant", number.id());
        let (status, body) = app
            .put(&path, json!({
                "provider": {"base_url": "ftp://models.example", "model": ""},
                "faqs": [{"question": "Hours?"}],
                "hours": {"utc_offset": "CET", "days": {}},
                "tone": "friendly"
            }))
            .await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
        let fields = body["error"]["details"].to_string();
        for field in ["provider.base_url", "provider.model", "faqs[0].answer", "hours", "tone"] {
            assert!(fields.contains(field), "{field} not named in {body}");
        }
        let (_, other_key) = app.other_tenant().await;
        let (status, _) = app.get_as(&other_key, &path).await;
        assert_eq!(status, StatusCode::NOT_FOUND);
        let (status, _) = app
            .send_as(&other_key, reqwest::Method::PUT, &path, Some(json!({"auto_reply": true})))
            .await;
        assert_eq!(status, StatusCode::NOT_FOUND);
        // Nothing was changed by the refused requests.
        let (_, shown) = app.get(&path).await;
        assert_eq!(shown["auto_reply"], false);
        assert_eq!(shown["provider"], Value::Null);
    }
}
