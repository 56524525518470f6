//! `/openapi.json` against the server that publishes it: every contract route is in it, every
//! answer the API gives has its status documented and matches the published schema field for
//! field, and the docs page serves its own assets. The security sweep walks the same document, so
//! a new route is checked for tenant isolation and authentication without anyone listing it.

use std::collections::HashMap;

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::helpers::*;

/// The routes CONTRACT.md names; the document must have each (it may have more).
const CONTRACT_ROUTES: &[(&str, &str)] = &[
    ("post", "/api/v1/connections"),
    ("get", "/api/v1/connections"),
    ("get", "/api/v1/connections/{id}"),
    ("patch", "/api/v1/connections/{id}"),
    ("delete", "/api/v1/connections/{id}"),
    ("post", "/api/v1/connections/{id}/test"),
    ("post", "/api/v1/messages"),
    ("get", "/api/v1/messages"),
    ("get", "/api/v1/messages/{id}"),
    ("get", "/api/v1/conversations"),
    ("get", "/api/v1/conversations/{id}"),
    ("post", "/api/v1/conversations/{id}/read"),
    ("get", "/api/v1/unread-count"),
    ("get", "/api/v1/templates"),
    ("post", "/api/v1/templates"),
    ("post", "/api/v1/templates/sync"),
    ("get", "/api/v1/events"),
    ("post", "/api/v1/media"),
    ("get", "/api/v1/media/{id}"),
    ("get", "/webhooks/whatsapp/{connection_key}"),
    ("post", "/webhooks/whatsapp/{connection_key}"),
    ("get", "/webhooks/whatsapp"),
    ("post", "/webhooks/whatsapp"),
    ("get", "/healthz"),
    ("get", "/readyz"),
    ("get", "/metrics"),
];

const METHODS: [&str; 5] = ["get", "post", "put", "patch", "delete"];

/// The published document, and calls checked against it.
pub struct Documented<'a> {
    pub app: &'a TestApp,
    pub doc: Value,
    /// The id of one of the owner's resources, by the path segment before the parameter
    /// (`connections`, `enrollments`, `deliveries`, ...).
    pub ids: HashMap<String, String>,
    /// Stored secrets (tokens, app secrets, signing secrets) that no answer may contain.
    pub secrets: Vec<String>,
}

impl<'a> Documented<'a> {
    pub async fn fetch(app: &'a TestApp) -> Self {
        let response = app
            .client
            .get(app.url("/openapi.json"))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::OK);
        let doc: Value = response.json().await.unwrap();
        Self {
            app,
            doc,
            ids: HashMap::new(),
            secrets: Vec::new(),
        }
    }

    /// Every (method, path template) of the document.
    pub fn operations(&self) -> Vec<(String, String)> {
        let mut out = Vec::new();
        for (path, item) in self.doc["paths"].as_object().expect("paths") {
            for method in METHODS {
                if item.get(method).is_some() {
                    out.push((method.to_owned(), path.clone()));
                }
            }
        }
        out
    }

    pub fn operation(&self, method: &str, template: &str) -> &Value {
        let operation = &self.doc["paths"][template][method];
        assert!(
            operation.is_object(),
            "{method} {template} is not in /openapi.json"
        );
        operation
    }

    /// Whether the operation needs credentials (its own `security`, else the document's).
    pub fn needs_credentials(&self, method: &str, template: &str) -> bool {
        let security = self
            .operation(method, template)
            .get("security")
            .unwrap_or(&self.doc["security"]);
        security.as_array().is_some_and(|schemes| {
            schemes
                .iter()
                .any(|s| s.as_object().is_some_and(|o| !o.is_empty()))
        })
    }

    /// The template with each parameter replaced by the owner's id for it (`missing` instead,
    /// when given). Panics, naming the route, when no id is known: seed one in `seed`.
    pub fn fill(&self, template: &str, missing: bool) -> String {
        let mut previous = "";
        let mut out = Vec::new();
        for segment in template.split('/') {
            if segment.starts_with('{') {
                let id = self.ids.get(previous).unwrap_or_else(|| {
                    panic!("no id of a `{previous}` is seeded for {template}; add one to seed()")
                });
                out.push(if missing {
                    missing_like(id)
                } else {
                    id.clone()
                });
            } else {
                out.push(segment.to_owned());
            }
            previous = segment;
        }
        out.join("/")
    }

    /// Calls the route as `api_key`, checks that the status it answered is documented and that
    /// a JSON answer matches the documented schema, and answers the status and body.
    pub async fn call(
        &self,
        api_key: Option<&str>,
        method: &str,
        template: &str,
        path: &str,
        body: Option<Value>,
    ) -> (StatusCode, Value) {
        let mut request = self.app.client.request(
            Method::from_bytes(method.to_uppercase().as_bytes()).unwrap(),
            self.app.url(path),
        );
        if let Some(key) = api_key {
            request = request.bearer_auth(key);
        }
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await.unwrap();
        let content_type = response
            .headers()
            .get(reqwest::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_owned();
        let (status, value) = json_of(response).await;
        let text = value.to_string();
        for secret in &self.secrets {
            assert!(
                !text.contains(secret.as_str()),
                "{method} {path} answered a stored secret: {text}"
            );
        }
        self.check(method, template, status, &content_type, &value);
        (status, value)
    }

    /// The answer's status is documented for the route, and a JSON body conforms to its schema.
    pub fn check(
        &self,
        method: &str,
        template: &str,
        status: StatusCode,
        content_type: &str,
        value: &Value,
    ) {
        let responses = &self.operation(method, template)["responses"];
        let documented = &responses[status.as_str()];
        assert!(
            documented.is_object(),
            "{method} {template} answered {status}, which /openapi.json does not list: {value}"
        );
        if !content_type.starts_with("application/json") {
            return;
        }
        let Some(schema) = documented["content"]["application/json"].get("schema") else {
            panic!(
                "{method} {template} answered JSON with {status}, documented without a schema: {value}"
            );
        };
        let mut problems = Vec::new();
        conforms(&self.doc, schema, value, "$", &mut problems);
        assert!(
            problems.is_empty(),
            "{method} {template} {status} does not match its schema:\n  {}\nanswer: {value}",
            problems.join("\n  ")
        );
    }
}

/// An id of the same form as `id` that names nothing.
fn missing_like(id: &str) -> String {
    if id.parse::<i64>().is_ok() {
        "987654321987".to_owned()
    } else {
        "0195f1d2-0000-7000-8000-000000000000".to_owned()
    }
}

/// JSON Schema (the part of 2020-12 that utoipa writes) checked by hand: `$ref`, `oneOf`,
/// `anyOf`, `allOf`, `type` (one or several), `properties`, `required`, `items`, `enum`. Strict
/// about keys: a key the schema does not list is a problem (the document would be missing a
/// field), except the message's type object, which is under the key its `type` names.
fn conforms(doc: &Value, schema: &Value, value: &Value, at: &str, problems: &mut Vec<String>) {
    if let Some(reference) = schema.get("$ref").and_then(Value::as_str) {
        let name = reference.trim_start_matches("#/components/schemas/");
        let target = &doc["components"]["schemas"][name];
        assert!(target.is_object(), "{reference} is not in the document");
        return conforms(doc, target, value, at, problems);
    }
    for (keyword, all) in [("oneOf", false), ("anyOf", false), ("allOf", true)] {
        if let Some(options) = schema.get(keyword).and_then(Value::as_array) {
            let results: Vec<Vec<String>> = options
                .iter()
                .map(|option| {
                    let mut found = Vec::new();
                    conforms(doc, option, value, at, &mut found);
                    found
                })
                .collect();
            let ok = if all {
                results.iter().all(Vec::is_empty)
            } else {
                results.iter().any(Vec::is_empty)
            };
            if !ok {
                problems.push(format!("{at}: matches no {keyword} option: {results:?}"));
            }
            return;
        }
    }
    if let Some(types) = schema.get("type") {
        let types: Vec<&str> = match types {
            Value::String(one) => vec![one.as_str()],
            Value::Array(many) => many.iter().filter_map(Value::as_str).collect(),
            _ => vec![],
        };
        let actual = match value {
            Value::Null => "null",
            Value::Bool(_) => "boolean",
            Value::Number(n) if n.is_i64() || n.is_u64() => "integer",
            Value::Number(_) => "number",
            Value::String(_) => "string",
            Value::Array(_) => "array",
            Value::Object(_) => "object",
        };
        let fits = types.contains(&actual) || (actual == "integer" && types.contains(&"number"));
        if !fits {
            problems.push(format!("{at}: is {actual}, the schema says {types:?}"));
            return;
        }
    }
    if let Some(allowed) = schema.get("enum").and_then(Value::as_array)
        && !allowed.contains(value)
    {
        problems.push(format!("{at}: {value} is not one of {allowed:?}"));
    }
    if let (Some(items), Value::Array(elements)) = (schema.get("items"), value) {
        for (index, element) in elements.iter().enumerate() {
            conforms(doc, items, element, &format!("{at}[{index}]"), problems);
        }
    }
    if let Value::Object(object) = value {
        let properties = schema.get("properties").and_then(Value::as_object);
        for required in schema
            .get("required")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(Value::as_str)
        {
            if !object.contains_key(required) {
                problems.push(format!("{at}: `{required}` is required but missing"));
            }
        }
        let Some(properties) = properties else { return };
        let free_form = schema
            .get("additionalProperties")
            .is_some_and(|a| a != &Value::Bool(false));
        for (key, field) in object {
            match properties.get(key) {
                Some(property) => conforms(doc, property, field, &format!("{at}.{key}"), problems),
                None if free_form => {}
                None if object.get("type").and_then(Value::as_str) == Some(key.as_str()) => {}
                None => problems.push(format!("{at}: `{key}` is answered but not in the schema")),
            }
        }
    }
}

/// A tiny receiver for the tenant's webhook endpoint, answering 200 to everything.
async fn receiver() -> String {
    let app = axum::Router::new().route("/hooks", axum::routing::post(|| async { "ok" }));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/hooks", listener.local_addr().unwrap());
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    url
}

impl Documented<'_> {
    async fn owner(&self, method: &str, template: &str, body: Value) -> Value {
        let path = self.fill(template, false);
        let (status, answer) = self
            .call(Some(&self.app.api_key), method, template, &path, Some(body))
            .await;
        assert!(status.is_success(), "{method} {path}: {status} {answer}");
        answer
    }

    /// One of each kind of the owner's resources, created through the API (each answer checked
    /// against the document on the way), with their ids kept for `fill`.
    pub async fn seed(&mut self) -> ConnectedNumber {
        let app = self.app;
        let number = app.connect_number().await;
        self.ids
            .insert("connections".into(), number.id().to_owned());
        self.secrets
            .extend([number.access_token.clone(), number.app_secret.clone()]);
        let model_key = format!("sk-{}", wagate::ids::random_token(24));
        self.owner(
            "put",
            "/api/v1/connections/{id}/assistant",
            json!({"auto_reply": false,
            "provider": {"base_url": "http://127.0.0.1:9/v1", "model": "m", "api_key": model_key}}),
        )
        .await;
        self.secrets.push(model_key);
        let customer = "16505551234";
        let webhook = messages_webhook(
            &number.phone_number_id,
            json!({"messages": [text_message(customer, &unique_wamid(), "hello", now_secs())],
                   "contacts": [{"profile": {"name": "Ada"}, "wa_id": customer}]}),
        );
        assert_eq!(app.post_signed(&number, &webhook).await, StatusCode::OK);
        app.wait_processed().await;
        let sent = self
            .owner(
                "post",
                "/api/v1/messages",
                json!({"to": format!("+{customer}"), "type": "text", "text": {"body": "hi back"}}),
            )
            .await;
        self.ids
            .insert("messages".into(), sent["id"].as_str().unwrap().to_owned());
        self.ids.insert(
            "conversations".into(),
            sent["conversation_id"].as_str().unwrap().to_owned(),
        );
        app.wait_templates_synced(&number).await;
        let (_, templates) = app.get("/api/v1/templates").await;
        self.ids.insert(
            "templates".into(),
            templates["data"][0]["id"].as_str().unwrap().to_owned(),
        );
        let (status, media) = app
            .upload(
                include_bytes!("../../../../testdata/media/photo.jpg"),
                "p.jpg",
                "image/jpeg",
                &[],
            )
            .await;
        self.check("post", "/api/v1/media", status, "application/json", &media);
        self.ids
            .insert("media".into(), media["id"].as_str().unwrap().to_owned());
        let contact = self
            .owner(
                "post",
                "/api/v1/contacts",
                json!({"phone": "+44 7700 900123", "name": "Bo", "tags": ["lead"],
                       "custom_fields": {"plan": "gold"}}),
            )
            .await;
        self.ids.insert(
            "contacts".into(),
            contact["id"].as_str().unwrap().to_owned(),
        );
        let response = app
            .client
            .post(app.url("/api/v1/contacts/import"))
            .bearer_auth(&app.api_key)
            .header("content-type", "text/csv")
            .body("phone,name\n+44 7700 900124,Cy\n")
            .send()
            .await
            .unwrap();
        let content_type = response.headers()["content-type"]
            .to_str()
            .unwrap()
            .to_owned();
        let (status, imported) = json_of(response).await;
        self.check(
            "post",
            "/api/v1/contacts/import",
            status,
            &content_type,
            &imported,
        );
        self.ids.insert(
            "imports".into(),
            imported["id"].as_str().unwrap().to_owned(),
        );
        let sequence = self
            .owner(
                "post",
                "/api/v1/sequences",
                json!({"name": "Welcome", "steps": [
                {"delay_seconds": 3600, "message": {"type": "text", "text": {"body": "later"}}}]}),
            )
            .await;
        self.ids.insert(
            "sequences".into(),
            sequence["id"].as_str().unwrap().to_owned(),
        );
        let enrolled = self
            .owner(
                "post",
                "/api/v1/sequences/{id}/enrollments",
                json!({"to": format!("+{customer}")}),
            )
            .await;
        self.ids.insert(
            "enrollments".into(),
            enrolled["id"].as_str().unwrap().to_owned(),
        );
        let endpoint = self
            .owner(
                "post",
                "/api/v1/webhook-endpoints",
                json!({"url": receiver().await, "events": ["message.created"]}),
            )
            .await;
        self.ids.insert(
            "webhook-endpoints".into(),
            endpoint["id"].as_str().unwrap().to_owned(),
        );
        // Shown once, when created; never again.
        self.secrets.push(
            endpoint["secret"]
                .as_str()
                .expect("the new endpoint's secret")
                .to_owned(),
        );
        let second = messages_webhook(
            &number.phone_number_id,
            json!({"messages": [text_message(customer, &unique_wamid(), "again", now_secs())]}),
        );
        assert_eq!(app.post_signed(&number, &second).await, StatusCode::OK);
        let deliveries = format!(
            "/api/v1/webhook-endpoints/{}/deliveries",
            endpoint["id"].as_str().unwrap()
        );
        eventually(std::time::Duration::from_secs(15), || async {
            app.get(&deliveries).await.1["data"]
                .as_array()
                .is_some_and(|d| !d.is_empty())
        })
        .await;
        let (_, delivered) = app.get(&deliveries).await;
        self.ids.insert(
            "deliveries".into(),
            delivered["data"][0]["id"].as_str().unwrap().to_owned(),
        );
        let (_, inbox) = app.get("/api/v1/inbox?state=done").await;
        let inbox_id = inbox["data"][0]["id"]
            .as_i64()
            .expect("a processed webhook in the inbox");
        self.ids.insert("inbox".into(), inbox_id.to_string());
        number
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_document_lists_every_contract_route_with_a_summary_and_its_answers() {
    let app = TestApp::spawn(Db::Sqlite).await;
    let documented = Documented::fetch(&app).await;
    assert!(
        documented.doc["openapi"]
            .as_str()
            .unwrap()
            .starts_with("3.1")
    );
    for (method, path) in CONTRACT_ROUTES {
        documented.operation(method, path);
    }
    for (method, template) in documented.operations() {
        let operation = documented.operation(&method, &template);
        assert!(
            operation["summary"].as_str().is_some_and(|s| !s.is_empty()),
            "{method} {template} has no summary"
        );
        assert!(
            operation["tags"].as_array().is_some_and(|t| !t.is_empty()),
            "{method} {template} has no tag"
        );
        let responses = operation["responses"].as_object().unwrap();
        if documented.needs_credentials(&method, &template) {
            assert!(
                responses.contains_key("401"),
                "{method} {template} does not list its 401"
            );
        }
        if template.contains('{') && template.starts_with("/api/") {
            assert!(
                responses.contains_key("404"),
                "{method} {template} takes an id but lists no 404"
            );
        }
        for parameter in template.split('/').filter(|s| s.starts_with('{')) {
            let name = parameter.trim_matches(['{', '}']);
            assert!(
                operation["parameters"]
                    .as_array()
                    .is_some_and(|p| p.iter().any(|p| p["name"] == name && p["in"] == "path")),
                "{method} {template} does not describe its path parameter {name}"
            );
        }
    }
    let (status, _) = app.get("/api/v1/no-such-route").await;
    assert_eq!(
        status,
        StatusCode::NOT_FOUND,
        "the API's own 404 still answers unknown routes"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_answer_of_every_read_route_matches_the_published_schema() {
    let app = TestApp::spawn(Db::Sqlite).await;
    let mut documented = Documented::fetch(&app).await;
    documented.seed().await;
    let mut read = 0;
    for (method, template) in documented.operations() {
        // The WebSocket upgrade and the endpoints Meta calls are exercised by their own tests.
        if method != "get" || template == "/api/v1/events" || template.starts_with("/webhooks/") {
            continue;
        }
        let path = documented.fill(&template, false);
        let key = documented
            .needs_credentials(&method, &template)
            .then_some(app.api_key.as_str());
        let (status, answer) = documented.call(key, &method, &template, &path, None).await;
        assert_eq!(status, StatusCode::OK, "GET {path}: {answer}");
        read += 1;
    }
    assert!(read >= 20, "only {read} read routes were checked");
    // Errors follow the one error schema too.
    let missing = documented.fill("/api/v1/messages/{id}", true);
    let (status, _) = documented
        .call(
            Some(&app.api_key),
            "get",
            "/api/v1/messages/{id}",
            &missing,
            None,
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, _) = documented
        .call(None, "get", "/api/v1/messages", "/api/v1/messages", None)
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let (status, _) = documented
        .call(
            Some(&app.api_key),
            "post",
            "/api/v1/messages",
            "/api/v1/messages",
            Some(json!({"to": "nope", "type": "text"})),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_docs_page_serves_the_document_from_its_own_assets() {
    let app = TestApp::spawn(Db::Sqlite).await;
    let page = app.client.get(app.url("/docs/")).send().await.unwrap();
    assert_eq!(page.status(), StatusCode::OK);
    let html = page.text().await.unwrap();
    assert!(html.contains("swagger-ui"), "{html}");
    assert!(
        !html.contains("https://"),
        "the page loads nothing from elsewhere"
    );
    let initializer = app
        .client
        .get(app.url("/docs/swagger-initializer.js"))
        .send()
        .await
        .unwrap();
    assert_eq!(initializer.status(), StatusCode::OK);
    assert!(initializer.text().await.unwrap().contains("/openapi.json"));
    for asset in ["swagger-ui.css", "swagger-ui-bundle.js"] {
        let response = app
            .client
            .get(app.url(&format!("/docs/{asset}")))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::OK, "{asset}");
        assert!(
            response.bytes().await.unwrap().len() > 10_000,
            "{asset} is the real asset"
        );
    }
}
