//! The memory tier's overhead: records through `Buffered` into a counting
//! sink, against the same batches moved straight into that sink.
#![allow(missing_docs)] // a benchmark binary, not an API
#![allow(clippy::expect_used, clippy::cast_possible_truncation)] // aborts on a broken set-up; small fixed sizes

mod support;

use std::convert::Infallible;
use std::time::Duration;

use meathook::contracts::{Buffered, Capacity};
use meathook::{FlushPolicy, IngestError, Receipt, Sink, WindowMeta};
use support::{best_of, figure};
use time::macros::datetime;

const BATCHES: usize = 10_000;
const PER_BATCH: usize = 100;

#[derive(Default)]
struct Count(usize);

impl Sink<u64> for Count {
    type Error = Infallible;

    async fn ingest(
        &mut self,
        _: &WindowMeta,
        records: Vec<u64>,
    ) -> Result<Receipt<Infallible>, IngestError<u64, Infallible>> {
        self.0 += records.len();
        Ok(Receipt::all(records.len()))
    }

    async fn flush(&mut self) -> Result<(), Infallible> {
        Ok(())
    }
}

fn batches() -> Vec<Vec<u64>> {
    (0..BATCHES)
        .map(|b| (0..PER_BATCH as u64).map(|i| b as u64 * 1000 + i).collect())
        .collect()
}

async fn through<S: Sink<u64>>(sink: &mut S, input: Vec<Vec<u64>>) {
    let start = datetime!(2026-11-23 10:00 UTC);
    for (i, batch) in input.into_iter().enumerate() {
        let at = start + time::Duration::milliseconds(i as i64 * 100);
        let _ = sink.ingest(&WindowMeta::instant("bench", at), batch).await;
    }
    let _ = sink.flush().await;
}

fn main() {
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("runtime");
    let records = (BATCHES * PER_BATCH) as f64;

    let (raw, _) = best_of(5, || {
        let input = batches();
        rt.block_on(async {
            let mut sink = Count::default();
            through(&mut sink, input).await;
            sink.0
        })
    });
    let (buffered, delivered) = best_of(5, || {
        let input = batches();
        rt.block_on(async {
            let policy = FlushPolicy::new(Duration::from_secs(300), 10_000).expect("policy");
            let capacity = Capacity {
                records: 1_000_000,
                bytes: usize::MAX,
            };
            let mut sink = Buffered::new(Count::default(), policy).with_capacity(capacity);
            through(&mut sink, input).await;
            sink.get_ref().0
        })
    });
    assert_eq!(delivered, BATCHES * PER_BATCH, "the tier lost records");

    figure(
        "direct_records_per_s",
        records / raw.as_secs_f64(),
        "records/s",
        "baseline",
    );
    figure(
        "buffered_records_per_s",
        records / buffered.as_secs_f64(),
        "records/s",
        "",
    );
    figure(
        "buffered_vs_direct",
        raw.as_secs_f64() / buffered.as_secs_f64(),
        "x",
        "the memory tier's cost; 1.0 = free",
    );
}
