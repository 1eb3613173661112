//! Dispatch cost against the number of registered handlers.
//!
//! Each iteration decodes nothing and dispatches one V3 Slack event to a registry of N
//! handlers (N = 1, 100, 10,000) of which exactly one matches, waiting for the no-op
//! handler to finish. With the slug index, the cost should not grow with N.
//! Also measured: decoding the ~600-byte V3 fixture from bytes.
//!
//! Run: `cargo bench -p listener-core --bench dispatch`

use std::sync::Arc;

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use listener_core::{decode, Filter, Handler, Listener, TriggerEvent};

const FIXTURE: &[u8] = include_bytes!("../../tests/fixtures/v3_slack_receive_message.json");

fn handlers(n: usize) -> Vec<Handler> {
    let mut out = Vec::with_capacity(n);
    out.push(Handler::new(
        "match",
        Filter::new().name("SLACK_RECEIVE_MESSAGE"),
        |_: Arc<TriggerEvent>| async {},
    ));
    for i in 1..n {
        // Distinct slugs, a mix of toolkits; none matches the Slack event.
        let slug = format!("TOOLKIT{}_EVENT_{i}", i % 50);
        out.push(Handler::new(
            format!("h{i}"),
            Filter::new().name(slug),
            |_: Arc<TriggerEvent>| async {},
        ));
    }
    out
}

fn bench_dispatch(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let template = decode::decode(FIXTURE).unwrap();
    let mut group = c.benchmark_group("dispatch_one_match");
    group.throughput(Throughput::Elements(1));
    for n in [1usize, 100, 10_000] {
        let mut builder = Listener::builder()
            .without_registered_handlers()
            .no_dedupe();
        for h in handlers(n) {
            builder = builder.handler(h);
        }
        let listener = builder.build().unwrap();
        let dispatcher = listener.dispatcher().clone();
        group.bench_with_input(BenchmarkId::from_parameter(n), &n, |b, _| {
            b.to_async(&rt).iter(|| {
                let ev = template.clone();
                let d = dispatcher.clone();
                async move {
                    let report = d.dispatch_and_wait(ev).await.unwrap();
                    debug_assert_eq!(report.outcomes.len(), 1);
                }
            })
        });
    }
    group.finish();
}

fn bench_decode(c: &mut Criterion) {
    let mut group = c.benchmark_group("decode");
    group.throughput(Throughput::Bytes(FIXTURE.len() as u64));
    group.bench_function("v3_slack_fixture", |b| {
        b.iter(|| decode::decode(std::hint::black_box(FIXTURE)).unwrap())
    });
    group.finish();
}

criterion_group!(benches, bench_dispatch, bench_decode);
criterion_main!(benches);
