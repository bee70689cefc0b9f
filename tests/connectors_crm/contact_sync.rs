//! Recipe 4, `examples/recipes/hubspot-salesforce-contacts.yaml`, end to
//! end: both fakes polled through the presets, records matched by e-mail,
//! fields mapped between HubSpot's `properties` and Salesforce's Contact,
//! an owner per field, and the writes sent as batch upserts.

use std::collections::BTreeMap;

use ferry::sync::run_sync;
use ferry_testkit::vendors::hubspot::HubSpot;
use ferry_testkit::vendors::salesforce::Salesforce;
use serde_json::{Value, json};

use crate::support::{self, Bench, recipe, recipe_env};

const SLUG: &str = "hubspot-salesforce-contacts";
const HS_BATCH: &str = "/crm/v3/objects/contacts/batch/upsert";
const SF_BATCH: &str = "/services/data/v62.0/composite/sobjects/Contact/Sync_Email__c";

async fn start() -> (Bench, HubSpot, Salesforce) {
    let env = recipe_env(SLUG);
    let get = |k: &str| {
        env.iter()
            .find(|(n, _)| n == k)
            .map(|(_, v)| v.clone())
            .unwrap()
    };
    let hubspot = HubSpot::start(&get("HUBSPOT_TOKEN")).await;
    let sf = Salesforce::start(
        &get("SALESFORCE_CLIENT_ID"),
        &get("SALESFORCE_CLIENT_SECRET"),
        &get("SALESFORCE_REFRESH_TOKEN"),
    )
    .await;
    let mut vars: Vec<(&str, String)> = env.iter().map(|(k, v)| (k.as_str(), v.clone())).collect();
    for (k, v) in vars.iter_mut() {
        match *k {
            "HUBSPOT_API_URL" => *v = hubspot.url(),
            "SALESFORCE_INSTANCE_URL" => *v = sf.url(),
            "SALESFORCE_TOKEN_URL" => *v = format!("{}/services/oauth2/token", sf.url()),
            _ => {}
        }
    }
    // Each side gets exactly two writes in the first run: with `max_items: 2`
    // a batch is sent the moment both have joined (never on the wait timer),
    // so the test does not depend on how fast the runs reach it.
    let yaml = recipe(SLUG)
        .replace("max_items: 100", "max_items: 2")
        .replace("max_items: 200", "max_items: 2")
        .replace("wait: 1s", "wait: 10s");
    (support::start(&yaml, &vars), hubspot, sf)
}

fn props(h: &HubSpot, email: &str) -> BTreeMap<String, Value> {
    let c = h.contacts();
    let c = c
        .get(email)
        .unwrap_or_else(|| panic!("no HubSpot contact {email}"));
    c.properties.clone().into_iter().collect()
}

fn fields(sf: &Salesforce, email: &str) -> BTreeMap<String, Value> {
    sf.contact(email)
        .unwrap_or_else(|| panic!("no Salesforce contact {email}"))
        .into_iter()
        .collect()
}

#[tokio::test]
async fn contacts_sync_both_ways_with_field_owners_in_batch_upserts() {
    let (b, hs, sf) = start().await;
    // In HubSpot: Ada (marketing made her a customer) and Cy.
    hs.put_contact(json!({"email": "ada@example.com", "firstname": "Ada", "lastname": "Lovelace", "phone": "+44 111", "lifecyclestage": "customer"}));
    hs.put_contact(json!({"email": "cy@example.com", "firstname": "Cy", "lastname": "Young", "lifecyclestage": "lead"}));
    // In Salesforce: Bob, and Ada edited later (new surname, the dialler's phone).
    sf.put_contact(json!({"Email": "bob@example.com", "Sync_Email__c": "bob@example.com", "FirstName": "Bob", "LastName": "Stone", "Phone": "+1 333"}));
    sf.put_contact(json!({"Email": "ada@example.com", "Sync_Email__c": "ada@example.com", "FirstName": "Ada", "LastName": "King", "Phone": "+44 222", "HubSpot_Lifecycle_Stage__c": "lead"}));

    let first = run_sync(&b.hub, "contacts").await.unwrap();
    b.drain(4).await;

    // Ada: the newer surname (Salesforce's), Salesforce's phone (it owns
    // phone), HubSpot's lifecycle stage (it owns that) — on both sides.
    let ada = props(&hs, "ada@example.com");
    assert_eq!(
        (
            ada["lastname"].as_str(),
            ada["phone"].as_str(),
            ada["lifecyclestage"].as_str()
        ),
        (Some("King"), Some("+44 222"), Some("customer")),
        "{first:?}"
    );
    let ada = fields(&sf, "ada@example.com");
    assert_eq!(
        (
            ada["LastName"].as_str(),
            ada["Phone"].as_str(),
            ada["HubSpot_Lifecycle_Stage__c"].as_str()
        ),
        (Some("King"), Some("+44 222"), Some("customer"))
    );
    // Bob is created in HubSpot, Cy in Salesforce (with the external id).
    assert_eq!(props(&hs, "bob@example.com")["firstname"], "Bob");
    let cy = fields(&sf, "cy@example.com");
    assert_eq!(
        (cy["LastName"].as_str(), cy["Sync_Email__c"].as_str()),
        (Some("Young"), Some("cy@example.com"))
    );
    assert_eq!(sf.contacts().len(), 3, "no duplicate contact in Salesforce");

    // Batch upserts: one call per side, two records each.
    let hs_calls = hs.target.seen_at(HS_BATCH);
    assert_eq!(hs_calls.len(), 1);
    assert_eq!(hs_calls[0].body["inputs"].as_array().unwrap().len(), 2);
    assert!(
        hs_calls[0].body["inputs"]
            .as_array()
            .unwrap()
            .iter()
            .all(|i| i["idProperty"] == "email")
    );
    let sf_calls = sf.target.seen_at(SF_BATCH);
    assert_eq!(sf_calls.len(), 1);
    assert_eq!(sf_calls[0].method, "PATCH");
    assert_eq!(sf_calls[0].body["records"].as_array().unwrap().len(), 2);
    assert_eq!(sf_calls[0].body["allOrNone"], false);

    // The next run reads ferry's own writes back: nothing to do (no echo).
    run_sync(&b.hub, "contacts").await.unwrap();
    b.drain(4).await;
    assert_eq!(
        hs.target.seen_at(HS_BATCH).len(),
        1,
        "no write back into HubSpot"
    );
    assert_eq!(
        sf.target.seen_at(SF_BATCH).len(),
        1,
        "no write back into Salesforce"
    );

    // Edits to a field the other side owns are overwritten by the owner's value.
    hs.put_contact(json!({"email": "ada@example.com", "phone": "+44 999"}));
    sf.put_contact(
        json!({"Email": "ada@example.com", "HubSpot_Lifecycle_Stage__c": "opportunity"}),
    );
    run_sync(&b.hub, "contacts").await.unwrap();
    b.drain(4).await;
    assert_eq!(props(&hs, "ada@example.com")["phone"], "+44 222");
    assert_eq!(
        fields(&sf, "ada@example.com")["HubSpot_Lifecycle_Stage__c"],
        "customer"
    );
    assert_eq!(
        sf.tokens_issued(),
        1,
        "one Salesforce session for every run"
    );
}
