//! Batch results matched by id (`batch.item_id` / `result_id`, `errors` /
//! `error_ids`) are checked at load. The answer itself is tested end to
//! end in tests/execution.rs (`a_207_with_a_separate_errors_list_…`).

fn load_errors(batch: &str) -> String {
    let yaml = format!(
        "version: 1\nconnections:\n  crm: {{ base_url: \"https://crm.example.com\" }}\nsources:\n  s:\n    verify: {{ scheme: none }}\nworkflows:\n  w:\n    trigger: {{ source: s }}\n    steps:\n      - id: up\n        connection: crm\n        request: {{ method: POST, path: /c, json: {{ id: \"{{{{ body.id }}}}\" }} }}\n        batch: {{ max_items: 10, path: /bulk, {batch} }}\n"
    );
    match ferry::config::load_str(&yaml, &|_: &str| None) {
        Ok(_) => panic!("the config loaded: {batch}"),
        Err(e) => e.lines().join("\n"),
    }
}

#[test]
fn keyed_batch_results_are_checked_at_load() {
    let path = "workflows.w.steps[0].batch";
    let cases = [
        (
            "results: response.body.results, item_id: item.id",
            format!("{path}: results matched by id need both `item_id`"),
        ),
        (
            "item_id: item.id, result_id: result.id",
            format!("{path}.result_id: `result_id` reads each `result`; set `results`"),
        ),
        (
            "results: response.body.results, item_id: item.id, result_id: result.id, errors: response.body.errors",
            format!("{path}.errors: per-item errors need `errors`"),
        ),
        (
            "results: response.body.results, item_id: \"item.id ==\", result_id: result.id",
            format!("{path}.item_id: expression syntax error"),
        ),
    ];
    for (batch, want) in cases {
        let errs = load_errors(batch);
        assert!(
            errs.contains(&want),
            "{batch}: missing {want:?} in:\n{errs}"
        );
    }
}
