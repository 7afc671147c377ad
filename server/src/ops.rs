//! Operations (issue 23): the access log and the Prometheus metrics.
//!
//! **Access log.** One line per request, tracing target `diabase::access`
//! (level info): method, the route *template* (`/api/v1/patients/{id}/report`,
//! `/ns/{site}/api/v1/entries`), status, milliseconds, and the client
//! address (the trusted proxy's entry behind a proxy). Never the path as
//! sent, the query string or a header: those carry Nightscout secrets and
//! tokens (`?token=`, `api-secret`), patient and site ids, and dates of
//! health data. Requests no route matched (the site's files, unknown
//! addresses) are logged as `(files)`.
//!
//! **Metrics.** `GET /metrics` in the Prometheus text format, served only
//! on `DIABASE_METRICS_ADDR` (a separate listener, meant for a private
//! network or loopback; unset: none): requests by method, route and status,
//! latency histograms by route, and, read from the database when scraped,
//! the mail queue, uploads, accounts and the connection pool.

use app::service::AppState;
use axum::extract::{ConnectInfo, MatchedPath, Request, State};
use axum::middleware::Next;
use axum::response::Response;
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::net::SocketAddr;
use std::sync::{Mutex, OnceLock};
use std::time::Instant;

/// The label of requests no route matched.
pub const FILES_ROUTE: &str = "(files)";

/// Latency bucket bounds, seconds.
const BUCKETS: [f64; 12] = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0];

#[derive(Default, Clone)]
struct Histogram {
    counts: [u64; BUCKETS.len()],
    sum: f64,
    count: u64,
}

/// The process's request counters.
pub struct Metrics {
    started: Instant,
    requests: Mutex<BTreeMap<(String, String, u16), u64>>,
    latency: Mutex<BTreeMap<String, Histogram>>,
}

/// The one registry of this process (Prometheus scrapes processes).
pub fn metrics() -> &'static Metrics {
    static M: OnceLock<Metrics> = OnceLock::new();
    M.get_or_init(|| Metrics {
        started: Instant::now(),
        requests: Mutex::new(BTreeMap::new()),
        latency: Mutex::new(BTreeMap::new()),
    })
}

impl Metrics {
    fn record(&self, method: &str, route: &str, status: u16, seconds: f64) {
        if let Ok(mut r) = self.requests.lock() {
            *r.entry((method.to_string(), route.to_string(), status)).or_default() += 1;
        }
        if let Ok(mut l) = self.latency.lock() {
            let h = l.entry(route.to_string()).or_default();
            for (i, le) in BUCKETS.iter().enumerate() {
                if seconds <= *le {
                    h.counts[i] += 1;
                }
            }
            h.sum += seconds;
            h.count += 1;
        }
    }

    /// The counters in the Prometheus text format (version 0.0.4).
    pub fn render(&self) -> String {
        let mut out = String::new();
        out.push_str(
            "# HELP diabase_http_requests_total HTTP requests answered, by method, route template and status.\n",
        );
        out.push_str("# TYPE diabase_http_requests_total counter\n");
        if let Ok(r) = self.requests.lock() {
            for ((method, route, status), n) in r.iter() {
                let _ = writeln!(
                    out,
                    "diabase_http_requests_total{{method=\"{}\",route=\"{}\",status=\"{status}\"}} {n}",
                    label(method),
                    label(route)
                );
            }
        }
        out.push_str("# HELP diabase_http_request_duration_seconds Time to the response head, by route template.\n");
        out.push_str("# TYPE diabase_http_request_duration_seconds histogram\n");
        if let Ok(l) = self.latency.lock() {
            for (route, h) in l.iter() {
                let route = label(route);
                for (i, le) in BUCKETS.iter().enumerate() {
                    let _ = writeln!(
                        out,
                        "diabase_http_request_duration_seconds_bucket{{route=\"{route}\",le=\"{le}\"}} {}",
                        h.counts[i]
                    );
                }
                let _ = writeln!(
                    out,
                    "diabase_http_request_duration_seconds_bucket{{route=\"{route}\",le=\"+Inf\"}} {}",
                    h.count
                );
                let _ = writeln!(out, "diabase_http_request_duration_seconds_sum{{route=\"{route}\"}} {}", h.sum);
                let _ = writeln!(out, "diabase_http_request_duration_seconds_count{{route=\"{route}\"}} {}", h.count);
            }
        }
        out.push_str("# HELP diabase_uptime_seconds Seconds since this process started serving.\n");
        out.push_str("# TYPE diabase_uptime_seconds gauge\n");
        let _ = writeln!(out, "diabase_uptime_seconds {}", self.started.elapsed().as_secs_f64());
        out.push_str("# HELP diabase_build_info The running version.\n# TYPE diabase_build_info gauge\n");
        let _ = writeln!(out, "diabase_build_info{{version=\"{}\"}} 1", env!("CARGO_PKG_VERSION"));
        out
    }
}

/// A label value with `\`, `"` and newlines escaped.
fn label(s: &str) -> String {
    s.replace('\\', "\\\\").replace('"', "\\\"").replace('\n', "\\n")
}

/// How the access log finds the client's address.
#[derive(Clone, Copy)]
pub struct AccessConfig {
    pub trust_proxy: bool,
    pub proxy_hops: usize,
}

/// The middleware: times the request, counts it, writes the access line.
pub async fn observe(State(cfg): State<AccessConfig>, req: Request, next: Next) -> Response {
    let start = Instant::now();
    let method = req.method().as_str().to_string();
    let route = req.extensions().get::<MatchedPath>().map(|m| m.as_str().to_string());
    let peer = req.extensions().get::<ConnectInfo<SocketAddr>>().map(|c| c.0.ip());
    let client = if cfg.trust_proxy {
        let values: Vec<&str> =
            req.headers().get_all("x-forwarded-for").iter().filter_map(|v| v.to_str().ok()).collect();
        app::service::forwarded_client(&values, cfg.proxy_hops).or(peer)
    } else {
        peer
    };
    let res = next.run(req).await;
    let seconds = start.elapsed().as_secs_f64();
    let route = route.as_deref().unwrap_or(FILES_ROUTE);
    let status = res.status().as_u16();
    metrics().record(&method, route, status, seconds);
    tracing::info!(
        target: "diabase::access",
        method = %method,
        route = %route,
        status,
        ms = format_args!("{:.1}", seconds * 1000.0),
        client = %client.map(|c| c.to_string()).unwrap_or_else(|| "-".into()),
    );
    res
}

/// The gauges read from the database at scrape time; a failed query is
/// left out rather than failing the scrape.
async fn database_gauges(state: &AppState) -> String {
    use sea_orm::{ConnectionTrait, Statement};
    let db = &state.db;
    let mut out = String::new();
    let queries = [
        (
            "diabase_mail_queue_pending",
            "Messages queued and not yet sent or given up.",
            "SELECT COUNT(*) FROM mail_queue WHERE sent_ms IS NULL AND failed_ms IS NULL",
        ),
        ("diabase_uploads", "Uploads and imports stored.", "SELECT COUNT(*) FROM uploads"),
        ("diabase_accounts", "User accounts.", "SELECT COUNT(*) FROM users"),
    ];
    for (name, help, sql) in queries {
        let row = db.query_one_raw(Statement::from_string(db.get_database_backend(), sql.to_string())).await;
        if let Ok(Some(row)) = row
            && let Ok(n) = row.try_get_by_index::<i64>(0)
        {
            let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} gauge\n{name} {n}");
        }
    }
    let (size, idle) = match db.get_database_backend() {
        sea_orm::DbBackend::Postgres => {
            let p = db.get_postgres_connection_pool();
            (p.size(), p.num_idle())
        }
        _ => {
            let p = db.get_sqlite_connection_pool();
            (p.size(), p.num_idle())
        }
    };
    let _ = writeln!(
        out,
        "# HELP diabase_db_pool_connections Database connections open in the pool.\n\
         # TYPE diabase_db_pool_connections gauge\ndiabase_db_pool_connections {size}\n\
         # HELP diabase_db_pool_idle Open database connections not in use.\n\
         # TYPE diabase_db_pool_idle gauge\ndiabase_db_pool_idle {idle}"
    );
    out
}

/// The metrics listener's router: `GET /metrics` only.
pub fn metrics_router(state: AppState) -> axum::Router {
    async fn scrape(State(state): State<AppState>) -> Response {
        use axum::response::IntoResponse;
        let body = format!("{}{}", metrics().render(), database_gauges(&state).await);
        (
            [
                (http::header::CONTENT_TYPE, "text/plain; version=0.0.4; charset=utf-8"),
                (http::header::CACHE_CONTROL, "no-store"),
            ],
            body,
        )
            .into_response()
    }
    axum::Router::new().route("/metrics", axum::routing::get(scrape)).with_state(state)
}

/// Serves [`metrics_router`] on `listener` until the process stops.
pub async fn serve_metrics(listener: tokio::net::TcpListener, state: AppState) -> std::io::Result<()> {
    axum::serve(listener, metrics_router(state)).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_counters_and_histograms() {
        let m = Metrics {
            started: Instant::now(),
            requests: Mutex::new(BTreeMap::new()),
            latency: Mutex::new(BTreeMap::new()),
        };
        m.record("GET", "/api/v1/health", 200, 0.003);
        m.record("GET", "/api/v1/health", 200, 0.2);
        m.record("POST", "/a\"b", 401, 20.0);
        let t = m.render();
        assert!(
            t.contains("diabase_http_requests_total{method=\"GET\",route=\"/api/v1/health\",status=\"200\"} 2"),
            "{t}"
        );
        assert!(t.contains("route=\"/a\\\"b\""), "{t}");
        assert!(t.contains("diabase_http_request_duration_seconds_bucket{route=\"/api/v1/health\",le=\"0.0025\"} 0"));
        assert!(t.contains("diabase_http_request_duration_seconds_bucket{route=\"/api/v1/health\",le=\"0.005\"} 1"));
        assert!(t.contains("diabase_http_request_duration_seconds_bucket{route=\"/api/v1/health\",le=\"0.25\"} 2"));
        assert!(t.contains("diabase_http_request_duration_seconds_bucket{route=\"/a\\\"b\",le=\"10\"} 0"), "{t}");
        assert!(t.contains("diabase_http_request_duration_seconds_bucket{route=\"/a\\\"b\",le=\"+Inf\"} 1"));
        assert!(t.contains("diabase_http_request_duration_seconds_count{route=\"/api/v1/health\"} 2"));
    }
}
