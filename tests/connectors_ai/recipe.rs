//! Recipe 7 (`examples/recipes/embed-articles.yaml`), end to end: a sync
//! reads 60 articles from a CMS, each run embeds its article on the OpenAI
//! fake — batched, results matched by `data[].index` though the fake answers
//! in reverse — and PUTs the vector into a vector store, within the fake's
//! requests and tokens per minute.

use ferry::model::{RunQuery, RunStatus};
use ferry_testkit::bench::{env_file, recipe_text as recipe};
use ferry_testkit::target::{Answer, Target};
use ferry_testkit::vendors::openai::{self, Limits};
use serde_json::{Value, json};

use crate::support::{Env, drive};

/// The recipe loads with its `.env` placeholders (every reference has one).
#[test]
fn the_recipe_loads_with_its_env_file() {
    let vars = env_file(&ferry_testkit::repo_root().join("examples/recipes/embed-articles.env"));
    let loaded = ferry::config::load_str(&recipe("embed-articles.yaml"), &|n: &str| {
        vars.get(n).cloned()
    })
    .unwrap_or_else(|e| panic!("{e}"));
    let openai = &loaded.config.connections["openai"];
    assert_eq!(openai.base_url, "https://api.openai.com");
    let rl = openai.rate_limit.as_ref().unwrap();
    assert_eq!(rl.requests.get(), 500);
    assert_eq!(rl.tokens.as_ref().unwrap().limit.get(), 200_000);
}

/// 60 articles of about 2,000 tokens each (120,000 tokens) against an
/// account of 500 requests and 200,000 tokens a minute: every vector is
/// stored, each the one of its own article, no `429`, every run succeeded.
#[tokio::test]
async fn sixty_articles_are_embedded_in_batches_and_stored_without_a_429() {
    let target = Target::start().await;
    let articles: Vec<Value> = (0..60)
        .map(|i| {
            json!({
                "id": format!("a{i:02}"),
                "title": format!("Article {i}"),
                "body": format!("{i} {}", "lorem ipsum ".repeat(660)),
                "updated_at": format!("2026-11-30T10:{i:02}:00Z"),
            })
        })
        .collect();
    target.respond_with(
        "/cms/articles",
        Answer::ok(json!({ "articles": articles.clone() })),
    );
    let base = target.url();
    let env = Env::start(
        &recipe("embed-articles.yaml"),
        Limits {
            rpm: 500,
            tpm: 200_000,
        },
        &[
            ("CMS_URL", format!("{base}/cms")),
            ("CMS_TOKEN", "cms-token".to_owned()),
            ("VECTORS_URL", format!("{base}/vec")),
            ("VECTORS_TOKEN", "vec-token".to_owned()),
        ],
    )
    .await;

    ferry::sync::run_sync(&env.hub, "article-embeddings")
        .await
        .unwrap();
    drive(&env).await;

    // Every article's vector, under its id, is the one of its own text.
    let stored = target.seen_under("/vec/vectors/");
    assert_eq!(stored.len(), 60, "one PUT per article");
    for a in &articles {
        let id = a["id"].as_str().unwrap();
        let text = format!(
            "{}. {}",
            a["title"].as_str().unwrap(),
            a["body"].as_str().unwrap()
        );
        let put = stored
            .iter()
            .find(|s| s.path == format!("/vec/vectors/{id}"))
            .unwrap_or_else(|| panic!("no vector for {id}"));
        assert_eq!(put.body["embedding"], json!(openai::vector(&text)), "{id}");
        assert_eq!(put.header("authorization"), "Bearer vec-token");
    }
    // Batched, each article embedded once, never a 429.
    let calls = env.openai.calls();
    assert_eq!(env.openai.count_429(), 0, "no 429 was provoked");
    assert_eq!(
        env.openai.embedded().len(),
        60,
        "each article embedded once"
    );
    assert!(
        calls.iter().any(|c| c.inputs.len() > 1),
        "inputs were batched"
    );
    assert!(calls.iter().all(|c| c.inputs.len() <= 16));
    // The run record: every run succeeded.
    let runs = env
        .hub
        .ports
        .runs
        .list(&RunQuery {
            workflow: Some("sync:article-embeddings".into()),
            limit: 1_000,
            ..RunQuery::default()
        })
        .await
        .unwrap();
    // One run per article (the sync pass keeps its own record, `sync-run@…`).
    let runs: Vec<_> = runs
        .into_iter()
        .filter(|r| !r.event_id.starts_with("sync-run@"))
        .collect();
    assert_eq!(runs.len(), 60);
    assert!(
        runs.iter().all(|r| r.status == RunStatus::Succeeded),
        "{:?}",
        runs.iter()
            .filter(|r| r.status != RunStatus::Succeeded)
            .map(|r| (&r.id, &r.status, &r.error))
            .collect::<Vec<_>>()
    );
}
