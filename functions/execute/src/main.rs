//! Lambda: SQS batch → execute, reporting only the failed messages
//! (`ReportBatchItemFailures`).
//!
//! Cold start: the config is loaded and checked and the store and HTTP
//! clients are built once, here; a broken config stops the function at init
//! with one JSON log line naming every problem (see `ferry::boot`).
//! Each invocation ends with what it counted, as an EMF line (`ferry::metrics::emf`).

use ferry_execute::{Batch, deadline, handle};
use lambda_runtime::{Error, LambdaEvent, run, service_fn};

#[tokio::main]
async fn main() -> Result<(), Error> {
    let hub = ferry::boot::start_or_exit("execute").await;
    run(service_fn(move |ev: LambdaEvent<Batch>| {
        let hub = hub.clone();
        async move {
            let deadline = deadline(&ev.context);
            let out = handle(&hub, ev.payload, deadline).await;
            ferry::metrics::emf::print(&hub);
            Ok::<_, Error>(out)
        }
    }))
    .await
}
