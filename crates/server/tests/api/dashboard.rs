//! Dashboard sign-in, sessions and CSRF over plain HTTP (the browser tests drive the pages).

use reqwest::StatusCode;
use reqwest::header::{COOKIE, LOCATION, SET_COOKIE};
use serde_json::json;

use crate::helpers::*;

/// A browser without JavaScript: keeps cookies by hand and never follows redirects.
pub(crate) struct Visitor {
    client: reqwest::Client,
    base: String,
    cookies: Vec<(String, String)>,
}

impl Visitor {
    pub(crate) fn new(app: &TestApp) -> Self {
        Self {
            client: reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .unwrap(),
            base: app.address.clone(),
            cookies: Vec::new(),
        }
    }

    pub(crate) fn cookie_header(&self) -> String {
        self.cookies
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join("; ")
    }

    fn keep_cookies(&mut self, response: &reqwest::Response) {
        for header in response.headers().get_all(SET_COOKIE) {
            let text = header.to_str().unwrap();
            let (pair, attributes) = text.split_once(';').unwrap_or((text, ""));
            let (name, value) = pair.split_once('=').unwrap();
            self.cookies.retain(|(k, _)| k != name);
            if !attributes.contains("Max-Age=0") {
                self.cookies.push((name.to_owned(), value.to_owned()));
            }
        }
    }

    pub(crate) async fn get(&mut self, path: &str) -> (StatusCode, String, Option<String>) {
        let response = self
            .client
            .get(format!("{}{path}", self.base))
            .header(COOKIE, self.cookie_header())
            .send()
            .await
            .unwrap();
        self.finish(response).await
    }

    pub(crate) async fn post_form(
        &mut self,
        path: &str,
        form: &[(&str, &str)],
    ) -> (StatusCode, String, Option<String>) {
        let response = self
            .client
            .post(format!("{}{path}", self.base))
            .header(COOKIE, self.cookie_header())
            .form(form)
            .send()
            .await
            .unwrap();
        self.finish(response).await
    }

    /// Keeps the answer's cookies; answers its status, body and where it redirects.
    async fn finish(
        &mut self,
        response: reqwest::Response,
    ) -> (StatusCode, String, Option<String>) {
        self.keep_cookies(&response);
        let status = response.status();
        let location = response
            .headers()
            .get(LOCATION)
            .map(|l| l.to_str().unwrap().to_owned());
        (status, response.text().await.unwrap(), location)
    }

    fn cookie(&self, name: &str) -> Option<&str> {
        self.cookies
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    /// Opens the sign-in page and signs in; answers where it was sent.
    pub(crate) async fn sign_in(
        &mut self,
        email: &str,
        password: &str,
    ) -> (StatusCode, String, Option<String>) {
        let (status, page, _) = self.get("/login?next=/app/settings").await;
        assert_eq!(status, StatusCode::OK);
        let form_token = hidden_value(&page, "form_token");
        self.post_form(
            "/login",
            &[
                ("email", email),
                ("password", password),
                ("form_token", &form_token),
                ("next", "/app/settings"),
            ],
        )
        .await
    }
}

fn hidden_value(page: &str, name: &str) -> String {
    let marker = format!("name=\"{name}\" value=\"");
    let start = page
        .find(&marker)
        .unwrap_or_else(|| panic!("no {name} in {page}"))
        + marker.len();
    page[start..].split('"').next().unwrap().to_owned()
}

pub(crate) fn meta_csrf(page: &str) -> String {
    let marker = "name=\"csrf-token\" content=\"";
    let start = page.find(marker).expect("csrf meta") + marker.len();
    page[start..].split('"').next().unwrap().to_owned()
}

on_both_databases! {
    async fn a_page_without_a_session_sends_to_sign_in_and_back_after_it(app) {
        let mut visitor = Visitor::new(&app);
        let (status, _, location) = visitor.get("/app/settings").await;
        assert_eq!(status, StatusCode::SEE_OTHER);
        assert_eq!(location.as_deref(), Some("/login?next=%2Fapp%2Fsettings"));

        let (status, _, location) = visitor.sign_in(&app.owner_email, OWNER_PASSWORD).await;
        assert_eq!(status, StatusCode::SEE_OTHER);
        assert_eq!(location.as_deref(), Some("/app/settings"));
        let session = visitor.cookie("wagate_session").expect("a session cookie").to_owned();
        assert!(session.starts_with("wgs_"));
        let (status, page, _) = visitor.get("/app/settings").await;
        assert_eq!(status, StatusCode::OK);
        assert!(page.contains(&app.owner_email), "{page}");
        assert!(!page.contains(&session), "the session token never appears in a page");

        // Only the hash of the token is stored.
        let stored: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM sessions WHERE token_hash = $1")
            .bind(&session)
            .fetch_one(app.state.store.reader())
            .await
            .unwrap();
        assert_eq!(stored, 0);

        // Sign-out needs the CSRF token, then ends the session for good.
        let (status, _, _) = visitor.post_form("/logout", &[("csrf_token", "wrong")]).await;
        assert_eq!(status, StatusCode::FORBIDDEN);
        let csrf = meta_csrf(&page);
        let (status, _, location) = visitor.post_form("/logout", &[("csrf_token", &csrf)]).await;
        assert_eq!(status, StatusCode::SEE_OTHER);
        assert_eq!(location.as_deref(), Some("/login"));
        let replay = reqwest::Client::new()
            .get(app.url("/api/v1/conversations"))
            .header(COOKIE, format!("wagate_session={session}"))
            .send()
            .await
            .unwrap();
        assert_eq!(replay.status(), StatusCode::UNAUTHORIZED, "a signed-out session is dead");
    }

    async fn a_wrong_password_is_refused_without_saying_whether_the_email_exists(app) {
        let mut visitor = Visitor::new(&app);
        let (status, wrong_password, _) = visitor.sign_in(&app.owner_email, "not the password").await;
        assert_eq!(status, StatusCode::UNAUTHORIZED);
        assert!(wrong_password.contains("Wrong email or password."));
        let (status, unknown_email, _) = visitor.sign_in("nobody@example.com", "not the password").await;
        assert_eq!(status, StatusCode::UNAUTHORIZED);
        assert!(unknown_email.contains("Wrong email or password."));
        assert!(visitor.cookie("wagate_session").is_none());
    }

    async fn the_sign_in_form_only_works_with_its_own_form_token(app) {
        let mut visitor = Visitor::new(&app);
        let (status, _, _) = visitor
            .post_form(
                "/login",
                &[("email", &app.owner_email), ("password", OWNER_PASSWORD), ("form_token", "forged")],
            )
            .await;
        assert_eq!(status, StatusCode::FORBIDDEN, "a post from another site has no matching cookie");
        assert!(visitor.cookie("wagate_session").is_none());
    }

    async fn ten_wrong_passwords_in_a_minute_slow_the_account_down(app) {
        let mut visitor = Visitor::new(&app);
        for attempt in 0..10 {
            let (status, _, _) = visitor.sign_in(&app.owner_email, "guess").await;
            assert_eq!(status, StatusCode::UNAUTHORIZED, "attempt {attempt}");
        }
        let (status, page, _) = visitor.sign_in(&app.owner_email, OWNER_PASSWORD).await;
        assert_eq!(status, StatusCode::TOO_MANY_REQUESTS, "even the right password waits");
        assert!(page.contains("Too many sign-in attempts"), "{page}");
    }

    async fn the_api_takes_the_session_cookie_but_changes_need_its_csrf_token(app) {
        let mut visitor = Visitor::new(&app);
        visitor.sign_in(&app.owner_email, OWNER_PASSWORD).await;
        let (_, page, _) = visitor.get("/app/settings").await;
        let csrf = meta_csrf(&page);
        let cookie = visitor.cookie_header();
        let client = reqwest::Client::new();

        let listed = client.get(app.url("/api/v1/connections")).header(COOKIE, &cookie).send().await.unwrap();
        assert_eq!(listed.status(), StatusCode::OK);

        let number = app.register_number();
        let body = json!({
            "access_token": number.access_token,
            "phone_number_id": number.phone_number_id,
            "app_secret": number.app_secret,
        });
        let without = client.post(app.url("/api/v1/connections")).header(COOKIE, &cookie).json(&body).send().await.unwrap();
        assert_eq!(without.status(), StatusCode::FORBIDDEN);
        let (_, error) = json_of(without).await;
        assert_eq!(error["error"]["code"], "csrf_token_missing");

        let cross_site = client
            .post(app.url("/api/v1/connections"))
            .header(COOKIE, &cookie)
            .header("X-CSRF-Token", &csrf)
            .header("Origin", "https://evil.example")
            .json(&body)
            .send()
            .await
            .unwrap();
        assert_eq!(cross_site.status(), StatusCode::FORBIDDEN, "another site's page");

        let with = client.post(app.url("/api/v1/connections")).header(COOKIE, &cookie).header("X-CSRF-Token", &csrf).json(&body).send().await.unwrap();
        let (status, created) = json_of(with).await;
        assert_eq!(status, StatusCode::CREATED, "{created}");

        // The same connection through the tenant's API key: one tenant, either way in.
        let (_, listed) = app.get("/api/v1/connections").await;
        assert_eq!(listed["data"][0]["id"], created["id"]);
    }

    async fn a_new_api_key_is_shown_once_and_the_old_one_stops_working(app) {
        let mut visitor = Visitor::new(&app);
        visitor.sign_in(&app.owner_email, OWNER_PASSWORD).await;
        let (_, page, _) = visitor.get("/app/settings").await;
        assert!(page.contains(&app.api_key[..10]), "the key's prefix is shown");
        assert!(!page.contains(&app.api_key), "never the whole key");
        let csrf = meta_csrf(&page);
        let (status, page, _) = visitor.post_form("/app/settings/api-key", &[("csrf_token", &csrf)]).await;
        assert_eq!(status, StatusCode::OK);
        let start = page.find("id=\"new-api-key\">").expect("the new key is shown") + "id=\"new-api-key\">".len();
        let new_key = page[start..].split('<').next().unwrap().to_owned();
        assert!(new_key.starts_with("wgk_"), "{new_key}");

        let (status, _) = app.get_as(&app.api_key, "/api/v1/conversations").await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "the old key is revoked");
        let (status, _) = app.get_as(&new_key, "/api/v1/conversations").await;
        assert_eq!(status, StatusCode::OK);
        let (_, page, _) = visitor.get("/app/settings").await;
        assert!(!page.contains(&new_key), "shown once only");
    }
}

#[tokio::test]
async fn the_dashboard_assets_are_served_from_the_binary() {
    let app = TestApp::spawn(Db::Sqlite).await;
    for (path, kind) in [
        ("/assets/app.css", "text/css"),
        ("/assets/app.js", "text/javascript"),
        ("/assets/vendor/htmx.min.js", "text/javascript"),
    ] {
        let response = app.client.get(app.url(path)).send().await.unwrap();
        assert_eq!(response.status(), StatusCode::OK, "{path}");
        let content_type = response.headers()["content-type"]
            .to_str()
            .unwrap()
            .to_owned();
        assert!(content_type.starts_with(kind), "{path}: {content_type}");
    }
    let missing = app
        .client
        .get(app.url("/assets/nope.js"))
        .send()
        .await
        .unwrap();
    assert_eq!(missing.status(), StatusCode::NOT_FOUND);
}

fn shown_code(page: &str, id: &str) -> String {
    let marker = format!("id=\"{id}\">");
    let start = page
        .find(&marker)
        .unwrap_or_else(|| panic!("no {id} in {page}"))
        + marker.len();
    page[start..].split('<').next().unwrap().to_owned()
}

on_both_databases! {
    async fn an_owner_adds_an_agent_who_answers_but_cannot_manage_and_can_be_removed(app) {
        let mut owner = Visitor::new(&app);
        owner.sign_in(&app.owner_email, OWNER_PASSWORD).await;
        let (_, page, _) = owner.get("/app/users").await;
        let csrf = meta_csrf(&page);
        let (status, _, _) = owner
            .post_form("/app/users", &[("csrf_token", &csrf), ("email", "not-an-email"), ("role", "agent")])
            .await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
        let (status, page, _) = owner
            .post_form("/app/users", &[("csrf_token", &csrf), ("email", "Agent@Example.com"), ("role", "agent")])
            .await;
        assert_eq!(status, StatusCode::OK);
        let temporary = shown_code(&page, "temporary-password");
        let (status, _, _) = owner
            .post_form("/app/users", &[("csrf_token", &csrf), ("email", "agent@example.com"), ("role", "admin")])
            .await;
        assert_eq!(status, StatusCode::CONFLICT, "one account per email");

        let mut agent = Visitor::new(&app);
        let (status, _, _) = agent.sign_in("agent@example.com", &temporary).await;
        assert_eq!(status, StatusCode::SEE_OTHER, "the temporary password signs in");
        let (_, page, _) = agent.get("/app/users").await;
        assert!(!page.contains("Add a user"), "agents do not manage users");
        let agent_csrf = meta_csrf(&page);
        let (status, _, _) = agent
            .post_form("/app/users", &[("csrf_token", &agent_csrf), ("email", "x@example.com"), ("role", "admin")])
            .await;
        assert_eq!(status, StatusCode::FORBIDDEN);

        // Through the API with the agent's cookie: reading and answering yes, managing numbers no.
        let number = app.register_number();
        let cookie = agent.cookie_header();
        let client = reqwest::Client::new();
        let refused = client
            .post(app.url("/api/v1/connections"))
            .header(COOKIE, &cookie)
            .header("X-CSRF-Token", &agent_csrf)
            .json(&json!({"access_token": number.access_token, "phone_number_id": number.phone_number_id, "app_secret": number.app_secret}))
            .send()
            .await
            .unwrap();
        let (status, body) = json_of(refused).await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
        assert_eq!(body["error"]["code"], "forbidden");
        let listed = client.get(app.url("/api/v1/conversations")).header(COOKIE, &cookie).send().await.unwrap();
        assert_eq!(listed.status(), StatusCode::OK);

        // The owner removes the agent: signed out at once.
        let (_, page, _) = owner.get("/app/users").await;
        let row_start = page.find("data-user-email=\"agent@example.com\"").expect("the agent is listed");
        let action_start = page[row_start..].find("action=\"/app/users/").unwrap() + row_start + "action=\"".len();
        let action = page[action_start..].split('"').next().unwrap().to_owned();
        let (status, page, _) = owner.post_form(&action, &[("csrf_token", &csrf)]).await;
        assert_eq!(status, StatusCode::OK);
        assert!(!page.contains("data-user-email=\"agent@example.com\""));
        let (status, _, location) = agent.get("/app/inbox").await;
        assert_eq!(status, StatusCode::SEE_OTHER);
        assert!(location.unwrap().starts_with("/login"));
    }

    async fn a_user_changes_their_password_with_the_current_one(app) {
        let mut visitor = Visitor::new(&app);
        visitor.sign_in(&app.owner_email, OWNER_PASSWORD).await;
        let (_, page, _) = visitor.get("/app/settings").await;
        let csrf = meta_csrf(&page);
        let (status, page, _) = visitor
            .post_form("/app/settings/password", &[("csrf_token", &csrf), ("current", "wrong"), ("new", "a brand new secret")])
            .await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
        assert!(page.contains("The current password is wrong."));
        let (status, page, _) = visitor
            .post_form("/app/settings/password", &[("csrf_token", &csrf), ("current", OWNER_PASSWORD), ("new", "short")])
            .await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
        assert!(page.contains("at least 8 characters"), "{page}");
        let (status, page, _) = visitor
            .post_form("/app/settings/password", &[("csrf_token", &csrf), ("current", OWNER_PASSWORD), ("new", "a brand new secret")])
            .await;
        assert_eq!(status, StatusCode::OK);
        assert!(page.contains("Your password was changed"));

        let mut fresh = Visitor::new(&app);
        let (status, _, _) = fresh.sign_in(&app.owner_email, OWNER_PASSWORD).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "the old password no longer works");
        let (status, _, _) = fresh.sign_in(&app.owner_email, "a brand new secret").await;
        assert_eq!(status, StatusCode::SEE_OTHER);
        let (status, _, _) = visitor.get("/app/settings").await;
        assert_eq!(status, StatusCode::OK, "the session that changed it stays signed in");
    }
}

on_both_databases! {
    async fn the_chat_quotes_replies_shows_reactions_on_their_message_and_loads_older_pages(app) {
        let number = app.connect_number().await;
        let customer = "4915112345678";
        let start = now_secs() - 3_600;
        let filler: Vec<_> = (0..120)
            .map(|i| text_message(customer, &unique_wamid(), &format!("filler {i:03}"), start + i))
            .collect();
        let original = unique_wamid();
        let mut reply = text_message(customer, &unique_wamid(), "Answering that", start + 200);
        reply["context"] = json!({"from": customer, "id": original});
        let reaction = json!({
            "from": customer, "id": unique_wamid(), "timestamp": (start + 201).to_string(),
            "type": "reaction", "reaction": {"message_id": original, "emoji": "\u{1F44D}"}
        });
        let mut messages = filler;
        messages.push(text_message(customer, &original, "Original question", start + 199));
        messages.push(reply);
        messages.push(reaction);
        let body = messages_webhook(
            &number.phone_number_id,
            json!({"contacts": [{"profile": {"name": "Lena"}, "wa_id": customer}], "messages": messages}),
        );
        assert_eq!(app.post_signed(&number, &body).await, StatusCode::OK);
        app.wait_processed().await;
        let (_, conversations) = app.get("/api/v1/conversations").await;
        let conversation_id = conversations["data"][0]["id"].as_str().unwrap().to_owned();

        let mut visitor = Visitor::new(&app);
        visitor.sign_in(&app.owner_email, OWNER_PASSWORD).await;
        let (status, page, _) = visitor.get(&format!("/app/inbox?c={conversation_id}")).await;
        assert_eq!(status, StatusCode::OK);
        assert!(page.contains("<span class=\"quote\">Original question</span>"), "the reply quotes its message");
        let original_item = page.find("Original question</span>\n").expect("the original is shown");
        let reactions = page[original_item..].find("class=\"reaction\">\u{1F44D}").expect("the reaction sits on its message");
        let next_item = page[original_item..].find("<li class=\"message").unwrap_or(usize::MAX);
        assert!(reactions < next_item, "on the original, not on a bubble of its own");
        // 123 messages: the newest 100 (filler 023 on) are shown at first.
        assert!(!page.contains("filler 022<"), "only the newest page is shown at first");
        assert!(page.contains("filler 023<") && page.contains("filler 119<"));

        let marker = "/app/inbox/older?c=";
        let at = page.find(marker).expect("a load-older button");
        let url = page[at..].split('"').next().unwrap().replace("&amp;", "&");
        let (status, older, _) = visitor.get(&url).await;
        assert_eq!(status, StatusCode::OK);
        assert!(older.contains("filler 000<") && older.contains("filler 022<"), "the older page has the rest");
        assert!(!older.contains("filler 023<"), "and nothing shown already");
        assert!(!older.contains(marker), "nothing older remains");

        // Another tenant cannot open it.
        let other = app.other_owner().await;
        let mut stranger = Visitor::new(&app);
        stranger.sign_in(&other.email, OWNER_PASSWORD).await;
        let (status, page, _) = stranger.get(&format!("/app/inbox?c={conversation_id}")).await;
        assert_eq!(status, StatusCode::NOT_FOUND);
        assert!(!page.contains("Original question"));
        let (status, _, _) = stranger.get(&url).await;
        assert_eq!(status, StatusCode::NOT_FOUND);
    }
}

on_both_databases! {
    async fn a_contact_shows_its_timeline_and_a_message_link_that_falls_back_to_wa_me(app) {
        let number = app.connect_number().await;
        app.meta_behaves(&number, crate::outbound::statuses_all_the_way());
        let customer = "4915112345678";
        let mut writes = emulator::CustomerMessage::text(&number.phone_number_id, customer, "Are you open on Saturday?");
        writes.name = Some("Lena Fischer".into());
        let receipt = app.emulator.customer_writes(writes).await.unwrap();
        app.emulator.wait_delivered(receipt.delivery_id, std::time::Duration::from_secs(5)).await.unwrap();
        app.wait_processed().await;
        let (status, sent) = app.send(json!({"to": customer, "type": "text", "text": {"body": "Yes, from 9 to 1."}})).await;
        assert_eq!(status, StatusCode::ACCEPTED, "{sent}");
        app.message_reaches(sent["id"].as_str().unwrap(), &["read"], std::time::Duration::from_secs(10)).await;

        let mut visitor = Visitor::new(&app);
        visitor.sign_in(&app.owner_email, OWNER_PASSWORD).await;
        let (_, page, _) = visitor.get("/app/contacts?q=lena").await;
        let marker = "href=\"/app/contacts/";
        let at = page.find(marker).expect("Lena is listed") + "href=\"".len();
        let contact_path = page[at..].split('"').next().unwrap().to_owned();
        assert!(page.contains("Lena Fischer"));
        let (_, none, _) = visitor.get("/app/contacts?q=nobody").await;
        assert!(none.contains("No contact matches."));

        let (status, page, _) = visitor.get(&contact_path).await;
        assert_eq!(status, StatusCode::OK);
        for line in ["Wrote: Text", "Are you open on Saturday?", "Sent: Text", "Yes, from 9 to 1.", "Meta: delivered", "Meta: read"] {
            assert!(page.contains(line), "the timeline shows {line:?}");
        }
        let conversation_id = app.get("/api/v1/conversations").await.1["data"][0]["id"].as_str().unwrap().to_owned();
        assert!(page.contains(&format!("id=\"message-on-whatsapp\" href=\"/app/inbox?c={conversation_id}\"")), "opens the chat");

        let (status, _) = app.delete(&format!("/api/v1/connections/{}", number.id())).await;
        assert_eq!(status, StatusCode::OK);
        let (_, page, _) = visitor.get(&contact_path).await;
        assert!(page.contains(&format!("href=\"https://wa.me/{customer}\"")), "no number connected: wa.me");

        let other = app.other_owner().await;
        let mut stranger = Visitor::new(&app);
        stranger.sign_in(&other.email, OWNER_PASSWORD).await;
        let (status, _, _) = stranger.get(&contact_path).await;
        assert_eq!(status, StatusCode::NOT_FOUND);
        let (_, page, _) = stranger.get("/app/contacts").await;
        assert!(!page.contains("Lena"));
    }

    async fn admins_see_the_webhook_log_of_their_numbers_and_agents_do_not(app) {
        let number = app.connect_number().await;
        let body = messages_webhook(
            &number.phone_number_id,
            json!({"messages": [text_message("15551230000", &unique_wamid(), "hello", now_secs())]}),
        );
        assert_eq!(app.post_signed(&number, &body).await, StatusCode::OK);
        app.wait_processed().await;
        let mut owner = Visitor::new(&app);
        owner.sign_in(&app.owner_email, OWNER_PASSWORD).await;
        let (status, page, _) = owner.get("/app/webhooks").await;
        assert_eq!(status, StatusCode::OK);
        assert!(page.contains("id=\"webhook-log\""), "{page}");
        assert!(page.contains(number.connection["display_phone_number"].as_str().unwrap()));
        let (_, parked, _) = owner.get("/app/webhooks?state=parked").await;
        assert!(parked.contains("Nothing here."));

        let (_, users, _) = owner.get("/app/users").await;
        let csrf = meta_csrf(&users);
        let (_, added, _) = owner
            .post_form("/app/users", &[("csrf_token", &csrf), ("email", "agent2@example.com"), ("role", "agent")])
            .await;
        let temporary = shown_code(&added, "temporary-password");
        let mut agent = Visitor::new(&app);
        agent.sign_in("agent2@example.com", &temporary).await;
        let (status, _, _) = agent.get("/app/webhooks").await;
        assert_eq!(status, StatusCode::FORBIDDEN);
    }
}
