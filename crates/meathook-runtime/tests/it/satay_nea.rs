//! `SatayCollector` with real nea-rs actions over HTTP against the fake NEA
//! API: every kind of bad answer is counted under its kind, never fatal; the
//! pipeline keeps its schedule and recovers with the API.

#![cfg(feature = "satay")]

use crate::support;

use std::collections::BTreeSet;
use std::time::Duration;

use meathook_runtime::{Pipeline, SatayCollector, SataySender, Telemetry};
use meathook_testkit::{FakeNea, FakeNeaConfig, Fault, Route};
use support::{Gate, sample};
use time::OffsetDateTime;

#[derive(Debug, Clone, PartialEq)]
struct Reading {
    station: String,
    timestamp: OffsetDateTime,
    value: f64,
}

fn flatten(response: nea_rs::AirTemperatureOperationResponse) -> Vec<Reading> {
    match response {
        nea_rs::AirTemperatureOperationResponse::Ok(ok) => ok
            .data
            .readings
            .into_iter()
            .flat_map(|snapshot| {
                let at = snapshot.timestamp;
                snapshot.data.into_iter().map(move |r| Reading {
                    station: r.station_id.to_string(),
                    timestamp: at,
                    value: r.value,
                })
            })
            .collect(),
        _ => Vec::new(),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_answers_are_counted_by_kind_and_the_pipeline_recovers() {
    let config = FakeNeaConfig {
        stations: 3,
        reading_every: Duration::from_millis(100),
        ..FakeNeaConfig::default()
    };
    let fake = FakeNea::start(config).await.unwrap();
    fake.inject(
        Route::AirTemperature,
        [
            Fault::Status(500),
            Fault::Html,
            Fault::Truncated,
            Fault::RateLimited {
                retry_after_secs: 1,
            },
            Fault::Hang(Duration::from_secs(30)),
        ],
    );
    let api = nea_rs::Api::new().base_url(fake.base_url());
    let collector = SatayCollector::new(
        "air_temperature",
        reqwest::Client::new(),
        move |sender: SataySender| {
            let api = api.clone();
            async move { sender.send(api.weather_readings().air_temperature()).await }
        },
        flatten,
    );
    let gate: Gate<Reading> = Gate::default();
    let pipeline = Pipeline::new(collector, gate.clone(), Duration::from_millis(300))
        .with_collect_timeout(Duration::from_secs(1));
    let telemetry = Telemetry::new();
    pipeline
        .run_until(tokio::time::sleep(Duration::from_secs(6)), &telemetry)
        .await
        .unwrap();

    let text = telemetry.encode();
    let errors = |kind: &str| {
        sample(
            &text,
            &format!(
                "meathook_collect_errors_total{{pipeline=\"air_temperature\",kind=\"{kind}\"}}"
            ),
        )
    };
    assert_eq!(errors("status_5xx"), Some(1.0), "{text}");
    assert_eq!(
        errors("decode"),
        Some(2.0),
        "HTML and truncated JSON: {text}"
    );
    assert_eq!(errors("status_429"), Some(1.0));
    assert_eq!(errors("timeout"), Some(1.0));

    // Recovered: readings arrived after the faults, each one the fake served.
    let records = gate.records();
    assert!(
        records.len() >= 3 * 5,
        "only {} readings after recovery",
        records.len()
    );
    let served: BTreeSet<(String, u64)> = fake
        .served()
        .into_iter()
        .map(|r| (r.station, r.value_bits))
        .collect();
    for r in &records {
        assert!(
            served.contains(&(r.station.clone(), r.value.to_bits())),
            "{r:?} was never served"
        );
    }
    // At most one request per 300 ms tick over 6 s: no retry storm.
    let requests = fake.requests(Route::AirTemperature);
    assert!(requests <= 21, "{requests} requests: the schedule ran away");
}
