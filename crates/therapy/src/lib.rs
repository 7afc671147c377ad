//! Diabase's pure domain: glucose units, the normalised therapy records of the
//! design contract, time handling and (in later modules) metrics.
//!
//! Nothing here knows about HTTP, SQL or the DOM; it builds for native and
//! `wasm32-unknown-unknown` alike.

pub mod fhir;
#[doc(hidden)]
pub mod fixtures;
pub mod metrics;
pub mod record;
pub mod report_data;
pub mod time;
pub mod units;

pub use record::{BgSource, BolusSubtype, PrimeKind, Record, RecordKind, Trend};
pub use time::DeviceTime;
pub use units::{GlucoseUnit, MgDl};
