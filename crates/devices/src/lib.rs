//! Diabase device drivers, device simulators, demo data and file importers.
//! Sans-IO: nothing here opens a file, a socket or a USB device; callers hand
//! in bytes and get typed [`therapy::Record`]s back.

pub mod demo;
pub mod import;
pub mod minimed;
