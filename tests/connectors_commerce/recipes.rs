//! Recipes 2 and 3 (`examples/recipes/`), loaded as shipped and run end to
//! end: a webhook signed as the vendor signs it → the workflows → calls on
//! the fakes; the fakes' final state and the run records are checked.

use ferry::model::{RunStatus, StepStatus};
use ferry_testkit::target::Target;
use ferry_testkit::vendors::quickbooks::QuickBooks;
use ferry_testkit::vendors::shopify;
use ferry_testkit::vendors::slack::{self, Slack};
use ferry_testkit::vendors::stripe::{self, Stripe};
use serde_json::{Value, json};

use crate::quickbooks::{CLIENT_ID, CLIENT_SECRET, FIRST_RT, old_refresh_token_is_refused};
use crate::support::{self, Bench, T0, recipe};

const STRIPE_KEY: &str = "sk_test_recipe";
const WHSEC: &str = "whsec_recipe";

struct Billing {
    b: Bench,
    stripe: Stripe,
    product: Target,
    slack: Slack,
}

async fn billing() -> Billing {
    let stripe = Stripe::start(STRIPE_KEY).await;
    let product = Target::start().await;
    let slack = Slack::start().await;
    slack.add_channel("C0BILLING", true);
    let b = support::start(
        &recipe("stripe-provisioning.yaml"),
        &[
            ("STRIPE_API_URL", stripe.url()),
            ("STRIPE_SECRET_KEY", STRIPE_KEY.to_owned()),
            ("STRIPE_WEBHOOK_SECRET", WHSEC.to_owned()),
            ("PRODUCT_API_URL", product.url()),
            ("PRODUCT_API_TOKEN", "product-token".to_owned()),
            ("SLACK_API_URL", slack.url()),
            ("SLACK_BOT_TOKEN", slack::TOKEN.to_owned()),
            ("SLACK_CHANNEL", "C0BILLING".to_owned()),
        ],
    );
    Billing {
        b,
        stripe,
        product,
        slack,
    }
}

impl Billing {
    /// Deliver `event` signed as Stripe signs it; the run ids (provision, deprovision).
    async fn deliver(&self, event: &Value) -> (u16, Vec<String>) {
        let body = event.to_string();
        let sig = stripe::signature(WHSEC, T0 / 1000, body.as_bytes());
        let reply = self
            .b
            .post("stripe", &[("stripe-signature", &sig)], body.as_bytes())
            .await;
        let ids = reply.body["run_ids"]
            .as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|v| v.as_str().map(str::to_owned))
                    .collect()
            })
            .unwrap_or_default();
        (reply.status, ids)
    }
}

fn invoice_paid() -> Value {
    json!({
        "id": "evt_1QpaidInvoice", "object": "event", "type": "invoice.paid",
        "data": {"object": {
            "id": "in_1Qabc", "object": "invoice", "customer": "cus_Rada",
            "subscription": "sub_1Qada", "amount_paid": 4900, "currency": "usd",
            "lines": {"object": "list", "data": [{"price": {"id": "price_pro_monthly"}}]}
        }}
    })
}

fn subscription_deleted() -> Value {
    json!({
        "id": "evt_1QsubDeleted", "object": "event", "type": "customer.subscription.deleted",
        "data": {"object": {"id": "sub_1Qada", "object": "subscription", "customer": "cus_Rada", "status": "canceled"}}
    })
}

#[tokio::test]
async fn recipe_2_invoice_paid_provisions_and_subscription_deleted_deprovisions() {
    let w = billing().await;
    w.stripe.add_customer("cus_Rada", "ada@example.com");

    let (status, ids) = w.deliver(&invoice_paid()).await;
    assert_eq!(status, 202);
    let ids: Vec<&str> = ids.iter().map(String::as_str).collect();
    let runs = w.b.drive_all(&ids).await;
    let by = |wf: &str| runs.iter().find(|r| r.workflow == wf).unwrap();
    assert_eq!(
        by("provision").status,
        RunStatus::Succeeded,
        "{:?}",
        by("provision")
    );
    assert_eq!(by("deprovision").status, RunStatus::Skipped);
    assert!(
        by("provision")
            .steps
            .iter()
            .all(|s| s.status == StepStatus::Succeeded)
    );

    let put = &w.product.seen_at("/accounts/cus_Rada")[0];
    assert_eq!(put.method, "PUT");
    assert_eq!(
        put.body,
        json!({"email": "ada@example.com", "plan": "price_pro_monthly", "subscription": "sub_1Qada", "active": true})
    );
    let posted = w.slack.messages_in("C0BILLING");
    assert_eq!(posted.len(), 1, "{:?}", w.slack.messages());
    assert_eq!(
        posted[0].text,
        "Provisioned ada@example.com (price_pro_monthly): invoice in_1Qabc paid, 49.0 USD"
    );
    let lookup = &w.stripe.target.seen_at("/v1/customers/cus_Rada")[0];
    assert_eq!(
        lookup.header("authorization"),
        format!("Bearer {STRIPE_KEY}")
    );

    // Stripe redelivers: the same event id is not run again.
    assert_eq!(w.deliver(&invoice_paid()).await.0, 200);

    let (status, ids) = w.deliver(&subscription_deleted()).await;
    assert_eq!(status, 202);
    let ids: Vec<&str> = ids.iter().map(String::as_str).collect();
    let runs = w.b.drive_all(&ids).await;
    let run = runs.iter().find(|r| r.workflow == "deprovision").unwrap();
    assert_eq!(run.status, RunStatus::Succeeded, "{run:?}");
    let patch = &w.product.seen_at("/accounts/cus_Rada")[1];
    assert_eq!(patch.method, "PATCH");
    assert_eq!(
        patch.body,
        json!({"active": false, "subscription": "sub_1Qada"})
    );
    let posted = w.slack.messages_in("C0BILLING");
    assert_eq!(posted.len(), 2, "{:?}", w.slack.messages());
    assert_eq!(
        posted[1].text,
        "Deprovisioned cus_Rada: subscription sub_1Qada ended"
    );
    assert_eq!(w.slack.messages().len(), 2, "nothing posted elsewhere");
    assert_eq!(
        w.product.count("/accounts/cus_Rada"),
        2,
        "one call per event"
    );
}

#[tokio::test]
async fn recipe_2_a_stripe_rate_limit_pauses_and_the_run_still_succeeds() {
    let w = billing().await;
    w.stripe.add_customer("cus_Rada", "ada@example.com");
    w.stripe.fail_next(2, stripe::Fault::RateLimit);
    let (_, ids) = w.deliver(&invoice_paid()).await;
    let ids: Vec<&str> = ids.iter().map(String::as_str).collect();
    let runs = w.b.drive_all(&ids).await;
    let run = runs.iter().find(|r| r.workflow == "provision").unwrap();
    assert_eq!(run.status, RunStatus::Succeeded, "{run:?}");
    let statuses: Vec<Option<u16>> = run.steps[0]
        .attempts
        .iter()
        .map(|a| a.status_code)
        .collect();
    assert_eq!(statuses, [Some(429), Some(429), Some(200)]);
    assert_eq!(w.product.count("/accounts/cus_Rada"), 1);
}

const REALM: &str = "9130350000000000";
const SHOP_SECRET: &str = "shopify-recipe-secret";

struct Orders {
    b: Bench,
    qb: QuickBooks,
    n: std::cell::Cell<u32>,
}

async fn orders() -> Orders {
    let qb = QuickBooks::start(CLIENT_ID, CLIENT_SECRET, FIRST_RT).await;
    let b = support::start(
        &recipe("shopify-quickbooks-invoice.yaml"),
        &[
            ("QUICKBOOKS_COMPANY_URL", qb.company_url(REALM)),
            ("QUICKBOOKS_TOKEN_URL", qb.token_url()),
            ("QUICKBOOKS_CLIENT_ID", CLIENT_ID.to_owned()),
            ("QUICKBOOKS_CLIENT_SECRET", CLIENT_SECRET.to_owned()),
            ("QUICKBOOKS_REFRESH_TOKEN", FIRST_RT.to_owned()),
            ("QUICKBOOKS_ITEM_ID", "1".to_owned()),
            ("SHOPIFY_API_SECRET", SHOP_SECRET.to_owned()),
        ],
    );
    Orders { b, qb, n: 0.into() }
}

impl Orders {
    /// Deliver order `id` (paid, by `email`) as Shopify does; its run.
    async fn paid(&self, id: u64, email: &str, total: &str) -> ferry::model::RunRecord {
        self.n.set(self.n.get() + 1);
        let body = json!({
            "id": id, "name": format!("#{id}"), "email": email, "total_price": total,
            "currency": "USD", "financial_status": "paid",
            "customer": {"first_name": "Ada", "last_name": "Lovelace", "email": email}
        })
        .to_string();
        let hmac = shopify::hmac_header(SHOP_SECRET, body.as_bytes());
        let event_id = format!("evt-{id}");
        let webhook_id = format!("wh-{}", self.n.get());
        let reply = self
            .b
            .post(
                "shopify",
                &[
                    ("x-shopify-hmac-sha256", hmac.as_str()),
                    ("x-shopify-topic", "orders/paid"),
                    ("x-shopify-event-id", &event_id),
                    ("x-shopify-webhook-id", &webhook_id),
                ],
                body.as_bytes(),
            )
            .await;
        assert_eq!(reply.status, 202, "{}", reply.body);
        let run = reply.body["run_id"].as_str().unwrap().to_owned();
        self.b.drive_all(&[&run]).await.remove(0)
    }
}

#[tokio::test]
async fn recipe_3_a_paid_order_creates_the_customer_once_then_invoices() {
    let w = orders().await;
    let run = w.paid(1001, "ada@example.com", "120.50").await;
    assert_eq!(run.status, RunStatus::Succeeded, "{run:?}");
    let customers = w.qb.customers();
    assert_eq!(customers.len(), 1);
    assert_eq!(
        customers[0]["DisplayName"],
        "Ada Lovelace (ada@example.com)"
    );
    let invoices = w.qb.invoices();
    assert_eq!(invoices[0]["CustomerRef"]["value"], customers[0]["Id"]);
    assert_eq!(invoices[0]["DocNumber"], "#1001");
    assert_eq!(invoices[0]["Line"][0]["Amount"], 120.5);
    assert_eq!(
        invoices[0]["Line"][0]["SalesItemLineDetail"]["ItemRef"]["value"],
        "1"
    );

    // The same customer again: found by the query, not created twice.
    let run = w.paid(1002, "ada@example.com", "30.00").await;
    assert_eq!(run.status, RunStatus::Succeeded, "{run:?}");
    let create = run.steps.iter().find(|s| s.id == "create").unwrap();
    assert_eq!(create.status, StepStatus::Skipped);
    assert_eq!(w.qb.customers().len(), 1);
    assert_eq!(w.qb.invoices().len(), 2);
    assert_eq!(
        w.qb.invoices()[1]["CustomerRef"]["value"],
        customers[0]["Id"]
    );
}

#[tokio::test]
async fn recipe_3_keeps_going_across_token_refreshes_with_rotated_refresh_tokens() {
    let w = orders().await;
    w.qb.seed_customer("Ada Lovelace (ada@example.com)", "ada@example.com");
    assert_eq!(
        w.paid(1001, "ada@example.com", "10.00").await.status,
        RunStatus::Succeeded
    );
    assert_eq!(w.qb.refresh_token(), "qb-rt-1");
    // The access token expires (a 401 Fault 3200): ferry refreshes with the
    // refresh token the last refresh returned, twice in a row. A minute
    // passes between orders (the tokens live an hour): ferry forces a
    // refresh after a 401 at most once per 10 s per connection, so a token
    // refused right after it was forced fails the run instead.
    for (n, order) in [(2, 1002), (3, 1003)] {
        w.b.clock.advance(60_000);
        w.qb.expire_access_tokens();
        let run = w.paid(order, "ada@example.com", "10.00").await;
        assert_eq!(run.status, RunStatus::Succeeded, "{run:?}");
        assert_eq!(w.qb.refresh_token(), format!("qb-rt-{n}"));
    }
    let used: Vec<String> =
        w.qb.target
            .seen_at("/oauth2/v1/tokens/bearer")
            .iter()
            .map(|s| s.form("refresh_token").unwrap())
            .collect();
    assert_eq!(used, [FIRST_RT, "qb-rt-1", "qb-rt-2"]);
    assert_eq!(w.qb.invoices().len(), 3);
    old_refresh_token_is_refused(&w.qb, FIRST_RT).await;
    old_refresh_token_is_refused(&w.qb, "qb-rt-1").await;
}
