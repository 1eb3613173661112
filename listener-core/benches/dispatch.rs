//! Dispatch cost against the number of registered handlers.
//!
//! Each iteration dispatches a batch of 100 V3 Slack events to a registry of N handlers
//! (N = 1, 100, 10,000) of which exactly one matches, then waits until the 100 no-op handler
//! runs finished. A single-threaded runtime keeps cross-thread wake-ups (whose latency varies
//! run to run) out of the figure, so it is the dispatcher's own cost per event: dedupe, index
//! lookup, filter checks, in-flight permit, task spawn, the run. With the slug index it should
//! not grow with N. Also measured: decoding the ~600-byte V3 fixture from bytes.
//!
//! Run: `cargo bench -p listener-core --bench dispatch`
// criterion_group! generates an undocumented public function.
#![allow(missing_docs)]

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use listener_core::{decode, Filter, Handler, Listener, TriggerEvent};
use tokio::sync::Notify;

const BATCH: usize = 100;

const FIXTURE: &[u8] = include_bytes!("../../tests/fixtures/v3_slack_receive_message.json");

/// Counts finished runs and wakes the waiter when a batch is complete.
#[derive(Default)]
struct Done {
    runs: AtomicUsize,
    batch: Notify,
}

fn handlers(n: usize, done: Arc<Done>) -> Vec<Handler> {
    let mut out = Vec::with_capacity(n);
    out.push(Handler::new(
        "match",
        Filter::new().name("SLACK_RECEIVE_MESSAGE"),
        move |_: Arc<TriggerEvent>| {
            if done.runs.fetch_add(1, Ordering::Relaxed) + 1 == BATCH {
                done.runs.store(0, Ordering::Relaxed);
                done.batch.notify_one();
            }
            async {}
        },
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
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let template = decode::decode(FIXTURE).unwrap();
    let mut group = c.benchmark_group("dispatch_one_match");
    group.throughput(Throughput::Elements(BATCH as u64));
    for n in [1usize, 100, 10_000] {
        let done = Arc::new(Done::default());
        let mut builder = Listener::builder()
            .without_registered_handlers()
            .no_dedupe();
        for h in handlers(n, Arc::clone(&done)) {
            builder = builder.handler(h);
        }
        let listener = builder.build().unwrap();
        let dispatcher = listener.dispatcher().clone();
        group.bench_with_input(BenchmarkId::from_parameter(n), &n, |b, _| {
            b.to_async(&rt).iter(|| {
                let (d, done, template) = (dispatcher.clone(), Arc::clone(&done), &template);
                async move {
                    let finished = done.batch.notified();
                    for _ in 0..BATCH {
                        d.dispatch(template.clone()).await.unwrap();
                    }
                    finished.await;
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
