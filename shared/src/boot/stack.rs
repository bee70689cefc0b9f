//! The AWS store named by a deployed stack's outputs (`ferry … --stack`).

use std::collections::HashMap;
use std::sync::Arc;

use super::{aws_names, aws_sdk_config, with_token_key};
use crate::clock::Clock;
use crate::store::AwsStore;

/// The outputs of a deployed stack (`template.yaml`) that name the AWS
/// store, each with the variable it stands for.
pub const STACK_OUTPUTS: [(&str, &str); 3] = [
    ("TableName", "FERRY_TABLE"),
    ("WorkQueueUrl", "FERRY_QUEUE_URL"),
    ("DeadLetterQueueUrl", "FERRY_DLQ_URL"),
];

/// The AWS store a deployed stack's outputs name ([`STACK_OUTPUTS`]),
/// on [`aws_sdk_config`]: what [`aws_store`] reads from the variables.
pub async fn aws_store_from_stack(
    env: &(dyn Fn(&str) -> Option<String> + Sync),
    stack: &str,
    clock: Arc<dyn Clock>,
) -> Result<Arc<AwsStore>, String> {
    let config = aws_sdk_config(env).await?;
    let vars = stack_outputs(&config, stack).await?;
    let names = aws_names(&|name| vars.get(name).cloned())?;
    tracing::info!(stack, table = %names.table, queue = %names.queue_url, "store: DynamoDB + SQS");
    Ok(with_token_key(
        env,
        &config,
        AwsStore::new(&config, names, clock.clone()),
        clock,
    ))
}

/// DescribeStacks `stack`: the variables its outputs stand for
/// (`FERRY_TABLE` → its value, …). A missing stack, or any missing output,
/// is an error naming it.
pub async fn stack_outputs(
    config: &aws_config::SdkConfig,
    stack: &str,
) -> Result<HashMap<&'static str, String>, String> {
    use aws_sdk_cloudformation::error::{DisplayErrorContext, ProvideErrorMetadata};
    let client = aws_sdk_cloudformation::Client::new(config);
    let described = match client.describe_stacks().stack_name(stack).send().await {
        Ok(out) => out,
        // CloudFormation answers an unknown name with a ValidationError
        // "Stack with id NAME does not exist".
        Err(e)
            if e.code() == Some("ValidationError")
                && e.message().is_some_and(|m| m.contains("does not exist")) =>
        {
            let region = config.region().map(|r| r.to_string()).unwrap_or_default();
            return Err(format!("no stack named {stack:?} in {region}"));
        }
        Err(e) => {
            return Err(format!(
                "DescribeStacks {stack:?}: {}",
                DisplayErrorContext(&e)
            ));
        }
    };
    match described.stacks() {
        [found] => store_vars(found),
        [] => Err(format!("no stack named {stack:?}")),
        _ => Err(format!(
            "DescribeStacks {stack:?} answered more than one stack"
        )),
    }
}

/// The variables [`STACK_OUTPUTS`] map `stack`'s outputs to; every missing
/// output named, with the stack's status (a failed deploy has none).
fn store_vars(
    stack: &aws_sdk_cloudformation::types::Stack,
) -> Result<HashMap<&'static str, String>, String> {
    let name = stack.stack_name().unwrap_or_default();
    let mut vars = HashMap::new();
    let mut missing = Vec::new();
    for (output, var) in STACK_OUTPUTS {
        let value = stack
            .outputs()
            .iter()
            .find(|o| o.output_key() == Some(output))
            .and_then(|o| o.output_value())
            .map(str::trim)
            .filter(|v| !v.is_empty());
        match value {
            Some(value) => {
                vars.insert(var, value.to_owned());
            }
            None => missing.push(format!("{output} ({var})")),
        }
    }
    if missing.is_empty() {
        return Ok(vars);
    }
    let status = stack
        .stack_status()
        .map(|s| format!(" ({})", s.as_str()))
        .unwrap_or_default();
    Err(format!(
        "stack {name:?}{status} has no output {}",
        missing.join(", no output ")
    ))
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    fn stack(outputs: &[(&str, &str)]) -> aws_sdk_cloudformation::types::Stack {
        use aws_sdk_cloudformation::types::{Output, Stack, StackStatus};
        let mut stack = Stack::builder()
            .stack_name("ferry-prod")
            .stack_status(StackStatus::RollbackComplete);
        for (key, value) in outputs {
            stack = stack.outputs(
                Output::builder()
                    .output_key(*key)
                    .output_value(*value)
                    .build(),
            );
        }
        stack.build()
    }

    #[test]
    fn stack_outputs_stand_for_the_variables() {
        let vars = store_vars(&stack(&[
            ("WebhookBaseUrl", "https://x/hooks/"),
            ("TableName", "ferry-table"),
            ("WorkQueueUrl", "https://sqs/work"),
            ("DeadLetterQueueUrl", "https://sqs/dead"),
        ]))
        .unwrap();
        assert_eq!(
            vars,
            HashMap::from([
                ("FERRY_TABLE", "ferry-table".to_owned()),
                ("FERRY_QUEUE_URL", "https://sqs/work".to_owned()),
                ("FERRY_DLQ_URL", "https://sqs/dead".to_owned()),
            ])
        );
    }

    #[test]
    fn every_missing_stack_output_is_named_with_the_stack_status() {
        let err = store_vars(&stack(&[("WorkQueueUrl", "https://sqs/work")])).unwrap_err();
        assert_eq!(
            err,
            "stack \"ferry-prod\" (ROLLBACK_COMPLETE) has no output TableName (FERRY_TABLE), \
             no output DeadLetterQueueUrl (FERRY_DLQ_URL)"
        );
    }
}
