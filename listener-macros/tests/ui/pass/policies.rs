use listener_core::prelude::*;

#[on_trigger(
    name = "SLACK_RECEIVE_MESSAGE",
    timeout = "1m 30s",
    retries = 2,
    retry_delay = "250ms",
    concurrency = 4,
    sequential_by = "payload.channel",
)]
async fn reply(meta: Meta) {
    let _ = meta.attempt();
}

#[on_trigger(sequential_by = "connected_account_id", timeout = "5s")]
fn per_account(_ev: Meta) {}

fn main() {
    let handlers = listener_core::registered_handlers();
    let reply = handlers.iter().find(|h| h.name().ends_with("::reply")).unwrap();
    let policy = reply.policy();
    assert_eq!(policy.timeout, Some(std::time::Duration::from_secs(90)));
    assert_eq!(policy.retries, 2);
    assert_eq!(policy.retry_backoff.initial, std::time::Duration::from_millis(250));
    assert_eq!(policy.concurrency, Some(4));
    assert_eq!(policy.sequential_by.as_ref().unwrap().as_str(), "payload.channel");
    let per_account = handlers.iter().find(|h| h.name().ends_with("::per_account")).unwrap();
    assert_eq!(per_account.policy().retries, 0);
    assert!(per_account.is_blocking());
}
