//! Lambda: SQS batch → execute, reporting only the failed messages.

use aws_lambda_events::event::sqs::SqsEvent;
use ferry_execute::handle;
use lambda_runtime::{Error, LambdaEvent, run, service_fn};

#[tokio::main]
async fn main() -> Result<(), Error> {
    ferry::boot::init_json_logs();
    let hub = ferry::boot::hub_from_env()
        .await
        .inspect_err(|e| tracing::error!(error = %e, "cannot start: bad config or store"))?;
    run(service_fn(move |ev: LambdaEvent<SqsEvent>| {
        let hub = hub.clone();
        async move { Ok::<_, Error>(handle(&hub, ev.payload).await) }
    }))
    .await
}
