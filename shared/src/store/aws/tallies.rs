//! [`Tallies`] on DynamoDB: one item per window and subject, all of a window
//! in one partition (`pk` = `tally#<window>`, `sk` = the subject), so the
//! evaluator reads a window with one Query. Each add is one UpdateItem with
//! `ADD count :1`: atomic across instances, no read first. The TTL attribute
//! lets DynamoDB delete a tally [`TALLY_KEEP`] after its window.

use async_trait::async_trait;

use super::item::{EXPIRES_AT, Item, PK, SK, get_n, get_s, n, s, ttl_seconds};
use super::{AwsStore, after, unavailable};
use crate::clock::Millis;
use crate::ports::{StoreResult, TALLY_KEEP, Tallies, Tally};

fn partition(window: Millis) -> String {
    format!("tally#{window}")
}

#[async_trait]
impl Tallies for AwsStore {
    async fn add(
        &self,
        subject: &str,
        window: Millis,
        at: Millis,
        sample: &str,
    ) -> StoreResult<()> {
        self.dynamo
            .update_item()
            .table_name(&self.names.table)
            .key(PK, s(partition(window)))
            .key(SK, s(subject))
            .update_expression(
                "ADD #count :one SET #first = if_not_exists(#first, :at), #last = :at, \
                 #sample = :sample, #exp = :exp",
            )
            .expression_attribute_names("#count", "count")
            .expression_attribute_names("#first", "first")
            .expression_attribute_names("#last", "last")
            .expression_attribute_names("#sample", "sample")
            .expression_attribute_names("#exp", EXPIRES_AT)
            .expression_attribute_values(":one", n(1))
            .expression_attribute_values(":at", n(at))
            .expression_attribute_values(":sample", s(sample))
            .expression_attribute_values(":exp", ttl_seconds(after(window, TALLY_KEEP)))
            .send()
            .await
            .map_err(|e| unavailable("tally add", e))?;
        Ok(())
    }

    async fn window(&self, window: Millis) -> StoreResult<Vec<Tally>> {
        let mut out = Vec::new();
        let mut start: Option<Item> = None;
        loop {
            let page = self
                .dynamo
                .query()
                .table_name(&self.names.table)
                .key_condition_expression("#pk = :pk")
                .expression_attribute_names("#pk", PK)
                .expression_attribute_values(":pk", s(partition(window)))
                .consistent_read(true)
                .set_exclusive_start_key(start.take())
                .send()
                .await
                .map_err(|e| unavailable("tally window", e))?;
            for item in page.items() {
                out.push(Tally {
                    subject: get_s(item, SK)?.to_owned(),
                    window,
                    count: get_n(item, "count")?,
                    first: get_n(item, "first")?,
                    last: get_n(item, "last")?,
                    sample: get_s(item, "sample")?.to_owned(),
                });
            }
            match page.last_evaluated_key() {
                Some(k) if !k.is_empty() => start = Some(k.clone()),
                _ => break,
            }
        }
        Ok(out)
    }
}
