// The expansion only uses absolute paths: user items named like std's or the macro's own
// helpers, and modules without the implicit prelude, do not disturb it.
#![allow(dead_code, unused_imports)]

mod core {}
mod inventory {}
struct Option;
struct Some;
struct None;
type Result = ();
fn module_path() {}
fn line() {}
fn file() {}

mod listener_core {
    pub struct HandlerDescriptor;
    pub struct FilterSpec;
    pub mod __private {}
}

mod handlers {
    use ::listener_core::prelude::*;

    mod core {}
    enum Option {
        Some,
        None,
    }
    use self::Option::{None, Some};

    #[on_trigger(name = "X", toolkit = "y")]
    pub async fn shadowed(_ev: Meta) {}
}

#[no_implicit_prelude]
mod bare {
    #[::listener_core::on_trigger(user_id = "u")]
    fn no_prelude(_ev: ::listener_core::Meta) -> ::std::result::Result<(), ::std::string::String> {
        ::std::result::Result::Ok(())
    }
}

fn main() {
    let handlers = ::listener_core::registered_handlers();
    let names: Vec<&str> = handlers
        .iter()
        .map(|handler| without_crate(handler.name()))
        .collect();
    assert_eq!(names, ["bare::no_prelude", "handlers::shadowed"]);
}

/// `crate::path::name` without the crate's name, which the test harness picks.
fn without_crate(name: &str) -> &str {
    name.split_once("::").map_or(name, |(_, rest)| rest)
}
