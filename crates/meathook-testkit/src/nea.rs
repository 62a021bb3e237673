//! A fake NEA real-time API.
//!
//! Every `reading_every` the "latest reading" of each station changes: the
//! snapshot index is the time since start divided by the cadence, and the
//! value is a pure function of route, station and index, so a test can tell
//! exactly which readings exist. Faults queued for a route replace its next
//! responses one by one.

use std::collections::{BTreeSet, HashMap, VecDeque};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde_json::json;
use time::{OffsetDateTime, UtcOffset};

/// One of the APIs served.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Route {
    /// `/air-temperature`, in deg C.
    AirTemperature,
    /// `/rainfall`, in mm.
    Rainfall,
    /// `/relative-humidity`, in percentage.
    RelativeHumidity,
}

impl Route {
    /// Every route.
    pub const ALL: [Route; 3] = [
        Route::AirTemperature,
        Route::Rainfall,
        Route::RelativeHumidity,
    ];

    /// The URL path segment.
    pub fn path(self) -> &'static str {
        match self {
            Route::AirTemperature => "air-temperature",
            Route::Rainfall => "rainfall",
            Route::RelativeHumidity => "relative-humidity",
        }
    }

    fn from_path(path: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|r| r.path() == path)
    }

    fn unit(self) -> &'static str {
        match self {
            Route::AirTemperature => "deg C",
            Route::Rainfall => "mm",
            Route::RelativeHumidity => "percentage",
        }
    }

    fn reading_type(self) -> &'static str {
        match self {
            Route::AirTemperature => "DBT 1M F",
            Route::Rainfall => "TB1 Rainfall 5 Minute Total F",
            Route::RelativeHumidity => "RH 1M F",
        }
    }

    /// The value of a station's reading in snapshot `index`.
    #[allow(clippy::cast_precision_loss)] // small test values
    pub fn value(self, station: usize, index: u64) -> f64 {
        // One division of whole numbers, so values print as NEA's do
        // (`0.56`, not `0.5599999999999999`).
        let wiggle = (index * 7 + station as u64 * 13) % 50;
        match self {
            Route::AirTemperature => (240 + wiggle) as f64 / 10.0,
            Route::Rainfall => wiggle as f64 / 50.0,
            Route::RelativeHumidity => (700 + 4 * wiggle) as f64 / 10.0,
        }
    }
}

/// A response to serve instead of the normal one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Fault {
    /// This status with a JSON error body.
    Status(u16),
    /// 200 with an HTML page (a captive portal, a proxy's error page).
    Html,
    /// 200 with JSON cut off halfway.
    Truncated,
    /// 429 with `Retry-After` in seconds.
    RateLimited {
        /// The `Retry-After` value.
        retry_after_secs: u64,
    },
    /// No answer for this long, then the normal response.
    Hang(Duration),
}

/// A reading the fake served in a successful response.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ServedReading {
    /// The route.
    pub route: Route,
    /// The station id, such as `S100`.
    pub station: String,
    /// The reading's timestamp, RFC 3339 in Singapore time.
    pub timestamp: String,
    /// The value's bits (`f64::to_bits`), so readings can be ordered.
    pub value_bits: u64,
}

/// How the fake behaves.
#[derive(Debug, Clone)]
pub struct FakeNeaConfig {
    /// Stations per route (at most 900).
    pub stations: usize,
    /// How often every station's latest reading changes.
    pub reading_every: Duration,
    /// Timestamp of snapshot 0.
    pub first_reading: OffsetDateTime,
}

impl Default for FakeNeaConfig {
    /// 8 stations, a new reading every second, starting now.
    fn default() -> Self {
        Self {
            stations: 8,
            reading_every: Duration::from_secs(1),
            first_reading: OffsetDateTime::now_utc()
                .replace_nanosecond(0)
                .unwrap_or_else(|_| OffsetDateTime::now_utc()),
        }
    }
}

#[derive(Debug)]
struct Shared {
    config: FakeNeaConfig,
    started: Instant,
    faults: Mutex<HashMap<Route, VecDeque<Fault>>>,
    requests: Mutex<HashMap<Route, usize>>,
    served: Mutex<BTreeSet<ServedReading>>,
}

/// A running fake NEA server; stops when dropped.
#[derive(Debug)]
pub struct FakeNea {
    addr: SocketAddr,
    shared: Arc<Shared>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for FakeNea {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl FakeNea {
    /// Starts on a free port of 127.0.0.1.
    pub async fn start(config: FakeNeaConfig) -> std::io::Result<Self> {
        Self::start_on(SocketAddr::from(([127, 0, 0, 1], 0)), config).await
    }

    /// Starts on `addr`.
    pub async fn start_on(addr: SocketAddr, config: FakeNeaConfig) -> std::io::Result<Self> {
        let listener = tokio::net::TcpListener::bind(addr).await?;
        let addr = listener.local_addr()?;
        let shared = Arc::new(Shared {
            config,
            started: Instant::now(),
            faults: Mutex::default(),
            requests: Mutex::default(),
            served: Mutex::default(),
        });
        let app = Router::new()
            .route("/{route}", get(serve))
            .with_state(Arc::clone(&shared));
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Ok(Self { addr, shared, task })
    }

    /// The address served.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The base URL to give nea-rs (`Api::new().base_url(..)`).
    pub fn base_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Queues faults for the next requests to `route`, in order.
    pub fn inject(&self, route: Route, faults: impl IntoIterator<Item = Fault>) {
        lock(&self.shared.faults)
            .entry(route)
            .or_default()
            .extend(faults);
    }

    /// Requests received for `route`, faults included.
    pub fn requests(&self, route: Route) -> usize {
        lock(&self.shared.requests)
            .get(&route)
            .copied()
            .unwrap_or(0)
    }

    /// Every distinct reading served successfully, in order.
    pub fn served(&self) -> Vec<ServedReading> {
        lock(&self.shared.served).iter().cloned().collect()
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

async fn serve(State(shared): State<Arc<Shared>>, Path(route): Path<String>) -> Response {
    let Some(route) = Route::from_path(&route) else {
        return (
            StatusCode::NOT_FOUND,
            axum::Json(json!({"code": 404, "name": "NOT_FOUND", "errorMsg": "no such API"})),
        )
            .into_response();
    };
    *lock(&shared.requests).entry(route).or_default() += 1;
    let fault = lock(&shared.faults)
        .get_mut(&route)
        .and_then(VecDeque::pop_front);
    match fault {
        None => {}
        Some(Fault::Hang(how_long)) => tokio::time::sleep(how_long).await,
        Some(Fault::Status(code)) => {
            let status = StatusCode::from_u16(code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
            return (
                status,
                axum::Json(json!({"code": code, "name": "ERROR", "errorMsg": "injected fault"})),
            )
                .into_response();
        }
        Some(Fault::Html) => {
            let mut headers = HeaderMap::new();
            headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("text/html"));
            return (
                StatusCode::OK,
                headers,
                "<html><body><h1>Gateway maintenance</h1></body></html>",
            )
                .into_response();
        }
        Some(Fault::Truncated) => {
            let body = snapshot(&shared, route, false).to_string();
            let cut = body.len() / 2;
            return (
                StatusCode::OK,
                [(header::CONTENT_TYPE, "application/json")],
                body[..cut].to_owned(),
            )
                .into_response();
        }
        Some(Fault::RateLimited { retry_after_secs }) => {
            let body = json!({"code": 429, "name": "TOO_MANY_REQUESTS", "errorMsg": "rate limit exceeded"});
            return (
                StatusCode::TOO_MANY_REQUESTS,
                [(header::RETRY_AFTER, retry_after_secs.to_string())],
                axum::Json(body),
            )
                .into_response();
        }
    }
    axum::Json(snapshot(&shared, route, true)).into_response()
}

/// The current snapshot of `route`; with `record`, logs its readings as
/// served.
#[allow(
    clippy::cast_possible_truncation,
    clippy::cast_sign_loss,
    clippy::cast_precision_loss
)] // snapshot indices and test values
fn snapshot(shared: &Shared, route: Route, record: bool) -> serde_json::Value {
    let config = &shared.config;
    let every = config.reading_every.as_secs_f64().max(0.001);
    let index = (shared.started.elapsed().as_secs_f64() / every) as u64;
    let at = config.first_reading + time::Duration::seconds_f64(every * index as f64);
    let sgt = UtcOffset::from_hms(8, 0, 0).unwrap_or(UtcOffset::UTC);
    let timestamp = at
        .to_offset(sgt)
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default();
    let stations: Vec<String> = (0..config.stations.min(900))
        .map(|s| format!("S{}", 100 + s))
        .collect();
    let readings: Vec<serde_json::Value> = stations
        .iter()
        .enumerate()
        .map(|(s, id)| json!({"stationId": id, "value": route.value(s, index)}))
        .collect();
    if record {
        let mut served = lock(&shared.served);
        for (s, id) in stations.iter().enumerate() {
            served.insert(ServedReading {
                route,
                station: id.clone(),
                timestamp: timestamp.clone(),
                value_bits: route.value(s, index).to_bits(),
            });
        }
    }
    let station_meta: Vec<serde_json::Value> = stations
        .iter()
        .enumerate()
        .map(|(s, id)| json!({"id": id, "deviceId": id, "name": format!("Station {s}"), "location": {"latitude": 1.3 + s as f64 / 1000.0, "longitude": 103.8}}))
        .collect();
    json!({
        "code": 0,
        "errorMsg": "",
        "data": {
            "stations": station_meta,
            "readings": [{"timestamp": timestamp, "data": readings}],
            "readingType": route.reading_type(),
            "readingUnit": route.unit(),
        }
    })
}
