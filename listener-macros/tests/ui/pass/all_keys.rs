// All six keys, in any order, raw strings included.
use listener_core::prelude::*;

#[rustfmt::skip] // keeps the trailing comma under test
#[on_trigger(
    connected_account_id = "ca_1",
    auth_config_id = "ac_1",
    user_id = "default",
    trigger_id = "ti_1",
    toolkit = r"github",
    name = "GITHUB_COMMIT_EVENT",
)]
async fn everything_set(_ev: Meta) {}

fn main() {
    let descriptor = listener_core::__private::inventory::iter::<listener_core::__private::HandlerDescriptor>
        .into_iter()
        .next()
        .unwrap();
    assert_eq!(
        descriptor.filter,
        listener_core::__private::FilterSpec {
            name: Some("GITHUB_COMMIT_EVENT"),
            toolkit: Some("github"),
            trigger_id: Some("ti_1"),
            user_id: Some("default"),
            auth_config_id: Some("ac_1"),
            connected_account_id: Some("ca_1"),
        }
    );
}
