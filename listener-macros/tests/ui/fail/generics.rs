use listener_core::prelude::*;

#[on_trigger]
async fn type_param<T: FromEvent>(_ev: T) {}

#[on_trigger]
fn lifetime_param<'a>(_ev: Meta) {}

#[on_trigger]
fn where_clause(_ev: Meta)
where
    Meta: Send,
{
}

#[on_trigger]
async fn impl_trait_param(_ev: impl FromEvent) {}

fn main() {}
