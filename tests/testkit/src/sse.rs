//! Collecting a job's event stream from a relayer (real or fake), with the sdk's own SSE reader.

use std::time::Duration;

use cocoon_sdk::client::RelayerApi;
use cocoon_sdk::relay::JobRef;
use cocoon_sdk::relay::client::StreamEvent;

use crate::Result;

/// Reads the stream of `job` from the relayer at `base` until its final event (a receipt or a
/// failure) or until `timeout`, and returns the events read.
pub async fn collect_stream(
    base: &str,
    job: &JobRef,
    timeout: Duration,
) -> Result<Vec<StreamEvent>> {
    collect_stream_with(&RelayerApi::new(base)?, job, timeout).await
}

/// [`collect_stream`] through `api` (which may carry a reader key or the operator token).
pub async fn collect_stream_with(
    api: &RelayerApi,
    job: &JobRef,
    timeout: Duration,
) -> Result<Vec<StreamEvent>> {
    let mut stream = api.stream(job).await?;
    let mut events = Vec::new();
    let read = async {
        while let Some(ev) = stream.next().await? {
            let last = ev.is_final();
            events.push(ev);
            if last {
                break;
            }
        }
        Ok::<_, crate::TestkitError>(())
    };
    // A stream that never ends is the caller's to judge: it gets what arrived.
    if let Ok(r) = tokio::time::timeout(timeout, read).await {
        r?;
    }
    Ok(events)
}
